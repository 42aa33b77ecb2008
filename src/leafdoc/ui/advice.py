"""The advice under a diagnosis on the web page: the summary first, the full entry folded away.

Kept apart from page.py so the diagnose tab needs one line for it. The full entry comes from the API
(GET /v1/advice/{label}, through the client), like everything else the page shows.
"""

from __future__ import annotations

import logging

from leafdoc.advice.render import details_markdown, summary_markdown
from leafdoc.client import ApiError, LeafdocClient

log = logging.getLogger(__name__)

DETAILS_TITLE = "Symptoms, look-alikes, what to do, sources"


def fetch_entry(api: LeafdocClient, answer: dict) -> dict | None:
    """The full entry of the answer's label, or None (abstained, no entry, or the API could not give it)."""
    advice = answer.get("advice")
    if answer.get("abstained") or not advice or not advice.get("available"):
        return None
    try:
        return api.advice(advice["label"])
    except ApiError as exc:  # the summary still shows; the details are a click away in the API
        log.warning("advice for %r could not be fetched: %s", advice["label"], exc)
        return None


def advice_markdown(answer: dict, entry: dict | None) -> str:
    """Markdown to put under the verdict: nothing for an abstention, a note for a label without an entry."""
    summary = summary_markdown(None if answer.get("abstained") else answer.get("advice"))
    if not summary:
        return ""
    parts = ["\n\n---", summary]
    if entry:
        parts.append(
            f'<details class="advice-details"><summary>{DETAILS_TITLE}</summary>\n\n'
            + details_markdown(entry)
            + "\n\n</details>"
        )
    return "\n\n".join(parts)
