"""`leafdoc experiment` end to end on a tiny recipe with a task a learning model gets right (three colours
under pixel noise, 16 px, 8 epochs): both runs tracked in MLflow with parameters and metrics that are the
run's own (test and validation figures of the right split, scored again here), a report with the table and
a real PNG, a continued run with an extra dense layer whose export still agrees with Keras, an Optuna
trial, a pipeline timing.

A few blue photos are filed under `red` (MISLABELLED): a model that learned colours gets them wrong
wherever the split put them, so the test and validation figures differ and a swap of the two shows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.conftest import COLOURS, colour_folder, run_until_killed, synthetic_image
from typer.testing import CliRunner

from leafdoc.experiments.stream import InRun, Message
from leafdoc.train.events import Epoch

RECIPE = """\
name: tiny-leaves
title: Tiny leaves
source: a test
reported: {base: "50%"}
data:
  path: leaves
  test_path: leaves-test
base:
  backbone: baseline_cnn
  image_size: 64
  epochs: 3
  batch_size: 8
  patience: 20
runs:
  - name: base
    note: the base settings
  - name: wider-head
    init_from: base
    head_units: [8]
    class_weights: false
tune:
  from_run: base
  trials: 5
  space:
    learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}
pipeline:
  run: base
  epochs: 3
quick:
  image_size: 16
  epochs: 8
  trials: 1
  pipeline_epochs: 2
keep_best: true
"""


PER_CLASS, MISLABELLED = 12, 4  # seeds 9016-9019: the split puts one in val, two in test, one in train


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """One quick experiment through the CLI, shared by the tests below (training is the slow part)."""
    root = tmp_path_factory.mktemp("experiment")
    data = root / "datasets"
    colour_folder(data / "leaves", PER_CLASS)
    for i in range(MISLABELLED):
        synthetic_image(data / "leaves" / "red" / f"blue-filed-as-red{i}.png", (40, 40), COLOURS["blue"], seed=9016 + i)
    colour_folder(data / "leaves-test", 2, seed0=500)  # photos the training folder does not have
    recipe = root / "tiny.yaml"
    recipe.write_text(RECIPE)
    out = root / "out"
    from leafdoc.cli.main import app

    result = CliRunner().invoke(app, ["experiment", str(recipe), "--data", str(data), "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return out, result.output


def _runs(out):
    from mlflow.tracking import MlflowClient

    results = json.loads((out / "results.json").read_text())
    client = MlflowClient(tracking_uri=results["tracking_uri"])
    exp = client.get_experiment_by_name("tiny-leaves (quick)")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    return client, runs, results


def _folder_accuracy(model_dir: Path, results: dict) -> float:
    """The model's accuracy on the recipe's test folder (one subfolder per class), scored here with ONNX Runtime."""
    folder = Path(results["data"]["root"]).parent / results["data"]["test_folder"]  # both under --data
    assert sum(p.is_file() for p in folder.rglob("*")) == results["data"]["test_folder_images"]
    return _accuracy_on(model_dir, folder)


def _accuracy_on(model_dir: Path, folder: Path) -> float:
    """The model's accuracy on a folder of class folders, scored here with ONNX Runtime."""
    from leafdoc.inference.predictor import Predictor

    predictor = Predictor(model_dir)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    probs = predictor.predict_arrays(np.stack([predictor.preprocess(p) for p in files]))["probabilities"]
    return float(np.mean([predictor.labels[i] == p.parent.name for i, p in zip(probs.argmax(1), files, strict=True)]))


def _split_answers(model_dir: Path, results: dict) -> dict[str, dict[str, str]]:
    """{part: {file name: predicted label}} for the val and test photos the run's split.json names (by
    sha256), scored here with ONNX Runtime: what the run's figures must be computed from."""
    import hashlib

    from leafdoc.inference.predictor import Predictor

    split = json.loads((model_dir / "split.json").read_text())
    part_of = {sha: part for part in ("val", "test") for sha in split[part]}
    predictor = Predictor(model_dir)
    found: dict[str, dict[str, str]] = {"val": {}, "test": {}}
    for f in sorted(p for p in Path(results["data"]["root"]).rglob("*") if p.is_file()):
        part = part_of.get(hashlib.sha256(f.read_bytes()).hexdigest())
        if part:
            probs = predictor.predict_arrays(predictor.preprocess(f)[None])["probabilities"][0]
            found[part][f"{f.parent.name}/{f.name}"] = predictor.labels[int(probs.argmax())]
    assert sum(map(len, found.values())) == len(split["val"]) + len(split["test"])
    return found


