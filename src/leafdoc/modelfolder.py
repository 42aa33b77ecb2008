"""The model folder: the contract between training and serving.

A model folder holds `model.onnx` (what serving runs), `model.keras` (what retraining starts from),
`labels.json` (the classes, in the order of the model's outputs), `card.json` (how the model was made and
what it expects: `ModelCard`), and when it has them `split.json` (which photos were train/val/test),
`ood.npz` (the not-a-leaf check), `field_photos.zip` (the field photos the unlike-training check was
calibrated with, so a retrain can refit it) and `model.tflite`. This module is the one place that knows those names
and reads or writes the card; it imports nothing of leafdoc above the base layer.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from leafdoc.core.atomic import atomic_dir, atomic_write_json
from leafdoc.core.errors import ModelError
from leafdoc.core.hashing import sha256_file
from leafdoc.runtime.cpuflags import describe as describe_cpu
from leafdoc.runtime.cpuflags import int8_problem

ONNX_FILE = "model.onnx"
KERAS_FILE = "model.keras"
TFLITE_FILE = "model.tflite"
LABELS_FILE = "labels.json"
CARD_FILE = "card.json"
SPLIT_FILE = "split.json"
OOD_FILE = "ood.npz"
FIELD_PHOTOS_FILE = "field_photos.zip"  # the unlike-training check's calibration field photos, for retrains

SERVING_FILES = (ONNX_FILE, LABELS_FILE, CARD_FILE)  # what a Predictor needs
VARIANT_FILES = {"int8": "model.int8.onnx", "fp16": "model.fp16.onnx"}  # copies of model.onnx (inference/quantize.py)
# what a registry version keeps (split.json: the promotion rule leaves out the photos a serving model trained on)
MODEL_FILES = (
    ONNX_FILE,
    KERAS_FILE,
    LABELS_FILE,
    CARD_FILE,
    TFLITE_FILE,
    OOD_FILE,
    FIELD_PHOTOS_FILE,
    SPLIT_FILE,
    *VARIANT_FILES.values(),
)
# what copy_model_dir carries
COPIED_FILES = (KERAS_FILE, ONNX_FILE, LABELS_FILE, CARD_FILE, OOD_FILE, FIELD_PHOTOS_FILE)
OPTIONAL_COPIED = (OOD_FILE, FIELD_PHOTOS_FILE)  # folders from before the checks, or without the field check

# Sections a card may lack (folders from before the check, or not yet scored); never written as null.
OPTIONAL_SECTIONS = ("metrics", "abstain", "ood", "field", "onnx_variants", "limitations_translated")


class _Section(BaseModel):
    # Tolerant: keys a later leafdoc adds are kept (and written back), not refused.
    model_config = ConfigDict(extra="allow")


class CardInput(_Section):
    """What the model takes: raw RGB of `size` x `size`, resized by imaging/photos.py's rule, optionally framed,
    white-balanced and with morphology."""

    size: int
    dtype: str = "float32"
    layout: str = "NHWC"
    range: str = "raw RGB 0-255 (normalisation is inside the model)"
    resize: str | None = None
    morphology: str = "none"
    morph_kernel: int = 3
    framing: str = "none"  # images.FRAMINGS; cards from before framing have none
    white_balance: str = "none"  # images.WHITE_BALANCES; cards from before it have none
    # With white_balance `light-range`: the lights it was trained under (leafcut.light_range's quantiles)
    light_range: list[float] | None = None


class CardDataset(_Section):
    name: str | None = None
    version: int | None = None
    split: dict[str, int] = {}  # images per part: train, val, test
    split_rule: str | None = None


class CardMetrics(_Section):
    """Summary figures (n, accuracy, top3_accuracy, macro_f1, ece) of the test and validation splits."""

    test: dict[str, Any] | None = None
    val: dict[str, Any] | None = None


class ModelCard(_Section):
    format: int = 1
    leafdoc_version: str | None = None
    created: str | None = None
    backbone: str | None = None
    alpha: float | None = None
    weights: str | None = None
    pretrained: dict[str, Any] | None = None  # where the backbone's ImageNet weights came from
    input: CardInput | None = None
    outputs: dict[str, str] = {}
    n_classes: int | None = None
    dataset: CardDataset | None = None
    parent_version: str | int | None = None  # the registry version it was retrained from
    warm_start: str | None = None
    training: dict[str, Any] | None = None  # TrainConfig's fields, plus the strategy that trained it
    best_epoch: int | None = None
    train_seconds: float | None = None
    train_seconds_before_resume: float | None = None
    history: list[dict[str, Any]] = []
    provenance: str | None = None
    limitations: str | None = None
    # The limitations in other languages (language code -> text), for a grower's page; translated, not yet reviewed
    limitations_translated: dict[str, str] | None = None
    metrics: CardMetrics | None = None
    abstain: dict[str, Any] | None = None  # the softmax threshold below which leafdoc does not answer
    ood: dict[str, Any] | None = None  # the not-a-leaf check (its arrays in ood.npz)
    field: dict[str, Any] | None = None  # the unlike-training check (fitted with field photos)
    other_leaves: dict[str, Any] | None = None  # "one of its classes or another leaf" (inference/otherleaves.py)
    onnx_variants: dict[str, dict[str, Any]] | None = None  # int8/fp16 copies of model.onnx (inference/quantize.py)

    @classmethod
    def from_dict(cls, data: dict, where: str = "card.json") -> ModelCard:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            at = ".".join(str(p) for p in first["loc"])
            raise ModelError(
                f"{where}: not a valid model card ({at}: {first['msg']}).",
                hint="Copy the whole model folder again, or re-train it.",
            ) from None

    def to_dict(self) -> dict:
        """The card as JSON: every field read or set, none of the optional sections as null."""
        out = self.model_dump(mode="json", exclude_unset=True)
        for key in OPTIONAL_SECTIONS:
            if out.get(key) is None:
                out.pop(key, None)
        return out

    @property
    def test_metrics(self) -> dict[str, Any] | None:
        return self.metrics.test if self.metrics else None

    @property
    def nonleaf_dirs(self) -> list[str]:
        return list((self.training or {}).get("nonleaf_dirs") or [])


def starter_model_dir() -> Path:
    """The starter model shipped in the repository (`<repo>/models/starter`)."""
    return Path(__file__).resolve().parents[2] / "models" / "starter"


STARTER_WEIGHTS_FILE = "models/starter/model.keras"  # a card's `pretrained.file` when its network is the starter's


def started_from_starter(pretrained: dict | None) -> bool:
    """Whether a card's `pretrained` is the starter's network (train/backbones.weights_provenance writes its file)."""
    return bool(pretrained) and pretrained.get("file") == STARTER_WEIGHTS_FILE


def learnt_by_start(pretrained: dict | None) -> set[str]:
    """The sha256 of the photos the network a model started from learnt or was chosen on (the starter's split.json:
    train and val), from the card's `pretrained`; empty when it started from elsewhere or that split is not here.
    A model that starts from the starter and is scored on PlantVillage photos is scored partly on photos its
    network learnt: its figures overstate it on photos it never saw."""
    if not started_from_starter(pretrained):
        return set()
    folder = starter_model_dir()
    if not (folder / SPLIT_FILE).is_file():
        return set()
    split = read_split(folder)
    return set(split.get("train", [])) | set(split.get("val", []))


def check_model_dir(model_dir: Path, files: tuple[str, ...] = SERVING_FILES) -> Path:
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelError(f"{model_dir}: no such model folder.", hint="Pass a folder written by `leafdoc train`.")
    missing = [f for f in files if not (model_dir / f).is_file()]
    if ONNX_FILE in missing and CARD_FILE in missing:  # not a model folder at all: a folder of photos, often
        from leafdoc.imaging.photos import is_image_name

        photos = sum(1 for p in model_dir.iterdir() if is_image_name(p)) if missing == list(files) else 0
        holds = f"; it holds {photos} photo{'s' if photos != 1 else ''}" if photos else ""
        photos_after = "; the photos come after it: `leafdoc predict MODEL_DIR PHOTO...`" if photos else ""
        raise ModelError(
            f"{model_dir}: not a model folder (no {ONNX_FILE} or {CARD_FILE}){holds}.",
            hint=f"Pass a model folder, the one `leafdoc train --out` wrote (or models/starter), which holds "
            f"{ONNX_FILE} and {CARD_FILE}{photos_after}.",
        )
    if missing:
        hint = (
            "Re-run `leafdoc export MODEL_DIR --format onnx`."
            if missing == [ONNX_FILE]
            else ("Copy the whole model folder again, or re-train it.")
        )
        raise ModelError(f"{model_dir}: the model folder is missing {', '.join(missing)}.", hint=hint)
    return model_dir


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{path}: no such file.", hint="Copy the whole model folder again, or re-train it.") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot be read as JSON ({exc}).") from None


def read_card(model_dir: Path) -> ModelCard:
    path = Path(model_dir) / CARD_FILE
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ModelError(f"{path}: not a valid model card (not a JSON object).")
    return ModelCard.from_dict(data, str(path))


SPLIT_LISTS = ("train", "val", "test")


def read_split(model_dir: Path, missing: ModelError | None = None) -> dict:
    """split.json: which photos (by sha256) were train, val and test; ModelError naming the file when it is
    missing (`missing` instead, if given: what the caller cannot know without it) or not a split."""
    path = Path(model_dir) / SPLIT_FILE
    if missing is not None and not path.is_file():
        raise missing
    split = _read_json(path)
    if not isinstance(split, dict) or not all(isinstance(split.get(p, []), list) for p in SPLIT_LISTS):
        raise ModelError(f"{path}: not a split (lists of sha256 under train, val and test).")
    return split


def split_parts(split: dict) -> dict[str, str]:
    """{sha256: part} of a split read by read_split."""
    return {sha: part for part in SPLIT_LISTS for sha in split.get(part, [])}


def carries_field_photos(model_dir: Path) -> bool:
    """The folder has the unlike-training check and the field photos it was calibrated with (field_photos.zip),
    so the check can be refitted for a recalibrated or retrained model."""
    return (Path(model_dir) / FIELD_PHOTOS_FILE).is_file() and read_card(Path(model_dir)).field is not None


def write_card(model_dir: Path, card: ModelCard) -> None:
    atomic_write_json(Path(model_dir) / CARD_FILE, card.to_dict())


def read_labels(model_dir: Path) -> list[str]:
    path = Path(model_dir) / LABELS_FILE
    labels = _read_json(path)
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ModelError(f"{path}: not a list of label names.")
    return labels


def write_labels(model_dir: Path, labels: list[str]) -> None:
    atomic_write_json(Path(model_dir) / LABELS_FILE, list(labels))


def copy_model_dir(src: Path, dst: Path) -> None:
    """Copy a model folder's files (atomically: `dst` appears whole or not at all)."""
    with atomic_dir(Path(dst)) as tmp:
        for name in COPIED_FILES:
            if name in OPTIONAL_COPIED and not (Path(src) / name).is_file():
                continue
            shutil.copy2(Path(src) / name, tmp / name)


