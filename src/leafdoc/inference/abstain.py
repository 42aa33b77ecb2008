"""Abstention: answer "not sure" instead of a wrong confident answer.

The softmax threshold is calibrated at training time on the validation split: the largest
threshold that still answers `target_coverage` of validation images. It is stored in card.json.
"""

from __future__ import annotations

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
        "min_confidence": round(t, 6),
        "rule": f"largest softmax threshold answering >= {target_coverage:.0%} of validation images",
        "val_coverage": round(float(answered.mean()), 4) if len(conf) else None,
        "val_selective_accuracy": round(float(correct[answered].mean()), 4) if answered.any() else None,
        "val_accuracy": round(float(correct.mean()), 4) if len(conf) else None,
    }


def min_confidence(card: dict) -> float:
    return float((card.get("abstain") or {}).get("min_confidence", DEFAULT_MIN_CONFIDENCE))
