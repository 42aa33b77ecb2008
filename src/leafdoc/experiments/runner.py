"""Run a recipe: ingest its data into the experiment's own data home, train every run with the library
on one split and seed (so they are comparable), optionally search settings with Optuna and time the
input pipeline, track everything in MLflow, and write report.md with the comparison table and the
learning curves.

Layout of OUT:
    home/               the experiment's data home: catalog, store, cache, mlruns/ (MLflow, SQLite)
    data/               the subset as a path,label CSV (and class folders for the pipeline benchmark)
    runs/NAME/          one model folder per run (model.keras, model.onnx, labels.json, card.json)
    runs/NAME/run.json  the run's row, written when it finishes: `--resume` reuses runs that have one
    runs/.NAME.checkpoint/  a run's state after its last epoch while it trains: `--resume` continues it
    tune/               the search while it runs: Optuna's journal (trials finished, for `--resume`),
                        search.json (what it searches) and the best trial so far; ends in runs/<tune.name>
    best/               a copy of the best model by validation accuracy (recipes with keep_best)
    pipeline.json       the input-pipeline timing, for `--resume`
    report.md, learning_curves.png, results.json   rewritten after every run (marked incomplete until the end)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from leafdoc.errors import ConfigError
from leafdoc.experiments.data import Selection, link_folder, select, write_csv
from leafdoc.experiments.recipe import Recipe, RunSpec
from leafdoc.experiments.tracking import Tracker, default_tracking_uri
from leafdoc.fsutil import atomic_write_json
from leafdoc.settings import Settings
from leafdoc.train.config import TrainConfig

Event = Callable[[dict], None]
MARKER = ".leafdoc-experiment"
RUN_RECORD = "run.json"  # in a run's model folder once the run has finished
PIPELINE_RECORD = "pipeline.json"
SEARCH_RECORD = "search.json"  # in tune/: the settings the journal's trials were run with
# Settings that make no difference to a from-scratch run (one phase, nothing frozen).
PRETRAINED_ONLY = ("fine_tune_epochs", "fine_tune_fraction")
NOT_SETTINGS = ("abstain_target_coverage",)  # no effect on the table's figures


class Pruned(Exception):
    """Raised from an epoch callback to stop an Optuna trial that is doing worse than the others."""

    def __init__(self, epoch: int, value: float):
        super().__init__(f"pruned at epoch {epoch}")
        self.epoch, self.value = epoch, value


@dataclass
class RunResult:
    name: str
    kind: str  # "run" or "tuned"
    config: TrainConfig
    differs: list[str]
    model_dir: Path
    card: dict
    wall_seconds: float
    mlflow_run_id: str
    init_from: str | None = None
    note: str = ""
    external: dict | None = None  # metrics on the recipe's explicit test folder
    offset: int = 0  # epochs of the runs it continues from, for the learning curves
    per_class: dict | None = None  # train_imbalance runs: each class's training images and test recall/F1
    outcomes: dict | None = None  # test_outcomes(): each test image right or wrong, for paired comparisons

    @property
    def history(self) -> list[dict]:
        return self.card.get("history", [])

    @property
    def test(self) -> dict:
        return self.card["metrics"]["test"]

    @property
    def val(self) -> dict:
        return self.card["metrics"]["val"]

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
            "train_images": self.card["dataset"]["split"]["train"],  # fewer than the split's with train_imbalance
            "best_epoch": self.card.get("best_epoch"),
            "epochs": len(self.history),
            "train_seconds": self.card.get("train_seconds"),
            "seconds_per_epoch": self.seconds_per_epoch,
            "wall_seconds": round(self.wall_seconds, 1),
            "warm_start": self.card.get("warm_start"),
            "history": self.history,
            "offset": self.offset,
            "per_class": self.per_class,
            "test_outcomes": self.outcomes,
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
    on_event: Event | None
    catalog: object = None
    store: object = None
    resume: bool = False
    results: dict[str, RunResult] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)  # runs taken from an earlier invocation (--resume)
    cache_seconds: dict[str, float] = field(default_factory=dict)
    progress: dict[str, str] = field(default_factory=dict)  # how far an unfinished run or search got
    started: float = field(default_factory=time.perf_counter)

    def emit(self, event: dict) -> None:
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
        out.append(f"{key}={_fmt(value)}")
    return out


def _settings_json(cfg: TrainConfig) -> dict:
    return cfg.model_dump(mode="json")


def _parent_kept(exp: Experiment, parent: str | None) -> bool:
    """Whether what a run continues from (`init_from`) was reused, not trained again: a parent trained
    again makes the run's record, checkpoint and search stale."""
    return not parent or parent in exp.reused


