"""Pydantic models of every request and answer of the API (storage models live in data/catalog.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from leafdoc.advice.schema import Entry
from leafdoc.train.config import TrainConfig


class ErrorAnswer(BaseModel):
    error: str = Field(description="Machine-readable code, e.g. bad_image, unauthorized, not_found.")
    message: str = Field(description="What went wrong, in plain words.")
    hint: str | None = Field(None, description="What to do about it.")
    details: list[dict[str, Any]] | None = Field(None, description="Field-level problems of an invalid request.")


# ---- predictions -----------------------------------------------------------------------------------


class LabelScore(BaseModel):
    label: str
    probability: float


class AdviceSource(BaseModel):
    title: str
    author: str | None = None
    publisher: str
    year: int | None = None
    url: str | None = None


class AdviceRef(BaseModel):
    """What a diagnosis carries from the knowledge base (leafdoc/advice/knowledge)."""

    label: str
    available: bool = Field(description="False: leafdoc has no knowledge file for this label (see `message`).")
    title: str | None = Field(None, description="Crop and condition in words, e.g. 'Tomato — Early blight'.")
    summary: str | None = Field(None, description="Two or three sentences: what it is and what to do first.")
    route: str | None = Field(None, description="GET it for the full entry, e.g. /v1/advice/Tomato___Early_blight.")
    sources: list[AdviceSource] = Field(default_factory=list, description="What the entry rests on.")
    message: str | None = Field(None, description="Why there is no advice, when `available` is false.")


class PredictAnswer(BaseModel):
    prediction_id: str | None = Field(
        description="This answer's id (unguessable): send feedback to POST /v1/predictions/{prediction_id}/feedback. "
        "Always set by the API; null in `leafdoc predict --json` (nothing is recorded there)."
    )
    file: str | None = Field(None, description="The file name the image was sent with, if any.")
    model_version: int
    label: str | None = Field(description="The diagnosis; null when the model abstains.")
    confidence: float = Field(description="Probability of the most likely label.")
    top_k: list[LabelScore]
    abstained: bool
    reason: Literal["poor_photo", "not_a_leaf", "unlike_training", "unsure"] | None = Field(
        None,
        description="Why the model abstained: poor_photo, not_a_leaf, unlike_training (a field photo to a model "
        "of lab photos) or unsure.",
    )
    message: str | None = Field(None, description="The abstention explained for a person.")
    candidates: list[str] = Field(default_factory=list, description="Labels the model hesitates between.")
    problems: list[str] = Field(
        default_factory=list,
        description="For poor_photo: what is wrong with it (too_small, too_dark, too_bright, blurred, one_colour).",
    )
    ood_score: float | None = Field(
        None, description="How unlike the training leaf photos this one is (not_a_leaf above the card's threshold)."
    )
    min_confidence: float = Field(description="The model's calibrated confidence threshold.")
    advice: AdviceRef | None = Field(
        None,
        description="What to do about the diagnosis: summary, the full entry's route, sources. Null when the "
        "model abstained (no diagnosis, so no advice).",
    )
    framed_box: list[int] | None = Field(
        None,
        description="Set when the leaf was small in the photo (taken from too far) and the model looked at the "
        "square around it instead of the whole photo: [left, top, right, bottom] in pixels of the photo as sent, "
        "turned upright by its EXIF orientation. Null when the model saw the middle of the photo.",
    )
    light_corrected: Literal["warm", "cool"] | None = Field(
        None,
        description="Set when the sheet around the leaf showed a light warmer (`warm`) or cooler (`cool`) than nearly "
        "all the photos the model learnt from, and the colours were corrected to a typical one of those lights before "
        "the model saw the photo (the card's `input.white_balance: light-range`). Null when they were left as taken.",
    )


class BatchItem(BaseModel):
    file: str | None
    prediction: PredictAnswer | None = None
    error: ErrorAnswer | None = None


class BatchAnswer(BaseModel):
    model_version: int
    n: int
    results: list[BatchItem]


class ExplainAnswer(PredictAnswer):
    explained_label: str = Field(description="The label whose heat map this is (the top label by default).")
    heatmap: list[list[float]] = Field(
        description="Class activation map at the last feature map's resolution (rows x columns), ReLU'd and "
        "scaled to 0..1."
    )
    heatmap_scale: float = Field(description="The map's maximum before scaling: raw map = heatmap * heatmap_scale.")
    overlay_png: str = Field(description="Base64 PNG: the heat map coloured and blended over the photo.")
    overlay_size: int


# ---- uploads ---------------------------------------------------------------------------------------


class RejectedFile(BaseModel):
    file: str
    reason: str


class DuplicateFile(BaseModel):
    model_config = ConfigDict(extra="allow")
    file: str


JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class TrainingJob(BaseModel):
    id: str
    state: JobState
    dataset: str
    dataset_version: int | None
    options: dict[str, Any]
    warm_start: bool
    parent_version: int | None = Field(
        description="The model serving when its first attempt started; every attempt warm-starts from it."
    )
    upload_id: str | None
    created: datetime | None
    started: datetime | None
    finished: datetime | None
    cancel_requested: datetime | None = Field(
        None, description="When an admin asked to cancel it; a running job then ends `cancelled` within seconds."
    )
    epoch: int
    epochs: int
    attempts: int = Field(
        0,
        description="How many times a worker started it: a job whose worker is lost is queued again, up to "
        "LEAFDOC_JOB_MAX_ATTEMPTS, and continues from its last checkpoint.",
    )
    resumed_epoch: int | None = Field(
        None, description="The epoch the current (or last) attempt continued after; null if it started at epoch 1."
    )
    progress: dict[str, Any] | None
    metrics: dict[str, Any] | None = Field(description="`last` epoch, `history` of epochs, `test` when done.")
    error: str | None
    candidate_version: int | None
    promotion: dict[str, Any] | None = Field(
        description="The promotion rule, both figures and the decision; with LEAFDOC_ONNX_VARIANT int8 or fp16, "
        "`serving_copy`: whether the copy the service serves was made (`made`, `file`, `seconds`), its "
        "`validation_vs_fp32` agreement with model.onnx on the validation photos, or the `warning` why not."
    )


class UploadAnswer(BaseModel):
    upload_id: str
    dataset: str
    version: int | None = Field(description="Dataset version after the upload (null: nothing was ever added).")
    created_version: bool
    added: int
    duplicates: list[DuplicateFile]
    near_duplicates: list[DuplicateFile]
    rejected: list[RejectedFile]
    n_images: int
    n_classes: int
    classes: dict[str, int]
    created: datetime
    training_job: TrainingJob | None = None
    retrain: str | None = Field(None, description="What happened to retrain=true.")


class UploadList(BaseModel):
    uploads: list[UploadAnswer]


# ---- training jobs ---------------------------------------------------------------------------------


# Every option of `leafdoc train`, all optional: unset ones come from the serving model's card.
def _optional(field) -> object:
    """The field's type with its constraints (ge, le...), made optional."""
    typ = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return typ | None


