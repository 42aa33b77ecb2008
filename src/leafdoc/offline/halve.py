"""The model as the offline page downloads it: most of its weights in half precision, cast back to float32 as the
model loads, so that a phone downloads and keeps about half the bytes (the starter: 13.7 MB -> 7.6 MB) and then runs
the same float32 network (ONNX Runtime folds each Cast of a constant into a float32 constant as it loads a model).

Half precision rounds each weight to about three significant digits. The first tenth of the weights, in the order
the network uses them (the stem and first blocks: a small share of the bytes), is where that rounding costs most:
rounded there, it moves the heat map by up to 6% of its scale on a photo; kept at float32, by under 1%. So those stay
as they are (`KEEP_SHARE`). Measured on 400 PlantVillage and field photos (docs/phone.md): the same top answer on
all, none moved across the "not sure" threshold, the probabilities within 0.002, the features within 0.2%.

Written against the ONNX protobuf's wire format directly (ModelProto.graph, GraphProto.node and .initializer,
TensorProto's dims, data_type, float_data, name and raw_data), since the serving install does not carry the `onnx`
package; tests/unit/test_offline_halve.py checks the result with `onnx.checker` and against ONNX Runtime.
"""

from __future__ import annotations

import numpy as np

KEEP_SHARE = 0.1  # the share of the weights, first used first, kept at float32
SMALLEST = 16  # weights with fewer values are kept as they are: nothing to save
FLOAT, FLOAT16 = 1, 10  # TensorProto.DataType
SUFFIX = b"__half"  # the half-precision constant's name: the original name plus this
HALF_MAX = 65504.0  # the largest finite half-precision value

# field numbers, as onnx.proto has them
MODEL_GRAPH = 7
GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_INPUT = 1, 5, 11
TENSOR_DIMS, TENSOR_TYPE, TENSOR_FLOATS, TENSOR_NAME, TENSOR_RAW, TENSOR_LOCATION = 1, 2, 4, 8, 9, 14
NODE_INPUT, NODE_OUTPUT, NODE_NAME, NODE_OP, NODE_ATTRIBUTE = 1, 2, 3, 4, 5
ATTR_NAME, ATTR_INT, ATTR_TYPE, ATTR_TYPE_INT = 1, 3, 20, 2
VALUE_INFO_NAME = 1


class NotAModel(ValueError):
    """The bytes are not an ONNX model this reads."""