def _read_record(exp: Experiment, what: str, path: Path) -> dict | None:
    """A record an earlier invocation wrote, if `--resume` asks for it and it can be read."""
    if not exp.resume or not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        exp.emit({"event": "message", "text": f"{what}: running again, its earlier record is unreadable ({exc})"})
        return None


def _same_settings(saved: dict, cfg: TrainConfig) -> bool:
    """The saved settings are cfg's; a setting added to TrainConfig since counts as same at its default."""
    now, defaults = _settings_json(cfg), _settings_json(TrainConfig())
    return set(saved) <= set(now) and all(saved.get(k, defaults.get(k)) == v for k, v in now.items())


def _save_run(exp: Experiment, result: RunResult, basis: TrainConfig, **extra) -> None:
    """Record a finished run beside its model: what `--resume` needs to reuse it instead of training again."""
    record = {**result.summary(), "basis": _settings_json(basis), "data": exp.selection.digest(), **extra}
    atomic_write_json(result.model_dir / RUN_RECORD, record)


def _reusable(
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
    if not _parent_kept(exp, parent):
        exp.emit({"event": "message", "text": f"{name}: {again}, because {parent} was trained again"})
        return None
    record, card = _read_record(exp, name, folder / RUN_RECORD), _read_record(exp, name, folder / "card.json")
    if record is None or card is None:
        return None
    if record.get("data") != exp.selection.digest():
        exp.emit({"event": "message", "text": f"{name}: {again}, the recipe's images changed"})
        return None
    if not _same_settings(record.get("basis") or {}, basis) or any(record.get(k) != v for k, v in extra.items()):
        exp.emit({"event": "message", "text": f"{name}: {again}, the recipe's settings for it changed"})
        return None
    record["card"] = card
    exp.reused.append(name)
    accuracy = card["metrics"]["test"]["accuracy"]
    exp.emit({"event": "message", "text": f"{name}: reusing the run finished earlier (test accuracy {accuracy:.1%})"})
    return record


def _from_record(record: dict, cfg: TrainConfig, model_dir: Path) -> RunResult:
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
    )


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "[" + ",".join(map(str, value)) + "]"
    return str(value)


def imbalance(data, ratio: float, seed: int):
    """A copy of TrainData whose training split keeps class k of n with ratio^(-k/(n-1)) of its images
    (the rest marked 'unused'); validation and test stay as they were, so scores stay comparable."""
    split = data.split.copy()
    rng = np.random.default_rng(seed)
    n = len(data.classes)
    for k in range(n):
        idx = np.nonzero((split == "train") & (data.y == k))[0]
        keep = max(1, round(len(idx) * ratio ** (-k / max(n - 1, 1))))
        split[rng.permutation(idx)[keep:]] = "unused"
    return dataclasses.replace(data, split=split)


def _test_probs(model_dir: Path, data) -> tuple[np.ndarray, np.ndarray]:
    """The test split's indices and the model's probabilities for them (ONNX Runtime, the serving path)."""
    from leafdoc.inference.predictor import Predictor

    te = data.indices("test")
    return te, Predictor(model_dir).predict_arrays(data.images[te])["probabilities"]


def test_outcomes(data, found: tuple[np.ndarray, np.ndarray]) -> dict:
    """Which test images the model got right ('1') or wrong ('0'), ordered by the images' content hashes,
    and an id of that set of images. Two runs with the same id were scored on the same images, so the
    report can pair them (McNemar's test): accuracy alone cannot say whether they differ beyond chance.
    `found`: _test_probs()."""
    te, probs = found
    right = probs.argmax(axis=1) == data.y[te]
    shas = [data.shas[i] for i in te]
    order = sorted(range(len(te)), key=shas.__getitem__)
    return {
        "images": hashlib.sha256("\n".join(sorted(shas)).encode()).hexdigest()[:16],
        "correct": "".join("1" if right[i] else "0" for i in order),
    }


def per_class(data, found: tuple[np.ndarray, np.ndarray]) -> dict:
    """Each class's training images and its recall and F1 on the test split: what class weights are
    for, which accuracy over all classes hides. `found`: _test_probs()."""
    from leafdoc.evaluate.metrics import compute_metrics

    te, probs = found
    scores = compute_metrics(data.y[te], probs, data.classes)["per_class"]
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


def _test_records(model_dir: Path, data, by_class: bool) -> tuple[dict, dict | None]:
    """test_outcomes and (for train_imbalance runs) per_class, from one pass over the test split."""
    found = _test_probs(model_dir, data)
    return test_outcomes(data, found), per_class(data, found) if by_class else None


