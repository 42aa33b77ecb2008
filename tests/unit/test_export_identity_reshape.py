"""train/export.drop_identity_reshapes: tf2onnx folds a Reshape that changes nothing, or not, by the order it meets
the graph's nodes, which varies from process to process: the same weights gave two model.onnx files, one with a
Reshape [-1, 1152, 1, 1] more (tests/integration/test_train_repeats.py failed so on CI). With such Reshapes dropped,
the two are the same bytes; a Reshape that changes the shape stays."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from leafdoc.train.export import canonical_names, drop_identity_reshapes


def model(extra_reshape: bool):
    """image (N, 8, 1, 1) -> Relu -> [Reshape to -1, 8, 1, 1] -> Sigmoid -> Reshape to (N, 8) -> out."""
    nodes = [helper.make_node("Relu", ["image"], ["a"])]
    if extra_reshape:
        nodes.append(helper.make_node("Reshape", ["a", "same"], ["a2"]))
    nodes += [
        helper.make_node("Sigmoid", ["a2" if extra_reshape else "a"], ["b"]),
        helper.make_node("Reshape", ["b", "flat"], ["out"]),
    ]
    inits = [numpy_helper.from_array(np.array([-1, 8], np.int64), "flat")]
    if extra_reshape:
        inits.append(numpy_helper.from_array(np.array([-1, 8, 1, 1], np.int64), "same"))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 8, 1, 1])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 8])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_a_reshape_that_changes_nothing_is_dropped_and_the_model_is_the_same_bytes():
    with_it = canonical_names(drop_identity_reshapes(model(True)))
    without = canonical_names(drop_identity_reshapes(model(False)))
    assert with_it.SerializeToString() == without.SerializeToString()
    assert [n.op_type for n in with_it.graph.node] == ["Relu", "Sigmoid", "Reshape"]  # the flattening one stays
    assert [i.name for i in with_it.graph.initializer] == [i.name for i in without.graph.initializer]  # "same" gone
    onnx.checker.check_model(with_it)
    x = np.random.default_rng(0).normal(size=(3, 8, 1, 1)).astype(np.float32)
    want = ort.InferenceSession(model(True).SerializeToString()).run(None, {"image": x})[0]
    got = ort.InferenceSession(with_it.SerializeToString()).run(None, {"image": x})[0]
    assert np.array_equal(want, got) and got.shape == (3, 8)


def test_a_reshape_that_changes_the_shape_is_kept():
    m = model(True)
    m.graph.initializer[1].CopyFrom(numpy_helper.from_array(np.array([-1, 4, 2, 1], np.int64), "same"))
    assert [n.op_type for n in drop_identity_reshapes(m).graph.node] == ["Relu", "Reshape", "Sigmoid", "Reshape"]
