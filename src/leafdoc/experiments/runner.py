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

import shutil
from pathlib import Path

from leafdoc.core.atomic import atomic_write_json
from leafdoc.core.errors import ConfigError
from leafdoc.core.settings import Settings
from leafdoc.experiments import tracked
from leafdoc.experiments.data import link_folder, select, write_csv
from leafdoc.experiments.recipe import Recipe, RunSpec
from leafdoc.experiments.records import (
    RUN_RECORD,
    Experiment,
    RunResult,
    differs,
    from_record,
    parent_kept,
    publish,
    read_record,
    reusable,
    save_run,
    settings_json,
    test_records,
)
from leafdoc.experiments.stream import Message, OnExperimentEvent, RunStarted
from leafdoc.experiments.tracked import cache_label, complete, params, prepare_run_data, progress, thinned
from leafdoc.experiments.tracking import Tracker, default_tracking_uri
from leafdoc.experiments.tuning import tune
from leafdoc.lifecycle.workspace import Workspace
from leafdoc.train.backbone_registry import NAMED_WEIGHTS
from leafdoc.train.config import TrainConfig

MARKER = ".leafdoc-experiment"
PIPELINE_RECORD = "pipeline.json"


def _ingest(exp: Experiment) -> None:
    from leafdoc.data.datasets import latest_version
    from leafdoc.data.ingest import ingest

    s = exp.settings
    exp.workspace = ws = Workspace.open(s)
    sel = exp.selection
    # The name carries a digest of the selection, so an existing dataset is exactly this selection.
    if latest_version(ws.catalog, sel.dataset) is not None:
        exp.emit(Message(f"reusing dataset {sel.dataset} from {s.home}"))
        return
    csv_path = write_csv(sel, exp.out / "data" / f"{sel.dataset}.csv")
    result = ingest(
        csv_path,
        ws.catalog,
        ws.store,
        sel.dataset,
        progress=progress(exp, "ingesting"),
    )
    if result.version is None:
        raise ConfigError(f"{exp.recipe.where()}: none of the {len(sel.files)} selected images could be ingested.")
    exp.emit(
        Message(
            f"ingested {result.n_images} images in {result.n_classes} classes as {sel.dataset} "
            f"({len(result.rejected)} rejected, {len(result.duplicates)} duplicates)"
        )
    )


def _run_one(exp: Experiment, index: int, run: RunSpec, base: TrainConfig, train: bool = True) -> RunResult | None:
    """Train one run, or reuse its earlier result (--resume); None if it is left out (--only) and has none."""
    cfg = exp.config(run)
    if train:
        exp.emit(RunStarted(run.name, index, len(exp.recipe.runs), run.note))
    model_dir = exp.out / "runs" / run.name
    record = reusable(exp, run.name, cfg, run.init_from, train, **_thinning(run), with_extra=run.with_extra or None)
    if record:
        result = from_record(record, cfg, model_dir)
        complete(exp, result, record, cfg, run)
        return result
    if not train:
        return None
    if run.init_from and run.init_from not in exp.results:  # left out by --only, its earlier run out of date
        raise ConfigError(
            f"{run.name} continues from {run.init_from}, which has no up-to-date result in {exp.out}.",
            hint=f"Add {run.init_from} to --only.",
        )
    (model_dir / RUN_RECORD).unlink(missing_ok=True)  # a run that fails now must not look finished
    data = thinned(prepare_run_data(exp, cfg, with_extra=run.with_extra), run, cfg.seed)
    parent = exp.results[run.init_from] if run.init_from else None
    extra = {
        "init_from": run.init_from,
        **_thinning(run),
        "with_extra": run.with_extra or None,
        "train_images": data.counts()["train"],
    }
    trained, external, wall, run_id = tracked.train_tracked(
        exp,
        run.name,
        cfg,
        data,
        model_dir,
        kind="run",
        init_from=parent.model_dir if parent else None,
        params=params(exp, cfg, data, **extra),
        checkpoint_dir=_checkpoint_dir(exp, run),
    )
    outcomes, by_class = test_records(data, trained.test, bool(run.train_imbalance))  # training's own pass
    notes = differs(cfg, base)
    if run.init_from:
        notes.insert(0, f"continues {run.init_from}")
    notes += [f"{key}={value:g}" for key, value in _thinning(run).items() if value is not None]
    if run.with_extra:
        notes.append(f"+ {len(exp.selection.extra_files)} training-only photos of data.extra")
    result = RunResult(
        name=run.name,
        kind="run",
        config=cfg,
        differs=notes,
        model_dir=model_dir,
        card=trained.card,
        wall_seconds=wall,
        mlflow_run_id=run_id,
        init_from=run.init_from,
        note=run.note,
        external=external,
        offset=(parent.offset + len(parent.history)) if parent else 0,
        per_class=by_class,
        outcomes=outcomes,
        with_extra=run.with_extra,
        train_share=run.train_share,
    )
    save_run(exp, result, cfg, **_thinning(run), with_extra=run.with_extra or None)
    return result


