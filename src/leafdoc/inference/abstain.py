"""Abstention: answer "not sure" instead of a wrong confident answer.

The softmax threshold is calibrated at training time on the validation split: the largest
threshold that still answers `target_coverage` of validation images. It is stored in card.json.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEFAULT_MIN_CONFIDENCE = 0.5  # for model folders whose card has no calibrated threshold


def calibrate_min_confidence(val_probs: np.ndarray, val_y: np.ndarray, target_coverage: float = 0.99) -> dict:
    conf = val_probs.max(axis=1)
    correct = val_probs.argmax(axis=1) == val_y
    # Abstain on at most (1 - target) of validation images: threshold at that quantile of confidence.
    t = float(np.quantile(conf, 1 - target_coverage, method="lower")) if len(conf) else DEFAULT_MIN_CONFIDENCE
    t = min(t, 0.95)
    answered = conf >= t
    return {
        # Round down: rounding up could lift the threshold above the images it was chosen to answer.
        "min_confidence": math.floor(t * 1e6) / 1e6,
        "rule": f"largest softmax threshold answering >= {target_coverage:.0%} of validation images",
        "val_coverage": round(float(answered.mean()), 4) if len(conf) else None,
        "val_selective_accuracy": round(float(correct[answered].mean()), 4) if answered.any() else None,
        "val_accuracy": round(float(correct.mean()), 4) if len(conf) else None,
    }


def min_confidence(card: dict) -> float:
    return float((card.get("abstain") or {}).get("min_confidence", DEFAULT_MIN_CONFIDENCE))


# ---- the decision at prediction time -----------------------------------------------------------
# One function, checks in order; a later check (not_a_leaf, blur, framing) is one more `if` here.

POOR_PHOTO_STD = 4.0  # grey levels: below this the resized photo is one flat colour
DARK_MEAN, BRIGHT_MEAN = 12.0, 245.0
PHOTO_ADVICE = "Take another photo of a single leaf, in daylight, filling most of the frame."


@dataclass(frozen=True)
class Decision:
    abstained: bool
    reason: str | None = None  # "unsure" | "poor_photo"
    message: str | None = None
    candidates: tuple[str, ...] = ()
    threshold: float = DEFAULT_MIN_CONFIDENCE


def photo_problem(image: np.ndarray) -> str | None:
    """What makes a model-ready uint8 RGB array unusable as a leaf photo, in plain words, or None."""
    arr = np.asarray(image, dtype=np.float32)
    if arr.size == 0:
        return "the image has no pixels"
    mean, std = float(arr.mean()), float(arr.std())
    if mean < DARK_MEAN:
        return "the photo is almost black (too dark, or the lens was covered)"
    if mean > BRIGHT_MEAN:
        return "the photo is almost white (over-exposed or washed out)"
    if std < POOR_PHOTO_STD:
        return "the photo is one flat colour with no visible leaf"
    return None


def hesitation(probs: np.ndarray, labels: list[str], cover: float = 0.9) -> list[int]:
    """Indices of the 2-3 most likely labels: as many as it takes to cover `cover` of the probability."""
    order = np.argsort(-probs)
    picked, total = [], 0.0
    for i in order[:3]:
        picked.append(int(i))
        total += float(probs[i])
        if len(picked) >= 2 and total >= cover:
            break
    return picked[: max(1, min(3, len(labels)))]


def decide(probs: np.ndarray, labels: list[str], card: dict, image: np.ndarray | None = None) -> Decision:
    """Answer, or abstain with a reason code and a message a grower understands."""
    threshold = min_confidence(card)
    if image is not None:
        problem = photo_problem(image)
        if problem:
            return Decision(True, "poor_photo", f"Not a usable photo: {problem}. {PHOTO_ADVICE}", (), threshold)
    probs = np.asarray(probs, dtype=np.float64)
    top = float(probs.max()) if probs.size else 0.0
    if top >= threshold:
        return Decision(False, threshold=threshold)
    idx = hesitation(probs, labels)
    names = [labels[i] for i in idx]
    listed = [f"{labels[i]} ({probs[i]:.0%})" for i in idx]
    between = listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " and " + listed[-1]
    digits = 0 if f"{top:.0%}" != f"{threshold:.0%}" else 1
    message = (
        f"Not sure: the model hesitates between {between}. Its confidence ({top:.{digits}%}) is below the "
        f"{threshold:.{digits}%} it needs to give an answer. {PHOTO_ADVICE}"
    )
    return Decision(True, "unsure", message, tuple(names), threshold)
