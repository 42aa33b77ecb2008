"""One prediction answer, the same shape everywhere: `leafdoc predict --json`, the API's /v1/predict,
/v1/predict/batch and /v1/explain, and so the web page and the desktop app (which read the API's JSON).

The fields and their meaning are documented in service/schemas.py (PredictAnswer). `advice` is the
knowledge base's reference for the diagnosed label (summary, route of the full entry, sources), or a note
that there is none; an abstention carries no advice, since there is no diagnosis to act on.
"""

from __future__ import annotations

from leafdoc.advice import Knowledge
from leafdoc.advice.lookalikes import tell_apart, urgent_lookalike
from leafdoc.inference.abstain import Decision


def build(
    *,
    file: str | None,
    model_version: int | None,
    top_k: list[dict],
    decision: Decision,
    knowledge: Knowledge,
    framed_box: list[int] | None = None,
    light_corrected: str | None = None,
) -> dict:
    label = None if decision.abstained else top_k[0]["label"]
    return {
        "prediction_id": None,  # the API sets one (service/serving.py); `leafdoc predict` records nothing
        "file": file,
        "model_version": model_version,
        "label": label,
        "confidence": top_k[0]["probability"],
        "top_k": top_k,
        "abstained": decision.abstained,
        "reason": decision.reason,
        "message": refusal_message(decision, knowledge),
        "candidates": list(decision.candidates),
        "problems": list(decision.problems),
        "ood_score": decision.ood_score,
        "min_confidence": round(decision.threshold, 6),
        "advice": None if label is None else knowledge.reference(label),
        "caution": urgent_lookalike(knowledge, label, top_k),
        "framed_box": framed_box,
        "light_corrected": light_corrected,
    }


def refusal_message(decision: Decision, knowledge: Knowledge) -> str | None:
    """The decision's words, and for "not sure" how to tell its candidates apart (advice/lookalikes.py)."""
    how = tell_apart(knowledge, list(decision.candidates)) if decision.abstained else ""
    return f"{decision.message} {how}" if how else decision.message