def _accuracy(answers: dict[str, str]) -> float:
    return float(np.mean([name.split("/")[0] == label for name, label in answers.items()]))


def test_mlflow_has_both_runs_with_params_and_metrics(experiment):
    out, _ = experiment
    client, runs, results = _runs(out)
    assert results["tracking_uri"].startswith("sqlite:///") and str(out / "home" / "mlruns") in results["tracking_uri"]
    for name in ("base", "wider-head"):
        run = runs[name]
        assert run.info.status == "FINISHED"
        assert run.data.params["image_size"] == "16" and run.data.params["backbone"] == "baseline_cnn"
        # The figures MLflow shows are the run's: its card, results.json, and the model scored afresh on
        # the photos its split.json names as validation and as test (which differ: see MISLABELLED).
        card = json.loads((out / "runs" / name / "card.json").read_text())
        summary = next(r for r in results["runs"] if r["name"] == name)
        answers = _split_answers(out / "runs" / name, results)
        test, val = _accuracy(answers["test"]), _accuracy(answers["val"])
        assert test != val, answers  # the fixture's premise: otherwise a swap could not show
        assert run.data.metrics["test_accuracy"] == pytest.approx(test)
        assert run.data.metrics["final_val_accuracy"] == pytest.approx(val)
        assert card["metrics"]["test"]["accuracy"] == pytest.approx(test) == summary["test"]["accuracy"]
        assert card["metrics"]["val"]["accuracy"] == pytest.approx(val) == summary["val"]["accuracy"]
        folder = _folder_accuracy(out / "runs" / name, results)
        assert run.data.metrics["test_folder_accuracy"] == pytest.approx(folder)
        # The model learned the colours: every fresh photo of the test folder, and every held-out photo
        # but the blue ones filed under red, which it calls blue (chance would be 1/3).
        assert folder == 1.0, name
        for part in ("val", "test"):
            for photo, label in answers[part].items():
                assert label == ("blue" if "blue-filed-as-red" in photo else photo.split("/")[0]), (name, photo)
        assert run.data.metrics["wall_seconds"] > 0
        curve = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert [m.step for m in curve] == list(range(1, 9))
        assert [m.value for m in curve] == pytest.approx([h["val_accuracy"] for h in card["history"]])
        assert max(m.value for m in curve) >= 0.75  # the curve MLflow draws climbs above chance
        assert (out / "runs" / name / "model.onnx").is_file()
        assert run.data.tags["leafdoc.model_dir"] == str((out / "runs" / name).resolve())
    assert runs["wider-head"].data.params["init_from"] == "base"
    assert runs["wider-head"].data.params["head_units"] == "8"
    # The search is one parent run with its trial nested under it.
    search = runs["tuned (search)"]
    trial = runs["tuned-trial-000"]
    assert trial.data.tags["mlflow.parentRunId"] == search.info.run_id


def test_report_has_the_table_and_a_real_png(experiment):
    out, output = experiment
    report = (out / "report.md").read_text()
    table = [line for line in report.splitlines() if line.startswith("| ")]
    assert table[0].startswith(
        "| run | settings that differ from base | source reported | test acc (95% CI) | macro F1 | "
        "Δ acc vs base (McNemar p) |"
    )
    assert "test folder acc" in table[0]
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in table[1:]}
    assert {"base", "wider-head", "tuned"} <= set(rows)
    assert "continues base" in rows["wider-head"] and "head_units=[8]" in rows["wider-head"]
    assert "class_weights=False" in rows["wider-head"] and "50%" in rows["base"]
    assert "Quick mode" in report and "Weights: none" in report
    assert "## Input pipeline speed" in report and "## Hyperparameter search" in report
    with Image.open(out / "learning_curves.png") as img:
        img.verify()
        assert img.format == "PNG" and img.size[0] > 300
    assert "](learning_curves.png)" in report
    # Paths inside the experiment's folder are relative to it, so the report reads right when copied.
    assert str(out.resolve()) not in report and str(out) not in report
    assert "`sqlite:///home/mlruns/mlflow.db`" in report and "`runs/base`, `runs/wider-head`" in report
    # What the CLI printed: the table and where the report is.
    assert "wider-head" in output and f"report: {out / 'report.md'}" in output.replace("\n", "")


