"""The field-like composites of benchmarks/field_composites.py (benchmarks/composite.py): the leaf is cut from a
real PlantVillage photo (most of the leaf, little of the background), and pasted so that it covers the asked
share of the frame with its own pixels, the background showing everywhere else."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from tests.conftest import PLANTVILLAGE

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from composite import in_place, paste, place_leaf, segment_leaf, sheet  # noqa: E402

MAGENTA = np.array([230, 20, 230], np.uint8)


def _leaf_coloured(rgb: np.ndarray) -> np.ndarray:
    """Green, yellow or brown, saturated: what a leaf is and PlantVillage's grey/white/blue sheets are not."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    return (hsv[..., 0] >= 8) & (hsv[..., 0] <= 95) & (hsv[..., 1] >= 45) & (hsv[..., 2] >= 30)


def _synthetic_leaf(rng, axes=(70, 60)) -> tuple[np.ndarray, np.ndarray]:
    """An elliptic green leaf with a textured surface on a grey sheet, and its true mask."""
    rgb = np.full((160, 200, 3), 128, np.uint8)
    mask = np.zeros((160, 200), np.uint8)
    cv2.ellipse(mask, (100, 80), axes, 20, 0, 360, 1, -1)
    texture = np.clip(np.array([50, 150, 40]) + rng.normal(0, 12, (160, 200, 3)), 0, 255).astype(np.uint8)
    rgb[mask > 0] = texture[mask > 0]
    return rgb, mask.astype(bool)


@pytest.mark.parametrize("share", [0.3, 0.45, 0.6])
def test_pasted_leaf_covers_the_asked_share_with_its_own_pixels(share):
    rng = np.random.default_rng(1)
    leaf, mask = _synthetic_leaf(rng)
    size = 400
    placed = place_leaf(leaf, mask, size, share, rng)
    background = np.broadcast_to(MAGENTA, (size, size, 3)).copy()
    out = paste(background, placed)
    solid = placed.alpha >= 1.0
    assert abs(solid.mean() - share) < 0.02 and abs(placed.share - solid.mean()) < 1e-6
    # Under the mask: the leaf's own colours (its mean within a few levels), no trace of the background.
    assert np.abs(out[solid].mean(axis=0) - leaf[mask].mean(axis=0)).max() < 4
    assert (np.abs(out[solid].astype(int) - MAGENTA).sum(axis=1) < 120).mean() < 0.001
    # Away from the leaf (beyond the feathered edge): the background, untouched.
    assert (out[placed.alpha == 0] == MAGENTA).all() and (placed.alpha == 0).mean() > 1 - share - 0.05


def test_a_leaf_too_long_for_the_share_is_scaled_to_fit_whole_never_cut():
    rng = np.random.default_rng(2)
    leaf, mask = _synthetic_leaf(rng, axes=(85, 30))
    placed = place_leaf(leaf, mask, 300, 0.7, rng, rotate=False)
    ys, xs = np.nonzero(placed.alpha >= 1.0)
    ly, lx = np.nonzero(mask)
    assert 0.2 < placed.share < 0.7
    # The whole leaf is there: its outline keeps the leaf's proportions (a cut leaf would be squarer).
    aspect, frame_aspect = np.ptp(lx) / np.ptp(ly), np.ptp(xs) / np.ptp(ys)
    assert abs(frame_aspect - aspect) / aspect < 0.03


def test_in_place_keeps_the_leaf_and_replaces_only_the_background():
    rng = np.random.default_rng(3)
    leaf, mask = _synthetic_leaf(rng)
    out = paste(sheet(leaf.shape[:2], rng, None, MAGENTA), in_place(leaf, mask))
    assert (out[mask] == leaf[mask]).all()
    far = cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
    assert np.abs(out[far].astype(int).mean(axis=0) - MAGENTA).max() < 30


def test_segmentation_finds_most_of_real_plantvillage_leaves():
    """The first photo of every non-corn class: each mask a plausible leaf area that is mostly leaf-coloured and
    takes most of the leaf-coloured pixels; and, over the 26, nearly all leaf and nearly none of the sheet.
    (Leaf colour is a rough truth: whitish mildew and dark lesions are not "leaf-coloured", hence the medians.)"""
    if not PLANTVILLAGE.is_dir():
        pytest.skip(f"shared datasets not found at {PLANTVILLAGE}")
    from PIL import Image

    cv2.setRNGSeed(0)
    folders = [f for f in sorted(PLANTVILLAGE.iterdir()) if f.is_dir() and not f.name.startswith("Corn")]
    precision, recall = [], []
    for folder in folders:
        rgb = np.asarray(Image.open(sorted(folder.iterdir())[0]).convert("RGB"))
        mask, leafy = segment_leaf(rgb), _leaf_coloured(rgb)
        assert 0.15 <= mask.mean() <= 0.9, folder.name
        precision.append(leafy[mask].mean())
        recall.append(mask[leafy].mean())
        assert precision[-1] >= 0.6 and recall[-1] >= 0.4, folder.name
    assert len(folders) >= 20
    assert np.median(precision) >= 0.955 and np.median(recall) >= 0.93
