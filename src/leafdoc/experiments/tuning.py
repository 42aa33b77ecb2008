"""The recipe's settings search: Optuna (TPE, seeded) over its space, trials pruned by the median rule, the
search's journal in tune/ so `--resume` continues it, and the best trial kept as runs/<tune.name>."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from leafdoc.core.atomic import atomic_write_json
from leafdoc.core.errors import ConfigError
from leafdoc.evaluate.score import Scores
from leafdoc.experiments import tracked
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
    score_test,
    settings_json,
    test_records,
)
from leafdoc.experiments.stream import Message, RunStarted
from leafdoc.experiments.tracked import Pruned, complete, params, prepare_run_data, thinned
from leafdoc.modelfolder import CARD_FILE, read_card
from leafdoc.train.config import TrainConfig
from leafdoc.train.events import Epoch

SEARCH_RECORD = "search.json"  # in tune/: the settings the journal's trials were run with


def tune(exp: Experiment, base: TrainConfig, train: bool = True) -> tuple[RunResult | None, dict | None]:
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
    with_extra = bool(start and start.with_extra)  # the trials train on what the run they start from trained on
    basis = dict(trials=trials, space=space, metric=spec.metric, pruning=pruning, with_extra=with_extra or None)
    record = reusable(exp, spec.name, start_cfg, parent_name, train, **basis)
    if record:
        tuned_cfg = TrainConfig(**{**start_cfg.model_dump(), **record["tuning"]["best_params"]})
        result = from_record(record, tuned_cfg, final_dir)
        complete(exp, result, record, tuned_cfg, start)
        return result, record["tuning"]
    if not train:
        return None, None
    if parent_name and parent_name not in exp.results:  # left out by --only, its earlier run out of date
        raise ConfigError(
            f"{spec.name} continues from {parent_name}, which has no up-to-date result in {exp.out}.",
            hint=f"Add {parent_name} to --only.",
        )
    (final_dir / RUN_RECORD).unlink(missing_ok=True)
    data = thinned(prepare_run_data(exp, start_cfg, with_extra=with_extra), start, start_cfg.seed)
    parent = exp.results[parent_name] if parent_name else None
    metric = spec.metric.removeprefix("val_")
    tune_dir = exp.out / "tune"
    search = {**basis, "settings": settings_json(start_cfg), "data": exp.selection.digest()}
    study, search_id = _open_search(exp, tune_dir, search, parent_name, spec, start_cfg)
    done = [t for t in study.trials if t.state in finished]
    best = _best_kept(study, tune_dir)

    def objective(trial: optuna.Trial) -> float:
        nonlocal best
        values = {k: trial.suggest_float(k, r.low, r.high, log=r.log) for k, r in spec.space.items()}
        cfg = TrainConfig(**{**start_cfg.model_dump(), **values})
        name = f"{spec.name}-trial-{trial.number:03d}"
        exp.emit(RunStarted(name, trial.number, trials, "Optuna trial"))
        trial_dir = tune_dir / f"trial-{trial.number:03d}"
        so_far: list[float] = []

        def report(e: Epoch) -> None:
            if "val_accuracy" not in e.logs:
                return
            so_far.append(float(e.logs["val_accuracy"]))
            trial.report(max(so_far), e.epoch)
            if trial.should_prune():
                raise Pruned(e.epoch, max(so_far))

        t0 = time.perf_counter()
        try:
            trained, external, wall, run_id = tracked.train_tracked(
                exp,
                name,
                cfg,
                data,
                trial_dir,
                kind="trial",
                init_from=parent.model_dir if parent else None,
                params=params(exp, cfg, data, trial=trial.number, init_from=parent_name, with_extra=with_extra or None),
                parent_run=search_id,
                on_epoch=report,
            )
        except Pruned as stop:
            trial.set_user_attr("seconds", round(time.perf_counter() - t0, 1))
            trial.set_user_attr("pruned_at", stop.epoch)
            exp.emit(
                Message(
                    f"{name}: stopped at epoch {stop.epoch}, its best validation accuracy so far "
                    f"({stop.value:.1%}) below the median of the earlier trials'"
                )
            )
            raise optuna.TrialPruned() from None
        value = float(trained.card.metrics.val[metric])
        trial.set_user_attr("seconds", round(wall, 1))
        trial.set_user_attr("run_id", run_id)
        trial.set_user_attr("external", external)
        if best is None or value > best.value:
            if best is not None:
                shutil.rmtree(tune_dir / f"trial-{best.number:03d}", ignore_errors=True)
            best = _Best(trial.number, value, trained.test)
        else:
            shutil.rmtree(trial_dir, ignore_errors=True)
        return value

    def after_trial(study, _trial) -> None:  # the report says how far the search got
        exp.progress[spec.name] = f"{sum(t.state in finished for t in study.trials)} of {trials} trials finished"
        publish(exp, None, None)

    if done:
        exp.emit(Message(f"{spec.name}: {len(done)} of {trials} trials reused from the search"))
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
    card = read_card(best_dir)
    best_cfg = TrainConfig(**{**start_cfg.model_dump(), **winner.params})
    shutil.rmtree(final_dir, ignore_errors=True)
    shutil.move(str(best_dir), final_dir)
    shutil.rmtree(tune_dir, ignore_errors=True)
    run_id = winner.user_attrs["run_id"]
    exp.tracker.client.set_tag(run_id, "leafdoc.model_dir", str(final_dir.resolve()))
    # The winner's test split as its training scored it; a winner from an earlier invocation is scored again.
    test = best.test if best.test is not None else score_test(final_dir, data)
    outcomes, by_class = test_records(data, test, bool(start and start.train_imbalance))
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
    if with_extra:
        notes.append(f"+ {len(exp.selection.extra_files)} training-only photos of data.extra")
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
        with_extra=with_extra,
    )
    save_run(exp, result, start_cfg, tuning=summary, **basis)
    return result, summary


@dataclass
class _Best:
    number: int
    value: float
    test: Scores | None = None  # its test split's pass, when trained by this invocation


def _open_search(exp: Experiment, tune_dir: Path, search: dict, parent_name: str | None, spec, start_cfg):
    """The Optuna study in tune/ (a journal file) and its MLflow parent run: the one left by an
    interrupted search when `--resume` may continue it (same settings, images and parent run), else new
    ones. A trial the interruption left running stays so in the journal (neither counted nor sampled
    from); its folder is deleted with every other trial's but the best's, by _best_kept."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    previous = read_record(exp, spec.name, tune_dir / SEARCH_RECORD)  # None without --resume
    same = previous and {k: previous.get(k) for k in search} == search
    if not (same and parent_kept(exp, parent_name)):
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
        if t.state == TrialState.COMPLETE and (tune_dir / f"trial-{t.number:03d}" / CARD_FILE).is_file()
    ]
    top = max(kept, key=lambda t: t.value) if kept else None
    for folder in tune_dir.glob("trial-*"):
        if top is None or folder.name != f"trial-{top.number:03d}":
            shutil.rmtree(folder, ignore_errors=True)
    return _Best(top.number, float(top.value)) if top else None


def _space_params(spec) -> dict:
    return {f"space.{k}": f"{r.low:g}..{r.high:g}{' log' if r.log else ''}" for k, r in spec.space.items()}
