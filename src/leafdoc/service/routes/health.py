"""/healthz (the process answers), /readyz (it can serve predictions: catalog and model; the job queue reported, not
required), /metrics (Prometheus).

Readiness is what a load balancer or Kubernetes routes predictions by, so only what predictions need fails it: the
catalog and a loaded model. The job queue (Redis at scale) carries only training jobs' ids: while it is away the
answer says `"status": "degraded"` and `"queue": "unreachable ..."` with 200, since failing it took every API pod
of a cluster out of service at once for a Redis outage that no prediction needs (leafdoc_queue_up says it too)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from leafdoc.core.errors import LeafdocError
from leafdoc.core.redact import redact_text
from leafdoc.core.settings import without_password
from leafdoc.service.deps import AppState, get_state
from leafdoc.service.schemas import Health, Ready

router = APIRouter(tags=["operations"])
log = logging.getLogger(__name__)
UNREACHABLE = "unreachable (the server's log says why)"
_logged: dict[str, str] = {}  # what each check last logged: probes ask every few seconds, the log says it once


def _unreachable(what: str, exc: Exception) -> str:
    """The check's word for anyone who asks (/readyz is public behind the proxy), and the error for the operator's
    log: a database's or Redis's error names its host and port inside the cluster ('connection to server at
    "postgres.leafdoc-data.svc", port 5432 failed'), which no client is told."""
    said = without_password(f"{type(exc).__name__}: {exc}")
    if _logged.get(what) != said:
        _logged[what] = said
        log.warning("not ready: the %s cannot be reached: %s", what, said)
    return UNREACHABLE


# HEAD too: load balancers and uptime checks often probe with it (it was 405). Two routes, each with its own
# operation id: one route of both methods gave both the same id, which client generators refuse.
@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
@router.head("/healthz", response_model=Health, summary="Liveness: the process answers", operation_id="healthz_head")
def healthz() -> dict:
    return {"status": "ok"}


NEEDED = ("catalog", "model")  # what predictions need; any other check only makes the answer "degraded"


@router.get(
    "/readyz",
    response_model=Ready,
    summary="Readiness: catalog reachable and a model serving (503 otherwise); the job queue reported, not required",
    description="`status`: `ok`; `degraded` (200: predictions are served, but a check that predictions do not need, "
    "the job queue, is not ok: training jobs wait until it answers); `unavailable` (503: `checks` says why).",
    responses={503: {"model": Ready, "description": "Not ready; `checks` says why."}},
)
def readyz(state: AppState = Depends(get_state)):
    checks: dict[str, str] = {}
    version = model_file = None
    try:
        with state.catalog.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["catalog"] = "ok"
        _logged.pop("catalog", None)
    except Exception as exc:
        checks["catalog"] = _unreachable("catalog", exc)
    try:
        loaded = state.holder.current()
        version, model_file = loaded.version, loaded.predictor.model_file.name  # the name only: no server path
        checks["model"] = "ok"
    except LeafdocError as exc:
        checks["model"] = redact_text(exc.message)  # what is wrong with the model, without the server's folders
    queue_error = state.queue_check()
    if queue_error is None:
        checks["queue"] = "ok"
        _logged.pop("queue", None)
    else:
        checks["queue"] = _unreachable("queue", queue_error)
    ready = all(checks[name] == "ok" for name in NEEDED)
    body = {
        "ready": ready,
        "status": ("ok" if all(v == "ok" for v in checks.values()) else "degraded") if ready else "unavailable",
        "checks": checks,
        "model_version": version,
        "model_file": model_file,
        "keep_photos": state.settings.keep_photos,
    }
    return body if ready else JSONResponse(body, status_code=503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(state: AppState = Depends(get_state)) -> Response:
    body, content_type = state.metrics.render()
    return Response(body, media_type=content_type)
