"""Out-of-distribution score: is this photo like the leaf photos the model was trained on?

Two distances, each measured against the training split and combined into one score:
- Mahalanobis distance of the pooled backbone features (the ONNX `features` output) to the nearest class
  mean, with one covariance shared by all classes (Lee et al. 2018);
- Mahalanobis distance of a colour histogram (hue x saturation, and brightness) of the model-ready image to
  the training images' histograms: lab leaf photos have a narrow range of colours.
Each is log-scaled and standardised by its median and spread on the training split. The score is a
weighted sum: weights fitted on the validation split (leaf) against non-leaf example photos when the
trainer was given some (logistic regression on the two numbers), else equal. The threshold is the
score's (1 - target) quantile on the validation split, so about `target` of unseen leaf photos of the
training distribution are refused. benchmarks/ood.py compares this with the softmax and the energy score.

The fitted statistics live in `ood.npz` in the model folder; the weights and threshold in card.json
(`ood`). Only NumPy and OpenCV: serving has no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from leafdoc.modelfolder import OOD_FILE, ModelCard

HUE_BINS, SAT_BINS, VAL_BINS = 18, 4, 8
DEFAULT_TARGET = 0.01  # share of validation leaf photos the threshold refuses
FORMAT = 1


def colour_features(images: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 RGB -> (N, 80) square roots of normalised hue-saturation and brightness histograms."""
    out = np.empty((len(images), HUE_BINS * SAT_BINS + VAL_BINS), dtype=np.float32)
    for i, x in enumerate(images):
        hsv = cv2.cvtColor(np.ascontiguousarray(x, dtype=np.uint8), cv2.COLOR_RGB2HSV)
        hs = cv2.calcHist([hsv], [0, 1], None, [HUE_BINS, SAT_BINS], [0, 180, 0, 256]).ravel()
        v = cv2.calcHist([hsv], [2], None, [VAL_BINS], [0, 256]).ravel()
        out[i] = np.sqrt(np.r_[hs / max(hs.sum(), 1), v / max(v.sum(), 1)])
    return out


def _whitener(residuals: np.ndarray, shrink: float) -> np.ndarray:
    """W such that ||r @ W||^2 is the Mahalanobis distance under the residuals' covariance."""
    cov = residuals.T @ residuals / max(len(residuals) - 1, 1)
    if shrink:
        cov = (1 - shrink) * cov + shrink * np.trace(cov) / len(cov) * np.eye(len(cov))
    w, v = np.linalg.eigh(cov)
    # Floor the variances at 1e-4 of their mean: directions the training photos never vary in (fewer photos
    # than features) would otherwise get near-infinite weight. The starter's smallest is 1e-3 of the mean.
    return v / np.sqrt(np.maximum(w, 1e-4 * max(float(w.mean()), 1e-12)))


