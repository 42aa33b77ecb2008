"""Is this a photo like the lab photos the model was trained on, or a field photo it would only guess on?

A model trained on PlantVillage has seen one leaf on a plain background. A field photo (a leaf on the plant,
soil, hands, other leaves, sky) is a leaf too, so `not_a_leaf` is the wrong answer for it, and the model's
diagnosis on it is mostly wrong (the starter: right on 8% of the field-corn photos it answered). Two photo
properties, measured on the border of the model-ready image, say "lab" or "field" whatever the crop:
- `busy`: 1 - the share of the border that is plain background (smooth, and not leaf-coloured). A lab
  photo shows background around the leaf on at least part of its border; a field photo shows more leaves,
  soil or a hand there, or a piece of leaf that fills the frame.
- `clutter`: the share of the border that is edges (Canny, at 96 px).
Neither looks at what crop or disease is shown. Neither sees a leaf photographed on the plant against an
out-of-focus background, so (format 3) a third measure does: `scene`, a direction in the network's features that
tells a leaf on a plain background from the same leaf in a scene, taught by examples made from the training photos
(inference/scenes.py). They are standardised and weighed together with the model's two not-a-leaf distances
(ood.py) and its uncertainty into one score; weights by logistic regression of validation leaf photos against
example field photos and non-leaf photos, the threshold the lowest at which, by cross-validation, the model abstains
on at most a budget of unseen lab photos with all its checks together (calibrate below).

A refused photo is `unlike_training` (a field photo: advise a lab-like photo) or `not_a_leaf` (no leaf at all) by
a second logistic regression (`reason`), of the calibration field photos against the non-leaf examples, on the
two not-a-leaf distances and the share of leaf-coloured pixels: a leaf in a field is much nearer the training
leaves than a flower is, whatever its colour. Without non-leaf examples, by the leaf-coloured share alone.
benchmarks/field_photos.py measures it; `leafdoc calibrate --field DIR` fits it (card.json `field`). Only NumPy
and OpenCV.
"""

from __future__ import annotations

import hashlib
import logging
from math import ceil
from pathlib import Path

import cv2
import numpy as np

from leafdoc.modelfolder import ModelCard

log = logging.getLogger(__name__)

MEASURE_PX = 96  # every image is measured at this size, so the check does not depend on the model's input
BORDER = 8  # the border ring is 1/8 of the side wide
SMOOTH_STD = 6.0  # local (5x5) grey-level standard deviation under which a pixel is smooth
# Leaf colours in OpenCV's HSV: hue 20-190 degrees (yellow, through green), saturation and value not low.
# PlantVillage's grey, white, black and purple backgrounds fall outside; rust and blight lesions inside.
LEAF_HUE = (10, 95)
LEAF_MIN_SAT, LEAF_MIN_VAL = 80, 40
# Without a fitted `reason` (no non-leaf examples at calibration): a refused photo with at least this share of
# leaf-coloured pixels is `unlike_training`, else `not_a_leaf`. Measured (benchmarks/field_photos.py): medians
# field-corn 0.61, PlantVillage 0.33, flowers 0.26; 82% of held-out field-corn photos and 43% of flowers are at
# or above it. Green foliage behind a flower looks leafy.
LEAFY_SHARE = 0.3
# The share of unseen lab photos the model may abstain on, all checks together (issue 21: at most 2%; a quarter
# point kept for the noise of ~660 validation photos). The threshold is set for it by cross-validation.
DEFAULT_BUDGET = 0.0175
CV_FOLDS, CV_REPEATS = 5, 4
FORMAT = 3


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


def logistic(x: np.ndarray, t: np.ndarray, iters: int = 3000, l2: float = 1e-2) -> tuple[np.ndarray, float]:
    """Weights and intercept of a class-balanced logistic regression; plain gradient descent."""
    sw = np.where(t == 1, (t == 0).sum() / max((t == 1).sum(), 1), 1.0)
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(x @ w + b, -50, 50)))
        g = (p - t) * sw
        w -= 0.5 * (x.T @ g / sw.sum() + l2 * w)
        b -= 0.5 * g.sum() / sw.sum()
    return w, b


def scene_scores(features: np.ndarray, scene: dict) -> np.ndarray:
    """(N,) the `scene` measure of the network's pooled features (card `field.scene`, fitted by scenes.fit):
    above 0 a leaf in a scene, below 0 a leaf on a plain background."""
    return np.asarray(features, np.float64) @ np.asarray(scene["weights"], np.float64) + float(scene["bias"])


