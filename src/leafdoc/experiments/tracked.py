"""One run of a recipe: its data prepared through lifecycle.training (cached, optionally thinned on purpose:
a share of the training images, a class imbalance), trained and scored by lifecycle.training.train_model,
tracked as one MLflow run."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from leafdoc.core.atomic import atomic_write_json
from leafdoc.evaluate.score import score_files
from leafdoc.experiments.heldout import held_out_figures
from leafdoc.experiments.recipe import RunSpec
from leafdoc.experiments.records import RUN_RECORD, Experiment, RunResult, score_test, test_records
from leafdoc.experiments.stream import InRun, Message, Progress
from leafdoc.inference.predictor import Predictor
from leafdoc.lifecycle.training import TrainedModel, prepare, train_model
from leafdoc.modelfolder import CARD_FILE, ModelCard
from leafdoc.train import events
from leafdoc.train.config import TrainConfig


class Pruned(Exception):
    """Raised from an epoch callback to stop an Optuna trial that is doing worse than the others."""

    def __init__(self, epoch: int, value: float):
        super().__init__(f"pruned at epoch {epoch}")
        self.epoch, self.value = epoch, value


def progress(exp: Experiment, what: str) -> Callable[[int, int], None]:
    return lambda done, total: exp.emit(Progress(what, done, total))


def cache_label(cfg: TrainConfig) -> str:
    """The preprocessing a run's image cache was built with, as experiment records name it."""
    return cfg.preparation.label()


def prepare_run_data(exp: Experiment, cfg: TrainConfig, with_extra: bool = False):
    """The run's data. data.extra's training half is kept out of the split (so the main folder's split is the
    same for every run) and trained on only by `with_extra` runs; the others mark it 'unused'."""
    key = cache_label(cfg)
    cache_dir = exp.settings.cache_dir
    before = set(cache_dir.iterdir()) if cache_dir.is_dir() else set()
    t = time.perf_counter()
    extra = exp.selection.extra_shas()
    data = prepare(
        exp.workspace, exp.selection.dataset, cfg, progress=progress(exp, f"caching {key}"), train_only=extra
    )
    if set(cache_dir.iterdir()) - before:  # built now, not reused: its time is the one-off decoding cost
        exp.cache_seconds[key] = time.perf_counter() - t
    if extra and not with_extra:
        split = _split_copy(data)
        split[np.isin(np.asarray(data.shas), list(extra))] = "unused"
        data = dataclasses.replace(data, split=split)
    return data


def _split_copy(data) -> np.ndarray:
    """A copy of the split wide enough for 'unused' (np.array(["train", "val", "test"]) is '<U5', and would
    keep 'unuse': unseen while only `== "train"` is asked, wrong the day 'unused' is)."""
    return data.split.astype("<U8")


def thinned(data, run: RunSpec | None, seed: int):
    """The run's data with its training split thinned as the run says (`train_share`, then `train_imbalance`);
    validation and test stay as they were, so every run of a recipe is scored on the same images."""
    if run is not None and run.train_share is not None and run.train_share < 1:
        data = share(data, run.train_share, seed)
    if run is not None and run.train_imbalance:
        data = imbalance(data, run.train_imbalance, seed)
    return data


def share(data, fraction: float, seed: int):
    """A copy of TrainData whose training split keeps `fraction` of each class's images (at least one; the
    rest marked 'unused'). Nested: each class's images are taken in one seeded order, whatever the fraction,
    so a smaller share's images are among a larger one's and a learning curve only ever adds photos."""
    split = _split_copy(data)
    rng = np.random.default_rng(seed)
    for k in range(len(data.classes)):
        idx = np.nonzero((split == "train") & (data.y == k))[0]
        split[rng.permutation(idx)[max(1, round(len(idx) * fraction)) :]] = "unused"
    return dataclasses.replace(data, split=split)


def imbalance(data, ratio: float, seed: int):
    """A copy of TrainData whose training split keeps class k of n with ratio^(-k/(n-1)) of its images
    (the rest marked 'unused'); validation and test stay as they were, so scores stay comparable."""
    split = _split_copy(data)
    rng = np.random.default_rng(seed)
    n = len(data.classes)
    for k in range(n):
        idx = np.nonzero((split == "train") & (data.y == k))[0]
        keep = max(1, round(len(idx) * ratio ** (-k / max(n - 1, 1))))
        split[rng.permutation(idx)[keep:]] = "unused"
    return dataclasses.replace(data, split=split)


def external_metrics(model_dir: Path, files: list[tuple[Path, str]]) -> dict:
    return score_files(Predictor(model_dir), files, decide=False).scores.summary()


def params(exp: Experiment, cfg: TrainConfig, data, **extra) -> dict:
    return {
        **cfg.model_dump(),
        "recipe": exp.recipe.name,
        "mode": exp.mode,
        "dataset": data.dataset,
        "dataset_version": data.version,
        "n_classes": len(data.classes),
        **{k: v for k, v in extra.items() if v is not None},
    }


