"""The model the offline page downloads (offline/halve.py): half the bytes, a valid ONNX model, and the answers,
features and heat maps of the model it was made from."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from tests.conftest import PLANTVILLAGE, SHARED

from leafdoc.offline.halve import SUFFIX, NotAModel, answers_alike, half_weights

STARTER = Path(__file__).resolve().parents[2] / "models" / "starter"


def run(model: bytes, x: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {session.get_inputs()[0].name: x}), strict=True))


def test_the_starter_halved_answers_as_the_starter_on_lab_and_field_photos():
    from leafdoc.inference.predictor import Predictor

    whole = (STARTER / "model.onnx").read_bytes()
    half = half_weights(whole)
    assert len(half) < 0.6 * len(whole), (len(half), len(whole))
    model = onnx.load_from_string(half)
    onnx.checker.check_model(model)
    kinds = {i.name: i.data_type for i in model.graph.initializer}
    halved = [n for n, t in kinds.items() if t == TensorProto.FLOAT16]
    assert len(halved) > 50 and all(n.endswith(SUFFIX.decode()) for n in halved), halved[:3]
    # the stem's convolution, the first weights the network uses, stays float32 (where rounding costs most)
    first = next(i for n in model.graph.node if n.op_type != "Cast" for i in n.input if i in kinds)
    assert kinds[first] == TensorProto.FLOAT, first

    photos = sorted(PLANTVILLAGE.glob("*/*")) + sorted((SHARED / "field-corn").rglob("*.jp*g"))
    random.Random(0).shuffle(photos)
    predictor = Predictor(STARTER)
    x = np.stack([predictor.preprocess(p) for p in photos[:60]]).astype(np.float32)
    a, b = run(whole, x), run(half, x)
    assert np.array_equal(a["probabilities"].argmax(1), b["probabilities"].argmax(1))
    assert np.abs(a["probabilities"] - b["probabilities"]).max() < 0.005
    moved = np.linalg.norm(a["features"] - b["features"], axis=1) / np.linalg.norm(a["features"], axis=1)
    assert moved.max() < 0.01, moved.max()
    # the heat map of the top answer, on its 0-1 scale as the page draws it: within 1%
    for i, k in enumerate(a["probabilities"].argmax(1)):
        u, v = np.maximum(a["cam"][i, ..., k], 0), np.maximum(b["cam"][i, ..., k], 0)
        if u.max() > 0:
            assert np.abs(u / u.max() - v / v.max()).max() < 0.01, photos[i]


def _tiny(weights_as_floats: bool) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w1 = rng.normal(size=(8, 32)).astype(np.float32)  # the first used: kept at float32 with keep_share > 0
    w2 = rng.normal(size=(32, 16)).astype(np.float32) / 3
    w3 = rng.normal(size=(16, 4)).astype(np.float32)
    small = rng.normal(size=(4,)).astype(np.float32)  # under 16 values: kept
    fed = rng.normal(size=(4, 4)).astype(np.float32)  # also a graph input (older models): kept
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (w2, "w2"), (w3, "w3"), (small, "b"), (fed, "f"))]
    if weights_as_floats:  # float_data instead of raw_data
        inits[2] = helper.make_tensor("w3", TensorProto.FLOAT, w3.shape, w3.ravel().tolist())
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h1"]),
        helper.make_node("MatMul", ["h1", "w2"], ["h2"]),
        helper.make_node("MatMul", ["h2", "w3"], ["h3"]),
        helper.make_node("Add", ["h3", "b"], ["h4"]),
        helper.make_node("MatMul", ["h4", "f"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 8]),
            helper.make_tensor_value_info("f", TensorProto.FLOAT, [4, 4]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("weights_as_floats", [False, True], ids=["raw_data", "float_data"])
def test_each_weight_is_rounded_to_half_precision_and_cast_back(weights_as_floats):
    model = _tiny(weights_as_floats)
    half = onnx.load_from_string(half_weights(model.SerializeToString(), keep_share=0.2))
    onnx.checker.check_model(half)
    kinds = {i.name: i.data_type for i in half.graph.initializer}
    assert kinds == {
        "w1": TensorProto.FLOAT,  # the first fifth of the weights the network uses
        "w2" + SUFFIX.decode(): TensorProto.FLOAT16,
        "w3" + SUFFIX.decode(): TensorProto.FLOAT16,
        "b": TensorProto.FLOAT,
        "f": TensorProto.FLOAT,
    }, kinds
    # the network computes with the weights rounded to half precision, and nothing else changed
    rounded = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for name in ("w2", "w3"):
        rounded[name] = rounded[name].astype(np.float16).astype(np.float32)
    x = np.random.default_rng(1).normal(size=(5, 8)).astype(np.float32)
    expected = ((x @ rounded["w1"] @ rounded["w2"] @ rounded["w3"]) + rounded["b"]) @ rounded["f"]
    got = ort.InferenceSession(half.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        ["y"], {"x": x, "f": rounded["f"]}
    )[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert not np.allclose(rounded["w2"], numpy_helper.to_array(model.graph.initializer[1]), rtol=0, atol=1e-6)


@pytest.mark.parametrize("data", [b"\xff\xff\xff\xff", b"", b"\x08\x07"], ids=["garbage", "empty", "no graph"])
def test_bytes_that_are_not_a_model_are_said_to_be_so(data):
    with pytest.raises(NotAModel):
        half_weights(data)


def _model_of(inits: list, nodes: list) -> bytes:
    graph = helper.make_graph(
        nodes,
        "odd",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def test_models_that_serve_but_half_precision_does_not_hold_are_left_as_they_are():
    """The security review of session 73: a weight of 1e5 became infinite in half precision (the float model gave
    1.2e6, the halved one inf); an unused constant of 66 bytes, a name that is not UTF-8 (names are now compared as
    bytes, never decoded) and float_data written as varints made the halving raise (and /app answer 500 on every
    visit). Each such constant is now left as it is."""
    rng = np.random.default_rng(0)
    big = numpy_helper.from_array((rng.normal(size=(4, 4)) * 1e5).astype(np.float32), "big")
    fine = numpy_helper.from_array(rng.normal(size=(4, 4)).astype(np.float32), "fine")
    odd_bytes = TensorProto(name="odd", data_type=TensorProto.FLOAT, dims=[16], raw_data=b"\0" * 66)
    nodes = [helper.make_node("MatMul", ["x", "fine"], ["h"]), helper.make_node("MatMul", ["h", "big"], ["y"])]
    model = _model_of([fine, big], nodes)
    half = onnx.load_from_string(half_weights(model, keep_share=0))
    kinds = {i.name: i.data_type for i in half.graph.initializer}
    assert kinds == {"fine" + SUFFIX.decode(): TensorProto.FLOAT16, "big": TensorProto.FLOAT}, kinds
    x = rng.normal(size=(3, 4)).astype(np.float32)
    got = ort.InferenceSession(half.SerializeToString(), providers=["CPUExecutionProvider"]).run(["y"], {"x": x})[0]
    assert np.isfinite(got).all()
    # an unused constant of 66 bytes (not whole float32s): left as it is, the rest halved
    weird = _model_of([fine, big, odd_bytes], nodes)
    kinds = {i.name: i.data_type for i in onnx.load_from_string(half_weights(weird, keep_share=0)).graph.initializer}
    assert kinds["odd"] == TensorProto.FLOAT and kinds["fine" + SUFFIX.decode()] == TensorProto.FLOAT16
    # float_data written as varints (wire type 0) instead of floats: left as it is
    varints = bytes([0x08, 0x04, 0x10, 0x01]) + bytes([0x20, 0x01]) * 4 + bytes([0x42, 0x01]) + b"v"
    assert half_weights(_model_of([], [helper.make_node("Identity", ["x"], ["y"])]))  # no weights: nothing to do
    from leafdoc.offline import halve

    assert halve._float_weights(halve._fields(varints)) is None


def test_a_halved_model_is_sent_only_if_it_answers_as_the_serving_one():
    from leafdoc.inference.predictor import Predictor

    predictor = Predictor(STARTER)
    half = half_weights((STARTER / "model.onnx").read_bytes())
    assert answers_alike(half, predictor)
    # a serving model that answers otherwise (its probabilities the other way round): the halved copy is not sent

    class Otherwise:
        size = predictor.size

        def predict_arrays(self, x, outputs):
            return {"probabilities": predictor.predict_arrays(x, outputs)["probabilities"][:, ::-1]}

    assert not answers_alike(half, Otherwise())
