"""The not-a-leaf scorer on its own: fit, save, load, and scores that stay finite and ordered."""

from __future__ import annotations

import numpy as np

from leafdoc.inference.ood import OodScorer, calibrate, fit_weights


def data(n: int, d: int = 1280, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    feats = rng.normal(size=(n, d)).astype(np.float32) + y[:, None]
    images = np.clip(rng.normal(90, 20, (n, 32, 32, 3)), 0, 255).astype(np.uint8)
    images[..., 1] = 160  # green photos
    return feats, y, images


def test_tiny_training_set_survives_save_and_load(tmp_path):
    feats, y, images = data(12)  # far fewer photos than features: a nearly singular covariance
    scorer = OodScorer.fit(feats, y, images)
    scorer.save(tmp_path / "ood.npz")
    loaded = OodScorer.load(tmp_path / "ood.npz")
    assert np.isfinite(loaded.components(feats, images)).all()
    assert np.allclose(loaded.components(feats, images), scorer.components(feats, images), rtol=1e-3, atol=1e-3)


def test_strange_photos_score_higher_and_calibration_refuses_them(tmp_path):
    feats, y, images = data(600)
    scorer = OodScorer.fit(feats[:400], y[:400], images[:400])
    val = (feats[400:], images[400:])
    rng = np.random.default_rng(1)
    odd = (rng.normal(5, 3, size=(100, 1280)).astype(np.float32), np.full((100, 32, 32, 3), 200, np.uint8))
    section = calibrate(scorer, val, odd, ["made-up"], target=0.01)
    assert section["val_refused"] <= 0.011 and section["nonleaf_refused"] >= 0.95
    scorer.save(tmp_path / "ood.npz")
    assert OodScorer.load(tmp_path / "ood.npz").feat_whiten.dtype == np.float32  # loaded as float32 for scoring


def test_weights_equal_without_examples():
    assert fit_weights(np.zeros((50, 2)), None)[0] == [1.0, 1.0]