def _complete(exp: Experiment, result: RunResult, record: dict, cfg: TrainConfig, ratio: float | None) -> None:
    """Add to a run reused from an earlier invocation what leafdoc records now but did not then (each
    test image's outcome; per-class figures of a train_imbalance run), without training it again."""
    if result.outcomes is not None and (result.per_class is not None or not ratio):
        return
    exp.emit({"event": "message", "text": f"{result.name}: scoring its test images again for the figures it lacks"})
    data = _prepare(exp, cfg)
    if ratio:
        data = imbalance(data, ratio, cfg.seed)
    result.outcomes, by_class = _test_records(result.model_dir, data, bool(ratio))
    result.per_class = result.per_class or by_class
    kept = {k: v for k, v in record.items() if k != "card"}  # _reusable added the card
    atomic_write_json(
        result.model_dir / RUN_RECORD, {**kept, "test_outcomes": result.outcomes, "per_class": result.per_class}
    )


def _progress(exp: Experiment, what: str) -> Callable[[int, int], None]:
    return lambda done, total: exp.emit({"event": "progress", "what": what, "done": done, "total": total})


def _prepare(exp: Experiment, cfg: TrainConfig):
    from leafdoc.train.trainer import prepare_data

    key = f"{cfg.image_size}px/{cfg.morphology}{cfg.morph_kernel}"
    cache_dir = exp.settings.cache_dir
    before = set(cache_dir.iterdir()) if cache_dir.is_dir() else set()
    t = time.perf_counter()
    data = prepare_data(
        exp.catalog,
        exp.store,
        cache_dir,
        exp.selection.dataset,
        cfg,
        progress=_progress(exp, f"caching {key}"),
    )
    if set(cache_dir.iterdir()) - before:  # built now, not reused: its time is the one-off decoding cost
        exp.cache_seconds[key] = time.perf_counter() - t
    return data


def _ingest(exp: Experiment) -> None:
    from leafdoc.data.catalog import Catalog
    from leafdoc.data.ingest import ingest, latest_version
    from leafdoc.data.store import open_store

    s = exp.settings
    exp.catalog, exp.store = Catalog(s.catalog_url), open_store(s.store_location, s.s3_endpoint_url)
    sel = exp.selection
    # The name carries a digest of the selection, so an existing dataset is exactly this selection.
    if latest_version(exp.catalog, sel.dataset) is not None:
        exp.emit({"event": "message", "text": f"reusing dataset {sel.dataset} from {s.home}"})
        return
    csv_path = write_csv(sel, exp.out / "data" / f"{sel.dataset}.csv")
    result = ingest(
        csv_path,
        exp.catalog,
        exp.store,
        sel.dataset,
        progress=_progress(exp, "ingesting"),
    )
    if result.version is None:
        raise ConfigError(f"{exp.recipe.where()}: none of the {len(sel.files)} selected images could be ingested.")
    exp.emit(
        {
            "event": "message",
            "text": f"ingested {result.n_images} images in {result.n_classes} classes as {sel.dataset} "
            f"({len(result.rejected)} rejected, {len(result.duplicates)} duplicates)",
        }
    )


def _external_metrics(model_dir: Path, files: list[tuple[Path, str]]) -> dict:
    from leafdoc.evaluate.evaluate import predict_files
    from leafdoc.evaluate.metrics import compute_metrics
    from leafdoc.inference.predictor import Predictor

    predictor = Predictor(model_dir)
    kept, probs, _, _ = predict_files(predictor, files)
    index = {label: i for i, label in enumerate(predictor.labels)}
    y = np.array([index[label] for _, label in kept], dtype=np.int64)
    return compute_metrics(y, probs, predictor.labels, summary_only=True)


def _params(exp: Experiment, cfg: TrainConfig, data, **extra) -> dict:
    return {
        **cfg.model_dump(),
        "recipe": exp.recipe.name,
        "mode": exp.mode,
        "dataset": data.dataset,
        "dataset_version": data.version,
        "n_classes": len(data.classes),
        **{k: v for k, v in extra.items() if v is not None},
    }


def _final_metrics(card: dict, external: dict | None, wall: float) -> dict[str, float]:
    out = {f"test_{k}": v for k, v in card["metrics"]["test"].items() if k != "n"}
    # Not `val_accuracy`: that name holds the per-epoch curve (Keras, training graph), this is the
    # restored best model scored through ONNX Runtime.
    out.update({f"final_val_{k}": v for k, v in card["metrics"]["val"].items() if k != "n"})
    if external:
        out.update({f"test_folder_{k}": v for k, v in external.items() if k != "n"})
    out.update(
        wall_seconds=wall,
        train_seconds=card.get("train_seconds"),
        best_epoch=card.get("best_epoch"),
        epochs_run=len(card.get("history", [])),
    )
    return out