class FieldCheck:
    """The card's `field` section, applied: score = weights . [ood distances (2), busy, clutter standardised,
    (format 2) the model's own uncertainty: log of its normalised softmax entropy, standardised, and (format 3,
    with `scene`) the scene measure of the features, standardised]."""

    def __init__(self, section: dict):
        self.weights = np.asarray(section["weights"], dtype=np.float64)
        self.centre = np.asarray(section["centre"], dtype=np.float64)
        self.spread = np.asarray(section["spread"], dtype=np.float64)
        self.threshold = float(section["threshold"])
        self.leafy_share = float(section.get("leafy_share", LEAFY_SHARE))
        reason = section.get("reason") or {}
        self.reason_weights = np.asarray(reason["weights"], np.float64) if "weights" in reason else None
        self.reason_bias = float(reason.get("bias", 0.0))
        scene = section.get("scene") if len(self.centre) > 3 else None
        # The 1,280 weights as an array once, not per photo served.
        self.scene = {**scene, "weights": np.asarray(scene["weights"], np.float64)} if scene else None

    @staticmethod
    def inputs(ood_components, photo, centre, spread, probs=None, scene=None) -> np.ndarray:
        """The score's inputs. `probs` (N, classes) adds the uncertainty column when `centre` has a third
        entry (format 2), `scene` (N,) the scene column when it has a fourth (format 3 with a scene measure);
        sections with fewer entries ignore them."""
        centre, spread = np.asarray(centre, np.float64), np.asarray(spread, np.float64)
        cols = [np.asarray(ood_components, np.float64), (photo[:, :2] - centre[:2]) / spread[:2]]
        if len(centre) > 2:
            cols.append(((uncertainty(probs) - centre[2]) / spread[2])[:, None])
        if len(centre) > 3:
            cols.append(((np.asarray(scene, np.float64) - centre[3]) / spread[3])[:, None])
        return np.concatenate(cols, axis=1)

    def scores(
        self,
        ood_components: np.ndarray,
        photo: np.ndarray,
        probs: np.ndarray | None = None,
        features: np.ndarray | None = None,
    ) -> np.ndarray:
        """The check's score per photo; `features` (the network's pooled features) are needed with a scene
        measure."""
        scene = scene_scores(features, self.scene) if self.scene else None
        return self.inputs(ood_components, photo, self.centre, self.spread, probs, scene) @ self.weights

    def field_like(self, ood_components: np.ndarray, photo: np.ndarray) -> np.ndarray:
        """For photos this check refuses: True for a field photo (`unlike_training`), False for no leaf at all
        (`not_a_leaf`). By the card's `reason` model where calibration had non-leaf examples, else by the share
        of leaf-coloured pixels."""
        if self.reason_weights is not None:
            return reason_inputs(ood_components, photo) @ self.reason_weights + self.reason_bias > 0
        return np.asarray(photo, np.float64)[:, 2] >= self.leafy_share

    @classmethod
    def from_card(cls, card: ModelCard) -> FieldCheck | None:
        """The check, or None without one; a section of a format newer than this leafdoc knows is not applied
        (the not-a-leaf check then decides alone) rather than read wrongly, and the log says so."""
        if not (card.field and card.ood):
            return None
        if int(card.field.get("format", 1)) > FORMAT:
            log.warning(
                "card.json's unlike-training check has format %s, newer than this leafdoc's %s: not applied "
                "(upgrade leafdoc, or re-run `leafdoc calibrate --field`)",
                card.field.get("format"),
                FORMAT,
            )
            return None
        return cls(card.field)


def uncertainty(probs: np.ndarray) -> np.ndarray:
    """(N, classes) softmax -> (N,) log of the entropy divided by its largest value (log classes): about -9 for
    a sure answer, 0 for no idea. Field photos leave a lab-trained model less sure than lab photos do."""
    p = np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)
    entropy = -(p * np.log(p)).sum(axis=1) / np.log(max(p.shape[1], 2))
    return np.log(entropy + 1e-4)


def _fit(xv: np.ndarray, xf: np.ndarray, xn: np.ndarray) -> np.ndarray:
    """Weights (each >= 0, summing to the number of inputs) of leaves against field and non-leaf photos;
    field and non-leaf photos weigh the same in the fit, whatever their numbers."""
    reps = max(1, round(len(xn) / max(len(xf), 1)))
    strange = np.r_[np.repeat(xf, reps, axis=0), xn]
    w, _ = logistic(np.r_[xv, strange], np.r_[np.zeros(len(xv)), np.ones(len(strange))])
    w = np.maximum(w, 0.0)  # each number only ever makes a photo stranger
    if w.sum() <= 0:
        w = np.ones(xv.shape[1])
    return w / w.sum() * xv.shape[1]


