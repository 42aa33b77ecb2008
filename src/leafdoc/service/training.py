"""Retraining: submit a job (API side), and run one (in its own process, started by a worker).

`python -m leafdoc.service.training JOB_ID` reads the settings as JSON on stdin, trains on the job's
dataset version warm-started from the serving model, scores the candidate and the serving model on
the candidate's test images the serving model did not train on (lifecycle/promotion.py), and registers
the candidate (promoting it if the rule says so) in the same transaction that marks the job succeeded,
if it is still running with no cancel requested. Any error marks the job failed (cancelled, if an
admin asked) with its message and registers nothing.

The training state is saved after every epoch (train/checkpoint.py) and copied to the shared store
(service/checkpoints.py): an attempt after a lost worker starts from it, on whichever machine, and
says so in the job's progress and log ("attempt 2 of 3: continuing after epoch N"). Every write names
the attempt (jobs.py), and the process stops itself if its worker dies, so it cannot outlive the lease.
This is the only module of the service that imports TensorFlow, and only here, in the job's own
process.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import select

from leafdoc.core.errors import ConfigError, LeafdocError, NotFound
from leafdoc.core.settings import Settings, without_password
from leafdoc.data.catalog import Catalog, ModelVersionRow, TrainingJobRow, utcnow
from leafdoc.data.datasets import get_version, version_labels
from leafdoc.model_versions import Registry, ServingPointer
from leafdoc.modelfolder import ModelCard
from leafdoc.runtime.parentwatch import on_parent_exit
from leafdoc.service import checkpoints
from leafdoc.service.errors import InvalidRequest
from leafdoc.service.jobs import TERMINAL, JobQueue, create_job, fail, get_job, holds, job_dict, succeed, update_job
from leafdoc.train import events
from leafdoc.train.backbone_registry import IMAGENET, STARTER
from leafdoc.train.config import ONE_RUN_OPTIONS, TrainConfig, starter_available

log = logging.getLogger(__name__)

PROGRESS_EVERY = 2.0  # seconds between progress writes during an epoch
ORPHAN_CHECK_SECONDS = 1.0


# What a retraining keeps of the serving model's options when its dataset lacks some of the classes the serving model
# knows (a lab's first model, its photos uploaded on the page while the starter serves): the network, which the warm
# start carries over. The rest is `leafdoc train`'s defaults, the recipe for a lab's few dozen photos a class
# (benchmarks/lab_defaults.py) and the one leafdoc's banks of other leaves are made for (224 px, the network frozen):
# the starter's own recipe (160 px, its top fine-tuned for six epochs on 25,000 photos) would leave the lab's model
# without the check that refuses the leaves of crops it was not taught. A dataset holding every class the serving
# model knows, and maybe more (its own dataset grown by a class), keeps the whole recipe: the lab's on 35,000 photos
# (224 px, 4 views, 200 head epochs) would take hours for what the serving recipe does.
NETWORK_OPTIONS = frozenset({"backbone", "alpha", "weights"})


def base_options(registry: Registry, warm_start: bool = True, labels: list[str] | None = None) -> dict:
    """The serving model's training options: a retrain keeps its architecture, so it can warm-start (the backbone
    then comes from the serving model, no starting weights are loaded). Where `labels` (the job's dataset's classes)
    lack some of the serving model's, only its network (NETWORK_OPTIONS); more classes keep the whole recipe. A fresh
    start (`warm_start: false`) of a model that began from the starter's backbone (`weights: starter`) starts from
    ImageNet's where models/starter is not there (the worker image)."""
    ptr = registry.serving()
    if ptr is None:
        return {}
    row = registry.get(ptr.version)
    training = ModelCard.from_dict(row.card or {}).training or {}
    options = {k: v for k, v in training.items() if k in TrainConfig.model_fields and k not in ONE_RUN_OPTIONS}
    if labels is not None and not set(row.labels) <= set(labels):
        options = {k: v for k, v in options.items() if k in NETWORK_OPTIONS}
    if not warm_start and options.get("weights") == STARTER and not starter_available():
        options["weights"] = IMAGENET
    return options


def default_dataset(settings: Settings, registry: Registry) -> str:
    if settings.default_dataset:
        return settings.default_dataset
    ptr = registry.serving()
    if ptr is not None:
        dataset = ModelCard.from_dict(registry.get(ptr.version).card or {}).dataset
        if dataset and dataset.name:
            return dataset.name
    raise ConfigError(
        "no dataset named, and there is no default.",
        hint="Pass `dataset`, or set LEAFDOC_DEFAULT_DATASET.",
    )


