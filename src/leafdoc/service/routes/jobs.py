"""/v1/training-jobs: start a retraining (admin), list them (admin), follow one by its id (an unguessable uuid, open:
the web page and the desktop app follow the job they started), cancel it (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Query
from starlette.concurrency import run_in_threadpool

from leafdoc.core.redact import redact
from leafdoc.service import jobs, training
from leafdoc.service.deps import AppState, get_state, require_admin
from leafdoc.service.routes import ADMIN, errors
from leafdoc.service.schemas import JobState, TrainingJob, TrainingJobCreate, TrainingJobList

router = APIRouter(prefix="/v1/training-jobs", tags=["training"])


@router.post(
    "",
    response_model=TrainingJob,
    status_code=202,
    summary="Retrain on the latest dataset version, warm-started from the serving model",
    responses=errors(*ADMIN, 400, 404, 422),
    dependencies=[Depends(require_admin)],
)
async def create_job(body: TrainingJobCreate | None = Body(None), state: AppState = Depends(get_state)) -> dict:
    body = body or TrainingJobCreate()
    answer = await run_in_threadpool(
        training.submit,
        state.settings,
        state.catalog,
        state.registry,
        state.queue,
        dataset=body.dataset,
        dataset_version=body.dataset_version,
        options=body.options.model_dump(exclude_none=True),
        warm_start=body.warm_start,
    )
    return redact(answer)


@router.get(
    "",
    response_model=TrainingJobList,
    summary="Training jobs, newest first (admin: their options, errors and datasets are an operator's business)",
    responses=errors(*ADMIN),
    dependencies=[Depends(require_admin)],
)
def list_jobs(
    state_filter: JobState | None = Query(None, alias="state"),
    limit: int = Query(100, ge=1, le=1000),
    state: AppState = Depends(get_state),
) -> dict:
    rows = jobs.list_jobs(state.catalog, state_filter, limit)
    return redact(
        {"jobs": [jobs.job_dict(r) for r in rows], "queue_length": jobs.counts_by_state(state.catalog)["queued"]}
    )


@router.get(
    "/{job_id}",
    response_model=TrainingJob,
    summary="A job's state, epoch, metrics so far, error",
    responses=errors(404),
)
def get_job(job_id: str, state: AppState = Depends(get_state)) -> dict:
    return redact(jobs.job_dict(jobs.get_job(state.catalog, job_id)))


@router.post(
    "/{job_id}/cancel",
    response_model=TrainingJob,
    summary="Cancel a job: a queued one at once, a running one within seconds (its worker stops it)",
    description="A queued job answers `cancelled`. A running job answers `running` with `cancel_requested` set; "
    "its worker stops the training process, registers nothing and ends it `cancelled`. "
    "409 if the job already finished.",
    responses=errors(*ADMIN, 404, 409),
    dependencies=[Depends(require_admin)],
)
async def cancel_job(job_id: str, state: AppState = Depends(get_state)) -> dict:
    row = await run_in_threadpool(jobs.cancel, state.catalog, job_id)
    return redact(jobs.job_dict(row))
