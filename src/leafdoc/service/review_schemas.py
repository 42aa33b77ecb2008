"""Requests and answers of feedback, review and monitoring (service/routes/feedback.py, monitoring.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from leafdoc.service.schemas import UploadAnswer, UtcTime


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    correct: StrictBool = Field(description='Was the answer right? true or false ("yes" or 1 is refused)')
    label: str | None = Field(
        None, max_length=200, description="What it actually is: one of the model's labels (optional)."
    )


class FeedbackAnswer(BaseModel):
    prediction_id: str
    correct: bool
    label: str | None
    recorded: UtcTime


class ReviewItem(BaseModel):
    prediction_id: str
    created: UtcTime
    model_version: int
    label: str | None = Field(description="The diagnosis given; null when the model abstained.")
    top_label: str | None = Field(description="The most likely label, even when the model abstained.")
    confidence: float
    abstained: bool
    reason: str | None
    ood_score: float | None
    crop_given: str | None = Field(
        None, description="The crop the grower said the photo is of (the API's `crop`); null when none was given."
    )
    feedback_correct: bool | None
    feedback_label: str | None
    has_photo: bool
    photo_url: str | None = Field(description="GET it with the admin token; null when the photo was not kept.")
    reviewed: bool = Field(description="An admin labelled or dismissed it.")
    reviewed_label: str | None
    review_upload_id: str | None


class ReviewList(BaseModel):
    keep_photos: bool = Field(description="Whether this server keeps predicted photos (LEAFDOC_KEEP_PHOTOS).")
    items: list[ReviewItem]


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(min_length=1, max_length=200, description="What the photo shows (a class name).")
    dataset: str | None = Field(None, description="Dataset to add it to (default: the serving model's).")


class ReviewAnswer(BaseModel):
    prediction: ReviewItem
    upload: UploadAnswer


class MonitoringAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")
    period: str
    hours: int
    model_version: int | None
    buckets: list[dict[str, Any]]
    baseline: dict[str, Any] | None = Field(description="The serving model's answers on its validation photos.")
    drift_window: dict[str, Any]
    drift: dict[str, Any] = Field(description="`checked`, figures, and `warnings` in plain words.")
    recording: dict[str, Any]