def test_results_record_the_search_and_the_pipeline_timing(experiment):
    out, _ = experiment
    results = json.loads((out / "results.json").read_text())
    assert results["tuning"]["best_params"].keys() == {"learning_rate"}
    assert 1e-4 <= results["tuning"]["best_params"]["learning_rate"] <= 1e-2
    assert (out / "runs" / "tuned" / "card.json").is_file() and not (out / "tune").exists()
    # The search's pick learned the colours: the fresh photos of the test folder, scored here (chance 1/3).
    tuned = next(r for r in results["runs"] if r["name"] == "tuned")
    folder = _folder_accuracy(out / "runs" / "tuned", results)
    assert folder == pytest.approx(tuned["external_test"]["accuracy"], abs=1e-6) and folder >= 5 / 6, folder
    assert results["tuning"]["trials"][0]["val_accuracy"] == pytest.approx(tuned["val"]["accuracy"], abs=1e-6)
    assert tuned["val"]["accuracy"] >= 0.75
    pipe = results["pipeline"]
    assert len(pipe["cached_seconds"]) == 4 and len(pipe["plain_seconds"]) == 4  # 2 rounds of 2 after a warm-up
    assert pipe["speedup"] > 0 and pipe["n_images"] == 3 * PER_CLASS + MISLABELLED
    assert results["data"]["test_folder_images"] == 6
    # best/ is the run with the best validation accuracy (never chosen on test), copied whole
    val = {r["name"]: r["val"]["accuracy"] for r in results["runs"]}
    assert set(val) == {"base", "wider-head", "tuned"}
    chosen = results["best"]["run"]
    assert val[chosen] == max(val.values()) == results["best"]["val_accuracy"]
    assert results["best"]["kept"] == str(out / "best")
    run_dir = next(Path(r["model_dir"]) for r in results["runs"] if r["name"] == chosen)
    for name in ("model.onnx", "card.json", "labels.json"):
        assert (out / "best" / name).read_bytes() == (run_dir / name).read_bytes(), name
    # The report's date is when the results were written, not when it was last re-rendered.
    assert f"run {results['written_at']} UTC in" in (out / "report.md").read_text()


def test_each_run_records_its_test_outcomes_and_the_report_pairs_them(experiment):
    """Every run and the tuned one record which test images they got right (as many as their accuracy
    says, on one set of images), and the table's p is McNemar's test of those against the reference."""
    from leafdoc.evaluate.significance import mcnemar
    from leafdoc.experiments.report import _p

    out, _ = experiment
    results = json.loads((out / "results.json").read_text())
    runs = {r["name"]: r for r in results["runs"]}
    assert set(runs) == {"base", "wider-head", "tuned"}
    for run in runs.values():
        outcomes = run["test_outcomes"]
        assert len(outcomes["correct"]) == run["test"]["n"] == results["data"]["split"]["test"]
        assert outcomes["correct"].count("1") == round(run["test"]["accuracy"] * run["test"]["n"])
        assert outcomes["images"] == runs["base"]["test_outcomes"]["images"]
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in (out / "report.md").read_text().splitlines()}
    for name in ("wider-head", "tuned"):
        p = mcnemar(runs[name]["test_outcomes"]["correct"], runs["base"]["test_outcomes"]["correct"])["p"]
        assert f"({_p(p)}) |" in rows[name]


def test_continued_run_with_hidden_layer_exports_what_keras_computes(experiment):
    """The extra dense layer is in the head, the base came from the parent, and ONNX agrees with Keras
    on all four outputs, the heat maps included."""
    from leafdoc.inference.predictor import Predictor
    from leafdoc.train.export import load_keras, serving_model

    out, _ = experiment
    model_dir = out / "runs" / "wider-head"
    card = json.loads((model_dir / "card.json").read_text())
    assert card["warm_start"] == "backbone" and card["training"]["head_units"] == [8]
    assert "not the logits" in card["outputs"]["cam"]
    predictor = Predictor(model_dir)
    x = np.random.default_rng(0).uniform(0, 255, (3, 16, 16, 3)).astype(np.float32)
    onnx_out = predictor.predict_arrays(x)
    keras_out = serving_model(load_keras(model_dir))({"image": x}, training=False)
    for name in ("probabilities", "logits", "features", "cam"):
        assert np.abs(np.asarray(keras_out[name]) - onnx_out[name]).max() < 1e-4, name