def resolve_config(
    registry: Registry,
    options: dict | None,
    settings: Settings | None = None,
    warm_start: bool = True,
    labels: list[str] | None = None,
) -> TrainConfig:
    """The job's training options: the serving model's (base_options: its network only for a dataset lacking some
    of its `labels`), overridden by the request's; non-leaf folders from
    LEAFDOC_NONLEAF_DIRS when neither names any (the starter's card, for one, records none), field-photo folders
    from LEAFDOC_FIELD_DIRS when neither says which (an empty list says: no unlike-training check)."""
    asked = {k: v for k, v in (options or {}).items() if v is not None}
    merged = {**base_options(registry, warm_start, labels), **asked}
    if not merged.get("nonleaf_dirs") and settings is not None and settings.nonleaf_dirs.strip():
        merged["nonleaf_dirs"] = [d for d in settings.nonleaf_dirs.split(":") if d.strip()]
    if merged.get("field_dirs") is None and settings is not None and settings.field_dirs.strip():
        merged["field_dirs"] = [d for d in settings.field_dirs.split(":") if d.strip()]
    try:
        return TrainConfig.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in exc.errors())
        raise InvalidRequest(f"invalid training options: {problems}.", hint="See `leafdoc train --help`.") from None


def keeps_field_check(registry: Registry, ptr: ServingPointer | None, cfg: TrainConfig, warm_start: bool) -> None:
    """A retrain must not silently drop the serving model's unlike-training check: the new version would guess
    on the field photos the serving one refuses. It is refitted with field photos: `field_dirs`, else the serving
    card's, else LEAFDOC_FIELD_DIRS, else (a warm start) the ones the serving model carries (field_photos.zip);
    with none of those the admin must say `field_dirs: []`."""
    if cfg.field_dirs is not None or ptr is None:
        return
    field = ModelCard.from_dict(registry.get(ptr.version).card or {}).field
    if field is None or (warm_start and field.get("carried_photos")):
        return
    raise InvalidRequest(
        f"the serving model (version {ptr.version}) refuses field photos (leaves on the plant) as "
        "`unlike_training`, and this retraining has no field photos to refit that check with"
        + ("" if warm_start else " (without a warm start it cannot use the ones the serving model carries)")
        + ", so the new version would guess on them instead.",
        hint="If the new photos are field photos the model should learn to answer, say so: `learn_field` on an "
        'upload, or the option `"field_dirs": []` (the page and the desktop app: tick "The photos include field '
        'photos"). To keep the check, set LEAFDOC_FIELD_DIRS on the server to folders of field photos.',
    )


QUEUE_WAIT = "waiting: could not reach the job queue; a worker queues the job when it answers"


def submit(
    settings: Settings,
    catalog: Catalog,
    registry: Registry,
    queue: JobQueue,
    *,
    dataset: str | None = None,
    dataset_version: int | None = None,
    options: dict | None = None,
    warm_start: bool = True,
    upload_id: str | None = None,
) -> dict:
    """Record a queued job (on the latest dataset version unless one is named) and enqueue it."""
    dataset = dataset or default_dataset(settings, registry)
    try:
        version_row = get_version(catalog, dataset, dataset_version)
    except NotFound as missing:  # the library's hint is a command's; a client of the service uploads
        if dataset_version is None:
            missing.hint = (
                f"Upload labelled photos first (POST /v1/uploads with `dataset` {dataset!r}, or the Retrain tab of "
                "the web page or the desktop app), or name a dataset GET /v1/datasets lists."
            )
        raise
    version = version_row.version
    cfg = resolve_config(registry, options, settings, warm_start, version_labels(catalog, version_row))
    ptr = registry.serving()
    keeps_field_check(registry, ptr, cfg, warm_start)
    epochs = cfg.epochs + (cfg.fine_tune_epochs if cfg.pretrained else 0)
    row = create_job(
        catalog,
        dataset=dataset,
        dataset_version=version,
        options=cfg.model_dump(),
        warm_start=warm_start,
        parent_version=ptr.version if ptr else None,
        epochs=epochs,
        upload_id=upload_id,
    )
    try:
        queue.enqueue(row.id)
    except Exception as exc:  # the row stays; a worker re-enqueues queued jobs it does not find
        # The job's record is open to whoever has its id, and Redis's error names its host and port: the log has it.
        log.warning("job %s waits: the job queue cannot be reached: %s", row.id, without_password(str(exc)))
        update_job(catalog, row.id, progress={"phase": QUEUE_WAIT})
    return job_dict(get_job(catalog, row.id))


