"""/v1/datasets: what is in the catalog, and the features of `leafdoc stats` as JSON."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from leafdoc.core.redact import redact
from leafdoc.data.datasets import list_datasets
from leafdoc.service.datasets import STATS_SAMPLES, dataset_plot, dataset_stats
from leafdoc.service.deps import AppState, get_state
from leafdoc.service.routes import MAX_VERSION, errors
from leafdoc.service.schemas import DatasetList

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])
SAMPLE_HELP = f"Measure at most this many images per class: one of {', '.join(map(str, STATS_SAMPLES))}; default: all."


@router.get("", response_model=DatasetList, summary="Datasets and their versions")
def datasets(state: AppState = Depends(get_state)) -> dict:
    return redact({"datasets": list_datasets(state.catalog)})


@router.get(
    "/{name}/stats",
    summary="Class balance, sizes, colour, brightness and sharpness of a dataset version",
    responses=errors(404, 422),
)
async def stats(
    name: str,
    version: int | None = Query(None, ge=1, le=MAX_VERSION, description="Default: the latest version."),
    sample: int | None = Query(None, description=SAMPLE_HELP),
    state: AppState = Depends(get_state),
) -> dict:
    answer = await run_in_threadpool(dataset_stats, state.settings, state.catalog, state.store, name, version, sample)
    return redact(answer)


@router.get(
    "/{name}/plots/{kind}.png",
    summary="One picture of the dataset's features (the same PNGs as `leafdoc stats`)",
    responses={200: {"content": {"image/png": {}}}, **errors(404, 422)},
    response_class=Response,
)
async def plot(
    name: str,
    kind: Literal["class_distribution", "sizes", "colour", "sharpness", "samples"],
    version: int | None = Query(None, ge=1, le=MAX_VERSION, description="Default: the latest version."),
    sample: int | None = Query(None, description=SAMPLE_HELP),
    state: AppState = Depends(get_state),
) -> Response:
    png = await run_in_threadpool(dataset_plot, state.settings, state.catalog, state.store, name, kind, version, sample)
    return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})