# An int8 copy is served without being asked for (LEAFDOC_ONNX_VARIANT unset) only where it gives model.onnx's top-1 on
# at least this share of the validation photos (its card's `onnx_variants.int8.validation_vs_fp32`), and only on a
# CPU with VNNI (leafdoc/cpuflags.py), where it runs as it was checked (issue 57).
INT8_MIN_AGREEMENT = 0.99
# Photos the agreement must be measured on: with fewer than 125, even all of them agreeing does not show 97% agreement
# at 95% confidence (Wilson: n / (n + 1.96²) < 0.97). A lab's small model checked on 32 validation photos was served
# as int8 by default, and agreed with model.onnx on 96.9% of its test photos.
INT8_MIN_CHECKED = 125


def default_variant(model_dir: Path, card: ModelCard) -> tuple[str, str]:
    """The ONNX variant `serve` runs when LEAFDOC_ONNX_VARIANT is unset, and why: `int8` where its copy agrees with
    model.onnx on INT8_MIN_AGREEMENT of at least INT8_MIN_CHECKED validation photos and this CPU has VNNI; else
    `fp32`."""
    entry = (card.onnx_variants or {}).get("int8")
    if not entry:
        return "fp32", "the model folder has no int8 copy"
    check = entry.get("validation_vs_fp32") or {}
    agreement, checked = check.get("top1_agreement"), check.get("n")
    if isinstance(checked, int) and checked < INT8_MIN_CHECKED:
        return "fp32", (
            f"its int8 copy was checked on {checked} validation photos, too few to show that it answers as model.onnx "
            f"does (at least {INT8_MIN_CHECKED})"
        )
    if not isinstance(agreement, int | float) or agreement < INT8_MIN_AGREEMENT:
        return "fp32", (
            f"its int8 copy gives model.onnx's top-1 on {agreement:.1%} of the validation photos, under "
            f"{INT8_MIN_AGREEMENT:.0%}"
            if isinstance(agreement, int | float)
            else "its card does not say how its int8 copy agrees with model.onnx"
        )
    if describe_cpu()["vnni"] is not True:
        return "fp32", "this CPU has no VNNI (AVX512-VNNI or AVX-VNNI), where the int8 copy was not checked"
    try:
        variant_file(model_dir, card, "int8")
    except ModelError as exc:
        return "fp32", exc.message
    return (
        "int8",
        f"its int8 copy gives model.onnx's top-1 on {agreement:.1%} of the validation photos, on a CPU with VNNI",
    )