def _train_tracked(
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
    on_epoch: Event | None = None,
    checkpoint_dir: Path | None = None,
) -> tuple[dict, dict | None, float, str]:
    """Train one model folder, tracked as one MLflow run: (card, external metrics, wall seconds, run id).
    `on_epoch` sees every epoch's record; raising Pruned there stops the run (MLflow status KILLED)."""
    from leafdoc.train.trainer import train

    tags = {
        "leafdoc.recipe": exp.recipe.name,
        "leafdoc.mode": exp.mode,
        "leafdoc.kind": kind,
        "leafdoc.model_dir": str(model_dir.resolve()),
    }
    run_id = exp.tracker.start(name, params, tags, parent=parent_run)

    def on_event(e: dict) -> None:
        if e.get("event") == "epoch":
            exp.tracker.epoch(run_id, e)
        if e.get("event") == "resume":
            e = {"event": "message", "text": f"{name}: continuing from its checkpoint after epoch {e['epoch']}"}
        elif e.get("event") == "restart":
            e = {"event": "message", "text": f"{name}: {e['reason']}: training from the first epoch"}
        exp.emit({**e, "run": name})
        if on_epoch and e.get("event") == "epoch":
            on_epoch(e)

    t0 = time.perf_counter()
    try:
        card = train(cfg, data, model_dir, on_event=on_event, init_from=init_from, checkpoint_dir=checkpoint_dir)
        external = None
        if exp.selection.test_files:
            exp.emit({"event": "evaluate", "run": name, "n": len(exp.selection.test_files)})
            external = _external_metrics(model_dir, exp.selection.test_files)
        # with the training done before a checkpoint this run continued from (earlier invocations)
        wall = time.perf_counter() - t0 + float(card.get("train_seconds_before_resume") or 0.0)
    except Pruned as stop:
        exp.tracker.finish(run_id, {}, {"leafdoc.pruned_at_epoch": str(stop.epoch)}, status="KILLED")
        raise
    except BaseException as exc:
        exp.tracker.fail(run_id, f"{type(exc).__name__}: {exc}")
        raise
    exp.tracker.finish(run_id, _final_metrics(card, external, wall), artifacts=[model_dir / "card.json"])
    return card, external, wall, run_id


def _run_one(exp: Experiment, index: int, run: RunSpec, base: TrainConfig, train: bool = True) -> RunResult | None:
    """Train one run, or reuse its earlier result (--resume); None if it is left out (--only) and has none."""
    cfg = exp.config(run)
    if train:
        exp.emit({"event": "run", "run": run.name, "index": index, "total": len(exp.recipe.runs), "note": run.note})
    model_dir = exp.out / "runs" / run.name
    record = _reusable(exp, run.name, cfg, run.init_from, train, train_imbalance=run.train_imbalance)
    if record:
        result = _from_record(record, cfg, model_dir)
        _complete(exp, result, record, cfg, run.train_imbalance)
        return result
    if not train:
        return None
    if run.init_from and run.init_from not in exp.results:  # left out by --only, its earlier run out of date
        raise ConfigError(
            f"{run.name} continues from {run.init_from}, which has no up-to-date result in {exp.out}.",
            hint=f"Add {run.init_from} to --only.",
        )
    (model_dir / RUN_RECORD).unlink(missing_ok=True)  # a run that fails now must not look finished
    data = _prepare(exp, cfg)
    if run.train_imbalance:
        data = imbalance(data, run.train_imbalance, cfg.seed)
    parent = exp.results[run.init_from] if run.init_from else None
    extra = {"init_from": run.init_from, "train_imbalance": run.train_imbalance, "train_images": data.counts()["train"]}
    card, external, wall, run_id = _train_tracked(
        exp,
        run.name,
        cfg,
        data,
        model_dir,
        kind="run",
        init_from=parent.model_dir if parent else None,
        params=_params(exp, cfg, data, **extra),
        checkpoint_dir=_checkpoint_dir(exp, run),
    )
    outcomes, by_class = _test_records(model_dir, data, bool(run.train_imbalance))
    notes = differs(cfg, base)
    if run.init_from:
        notes.insert(0, f"continues {run.init_from}")
    if run.train_imbalance:
        notes.append(f"train_imbalance={run.train_imbalance:g}")
    result = RunResult(
        name=run.name,
        kind="run",
        config=cfg,
        differs=notes,
        model_dir=model_dir,
        card=card,
        wall_seconds=wall,
        mlflow_run_id=run_id,
        init_from=run.init_from,
        note=run.note,
        external=external,
        offset=(parent.offset + len(parent.history)) if parent else 0,
        per_class=by_class,
        outcomes=outcomes,
    )
    _save_run(exp, result, cfg, train_imbalance=run.train_imbalance)
    return result


def _checkpoint_dir(exp: Experiment, run: RunSpec) -> Path:
    """Where a run saves its state after every epoch. `--resume` continues a run stopped part-way from
    it (the trainer checks settings and split); otherwise, or when the run it continues was trained
    again, it starts from the first epoch."""
    from leafdoc.train.checkpoint import beside

    folder = beside(exp.out / "runs" / run.name)
    if not exp.resume or not _parent_kept(exp, run.init_from):
        shutil.rmtree(folder, ignore_errors=True)
    return folder