def test_stopped_experiment_reports_what_is_done_and_resume_finishes_it(experiment, tmp_path, monkeypatch):
    """A run that fails part-way leaves a report marked incomplete with the finished runs; `--resume`
    reuses those (no new MLflow runs for them) and trains only what is missing."""
    import shutil

    from leafdoc.cli.main import app
    from leafdoc.experiments import records, runner, tracked

    done, _ = experiment
    out = tmp_path / "out"
    shutil.copytree(done, out)
    (out / "runs" / "wider-head" / "run.json").unlink()  # as if it had not finished
    recipe, data = done.parent / "tiny.yaml", done.parent / "datasets"
    argv = ["experiment", str(recipe), "--data", str(data), "--quick", "--out", str(out), "--resume"]
    _, before, _ = _runs(out)

    real = tracked.train_tracked

    def stop_at_wider_head(exp, name, *args, **kwargs):
        if name == "wider-head":
            raise KeyboardInterrupt  # the user pressed Ctrl-C during this run
        return real(exp, name, *args, **kwargs)

    monkeypatch.setattr(tracked, "train_tracked", stop_at_wider_head)
    stopped = CliRunner().invoke(app, argv)
    assert stopped.exit_code != 0
    partial = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in partial["runs"]] == ["base"] and partial["reused"] == ["base"]
    assert partial["pending"] == ["wider-head", "tuned", "pipeline speed"]
    report = (out / "report.md").read_text()
    assert "(incomplete: 1 of 4 runs)" in report and "Not run yet: wider-head, tuned, pipeline speed" in report
    assert "--resume" in report

    monkeypatch.setattr(tracked, "train_tracked", real)
    resumed = CliRunner().invoke(app, argv)
    assert resumed.exit_code == 0, resumed.output + repr(resumed.exception)
    client, after, results = _runs(out)
    assert results["pending"] == [] and results["reused"] == ["base", "tuned", "pipeline"]
    assert (
        set(after) - set(before) == set()
        and len(client.search_runs([client.get_experiment_by_name("tiny-leaves (quick)").experiment_id]))
        == len(before) + 1
    )  # only wider-head trained again
    assert results["runs"][0]["mlflow_run_id"] == before["base"].info.run_id
    assert (out / "runs" / "wider-head" / "run.json").is_file()
    assert "incomplete" not in (out / "report.md").read_text() and "reused from" in resumed.output

    # A run whose settings changed since is trained again; the others are still reused.
    changed = tmp_path / "changed.yaml"
    changed.write_text(recipe.read_text().replace("head_units: [8]", "head_units: [4]"))
    from leafdoc.experiments.recipe import load_recipe

    calls = []

    def counting(exp, name, *args, **kwargs):
        calls.append(name)
        return real(exp, name, *args, **kwargs)

    monkeypatch.setattr(tracked, "train_tracked", counting)
    again = runner.run_experiment(load_recipe(str(changed)), data_root=data, out=out, quick=True, resume=True)
    assert calls == ["wider-head"] and again["reused"] == ["base", "tuned", "pipeline"]

    # A record written before a setting existed still matches while the recipe leaves it at its default.
    from leafdoc.train.config import TrainConfig

    assert records.same_settings(
        {k: v for k, v in records.settings_json(TrainConfig()).items() if k != "restore_best"}, TrainConfig()
    )
    assert not records.same_settings({}, TrainConfig(restore_best="val_accuracy"))
    assert again["runs"][1]["settings"]["head_units"] == [4]


def test_only_trains_the_runs_named_and_resume_gathers_them_in_one_report(experiment, tmp_path, monkeypatch):
    """`--only` splits a long recipe over several sittings: each invocation trains the runs it names, and
    with `--resume` the report also holds the runs finished earlier; names are checked before any work."""
    from leafdoc.cli.main import app
    from leafdoc.core.errors import ConfigError
    from leafdoc.experiments import runner, tracked
    from leafdoc.experiments.recipe import load_recipe

    done, _ = experiment
    recipe, data, out = load_recipe(str(done.parent / "tiny.yaml")), done.parent / "datasets", tmp_path / "out"
    calls: list[str] = []
    real = tracked.train_tracked

    def counting(exp, name, *args, **kwargs):
        calls.append(name)
        return real(exp, name, *args, **kwargs)

    monkeypatch.setattr(tracked, "train_tracked", counting)
    argv = ["experiment", str(recipe.path), "--data", str(data), "--quick", "--out", str(out), "--only", "base"]
    first = CliRunner().invoke(app, argv)
    assert first.exit_code == 0, first.output + repr(first.exception)
    results = json.loads((out / "results.json").read_text())
    assert calls == ["base"] and [r["name"] for r in results["runs"]] == ["base"]
    assert results["pending"] == ["wider-head", "tuned", "pipeline speed"] and "not run yet" in first.output
    assert "Not run yet: wider-head, tuned, pipeline speed" in (out / "report.md").read_text()

    with pytest.raises(ConfigError, match="has no run of that name") as unknown:
        runner.run_experiment(recipe, data_root=data, out=out, quick=True, only=["base", "nope"])
    assert "base, wider-head, tuned" in unknown.value.hint
    with pytest.raises(ConfigError, match="continues from base, which has not finished") as orphan:
        runner.run_experiment(recipe, data_root=data, out=out, quick=True, only=["wider-head"])  # no --resume
    assert "Add base to --only" in orphan.value.hint
    assert calls == ["base"]  # refused before any training

    calls.clear()
    second = runner.run_experiment(recipe, data_root=data, out=out, quick=True, resume=True, only=["wider-head"])
    assert calls == ["wider-head"] and second["reused"] == ["base"]
    assert [r["name"] for r in second["runs"]] == ["base", "wider-head"]
    assert second["pending"] == ["tuned", "pipeline speed"]

    calls.clear()
    last = runner.run_experiment(recipe, data_root=data, out=out, quick=True, resume=True)
    assert "base" not in calls and "wider-head" not in calls and last["pending"] == []
    assert [r["name"] for r in last["runs"]] == ["base", "wider-head", "tuned"] and last["pipeline"]
    assert "incomplete" not in (out / "report.md").read_text()


