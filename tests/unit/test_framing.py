"""Framing (images.leaf_region, a model card's `input.framing: leaf`): a leaf photographed from too far, small on its
plain background, is seen by the model as the square around the leaf, as in the photos it learnt from; a leaf that
fills the frame, as PlantVillage's do, is left as it was. Measured on real PlantVillage photos made to look taken
from farther (the leaf scaled down on its own background colour, as benchmarks/phone_conditions.py does)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.conftest import PLANTVILLAGE

from leafdoc.imaging.leafcut import leaf_box
from leafdoc.imaging.photos import FRAME_FILL, leaf_region, model_region, resize_square

pytestmark = pytest.mark.unit

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from phone_conditions import farther  # noqa: E402  the same "taken from farther" the benchmark measures

SIZE = 96


def real_leaves(n: int) -> list[Image.Image]:
    """n photos, one from each of n classes (the first photo of each, in name order)."""
    if not PLANTVILLAGE.is_dir():
        pytest.skip(f"shared PlantVillage photos not found at {PLANTVILLAGE}")
    classes = sorted(d for d in PLANTVILLAGE.iterdir() if d.is_dir())[:n]
    return [Image.open(sorted(c.glob("*.jpg"))[0]).convert("RGB") for c in classes]


def span(x: np.ndarray) -> float | None:
    """How much of the model's input the leaf spans (its box's longer side over the side), if it is found (a leaf
    touching the border too: this measures, it does not decide to frame)."""
    box = leaf_box(x, max_border=1.0)
    return None if box is None else max(box[2] - box[0], box[3] - box[1]) / x.shape[0]


def test_a_leaf_taken_from_farther_is_seen_again_as_it_was_taken():
    """In the model's input, a far leaf framed spans about what the photo as taken spans; centre-cropped, half."""
    rows = []
    for leaf in real_leaves(12):
        as_taken = span(resize_square(leaf, SIZE))
        far = farther(leaf, 0.5)
        region = leaf_region(far)
        if region is None or as_taken is None:
            continue  # no clean cut on this one: the centre crop, as before
        left, top, right, bottom = region
        assert left >= 0 and top >= 0 and right <= far.width and bottom <= far.height
        assert abs((right - left) - (bottom - top)) < 1e-6  # a square
        rows.append((as_taken, span(resize_square(far, SIZE, region=region)), span(resize_square(far, SIZE))))
    assert len(rows) >= 9, f"a clean cut on only {len(rows)} of 12 far photos"
    for as_taken, framed, centred in rows:
        assert abs(framed - FRAME_FILL) < 0.1 and abs(framed - as_taken) < 0.2, rows
        assert centred < 0.6 * as_taken, rows


def test_the_square_is_sized_for_the_leaf_to_fill_it_as_in_training():
    leaf = real_leaves(1)[0]
    far = farther(leaf, 0.45)
    left, _, right, _ = leaf_region(far)
    # The leaf spans about 0.45 of the frame at most (less where the photo has margin): framed, about FRAME_FILL.
    assert (right - left) < 0.6 * far.width
    assert abs((right - left) * FRAME_FILL - 0.45 * far.width) < 0.15 * far.width


def test_leaves_that_fill_the_frame_are_left_as_they_are():
    leaves = real_leaves(30)
    framed = [i for i, leaf in enumerate(leaves) if leaf_region(leaf) is not None]
    assert len(framed) <= 1, f"photos {framed} of 30 PlantVillage classes were framed"
    assert model_region(leaves[0], "none") is None
    with pytest.raises(ValueError, match="framing 'tight'"):
        model_region(leaves[0], "tight")


def test_no_framing_without_a_plain_sheet_around_the_leaf():
    """A leaf filling the frame with no sheet at all (PlantVillage's corn close-ups: the "sheet" the cut finds is leaf)
    and a leaf on a sheet in a scene (a strawberry leaf on paper with the bed behind it) are not framed: a small
    leaf on a sheet leaves the border plain. Before this rule, 20 of the 150 corn close-ups were framed on a patch of
    the same leaf, and the strawberry photo on the bed behind its leaf."""
    if not PLANTVILLAGE.is_dir():
        pytest.skip(f"shared PlantVillage photos not found at {PLANTVILLAGE}")
    corn = sorted((PLANTVILLAGE / "Corn_(maize)___healthy").glob("*.jpg"))
    framed = [p.name for p in corn if leaf_region(Image.open(p).convert("RGB")) is not None]
    assert framed == [], framed
    scene = PLANTVILLAGE / "Strawberry___Leaf_scorch" / "1ad2c944-a4cf-4c97-a31f-6265c0a927e1___RS_L.Scorch_9937.jpg"
    assert leaf_region(Image.open(scene).convert("RGB")) is None
    # The far leaves of the benchmark, on their plain sheet, are still framed (the test above).
    assert leaf_region(farther(real_leaves(1)[0], 0.45)) is not None
