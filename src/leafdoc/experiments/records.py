"""What an experiment keeps of its runs: the run's result (RunResult) and the experiment's state
(Experiment), run.json beside each finished run (what `--resume` reuses, and when it may), each test image's
outcome and per-class figures, and results.json + report.md rewritten after every run (publish)."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from leafdoc.core.atomic import atomic_write_json
from leafdoc.core.errors import LeafdocError
from leafdoc.core.settings import Settings
from leafdoc.evaluate.score import Scores, score
from leafdoc.experiments.data import Selection
from leafdoc.experiments.recipe import Recipe, RunSpec
from leafdoc.experiments.stream import ExperimentEvent, Message, OnExperimentEvent
from leafdoc.experiments.tracking import Tracker
from leafdoc.inference.predictor import Predictor
from leafdoc.lifecycle.workspace import Workspace
from leafdoc.modelfolder import ModelCard, copy_model_dir, read_card
from leafdoc.train.config import TrainConfig

RUN_RECORD = "run.json"  # in a run's model folder once the run has finished
# Settings that make no difference to a from-scratch run (one phase, nothing frozen).
PRETRAINED_ONLY = ("fine_tune_epochs", "fine_tune_fraction")
NOT_SETTINGS = ("abstain_target_coverage",)  # no effect on the table's figures


@dataclass
class RunResult:
    name: str
    kind: str  # "run" or "tuned"
    config: TrainConfig
    differs: list[str]
    model_dir: Path
    card: ModelCard
    wall_seconds: float
    mlflow_run_id: str
    init_from: str | None = None
    note: str = ""
    external: dict | None = None  # metrics on the recipe's explicit test folder
    offset: int = 0  # epochs of the runs it continues from, for the learning curves
    per_class: dict | None = None  # train_imbalance runs: each class's training images and test recall/F1
    outcomes: dict | None = None  # test_outcomes(): each test image right or wrong, for paired comparisons
    with_extra: bool = False  # trained on data.extra's training half too
    train_share: float | None = None  # trained on this share of each class's training photos (a learning curve)

    @property
    def history(self) -> list[dict]:
        return self.card.history

    @property
    def test(self) -> dict:
        return self.card.metrics.test

    @property
    def val(self) -> dict:
        return self.card.metrics.val

    @property
    def seconds_per_epoch(self) -> float | None:
        """Median seconds of the steady epochs: the first epoch of each phase also traces the graph
        (tens of seconds on a small CPU), so it is left out where the phase has more than one."""
        by_phase: dict[str, list[float]] = {}
        for h in self.history:
            if "seconds" in h:
                by_phase.setdefault(h.get("phase", ""), []).append(h["seconds"])
        secs = [s for phase in by_phase.values() for s in (phase[1:] if len(phase) > 1 else phase)]
        return statistics.median(secs) if secs else None

    def summary(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "note": self.note,
            "init_from": self.init_from,
            "differs": self.differs,
            "settings": self.config.model_dump(),
            "model_dir": str(self.model_dir),
            "mlflow_run_id": self.mlflow_run_id,
            "test": self.test,
            "val": self.val,
            "external_test": self.external,
            "train_images": self.card.dataset.split["train"],  # fewer with train_share or train_imbalance
            "best_epoch": self.card.best_epoch,
            "epochs": len(self.history),
            "train_seconds": self.card.train_seconds,
            "seconds_per_epoch": self.seconds_per_epoch,
            "wall_seconds": round(self.wall_seconds, 1),
            "warm_start": self.card.warm_start,
            "history": self.history,
            "offset": self.offset,
            "per_class": self.per_class,
            "test_outcomes": self.outcomes,
            "with_extra": self.with_extra,
            "train_share": self.train_share,
        }


@dataclass
class Experiment:
    """Everything one `leafdoc experiment` invocation needs while it runs."""

    recipe: Recipe
    out: Path
    quick: bool
    weights: str
    settings: Settings
    selection: Selection
    tracker: Tracker
    on_event: OnExperimentEvent | None
    workspace: Workspace | None = None
    resume: bool = False
    results: dict[str, RunResult] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)  # runs taken from an earlier invocation (--resume)
    cache_seconds: dict[str, float] = field(default_factory=dict)
    progress: dict[str, str] = field(default_factory=dict)  # how far an unfinished run or search got
    started: float = field(default_factory=time.perf_counter)

    def emit(self, event: ExperimentEvent) -> None:
        if self.on_event:
            self.on_event(event)

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "full"

    def config(self, run: RunSpec | None) -> TrainConfig:
        return self.recipe.config(run, quick=self.quick, weights=self.weights)


def differs(cfg: TrainConfig, base: TrainConfig) -> list[str]:
    """`key=value` for every setting where a run departs from the recipe's base (same mode)."""
    a, b = cfg.model_dump(), base.model_dump()
    out = []
    for key, value in a.items():
        if key in NOT_SETTINGS or value == b[key]:
            continue
        if key in PRETRAINED_ONLY and not cfg.pretrained:
            continue
        out.append(f"{key}={fmt(value)}")
    return out


