"""POST /v1/predictions/{id}/feedback (open, rate-limited per client address); GET /v1/review,
GET /v1/review/{id}/photo, POST /v1/review/{id}, POST /v1/review/{id}/dismiss (admin)."""

from __future__ import annotations

import asyncio
import re
import time

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from leafdoc.core.errors import NotFound
from leafdoc.data import predictions
from leafdoc.service import review
from leafdoc.service.deps import AppState, get_state, require_admin
from leafdoc.service.ratelimit import take_off_loop
from leafdoc.service.review_schemas import (
    FeedbackAnswer,
    FeedbackRequest,
    ReviewAnswer,
    ReviewItem,
    ReviewList,
    ReviewRequest,
)
from leafdoc.service.routes import ADMIN, errors

router = APIRouter(prefix="/v1", tags=["feedback and review"])

PredictionId = Path(max_length=64, description="The `prediction_id` of an answer.")
# A feedback body is under 200 bytes ({"correct": false, "label": "..."}); this open route takes at most this much, so
# that validating it stays cheap (a 1 MiB body of 90,000 unknown keys cost 2 CPU-seconds to refuse).
MAX_BODY_BYTES = 4 * 1024


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post(
    "/predictions/{prediction_id}/feedback",
    response_model=FeedbackAnswer,
    summary="Say whether an answer was right (and what the leaf actually has)",
    responses=errors(404, 422, 429),
)
async def feedback(
    body: FeedbackRequest,
    request: Request,
    prediction_id: str = PredictionId,
    state: AppState = Depends(get_state),
) -> dict:
    await take_off_loop(state.feedback_limit, _client(request), "feedback requests")

    def give() -> dict:
        return review.feedback_dict(review.give_feedback(state, prediction_id, body.correct, body.label))

    def give_after_flush() -> dict:
        try:
            return give()
        except NotFound:
            state.prediction_log.flush()  # answered moments ago by this worker, not written yet
            return give()

    try:
        answer = await run_in_threadpool(give_after_flush)
    except NotFound as missing:
        answer = await _when_written(state, prediction_id, give, missing)
    state.metrics.feedback.labels("true" if body.correct else "false").inc()
    state.monitor.forget()  # this worker's Monitor tab shows it at once, not after CACHE_SECONDS
    return answer


# An id as service/serving.py makes them (secrets.token_urlsafe(16)): only such ids are waited for.
_AN_ID = re.compile(r"[A-Za-z0-9_-]{22}")
POLL_SECONDS = 0.2
MAX_WAITING = 64  # feedback requests one API worker keeps waiting at once; the next ones get their 404 at once
MAX_WAIT_SECONDS = 5.0  # however long the flush period is set: a request is not held for minutes
_waiting = 0


async def _when_written(state: AppState, prediction_id: str, give, missing: NotFound) -> dict:
    """Feedback for an answer another API worker gave moments ago: its record is still in that worker's
    buffer (written every `prediction_flush_seconds`). Look again until two flush periods and a second have
    passed (at most MAX_WAIT_SECONDS), then 404. Waiting is asleep on the event loop, not in a thread, and
    bounded in number."""
    global _waiting
    if not _AN_ID.fullmatch(prediction_id) or _waiting >= MAX_WAITING:
        raise missing
    deadline = time.monotonic() + min(2 * state.settings.prediction_flush_seconds + 1.0, MAX_WAIT_SECONDS)
    _waiting += 1
    try:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                return await run_in_threadpool(give)
            except NotFound:
                if time.monotonic() >= deadline:
                    raise
    finally:
        _waiting -= 1


@router.get(
    "/review",
    response_model=ReviewList,
    summary="Answers to review: feedback and abstentions, the most informative first",
    dependencies=[Depends(require_admin)],
    responses=errors(*ADMIN),
)
async def review_list(
    limit: int = Query(50, ge=1, le=500),
    with_photo: bool = Query(False, description="Only answers whose photo was kept."),
    state: AppState = Depends(get_state),
) -> dict:
    rows = await run_in_threadpool(predictions.review_queue, state.catalog, limit, with_photo)
    return {"keep_photos": state.settings.keep_photos, "items": [review.item_dict(r) for r in rows]}


@router.get(
    "/review/{prediction_id}/photo",
    summary="The kept photo of an answer",
    dependencies=[Depends(require_admin)],
    responses={**errors(*ADMIN, 404, 409), 200: {"content": {"image/jpeg": {}, "image/png": {}}}},
    response_class=Response,
)
async def review_photo(prediction_id: str = PredictionId, state: AppState = Depends(get_state)) -> Response:
    data, media_type = await run_in_threadpool(review.photo_of, state, prediction_id)
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})


@router.post(
    "/review/{prediction_id}",
    response_model=ReviewAnswer,
    summary="Label a reviewed photo: it joins a new dataset version",
    dependencies=[Depends(require_admin)],
    responses=errors(*ADMIN, 404, 409, 422),
)
async def review_label(
    body: ReviewRequest, prediction_id: str = PredictionId, state: AppState = Depends(get_state)
) -> dict:
    return await run_in_threadpool(review.label_photo, state, prediction_id, body.label, body.dataset)


@router.post(
    "/review/{prediction_id}/dismiss",
    response_model=ReviewItem,
    summary="Take an answer out of the review queue without adding its photo anywhere",
    dependencies=[Depends(require_admin)],
    responses=errors(*ADMIN, 404),
)
async def review_dismiss(prediction_id: str = PredictionId, state: AppState = Depends(get_state)) -> dict:
    return await run_in_threadpool(review.dismiss, state, prediction_id)
