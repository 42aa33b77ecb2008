"""Pydantic models of every request and answer of the API (storage models live in data/catalog.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from leafdoc.advice.schema import Entry
from leafdoc.inference.answer import Answer
from leafdoc.train.backbone_registry import NAMED_WEIGHTS
from leafdoc.train.config import ONE_RUN_OPTIONS, TrainConfig

# A time of the catalog, which stores UTC without its zone: sent with it ("...Z"), as RFC 3339's date-time wants.
UtcTime = Annotated[datetime, AfterValidator(lambda t: t if t.tzinfo else t.replace(tzinfo=UTC))]


class ErrorAnswer(BaseModel):
    error: str = Field(description="Machine-readable code, e.g. bad_image, unauthorized, not_found.")
    message: str = Field(description="What went wrong, in plain words.")
    hint: str | None = Field(None, description="What to do about it.")
    details: list[dict[str, Any]] | None = Field(None, description="Field-level problems of an invalid request.")


# ---- predictions (one photo's `Answer` and `ExplainAnswer` are built in inference/answer.py) ---------


class BatchItem(BaseModel):
    file: str | None
    prediction: Answer | None = None
    error: ErrorAnswer | None = None


class BatchAnswer(BaseModel):
    model_version: int
    n: int
    results: list[BatchItem]


# ---- uploads ---------------------------------------------------------------------------------------


class RejectedFile(BaseModel):
    file: str
    reason: str


class PoorPhoto(BaseModel):
    file: str
    problems: list[str] = Field(description="Why leafdoc would refuse to diagnose it: too_dark, no_colour, blurred...")


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
    created: UtcTime | None
    started: UtcTime | None
    finished: UtcTime | None
    cancel_requested: UtcTime | None = Field(
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
    progress: dict[str, Any] | None = Field(
        description="`phase` (in words, or the trainer's: `scratch`, `head`, `fine_tune`) with `epoch`, `batch` of "
        "`steps` and `attempt` while it runs; `split`: how many photos went to train, val and test, kept once it "
        "has finished. A finished job's also has `field_check` (`refuses`: whether the new version refuses field "
        "photos, with the `sources` its unlike-training check was fitted with and the share `refused`) and, when the "
        "new version's card has the other-leaves check's section, `other_leaves`: `fitted`, the `bank` of other "
        "leaves and its `bank_classes`, `left_out` (the bank's classes left out as the lab's own), `threshold`, "
        "`own_answered_out_of_fold` and `bank_refused_out_of_fold`, or `why_not` (the section without its weights)."
    )
    metrics: dict[str, Any] | None = Field(description="`last` epoch, `history` of epochs, `test` when done.")
    error: str | None
    candidate_version: int | None
    promotion: dict[str, Any] | None = Field(
        description="The promotion rule, both figures and the decision (as the version's `promotion` in GET "
        "/v1/models: `promote`, `held_back`, `reason`; `promoted`: whether it served); with LEAFDOC_ONNX_VARIANT int8 "
        "or fp16, `serving_copy`: whether the copy the service serves was made (`made`, `file`, `seconds`), its "
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
    poor_photos: list[PoorPhoto] = Field(
        default_factory=list,
        description="Photos added that leafdoc would refuse to diagnose (kept for training; a lab may remove them).",
    )
    n_images: int
    n_classes: int
    classes: dict[str, int]
    created: UtcTime
    training_job: TrainingJob | None = None
    retrain: str | None = Field(None, description="What happened to retrain=true.")


class UploadList(BaseModel):
    uploads: list[UploadAnswer]


# ---- training jobs ---------------------------------------------------------------------------------


# Every option of `leafdoc train`, all optional: unset ones come from the serving model's card; not the options of
# one run on one machine (a teacher file), which no client names. `weights` by name only: a weights file on the server
# is `leafdoc train --weights PATH`'s, not a client's to name (a job warm-starts from the serving model anyway).
def _optional(field) -> object:
    """The field's type with its constraints (ge, le...), made optional."""
    typ = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return typ | None


WEIGHTS_BY_NAME = Literal[NAMED_WEIGHTS]  # type: ignore[valid-type]  # starter, imagenet, none

TrainOptions = create_model(
    "TrainOptions",
    __config__=ConfigDict(extra="forbid"),
    **{
        name: (_optional(field), Field(None, description=field.description))
        for name, field in TrainConfig.model_fields.items()
        if name not in ONE_RUN_OPTIONS and name != "weights"
    },
    weights=(
        WEIGHTS_BY_NAME | None,
        Field(
            None,
            description="starter | imagenet | none (see `leafdoc train --help`). A weights file is named on the server "
            "(`leafdoc train --weights PATH`), not over the API. Default: the serving model's.",
        ),
    ),
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
    created: UtcTime
    source: str
    job_id: str | None
    parent_version: int | None
    dataset: str | None
    dataset_version: int | None
    labels: list[str]
    metrics: dict[str, Any] | None
    promotion: dict[str, Any] | None = Field(
        description="How the version came in. A training job's candidate: the promotion rule's decision, with "
        "`metric`, `margin` and `rule`, the `candidate` and `serving` figures on the same `n_images` test photos "
        "(`n_left_out`: those the serving model trained on), `paired` (the photos only one of the two names rightly, "
        "McNemar's `p`), `promote`, `held_back`: why it was not promoted automatically, as codes in the order the "
        "reason says them (`worse`: worse than the serving model beyond the margin; `too_few`: too few photos left to "
        "tell the two apart; `forgets`: it does not know `lost_classes` of the serving model's `known_classes` "
        "classes; `no_test_photos`: none left to compare on; empty when promoted), `reason` in words and `promoted` "
        "(whether it served). Decisions taken before `held_back` existed have only `reason`. A version that came "
        "otherwise: its `decision` (`seed`, `added`, `shipped`), `promoted` and `reason`."
    )
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
    created: UtcTime


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
    to_version: int | None = Field(
        None,
        ge=1,
        le=2**31 - 1,
        description="The version the caller expects the rollback to serve (the one before the serving one in GET "
        "/v1/models' history): 409 if another admin's promotion or rollback changed it meanwhile.",
    )


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = None


# ---- datasets and health ---------------------------------------------------------------------------


class DatasetVersion(BaseModel):
    version: int
    n_images: int
    n_classes: int
    created: UtcTime
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
    status: Literal["ok", "degraded", "unavailable"] = Field(
        description="`ok`; `degraded`: ready (200), but the job queue is unreachable (training jobs wait for it); "
        "`unavailable`: not ready (503)."
    )
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
class AdviceEntry(Entry):
    """A knowledge entry in the language asked for (advice/knowledge.py, `translated_entry`)."""

    language: str = Field("en", description="The language of the translated fields: en, es, fr or hi.")
    translation: Literal["unreviewed", "reviewed"] | None = Field(
        None,
        description="Null in English; `unreviewed` while a translated text of the entry is not yet reviewed by "
        "someone who knows plant pathology ('translated, not yet reviewed'), `reviewed` once every one is.",
    )
    untranslated: list[str] = Field(
        default_factory=list,
        description="The entry's fields with a text still in English in this language, among crop, condition, "
        "summary, symptoms, confused_with.how_to_tell, spread, actions, keep_doing, when_to_call, urgent, "
        "confused_with.measured and pathogen (the words around a cause's Latin name); empty when the whole entry is "
        "translated. Empty in English.",
    )


class AdviceListItem(BaseModel):
    label: str
    title: str
    healthy: bool
    route: str


class AdviceList(BaseModel):
    entries: list[AdviceListItem]
