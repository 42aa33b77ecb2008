"""The app factory: `create_app(settings)` builds one FastAPI app around one Settings object.

Embedded by default (SQLite catalog, SQLite queue and a local store under the data home); the same
code at scale with LEAFDOC_DATABASE_URL, LEAFDOC_QUEUE_URL and LEAFDOC_STORE_URL. The factory starts
no process: `leafdoc serve` runs the job consumer beside it, `leafdoc worker` anywhere else.
uvicorn's `--factory` calls `create_app()` with settings read from the environment.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from leafdoc import __version__
from leafdoc.core.settings import MULTIPART_OVERHEAD, Settings
from leafdoc.lifecycle.workspace import Workspace
from leafdoc.model_versions import check_promote_metric
from leafdoc.service import errors, leftovers
from leafdoc.service.deps import MONITORING_OPENS, AppState, require_admin, require_monitoring_token
from leafdoc.service.docs import document_errors, mount_docs
from leafdoc.service.jobs import JobQueue, QueueCheck, counts_by_state
from leafdoc.service.middleware import AdminGate, ApiHeaders, BodyBudget, BodyLimit, RequestMetrics, ShedLoad
from leafdoc.service.monitoring import Monitor
from leafdoc.service.predictionlog import PredictionLog
from leafdoc.service.prometheus import ServiceMetrics
from leafdoc.service.protocol import BODY_RATE_STATE_KEY, TIMEOUT_STATE_KEY
from leafdoc.service.ratelimit import admin_failure_limiter, rate_limiter
from leafdoc.service.routes import (
    advice,
    datasets,
    feedback,
    health,
    jobs,
    models,
    monitoring,
    predict,
    uploads,
)
from leafdoc.service.serving import ModelHolder

log = logging.getLogger(__name__)


DESCRIPTION = """
Diagnose plant diseases from leaf photos, explain the diagnosis, and run the model's life:
bulk uploads, retraining, promotion and rollback.

Prediction routes are open. Uploads, training and promotion need the admin token
(`Authorization: Bearer <LEAFDOC_ADMIN_TOKEN>`). Every error answers
`{"error": code, "message": ..., "hint": ...}`.
"""


UI_UPLOAD = "/ui/gradio_api/upload"  # the web page's uploads (Gradio's route): a photo, or the Retrain tab's zip


def body_limits(settings: Settings):
    """Per-route request size limits: one image (the page's uploads too), a batch of images, a bulk upload; every
    other route takes JSON or nothing, and at most `max_json_bytes` of it (feedback, open to anyone, a few kB)."""
    single = min(settings.max_request_bytes, settings.max_image_bytes + MULTIPART_OVERHEAD)
    batch = min(settings.max_request_bytes, settings.max_batch_images * settings.max_image_bytes + MULTIPART_OVERHEAD)

    def limit_for(path: str) -> int:
        if path in ("/v1/predict", "/v1/explain", UI_UPLOAD):
            return single
        if path == "/v1/predict/batch":
            return batch
        if path == "/v1/uploads":
            return settings.max_request_bytes
        if path.startswith("/v1/predictions/") and path.endswith("/feedback"):
            return min(settings.max_json_bytes, feedback.MAX_BODY_BYTES)
        return settings.max_json_bytes

    return limit_for


def admin_routes(routes, settings: Settings) -> list[tuple[APIRoute, str]]:
    """The routes that need the admin token (require_admin among their dependencies, the router's included), each
    with what its refusal's hint adds: monitoring's (require_monitoring_token) unless `monitoring_open`."""
    checks = {require_admin: ""}
    if not settings.monitoring_open:
        checks[require_monitoring_token] = MONITORING_OPENS

    def needs(dependant) -> str | None:
        for d in dependant.dependencies:
            found = checks.get(d.call) if d.call in checks else needs(d)
            if found is not None:
                return found
        return None

    gated = [(r, needs(r.dependant)) for r in routes if isinstance(r, APIRoute)]
    return [(r, opens) for r, opens in gated if opens is not None]


def build_state(settings: Settings) -> AppState:
    settings.ensure_home()
    check_promote_metric(settings.promote_metric)
    ws = Workspace.open(settings)
    catalog, store, registry = ws.catalog, ws.store, ws.registry
    registry.seed()
    queue = JobQueue(settings)
    # /readyz and the scrape's leafdoc_queue_up ask the queue the same way; `queue.length` looked up at each call
    queue_check = QueueCheck(lambda: queue.length())
    metrics = ServiceMetrics(lambda: counts_by_state(catalog), lambda: queue_check() is None)
    holder = ModelHolder(settings, registry, on_swap=metrics.model_version.set)
    log_ = PredictionLog(settings, catalog, store, metrics.records_dropped.inc, metrics.photos_dropped.inc)
    limiter = rate_limiter(settings)
    monitor = Monitor(catalog, holder)
    metrics.watch_drift(monitor)
    return AppState(settings, catalog, store, registry, holder, queue, metrics, log_, limiter, monitor, queue_check)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.load()
    state = build_state(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        sweeper = asyncio.create_task(leftovers.sweep_forever(settings))  # what killed workers left (issue 59)
        yield {  # for the server's protocol (service/protocol.py)
            TIMEOUT_STATE_KEY: settings.client_timeout_seconds,
            BODY_RATE_STATE_KEY: (settings.body_min_bytes_per_second, settings.body_rate_window_seconds),
        }
        sweeper.cancel()
        state.prediction_log.close()  # what is still buffered is written before the catalog closes
        state.catalog.dispose()

    app = FastAPI(
        title="leafdoc",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # service/docs.py serves them with their own files
        redoc_url=None,
    )
    mount_docs(app)
    app.state.leafdoc = state
    errors.install(app)
    routers = [m.router for m in (predict, advice, feedback, monitoring, uploads, jobs, models, datasets, health)]
    for router in routers:
        app.include_router(router)
    if settings.ui:  # the web page at /ui, built (Gradio imported) on its first visit
        from leafdoc.ui import mount_ui

        mount_ui(app, settings)
        from leafdoc.offline import mount_offline

        mount_offline(app)  # the page that diagnoses in the browser, offline (/app)
    app.add_middleware(BodyLimit, limit_for=body_limits(settings), budget=BodyBudget(settings.max_body_bytes_in_flight))
    failures = admin_failure_limiter(settings)  # in Redis with a Redis queue: one count for every worker and replica
    gated = admin_routes((r for router in routers for r in router.routes), settings)
    app.add_middleware(AdminGate, routes=gated, token=settings.admin_token, failures=failures)
    document_errors(app, {(route.path, method) for route, _ in gated for method in route.methods})
    app.add_middleware(ShedLoad, after=settings.shed_after_seconds, metrics=state.metrics)
    app.add_middleware(ApiHeaders)
    if settings.cors_origins.strip():  # outside the admin gate: a browser's preflight carries no token
        app.add_middleware(
            CORSMiddleware,
            allow_origins=[o.strip() for o in settings.cors_origins.split(",")],
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-Admin-Token", "Content-Type", "Accept-Language"],
            expose_headers=["Content-Language", "Retry-After"],
            max_age=600,
        )
    paths = frozenset(r.path for router in routers for r in router.routes if "{" not in r.path)  # see RequestMetrics
    app.add_middleware(RequestMetrics, metrics=state.metrics, paths=paths)  # outermost: sees 413s and 503s too
    try:
        state.holder.maybe_refresh()  # load the serving model now, not on the first request
    except Exception:
        log.exception("the serving model could not be loaded at start")
    return app