def final_metrics(card: ModelCard, external: dict | None, wall: float) -> dict[str, float]:
    def figures(split: dict) -> dict:  # MLflow's metrics are numbers: not the card's per-class table
        return {k: v for k, v in split.items() if k != "n" and isinstance(v, int | float)}

    out = {f"test_{k}": v for k, v in figures(card.metrics.test).items()}
    # Not `val_accuracy`: that name holds the per-epoch curve (Keras, training graph), this is the
    # restored best model scored through ONNX Runtime.
    out.update({f"final_val_{k}": v for k, v in figures(card.metrics.val).items()})
    if external:
        out.update({f"test_folder_{k}": v for k, v in external.items() if k != "n"})
    out.update(
        wall_seconds=wall,
        train_seconds=card.train_seconds,
        best_epoch=card.best_epoch,
        epochs_run=len(card.history),
    )
    return out


def train_tracked(
    exp: Experiment,
    name: str,
    cfg: TrainConfig,
    data,
    model_dir: Path,
    *,
    kind: str,
    init_from: Path | None,
    params: dict,
    parent_run: str | None = None,
    on_epoch: Callable[[events.Epoch], None] | None = None,
    checkpoint_dir: Path | None = None,
) -> tuple[TrainedModel, dict | None, float, str]:
    """Train one model folder, tracked as one MLflow run: (the trained model, external metrics, wall seconds,
    run id).
    `on_epoch` sees every epoch; raising Pruned there stops the run (MLflow status KILLED)."""
    tags = {
        "leafdoc.recipe": exp.recipe.name,
        "leafdoc.mode": exp.mode,
        "leafdoc.kind": kind,
        "leafdoc.model_dir": str(model_dir.resolve()),
    }
    run_id = exp.tracker.start(name, params, tags, parent=parent_run)

    def on_event(e: events.TrainEvent) -> None:
        match e:
            case events.Resumed(epoch=epoch):
                exp.emit(Message(f"{name}: continuing from its checkpoint after epoch {epoch}"))
            case events.Restarted(reason=reason):
                exp.emit(Message(f"{name}: {reason}: training from the first epoch"))
            case events.Epoch():
                exp.tracker.epoch(run_id, e.to_dict())
                exp.emit(InRun(name, e))
                if on_epoch:
                    on_epoch(e)
            case _:
                exp.emit(InRun(name, e))

    t0 = time.perf_counter()
    try:
        trained = train_model(
            cfg, data, model_dir, on_event=on_event, init_from=init_from, checkpoint_dir=checkpoint_dir
        )
        card = trained.card
        external = None
        sel = exp.selection
        if sel.test_files:
            exp.emit(InRun(name, events.Evaluating(len(sel.test_files))))
            if sel.extra_root is not None:
                external = held_out_figures(
                    model_dir,
                    sel.test_files,
                    lab_root=sel.root,
                    extra_root=sel.extra_root,
                    nonleaf=sel.extra_nonleaf,
                )
            else:
                external = external_metrics(model_dir, sel.test_files)
        # with the training done before a checkpoint this run continued from (earlier invocations)
        wall = time.perf_counter() - t0 + float(card.train_seconds_before_resume or 0.0)
    except Pruned as stop:
        exp.tracker.finish(run_id, {}, {"leafdoc.pruned_at_epoch": str(stop.epoch)}, status="KILLED")
        raise
    except BaseException as exc:
        exp.tracker.fail(run_id, f"{type(exc).__name__}: {exc}")
        raise
    exp.tracker.finish(run_id, final_metrics(card, external, wall), artifacts=[model_dir / CARD_FILE])
    return trained, external, wall, run_id


def complete(exp: Experiment, result: RunResult, record: dict, cfg: TrainConfig, run: RunSpec | None) -> None:
    """Add to a run reused from an earlier invocation what leafdoc records now but did not then (each
    test image's outcome; per-class figures of a train_imbalance run), without training it again."""
    ratio = run.train_imbalance if run is not None else None
    if result.outcomes is not None and (result.per_class is not None or not ratio):
        return
    exp.emit(Message(f"{result.name}: scoring its test images again for the figures it lacks"))
    data = thinned(prepare_run_data(exp, cfg, with_extra=bool(run and run.with_extra)), run, cfg.seed)
    result.outcomes, by_class = test_records(data, score_test(result.model_dir, data), bool(ratio))
    result.per_class = result.per_class or by_class
    kept = {k: v for k, v in record.items() if k != "card"}  # reusable added the card
    atomic_write_json(
        result.model_dir / RUN_RECORD, {**kept, "test_outcomes": result.outcomes, "per_class": result.per_class}
    )
