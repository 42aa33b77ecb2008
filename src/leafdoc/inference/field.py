"""Is this a photo like the lab photos the model was trained on, or a field photo it would only guess on?

A model trained on PlantVillage has seen one leaf on a plain background. A field photo (a leaf on the plant,
soil, hands, other leaves, sky) is a leaf too, so `not_a_leaf` is the wrong answer for it, and the model's
diagnosis on it is mostly wrong (the starter: right on 8% of the field-corn photos it answered). Two photo
properties, measured on the border of the model-ready image, say "lab" or "field" whatever the crop:
- `busy`: 1 - the share of the border that is plain background (smooth, and not leaf-coloured). A lab
  photo shows background around the leaf on at least part of its border; a field photo shows more leaves,
  soil or a hand there, or a piece of leaf that fills the frame.
- `clutter`: the share of the border that is edges (Canny, at 96 px).
Neither looks at what crop or disease is shown. They are standardised on the training split and weighed
together with the model's two not-a-leaf distances (ood.py) into one score; weights by logistic regression of
validation leaf photos against example field photos and non-leaf photos, the threshold at the (1 - target)
quantile of validation leaf photos, so the check refuses about `target` of unseen lab photos in all.

A refused photo is `unlike_training` when it is mostly leaf-coloured (a field photo: advise a lab-like
photo) and `not_a_leaf` otherwise. benchmarks/field_photos.py measures it; `leafdoc calibrate --field DIR`
fits it (card.json `field`). Only NumPy and OpenCV.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from leafdoc.modelfolder import ModelCard

MEASURE_PX = 96  # every image is measured at this size, so the check does not depend on the model's input
BORDER = 8  # the border ring is 1/8 of the side wide
SMOOTH_STD = 6.0  # local (5x5) grey-level standard deviation under which a pixel is smooth
# Leaf colours in OpenCV's HSV: hue 20-190 degrees (yellow, through green), saturation and value not low.
# PlantVillage's grey, white, black and purple backgrounds fall outside; rust and blight lesions inside.
LEAF_HUE = (10, 95)
LEAF_MIN_SAT, LEAF_MIN_VAL = 80, 40
# A refused photo with at least this share of leaf-coloured pixels is `unlike_training`, else `not_a_leaf`.
# Measured (benchmarks/field_photos.py): medians field-corn 0.61, PlantVillage 0.33, flowers 0.26; 82% of
# held-out field-corn photos and 43% of flowers are at or above it. Green foliage behind a flower looks leafy.
LEAFY_SHARE = 0.3
DEFAULT_TARGET = 0.01
FORMAT = 1


def _leaf_mask(hsv: np.ndarray) -> np.ndarray:
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    return (h >= LEAF_HUE[0]) & (h <= LEAF_HUE[1]) & (s >= LEAF_MIN_SAT) & (v >= LEAF_MIN_VAL)


def photo_features(images: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 RGB -> (N, 3): busy border, cluttered border, leaf-coloured share of the image."""
    out = np.empty((len(images), 3), dtype=np.float32)
    w = MEASURE_PX // BORDER
    ring = np.ones((MEASURE_PX, MEASURE_PX), bool)
    ring[w:-w, w:-w] = False
    for i, x in enumerate(images):
        x = np.ascontiguousarray(x, dtype=np.uint8)
        if x.shape[:2] != (MEASURE_PX, MEASURE_PX):
            x = cv2.resize(x, (MEASURE_PX, MEASURE_PX), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32)
        mean, sq = cv2.blur(grey, (5, 5)), cv2.blur(grey * grey, (5, 5))
        smooth = np.sqrt(np.maximum(sq - mean * mean, 0)) < SMOOTH_STD
        leaf = _leaf_mask(cv2.cvtColor(x, cv2.COLOR_RGB2HSV))
        plain = smooth & ~leaf
        edges = cv2.Canny(x, 50, 150) > 0
        out[i] = (1.0 - plain[ring].mean(), edges[ring].mean(), leaf.mean())
    return out


def calibration_part(path_or_bytes: Path | bytes) -> bool:
    """Whether a field photo belongs to the calibration part (the rest is held out to report figures):
    by the first hex digit of its sha256, so the split is the same on every machine and for every model."""
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    return int(hashlib.sha256(data).hexdigest()[0], 16) < 8