def _tune(exp: Experiment, base: TrainConfig, train: bool = True) -> tuple[RunResult | None, dict | None]:
    """Optuna (TPE, seeded) over the recipe's space, scored on the validation split; trials doing worse
    than the median of the earlier ones are stopped early (MedianPruner). The best trial's model folder
    is kept as runs/<tune.name>, the others are deleted as the search goes. Finished trials are written
    to Optuna's journal in tune/, so `--resume` continues an interrupted search at its next trial."""
    import optuna
    from optuna.trial import TrialState

    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    spec = exp.recipe.tune
    start = exp.recipe.run(spec.from_run) if spec.from_run else None
    start_cfg = exp.config(start)
    trials = (exp.recipe.quick.trials or min(spec.trials, 2)) if exp.quick else spec.trials
    final_dir = exp.out / "runs" / spec.name
    space = _space_params(spec)
    pruning = {
        "prune": spec.prune,
        "startup_trials": spec.prune_startup_trials,
        "warmup_epochs": spec.prune_warmup_epochs,
    }
    parent_name = start.init_from if start else None
    basis = dict(trials=trials, space=space, metric=spec.metric, pruning=pruning)
    record = _reusable(exp, spec.name, start_cfg, parent_name, train, **basis)
    if record:
        tuned_cfg = TrainConfig(**{**start_cfg.model_dump(), **record["tuning"]["best_params"]})
        result = _from_record(record, tuned_cfg, final_dir)
        _complete(exp, result, record, tuned_cfg, start.train_imbalance if start else None)
        return result, record["tuning"]
    if not train:
        return None, None
    if parent_name and parent_name not in exp.results:  # left out by --only, its earlier run out of date
        raise ConfigError(
            f"{spec.name} continues from {parent_name}, which has no up-to-date result in {exp.out}.",
            hint=f"Add {parent_name} to --only.",
        )
    (final_dir / RUN_RECORD).unlink(missing_ok=True)
    data = _prepare(exp, start_cfg)
    if start and start.train_imbalance:
        data = imbalance(data, start.train_imbalance, start_cfg.seed)
    parent = exp.results[parent_name] if parent_name else None
    metric = spec.metric.removeprefix("val_")
    tune_dir = exp.out / "tune"
    search = {**basis, "settings": _settings_json(start_cfg), "data": exp.selection.digest()}
    study, search_id = _open_search(exp, tune_dir, search, parent_name, spec, start_cfg)
    done = [t for t in study.trials if t.state in finished]
    best = _best_kept(study, tune_dir)

    def objective(trial: optuna.Trial) -> float:
        nonlocal best
        values = {k: trial.suggest_float(k, r.low, r.high, log=r.log) for k, r in spec.space.items()}
        cfg = TrainConfig(**{**start_cfg.model_dump(), **values})
        name = f"{spec.name}-trial-{trial.number:03d}"
        exp.emit({"event": "run", "run": name, "index": trial.number, "total": trials, "note": "Optuna trial"})
        trial_dir = tune_dir / f"trial-{trial.number:03d}"
        so_far: list[float] = []

        def report(e: dict) -> None:
            if "val_accuracy" not in e:
                return
            so_far.append(float(e["val_accuracy"]))
            trial.report(max(so_far), int(e["epoch"]))
            if trial.should_prune():
                raise Pruned(int(e["epoch"]), max(so_far))

        t0 = time.perf_counter()
        try:
            card, external, wall, run_id = _train_tracked(
                exp,
                name,
                cfg,
                data,
                trial_dir,
                kind="trial",
                init_from=parent.model_dir if parent else None,
                params=_params(exp, cfg, data, trial=trial.number, init_from=parent_name),
                parent_run=search_id,
                on_epoch=report,
            )
        except Pruned as stop:
            trial.set_user_attr("seconds", round(time.perf_counter() - t0, 1))
            trial.set_user_attr("pruned_at", stop.epoch)
            exp.emit(
                {
                    "event": "message",
                    "text": f"{name}: stopped at epoch {stop.epoch}, its best validation accuracy so far "
                    f"({stop.value:.1%}) below the median of the earlier trials'",
                }
            )
            raise optuna.TrialPruned() from None
        value = float(card["metrics"]["val"][metric])
        trial.set_user_attr("seconds", round(wall, 1))
        trial.set_user_attr("run_id", run_id)
        trial.set_user_attr("external", external)
        if best is None or value > best.value:
            if best is not None:
                shutil.rmtree(tune_dir / f"trial-{best.number:03d}", ignore_errors=True)
            best = _Best(trial.number, value)
        else:
            shutil.rmtree(trial_dir, ignore_errors=True)
        return value

    def after_trial(study, _trial) -> None:  # the report says how far the search got
        exp.progress[spec.name] = f"{sum(t.state in finished for t in study.trials)} of {trials} trials finished"
        _publish(exp, None, None)

    if done:
        exp.emit({"event": "message", "text": f"{spec.name}: {len(done)} of {trials} trials reused from the search"})
        exp.progress[spec.name] = f"{len(done)} of {trials} trials finished"
    try:
        study.optimize(objective, n_trials=max(0, trials - len(done)), callbacks=[after_trial])
    except BaseException as exc:
        exp.tracker.fail(search_id, f"{type(exc).__name__}: {exc}")
        raise
    if best is None:
        raise ConfigError(f"{exp.recipe.name}: no trial of the search finished.", hint="See the trials' errors above.")
    ended = [t for t in study.trials if t.state in finished]  # read before tune/ (and the journal) goes
    interrupted = [t.number for t in study.trials if t.state not in finished]  # by a stop, then --resume
    winner = next(t for t in ended if t.number == best.number)
    best_dir = tune_dir / f"trial-{best.number:03d}"
    card = json.loads((best_dir / "card.json").read_text())
    best_cfg = TrainConfig(**{**start_cfg.model_dump(), **winner.params})
    shutil.rmtree(final_dir, ignore_errors=True)
    shutil.move(str(best_dir), final_dir)
    shutil.rmtree(tune_dir, ignore_errors=True)
    run_id = winner.user_attrs["run_id"]
    exp.tracker.client.set_tag(run_id, "leafdoc.model_dir", str(final_dir.resolve()))
    outcomes, by_class = _test_records(final_dir, data, bool(start and start.train_imbalance))
    rows = [
        {
            "trial": t.number,
            **t.params,
            spec.metric: t.value if t.state == TrialState.COMPLETE else None,
            "pruned_at": t.user_attrs.get("pruned_at"),
            "seconds": t.user_attrs.get("seconds"),
        }
        for t in ended
    ]
    summary = {
        "name": spec.name,
        "from_run": spec.from_run,
        "metric": spec.metric,
        "trials": rows,
        "pruning": pruning,
        "pruned": sum(r["pruned_at"] is not None for r in rows),
        "interrupted": interrupted,
        "best_trial": best.number,
        "best_params": {k: best_cfg.model_dump()[k] for k in spec.space},
        "best_value": best.value,
    }
    exp.tracker.finish(search_id, {f"best_{spec.metric}": best.value}, {"leafdoc.best_trial": best.number})
    notes = [f"tuned from {spec.from_run or 'base'} ({trials} trials)", *differs(best_cfg, base)]
    result = RunResult(
        name=spec.name,
        kind="tuned",
        config=best_cfg,
        differs=notes,
        model_dir=final_dir,
        card=card,
        wall_seconds=winner.user_attrs["seconds"],
        mlflow_run_id=run_id,
        init_from=parent_name,
        note=f"best of {trials} Optuna trials by {spec.metric}",
        external=winner.user_attrs.get("external"),
        offset=(parent.offset + len(parent.history)) if parent else 0,
        outcomes=outcomes,
        per_class=by_class,
    )
    _save_run(exp, result, start_cfg, tuning=summary, **basis)
    return result, summary


