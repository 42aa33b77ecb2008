"""The faster photo preparation (issue 57) measures exactly what the old one did (tests/prep_reference.py), on real
photos: the sheet's distance map and split, the sheet's colour, the leaf's box, and the quality checks' verdicts,
also on photos made dark, bright, blurred or of one colour so that refusals are compared too."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter
from tests import prep_reference as old
from tests.conftest import SHARED

from leafdoc.imaging import leafcut
from leafdoc.imaging.quality import check_photo

pytestmark = pytest.mark.unit


def real_photos() -> list[Image.Image]:
    """Every 60th PlantVillage photo (75, all classes) and every 12th field photo (36, shrunk to 1024 px at most,
    which still takes the quality checks' own thumbnail)."""
    pv = sorted((SHARED / "plantvillage").glob("*/*.jpg"))
    field = sorted(p for d in ("field-corn", "field-mixed") for p in (SHARED / d).rglob("*") if p.is_file())
    if not pv or not field:
        pytest.skip(f"shared photos not found at {SHARED}")
    photos = []
    for path in pv[::60] + field[::12]:
        with Image.open(path) as img:
            img.draft("RGB", (1024, 1024))
            img = img.convert("RGB")
            img.thumbnail((1024, 1024))
            photos.append(img)
    return photos


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    return real_photos()


def test_quantiles_from_histograms_are_numpys():
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 10, 999, 6000):
        values = rng.integers(0, 256, n) if n > 3 else rng.integers(100, 103, n)
        hist = np.bincount(values, minlength=256)
        for q in (0.0, 0.05, 0.4, 0.5, 0.95, 1.0):
            assert leafcut.hist_quantile(hist, q) == pytest.approx(float(np.quantile(values, q)), abs=1e-9), (n, q)


def test_the_sheet_and_the_leaf_are_measured_as_before(photos):
    """At the leaf search's size (96 px) and the model's (160 px): the same distances to the bit, the same split,
    the same sheet colour and the same leaf box, on every photo."""
    boxes = colours = 0
    for img in photos:
        for side in (96, 160):
            rgb = np.asarray(img.resize((side, side), Image.Resampling.BILINEAR))
            dist, split = leafcut.sheet_distance(rgb)
            dist_old, split_old = old.sheet_distance(rgb)
            assert split == split_old and np.array_equal(dist, dist_old)
            colour, colour_old = leafcut.sheet_colour(rgb), old.sheet_colour(rgb)
            assert (colour is None) == (colour_old is None)
            if colour is not None:
                assert colour.dtype == colour_old.dtype and np.array_equal(colour, colour_old)
                colours += 1
            box = leafcut.leaf_box(rgb, max_border=1.0)
            assert box == old.leaf_box(rgb, max_border=1.0)
            boxes += box is not None
    # Not vacuous: most lab photos show a sheet, and a leaf is cut out of many.
    assert colours > len(photos) and boxes > len(photos) // 2, (colours, boxes)


def spoilt(img: Image.Image) -> list[Image.Image]:
    """The photo as taken, made too dark, over-exposed, blurred, nearly one colour, black and white, and small."""
    flat = Image.new("RGB", img.size, (80, 144, 48))  # mid-level in each channel's coarse level (32 wide)
    return [
        img,
        ImageEnhance.Brightness(img).enhance(0.12),
        Image.blend(img, Image.new("RGB", img.size, (255, 255, 255)), 0.93),
        img.filter(ImageFilter.GaussianBlur(max(img.size) / 60)),
        Image.blend(img, flat, 0.95),
        img.convert("L").convert("RGB"),
        img.resize((48, 40)),
    ]


def test_the_quality_checks_give_the_verdicts_they_gave(photos):
    """The same problems, in the same order, with the same messages, for each photo as taken and spoilt four ways;
    with a model size that makes the smallest photos too small as well."""
    refused: set[str] = set()
    for img in photos[::2]:
        for variant in spoilt(img):
            for size in (96, 300):
                now, before = check_photo(variant, size), old.check_photo(variant, size)
                assert now == before, (img.size, size, now, before)
                refused.update(p.code for p in now)
    assert refused == {"too_small", "too_dark", "too_bright", "blurred", "one_colour", "no_colour"}, refused