IMBALANCED_RECIPE = """\
name: tiny-imbalance
title: Tiny imbalance
source: a test
data:
  path: leaves
base:
  backbone: baseline_cnn
  image_size: 16
  epochs: 1
  batch_size: 8
runs:
  - name: balanced
  - name: thinned
    train_imbalance: 4
quick:
  per_class: 10
"""


def test_a_thinned_run_records_each_class_and_the_report_groups_them_by_training_images(experiment, tmp_path):
    """A train_imbalance run records every class's training images and test recall/F1 (consistent with its
    test accuracy); the report groups the classes by training images. A run finished before runs recorded
    this gets it on --resume, without training again."""
    import yaml

    from leafdoc.experiments import runner
    from leafdoc.experiments.recipe import parse_recipe

    recipe = parse_recipe(yaml.safe_load(IMBALANCED_RECIPE))
    data, out = experiment[0].parent / "datasets", tmp_path / "out"
    results = runner.run_experiment(recipe, data_root=data, out=out, quick=True)
    balanced, thinned = results["runs"]
    assert balanced["per_class"] is None
    pc = thinned["per_class"]
    assert sorted(pc) == sorted(COLOURS)
    assert sum(c["train"] for c in pc.values()) == thinned["train_images"] < balanced["train_images"]
    train = [pc[c]["train"] for c in results["data"]["classes"]]
    assert train == sorted(train, reverse=True) and train[0] >= 3 * train[-1]  # ratio 4, thinned in class order
    assert sum(c["test"] for c in pc.values()) == thinned["test"]["n"]
    correct = sum(round(c["recall"] * c["test"]) for c in pc.values())
    assert correct == round(thinned["test"]["accuracy"] * thinned["test"]["n"])  # the same predictions
    report = (out / "report.md").read_text()
    assert "## Per class, by training images" in report
    by_train = sorted(pc, key=lambda c: pc[c]["train"])  # 3 classes: a third is one class
    worst = min(sorted(pc), key=lambda c: pc[c]["recall"])
    cells = [f"{pc[c]['recall']:.1%}" for c in by_train]
    cells.append(f"{pc[worst]['recall']:.1%} ({worst}, {pc[worst]['train']} training images)")
    assert "| thinned | " + " | ".join(cells) + " |" in report.splitlines()
    assert f"| run | rarest 1 class ({pc[by_train[0]]['train']} training images) | middle 1 class (" in report

    record_path = out / "runs" / "thinned" / "run.json"
    record = json.loads(record_path.read_text())
    outcomes = record.pop("test_outcomes")
    assert len(outcomes["correct"]) == thinned["test"]["n"]
    del record["per_class"]  # as a run finished by an earlier leafdoc left it
    record_path.write_text(json.dumps(record))
    again = runner.run_experiment(recipe, data_root=data, out=out, quick=True, resume=True)
    assert again["reused"] == ["balanced", "thinned"]
    assert again["runs"][1]["per_class"] == pc  # computed again from the model folder, the same
    assert again["runs"][1]["test_outcomes"] == outcomes
    kept = json.loads(record_path.read_text())
    assert kept["per_class"] == pc and kept["test_outcomes"] == outcomes
    assert "Every run was reused from earlier invocations" in (out / "report.md").read_text()


