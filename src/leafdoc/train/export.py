"""Export: the trained Keras model -> model.keras (no optimizer state) and model.onnx with four
outputs (probabilities, logits, pooled features, class activation maps), or .tflite.

The CAM output is the dense head applied at every cell of the last feature map, so the serving
path gets Grad-CAM-equivalent heat maps for a pooling + dense head without TensorFlow. With hidden
dense layers (`head_units`) the whole head is applied per cell: still a heat map of the class's
evidence, but no longer exactly Grad-CAM (the head is not linear).
"""

from __future__ import annotations

from pathlib import Path

from leafdoc.core.errors import ModelError

ONNX_OPSET = 17
BIG_WEIGHTS = 32e6  # bytes; above this, garbage is collected after every ONNX optimizer pass


def save_keras(model, path: Path) -> None:
    import keras

    # Rebuilt from its config, the model is uncompiled: the file holds no optimizer slots (which
    # would triple its size). clone_model is not enough: Keras 3 carries the optimizer over.
    clean = keras.Model.from_config(model.get_config())
    clean.set_weights(model.get_weights())
    clean.save(str(path))


def serving_model(model):
    """A Keras model with the four serving outputs, sharing the trained layers."""
    import keras

    feats = model.get_layer("pool").input
    pooled = model.get_layer("pool").output
    logits = model.get_layer("logits").output
    probs = model.get_layer("probabilities").output
    # Hidden head layers (TrainConfig.head_units) act on the last axis, so they too apply per cell;
    # dropout is the identity at inference and is skipped.
    x = feats
    for layer in model.layers:
        if layer.name.startswith("head_dense"):
            x = layer(x)
    cam = model.get_layer("logits")(x)
    return keras.Model(
        model.inputs,
        {"probabilities": probs, "logits": logits, "features": pooled, "cam": cam},
        name="serving",
    )


def _serving_function(model, size: int):
    import tensorflow as tf

    serving = serving_model(model)

    @tf.function(input_signature=[tf.TensorSpec((None, size, size, 3), tf.float32, name="image")])
    def serve(image):
        out = serving(image, training=False)
        return {k: tf.identity(out[k], name=k) for k in ("probabilities", "logits", "features", "cam")}

    return serve


def export_onnx(model, path: Path, size: int) -> Path:
    """tf2onnx's from_function, done in its documented steps (freeze, convert, optimize, save) so that
    garbage is collected after each optimizer pass: every pass leaves a copy of all the weights in
    reference cycles that Python's collector, with TensorFlow's millions of objects alive, would not
    reach for a long time. Measured on ResNet50 (94 MB of weights): a 9.8 GB peak through from_function,
    3.0 GB this way; models under BIG_WEIGHTS are collected once at the end. An optimizer pass that
    fails is skipped, as from_function does."""
    import gc

    import tensorflow as tf
    from tf2onnx import optimizer, tf_loader
    from tf2onnx.convert import tensor_names_from_structed
    from tf2onnx.graph import GraphUtil
    from tf2onnx.tfonnx import process_tf_graph
    from tf2onnx.utils import save_protobuf

    # Everything alive before the export (TensorFlow, Keras, a long-lived process's earlier models) is set
    # aside from the collector while it runs, so each collection below scans only what the export made:
    # a full collection over a big process's heap takes seconds, and ResNet50's export does 38 of them.
    gc.collect(0)
    gc.freeze()
    try:
        fn = _serving_function(model, size).get_concrete_function()
        inputs = [t.name for t in fn.inputs if t.dtype != tf.dtypes.resource]
        outputs = [t.name for t in fn.outputs if t.dtype != tf.dtypes.resource]
        with tf.device("/cpu:0"):
            frozen = tf_loader.from_function(fn, inputs, outputs)
        with tf.Graph().as_default() as graph:
            tf.import_graph_def(frozen, name="")
            del frozen
            onnx_graph = process_tf_graph(
                graph,
                continue_on_error=True,
                opset=ONNX_OPSET,
                input_names=inputs,
                output_names=outputs,
                tensors_to_rename=tensor_names_from_structed(fn, inputs, outputs),
            )
        gc.collect()
        passes = optimizer._get_optimizers()
        if model.count_params() * 4 > BIG_WEIGHTS:
            passes = {name: _collecting(factory) for name, factory in passes.items()}
        onnx_graph = optimizer.optimize_graph(onnx_graph, catch_errors=True, optimizers=passes)
        model_proto = onnx_graph.make_model(f"leafdoc {model.name}")
        del onnx_graph
        # tf2onnx's passes meet the nodes in an order that varies by process (sets hashed by address): about one
        # export in six left the heat map's Reshape with its shape computed (Shape, Gather, ReduceProd, Concat)
        # where the others fold it to [-1, C], so one training gave model.onnx files of two sizes (CI, session 71).
        # Optimizing the made model once more folds it in every export.
        model_proto = GraphUtil.optimize_model_proto(model_proto, catch_errors=True, optimizers=passes)
        save_protobuf(str(path), canonical_names(drop_identity_reshapes(model_proto)))
        del model_proto
        gc.collect()
    finally:
        gc.unfreeze()
    return Path(path)