# ---- the job's own process -------------------------------------------------------------------------


def jobs_root(settings: Settings) -> Path:
    """Where jobs write their model folders before they are registered (under models_dir: same disk)."""
    return settings.models_dir / ".jobs"


def job_folder(settings: Settings, job_id: str) -> Path:
    return jobs_root(settings) / job_id


def job_of(name: str) -> str:
    """The job a name under jobs_root belongs to: JOB, .JOB.checkpoint, ..JOB.checkpoint.XXXX.partial (a
    half-saved checkpoint: core.atomic.atomic_dir's temp name beside `.JOB.checkpoint`), .JOB.XXXX.partial, .JOB.old."""
    return name.lstrip(".").split(".")[0]


def remove_job_files(settings: Settings, job_id: str) -> None:
    """Everything a job left on this machine: its model folder, its copy of the checkpoint, and any folder
    half-written beside them (left when its process was stopped while it saved, which SIGTERM on cancel or
    a worker's stop can do at any moment)."""
    root = jobs_root(settings)
    for path in root.iterdir() if root.is_dir() else []:
        if job_of(path.name) != job_id:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def say(text: str) -> None:
    """A line in the job's log (this process's output goes there)."""
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}", flush=True)


class _Reporter:
    """Training events -> the job row (epochs always; batches at most every PROGRESS_EVERY seconds), and
    each epoch's checkpoint -> the shared store. Every write is for this attempt only."""

    def __init__(self, catalog: Catalog, store, job_id: str, attempt: int, max_attempts: int, history: list[dict]):
        self.catalog, self.store, self.job_id = catalog, store, job_id
        self.attempt, self.max_attempts = attempt, max_attempts
        self.history = history  # earlier attempts' epochs, cut back to the checkpoint's on `resume`
        self.split: dict[str, int] | None = None  # photos per part, once the data is split: in every progress
        self._last = 0.0

    def update(self, **values) -> None:
        if self.split and values.get("progress") is not None:  # each write replaces the whole progress
            values["progress"] = {**values["progress"], "split": self.split}
        update_job(self.catalog, self.job_id, attempt=self.attempt, **values)

    @property
    def prefix(self) -> str:
        return f"attempt {self.attempt} of {self.max_attempts}: " if self.attempt > 1 else ""

    def __call__(self, e: events.TrainEvent) -> None:
        now = time.monotonic()
        match e:
            case events.Epoch(phase=phase, epoch=epoch):
                record = {k: v for k, v in e.to_dict().items() if k != "event"}
                rec = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in record.items()}
                rec["attempt"] = self.attempt
                self.history.append(rec)
                self.update(
                    epoch=epoch,
                    metrics={"last": rec, "history": self.history},
                    progress={"phase": phase, "epoch": epoch, "attempt": self.attempt},
                    heartbeat=utcnow(),
                )
                self._last = now
            case events.Checkpointed(epoch=epoch, folder=folder):
                if holds(self.catalog, self.job_id, self.attempt):  # a process that lost its job writes nothing
                    t0 = time.perf_counter()
                    size = checkpoints.upload(self.store, self.job_id, Path(folder))
                    say(
                        f"checkpoint after epoch {epoch} saved to the store "
                        f"({size / 1e6:.2f} MB in {time.perf_counter() - t0:.2f} s)"
                    )
            case events.Resumed(epoch=n):
                self.history[:] = [h for h in self.history if int(h.get("epoch", 0)) <= n]
                text = f"{self.prefix}continuing after epoch {n}"
                say(text)
                self.update(
                    epoch=n,
                    resumed_epoch=n,
                    metrics={"last": self.history[-1] if self.history else None, "history": self.history},
                    progress={"phase": text, "epoch": n, "attempt": self.attempt},
                    heartbeat=utcnow(),
                )
            case events.Restarted(reason=reason):
                text = f"{self.prefix}starting again from epoch 1: {reason}"
                say(text)
                self.history.clear()
                self.update(progress={"phase": text, "attempt": self.attempt}, metrics={"history": []})
            case events.Batch(phase=phase, batch=batch, steps=steps) if now - self._last >= PROGRESS_EVERY:
                self.update(
                    progress={"phase": phase, "batch": batch, "steps": steps, "attempt": self.attempt},
                    heartbeat=utcnow(),
                )
                self._last = now
            case events.Evaluating():
                self.update(progress={"phase": "evaluating on the test split", "attempt": self.attempt})
            case events.Calibrating(field_dirs=field):
                checks = "the not-a-leaf and unlike-training checks" if field else "the not-a-leaf check"
                self.update(progress={"phase": f"fitting {checks}", "attempt": self.attempt}, heartbeat=utcnow())