def _thinning(run: RunSpec) -> dict[str, float | None]:
    """How the run thins its training split, as its record keeps it (so --resume sees a change)."""
    return {"train_share": run.train_share, "train_imbalance": run.train_imbalance}


def _checkpoint_dir(exp: Experiment, run: RunSpec) -> Path:
    """Where a run saves its state after every epoch. `--resume` continues a run stopped part-way from
    it (the trainer checks settings and split); otherwise, or when the run it continues was trained
    again, it starts from the first epoch."""
    from leafdoc.train.checkpoint import beside

    folder = beside(exp.out / "runs" / run.name)
    if not exp.resume or not parent_kept(exp, run.init_from):
        shutil.rmtree(folder, ignore_errors=True)
    return folder


def _pipeline(exp: Experiment) -> dict:
    from leafdoc.experiments.speed import pipeline_speed

    spec = exp.recipe.pipeline
    cfg = exp.config(exp.recipe.run(spec.run))
    epochs = (exp.recipe.quick.pipeline_epochs or 2) if exp.quick else spec.epochs
    exp.emit(RunStarted("pipeline speed", 0, 1, spec.run))
    record_path = exp.out / PIPELINE_RECORD
    basis = {"settings": settings_json(cfg), "epochs": epochs, "data": exp.selection.digest()}
    record = read_record(exp, "pipeline speed", record_path)
    if record and record.get("basis") == basis:
        exp.emit(Message("pipeline speed: reusing the timing measured earlier"))
        exp.reused.append("pipeline")
        return record["result"]
    record_path.unlink(missing_ok=True)
    data = prepare_run_data(exp, cfg)
    folder = link_folder(exp.selection, exp.out / "data" / f"{exp.selection.dataset}-folder")
    result = pipeline_speed(
        cfg,
        data,
        folder,
        epochs,
        on_epoch=lambda name, s: exp.emit(Message(f"pipeline {name}: epoch {s:.1f}s")),
    )
    result["run"] = spec.run
    result["cache_build_seconds"] = exp.cache_seconds.get(cache_label(cfg))
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
    on_event: OnExperimentEvent | None = None,
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
    if weights not in NAMED_WEIGHTS and not Path(weights).is_file():
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
                publish(exp, tuning, pipeline)
        if recipe.tune:
            tuned, tuning = tune(exp, base, train=chosen is None or recipe.tune.name in chosen)
            if tuned:
                exp.results[tuned.name] = tuned
                publish(exp, tuning, pipeline)
        if recipe.pipeline and chosen is None:
            pipeline = _pipeline(exp)
    except BaseException:
        if exp.results:  # stopped part-way (Ctrl-C, SIGTERM, an error): say how far each run got
            publish(exp, tuning, pipeline)
        raise
    finally:
        if exp.workspace is not None:
            exp.workspace.close()
    return publish(exp, tuning, pipeline)


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
