"""Crops a model has learnt from field photos: a field photo of one of them is answered when the model is sure, a field
photo of any other crop is refused as `unlike_training`, in words that say the crop is known only from lab photos.

The unlike-training check (field.py) tells a field photo from a lab photo whatever the crop. A model trained on field
photos of some crops (the starter: corn, tomato and potato) reads field photos of those crops; of the others it has
seen only lab photos and would guess. So for a photo the check calls a field photo, the crop of the model's top answer
decides: a learnt crop is held to its own confidence threshold (`min_confidence`, set on field photos training never
saw so that the answers given are right often enough), any other crop is refused. Card: `field.learnt`.

Field photos are split by the first hex digit of their sha256, the same split everywhere: 0-7 training (and the
unlike-training check's calibration: field.py's calibration_part), 8-b validation (this threshold), c-f test (figures
only, benchmarks/starter_full.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from leafdoc.core.i18n import AND, N_, Msg, msg, one_of
from leafdoc.words.labels import names_crop

FIELD_PARTS = {"train": "01234567", "val": "89ab", "test": "cdef"}
# The share of answered field photos that must be right on the validation part; the target on unseen field photos is
# 80%, and about a hundred validation photos leave room for a few points of luck.
DEFAULT_PRECISION = 0.85


def field_part(data: bytes) -> str:
    digit = hashlib.sha256(data).hexdigest()[0]
    return next(part for part, digits in FIELD_PARTS.items() if digit in digits)


def crop_of(label: str) -> str:
    """`Corn_(maize)___Common_rust_` -> `Corn_(maize)`: the PlantVillage naming, crop before three underscores. A
    label without them (`names_crop`) is its own "crop" here, as the field-photo check reads it (`knows_in_field`,
    `fit_learnt`, the offline page's app.js `cropOf`); the crops a model lists and takes (`crops_known`,
    cropfirst.crops_of) are only those that labels name."""
    return label.split("___", 1)[0]


def label_crops(labels: Sequence[str]) -> list[str]:
    """The crops the labels name, as their prefixes (`Corn_(maize)`), sorted; none for a model whose labels name no
    crop (a lab's `early blight`, `healthy`, `late blight`)."""
    return sorted({crop_of(label) for label in labels if names_crop(label)})


def crop_name(crop: str) -> str:
    """`Corn_(maize)` -> `corn`, `Pepper,_bell` -> `bell pepper`: a crop as a sentence says it (a comma would read
    as two crops in a list)."""
    name = crop.split("_(", 1)[0].replace("_", " ").strip().lower()
    head, _, kind = name.partition(",")
    return f"{kind.strip()} {head.strip()}" if kind.strip() else head.strip()


def learnt_crops(card_field: dict | None) -> list[str]:
    return list(((card_field or {}).get("learnt") or {}).get("crops") or [])


def knows_in_field(card_field: dict | None, label: str) -> bool:
    return crop_of(label) in learnt_crops(card_field)


def crops_known(labels: Sequence[str], card_field: dict | None) -> dict[str, list[str]]:
    """The crops of a model's labels, by what it learnt them from: field photos and lab photos, or lab photos only
    (as a sentence names them: `corn`, `bell pepper`). Only the crops the labels name (`label_crops`): a model whose
    labels name no crop has none."""
    learnt = set(learnt_crops(card_field))
    crops = label_crops(labels)
    return {
        "field": [crop_name(c) for c in crops if c in learnt],
        "lab_only": [crop_name(c) for c in crops if c not in learnt],
    }


def crop_words(crop: str) -> Msg:
    """A crop (a label prefix) as a sentence says it, in any language (`crop_name`'s words in the catalogs)."""
    return msg(crop_name(crop))


LAB_ONLY = N_(
    "Not sure: this looks like a field photo of {crop}, and leafdoc knows {crop} only from lab photos (one whole "
    "leaf on a plain background), so any diagnosis would be a guess. It has learnt field photos of {known} only. "
    "Pick one leaf, lay it on a plain background such as a sheet of paper, and take the photo from above so the "
    "whole leaf fills most of the frame."
)


def lab_only_words(label: str, learnt: Sequence[str]) -> Msg:
    return msg(LAB_ONLY, crop=crop_words(crop_of(label)), known=one_of([crop_words(c) for c in learnt], AND))


def lab_only_message(label: str, learnt: Sequence[str]) -> str:
    return str(lab_only_words(label, learnt))


def photos_of_part(folders: Sequence[Path], part: str) -> list[tuple[Path, str]]:
    """(photo, class folder name) of the `part` of each folder of class folders."""
    from leafdoc.imaging.photos import is_image_name

    out = []
    for folder in folders:
        for f in sorted(Path(folder).rglob("*")):
            if f.is_file() and is_image_name(f) and field_part(f.read_bytes()) == part:
                out.append((f, f.parent.name))
    return out


def choose_threshold(
    top: np.ndarray, right: np.ndarray, flagged: np.ndarray, lab_answered: np.ndarray, precision: float
) -> tuple[float, dict]:
    """The lowest confidence at which the field photos answered are right at least `precision` of the time.

    Per photo: its top probability, whether the top answer is right, whether the unlike-training check calls it a
    field photo of a learnt crop (`flagged`: this threshold decides it), and, for the others, whether the lab rules
    answer it (`lab_answered`: this threshold does not change that)."""
    candidates = np.unique(np.concatenate([[0.0], top[flagged], [1.01]]))
    for t in candidates:
        answered = np.where(flagged, top >= t, lab_answered)
        n = int(answered.sum())
        if n == 0 or right[answered].mean() >= precision:
            cover = float(answered.mean()) if len(top) else 0.0
            return float(t), {
                "n_val": len(top),
                "val_answered": round(cover, 4),
                "val_right_when_answered": round(float(right[answered].mean()), 4) if n else None,
            }
    return 1.01, {"n_val": len(top), "val_answered": 0.0, "val_right_when_answered": None}


def field_readings(predictor, files: Sequence[Path], crops: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per photo file: the model's probabilities (N, labels), whether the unlike-training check calls it a field photo
    whose top answer is one of `crops` (the field threshold decides it), and whether the lab rules answer it."""
    rows = []
    threshold = float((predictor.card.field or {}).get("threshold", np.inf))
    for f in files:
        photo = predictor.load(f)
        out = predictor.predict_arrays(photo.x[None], predictor.decision_outputs)
        row = {k: v[0] for k, v in out.items()}
        probs = row["probabilities"]
        top_label = predictor.labels[int(np.argmax(probs))]
        field_score, field_like = predictor.field_reading(row, photo)[1:]
        flagged = field_score is not None and field_score > threshold and field_like and crop_of(top_label) in crops
        rows.append((probs, bool(flagged), not predictor.decide(row, photo).abstained))
    probs, flagged, lab_answered = zip(*rows, strict=True)
    return np.stack(probs), np.array(flagged), np.array(lab_answered)


def fit_learnt(predictor, folders: Sequence[Path], precision: float = DEFAULT_PRECISION) -> dict:
    """The card's `field.learnt`: the crops of `folders` (field photos the model was trained on, class folders named
    by label) and the threshold for their field photos, set on each folder's validation part."""
    from leafdoc.core.errors import ConfigError

    labels = set(predictor.labels)
    crops = sorted({crop_of(p.parent.name) for folder in folders for p in Path(folder).rglob("*") if p.is_file()})
    photos = [(f, label) for f, label in photos_of_part(folders, "val") if label in labels]
    if len(photos) < 10:
        raise ConfigError(
            f"only {len(photos)} validation field photos (sha256 8-b) in {', '.join(map(str, folders))}.",
            hint="Pass the folders of field photos the model was trained on, with class folders named by label.",
        )
    probs, flagged, lab_answered = field_readings(predictor, [f for f, _ in photos], crops)
    top, right = probs.max(1), probs.argmax(1) == np.array([predictor.labels.index(label) for _, label in photos])
    t, figures = choose_threshold(top, right, flagged, lab_answered, precision)
    return {
        "crops": crops,
        "min_confidence": round(t, 6),
        "rule": f"lowest confidence at which >= {precision:.0%} of the validation field photos answered are right "
        "(field photos of these crops, sha256 8-b)",
        **figures,
    }
