"""Drift: do the photos the model gets still look like the ones it was validated on?

A window of answers (from the catalog, data/predictions.py) is compared with the model's baseline (its
validation photos' answers, inference/baseline.py, kept in the card as `baseline`):

- abstentions: a warning when the window's abstention rate is at least twice the validation one (and at
  least `MIN_ABSTENTIONS` answers abstained, so that two unlucky photos do not raise it);
- the not-a-leaf score's distribution and the mix of predicted labels: the population stability index (PSI)
  between the window's histogram and the baseline's. Its bound is calibrated on validation: the 99th
  percentile of the PSI of `n` photos drawn from the validation distribution itself (what sampling noise
  alone gives at the window's size), and never below `PSI_FLOOR` (0.1, the usual "moderate shift" mark),
  so that a large window does not warn about a shift too small to matter.

Pure NumPy: no catalog, no model.
"""

from __future__ import annotations

import math

import numpy as np

# The not-a-leaf score is binned in tenths of the model's threshold: bin 10 starts at the threshold, and the
# last bin holds everything from 3x the threshold up. The same bins for the baseline and for every answer.
SCORE_BIN_WIDTH = 0.1
SCORE_BINS = 31
PSI_FLOOR = 0.1
PSI_QUANTILE = 0.99
PSI_DRAWS = 400
MIN_ANSWERS = 50  # fewer answers in a window: no drift verdict at all (too few to tell)
MIN_ABSTENTIONS = 5
EPS = 1e-4


def score_bin(score: float | None, threshold: float | None) -> int | None:
    if score is None or threshold is None or not threshold > 0 or not math.isfinite(score):
        return None
    return int(min(max(score / threshold / SCORE_BIN_WIDTH, 0), SCORE_BINS - 1))


def _proportions(counts: np.ndarray) -> np.ndarray:
    p = np.asarray(counts, dtype=float) + EPS
    return p / p.sum()


def psi(observed: np.ndarray, expected: np.ndarray) -> float:
    """Population stability index of two histograms over the same bins (counts or proportions)."""
    o, e = _proportions(observed), _proportions(expected)
    return float(np.sum((o - e) * np.log(o / e)))


def psi_bound(expected: np.ndarray, n: int, seed: int = 0) -> float:
    """The PSI that `n` answers drawn from `expected` itself stay under 99% of the time, floored at PSI_FLOOR."""
    p = _proportions(expected)
    draws = np.random.default_rng(seed).multinomial(n, p, size=PSI_DRAWS)
    noise = np.quantile([psi(d, p) for d in draws], PSI_QUANTILE)
    return float(max(noise, PSI_FLOOR))


def bin_quantiles(bins: dict | list, qs=(0.5, 0.9, 0.99)) -> dict[str, float] | None:
    """Quantiles of a binned score, in units of the model's threshold (each at its bin's upper edge;
    the last, open bin reads as its lower edge)."""
    counts = _bins(bins)
    total = counts.sum()
    if total == 0:
        return None
    cum = np.cumsum(counts) / total
    out = {}
    for q in qs:
        b = int(np.searchsorted(cum, q))
        out[f"p{round(q * 100)}"] = round(min(b + 1, SCORE_BINS - 1) * SCORE_BIN_WIDTH, 2)
    return out


def _aligned(window: dict[str, int], baseline: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(set(window) | set(baseline))
    return np.array([window.get(k, 0) for k in keys]), np.array([baseline.get(k, 0) for k in keys])


def _bins(counts: dict | list) -> np.ndarray:
    out = np.zeros(SCORE_BINS)
    items = counts.items() if isinstance(counts, dict) else enumerate(counts)
    for b, n in items:
        out[min(int(b), SCORE_BINS - 1)] += n
    return out


def _psi_check(out: dict, key: str, kind: str, observed: np.ndarray, expected: np.ndarray, message: str) -> None:
    """PSI of `observed` against `expected` and its chance bound, recorded in out[key]; a warning of `kind`
    (message formatted with value and bound) when the PSI passes the bound."""
    value, bound = psi(observed, expected), psi_bound(expected, int(observed.sum()))
    out[key] = {"value": round(value, 4), "bound": round(bound, 4)}
    if value > bound:
        out["warnings"].append({"kind": kind, "message": message.format(value=value, bound=bound)})


def check(window: dict, baseline: dict | None) -> dict:
    """Drift figures and plain-words warnings for one window of answers.

    `window` and `baseline` both hold: `answers`, `abstentions` ({reason: count}), `score_bins`
    ({bin: count} or a list), `labels` ({label: count} of answered, not abstained, photos)."""
    if not baseline:
        return {"checked": False, "why": "this model has no validation baseline (see docs/service.md: Monitoring)"}
    n = int(window.get("answers", 0))
    if n < MIN_ANSWERS:
        return {"checked": False, "why": f"{n} answers; drift is checked from {MIN_ANSWERS} on"}
    warnings: list[dict] = []
    out: dict = {"checked": True, "answers": n, "warnings": warnings}

    abstained = sum(window.get("abstentions", {}).values())
    rate = abstained / n
    base_rate = sum(baseline["abstentions"].values()) / max(baseline["answers"], 1)
    out["abstention_rate"] = {"window": round(rate, 4), "baseline": round(base_rate, 4)}
    if abstained >= MIN_ABSTENTIONS and rate >= 2 * max(base_rate, 1 / max(baseline["answers"], 1)):
        warnings.append(
            {
                "kind": "abstentions",
                "message": f"The model abstained on {rate:.1%} of the last {n} photos, against {base_rate:.1%} of "
                "its validation photos: at least twice as often. Photos may be poorer or of other crops or "
                "diseases than it knows; look at the review queue.",
            }
        )

    observed = _bins(window.get("score_bins", {}))
    if observed.sum() >= MIN_ANSWERS:
        _psi_check(
            out,
            "score_psi",
            "score",
            observed,
            _bins(baseline["score_bins"]),
            "The not-a-leaf scores have moved away from those of the validation photos (PSI {value:.2f}, bound "
            "{bound:.2f}): the photos look less like the ones the model was trained on.",
        )

    labels_w, labels_b = _aligned(window.get("labels", {}), baseline.get("labels", {}))
    if labels_w.sum() >= MIN_ANSWERS and labels_b.sum() > 0:
        _psi_check(
            out,
            "label_psi",
            "labels",
            labels_w,
            labels_b,
            "The mix of diagnoses differs from the validation photos' (PSI {value:.2f}, bound {bound:.2f}). A "
            "season or a local outbreak does this; so do photos of crops it does not know.",
        )
    return out