def _refused_out_of_fold(xv, xf, xn, other, shares, folds=CV_FOLDS, repeats=CV_REPEATS):
    """For each candidate `share` (the threshold at the (1 - share) quantile of the validation leaves the weights
    were fitted on): the share of *other* validation leaves refused (by this check or the `other` checks) and of
    other field photos refused, by K-fold cross-validation. Fitting the weights and the threshold on the same
    photos makes both look better than they are on photos the check never saw; these figures do not.
    None when there are too few photos to hold any out (fewer than 2 leaves or field photos)."""
    folds = min(folds, len(xv), len(xf))
    if folds < 2:
        return None
    rng = np.random.default_rng(0)
    val_refused, field_refused = np.zeros(len(shares)), np.zeros(len(shares))
    for _ in range(repeats):
        fv, ff = rng.permutation(len(xv)) % folds, rng.permutation(len(xf)) % folds
        for k in range(folds):
            w = _fit(xv[fv != k], xf[ff != k], xn)
            fitted, held_v, held_f = xv[fv != k] @ w, xv[fv == k] @ w, xf[ff == k] @ w
            t = np.quantile(fitted, 1 - np.asarray(shares), method="higher")[:, None]  # one threshold per share
            val_refused += ((held_v[None] > t) | other[fv == k][None]).sum(axis=1)
            field_refused += (held_f[None] > t).sum(axis=1)
    return val_refused / (repeats * len(xv)), field_refused / (repeats * len(xf))


def reason_inputs(ood_components: np.ndarray, photo: np.ndarray) -> np.ndarray:
    """What tells a field photo from no leaf at all: the two not-a-leaf distances (a leaf in a field is nearer
    the training leaves than a flower or a truck) and the share of leaf-coloured pixels."""
    return np.c_[np.asarray(ood_components, np.float64), np.asarray(photo, np.float64)[:, 2]]


def _fit_reason(xf: np.ndarray, xn: np.ndarray) -> tuple[np.ndarray, float]:
    """Field photos (1) against non-leaf photos (0), class-balanced, on standardised inputs; returned as weights
    and bias of the raw inputs."""
    x = np.r_[xf, xn]
    mu, sd = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)
    w, b = logistic((x - mu) / sd, np.r_[np.ones(len(xf)), np.zeros(len(xn))])
    return w / sd, b - float((w * mu / sd).sum())


def fit_reason(field: tuple[np.ndarray, np.ndarray], nonleaf: tuple[np.ndarray, np.ndarray]) -> dict | None:
    """The card's `field.reason`: which refused photos are field photos (`unlike_training`) and which are no leaf
    (`not_a_leaf`), fitted on the calibration field photos against the non-leaf examples, each (ood components,
    photo_features). With its 5-fold cross-validated figures. None with fewer than 5 photos of either kind."""
    xf, xn = reason_inputs(*field), reason_inputs(*nonleaf)
    if min(len(xf), len(xn)) < CV_FOLDS:
        return None
    rng = np.random.default_rng(0)
    ff, fn = rng.permutation(len(xf)) % CV_FOLDS, rng.permutation(len(xn)) % CV_FOLDS
    field_right = nonleaf_right = 0
    for k in range(CV_FOLDS):
        w, b = _fit_reason(xf[ff != k], xn[fn != k])
        field_right += int((xf[ff == k] @ w + b > 0).sum())
        nonleaf_right += int((xn[fn == k] @ w + b <= 0).sum())
    w, b = _fit_reason(xf, xn)
    return {
        "inputs": ["features distance", "colour distance", "leaf-coloured share"],
        "weights": [round(float(v), 6) for v in w],
        "bias": round(b, 6),
        "rule": "unlike_training when weights . inputs + bias > 0 (logistic regression of the calibration field "
        "photos against the non-leaf examples), else not_a_leaf",
        "field_as_unlike_training_cv": round(field_right / len(xf), 4),
        "nonleaf_as_not_a_leaf_cv": round(nonleaf_right / len(xn), 4),
    }