SHARE_RECIPE = """\
name: tiny-share
title: Tiny learning curve
source: a test
data:
  path: leaves
base:
  backbone: baseline_cnn
  image_size: 16
  epochs: 1
  batch_size: 8
reference: all
runs:
  - name: half
    train_share: 0.5
  - name: all
quick:
  per_class: 12
"""


def test_a_share_run_trains_on_part_of_each_class_and_a_larger_share_adds_photos(experiment, tmp_path):
    """A train_share run trains on that share of the split's training photos (the rest are not in its model
    folder's split), scored on the same validation and test photos as the others; its row says so. Changing
    the share trains it again on --resume, and the larger share's photos include the smaller one's."""
    import yaml

    from leafdoc.experiments import runner
    from leafdoc.experiments.recipe import parse_recipe

    data, out = experiment[0].parent / "datasets", tmp_path / "out"
    results = runner.run_experiment(parse_recipe(yaml.safe_load(SHARE_RECIPE)), data_root=data, out=out, quick=True)
    half, full = results["runs"]
    splits = {name: json.loads((out / "runs" / name / "split.json").read_text()) for name in ("half", "all")}
    assert set(splits["half"]["train"]) < set(splits["all"]["train"])
    assert 0.4 <= len(splits["half"]["train"]) / len(splits["all"]["train"]) <= 0.6
    assert half["train_images"] == len(splits["half"]["train"]) and full["train_images"] == len(splits["all"]["train"])
    for part in ("val", "test"):
        assert splits["half"][part] == splits["all"][part]
    assert half["test"]["n"] == full["test"]["n"]
    report = (out / "report.md").read_text()
    row = next(line for line in report.splitlines() if line.startswith("| half | "))
    assert "train_share=0.5" in row and f"{half['train_images']} of {full['train_images']} training images" in row

    more = parse_recipe(yaml.safe_load(SHARE_RECIPE.replace("train_share: 0.5", "train_share: 0.75")))
    again = runner.run_experiment(more, data_root=data, out=out, quick=True, resume=True)
    assert again["reused"] == ["all"]  # the share changed: trained again
    three_quarters = json.loads((out / "runs" / "half" / "split.json").read_text())["train"]
    assert set(splits["half"]["train"]) < set(three_quarters) <= set(splits["all"]["train"])


SEARCH_RECIPE = """\
name: tiny-search
title: Tiny search
source: a test
data:
  path: leaves
base:
  backbone: baseline_cnn
  image_size: 16
  epochs: 3
  batch_size: 8
runs:
  - name: base
tune:
  from_run: base
  trials: 4
  prune_startup_trials: 1
  prune_warmup_epochs: 2
  space:
    learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}
quick:
  per_class: 8
  trials: 4
"""