def _logistic(x: np.ndarray, t: np.ndarray, iters: int = 3000, l2: float = 1e-2) -> np.ndarray:
    """Weights (no intercept kept) of a class-balanced logistic regression; plain gradient descent."""
    sw = np.where(t == 1, (t == 0).sum() / max((t == 1).sum(), 1), 1.0)
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(x @ w + b, -50, 50)))
        g = (p - t) * sw
        w -= 0.5 * (x.T @ g / sw.sum() + l2 * w)
        b -= 0.5 * g.sum() / sw.sum()
    return np.maximum(w, 0.0)  # each number only ever makes a photo stranger


class FieldCheck:
    """The card's `field` section, applied: score = weights . [ood distances (2), busy, clutter standardised]."""

    def __init__(self, section: dict):
        self.weights = np.asarray(section["weights"], dtype=np.float64)
        self.centre = np.asarray(section["centre"], dtype=np.float64)
        self.spread = np.asarray(section["spread"], dtype=np.float64)
        self.threshold = float(section["threshold"])
        self.leafy_share = float(section.get("leafy_share", LEAFY_SHARE))

    @staticmethod
    def inputs(ood_components: np.ndarray, photo: np.ndarray, centre, spread) -> np.ndarray:
        return np.c_[np.asarray(ood_components, np.float64), (photo[:, :2] - centre) / spread]

    def scores(self, ood_components: np.ndarray, photo: np.ndarray) -> np.ndarray:
        return self.inputs(ood_components, photo, self.centre, self.spread) @ self.weights

    @classmethod
    def from_card(cls, card: ModelCard) -> FieldCheck | None:
        return cls(card.field) if card.field and card.ood else None


def calibrate(
    train_photo: np.ndarray,
    val: tuple[np.ndarray, np.ndarray],
    field: tuple[np.ndarray, np.ndarray],
    nonleaf: tuple[np.ndarray, np.ndarray] | None = None,
    sources: list[str] | None = None,
    target: float = DEFAULT_TARGET,
) -> dict:
    """The card's `field` section. Each pair is (ood components (N, 2), photo_features (N, 3))."""
    q1, med, q3 = np.percentile(train_photo[:, :2], [25, 50, 75], axis=0)
    centre, spread = med, np.maximum(q3 - q1, 0.01)

    def x(pair):
        return FieldCheck.inputs(pair[0], pair[1], centre, spread)

    xv, xf = x(val), x(field)
    xn = x(nonleaf) if nonleaf is not None and len(nonleaf[0]) else np.zeros((0, 4))
    # Field and non-leaf photos weigh the same in the fit, whatever their numbers.
    reps = max(1, round(len(xn) / max(len(xf), 1)))
    strange = np.r_[np.repeat(xf, reps, axis=0), xn]
    w = _logistic(np.r_[xv, strange], np.r_[np.zeros(len(xv)), np.ones(len(strange))])
    if w.sum() <= 0:
        w = np.ones(4)
    w = w / w.sum() * 4
    sv = xv @ w
    threshold = float(np.quantile(sv, 1 - target, method="higher"))
    section = {
        "format": FORMAT,
        "method": "weighted sum of the two not-a-leaf distances and two border measures (busy, clutter)",
        "weights": [round(float(v), 4) for v in w],
        "centre": [round(float(v), 6) for v in centre],
        "spread": [round(float(v), 6) for v in spread],
        "threshold": round(threshold, 6),
        "leafy_share": LEAFY_SHARE,
        "rule": f"refuse above the {1 - target:.1%} quantile of validation leaf photos; unlike_training when "
        f"at least {LEAFY_SHARE:.0%} of the photo is leaf-coloured, else not_a_leaf",
        "val_refused": round(float(np.mean(sv > threshold)), 4),
        "n_val": int(len(sv)),
        "field_refused": round(float(np.mean(xf @ w > threshold)), 4),
        "n_field": int(len(xf)),
        "sources": sources or [],
    }
    if len(xn):
        section["nonleaf_refused"] = round(float(np.mean(xn @ w > threshold)), 4)
        section["n_nonleaf"] = int(len(xn))
    return section