def _varint(data, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise NotAModel("a varint runs past the end")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def _fields(data) -> list[tuple[int, int, memoryview | int]]:
    """A message's fields in order: (number, wire type, value: a view of the bytes for length-delimited and fixed
    fields, not a copy: a model's weights are parsed without copying them; an int for a varint)."""
    data = memoryview(data)
    out, at = [], 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 2:
            size, at = _varint(data, at)
            value, at = data[at : at + size], at + size
            if len(value) != size:
                raise NotAModel("a field runs past the end")
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, at = data[at : at + size], at + size
        else:
            raise NotAModel(f"wire type {wire} is not used by ONNX")
        out.append((number, wire, value))
    return out


def _key(number: int, wire: int) -> bytes:
    return _encode_varint(number << 3 | wire)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _encode(fields: list[tuple[int, int, memoryview | bytes | int]]) -> bytes:
    out = bytearray()
    for number, wire, value in fields:
        out += _key(number, wire)
        if wire == 0:
            out += _encode_varint(int(value))
        elif wire == 2:
            out += _encode_varint(len(value)) + value
        else:
            out += value
    return bytes(out)


def _text(number: int, value: bytes) -> tuple[int, int, bytes]:
    return number, 2, value


def _cast_node(source: bytes, target: bytes) -> bytes:
    """A Cast node from `source` to float32 `target` (names as the model's bytes: never decoded)."""
    to = _encode([_text(ATTR_NAME, b"to"), (ATTR_INT, 0, FLOAT), (ATTR_TYPE, 0, ATTR_TYPE_INT)])
    return _encode(
        [
            _text(NODE_INPUT, source),
            _text(NODE_OUTPUT, target),
            _text(NODE_NAME, target + SUFFIX + b"_cast"),
            _text(NODE_OP, b"Cast"),
            (NODE_ATTRIBUTE, 2, to),
        ]
    )


def _float_weights(fields: list[tuple[int, int, memoryview | int]]) -> tuple[bytes, list[int], np.ndarray] | None:
    """(name, dims, values) of a float32 constant (a TensorProto's `_fields`) held in the model file itself that half
    precision holds (every value finite and within its range: a weight of 1e5 would become infinite); None for any
    other."""
    kind = [v for n, w, v in fields if n == TENSOR_TYPE and w == 0]
    if kind != [FLOAT] or any(n == TENSOR_LOCATION and v for n, _, v in fields):  # another type, or external data
        return None
    dims: list[int] = []
    for n, w, v in fields:
        if n == TENSOR_DIMS:
            if w == 0:
                dims.append(int(v))
            elif w == 2:  # packed
                at = 0
                while at < len(v):
                    d, at = _varint(v, at)
                    dims.append(d)
    names = [bytes(v) for n, w, v in fields if n == TENSOR_NAME and w == 2]
    raw = [v for n, w, v in fields if n == TENSOR_RAW and w == 2]
    floats = [v for n, w, v in fields if n == TENSOR_FLOATS and w in (2, 5)]  # packed, or one at a time
    if len(names) != 1 or any(n == TENSOR_FLOATS and w not in (2, 5) for n, w, _ in fields):
        return None
    if raw:
        if len(raw[0]) % 4:
            return None
        values = np.frombuffer(raw[0], dtype="<f4")
    elif floats:
        if any(len(v) % 4 for v in floats):
            return None
        values = np.concatenate([np.frombuffer(v, dtype="<f4") for v in floats])
    else:
        return None
    if any(d < 0 for d in dims) or values.size != int(np.prod(dims, dtype=np.int64)):
        return None
    if not np.isfinite(values).all() or np.abs(values).max(initial=0) > HALF_MAX:
        return None
    return names[0], dims, values


def _half_tensor(name: bytes, dims: list[int], values: np.ndarray) -> bytes:
    return _encode(
        [
            *((TENSOR_DIMS, 0, d) for d in dims),  # one at a time, as onnx.proto (proto2) writes them
            (TENSOR_TYPE, 0, FLOAT16),
            _text(TENSOR_NAME, name),
            (TENSOR_RAW, 2, values.astype("<f2").tobytes()),
        ]
    )


def _first_used(graph: list[tuple[int, int, memoryview | int]], names: set[bytes]) -> list[bytes]:
    """The constants among `names` in the order the graph's nodes first use them."""
    order, seen = [], set()
    for number, wire, value in graph:
        if number == GRAPH_NODE and wire == 2:
            for n, w, v in _fields(value):
                if n == NODE_INPUT and w == 2:
                    name = bytes(v)
                    if name in names and name not in seen:
                        seen.add(name)
                        order.append(name)
    return order


def half_weights(model: bytes, keep_share: float = KEEP_SHARE) -> bytes:
    """`model` (an ONNX model's bytes) with its float32 weights in half precision and a Cast back to float32 for
    each, but for the first `keep_share` of the weights the network uses and the small ones. Raises NotAModel for
    bytes it cannot read as an ONNX model."""
    top = _fields(model)
    graphs = [i for i, (n, w, _) in enumerate(top) if n == MODEL_GRAPH and w == 2]
    if len(graphs) != 1:
        raise NotAModel("no graph")
    graph = _fields(top[graphs[0]][2])
    inputs = set()
    for n, w, v in graph:
        if n == GRAPH_INPUT and w == 2:
            inputs |= {bytes(x) for m, x_w, x in _fields(v) if m == VALUE_INFO_NAME and x_w == 2}
    weights = {}  # index in the graph -> (name, dims, values)
    taken = set()  # every constant's name
    for i, (n, w, v) in enumerate(graph):
        if n == GRAPH_INITIALIZER and w == 2:
            tensor = _fields(v)  # read once: its name, and whether it is weights to halve
            taken |= {bytes(x) for m, mw, x in tensor if m == TENSOR_NAME and mw == 2}
            found = _float_weights(tensor)
            # a constant that is also a graph input (older models) can be fed at run time: left as it is
            if found is not None and found[2].size >= SMALLEST and found[0] not in inputs:
                weights[i] = found
    sizes = {name: values.size for name, _, values in weights.values()}
    kept, counted, total = set(), 0, sum(sizes.values())
    for name in _first_used(graph, set(sizes)):
        if counted >= keep_share * total:
            break
        kept.add(name)
        counted += sizes[name]
    casts, out = [], []
    for i, field in enumerate(graph):
        if i in weights and weights[i][0] not in kept and weights[i][0] + SUFFIX not in taken:
            name, dims, values = weights[i]
            out.append((GRAPH_INITIALIZER, 2, _half_tensor(name + SUFFIX, dims, values)))
            casts.append((GRAPH_NODE, 2, _cast_node(name + SUFFIX, name)))
        else:
            out.append(field)
    top[graphs[0]] = (MODEL_GRAPH, 2, _encode(casts + out))  # the casts first: nodes come in the order they run
    return _encode(top)


def answers_alike(half: bytes, predictor, tolerance: float = 0.02) -> bool:
    """Whether the halved model answers as the serving one on inputs drawn for the check (a gradient and flat
    colours at the model's size): the same top label and probabilities within `tolerance`. A model whose numbers
    half precision does not hold (a weight out of its range, a network that amplifies the rounding) fails it and is
    sent at full size."""
    import onnxruntime as ort

    size = predictor.size
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    x = np.stack(
        [
            np.stack([ramp[None, :].repeat(size, 0), ramp[:, None].repeat(size, 1), np.full((size, size), 96.0)], -1),
            np.broadcast_to(np.array([70.0, 140.0, 60.0]), (size, size, 3)),  # a leaf's green
            np.broadcast_to(np.array([200.0, 190.0, 170.0]), (size, size, 3)),  # a pale sheet
        ]
    ).astype(np.float32)
    want = predictor.predict_arrays(x, ["probabilities"])["probabilities"]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(half, options, providers=["CPUExecutionProvider"])
    got = session.run(["probabilities"], {session.get_inputs()[0].name: x})[0]
    return bool(
        np.isfinite(got).all()
        and np.array_equal(want.argmax(1), got.argmax(1))
        and np.abs(want - got).max() < tolerance
    )
