"""A model version as leafdoc answers it, the API (GET /v1/models[/{version}]) and `leafdoc models list|show` alike:
the registry's row (model_versions.version_dict) and which crops it learnt from field photos and which only from lab
photos (inference/fieldcrops.py)."""

from __future__ import annotations

from leafdoc.data.catalog import ModelVersionRow
from leafdoc.inference.fieldcrops import crops_known
from leafdoc.model_versions import version_dict


def version_answer(row: ModelVersionRow, serving: int | None, full: bool = False) -> dict:
    """One version: the registry's fields (with its card and files when `full`) and `crops`. Not redacted: the
    faces redact what they send (core/redact.py)."""
    return {**version_dict(row, serving, full), "crops": crops_known(list(row.labels), (row.card or {}).get("field"))}