def test_search_stops_trials_early_and_resume_continues_it_at_the_next_trial(experiment, tmp_path, monkeypatch):
    """A trial the pruner stops ends at that epoch (MLflow run KILLED, its folder deleted, its row marked);
    a search interrupted part-way is continued by `--resume` from Optuna's journal: only the missing
    trial trains, and the best so far stays the candidate. Optuna's own median rule is replaced by a
    scripted one (trial 2 stops at epoch 2) so the test does not depend on which trial happens to lag."""
    import optuna

    from leafdoc.experiments import runner, tracked
    from leafdoc.experiments.recipe import load_recipe

    class Scripted(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return trial.number == 2 and trial.last_step >= 2

    made = []
    monkeypatch.setattr(optuna.pruners, "MedianPruner", lambda **kw: made.append(kw) or Scripted())
    recipe_path = tmp_path / "search.yaml"
    recipe_path.write_text(SEARCH_RECIPE)
    recipe = load_recipe(str(recipe_path))
    data, out = experiment[0].parent / "datasets", tmp_path / "out"
    real, calls = tracked.train_tracked, []

    def stop_at_trial_3(exp, name, *args, **kwargs):
        calls.append(name)
        if name == "tuned-trial-003":
            raise KeyboardInterrupt
        return real(exp, name, *args, **kwargs)

    monkeypatch.setattr(tracked, "train_tracked", stop_at_trial_3)
    with pytest.raises(KeyboardInterrupt):
        runner.run_experiment(recipe, data_root=data, out=out, quick=True, resume=True)
    assert made == [{"n_startup_trials": 1, "n_warmup_steps": 2}]
    assert calls == ["base", "tuned-trial-000", "tuned-trial-001", "tuned-trial-002", "tuned-trial-003"]
    assert (out / "tune" / "journal.log").is_file() and not (out / "runs" / "tuned").exists()
    kept = sorted(p.name for p in (out / "tune").glob("trial-*"))
    assert len(kept) == 1 and kept[0] in {"trial-000", "trial-001"}  # only the best finished trial is kept
    partial = json.loads((out / "results.json").read_text())
    assert partial["pending"] == ["tuned"] and partial["progress"] == {"tuned": "3 of 4 trials finished"}
    assert "Part-way: tuned (3 of 4 trials finished)" in (out / "report.md").read_text()

    calls.clear()
    monkeypatch.setattr(tracked, "train_tracked", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    results = runner.run_experiment(recipe, data_root=data, out=out, quick=True, resume=True)
    assert calls == ["tuned-trial-004"]  # trial 3 failed when interrupted; one more makes four finished
    tuning = results["tuning"]
    rows = {r["trial"]: r for r in tuning["trials"]}
    assert sorted(rows) == [0, 1, 2, 4] and tuning["pruned"] == 1 and tuning["interrupted"] == [3]
    assert rows[2]["pruned_at"] == 2 and rows[2]["val_accuracy"] is None
    assert all(rows[n]["pruned_at"] is None and rows[n]["val_accuracy"] is not None for n in (0, 1, 4))
    assert tuning["best_trial"] in {0, 1, 4} and tuning["best_value"] == max(rows[n]["val_accuracy"] for n in (0, 1, 4))
    assert (out / "runs" / "tuned" / "card.json").is_file() and not (out / "tune").exists()
    # The model the search kept learned the colours (chance 1/3; 3 epochs, 8 photos a class): its validation
    # figure (blue photos filed under red are among them) and fresh photos it never saw (4 of 6 measured).
    tuned = json.loads((out / "runs" / "tuned" / "card.json").read_text())
    assert tuned["metrics"]["val"]["accuracy"] == pytest.approx(tuning["best_value"])
    fresh = _accuracy_on(out / "runs" / "tuned", data / "leaves-test")
    assert tuning["best_value"] >= 0.6 and fresh >= 4 / 6, (tuning["best_value"], fresh)

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=results["tracking_uri"])
    runs = {
        r.info.run_name: r
        for r in client.search_runs([client.get_experiment_by_name("tiny-search (quick)").experiment_id])
    }
    stopped = runs["tuned-trial-002"]
    assert stopped.info.status == "KILLED" and stopped.data.tags["leafdoc.pruned_at_epoch"] == "2"
    assert [m.step for m in client.get_metric_history(stopped.info.run_id, "val_accuracy")] == [1, 2]  # of 3
    assert "tuned-trial-003" not in runs  # interrupted before its training started
    searches = [r for r in runs.values() if r.info.run_name == "tuned (search)"]
    assert len(searches) == 1 and runs["tuned-trial-004"].data.tags["mlflow.parentRunId"] == searches[0].info.run_id
    report = (out / "report.md").read_text()
    assert "stopped at epoch 2" in report and "1 of 4 stopped" in report and "incomplete" not in report
    assert "Trial 3 did not finish: the search was interrupted during it" in report


def test_run_killed_mid_training_is_reported_part_way_and_continues_from_its_checkpoint(experiment, tmp_path):
    """`leafdoc experiment` killed (SIGTERM: a stopped container or session) during the second epoch of its
    second run: the report says how far that run got; `--resume` reuses the first run and goes on with the
    second at the epoch it reached (not the first); the MLflow run and the report carry all its epochs."""
    import sys

    from leafdoc.experiments import runner
    from leafdoc.experiments.recipe import load_recipe

    path = tmp_path / "runs.yaml"
    path.write_text(SEARCH_RECIPE.split("tune:")[0] + "  - name: longer\n    epochs: 8\nquick:\n  per_class: 8\n")
    data, out = experiment[0].parent / "datasets", tmp_path / "out"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "leafdoc.cli.main", "experiment", str(path), "--data", str(data), "--quick"]
    cmd += ["--out", "out", "--resume"]  # relative to the working folder, as a user types it
    code, seen = run_until_killed(cmd, "longer scratch epoch 2:", cwd=tmp_path, env=env)
    assert code == 130, seen  # as for Ctrl-C
    state = json.loads((out / "runs" / ".longer.checkpoint" / "state.json").read_text())
    assert 1 <= state["epoch"] < 8 and not (out / "runs" / "longer").exists()  # epoch 2 is logged, then saved
    partial = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in partial["runs"]] == ["base"] and partial["pending"] == ["longer"]
    assert partial["progress"] == {"longer": f"checkpoint after epoch {state['epoch']} of 8"}
    assert f"Part-way: longer (checkpoint after epoch {state['epoch']} of 8)" in (out / "report.md").read_text()

    events = []
    recipe = load_recipe(str(path))
    results = runner.run_experiment(recipe, data_root=data, out=out, quick=True, resume=True, on_event=events.append)
    texts = [e.text for e in events if isinstance(e, Message)]
    assert f"longer: continuing from its checkpoint after epoch {state['epoch']}" in texts
    epochs_run = [e.event.epoch for e in events if isinstance(e, InRun) and isinstance(e.event, Epoch)]
    assert epochs_run == list(range(state["epoch"] + 1, 9))
    assert results["reused"] == ["base"] and results["pending"] == [] and results["progress"] == {}
    longer = results["runs"][1]
    assert [h["epoch"] for h in longer["history"]] == list(range(1, 9))
    # its times count the epochs trained before the kill too, not only this invocation's
    card = json.loads((out / "runs" / "longer" / "card.json").read_text())
    assert card["train_seconds_before_resume"] == round(state["train_seconds"], 1) > 0
    epochs = sum(h["seconds"] for h in longer["history"])
    assert longer["wall_seconds"] >= longer["train_seconds"] >= epochs > state["train_seconds"]
    assert not (out / "runs" / ".longer.checkpoint").exists() and (out / "runs" / "longer" / "run.json").is_file()
    assert "incomplete" not in (out / "report.md").read_text()


