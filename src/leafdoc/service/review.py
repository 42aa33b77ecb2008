"""Feedback and review: what a user says about an answer, and an admin's label that brings a kept photo into
a dataset. The photo joins a new dataset version through the same path as an upload (service/uploads.py:
catalog lease, ingest, the upload's record); nothing a user says reaches training without an admin's label.
"""

from __future__ import annotations

import io

from sqlalchemy import select

from leafdoc.core.errors import Conflict
from leafdoc.data import predictions
from leafdoc.data.catalog import ModelVersionRow, PredictionRow
from leafdoc.service import uploads
from leafdoc.service.deps import AppState
from leafdoc.service.errors import InvalidRequest

FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif", "GIF": ".gif"}


def model_labels(state: AppState, version: int) -> list[str]:
    with state.catalog.Session() as s:
        labels = s.scalar(select(ModelVersionRow.labels).where(ModelVersionRow.version == version))
    if labels is None:
        loaded = state.holder.loaded
        labels = loaded.predictor.labels if loaded else []
    return list(labels)


def give_feedback(state: AppState, prediction_id: str, correct: bool, label: str | None) -> PredictionRow:
    row = predictions.get(state.catalog, prediction_id)
    if label is not None:
        label = label.strip()
        known = model_labels(state, row.model_version)
        if label not in known:
            raise InvalidRequest(
                f"label {label[:200]!r} is not one of the labels of model version {row.model_version}.",
                hint=f"Choose one of the {len(known)} labels GET /v1/models/{row.model_version} lists, or leave "
                "`label` out.",
            )
        if correct and not row.abstained and label != row.label:
            raise InvalidRequest(
                f"`correct` is true but `label` {label!r} is not the answer ({row.label!r}).",
                hint='Send {"correct": false, "label": ...} to say what it actually is.',
            )
    return predictions.set_feedback(state.catalog, prediction_id, correct, label)


def feedback_dict(row: PredictionRow) -> dict:
    return {
        "prediction_id": row.id,
        "correct": row.feedback_correct,
        "label": row.feedback_label,
        "recorded": row.feedback_at,
    }


def item_dict(row: PredictionRow) -> dict:
    return {
        "prediction_id": row.id,
        "created": row.created,
        "model_version": row.model_version,
        "label": None if row.abstained else row.label,
        "top_label": row.label,
        "confidence": round(row.confidence, 4),
        "abstained": row.abstained,
        "reason": row.reason,
        "ood_score": row.ood_score,
        "crop_given": row.crop_given,
        "feedback_correct": row.feedback_correct,
        "feedback_label": row.feedback_label,
        "has_photo": row.photo_sha256 is not None,
        "photo_url": f"/v1/review/{row.id}/photo" if row.photo_sha256 else None,
        "reviewed": row.reviewed_at is not None,
        "reviewed_label": row.reviewed_label,
        "review_upload_id": row.review_upload_id,
    }


def photo_of(state: AppState, prediction_id: str) -> tuple[bytes, str]:
    row = predictions.get(state.catalog, prediction_id)
    if row.photo_sha256 is None:
        raise _no_photo(prediction_id, "there is none to show")
    data = state.store.get(row.photo_sha256)
    return data, _media_type(data)


def _no_photo(prediction_id: str, so: str) -> Conflict:
    return Conflict(
        f"no photo was kept for prediction {prediction_id[:64]!r}, so {so}.",
        hint="Photos are kept only while the server runs with LEAFDOC_KEEP_PHOTOS=true.",
    )


def _sniff(data: bytes) -> str:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.format or ""
    except Exception:
        return ""


def _media_type(data: bytes) -> str:
    fmt = _sniff(data)
    return f"image/{fmt.lower()}" if fmt else "application/octet-stream"


def label_photo(state: AppState, prediction_id: str, label: str, dataset: str | None) -> dict:
    """An admin's label: the kept photo becomes a new dataset version (as an upload of one file would)."""
    row = predictions.get(state.catalog, prediction_id)
    if row.photo_sha256 is None:
        raise _no_photo(prediction_id, "it cannot join a dataset")
    label = uploads.check_name(label, "label")
    data = state.store.get(row.photo_sha256)
    with uploads.spool_folder(state.settings) as (upload_id, folder):
        path = folder / f"review-{row.id[:16]}{FORMATS.get(_sniff(data), '.jpg')}"
        path.write_bytes(data)
        spooled = uploads.Spooled(folder, [uploads.SpooledFile(path.name, path)])
        answer = uploads.process_upload(state, upload_id, spooled, dataset=dataset, label=label, retrain=False)
    reviewed = predictions.set_review(state.catalog, prediction_id, label, upload_id)
    predictions.release_to_dataset(state.catalog, row.photo_sha256)  # the dataset's now: out of the kept quota
    return {"prediction": item_dict(reviewed), "upload": answer}


def dismiss(state: AppState, prediction_id: str) -> dict:
    """An admin's "nothing to learn from this one" (not a leaf, unusable): it leaves the queue, enters no dataset."""
    predictions.get(state.catalog, prediction_id)
    return item_dict(predictions.set_review(state.catalog, prediction_id, None, None))
