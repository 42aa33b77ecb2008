"""Every shipped recipe in its quick mode, end to end on the shared datasets: the runs train, the
search and the pipeline timing run where the recipe has them, the report names no run as pending, and
the runs that start from ImageNet weights learn. Quick figures are not results (a few dozen images, a few
epochs); this checks each recipe as shipped, which the tiny recipe of test_experiments.py does not."""

from __future__ import annotations

import json

import pytest
from tests.conftest import SHARED

from leafdoc.experiments.recipe import available_recipes, load_recipe
from leafdoc.experiments.stream import Progress

pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared datasets not found at {SHARED}")


@pytest.mark.parametrize("name", available_recipes())
def test_shipped_recipe_runs_in_quick_mode(name, tmp_path):
    from leafdoc.experiments.runner import run_experiment

    recipe = load_recipe(name)
    events = []
    results = run_experiment(recipe, data_root=SHARED, out=tmp_path / name, quick=True, on_event=events.append)
    steps = {e.what.split()[0] for e in events if isinstance(e, Progress) and e.done == e.total}
    assert {"ingesting", "caching"} <= steps, steps  # the command's progress bar is fed
    assert results["pending"] == [] and results["mode"] == "quick" and results["weights"] == recipe.weights
    names = [r["name"] for r in results["runs"]]
    assert names[: len(recipe.runs)] == [r.name for r in recipe.runs]
    report = (tmp_path / name / "report.md").read_text()
    assert "Quick mode" in report and "incomplete" not in report
    rows: dict[str, str] = {}  # each run's row of the comparison table, the first table that names it
    for line in report.splitlines():
        if line.startswith("| "):
            rows.setdefault(line.split(" | ")[0].removeprefix("| "), line)
    specs = {spec.name: spec for spec in recipe.runs}
    pretrained = []  # (right, photos) of each run that starts from ImageNet weights
    for run in results["runs"]:
        folder = tmp_path / name / "runs" / run["name"]
        assert json.loads((folder / "run.json").read_text())["name"] == run["name"]
        # The model trained is the one the recipe describes (quick settings), continuing where it says.
        card = json.loads((folder / "card.json").read_text())
        if run["name"] in specs:
            cfg = recipe.config(specs[run["name"]], quick=True)
            for key in ("backbone", "image_size", "head_units", "morphology", "augment", "class_weights", "epochs"):
                assert card["training"][key] == getattr(cfg, key), (run["name"], key)
            assert bool(card.get("warm_start")) == bool(specs[run["name"]].init_from), run["name"]
        # Its figures come from one scoring of its test split, and the report prints those figures.
        correct = run["test_outcomes"]["correct"]
        assert len(correct) == run["test"]["n"] == results["data"]["split"]["test"] and run["epochs"] >= 1
        assert run["test"]["accuracy"] == pytest.approx(correct.count("1") / len(correct))
        assert f" | {run['test']['accuracy']:.1%} (" in rows[run["name"]]
        assert f" | {run['val']['accuracy']:.1%} | " in rows[run["name"]]
        assert card["metrics"]["test"]["accuracy"] == pytest.approx(run["test"]["accuracy"])
        assert card["metrics"]["val"]["accuracy"] == pytest.approx(run["val"]["accuracy"])
        if card["weights"] == "imagenet":
            scored = run["external_test"] if recipe.data.test_path else run["test"]
            pretrained.append((round(scored["accuracy"] * scored["n"]), scored["n"]))
    # Quick figures are small, not noise: the runs that start from ImageNet weights (every recipe's default)
    # learn far above chance, their test photos pooled (measured 74-90%); a broken weights loader, frozen
    # phase or head answers at chance.
    assert recipe.weights == "imagenet" and pretrained
    chance = 1 / len(results["data"]["classes"])
    right, n = map(sum, zip(*pretrained, strict=True))
    assert right / n >= chance + 0.2, (pretrained, chance)
    if recipe.tune:
        assert results["tuning"]["trials"] and recipe.tune.name in names
    if recipe.pipeline:
        pipe = results["pipeline"]
        assert pipe["speedup"] > 0 and len(pipe["cached_seconds"]) == len(pipe["plain_seconds"]) >= 2
    if recipe.keep_best:  # the run with the best validation accuracy, copied whole
        val = {r["name"]: r["val"]["accuracy"] for r in results["runs"]}
        assert val[results["best"]["run"]] == max(val.values())
        chosen = tmp_path / name / "runs" / results["best"]["run"] / "model.onnx"
        assert (tmp_path / name / "best" / "model.onnx").read_bytes() == chosen.read_bytes()
    if recipe.data.test_path:
        n_classes = len(results["data"]["classes"])
        assert results["data"]["test_folder_images"] == n_classes * recipe.quick.test_per_class
        for r in results["runs"]:
            assert r["external_test"]["n"] == results["data"]["test_folder_images"]
            assert f" | {r['external_test']['accuracy']:.1%} | " in rows[r["name"]]
    split_train = results["data"]["split"]["train"]
    for spec in recipe.runs:  # a thinned training split is said in its row, and is not "the split"
        run = next(r for r in results["runs"] if r["name"] == spec.name)
        if spec.train_imbalance:
            assert run["train_images"] < split_train
            assert f"{run['train_images']} of {split_train} training images" in report
            assert sum(c["train"] for c in run["per_class"].values()) == run["train_images"]
            assert "## Per class, by training images" in report and f"| {run['name']} | " in report
        elif spec.train_share:
            assert run["train_images"] < split_train
            assert f"{run['train_images']} of {split_train} training images" in rows[run["name"]]
        elif spec.with_extra:
            assert run["train_images"] == split_train + results["data"]["extra_training_images"]
        else:
            assert run["train_images"] == split_train
    if any(spec.train_share for spec in recipe.runs):  # a learning curve: its fit, through every run's point
        assert "## Accuracy against training photos" in report
        for run in results["runs"]:
            per_class = run["train_images"] / len(results["data"]["classes"])
            assert f"| {run['name']} | {per_class:.1f} | {run['test']['accuracy']:.1%} | " in report
    if recipe.data.extra:
        check_extra_source(recipe, results, tmp_path / name, rows)


