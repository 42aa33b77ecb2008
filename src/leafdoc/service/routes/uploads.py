"""POST /v1/uploads (bulk labelled photos -> a new dataset version), GET /v1/uploads[/{id}]: admin only."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from leafdoc.service import uploads
from leafdoc.service.deps import AppState, get_state, require_admin
from leafdoc.service.errors import InvalidRequest
from leafdoc.service.routes import ADMIN, errors
from leafdoc.service.schemas import UploadAnswer, UploadList

router = APIRouter(prefix="/v1", tags=["uploads"], dependencies=[Depends(require_admin)])

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "A zip of class folders as `file`; or photos as `files` with a `label`. "
        "`dataset`, `label`, `retrain` and `learn_field` may also be form fields.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "dataset": {"type": "string"},
                        "label": {"type": "string"},
                        "retrain": {"type": "boolean"},
                        "learn_field": {"type": "boolean"},
                    },
                }
            },
            "application/zip": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def form_flag(fields: dict[str, str], name: str, default: bool) -> bool:
    """A yes/no form field as the query parameter reads it: `retrain=maybe` was taken for no, silently."""
    if name not in fields:
        return default
    value = fields[name].strip().lower()
    if value in TRUE | FALSE:
        return value in TRUE
    shown = value if len(value) <= 20 else value[:17] + "..."
    raise InvalidRequest(
        f"the form field {name} is {shown!r}, not a yes or no.",
        hint=f"Send {name}=true or {name}=false (also 1/0, yes/no, on/off).",
    )


@router.post(
    "/uploads",
    response_model=UploadAnswer,
    status_code=201,
    summary="Add labelled photos: a new dataset version (optionally retrain)",
    responses=errors(*ADMIN, 404, 409, 413, 422, 503, 507),
    openapi_extra=_UPLOAD_BODY,
)
async def create_upload(
    request: Request,
    dataset: str | None = Query(None, description="Dataset to add to (default: the serving model's)."),
    label: str | None = Query(None, description="Label of every photo (a flat zip, or files)."),
    retrain: bool = Query(False, description="Queue a retraining when the upload adds photos."),
    learn_field: bool = Query(
        False,
        description="With `retrain`: the photos include field photos (leaves on the plant) the new model should "
        "learn to answer, so it gets no unlike-training check (the job's `field_dirs: []`).",
    ),
    state: AppState = Depends(get_state),
) -> dict:
    with uploads.spool_folder(state.settings) as (upload_id, folder):
        spooled = await uploads.spool_request(request, folder)
        f = spooled.fields
        answer = await run_in_threadpool(
            uploads.process_upload,
            state,
            upload_id,
            spooled,
            dataset=f.get("dataset") or dataset,
            label=f.get("label") or label,
            retrain=form_flag(f, "retrain", retrain),
            learn_field=form_flag(f, "learn_field", learn_field),
        )
        return answer  # names in it are the client's own (zip members, file names): shown as sent


@router.get("/uploads", response_model=UploadList, summary="Recent uploads", responses=errors(*ADMIN))
def list_uploads(limit: int = Query(100, ge=1, le=1000), state: AppState = Depends(get_state)) -> dict:
    rows = uploads.list_uploads(state.catalog, limit)
    return {"uploads": [uploads.upload_dict(r, state.catalog) for r in rows]}


@router.get("/uploads/{upload_id}", response_model=UploadAnswer, summary="One upload", responses=errors(*ADMIN, 404))
def get_upload(upload_id: str, state: AppState = Depends(get_state)) -> dict:
    return uploads.upload_dict(uploads.get_upload(state.catalog, upload_id), state.catalog)
