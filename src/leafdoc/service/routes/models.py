"""/v1/models: the registry. Promotion and rollback need the admin token."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends
from fastapi import Path as FastPath
from starlette.concurrency import run_in_threadpool

from leafdoc.core.redact import redact
from leafdoc.lifecycle.versions import version_answer
from leafdoc.service.deps import AppState, get_state, require_admin
from leafdoc.service.routes import ADMIN, MAX_VERSION, errors
from leafdoc.service.schemas import ModelList, ModelVersionDetail, PointerAnswer, PromoteRequest, RollbackRequest

VERSION = FastPath(ge=1, le=MAX_VERSION, description="A model version number.")

router = APIRouter(prefix="/v1/models", tags=["models"])


def _pointer_answer(state: AppState, event: dict) -> dict:
    state.holder.refresh()  # this worker switches now; the others within LEAFDOC_MODEL_CHECK_SECONDS
    return redact({"serving_version": event["version"], "previous_version": event["previous_version"], "event": event})


@router.get("", response_model=ModelList, summary="Model versions, the serving one, and the pointer's history")
def list_models(state: AppState = Depends(get_state)) -> dict:
    ptr = state.registry.serving()
    serving = ptr.version if ptr else None
    return redact(
        {
            "serving_version": serving,
            "models": [version_answer(r, serving) for r in state.registry.versions()],
            "history": state.registry.history(),
        }
    )


@router.post(
    "/rollback",
    response_model=PointerAnswer,
    summary="Serve the version that served before the current one",
    responses=errors(*ADMIN, 409),
    dependencies=[Depends(require_admin)],
)
async def rollback(body: RollbackRequest | None = Body(None), state: AppState = Depends(get_state)) -> dict:
    reason = (body.reason if body else None) or "rolled back by an admin"
    event = await run_in_threadpool(state.registry.rollback, reason, body.to_version if body else None)
    return await run_in_threadpool(_pointer_answer, state, event)


@router.get("/{version}", response_model=ModelVersionDetail, summary="One version with its card", responses=errors(404))
def get_model(version: int = VERSION, state: AppState = Depends(get_state)) -> dict:
    ptr = state.registry.serving()
    return redact(version_answer(state.registry.get(version), ptr.version if ptr else None, full=True))


@router.post(
    "/{version}/promote",
    response_model=PointerAnswer,
    summary="Serve this version (every worker switches without a restart)",
    responses=errors(*ADMIN, 404, 409, 422),
    dependencies=[Depends(require_admin)],
)
async def promote(
    version: int = VERSION, body: PromoteRequest | None = Body(None), state: AppState = Depends(get_state)
) -> dict:
    reason = (body.reason if body else None) or "promoted by an admin"
    event = await run_in_threadpool(state.registry.promote, version, reason=reason)
    return await run_in_threadpool(_pointer_answer, state, event)