def check_extra_source(recipe, results, out, rows) -> None:
    """A recipe with a training-only extra source (field-corn-learning): the 'test folder' figures are the
    held-out half's (sha256 8-f, never trained on), scored again here; the runs with and without the extra
    photos have the same validation and test split, and the one with them trained on the other half too."""
    import hashlib

    from leafdoc.experiments.data import select
    from leafdoc.inference.predictor import Predictor

    sel = select(recipe, SHARED, quick=True)
    held = {hashlib.sha256(p.read_bytes()).hexdigest(): (p, c) for p, c in sel.test_files}
    extra = sel.extra_shas()
    assert held and all(s[0] in "89abcdef" for s in held) and all(s[0] in "01234567" for s in extra)
    assert results["data"]["test_folder_images"] == len(held) and results["data"]["extra_training_images"] == len(extra)
    splits = {}
    for r in results["runs"]:
        split = json.loads((out / "runs" / r["name"] / "split.json").read_text())
        splits[r["name"]] = split
        assert not set(held) & {s for part in ("train", "val", "test") for s in split[part]}
        assert (set(split["train"]) >= extra) == r["with_extra"] and not extra & set(split["val"] + split["test"])
        # The held-out figures are this model's on the held-out photos, and the report prints them.
        predictor = Predictor(out / "runs" / r["name"])
        files = list(held.values())
        preds = predictor.predict_files([p for p, _ in files])
        accuracy = sum(pr.top_k[0].label == c for pr, (_, c) in zip(preds, files, strict=True)) / len(files)
        answered = sum(not pr.abstained for pr in preds) / len(files)
        ext = r["external_test"]
        assert ext["n"] == len(files) and ext["accuracy"] == pytest.approx(accuracy)
        assert ext["answered"] == pytest.approx(answered)
        assert f" | {ext['accuracy']:.1%} | " in rows[r["name"]]
        report = (out / "report.md").read_text()
        trained = "yes" if r["with_extra"] else "no"
        assert f"| {r['name']} | {trained} | {accuracy:.1%} | {answered:.1%} | " in report
    lab, field = (next(splits[r["name"]] for r in results["runs"] if r["with_extra"] is w) for w in (False, True))
    assert lab["val"] == field["val"] and lab["test"] == field["test"]
    assert set(field["train"]) == set(lab["train"]) | extra