@dataclass
class OodScorer:
    feat_mean: np.ndarray  # (D,)
    feat_whiten: np.ndarray  # (D, D)
    class_means_w: np.ndarray  # (C, D): class means, centred and whitened
    colour_mean: np.ndarray  # (H,)
    colour_whiten: np.ndarray  # (H, H)
    centre: np.ndarray  # (2,) training medians of the two log distances
    spread: np.ndarray  # (2,) training interquartile ranges

    @classmethod
    def fit(cls, features: np.ndarray, y: np.ndarray, images: np.ndarray) -> OodScorer:
        f = np.asarray(features, dtype=np.float64)
        mean = f.mean(0)
        z = f - mean
        classes = np.unique(y)
        means = np.stack([z[y == c].mean(0) for c in classes])
        index = {c: i for i, c in enumerate(classes)}
        whiten = _whitener(z - means[[index[c] for c in y]], shrink=0.0)
        col = colour_features(images).astype(np.float64)
        cmean = col.mean(0)

        def build(w: np.ndarray) -> OodScorer:
            return cls(
                mean.astype(np.float32),
                w.astype(np.float32),
                (means @ w.astype(np.float64)).astype(np.float32),
                cmean.astype(np.float32),
                _whitener(col - cmean, shrink=0.1).astype(np.float32),
                np.zeros(2, np.float32),
                np.ones(2, np.float32),
            )

        scorer = build(whiten)
        raw = scorer.log_distances(features, images)
        # Half precision halves ood.npz (3.5 MB for 1280 features); keep it only if the distances agree.
        with np.errstate(over="ignore"):  # values past float16's range become inf: checked just below
            half = whiten.astype(np.float16)
        if np.isfinite(half).all():
            small = build(half)
            raw_half = small.log_distances(features, images)
            if np.abs(raw_half - raw).max() < 0.01:
                scorer, raw = small, raw_half
        q1, med, q3 = np.percentile(raw, [25, 50, 75], axis=0)
        # Floor the spread: a tiny training set can put every photo at the same distance (spread 0).
        scorer.centre, scorer.spread = med.astype(np.float32), np.maximum(q3 - q1, 0.05).astype(np.float32)
        return scorer

    def log_distances(self, features: np.ndarray, images: np.ndarray) -> np.ndarray:
        """(N, 2): log Mahalanobis distance of the features to the nearest class, and of the colours."""
        return self._log_distances(features, colour_features(images))

    def _log_distances(self, features: np.ndarray, colours: np.ndarray) -> np.ndarray:
        zw = (np.asarray(features, dtype=np.float32) - self.feat_mean) @ self.feat_whiten
        m = self.class_means_w
        # Differences, not |z|^2 - 2 z.m + |m|^2: that expansion cancels badly near a class mean.
        d2 = (
            np.concatenate([((zw[i : i + 128, None, :] - m[None]) ** 2).sum(-1) for i in range(0, len(zw), 128)])
            if len(zw)
            else np.zeros((0, len(m)), np.float32)
        )
        cw = (np.asarray(colours, dtype=np.float32) - self.colour_mean) @ self.colour_whiten
        return np.log(np.maximum(np.c_[d2.min(1), (cw**2).sum(1)], 1e-6))

    def components(self, features: np.ndarray, images: np.ndarray) -> np.ndarray:
        """(N, 2) standardised distances: 0 is a typical training photo, larger is stranger."""
        return self.components_of(features, colour_features(images))

    def components_of(self, features: np.ndarray, colours: np.ndarray) -> np.ndarray:
        """`components` of photos known by their features and colour_features (a bank's, inference/otherleaves.py)."""
        return (self._log_distances(features, colours) - self.centre) / self.spread

    def save(self, path: Path) -> None:
        import io

        from leafdoc.core.atomic import atomic_write_bytes

        buf = io.BytesIO()
        # The big matrix in half precision: scores move by ~1e-3, the file halves (3 MB for 1280 features).
        arrays = {k: getattr(self, k) for k in self.__dataclass_fields__}
        with np.errstate(over="ignore"):  # values past float16's range fail the check below: kept in float32
            half = arrays["feat_whiten"].astype(np.float16)
        if np.array_equal(half.astype(np.float32), arrays["feat_whiten"]):  # fit() chose half precision
            arrays["feat_whiten"] = half
        np.savez(buf, format=np.array(FORMAT), **arrays)
        atomic_write_bytes(Path(path), buf.getvalue())

    @classmethod
    def load(cls, path: Path) -> OodScorer:
        with np.load(path) as z:
            return cls(**{k: z[k].astype(np.float32) for k in cls.__dataclass_fields__})


def fit_weights(val: np.ndarray, nonleaf: np.ndarray | None) -> tuple[list[float], str]:
    """Weights of the two standardised distances: logistic regression leaf vs non-leaf, else equal."""
    if nonleaf is None or len(nonleaf) < 10 or len(val) < 10:
        return [1.0, 1.0], "equal weights (no non-leaf photos given)"
    x = np.r_[val, nonleaf].astype(np.float64)
    t = np.r_[np.zeros(len(val)), np.ones(len(nonleaf))]
    sw = np.where(t == 1, len(val) / len(nonleaf), 1.0)  # balance the two sides
    w, b = np.zeros(2), 0.0
    for _ in range(2000):  # plain gradient descent: two weights do not need a solver
        p = 1 / (1 + np.exp(-np.clip(x @ w + b, -50, 50)))
        g = (p - t) * sw
        w -= 0.1 * (x.T @ g / sw.sum() + 1e-3 * w)
        b -= 0.1 * g.sum() / sw.sum()
    w = np.maximum(w, 0.0)
    if w.sum() <= 0:
        return [1.0, 1.0], "equal weights (the fit gave none)"
    w = w / w.sum() * 2
    return [round(float(v), 4) for v in w], "logistic regression, validation leaf photos vs non-leaf photos"


def calibrate(
    scorer: OodScorer,
    val: tuple[np.ndarray, np.ndarray],
    nonleaf: tuple[np.ndarray, np.ndarray] | None = None,
    nonleaf_sources: list[str] | None = None,
    target: float = DEFAULT_TARGET,
) -> dict:
    """The card's `ood` section: weights, threshold, and what they do on the calibration images."""
    v = scorer.components(*val)
    n = scorer.components(*nonleaf) if nonleaf is not None and len(nonleaf[0]) else None
    weights, how = fit_weights(v, n)
    sv = v @ np.array(weights)
    threshold = float(np.quantile(sv, 1 - target, method="higher")) if len(sv) else float("inf")
    section = {
        "format": FORMAT,
        "method": "mahalanobis(features) + mahalanobis(colour histogram), standardised, weighted sum",
        "file": OOD_FILE,
        "weights": weights,
        "weights_rule": how,
        "threshold": round(threshold, 6),
        "rule": f"refuse above the {1 - target:.1%} quantile of validation leaf photos",
        "val_refused": round(float(np.mean(sv > threshold)), 4),
        "n_val": int(len(sv)),
    }
    if n is not None:
        section["nonleaf_refused"] = round(float(np.mean(n @ np.array(weights) > threshold)), 4)
        section["n_nonleaf"] = int(len(n))
        section["nonleaf_sources"] = nonleaf_sources or []
    return section