TrainOptions = create_model(
    "TrainOptions",
    __config__=ConfigDict(extra="forbid"),
    **{
        name: (_optional(field), Field(None, description=field.description))
        for name, field in TrainConfig.model_fields.items()
    },
)


class TrainingJobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str | None = Field(None, description="Default: LEAFDOC_DEFAULT_DATASET, else the serving model's.")
    dataset_version: int | None = Field(None, description="Default: the latest version.")
    warm_start: bool = Field(True, description="Start from the serving model's weights.")
    options: TrainOptions = Field(default_factory=TrainOptions)  # type: ignore[valid-type]


class TrainingJobList(BaseModel):
    jobs: list[TrainingJob]
    queue_length: int


# ---- models ----------------------------------------------------------------------------------------


class CropsKnown(BaseModel):
    field: list[str] = Field(
        description="Crops learnt from field photos as well as lab photos: a field photo of one is answered when "
        "the model is sure."
    )
    lab_only: list[str] = Field(
        description="Crops known only from lab photos (one leaf on a plain background): a field photo of one is "
        "refused (unlike_training)."
    )


class ModelVersion(BaseModel):
    version: int
    status: Literal["candidate", "serving", "archived", "rejected"]
    serving: bool
    created: datetime
    source: str
    job_id: str | None
    parent_version: int | None
    dataset: str | None
    dataset_version: int | None
    labels: list[str]
    metrics: dict[str, Any] | None
    promotion: dict[str, Any] | None
    crops: CropsKnown


class ModelVersionDetail(ModelVersion):
    card: dict[str, Any]
    files: dict[str, str] = Field(description="File name -> sha256 of the blob in the store.")


class ServingEvent(BaseModel):
    id: int
    version: int
    previous_version: int | None
    action: Literal["seed", "promote", "auto_promote", "rollback"]
    reason: str
    created: datetime


class ModelList(BaseModel):
    serving_version: int | None
    models: list[ModelVersion]
    history: list[ServingEvent]


class PointerAnswer(BaseModel):
    serving_version: int
    previous_version: int | None
    event: ServingEvent


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = None


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = None


# ---- datasets and health ---------------------------------------------------------------------------


class DatasetVersion(BaseModel):
    version: int
    n_images: int
    n_classes: int
    created: datetime
    source: str


class Dataset(BaseModel):
    name: str
    latest: int
    versions: list[DatasetVersion]


class DatasetList(BaseModel):
    datasets: list[Dataset]


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    ready: bool
    checks: dict[str, str]
    model_version: int | None
    model_file: str | None = Field(
        None,
        description="The ONNX file the serving version runs: model.onnx, or the model.int8.onnx / model.fp16.onnx "
        "copy LEAFDOC_ONNX_VARIANT asks for (a version without that copy is served with model.onnx).",
    )
    keep_photos: bool = Field(False, description="Whether predicted photos are kept for review (LEAFDOC_KEEP_PHOTOS).")


# ---- advice ----------------------------------------------------------------------------------------


# A knowledge file as the API serves it: leafdoc/advice/schema.py's fields, and its title.
AdviceEntry = Entry


class AdviceListItem(BaseModel):
    label: str
    title: str
    healthy: bool
    route: str


class AdviceList(BaseModel):
    entries: list[AdviceListItem]