def drop_identity_reshapes(model):
    """The ONNX model without the Reshapes that change nothing: a constant shape that keeps every known size of its
    input and leaves only an unknown one (the batch) to -1, such as [-1, 1152, 1, 1] on a (N, 1152, 1, 1) tensor.
    tf2onnx's optimizer folds such a Reshape or not by the order it meets its nodes, which varies from process to
    process (sets of objects hashed by address): the same weights gave a model.onnx with one Reshape more, 44 bytes
    longer, in one run of two (tests/integration/test_train_repeats.py failed so on CI)."""
    from onnx import numpy_helper, shape_inference

    graph = model.graph
    shapes_of = {i.name: numpy_helper.to_array(i) for i in graph.initializer if len(i.dims) == 1}
    inferred = shape_inference.infer_shapes(model).graph
    sizes = {
        v.name: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
        for v in (*inferred.value_info, *inferred.input)
    }
    outputs = {v.name for v in graph.output}

    def changes_nothing(node) -> bool:
        if node.op_type != "Reshape" or node.output[0] in outputs or node.input[1] not in shapes_of:
            return False
        target, size = shapes_of[node.input[1]].tolist(), sizes.get(node.input[0])
        if size is None or len(size) != len(target) or target.count(-1) > 1:
            return False
        return all(t == s or (t == -1 and s is None) for t, s in zip(target, size, strict=True))

    same = {node.output[0]: node.input[0] for node in graph.node if changes_nothing(node)}
    if not same:
        return model
    _keep(graph.node, lambda node: node.output[0] not in same)
    for node in graph.node:
        node.input[:] = [same.get(name, name) for name in node.input]
    used = {name for node in graph.node for name in node.input}
    _keep(graph.initializer, lambda entry: entry.name in used)
    _keep(graph.value_info, lambda entry: entry.name not in same)
    return model


def _keep(entries, keep) -> None:
    """A protobuf repeated field with only the entries `keep` says (copied, as `_reorder` does)."""
    copies = []
    for entry in entries:
        if keep(entry):
            copies.append(type(entry)())
            copies[-1].CopyFrom(entry)
    del entries[:]
    entries.extend(copies)


