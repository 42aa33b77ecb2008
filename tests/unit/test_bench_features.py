"""The probes' feature extractor (benchmarks/lite0.py, used by lab_resample.py, lab_heads.py and field_curve.py)
gives the pooled features `leafdoc train`'s head learns from: the same numbers as the model's own pooling layer, and
with another pooling the map that layer reads. It broke once, silently, when the trainer's feature network changed
shape: the probes then died before their first figure."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.unit

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import lite0  # noqa: E402


@pytest.fixture(scope="module")
def model():
    net, cfg, _ = lite0.model_and_preparation(weights="none", image_size=32)
    return net


def test_features_are_the_models_pooled_features(model):
    import keras

    x = np.random.default_rng(0).uniform(0, 255, (5, 32, 32, 3)).astype(np.float32)
    got = lite0.features(model, x)
    pool = keras.Model(model.input, model.get_layer("pool").output)
    want = np.asarray(pool(x, training=False))
    assert got.shape == want.shape == (5, want.shape[1])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert np.ptp(got, axis=0).max() > 0  # the photos differ, so do their features


def test_other_pooling_reads_the_map_the_pooling_layer_reads(model):
    x = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    avg = lite0.features(model, x)
    mx, mean = lite0.features(model, x, pool=lambda m: (m.max((1, 2)), m.mean((1, 2))))  # one pass over the map
    assert mx.shape == avg.shape
    assert np.all(mx >= avg - 1e-5)  # a map's maximum is never under its mean
    np.testing.assert_allclose(mean, avg, rtol=1e-4, atol=1e-5)