def settings_json(cfg: TrainConfig) -> dict:
    return cfg.model_dump(mode="json")


def parent_kept(exp: Experiment, parent: str | None) -> bool:
    """Whether what a run continues from (`init_from`) was reused, not trained again: a parent trained
    again makes the run's record, checkpoint and search stale."""
    return not parent or parent in exp.reused


def read_record(exp: Experiment, what: str, path: Path) -> dict | None:
    """A record an earlier invocation wrote, if `--resume` asks for it and it can be read."""
    if not exp.resume or not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        exp.emit(Message(f"{what}: running again, its earlier record is unreadable ({exc})"))
        return None


def same_settings(saved: dict, cfg: TrainConfig) -> bool:
    """The saved settings are cfg's; a setting added to TrainConfig since counts as same at its default."""
    now, defaults = settings_json(cfg), settings_json(TrainConfig())
    return set(saved) <= set(now) and all(saved.get(k, defaults.get(k)) == v for k, v in now.items())


def save_run(exp: Experiment, result: RunResult, basis: TrainConfig, **extra) -> None:
    """Record a finished run beside its model: what `--resume` needs to reuse it instead of training again."""
    record = {**result.summary(), "basis": settings_json(basis), "data": exp.selection.digest(), **extra}
    atomic_write_json(result.model_dir / RUN_RECORD, record)


def reusable(
    exp: Experiment, name: str, basis: TrainConfig, parent: str | None, train: bool = True, **extra
) -> dict | None:
    """The saved record of a finished run, if `--resume` may reuse it: the run finished (run.json and
    card.json are there), it was trained with the same settings (`basis`, plus `extra`), and the run it
    continues was reused too (a parent trained again makes its children stale). `train`: whether the run
    is trained when it cannot be reused (False: left out by --only)."""
    folder = exp.out / "runs" / name
    if not exp.resume or not (folder / RUN_RECORD).is_file():
        return None
    again = "training again" if train else "left out by --only, and its earlier run is out of date"
    if not parent_kept(exp, parent):
        exp.emit(Message(f"{name}: {again}, because {parent} was trained again"))
        return None
    record = read_record(exp, name, folder / RUN_RECORD)
    try:
        card = read_card(folder)
    except LeafdocError as exc:
        exp.emit(Message(f"{name}: running again, its earlier card is unreadable ({exc.message})"))
        return None
    if record is None:
        return None
    if record.get("data") != exp.selection.digest():
        exp.emit(Message(f"{name}: {again}, the recipe's images changed"))
        return None
    if not same_settings(record.get("basis") or {}, basis) or any(record.get(k) != v for k, v in extra.items()):
        exp.emit(Message(f"{name}: {again}, the recipe's settings for it changed"))
        return None
    record["card"] = card
    exp.reused.append(name)
    accuracy = card.test_metrics["accuracy"]
    exp.emit(Message(f"{name}: reusing the run finished earlier (test accuracy {accuracy:.1%})"))
    return record


def from_record(record: dict, cfg: TrainConfig, model_dir: Path) -> RunResult:
    return RunResult(
        name=record["name"],
        kind=record["kind"],
        config=cfg,
        differs=record["differs"],
        model_dir=model_dir,
        card=record["card"],
        wall_seconds=record["wall_seconds"],
        mlflow_run_id=record["mlflow_run_id"],
        init_from=record["init_from"],
        note=record["note"],
        external=record["external_test"],
        offset=record["offset"],
        per_class=record.get("per_class"),
        outcomes=record.get("test_outcomes"),
        with_extra=bool(record.get("with_extra")),
        train_share=record.get("train_share"),
    )


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "[" + ",".join(map(str, value)) + "]"
    return str(value)


def per_class(data, test: Scores) -> dict:
    """Each class's training images and its recall and F1 on the test split: what class weights are
    for, which accuracy over all classes hides. `test`: the test split's Scores."""
    scores = test.metrics["per_class"]
    train = np.bincount(data.y[data.indices("train")], minlength=len(data.classes))
    return {
        c: {
            "train": int(train[i]),
            "test": scores[c]["support"],
            "recall": round(scores[c]["recall"], 4),
            "f1": round(scores[c]["f1"], 4),
        }
        for i, c in enumerate(data.classes)
    }


