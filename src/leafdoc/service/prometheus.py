"""Prometheus metrics: requests and latency by route, predictions by label, abstentions, the serving
model version, and (read from the catalog at scrape time, so every replica agrees) the queue length
and training jobs by state, with whether this replica can read the job queue (`leafdoc_queue_up`).

With several uvicorn workers, `leafdoc serve` sets PROMETHEUS_MULTIPROC_DIR (prometheus-client's own
convention) so one scrape sums every worker's counters.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

if TYPE_CHECKING:
    from leafdoc.inference.answer import Answer

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# The not-a-leaf score as a multiple of the model's threshold (1.0: refused from there on).
SCORE_RATIO_BUCKETS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _CatalogCollector:
    """Queue length and job states, read when scraped, and whether the job queue can be read.

    The length is the catalog's count of queued jobs, given only while the queue answers: with Redis away a
    number (0 most of the time) would tell a dashboard "nothing waiting" when no job can be handed to a worker,
    so the series is left out (Prometheus marks it stale) and `leafdoc_queue_up` is 0."""

    def __init__(self, job_counts: Callable[[], dict[str, int]], queue_up: Callable[[], bool] | None = None):
        self.job_counts = job_counts
        self.queue_up = queue_up  # jobs.QueueCheck's answer (one call in flight, a bounded wait), as /readyz's

    def collect(self):
        up = self.queue_up is None or self.queue_up()
        gauge = GaugeMetricFamily(
            "leafdoc_queue_up", "1 if this replica can read the training-job queue (LEAFDOC_QUEUE_URL), 0 if not."
        )
        gauge.add_metric([], 1.0 if up else 0.0)
        yield gauge
        try:
            counts = self.job_counts()
        except Exception:  # an unreachable catalog must not break the scrape
            return
        if up:
            queue = GaugeMetricFamily(
                "leafdoc_queue_length", "Training jobs waiting in the queue (absent while it cannot be read)."
            )
            queue.add_metric([], counts.get("queued", 0))
            yield queue
        states = GaugeMetricFamily("leafdoc_training_jobs", "Training jobs by state.", labels=["state"])
        for state, n in sorted(counts.items()):
            states.add_metric([state], n)
        yield states


class _DriftCollector:
    """The drift check of the last 24 hours (service/monitoring.py, cached there), read when scraped."""

    def __init__(self, monitor):
        self.monitor = monitor

    def collect(self):
        try:
            report = self.monitor.report("hour", None)
        except Exception:  # an unreachable catalog must not break the scrape
            return
        d = report["drift"]
        warn = GaugeMetricFamily(
            "leafdoc_drift_warning", "1 while this drift warning holds over the last 24 hours.", labels=["kind"]
        )
        kinds = {w["kind"] for w in d.get("warnings", [])}
        for kind in ("abstentions", "score", "labels"):
            warn.add_metric([kind], 1.0 if kind in kinds else 0.0)
        yield warn
        psi = GaugeMetricFamily("leafdoc_drift_psi", "PSI of the last 24 hours against validation.", labels=["of"])
        bound = GaugeMetricFamily("leafdoc_drift_psi_bound", "The PSI bound calibrated on validation.", labels=["of"])
        for of in ("score", "label"):
            if f"{of}_psi" in d:
                psi.add_metric([of], d[f"{of}_psi"]["value"])
                bound.add_metric([of], d[f"{of}_psi"]["bound"])
        yield psi
        yield bound
        rate = GaugeMetricFamily("leafdoc_abstention_rate", "Share of answers that abstained.", labels=["window"])
        if d.get("abstention_rate"):
            rate.add_metric(["24h"], d["abstention_rate"]["window"])
        if report.get("baseline"):
            rate.add_metric(["validation"], report["baseline"]["abstention_rate"])
        yield rate


class ServiceMetrics:
    def __init__(self, job_counts: Callable[[], dict[str, int]], queue_up: Callable[[], bool] | None = None):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "leafdoc_http_requests",
            "HTTP requests by route, method and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "leafdoc_http_request_duration_seconds",
            "HTTP request latency by route.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter("leafdoc_predictions", "Diagnoses given, by label.", ["label"], registry=r)
        self.abstentions = Counter("leafdoc_abstentions", "Abstentions, by reason.", ["reason"], registry=r)
        self.model_version = Gauge(
            "leafdoc_serving_model_version",
            "Model version this worker serves.",
            registry=r,
            multiprocess_mode="max",
        )
        self.score_ratio = Histogram(
            "leafdoc_nonleaf_score_ratio",
            "The not-a-leaf score of each answer, as a multiple of the model's threshold.",
            buckets=SCORE_RATIO_BUCKETS,
            registry=r,
        )
        self.feedback = Counter("leafdoc_feedback", "Feedback received, by `correct`.", ["correct"], registry=r)
        self.records_dropped = Counter(
            "leafdoc_prediction_records_dropped", "Answers not recorded: the buffer was full.", registry=r
        )
        self.photos_dropped = Counter(
            "leafdoc_prediction_photos_dropped",
            "Photos not kept (keep_photos): the buffer was full, the kept photos' quota was reached "
            "(LEAFDOC_KEPT_PHOTOS_MAX_MB), or the client's hourly cap (LEAFDOC_KEPT_PHOTOS_PER_CLIENT_HOUR).",
            registry=r,
        )
        self.shed = Counter(
            "leafdoc_requests_shed",
            "Predictions answered 503 busy: their worker's event loop ran more than LEAFDOC_SHED_AFTER_SECONDS behind.",
            registry=r,
        )
        self.loop_lag = Gauge(
            "leafdoc_event_loop_lag_seconds",
            "How late the event loop ran its last check (every 0.1 s); with several workers, the most behind.",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.catalog_registry = CollectorRegistry(auto_describe=False)
        self.catalog_registry.register(_CatalogCollector(job_counts, queue_up))

    def watch_drift(self, monitor) -> None:
        self.catalog_registry.register(_DriftCollector(monitor))

    def record_answers(self, answers: list[Answer], threshold: float | None = None) -> None:
        for a in answers:
            if a.abstained:
                self.abstentions.labels(a.reason or "unknown").inc()
            else:
                self.predictions.labels(a.label).inc()
            if threshold and a.ood_score is not None:
                self.score_ratio.observe(a.ood_score / threshold)

    def render(self) -> tuple[bytes, str]:
        mp = multiprocess_dir()
        if mp:
            from prometheus_client import multiprocess

            reg = CollectorRegistry()
            multiprocess.MultiProcessCollector(reg, path=mp)
            body = generate_latest(reg)
        else:
            body = generate_latest(self.registry)
        return body + generate_latest(self.catalog_registry), CONTENT_TYPE_LATEST