def field_check_summary(card: ModelCard) -> dict:
    """What a job's new version does with field photos, for its `progress.field_check` (in words:
    words/job_phases.py's field_check_words): refuses them (the unlike-training check: what it was fitted with, and
    the share of those photos it refuses), or answers them (no such check)."""
    if card.field is None:
        return {"refuses": False}
    field = card.field
    refused = field.get("field_refused_cv", field.get("field_refused"))
    return {"refuses": True, "sources": list(field.get("sources") or []), "refused": refused}


# The card's `other_leaves` fields a job's progress carries (not its 1,280 weights, bias or rule): what
# words/job_phases.py's other_leaves_words says.
OTHER_LEAVES_FIELDS = (
    "fitted",
    "bank",
    "bank_classes",
    "threshold",
    "own_answered_out_of_fold",
    "bank_refused_out_of_fold",
    "why_not",
)


def other_leaves_summary(card: ModelCard) -> dict | None:
    """What a job's new version does with leaves of crops and conditions it was not taught, for its
    `progress.other_leaves` (in words: words/job_phases.py's other_leaves_words): the card's `other_leaves` section
    without its weights, the bank's classes left out as the lab's own by name only; None for a card without it."""
    section = card.other_leaves
    if not section:
        return None
    summary = {k: section[k] for k in OTHER_LEAVES_FIELDS if k in section}
    if "left_out" in section:
        summary["left_out"] = sorted(section.get("left_out") or {})
    return summary


def done_progress(card: ModelCard, split: dict | None) -> dict:
    """A finished job's `progress`: its split, what its new version does with field photos and (a card with the
    section) with leaves it was not taught."""
    progress = {"phase": "done", "split": split, "field_check": field_check_summary(card)}
    if (other := other_leaves_summary(card)) is not None:
        progress["other_leaves"] = other
    return progress