def test_records(data, test: Scores, by_class: bool) -> tuple[dict, dict | None]:
    """Each test image's outcome and (for train_imbalance runs) per_class, from the test split's one pass."""
    shas = [data.shas[i] for i in data.indices("test")]
    return test.outcomes(shas), per_class(data, test) if by_class else None


def score_test(model_dir: Path, data) -> Scores:
    """The test split scored afresh: only for a model trained by an earlier invocation (--resume)."""
    te = data.indices("test")
    return score(Predictor(model_dir), data.images[te], data.y[te], data.classes)


def pending_names(exp: Experiment, pipeline: dict | None) -> list[str]:
    names = [r.name for r in exp.recipe.runs]
    if exp.recipe.tune:
        names.append(exp.recipe.tune.name)
    pending = [n for n in names if n not in exp.results]
    if exp.recipe.pipeline and pipeline is None:
        pending.append("pipeline speed")
    return pending


def how_far(exp: Experiment, pending: list[str]) -> dict[str, str]:
    """For the report of an unfinished experiment: how far each pending run's checkpoint got, and how
    many trials the search has finished."""
    from leafdoc.train.checkpoint import STATE, beside

    found = {}
    for run in exp.recipe.runs:
        if run.name not in pending:
            continue
        try:
            state = json.loads((beside(exp.out / "runs" / run.name) / STATE).read_text())
            cfg = exp.config(run)
            total = cfg.epochs + (cfg.fine_tune_epochs if cfg.pretrained else 0)
            found[run.name] = f"checkpoint after epoch {int(state['epoch'])} of {total}"
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found | {k: v for k, v in exp.progress.items() if k in pending}


def shown_path(path: Path) -> str:
    """A path as a report shows it: relative to the working directory when it is under it (a report is shared, and
    `recipes/x.yaml` says more than one machine's absolute path), else as given."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def publish(exp: Experiment, tuning: dict | None, pipeline: dict | None) -> dict:
    """Write results.json, report.md and the curves for the runs finished so far; keep the best model
    once every run is done."""
    from leafdoc.experiments.report import machine, write_report

    recipe, out = exp.recipe, exp.out
    pending = pending_names(exp, pipeline)
    best = max(exp.results.values(), key=lambda r: r.val["accuracy"])  # never chosen on test
    if recipe.keep_best and not pending:
        copy_model_dir(best.model_dir, out / "best")
    # The split as every run has it, but for the training images a train_imbalance run leaves out (and the
    # training-only extra photos a with_extra run adds).
    plain = [r for r in exp.results.values() if not r.with_extra] or list(exp.results.values())
    first = max(plain, key=lambda r: r.card.dataset.split["train"])
    results = {
        "recipe": recipe.name,
        "title": recipe.title,
        "source": recipe.source,
        "reported": recipe.reported,
        "recipe_file": shown_path(recipe.path) if recipe.path else None,
        "mode": exp.mode,
        "weights": exp.weights,
        "machine": machine(),
        "data": {
            "root": str(exp.selection.root),
            "dataset": first.card.dataset.name,
            "version": first.card.dataset.version,
            "classes": exp.selection.classes,
            "split": first.card.dataset.split,
            "test_folder": str(recipe.data.test_path)
            if recipe.data.test_path
            else (f"{recipe.data.extra.path} (held-out half: sha256 8-f)" if recipe.data.extra else None),
            "extra_training_images": len(exp.selection.extra_files),
            "test_folder_images": len(exp.selection.test_files),
        },
        "base": exp.config(None).model_dump(),
        "reference": recipe.reference_run,
        "runs": [r.summary() for r in exp.results.values()],
        "tuning": tuning,
        "pipeline": pipeline,
        "best": {
            "run": best.name,
            "val_accuracy": best.val["accuracy"],
            "kept": str(out / "best") if recipe.keep_best and not pending else None,
        },
        "pending": pending,
        "progress": how_far(exp, pending),
        "reused": list(exp.reused),
        "tracking_uri": exp.tracker.uri,
        "mlflow_experiment": f"{recipe.name} ({exp.mode})",
        "seconds": round(time.perf_counter() - exp.started, 1),
        "written_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
    }
    results["report"] = str(write_report(results, out))
    atomic_write_json(out / "results.json", results)
    return results
