"""Accuracy against training photos: would more photos close the gap? From runs that differ in how many
training photos they had (a recipe's `train_share`), fit test error = a * n^-b (n: training photos per class;
error falls as a power of the data's size, Hestness et al. 2017) and say how many photos per class the fit
puts at a target accuracy, with a 95% interval from resampling the test photos (paired: every run is scored
on the same photos, so a resample moves all the points together, as a different test set would)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TARGETS = (0.97, 0.98, 0.99)
RESAMPLES = 2000


@dataclass(frozen=True)
class Curve:
    per_class: list[float]  # training photos per class of each point, ascending
    accuracy: list[float]  # test accuracy of each point
    names: list[str]
    a: float
    b: float  # error = a * n^-b; b > 0: error falls with more photos
    n_test: int
    needed: dict[float, tuple[float, float, float]]  # target -> (photos per class: fit, 2.5%, 97.5%)

    def error_at(self, per_class: float) -> float:
        return self.a * per_class ** (-self.b)


def fit_power_law(per_class: np.ndarray, error: np.ndarray) -> tuple[float, float]:
    """Least squares of log(error) on log(n): (a, b) with error = a * n^-b."""
    slope, intercept = np.polyfit(np.log(per_class), np.log(error), 1)
    return float(math.exp(intercept)), float(-slope)


def photos_for(a: float, b: float, accuracy: float) -> float:
    """Training photos per class at which the fitted curve reaches `accuracy` (inf if it never falls, or
    falls so slowly that the count overflows)."""
    if b <= 0:
        return math.inf
    exponent = math.log(a / (1 - accuracy)) / b
    return math.exp(exponent) if exponent < 700 else math.inf


def _floor(error: np.ndarray, n_test: int) -> np.ndarray:
    """A run with no test mistakes has error 0, whose log is undefined: count it as half a mistake."""
    return np.maximum(error, 0.5 / n_test)


def fit_curve(runs: list[dict], n_classes: int, targets=TARGETS, resamples: int = RESAMPLES, seed: int = 0):
    """The curve through `runs` (each with train_images, test accuracy and test_outcomes on the same
    photos), or None when they do not make one: fewer than three training-set sizes, or outcomes missing or
    scored on different photos."""
    runs = sorted(runs, key=lambda r: r["train_images"])
    sizes = [r["train_images"] for r in runs]
    outcomes = [r.get("test_outcomes") for r in runs]
    if len(set(sizes)) < 3 or len(set(sizes)) != len(sizes) or not all(outcomes):
        return None
    if any(o["images"] != outcomes[0]["images"] for o in outcomes):
        return None
    right = np.array([[c == "1" for c in o["correct"]] for o in outcomes], dtype=np.float64)
    n_test = right.shape[1]
    per_class = np.array(sizes, dtype=np.float64) / n_classes
    accuracy = right.mean(axis=1)
    a, b = fit_power_law(per_class, _floor(1 - accuracy, n_test))
    rng = np.random.default_rng(seed)
    draws = np.empty((resamples, len(targets)))
    for i in range(resamples):
        sample = right[:, rng.integers(0, n_test, n_test)].mean(axis=1)
        ra, rb = fit_power_law(per_class, _floor(1 - sample, n_test))
        draws[i] = [photos_for(ra, rb, t) for t in targets]
    needed = {}
    for j, t in enumerate(targets):
        # Inf where a resampled curve does not fall: no interpolation, which would subtract inf from inf.
        lo, hi = np.quantile(draws[:, j], [0.025, 0.975], method="inverted_cdf")
        needed[t] = (photos_for(a, b, t), float(lo), float(hi))
    return Curve(
        per_class=per_class.tolist(),
        accuracy=accuracy.tolist(),
        names=[r["name"] for r in runs],
        a=a,
        b=b,
        n_test=n_test,
        needed=needed,
    )


def curve_runs(results: dict) -> list[dict]:
    """The runs that make the curve: an experiment with `train_share` runs, each run trained from the same
    start on the main folder's photos alone (no class imbalance, no extra photos, not continued)."""
    runs = results["runs"]
    if not any(r.get("train_share") for r in runs):
        return []
    return [
        r
        for r in runs
        if r["kind"] == "run" and not r.get("init_from") and not r.get("with_extra") and not r.get("per_class")
    ]


def _count(n: float) -> str:
    return "out of reach (the curve is flat or rising)" if math.isinf(n) else f"{n:,.0f}"


def curve_section(curve: Curve) -> list[str]:
    """The report's section: the points, the fit, and where each target falls."""
    top = curve.per_class[-1]
    rows = [
        f"| {name} | {n:.1f} | {acc:.1%} | {curve.error_at(n):.1%} |"
        for name, n, acc in zip(curve.names, curve.per_class, curve.accuracy, strict=True)
    ]
    targets = []
    for t, (n, lo, hi) in curve.needed.items():
        beyond = f"{n / top:.1f}× the largest run" if not math.isinf(n) else "–"
        targets.append(f"| {t:.0%} | {_count(n)} | {_count(lo)} – {_count(hi)} | {beyond} |")
    return [
        "## Accuracy against training photos",
        "",
        f"Test error fitted as a · n^−b over {len(curve.names)} runs (n: training photos per class): "
        f"**a = {curve.a:.3g}, b = {curve.b:.2f}** (b = 0.5 would halve the error for 4× the photos). The "
        f"intervals come from {RESAMPLES} resamples of the {curve.n_test} test photos, every run's outcomes "
        "resampled together. An extrapolation far beyond the largest run is a guess the curve's shape "
        "supports, not a measurement: read it as an order of magnitude.",
        "",
        "| run | training photos per class | test accuracy | fitted test error |",
        "|---|---|---|---|",
        *rows,
        "",
        "| test accuracy aimed for | photos per class, by the fit | 95% interval | |",
        "|---|---|---|---|",
        *targets,
        "",
    ]
