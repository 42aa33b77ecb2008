"""`leafdoc export MODEL_DIR --format onnx-int8|onnx-fp16`: a smaller, faster copy of model.onnx beside it.

int8 is ONNX Runtime's static quantisation in QDQ form: int8 weights per output channel, uint8 activations
whose ranges are calibrated (MinMax) on the model's own TRAINING photos (split.json names them; validation
and test photos are never used for calibration). The pooling and the classifier head (the MatMuls that give
`logits` and `cam`) stay float: a tiny share of the cost, and their errors would go straight into the answer.
fp16 converts weights and activations to float16 with float32 input and outputs.

Both keep the four outputs and their names (`probabilities`, `logits`, `features`, `cam`), so the
not-a-leaf and unlike-training checks read the same `features` as from model.onnx. The copy is checked
on the validation photos against model.onnx before it is recorded in card.json (`onnx_variants`), and
serving uses it only when told to (LEAFDOC_ONNX_VARIANT). Only onnxruntime and onnx are needed: no
TensorFlow, so a serving install with `onnx` can quantise too.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import numpy as np

from leafdoc.core.atomic import atomic_write_bytes, atomic_write_json
from leafdoc.core.errors import ConfigError, LeafdocError, ModelError
from leafdoc.imaging.photos import sha256_bytes
from leafdoc.modelfolder import SPLIT_FILE, VARIANT_FILES, read_split
from leafdoc.runtime import cpuflags

OUTPUTS = ("probabilities", "logits", "features", "cam")
CALIBRATION_PHOTOS = 300  # training photos, spread over the classes; more barely moves MinMax ranges
CALIBRATION_BATCH = 10
# ONNX Runtime's calibrator keeps this many batches' outputs, then folds them into its ranges; when the batches are a
# multiple of it, nothing is left at the end and it raises "No data is collected" (40, 80, ... photos): the reader
# then splits its last batch in two.
MAX_KEPT_BATCHES = 4
T = TypeVar("T")


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ConfigError(
            "quantising a model needs the `onnx` package.",
            hint="pip install onnx (it comes with leafdoc[train]).",
        ) from None
    return onnx


def spread(photos: list[tuple[T, int]], n: int) -> list[tuple[T, int]]:
    """Up to n photos (paths, or indices into an array), as many from each class as the classes allow,
    deterministic (sorted)."""
    by_class: dict[int, list[T]] = {}
    for path, y in sorted(photos):
        by_class.setdefault(y, []).append(path)
    per_class = max(1, -(-n // max(1, len(by_class))))
    picked = []
    for y, paths in sorted(by_class.items()):
        step = max(1, len(paths) // per_class)
        picked += [(p, y) for p in paths[::step][:per_class]]
    return picked[:n] if len(picked) > n else picked


class _Reader:
    """onnxruntime.quantization's CalibrationDataReader protocol over model-ready arrays, in small batches."""

    def __init__(self, input_name: str, images: np.ndarray):
        batches = [images[i : i + CALIBRATION_BATCH] for i in range(0, len(images), CALIBRATION_BATCH)]
        if batches and len(batches) % MAX_KEPT_BATCHES == 0 and len(batches[-1]) > 1:
            last = batches.pop()
            batches += [last[: len(last) // 2], last[len(last) // 2 :]]
        self.feeds = iter({input_name: b.astype(np.float32)} for b in batches)

    def get_next(self):
        return next(self.feeds, None)


def head_nodes(model) -> list[str]:
    """Every node after the last feature map (the input of the global pooling): pooling, the classifier's
    MatMuls and bias Adds, softmax, the CAM's reshapes. Kept float, so `features` is the exact mean of the
    (dequantised) last feature map that `cam` is computed from, and the CAM's mean over the cells is still
    `logits`; quantising the head's Adds to calibrated ranges put whole units of error into the logits."""
    pools = [n for n in model.graph.node if n.op_type in ("GlobalAveragePool", "ReduceMean")]
    if not pools:
        return []
    reached, names = {pools[-1].input[0]}, []
    for node in model.graph.node:  # ONNX graphs are topologically sorted
        if any(t in reached for t in node.input):
            names.append(node.name)
            reached.update(node.output)
    return names


def quantize_int8(src: Path, dest: Path, images: np.ndarray) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    onnx = _onnx()
    with tempfile.TemporaryDirectory(prefix="leafdoc-quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        # The documented first step: shape inference and graph optimisation (folds BatchNorm etc.) so the
        # quantiser sees the graph ONNX Runtime will run.
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        model = onnx.load(str(pre))
        input_name = model.graph.input[0].name
        quantize_static(
            str(pre),
            str(dest),
            _Reader(input_name, images),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=head_nodes(model),
            extra_options={"CalibMaxIntermediateOutputs": MAX_KEPT_BATCHES},
        )


def convert_fp16(src: Path, dest: Path) -> None:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx = _onnx()
    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dest))


def session(path: Path, threads: int | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def agreement(reference: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> dict:
    """How closely a variant answers like model.onnx on the same photos."""
    p, q = reference["probabilities"], other["probabilities"]
    return {
        "n": int(len(p)),
        "top1_agreement": round(float(np.mean(p.argmax(1) == q.argmax(1))), 4),
        "max_abs_prob_diff": round(float(np.abs(p - q).max()), 4),
        "mean_abs_prob_diff": round(float(np.abs(p - q).mean()), 5),
    }


def run(sess, images: np.ndarray, batch: int = 32) -> dict[str, np.ndarray]:
    name = sess.get_inputs()[0].name
    parts = [
        sess.run(list(OUTPUTS), {name: images[i : i + batch].astype(np.float32)}) for i in range(0, len(images), batch)
    ]
    return {n: np.concatenate([p[k] for p in parts]) for k, n in enumerate(OUTPUTS)}


def check_outputs(path: Path, sess) -> None:
    names = [o.name for o in sess.get_outputs()]
    if sorted(names) != sorted(OUTPUTS):
        raise ModelError(
            f"{path}: the converted model's outputs are {names}, not {list(OUTPUTS)}.",
            hint="Re-export model.onnx with `leafdoc export MODEL_DIR --format onnx` and convert again.",
        )


def quantize_model_dir(
    model_dir: Path, variant: str, data_dir: Path | None = None, n_calibration: int = CALIBRATION_PHOTOS
) -> Path:
    """`leafdoc export --format onnx-int8|onnx-fp16`: the model's training and validation photos read from
    `data_dir` (split.json says which), then make_variant."""
    from leafdoc.inference.calibrate import split_photos
    from leafdoc.inference.predictor import Predictor

    _check_variant(variant)
    model_dir = Path(model_dir)
    predictor = Predictor(model_dir)  # the model's own preprocessing
    split_file = model_dir / SPLIT_FILE
    if data_dir is None or not Path(data_dir).is_dir():
        raise ConfigError(
            f"{data_dir}: no such folder." if data_dir else "converting needs the photos the model was trained on.",
            hint="Pass --data with the folder of class folders the model was trained on.",
        )
    missing = ModelError(
        f"{model_dir}: no split.json, so the training photos are unknown.",
        hint="Use a model folder written by `leafdoc train`.",
    )
    split = read_split(model_dir, missing)
    photos = split_photos(Path(data_dir), split, predictor.labels)
    short = [p for p in ("train", "val") if len(photos[p]) < max(1, len(split.get(p, [])) // 2)]
    if short:
        raise ConfigError(
            f"{data_dir}: only {len(photos['train'])} of the {len(split.get('train', []))} training and "
            f"{len(photos['val'])} of the {len(split.get('val', []))} validation photos of {split_file} are there.",
            hint="Pass the same folder of class folders the model was trained on.",
        )

    def arrays(items: list[tuple[Path, int]]) -> np.ndarray:
        xs = []
        for path, _ in items:
            try:
                xs.append(predictor.preprocess(path))
            except LeafdocError:
                continue
        return np.stack(xs) if xs else np.zeros((0, predictor.size, predictor.size, 3), np.float32)

    return make_variant(model_dir, variant, arrays(spread(photos["train"], n_calibration)), arrays(photos["val"]))


def _check_variant(variant: str) -> None:
    if variant not in VARIANT_FILES:
        raise ConfigError(f"unknown ONNX variant {variant!r}.", hint=f"Use one of {', '.join(VARIANT_FILES)}.")


def make_variant(model_dir: Path, variant: str, calibration: np.ndarray, val: np.ndarray) -> Path:
    """Write model.<variant>.onnx beside model.onnx (int8: calibrated on `calibration`, model-ready arrays of
    training photos), check it against model.onnx on `val` (the validation photos) and record it (file,
    sha256, method, agreement, the CPU it was checked on) in card.json's `onnx_variants`. `leafdoc export` and a
    retraining job (lifecycle/serving_copy.py) both make their copy here."""
    _check_variant(variant)
    model_dir = Path(model_dir)
    if variant == "int8" and not len(calibration):
        raise ConfigError(
            f"{model_dir}: no training photos to calibrate the int8 copy with.",
            hint="Train on a dataset with photos in the training split, or serve model.onnx (fp32).",
        )
    if not len(val):
        raise ConfigError(
            f"{model_dir}: no validation photos to check the {variant} copy against model.onnx.",
            hint="Train on a dataset large enough to have a validation split, or serve model.onnx (fp32).",
        )
    dest = model_dir / VARIANT_FILES[variant]
    tmp = model_dir / f".{dest.name}.tmp"
    try:
        if variant == "int8":
            quantize_int8(model_dir / "model.onnx", tmp, calibration)
            method = (
                f"ONNX Runtime static quantisation, QDQ, int8 weights per channel, uint8 activations, MinMax "
                f"ranges over {len(calibration)} training photos; pooling and classifier head kept float32"
            )
        else:
            convert_fp16(model_dir / "model.onnx", tmp)
            method = "float16 weights and activations (onnxruntime.transformers.float16), float32 input and outputs"
        sess = session(tmp)
        check_outputs(dest, sess)
        checked = agreement(run(session(model_dir / "model.onnx"), val), run(sess, val))
        data = tmp.read_bytes()
        atomic_write_bytes(dest, data)
    finally:
        tmp.unlink(missing_ok=True)
    card = json.loads((model_dir / "card.json").read_text())
    card.setdefault("onnx_variants", {})[variant] = {
        "file": dest.name,
        "sha256": sha256_bytes(data),
        "source_sha256": sha256_bytes((model_dir / "model.onnx").read_bytes()),
        "bytes": len(data),
        "method": method,
        "calibration": {"split": "train", "photos": len(calibration)} if variant == "int8" else None,
        "validation_vs_fp32": checked,
        "checked_on": cpuflags.describe(),  # the CPU the comparison ran on (int8 differs by CPU: runtime/cpuflags.py)
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    atomic_write_json(model_dir / "card.json", card)
    return dest