@dataclass
class OodCheck:
    scorer: OodScorer
    weights: np.ndarray
    threshold: float

    @classmethod
    def from_model_dir(cls, model_dir: Path, card: ModelCard) -> OodCheck | None:
        """The model's OOD check, or None for model folders from before it (softmax threshold only)."""
        section = card.ood
        path = Path(model_dir) / OOD_FILE
        if not section or not path.is_file():
            return None
        return cls(OodScorer.load(path), np.asarray(section["weights"], dtype=np.float32), float(section["threshold"]))

    def scores(self, features: np.ndarray, images: np.ndarray) -> np.ndarray:
        return self.scores_of(features, colour_features(images))

    def scores_of(self, features: np.ndarray, colours: np.ndarray) -> np.ndarray:
        """`scores` of photos known by their features and colour_features, not their pixels."""
        return self.scorer.components_of(features, colours) @ self.weights


# ---- fitting a model folder's check (training time, or `leafdoc calibrate` for older folders) --------

NONLEAF_PER_FOLDER = 1000  # at most this many photos from each non-leaf folder (a seeded sample)


def load_nonleaf(
    folders: list[str | Path],
    prepare: Callable[[Path], np.ndarray],
    size: int,
    limit: int = NONLEAF_PER_FOLDER,
    seed: int = 0,
    missing_ok: bool = False,
):
    """Model-ready arrays (`size` px) of non-leaf example photos (any image files under each folder, recursively), as
    `prepare` (a model's own preprocessing: `Predictor.preprocess`) makes them. `missing_ok`: skip (and name) folders
    that are gone, as when a retraining job runs on another machine."""
    import random

    from leafdoc.core.errors import ConfigError, LeafdocError
    from leafdoc.imaging.photos import is_image_name

    arrays, sources = [], []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir() and missing_ok:
            sources.append(f"{folder} (missing: skipped)")
            continue
        if not folder.is_dir():
            raise ConfigError(
                f"{folder}: no such folder of non-leaf photos.",
                hint="Pass folders of ordinary photos that are not leaves (e.g. flowers, CIFAR-10), or none.",
            )
        files = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_name(p))
        random.Random(seed).shuffle(files)
        n = 0
        for f in files[:limit]:
            try:
                arrays.append(prepare(f))
                n += 1
            except LeafdocError:
                continue  # a broken example photo is not worth failing a training run for
        sources.append(f"{folder.parent.name}/{folder.name} ({n} photos)")
    empty = np.zeros((0, size, size, 3), np.uint8)
    return (np.stack(arrays) if arrays else empty), sources


@dataclass
class NonleafPhotos:
    """Non-leaf example photos, model-ready and scored once: both checks are calibrated against them."""

    images: np.ndarray  # (N, S, S, 3) uint8, as the model sees them (Predictor.preprocess)
    features: np.ndarray  # (N, D)
    probabilities: np.ndarray  # (N, C)
    sources: list[str]  # what each folder gave, for the card


def nonleaf_photos(folders: list[str | Path], predictor) -> NonleafPhotos | None:
    """Load the non-leaf folders (missing ones named and skipped) and score them with `predictor`;
    None when no folder is given."""
    if not folders:
        return None
    arrays, sources = load_nonleaf(list(folders), predictor.preprocess, predictor.size, missing_ok=True)
    if not len(arrays):
        return NonleafPhotos(arrays, np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32), sources)
    out = predictor.predict_arrays(arrays, ["probabilities", "features"])
    return NonleafPhotos(arrays, out["features"], out["probabilities"], sources)


def fit_model_dir(
    model_dir: Path,
    predictor,
    train: tuple[np.ndarray, np.ndarray],
    val_images: np.ndarray,
    nonleaf: NonleafPhotos | None = None,
    target: float = DEFAULT_TARGET,
    val_features: np.ndarray | None = None,
    train_features: np.ndarray | None = None,
) -> dict | None:
    """Fit the check on the training split, calibrate it on validation (+ non-leaf photos), write ood.npz.
    `nonleaf`: from nonleaf_photos(). `val_features`: the validation images' features when the caller already
    has them from its own pass (a training run scores validation once for everything); otherwise predicted here;
    `train_features` likewise for the training images.

    Returns the card's `ood` section, or None when the model has no `features` output.
    """
    if "features" not in predictor.output_names:
        return None
    images, y = train
    feats = train_features
    if feats is None:
        feats = predictor.predict_arrays(images, ["features"])["features"]
    scorer = OodScorer.fit(feats, y, images)
    if val_features is None:
        val_features = predictor.predict_arrays(val_images, ["features"])["features"]
    val = (val_features, val_images)
    examples = (nonleaf.features, nonleaf.images) if nonleaf is not None and len(nonleaf.images) else None
    section = calibrate(scorer, val, examples, nonleaf.sources if nonleaf else [], target)
    scorer.save(Path(model_dir) / OOD_FILE)
    return section
