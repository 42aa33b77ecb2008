"""GET /v1/monitoring: answers per hour or day, against the serving model's validation baseline, with drift
warnings (service/monitoring.py). It tells a business's volumes and the diseases its growers see, so it needs the
admin token unless the operator opened it (LEAFDOC_MONITORING_OPEN)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from leafdoc.service.deps import AppState, get_state, require_monitoring_token
from leafdoc.service.review_schemas import MonitoringAnswer
from leafdoc.service.routes import ADMIN, errors

router = APIRouter(prefix="/v1", tags=["monitoring"])


@router.get(
    "/monitoring",
    response_model=MonitoringAnswer,
    summary="The model at work, and drift warnings (admin token, unless LEAFDOC_MONITORING_OPEN)",
    dependencies=[Depends(require_monitoring_token)],
    responses=errors(*ADMIN),
)
async def monitoring(
    period: Literal["hour", "day"] = Query("hour"),
    hours: int | None = Query(None, ge=1, le=24 * 400, description="How far back (default: 48 h, or 30 days)."),
    state: AppState = Depends(get_state),
) -> dict:
    report = await run_in_threadpool(state.monitor.report, period, hours)
    log = state.prediction_log
    return {
        **report,
        "recording": {
            "keep_photos": state.settings.keep_photos,
            "dropped": log.dropped,
            "photos_dropped": log.photos_dropped,
        },
    }
