"""POST /v1/predict, /v1/predict/batch, /v1/explain: open to everyone."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from leafdoc.errors import RequestTooLarge
from leafdoc.service import serving
from leafdoc.service.deps import AppState, get_state
from leafdoc.service.errors import InvalidRequest
from leafdoc.service.routes import errors
from leafdoc.service.schemas import BatchAnswer, ExplainAnswer, PredictAnswer

router = APIRouter(prefix="/v1", tags=["diagnosis"])

_binary = {"schema": {"type": "string", "format": "binary"}}


def _image_body(field: str, many: bool) -> dict:
    prop = {"type": "array", "items": {"type": "string", "format": "binary"}} if many else _binary["schema"]
    form = {"schema": {"type": "object", "properties": {field: prop}, "required": [field]}}
    content = {"multipart/form-data": form}
    if not many:
        content.update({"image/jpeg": _binary, "image/png": _binary, "application/octet-stream": _binary})
    return {"requestBody": {"required": True, "content": content}}


async def read_images(request: Request) -> list[tuple[str | None, bytes]]:
    """Files of a multipart form (any field name), or the raw body as one image."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=100_000, max_fields=1_000)
        try:
            return [
                (value.filename, await value.read()) for _, value in form.multi_items() if isinstance(value, UploadFile)
            ]
        finally:
            await form.close()
    body = await request.body()
    return [(request.query_params.get("filename"), body)] if body else []


def _one(items: list[tuple[str | None, bytes]]) -> tuple[str | None, bytes]:
    if len(items) != 1:
        raise InvalidRequest(
            f"send exactly one image (got {len(items)}).",
            hint="Send it as the multipart field `file`, or as the raw request body; "
            "for several images use /v1/predict/batch.",
        )
    return items[0]


def _top_k(state: AppState, top_k: int | None) -> int:
    return top_k or state.settings.top_k


TopK = Query(None, ge=1, le=100, description="How many labels to return (default: LEAFDOC_TOP_K).")


@router.post(
    "/predict",
    response_model=PredictAnswer,
    summary="Diagnose one leaf photo",
    responses=errors(413, 422, 503),
    openapi_extra=_image_body("file", many=False),
)
async def predict(request: Request, top_k: int | None = TopK, state: AppState = Depends(get_state)) -> dict:
    name, data = _one(await read_images(request))
    result = await run_in_threadpool(
        serving.predict_bytes, state.holder, state.settings, data, name, _top_k(state, top_k)
    )
    state.metrics.record_answers([result])
    return result


@router.post(
    "/predict/batch",
    response_model=BatchAnswer,
    summary="Diagnose several photos in one request",
    responses=errors(413, 422, 503),
    openapi_extra=_image_body("files", many=True),
)
async def predict_batch(request: Request, top_k: int | None = TopK, state: AppState = Depends(get_state)) -> dict:
    items = await read_images(request)
    limit = state.settings.max_batch_images
    if len(items) > limit:
        raise RequestTooLarge(
            f"{len(items)} images is over the limit of {limit} per batch.",
            hint="Split them into several requests, or raise LEAFDOC_MAX_BATCH_IMAGES.",
        )
    if not items:
        raise InvalidRequest("the batch holds no image.", hint="Send the photos as multipart files (field `files`).")
    result = await run_in_threadpool(serving.predict_batch, state.holder, state.settings, items, _top_k(state, top_k))
    state.metrics.record_answers([r["prediction"] for r in result["results"] if r["prediction"]])
    return result


@router.post(
    "/explain",
    response_model=ExplainAnswer,
    summary="Diagnose one photo and show where the model looked (class activation heat map)",
    responses=errors(413, 422, 503),
    openapi_extra=_image_body("file", many=False),
)
async def explain(
    request: Request,
    top_k: int | None = TopK,
    label: str | None = Query(None, description="Explain this label instead of the top one."),
    state: AppState = Depends(get_state),
) -> dict:
    name, data = _one(await read_images(request))
    result = await run_in_threadpool(
        serving.explain_bytes, state.holder, state.settings, data, name, _top_k(state, top_k), label
    )
    state.metrics.record_answers([result])
    return result
