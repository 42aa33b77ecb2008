"""A light the model was not trained under, taken back to one it was (leafcut.balance_to_range, a model card's
`input.white_balance: light-range`): a photo lit as the training photos were is left exactly as it is, so the model
keeps what it learnt from their sheets' tints, while a warmer or cooler light than nearly all of them, read off the
sheet, is moved back along the line daylight-to-tungsten to the nearer end of their middle half. Measured on real
leaf photos (the repository's examples, PlantVillage photos on their own sheets) with the casts
`benchmarks/phone_conditions.py` uses."""

from __future__ import annotations

import numpy as np
import pytest
from tests.lighting import CLOSE_UP, COOL, EXAMPLES, ON_SHEETS, WARM, lit, off, photo

from leafdoc.core.errors import ModelError
from leafdoc.imaging.leafcut import LIGHT_AXIS, MIN_LIGHT_PHOTOS, balance_to_range, light_of, light_range
from leafdoc.imaging.photos import Preparation, apply_white_balance

pytestmark = pytest.mark.unit


def test_the_light_axis_runs_from_daylight_to_tungsten():
    """Warmer: red up and blue down against green, as the black-body line has it."""
    assert LIGHT_AXIS[0] > 0 > LIGHT_AXIS[1] and np.linalg.norm(LIGHT_AXIS) == pytest.approx(1.0)


@pytest.mark.parametrize("name", ON_SHEETS)
def test_a_warm_light_reads_warmer_and_a_cool_one_cooler(name):
    x = photo(name)
    own, warm, cool = light_of(x), light_of(lit(x, WARM)), light_of(lit(x, COOL))
    # (1.10, 0.85) moves the sheet by about log 1.10 * 0.52 + log(1/0.85) * 0.86 = 0.19 along the axis
    assert warm - own == pytest.approx(0.19, abs=0.04) and own - cool == pytest.approx(0.19, abs=0.04)


@pytest.mark.parametrize("name", ON_SHEETS)
@pytest.mark.parametrize("light", [WARM, COOL], ids=["warm", "cool"])
def test_a_light_beyond_the_training_lights_is_taken_back_to_their_middle_half(name, light):
    x = photo(name)
    own = light_of(x)
    lights = (own - 0.08, own - 0.03, own + 0.03, own + 0.08)  # the photo was taken under a typical training light
    assert np.array_equal(balance_to_range(x, lights), x)  # ... so it is not touched at all
    cast = lit(x, light)
    assert off(cast, x) > 8
    back = balance_to_range(cast, lights)
    end = lights[2] if light == WARM else lights[1]
    # at the nearer end of the middle half (the sheet is measured again: clipping moves it a little)
    assert light_of(back) == pytest.approx(end, abs=0.015)
    assert off(back, x) < off(cast, x) / 2.5, (off(back, x), off(cast, x))  # most of the cast is gone
    # brightness kept: the channels' mean moves by less than a level or two
    assert abs(back.astype(np.float32).mean() - cast.astype(np.float32).mean()) < 2.5
    # the preparation says which light it corrected, and nothing for a photo it left as it was
    prep = Preparation(160, white_balance="light-range", light_range=lights)
    assert prep.finish_noting(cast)[1] == ("warm" if light == WARM else "cool")
    same, note = prep.finish_noting(x)
    assert np.array_equal(prep.finish_noting(cast)[0], back) and np.array_equal(same, x) and note is None
    # a light within those of nearly all training photos, if not a typical one, is left as it is too
    wide = (own - 0.3, own + 0.1, own + 0.2, own + 0.3)
    assert np.array_equal(balance_to_range(x, wide), x)


def test_a_photo_with_no_sheet_is_left_as_it_is():
    close_up = photo(CLOSE_UP)
    assert light_of(close_up) is None
    assert np.array_equal(balance_to_range(lit(close_up, WARM), (-0.6, -0.5, -0.4, -0.3)), lit(close_up, WARM))


def test_the_training_lights_are_quantiles_of_those_measured():
    lights = [float(v) for v in np.linspace(-0.2, 0.2, 41)] + [None] * 10  # photos with no sheet do not count
    assert light_range(lights) == pytest.approx((-0.18, -0.1, 0.1, 0.18))  # 5%, 25%, 75%, 95%
    with pytest.raises(ValueError, match=f"only {MIN_LIGHT_PHOTOS - 1} of the 30 photos show a sheet"):
        light_range([0.0] * (MIN_LIGHT_PHOTOS - 1) + [None] * 5, "the 30 photos")


def test_the_preparation_measures_the_lights_and_then_corrects_with_them(tmp_path):
    """Preparation.with_lights reads the photos as the model sees them (framed, resized, before any balance), and
    the preparation it gives corrects only a photo lit beyond them; its cache folder's name carries the range."""
    from PIL import Image

    paths = [EXAMPLES / f"{n}.jpg" for n in ON_SHEETS] * 3  # 9 photos with a sheet
    plain = Preparation(160, "leaf")
    prep = plain.with_lights(paths)
    expected = light_range([light_of(plain(p)) for p in paths])
    assert prep.white_balance == "light-range" and prep.light_range == expected
    assert prep.label() == "160px-leaf-wblight-range" + "".join(f"{v:+.4f}" for v in expected)
    touched = 0
    for i, (name, light) in enumerate([(n, g) for n in ON_SHEETS for g in (WARM, COOL)]):
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(lit(np.asarray(Image.open(EXAMPLES / f"{name}.jpg").convert("RGB")), light)).save(path)
        paths.append(path)
    for p in paths:
        x, served = plain(p), prep(p)
        inside = expected[0] <= light_of(x) <= expected[3]
        assert np.array_equal(served, x) == inside
        touched += not inside
        assert inside or expected[1] - 0.015 <= light_of(served) <= expected[2] + 0.015
    assert touched >= 4  # of the 6 warm or cool photos
    with pytest.raises(ValueError, match="needs the range of lights"):
        apply_white_balance(plain(paths[0]), "light-range")
    with pytest.raises(ValueError, match="only 0 of the training photos show a sheet"):
        plain.with_lights([EXAMPLES / f"{CLOSE_UP}.jpg"] * MIN_LIGHT_PHOTOS)


@pytest.mark.parametrize("bad", [None, [0.1, 0.2], [0.1, 0.2, 0.4, 0.3], [0.1, 0.2, 0.3, float("nan")], "warm"])
def test_a_card_asking_for_it_without_its_lights_is_refused_by_name(tmp_path, bad):
    from leafdoc.inference.predictor import card_preparation
    from leafdoc.modelfolder import ModelCard

    lights = [0.0, 0.1, 0.2, 0.3]
    card = ModelCard.from_dict({"input": {"size": 160, "white_balance": "light-range", "light_range": lights}})
    assert card_preparation(card, tmp_path).light_range == (0.0, 0.1, 0.2, 0.3)
    card.input.light_range = bad
    with pytest.raises(ModelError, match=r"card.json: input.white_balance is 'light-range' but input.light_range"):
        card_preparation(card, tmp_path)
