"""/healthz (the process answers), /readyz (it can serve: catalog, model, queue), /metrics (Prometheus)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from leafdoc.core.errors import LeafdocError
from leafdoc.core.settings import without_password
from leafdoc.service.deps import AppState, get_state
from leafdoc.service.redact import redact_text
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


# HEAD too: load balancers and uptime checks often probe with it (it was 405)
@router.api_route("/healthz", methods=["GET", "HEAD"], response_model=Health, summary="Liveness: the process answers")
def healthz() -> dict:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Ready,
    summary="Readiness: catalog reachable, a model serving, queue reachable (503 otherwise)",
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
    try:
        state.queue.length()
        checks["queue"] = "ok"
        _logged.pop("queue", None)
    except Exception as exc:
        checks["queue"] = _unreachable("queue", exc)
    ready = all(v == "ok" for v in checks.values())
    body = {
        "ready": ready,
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
