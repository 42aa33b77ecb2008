"""Background swap (train/backgrounds.py): on real PlantVillage photos the leaf is found, kept pixel for pixel,
and put on a new plain sheet; photos whose leaf cannot be found cleanly are left alone; a seeded run repeats."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from tests.conftest import PLANTVILLAGE

from leafdoc.imaging import leafcut
from leafdoc.imaging.photos import load_array
from leafdoc.train import backgrounds

CLASSES = ["Apple___Apple_scab", "Cherry_(including_sour)___Powdery_mildew", "Pepper,_bell___healthy",
           "Potato___Early_blight", "Strawberry___healthy", "Tomato___Bacterial_spot"]  # fmt: skip


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    if not PLANTVILLAGE.is_dir():
        pytest.skip(f"PlantVillage not found at {PLANTVILLAGE}")
    return np.stack([load_array(sorted((PLANTVILLAGE / c).iterdir())[0], 160) for c in CLASSES])


def leaf_coloured(rgb: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    return (hsv[..., 0] >= 15) & (hsv[..., 0] <= 95) & (hsv[..., 1] >= 60) & (hsv[..., 2] >= 40)


def test_the_leaf_is_found_on_real_lab_photos(photos):
    for name, x in zip(CLASSES, photos, strict=True):
        mask = leafcut.leaf_mask(x)
        colour = leaf_coloured(x)
        assert 0.15 <= mask.mean() <= 0.8, (name, mask.mean())
        assert colour[mask].mean() > 0.6, name  # what it keeps is leaf
        assert colour[~mask].mean() < 0.1, name  # what it replaces is sheet (and shadow)
        assert leafcut.solidity(mask) >= leafcut.MIN_SOLIDITY, name


def test_the_leaf_keeps_its_pixels_and_the_sheet_is_replaced_by_a_plain_one(photos):
    out = backgrounds.swap_backgrounds(photos, 1.0, np.random.default_rng(0))
    assert out.shape == photos.shape and out.dtype == np.uint8
    for name, x, y in zip(CLASSES, photos, out, strict=True):
        mask = leafcut.leaf_mask(x)
        inner = cv2.erode(mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)  # clear of the soft edge
        outer = ~cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        assert np.array_equal(y[inner], x[inner]), name
        changed = np.abs(y[outer].astype(int) - x[outer].astype(int)).sum(axis=1)
        assert np.mean(changed > 12) > 0.5, name  # a different sheet, not the old one
        local = cv2.blur(y.astype(np.float32), (5, 5))
        assert np.abs(y.astype(np.float32) - local)[outer].mean() < 6, name  # plain: no texture, no leaf
        assert leaf_coloured(y)[outer].mean() < 0.05, name


def test_only_the_share_asked_is_swapped_and_a_seeded_run_repeats(photos):
    assert backgrounds.swap_backgrounds(photos, 0.0, np.random.default_rng(0)) is photos
    batch = np.concatenate([photos] * 20)
    once = backgrounds.swap_backgrounds(batch, 0.3, np.random.default_rng(7))
    again = backgrounds.swap_backgrounds(batch, 0.3, np.random.default_rng(7))
    assert np.array_equal(once, again)
    swapped = np.mean([not np.array_equal(a, b) for a, b in zip(batch, once, strict=True)])
    assert 0.15 <= swapped <= 0.45, swapped


def test_a_photo_whose_leaf_cannot_be_found_is_left_alone(photos):
    full = np.full_like(photos[:1], 0)
    full[..., 1] = 160  # green to every edge: no sheet to find
    noise = np.random.default_rng(0).integers(0, 255, photos[:1].shape, dtype=np.uint8)
    for x in (full, noise):
        assert np.array_equal(backgrounds.swap_backgrounds(x, 1.0, np.random.default_rng(0)), x)