def canonical_names(model):
    """The ONNX model with its nodes and inner tensors named by their place in the graph (`Conv_12`, `t345`), and its
    weights and shape records in the order the nodes first use them; the inputs and outputs keep their names. tf2onnx
    names the constants it folds in an order Python's string hashes set, so the same weights gave a model.onnx of
    other bytes (another sha256) in every process; named by place, the same model is the same file. A graph with
    subgraphs (If, Loop) is left as it is."""
    from onnx import AttributeProto

    graph = model.graph
    if any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) for n in graph.node for a in n.attribute):
        return model
    kept = {v.name for v in graph.input} | {v.name for v in graph.output}
    names: dict[str, str] = {}

    def rename(name: str) -> str:
        if not name or name in kept:
            return name
        return names.setdefault(name, f"t{len(names)}")

    for i, node in enumerate(graph.node):
        node.name = f"{node.op_type}_{i}"
        node.input[:] = [rename(name) for name in node.input]
        node.output[:] = [rename(name) for name in node.output]
    for entries in (graph.initializer, graph.value_info):
        for entry in entries:
            entry.name = rename(entry.name)
        _reorder(entries, key=lambda e: int(e.name[1:]) if e.name[1:].isdigit() else -1)
    # The unknown sizes tf2onnx numbers as it goes (`unk__635`): numbered again in the order they appear.
    dims: dict[str, str] = {}
    for value in (*graph.input, *graph.output, *graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param.startswith("unk__"):
                dim.dim_param = dims.setdefault(dim.dim_param, f"unk__{len(dims)}")
    return model


def _reorder(entries, key) -> None:
    """A protobuf repeated field sorted in place by `key`."""
    ordered = sorted(entries, key=key)
    copies = [type(e)() for e in ordered]
    for copy, entry in zip(copies, ordered, strict=True):
        copy.CopyFrom(entry)
    del entries[:]
    entries.extend(copies)


def _collecting(factory):
    """An optimizer pass that collects garbage when it is done."""
    import gc

    class Pass(factory):
        def optimize(self, graph, iteration):
            try:
                return super().optimize(graph, iteration)
            finally:
                gc.collect()

    return Pass


def export_tflite(model, path: Path, size: int) -> Path:
    """The serving model as a float32 .tflite with one signature, `serving_default`: input `image` (raw RGB
    0-255, N x size x size x 3), outputs `probabilities`, `logits`, `features`, `cam` as in model.onnx.

    The route is Keras 3's own: an ExportArchive (a SavedModel that holds the variables) read by
    `TFLiteConverter.from_saved_model`. `from_concrete_functions(fns, model)` does not work with Keras 3:
    the converter saves `model` as a SavedModel first, Keras 3 layers do not hand their variables to
    tf.saved_model, so the weights were left out (191 KB for the starter) and read back as NaN."""
    import tempfile

    import keras
    import tensorflow as tf

    from leafdoc.core.atomic import atomic_write_bytes

    serving = serving_model(model)

    def serve(image):
        out = serving(image, training=False)
        return {k: out[k] for k in TFLITE_OUTPUTS}

    archive = keras.export.ExportArchive()
    archive.track(serving)
    archive.add_endpoint(
        "serving_default", serve, input_signature=[tf.TensorSpec((None, size, size, 3), tf.float32, name="image")]
    )
    with tempfile.TemporaryDirectory(prefix="leafdoc-tflite-") as tmp:
        archive.write_out(tmp, verbose=False)
        flat = tf.lite.TFLiteConverter.from_saved_model(tmp).convert()
    atomic_write_bytes(Path(path), _name_tensors(flat))
    return Path(path)


TFLITE_OUTPUTS = ("probabilities", "logits", "features", "cam")


def _name_tensors(flat: bytes) -> bytes:
    """Give the input and output tensors their signature names (`image`, `probabilities`, ...): the
    converter names them after graph nodes (`serving_default_image:0`, `StatefulPartitionedCall:0..3`),
    and tools that list a .tflite's tensors (Netron, Android Studio's model binding) show those."""
    from tensorflow.lite.tools import flatbuffer_utils

    fb = flatbuffer_utils.read_model_from_bytearray(bytearray(flat))
    for sig in fb.signatureDefs or []:
        tensors = fb.subgraphs[sig.subgraphIndex].tensors
        for io in list(sig.inputs or []) + list(sig.outputs or []):
            tensors[io.tensorIndex].name = io.name
    return flatbuffer_utils.convert_object_to_bytearray(fb)


def load_keras(model_dir: Path):
    import keras

    import leafdoc.train.backbones  # noqa: F401  (registers custom layers)

    path = Path(model_dir) / "model.keras"
    if not path.is_file():
        raise ModelError(
            f"{model_dir}: model.keras is missing.",
            hint="Exporting needs the Keras model; re-train.",
        )
    return keras.saving.load_model(path, compile=False)


def export(model_dir: Path, fmt: str) -> Path:
    """`leafdoc export MODEL_DIR --format onnx|tflite`: (re)write the export from model.keras."""
    from leafdoc.core.atomic import atomic_write_bytes
    from leafdoc.modelfolder import CARD_FILE, check_model_dir, read_card

    model_dir = check_model_dir(Path(model_dir), (CARD_FILE,))
    card = read_card(model_dir)
    if card.input is None:
        raise ModelError(f"{model_dir}/{CARD_FILE}: it says nothing of the model's input (no `input`).")
    size = card.input.size
    model = load_keras(model_dir)
    if fmt == "onnx":
        tmp = model_dir / ".model.onnx.tmp"
        export_onnx(model, tmp, size)
        atomic_write_bytes(model_dir / "model.onnx", tmp.read_bytes())
        tmp.unlink()
        return model_dir / "model.onnx"
    if fmt == "tflite":
        return export_tflite(model, model_dir / "model.tflite", size)
    raise ModelError(
        f"unknown export format {fmt!r}.", hint="Use onnx or tflite here (onnx-int8 and onnx-fp16: `leafdoc export`)."
    )
