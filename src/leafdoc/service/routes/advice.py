"""GET /v1/advice and /v1/advice/{label}: the knowledge base behind every diagnosis. Open to everyone."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from leafdoc.advice import advice_route
from leafdoc.advice.knowledge import translated_entry
from leafdoc.core.errors import NotFound
from leafdoc.service.deps import AppState, get_state
from leafdoc.service.routes import errors
from leafdoc.service.routes.predict import LangQuery, request_language
from leafdoc.service.schemas import AdviceEntry, AdviceList

router = APIRouter(prefix="/v1/advice", tags=["advice"])


@router.get("", response_model=AdviceList, summary="The labels leafdoc has advice for")
def list_advice(state: AppState = Depends(get_state)) -> dict:
    entries = state.holder.knowledge.entries.values()
    return {
        "entries": [
            {"label": e.label, "title": e.title, "healthy": e.healthy, "route": advice_route(e.label)}
            for e in sorted(entries, key=lambda e: e.label)
        ]
    }


@router.get(
    "/{label}",
    response_model=AdviceEntry,
    response_model_exclude_none=True,
    summary="A label's full entry: symptoms, look-alikes, spread, what to do, when to call, sources",
    responses=errors(404, 422),
)
def get_advice(
    label: Annotated[str, Path(max_length=200)],
    request: Request,
    response: Response,
    lang: str | None = LangQuery,
    state: AppState = Depends(get_state),
) -> dict:
    lang = request_language(lang, request, response)
    entry = state.holder.knowledge.get(label)
    if entry is None:
        raise NotFound(
            f"leafdoc has no advice for label {label!r}.",
            hint="GET /v1/advice lists the labels it has advice for (labels are case-sensitive).",
        )
    return translated_entry(entry, lang)