def run_job(settings: Settings, job_id: str, attempt: int | None = None) -> int:
    from leafdoc.lifecycle.promotion import promotion_decision
    from leafdoc.lifecycle.serving_copy import make_serving_copy
    from leafdoc.lifecycle.training import prepare, train_model
    from leafdoc.lifecycle.workspace import Workspace
    from leafdoc.train.checkpoint import beside

    ws = Workspace.open(settings)
    catalog, store, registry = ws.catalog, ws.store, ws.registry
    out = job_folder(settings, job_id)
    saved = beside(out)  # this machine's copy of the checkpoint; the store's is the one that counts
    try:
        row = get_job(catalog, job_id)
        attempt = attempt or max(row.attempts or 0, 1)
        cfg = TrainConfig.model_validate(row.options)
        if attempt == 1:  # the model serving as training starts is its parent (it may differ from at submit)
            serving = registry.serving()
            parent = serving.version if serving else None
            update_job(catalog, job_id, attempt=attempt, parent_version=parent)
        else:  # every attempt starts from the same parent, even if another model was promoted meanwhile
            parent = row.parent_version
        init_from = registry.local_dir(parent) if (row.warm_start and parent is not None) else None
        history: list[dict] = []
        resumable = False
        if attempt > 1:
            history = list((row.metrics or {}).get("history") or [])
            resumable = checkpoints.download(store, job_id, saved)
            say(
                f"attempt {attempt} of {settings.job_max_attempts}: "
                + ("found its checkpoint in the store" if resumable else "no checkpoint was saved: from epoch 1")
            )
        if not resumable:
            shutil.rmtree(saved, ignore_errors=True)
            history = []
        reporter = _Reporter(catalog, store, job_id, attempt, settings.job_max_attempts, history)
        reporter.update(progress={"phase": f"{reporter.prefix}preparing data"}, heartbeat=utcnow())
        data = prepare(ws, row.dataset, cfg, row.dataset_version)
        reporter.split = data.counts()
        reporter.update(dataset_version=data.version, progress={"phase": f"{reporter.prefix}training"})
        shutil.rmtree(out, ignore_errors=True)
        trained = train_model(
            cfg,
            data,
            out,
            on_event=reporter,
            init_from=init_from,
            parent_version=str(parent) if parent is not None else None,
            checkpoint_dir=saved,
            originals=store.get,
        )
        card = trained.card
        copy = None
        if settings.onnx_variant not in (None, "fp32"):  # what the service serves: made now, stored with the version
            reporter.update(progress={"phase": f"making the {settings.onnx_variant} copy to serve"}, heartbeat=utcnow())
            copy = make_serving_copy(trained, settings.onnx_variant)
            say(copy.warning or f"{copy.file} made in {copy.seconds:.1f} s: {copy.validation_vs_fp32}")
        reporter.update(progress={"phase": "comparing with the serving model"}, heartbeat=utcnow())
        test = data.indices("test")
        images = [store.get(data.shas[i]) for i in test]
        labels = [data.classes[int(data.y[i])] for i in test]
        now_serving = registry.serving()
        decision = promotion_decision(
            out,
            registry.local_dir(now_serving.version) if now_serving else None,
            now_serving.version if now_serving else None,
            images,
            labels,
            metric=settings.promote_metric,
            margin=settings.promote_margin,
            max_pixels=settings.max_image_pixels,
            candidate=trained.test,  # the candidate's test split is predicted once, in train_model
        )
        decision["promoted"] = decision["promote"]
        if copy is not None:  # beside the figures the admin promotes by: what will be served, and how it agrees
            decision["serving_copy"] = copy.to_dict()

        def finish(s, version: int, served: bool) -> None:
            # Raises JobCancelled if the job was cancelled (or taken over) meanwhile: the registration rolls back.
            metrics = s.scalar(select(TrainingJobRow.metrics).where(TrainingJobRow.id == job_id)) or {}
            promotion = s.get(ModelVersionRow, version).promotion or {}
            succeed(
                s,
                job_id,
                attempt=attempt,
                candidate_version=version,
                promotion={**promotion, "promoted": served},
                metrics={**metrics, "test": card.test_metrics},
                progress=done_progress(card, reporter.split),
            )

        registry.register(
            out,
            source=f"job:{job_id}",
            status="candidate" if decision["promote"] else "rejected",
            job_id=job_id,
            promotion=decision,
            serve="auto_promote" if decision["promote"] else None,
            expected_serving=now_serving.version if now_serving else None,
            on_commit=finish,
            move=True,
        )
        return 0
    except LeafdocError as exc:
        fail(catalog, job_id, exc.message + (f" {exc.hint}" if exc.hint else ""), attempt=attempt)
        return 0
    except BaseException as exc:
        traceback.print_exc()
        fail(catalog, job_id, f"{type(exc).__name__}: {exc}", attempt=attempt)
        return 1
    finally:
        remove_job_files(settings, job_id)
        try:
            if get_job(catalog, job_id).state in TERMINAL:
                checkpoints.discard(store, job_id)
        except Exception:  # the worker discards it too once it sees the job ended
            traceback.print_exc()
        catalog.dispose()


def _stop_when_orphaned() -> None:
    """A training process whose worker died (killed with it gone, or its pod's main process gone) stops at
    once: it would otherwise go on training with nobody renewing the lease, beside the next attempt."""
    parent = os.getppid()

    def stop() -> None:
        say(f"its worker (process {parent}) is gone: stopping; the job's next attempt continues it")
        os._exit(3)

    on_parent_exit(stop, parent, every=ORPHAN_CHECK_SECONDS)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (1, 2) or (len(argv) == 2 and not argv[1].isdigit()):
        print(
            "usage: python -m leafdoc.service.training JOB_ID [ATTEMPT]  (settings as JSON on stdin)", file=sys.stderr
        )
        return 2
    settings = Settings.model_validate_json(sys.stdin.read())
    _stop_when_orphaned()
    return run_job(settings, argv[0], int(argv[1]) if len(argv) == 2 else None)


if __name__ == "__main__":
    sys.exit(main())
