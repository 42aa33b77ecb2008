"""The unlike-training check's `scene` measure: does the network see a leaf on a plain background, or in a scene?

The field photos we have are of one crop (corn), and a check fitted on them alone learns "corn field" as much as
"field". A phone's close-up of one leaf on the plant, its background out of focus, has neither a busy nor a
cluttered border, so the border measures miss it (composites of other crops' leaves on blurred field backgrounds:
61.5% refused). This measure is taught by examples made from the model's own training photos, so the leaves are
of every crop and disease the model knows and only the background differs:
- `plain`: a training photo as it is (PlantVillage's sheet), or its leaf on a new plain sheet (paper white, grey,
  beige, dark: leafcut.plain_background), as leafdoc's advice asks;
- `scene`: the same leaf in place on a crop of a calibration field photo, sharp or out of focus.
A class-balanced logistic regression on the network's pooled features (the ONNX `features` output) separates the
two; its score (field.scene_scores) is one more input of the check (inference/field.py), weighed with the others
on validation leaves against real field photos. The leaves are cut as the background swap cuts them
(leafdoc/leafcut.py); photos whose leaf cannot be cut cleanly are passed over. NumPy and OpenCV only.
"""

from __future__ import annotations

import cv2
import numpy as np

from leafdoc.imaging.leafcut import cut, paste, plain_background
from leafdoc.inference.field import logistic

SCENE_MAX_SIDE = 640  # field photos are kept at most this large to crop scenes from
CROP_SHARE = (0.35, 1.0)  # a scene is a square crop of this share of the field photo's shorter side
BLURRED = 0.5  # share of scenes put out of focus, as behind a phone's close-up of one leaf
BLUR = (0.008, 0.025)  # their Gaussian blur's sigma, as a share of the side
ON_PLAIN_SHEET = 0.5  # share of the plain examples whose leaf is moved onto a new plain sheet
MIN_EXAMPLES = 20  # fewer usable training photos than this: no scene measure
L2, ITERATIONS = 1e-2, 1000


def scene_crop(scenes: list[np.ndarray], size: int, rng: np.random.Generator) -> np.ndarray:
    """A random square crop of a random scene, resized to `size`, out of focus BLURRED of the time (float32)."""
    scene = scenes[int(rng.integers(len(scenes)))]
    h, w = scene.shape[:2]
    side = max(8, int(min(h, w) * rng.uniform(*CROP_SHARE)))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = cv2.resize(scene[y : y + side, x : x + side], (size, size), interpolation=cv2.INTER_AREA)
    crop = crop.astype(np.float32)
    if rng.random() < BLURRED:
        crop = cv2.GaussianBlur(crop, (0, 0), size * float(rng.uniform(*BLUR)))
    return crop


def make_examples(
    images: np.ndarray, scenes: list[np.ndarray], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(plain, scene, kept): for each lab photo of `images` (N x S x S x 3 uint8) whose leaf cuts cleanly, the
    photo as it is or its leaf on a new plain sheet, and the same leaf in place on a scene crop; `kept`: the indices
    of those photos in `images`. Same order, same leaves."""
    plain, scene, kept = [], [], []
    size = images.shape[1]
    for i, x in enumerate(images):
        alpha = cut(x)
        if alpha is None:
            continue
        scene.append(paste(x, alpha, scene_crop(scenes, size, rng)))
        plain.append(paste(x, alpha, plain_background(rng, size, size)) if rng.random() < ON_PLAIN_SHEET else x)
        kept.append(i)
    empty = np.zeros((0, *images.shape[1:]), np.uint8)
    return (np.stack(plain) if plain else empty), (np.stack(scene) if scene else empty), np.asarray(kept, int)


def fit(plain_features: np.ndarray, scene_features: np.ndarray) -> dict | None:
    """The card's `field.scene`: weights and bias over the features (score > 0: a leaf in a scene), fitted by a
    class-balanced, L2-regularised logistic regression on standardised features; None with too few examples."""
    if min(len(plain_features), len(scene_features)) < MIN_EXAMPLES:
        return None
    x = np.r_[plain_features, scene_features].astype(np.float64)
    t = np.r_[np.zeros(len(plain_features)), np.ones(len(scene_features))]
    mu, sd = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)
    w, b = logistic((x - mu) / sd, t, iters=ITERATIONS, l2=L2)
    weights, bias = w / sd, b - float((w * mu / sd).sum())
    right = ((x @ weights + bias > 0) == (t == 1)).mean()
    return {
        "weights": [float(f"{v:.5g}") for v in weights],
        "bias": round(float(bias), 6),
        "examples": int(len(x)),
        "examples_right": round(float(right), 4),
    }