def calibrate(
    train_photo: np.ndarray,
    val: tuple[np.ndarray, np.ndarray, np.ndarray],
    field: tuple[np.ndarray, np.ndarray, np.ndarray],
    nonleaf: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    sources: list[str] | None = None,
    budget: float = DEFAULT_BUDGET,
    val_other: np.ndarray | None = None,
    scene: dict | None = None,
) -> dict:
    """The card's `field` section. Each group is (ood components (N, 2), photo_features (N, 3), softmax (N, C)),
    and with `scene` (the fitted scene measure, scenes.fit) a fourth entry: the network's features (N, D).
    `val_other`: which validation leaves the model's other checks refuse anyway (poor photo, unsure). The
    threshold is the lowest that, in cross-validation, abstains on at most `budget` of unseen validation leaves
    with those checks together."""
    q1, med, q3 = np.percentile(train_photo[:, :2], [25, 50, 75], axis=0)
    # Uncertainty and the scene measure are standardised on validation: the training split's are all alike.
    uq1, umed, uq3 = np.percentile(uncertainty(val[2]), [25, 50, 75])
    centre = np.r_[med, umed]
    spread = np.maximum(np.r_[q3 - q1, uq3 - uq1], 0.01)
    if scene:
        sq1, smed, sq3 = np.percentile(scene_scores(val[3], scene), [25, 50, 75])
        centre, spread = np.r_[centre, smed], np.r_[spread, max(sq3 - sq1, 0.01)]

    def x(group):
        return FieldCheck.inputs(
            group[0], group[1], centre, spread, group[2], scene_scores(group[3], scene) if scene else None
        )

    xv, xf = x(val), x(field)
    xn = x(nonleaf) if nonleaf is not None and len(nonleaf[0]) else np.zeros((0, xv.shape[1]))
    other = np.zeros(len(xv), bool) if val_other is None else np.asarray(val_other, bool)
    shares = np.linspace(0.001, 0.03, 59)
    cv = _refused_out_of_fold(xv, xf, xn, other, shares)
    fits = np.flatnonzero(np.maximum.accumulate(cv[0]) <= budget) if cv else []  # refusals only grow with the share
    i = int(fits[-1]) if len(fits) else 0  # too few photos to cross-validate: the strictest threshold tried
    w = _fit(xv, xf, xn)
    sv = xv @ w
    reason = fit_reason(field[:2], nonleaf[:2]) if len(xn) else None
    threshold = float(np.quantile(sv, 1 - shares[i], method="higher"))
    section = {
        "format": FORMAT if scene else 2,  # without a scene measure, leafdocs that read format 2 can apply it
        "method": "weighted sum of the two not-a-leaf distances, two border measures (busy, clutter), the "
        "model's uncertainty (softmax entropy)" + (" and the scene measure of its features" if scene else ""),
        "weights": [round(float(v), 4) for v in w],
        "centre": [round(float(v), 6) for v in centre],
        "spread": [round(float(v), 6) for v in spread],
        "threshold": round(threshold, 6),
        "leafy_share": LEAFY_SHARE,
        "budget": budget,
        "rule": f"the lowest threshold abstaining on at most {budget:.2%} of unseen validation leaf photos with the "
        f"other checks, by {CV_FOLDS}-fold cross-validation; a refused photo is unlike_training or not_a_leaf by "
        + ("`reason`" if reason else f"its leaf-coloured share (at least {LEAFY_SHARE:.0%}: unlike_training)"),
        "val_refused": round(float(np.mean(sv > threshold)), 4),
        "val_abstained_cv": round(float(cv[0][i]), 4) if cv else None,
        "n_val": int(len(sv)),
        "field_refused": round(float(np.mean(xf @ w > threshold)), 4),
        "field_refused_cv": round(float(cv[1][i]), 4) if cv else None,
        "n_field": int(len(xf)),
        "sources": sources or [],
    }
    if reason:
        section["reason"] = reason
    if len(xn):
        section["nonleaf_refused"] = round(float(np.mean(xn @ w > threshold)), 4)
        section["n_nonleaf"] = int(len(xn))
    if scene:
        section["scene"] = scene  # last: 1,280 weights
    return section


def budget_missed(section: dict) -> str | None:
    """Why the threshold of a card's `field` section does not keep the abstention within its budget, in words, or None
    when it does. `calibrate` takes the strictest threshold it tries when none keeps within the budget (or when
    there are too few photos to cross-validate): with 15 validation photos one photo is 6.7% of them, over a 1.75%
    budget whatever the threshold."""
    budget, n_val, cv = section.get("budget"), int(section.get("n_val") or 0), section.get("val_abstained_cv")
    if budget is None or (cv is not None and cv <= budget + 5e-5):  # the figures are rounded to 4 places
        return None
    enough = ceil(1 / budget)  # validation photos for one photo to be within the budget
    if cv is None:
        what = (
            f"the abstention budget of {budget:.2%} could not be checked: too few photos to cross-validate "
            f"({n_val} validation, {section.get('n_field', 0)} field photos); the strictest threshold tried is used"
        )
    else:
        what = (
            f"the abstention budget of {budget:.2%} could not be met: the model abstains on {cv:.1%} of unseen lab "
            "photos even at the strictest threshold tried"
        )
    if n_val and 1 / n_val > budget:
        return (
            f"{what}. Too few validation photos: one photo is {1 / n_val:.1%} of {n_val}. Add photos (at least "
            f"{enough} validation photos make one photo {1 / enough:.2%}), or pass a larger --field-budget."
        )
    return (
        f"{what} (the model's other checks, poor photo and not sure, count in it). Pass a larger --field-budget, or "
        "add photos."
    )
