"""The white balance taken from the sheet (leafcut.balance_to_sheet, a model card's `input.white_balance: sheet`): a
photo taken under a warm or cool light comes back to what the same photo in daylight gives, because the sheet around
the leaf, the one thing whose colour is known, shows how far the light is off. Measured on real leaf photos (the
repository's examples, PlantVillage photos on their own sheets) with the cast `benchmarks/phone_conditions.py` uses for
warm light and its opposite."""

from __future__ import annotations

import numpy as np
import pytest
from tests.lighting import CLOSE_UP, COOL, EXAMPLES, ON_SHEETS, WARM, lit, off, photo

from leafdoc.imaging.leafcut import GAIN_RANGE, balance_to_sheet, border_ring, sheet_colour
from leafdoc.imaging.photos import apply_white_balance, preprocess

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", ON_SHEETS)
@pytest.mark.parametrize("light", [WARM, COOL], ids=["warm", "cool"])
def test_a_warm_or_cool_light_is_taken_back_by_the_sheet(name, light):
    x = photo(name)
    cast = lit(x, light)
    assert off(cast, x) > 8  # the light moves every pixel by about 9-11 levels on average
    balanced, balanced_cast = balance_to_sheet(x), balance_to_sheet(cast)
    assert off(balanced_cast, balanced) < 2.5, off(balanced_cast, balanced)  # the same photo again (clipping aside)
    for out in (balanced, balanced_cast):  # ... with its sheet grey, at the sheet's own brightness
        sheet = sheet_colour(out)
        assert sheet is not None and sheet.max() - sheet.min() <= 3, sheet
    # The leaf keeps its own colour against the sheet: still greener than the sheet, not greyed with it.
    ring = border_ring(*x.shape[:2])
    middle = balanced_cast[~ring].astype(np.float32).mean(axis=0)
    assert middle[1] > middle[0] and middle[1] > middle[2], middle


def test_a_photo_with_no_sheet_is_left_as_it_is():
    """A close-up (the leaf runs past the edges), or a sheet burnt out to white (overexposed: clipped pixels no
    longer show the light's colour), gives no white reference: the photo is not touched."""
    close_up = photo(CLOSE_UP)
    assert sheet_colour(close_up) is None and np.array_equal(balance_to_sheet(close_up), close_up)
    burnt = photo("tomato_early_blight").copy()
    burnt[border_ring(*burnt.shape[:2])] = 255
    assert sheet_colour(burnt) is None and np.array_equal(balance_to_sheet(burnt), burnt)


def test_a_strongly_coloured_sheet_is_corrected_only_within_bounds():
    """An orange card is not a grey sheet under an impossibly orange light: each channel moves at most GAIN_RANGE."""
    x = np.empty((160, 160, 3), np.uint8)
    x[:] = (200, 120, 60)
    x[50:110, 50:110] = (60, 140, 50)  # a leaf
    out = balance_to_sheet(x).astype(np.float32)
    mean = np.mean([200, 120, 60])
    expected = np.array([200, 120, 60]) * np.clip(mean / np.array([200, 120, 60]), *GAIN_RANGE)
    np.testing.assert_allclose(out[0, 0], expected, atol=1)
    assert out[0, 0, 2] == pytest.approx(60 * GAIN_RANGE[1], abs=1)  # blue could not be raised to grey


def test_the_model_preprocessing_applies_it_only_when_the_card_says_so():
    path = EXAMPLES / "tomato_early_blight.jpg"
    plain = preprocess(path, 160, framing="leaf")
    assert np.array_equal(preprocess(path, 160, framing="leaf", white_balance="none"), plain)
    balanced = preprocess(path, 160, framing="leaf", white_balance="sheet")
    assert np.array_equal(balanced, balance_to_sheet(plain)) and off(balanced, plain) > 1
    with pytest.raises(ValueError, match="white balance 'auto' is not one of none, sheet, light-range"):
        apply_white_balance(plain, "auto")