def test_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path):
    from leafdoc.core.errors import ConfigError
    from leafdoc.experiments.recipe import parse_recipe
    from leafdoc.experiments.runner import run_experiment

    recipe = parse_recipe({"name": "x", "data": {"path": "leaves"}, "runs": [{"name": "a"}]})
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    with pytest.raises(ConfigError, match="not the folder of an earlier"):
        run_experiment(recipe, data_root=tmp_path, out=tmp_path / "mine")
    with pytest.raises(ConfigError, match="weights file"):
        run_experiment(recipe, data_root=tmp_path, out=tmp_path / "new", weights=str(tmp_path / "none.h5"))
    assert not (tmp_path / "new").exists()


def test_the_relative_tracking_uri_in_the_report_opens_the_store_from_the_report_folder(experiment, monkeypatch):
    from mlflow.tracking import MlflowClient

    out, _ = experiment
    report = (out / "report.md").read_text()
    uri = report.split("--backend-store-uri ")[1].split("`")[0]
    assert uri == "sqlite:///home/mlruns/mlflow.db"
    monkeypatch.chdir(out)
    assert MlflowClient(tracking_uri=uri).get_experiment_by_name("tiny-leaves (quick)") is not None


EXTRA_RECIPE = """\
name: tiny-extra
data:
  path: leaves
  extra: {path: extra}
base: {backbone: baseline_cnn, image_size: 16, epochs: 2, batch_size: 8, patience: 20}
runs:
  - name: field
    with_extra: true
tune:
  name: field-tuned
  from_run: field
  trials: 1
  prune: false
  space:
    learning_rate: {low: 1.0e-3, high: 1.0e-2, log: true}
quick: {image_size: 16, epochs: 2, trials: 1}
"""


def test_a_search_from_a_run_with_extra_photos_trains_on_them_too(tmp_path):
    """`tune.from_run` names a run that trains on data.extra's training half: every trial, and so the tuned
    model, trains on those photos too (it used to train on the main folder alone and say nothing)."""
    import hashlib

    data = tmp_path / "datasets"
    colour_folder(data / "leaves", 24)
    colour_folder(data / "extra", 10, seed0=700)
    extra_train = {
        hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (data / "extra").rglob("*.png")
        if hashlib.sha256(p.read_bytes()).hexdigest()[0] in "01234567"
    }
    recipe = tmp_path / "extra.yaml"
    recipe.write_text(EXTRA_RECIPE)
    out = tmp_path / "out"
    from leafdoc.cli.main import app

    result = CliRunner().invoke(app, ["experiment", str(recipe), "--data", str(data), "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    runs = {r["name"]: r for r in json.loads((out / "results.json").read_text())["runs"]}
    assert extra_train and runs["field-tuned"]["with_extra"]
    for name in ("field", "field-tuned"):
        split = json.loads((out / "runs" / name / "split.json").read_text())
        assert extra_train <= set(split["train"]), name
    assert runs["field-tuned"]["train_images"] == runs["field"]["train_images"]
