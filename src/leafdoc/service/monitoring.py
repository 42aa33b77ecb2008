"""What `GET /v1/monitoring` and the drift metrics answer: the catalog's hourly or daily figures of the
answers given (data/predictions.py), the serving model's validation baseline (card `baseline`), and the
drift check of the last `DRIFT_HOURS` against it (inference/drift.py). Results are cached for
`CACHE_SECONDS` per worker, so page refreshes and Prometheus scrapes cost a few grouped queries a minute."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from leafdoc.data import predictions
from leafdoc.data.catalog import Catalog, utcnow
from leafdoc.inference import drift
from leafdoc.inference.baseline import card_baseline
from leafdoc.service.serving import ModelHolder

DRIFT_HOURS = 24
CACHE_SECONDS = 30.0
DEFAULT_SPAN = {"hour": 48, "day": 24 * 30}


def _with_rates(bucket: dict) -> dict:
    n = bucket["answers"]
    return {
        "start": bucket["start"],
        "answers": n,
        "abstentions": bucket["abstentions"],
        "abstention_rate": round(sum(bucket["abstentions"].values()) / n, 4) if n else None,
        "labels": dict(sorted(bucket["labels"].items(), key=lambda kv: -kv[1])),
        "score_bins": {str(k): v for k, v in sorted(bucket["score_bins"].items())},
        "score_quantiles": drift.bin_quantiles(bucket["score_bins"]),
        "feedback": bucket["feedback"],
        "agreed": bucket["agreed"],
        "agreement": round(bucket["agreed"] / bucket["feedback"], 4) if bucket["feedback"] else None,
    }


def baseline_view(baseline: dict | None) -> dict | None:
    if not baseline:
        return None
    n = max(int(baseline["answers"]), 1)
    labelled = max(sum(baseline["labels"].values()), 1)
    return {
        "answers": baseline["answers"],
        "abstention_rate": round(sum(baseline["abstentions"].values()) / n, 4),
        "abstentions": baseline["abstentions"],
        "score_bins": {str(i): v for i, v in enumerate(baseline["score_bins"]) if v},
        "score_quantiles": drift.bin_quantiles(baseline["score_bins"]),
        "label_shares": {k: round(v / labelled, 4) for k, v in baseline["labels"].items()},
    }


class Monitor:
    def __init__(self, catalog: Catalog, holder: ModelHolder):
        self.catalog, self.holder = catalog, holder
        self._cache: dict[tuple, tuple[float, dict]] = {}
        self._lock = threading.Lock()

    def report(self, period: str = "hour", hours: int | None = None) -> dict:
        key = (period, hours)
        with self._lock:
            hit = self._cache.get(key)
            if hit and time.monotonic() - hit[0] < CACHE_SECONDS:
                return hit[1]
        result = self._compute(period, hours or DEFAULT_SPAN[period])
        with self._lock:
            self._cache[key] = (time.monotonic(), result)
        return result

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()

    def _compute(self, period: str, hours: int) -> dict:
        now = utcnow()
        buckets = predictions.aggregates(self.catalog, period, now - timedelta(hours=hours))
        loaded = self.holder.loaded
        version = loaded.version if loaded else None
        baseline = card_baseline(loaded.predictor.card) if loaded else None
        recent = predictions.aggregates(self.catalog, "hour", now - timedelta(hours=DRIFT_HOURS - 1), version)
        window = predictions.merged(recent)
        return {
            "period": period,
            "hours": hours,
            "model_version": version,
            "buckets": [_with_rates(b) for b in buckets],
            "baseline": baseline_view(baseline),
            "drift_window": {"hours": DRIFT_HOURS, "model_version": version, **_with_rates({"start": None, **window})},
            "drift": drift.check(window, baseline),
        }
