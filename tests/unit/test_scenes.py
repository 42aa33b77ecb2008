"""The scene measure's examples (inference/scenes.py), on real photos: the same leaf, pixel for pixel, on a plain
background and in a real field scene; photos with no leaf to cut are passed over; the measure fitted on such
examples tells new ones apart."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from tests.conftest import PLANTVILLAGE, SHARED

from leafdoc.imaging import leafcut
from leafdoc.imaging.photos import is_image_name, load_array
from leafdoc.inference import scenes

CLASSES = ["Apple___Apple_scab", "Cherry_(including_sour)___Powdery_mildew", "Pepper,_bell___healthy",
           "Potato___Early_blight", "Strawberry___healthy", "Tomato___Bacterial_spot"]  # fmt: skip
FIELD = SHARED / "field-corn"


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    if not PLANTVILLAGE.is_dir():
        pytest.skip(f"PlantVillage not found at {PLANTVILLAGE}")
    return np.stack([load_array(sorted((PLANTVILLAGE / c).iterdir())[0], 160) for c in CLASSES])


@pytest.fixture(scope="module")
def field_scene() -> np.ndarray:
    if not FIELD.is_dir():
        pytest.skip(f"field-corn not found at {FIELD}")
    path = sorted(p for p in FIELD.rglob("*") if p.is_file() and is_image_name(p))[0]
    return load_array(path, 320)


def test_each_leaf_is_kept_and_only_its_background_changes(photos, field_scene):
    blank = np.full((2, 160, 160, 3), 128, np.uint8)  # no leaf to cut: passed over
    batch = np.concatenate([photos[:3], blank, photos[3:]])
    plain, scene, kept = scenes.make_examples(batch, [field_scene], np.random.default_rng(0))
    assert kept.tolist() == [0, 1, 2, 5, 6, 7] and plain.shape == scene.shape == (6, 160, 160, 3)
    on_sheet = sharp = 0
    for name, i, p, s in zip(CLASSES, kept, plain, scene, strict=True):
        x = batch[i]
        mask = leafcut.leaf_mask(x)
        inner = cv2.erode(mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)  # clear of the soft edge
        outer = ~cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        assert np.array_equal(s[inner], x[inner]) and np.array_equal(p[inner], x[inner]), name
        # In the scene: the field photo where the lab photo had its sheet, sharp or out of focus.
        assert np.abs(s[outer].astype(int) - x[outer].astype(int)).sum(axis=1).mean() > 30, name
        texture = np.abs(s.astype(np.float32) - cv2.blur(s.astype(np.float32), (5, 5)))[outer].mean()
        sheet = np.abs(x.astype(np.float32) - cv2.blur(x.astype(np.float32), (5, 5)))[outer].mean()
        sharp += texture > 2 * sheet
        if not np.array_equal(p, x):  # the plain example is the lab photo, or its leaf on a new plain sheet
            on_sheet += 1
            smooth = np.abs(p.astype(np.float32) - cv2.blur(p.astype(np.float32), (5, 5)))[outer].mean()
            assert smooth < 6, name
    assert 0 < on_sheet < 6  # both kinds of plain background are taught
    assert 0 < sharp < 6  # and scenes in focus and out of it


def test_a_seeded_run_repeats(photos, field_scene):
    once = scenes.make_examples(photos, [field_scene], np.random.default_rng(3))
    again = scenes.make_examples(photos, [field_scene], np.random.default_rng(3))
    assert all(np.array_equal(a, b) for a, b in zip(once, again, strict=True))


def test_too_few_examples_fit_no_measure():
    rng = np.random.default_rng(0)
    few = rng.normal(0, 1, (scenes.MIN_EXAMPLES - 1, 8))
    assert scenes.fit(few, few + 5) is None
    section = scenes.fit(rng.normal(0, 1, (200, 8)), rng.normal(0, 1, (200, 8)) + np.eye(8)[2] * 5)
    assert section["examples"] == 400 and section["examples_right"] > 0.95
    fresh = np.r_[rng.normal(0, 1, (500, 8)), rng.normal(0, 1, (500, 8)) + np.eye(8)[2] * 5]
    from leafdoc.inference.field import scene_scores

    said = scene_scores(fresh, section) > 0
    assert said[:500].mean() < 0.05 and said[500:].mean() > 0.95