@dataclass
class _Best:
    number: int
    value: float


def _open_search(exp: Experiment, tune_dir: Path, search: dict, parent_name: str | None, spec, start_cfg):
    """The Optuna study in tune/ (a journal file) and its MLflow parent run: the one left by an
    interrupted search when `--resume` may continue it (same settings, images and parent run), else new
    ones. A trial the interruption left running stays so in the journal (neither counted nor sampled
    from); its folder is deleted with every other trial's but the best's, by _best_kept."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    previous = _read_record(exp, spec.name, tune_dir / SEARCH_RECORD)  # None without --resume
    same = previous and {k: previous.get(k) for k in search} == search
    if not (same and _parent_kept(exp, parent_name)):
        shutil.rmtree(tune_dir, ignore_errors=True)
        previous = None
    tune_dir.mkdir(parents=True, exist_ok=True)
    if previous:
        search_id = previous["mlflow_run_id"]
    else:
        search_id = exp.tracker.start(
            f"{spec.name} (search)",
            {"trials": search["trials"], "metric": spec.metric, "from_run": spec.from_run or "base", **search["space"]},
            {"leafdoc.recipe": exp.recipe.name, "leafdoc.mode": exp.mode, "leafdoc.kind": "search"},
        )
        atomic_write_json(tune_dir / SEARCH_RECORD, {**search, "mlflow_run_id": search_id})
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.logging.disable_default_handler()  # its handler keeps the stderr of the first caller, which
    optuna.logging.enable_propagation()  # may be closed by the next (a test runner): use Python's logging
    storage = JournalStorage(JournalFileBackend(str(tune_dir / "journal.log")))
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=spec.prune_startup_trials, n_warmup_steps=spec.prune_warmup_epochs)
        if spec.prune
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(
        study_name="search", storage=storage, load_if_exists=True, direction="maximize", pruner=pruner
    )
    # A resumed search's sampler is seeded past the trials it has, so it does not repeat their settings.
    sampler = optuna.samplers.TPESampler(seed=start_cfg.seed + len(study.trials))
    return optuna.load_study(study_name="search", storage=storage, sampler=sampler, pruner=pruner), search_id


def _best_kept(study, tune_dir: Path) -> _Best | None:
    """The best finished trial whose model folder is in tune/; the other trials' folders are deleted
    (a search keeps only its best, and a trial that was interrupted left a partial one)."""
    from optuna.trial import TrialState

    kept = [
        t
        for t in study.trials
        if t.state == TrialState.COMPLETE and (tune_dir / f"trial-{t.number:03d}" / "card.json").is_file()
    ]
    top = max(kept, key=lambda t: t.value) if kept else None
    for folder in tune_dir.glob("trial-*"):
        if top is None or folder.name != f"trial-{top.number:03d}":
            shutil.rmtree(folder, ignore_errors=True)
    return _Best(top.number, float(top.value)) if top else None


def _space_params(spec) -> dict:
    return {f"space.{k}": f"{r.low:g}..{r.high:g}{' log' if r.log else ''}" for k, r in spec.space.items()}


def _pipeline(exp: Experiment) -> dict:
    from leafdoc.experiments.speed import pipeline_speed

    spec = exp.recipe.pipeline
    cfg = exp.config(exp.recipe.run(spec.run))
    epochs = (exp.recipe.quick.pipeline_epochs or 2) if exp.quick else spec.epochs
    exp.emit({"event": "run", "run": "pipeline speed", "index": 0, "total": 1, "note": spec.run})
    record_path = exp.out / PIPELINE_RECORD
    basis = {"settings": _settings_json(cfg), "epochs": epochs, "data": exp.selection.digest()}
    record = _read_record(exp, "pipeline speed", record_path)
    if record and record.get("basis") == basis:
        exp.emit({"event": "message", "text": "pipeline speed: reusing the timing measured earlier"})
        exp.reused.append("pipeline")
        return record["result"]
    record_path.unlink(missing_ok=True)
    data = _prepare(exp, cfg)
    folder = link_folder(exp.selection, exp.out / "data" / f"{exp.selection.dataset}-folder")
    result = pipeline_speed(
        cfg,
        data,
        folder,
        epochs,
        on_epoch=lambda name, s: exp.emit({"event": "message", "text": f"pipeline {name}: epoch {s:.1f}s"}),
    )
    result["run"] = spec.run
    result["cache_build_seconds"] = exp.cache_seconds.get(f"{cfg.image_size}px/{cfg.morphology}{cfg.morph_kernel}")
    atomic_write_json(record_path, {"basis": basis, "result": result})
    return result


def _check_out(out: Path) -> None:
    if out.is_file() or (out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists()):
        raise ConfigError(
            f"{out}: already exists and is not the folder of an earlier `leafdoc experiment`; it would be overwritten.",
            hint="Pass --out with a new or empty folder.",
        )


def run_experiment(
    recipe: Recipe,
    *,
    data_root: Path,
    out: Path,
    quick: bool = False,
    weights: str | None = None,
    tracking_uri: str | None = None,
    home: Path | None = None,
    resume: bool = False,
    only: list[str] | None = None,
    on_event: Event | None = None,
) -> dict:
    """Run every run of the recipe (then the search and the pipeline benchmark), write the report.

    Returns results.json's content. Re-running into the same OUT reuses its ingested data and caches
    and replaces its model folders; MLflow keeps every invocation's runs. With `resume`, runs that
    finished in an earlier invocation with the same settings and images are reused, not trained again.
    `only` names the runs (or the search) to train now; the others are reused if `resume` finds them
    finished, else reported as not run yet (the pipeline benchmark runs only without `only`): a long
    recipe split over several sittings still ends in one report. The report is rewritten after every
    run, marked incomplete until the last one.
    """
    out = Path(out)
    _check_out(out)
    chosen = _check_only(recipe, only, out, resume)
    weights = weights or recipe.weights
    # Fail on a bad --weights value before ingesting anything.
    if weights not in ("none", "imagenet") and not Path(weights).is_file():
        raise ConfigError(
            f"weights file {weights} does not exist.",
            hint="Pass --weights none, imagenet, or the path of a backbone .weights.h5/.h5 file.",
        )
    for run in recipe.runs:
        recipe.config(run, quick=quick, weights=weights)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).touch()
    settings = Settings(home=Path(home) if home else out / "home")
    settings.ensure_home()
    selection = select(recipe, data_root, quick)
    mode = "quick" if quick else "full"
    tracker = Tracker(
        tracking_uri or default_tracking_uri(settings.home),
        f"{recipe.name} ({mode})",
        settings.mlruns_dir / "artifacts",
    )
    exp = Experiment(recipe, out, quick, weights, settings, selection, tracker, on_event, resume=resume)
    tuning = pipeline = None
    try:
        _ingest(exp)
        base = exp.config(None)
        for i, run in enumerate(recipe.runs):
            result = _run_one(exp, i, run, base, train=chosen is None or run.name in chosen)
            if result:
                exp.results[run.name] = result
                _publish(exp, tuning, pipeline)
        if recipe.tune:
            tuned, tuning = _tune(exp, base, train=chosen is None or recipe.tune.name in chosen)
            if tuned:
                exp.results[tuned.name] = tuned
                _publish(exp, tuning, pipeline)
        if recipe.pipeline and chosen is None:
            pipeline = _pipeline(exp)
    except BaseException:
        if exp.results:  # stopped part-way (Ctrl-C, SIGTERM, an error): say how far each run got
            _publish(exp, tuning, pipeline)
        raise
    finally:
        if exp.catalog is not None:
            exp.catalog.dispose()
    return _publish(exp, tuning, pipeline)


def _check_only(recipe: Recipe, only: list[str] | None, out: Path, resume: bool) -> set[str] | None:
    """The names --only picks, checked before anything is ingested: each is a run or the search of the
    recipe, and what a picked one continues from is picked too or finished in OUT (with --resume)."""
    if not only:
        return None
    chosen = {n.strip() for n in only if n.strip()}
    known = [r.name for r in recipe.runs] + ([recipe.tune.name] if recipe.tune else [])
    for name in sorted(chosen - set(known)):
        raise ConfigError(
            f"--only {name}: {recipe.where()} has no run of that name.", hint=f"Its runs: {', '.join(known)}."
        )
    needs = {r.name: r.init_from for r in recipe.runs}
    if recipe.tune:
        needs[recipe.tune.name] = recipe.run(recipe.tune.from_run).init_from if recipe.tune.from_run else None
    for name in sorted(chosen):
        parent = needs[name]
        if parent and parent not in chosen and not (resume and (out / "runs" / parent / RUN_RECORD).is_file()):
            raise ConfigError(
                f"--only {name}: it continues from {parent}, which has not finished in {out}.",
                hint=f"Add {parent} to --only, or finish it first and pass --resume.",
            )
    return chosen


def _pending(exp: Experiment, pipeline: dict | None) -> list[str]:
    names = [r.name for r in exp.recipe.runs]
    if exp.recipe.tune:
        names.append(exp.recipe.tune.name)
    pending = [n for n in names if n not in exp.results]
    if exp.recipe.pipeline and pipeline is None:
        pending.append("pipeline speed")
    return pending


def _how_far(exp: Experiment, pending: list[str]) -> dict[str, str]:
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


def _publish(exp: Experiment, tuning: dict | None, pipeline: dict | None) -> dict:
    """Write results.json, report.md and the curves for the runs finished so far; keep the best model
    once every run is done."""
    from leafdoc.experiments.report import machine, write_report

    recipe, out = exp.recipe, exp.out
    pending = _pending(exp, pipeline)
    best = max(exp.results.values(), key=lambda r: r.val["accuracy"])  # never chosen on test
    if recipe.keep_best and not pending:
        from leafdoc.train.trainer import copy_model_dir

        copy_model_dir(best.model_dir, out / "best")
    # The split as every run has it, but for the training images a train_imbalance run leaves out.
    first = max(exp.results.values(), key=lambda r: r.card["dataset"]["split"]["train"])
    results = {
        "recipe": recipe.name,
        "title": recipe.title,
        "source": recipe.source,
        "reported": recipe.reported,
        "recipe_file": str(recipe.path) if recipe.path else None,
        "mode": exp.mode,
        "weights": exp.weights,
        "machine": machine(),
        "data": {
            "root": str(exp.selection.root),
            "dataset": first.card["dataset"]["name"],
            "version": first.card["dataset"]["version"],
            "classes": exp.selection.classes,
            "split": first.card["dataset"]["split"],
            "test_folder": str(recipe.data.test_path) if recipe.data.test_path else None,
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
        "progress": _how_far(exp, pending),
        "reused": list(exp.reused),
        "tracking_uri": exp.tracker.uri,
        "mlflow_experiment": f"{recipe.name} ({exp.mode})",
        "seconds": round(time.perf_counter() - exp.started, 1),
        "written_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
    }
    results["report"] = str(write_report(results, out))
    atomic_write_json(out / "results.json", results)
    return results
