"""Predictor.predict_arrays takes (N, S, S, 3) raw RGB 0-255 and refuses anything else with a leafdoc error that says
what the model takes and how to make it: photos scaled to 0-1 gave another answer without a word, and an array
without the batch axis, of another size or channels first gave ONNX Runtime's `[ONNXRuntimeError] INVALID_ARGUMENT`."""

from __future__ import annotations

import numpy as np
import pytest
from tests.conftest import fresh_photos

from leafdoc.core.errors import ImageError, LeafdocError
from leafdoc.inference.predictor import Predictor


@pytest.fixture(scope="module")
def predictor(tiny_model) -> Predictor:
    return Predictor(tiny_model)


@pytest.fixture(scope="module")
def photos(predictor) -> np.ndarray:
    """Real photos as the model takes them: preprocess's (S, S, 3) arrays, stacked."""
    return np.stack([predictor.preprocess(path) for path, _ in fresh_photos(n=2)])


def test_the_documented_input_is_answered_the_same_in_uint8_and_float(predictor, photos):
    s = predictor.size
    assert photos.shape == (6, s, s, 3) and photos.max() > 1
    as_uint8 = predictor.predict_arrays(photos.astype(np.uint8))["probabilities"]
    as_float = predictor.predict_arrays(photos.astype(np.float32))["probabilities"]
    assert as_uint8.shape == (6, len(predictor.labels))
    np.testing.assert_allclose(as_uint8, as_float, atol=1e-5)
    assert predictor.predict_arrays(np.zeros((0, s, s, 3), np.uint8))["probabilities"].shape[0] == 0


def test_photos_scaled_to_0_1_are_refused_not_answered_differently(predictor, photos):
    scaled = photos.astype(np.float32) / 255.0
    with pytest.raises(ImageError) as caught:
        predictor.predict_arrays(scaled)
    text = str(caught.value)
    assert "within 0-1" in text and "values 0-255" in text
    assert "x * 255" in text and "Predictor.preprocess(path)" in text


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda x: x[0], "without the batch axis: pass x[None]"),
        (lambda x: x.transpose(0, 3, 1, 2), "channels first (NCHW): pass x.transpose(0, 2, 3, 1)"),
        (lambda x: np.zeros((2, 224, 224, 3), np.uint8) + 100, "photos of 224 x 224 pixels, not the {s} x {s}"),
        (lambda x: x[..., :1], "1 channels, not RGB's 3"),
        (lambda x: x.astype(str), "not numbers"),
        (lambda x: x.astype(np.float32) - 128, "outside 0-255"),
    ],
    ids=["no-batch-axis", "nchw", "other-size", "grey", "strings", "centred"],
)
def test_wrong_shapes_and_types_say_what_the_model_takes(predictor, photos, make, says):
    s = predictor.size
    with pytest.raises(ImageError) as caught:
        predictor.predict_arrays(make(photos))
    err = caught.value
    assert isinstance(err, LeafdocError) and "ONNXRuntimeError" not in str(err)
    assert says.format(s=s) in err.message
    assert f"shape (N, {s}, {s}, 3)" in err.message and "values 0-255" in err.message
    assert "Predictor.preprocess(path)" in err.hint