def variant_file(model_dir: Path, card: ModelCard, variant: str, any_cpu: bool = False) -> Path:
    """The ONNX file of `variant` (fp32: model.onnx) in a model folder, or a ModelError saying how to make it;
    an int8 copy only on a CPU that runs it as it was checked, unless `any_cpu` (leafdoc/cpuflags.py)."""
    if variant in ("fp32", "", None):
        return Path(model_dir) / ONNX_FILE
    entry = (card.onnx_variants or {}).get(variant)
    path = Path(model_dir) / (entry or {}).get("file", VARIANT_FILES.get(variant, f"model.{variant}.onnx"))
    hint = (
        f"Write it with `leafdoc export {model_dir} --format onnx-{variant} --data DATA_DIR`, "
        "or set LEAFDOC_ONNX_VARIANT=fp32."
    )
    if not entry or not path.is_file():
        raise ModelError(f"{model_dir}: the model folder has no {variant} ONNX file.", hint=hint)
    source = Path(model_dir) / ONNX_FILE
    if entry.get("source_sha256") and source.is_file() and sha256_file(source) != entry["source_sha256"]:
        raise ModelError(f"{path}: it was made from an earlier model.onnx than the folder's.", hint=hint)
    if variant == "int8" and not any_cpu and (why := int8_problem()):
        made_on = (entry.get("checked_on") or {}).get("model")
        raise ModelError(
            f"{path}: not run on this machine: {why}"
            + (f" (its card says it was checked against model.onnx on {made_on})." if made_on else "."),
            hint="Use model.onnx here (LEAFDOC_ONNX_VARIANT=fp32, the default): the int8 copy is for CPUs with VNNI "
            "(Intel since Cascade Lake, AMD since Zen 4). To run it anyway (to measure it), set "
            "LEAFDOC_INT8_ANY_CPU=true.",
        )
    return path
