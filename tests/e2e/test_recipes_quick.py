"""Every shipped recipe in its quick mode, end to end on the shared datasets: the runs train, the
search and the pipeline timing run where the recipe has them, and the report names no run as pending.
Quick figures are not results (a few dozen images, one or two epochs); this checks the plumbing of
each recipe as shipped, which the tiny recipe of test_experiments.py does not."""

from __future__ import annotations

import json

import pytest
from tests.conftest import SHARED

from leafdoc.experiments.recipe import available_recipes, load_recipe

pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared datasets not found at {SHARED}")


@pytest.mark.parametrize("name", available_recipes())
def test_shipped_recipe_runs_in_quick_mode(name, tmp_path):
    from leafdoc.experiments.runner import run_experiment

    recipe = load_recipe(name)
    events = []
    results = run_experiment(recipe, data_root=SHARED, out=tmp_path / name, quick=True, on_event=events.append)
    steps = {e["what"].split()[0] for e in events if e["event"] == "progress" and e["done"] == e["total"]}
    assert {"ingesting", "caching"} <= steps, steps  # the command's progress bar is fed
    assert results["pending"] == [] and results["mode"] == "quick" and results["weights"] == "none"
    names = [r["name"] for r in results["runs"]]
    assert names[: len(recipe.runs)] == [r.name for r in recipe.runs]
    for run in results["runs"]:
        assert 0.0 <= run["test"]["accuracy"] <= 1.0 and run["epochs"] >= 1
        assert (tmp_path / name / "runs" / run["name"] / "model.onnx").is_file()
        assert json.loads((tmp_path / name / "runs" / run["name"] / "run.json").read_text())["name"] == run["name"]
    if recipe.tune:
        assert results["tuning"]["trials"] and recipe.tune.name in names
    if recipe.pipeline:
        assert results["pipeline"]["speedup"] > 0
    if recipe.keep_best:
        assert (tmp_path / name / "best" / "model.onnx").is_file()
    if recipe.data.test_path:
        assert all(0.0 <= r["external_test"]["accuracy"] <= 1.0 for r in results["runs"])
    report = (tmp_path / name / "report.md").read_text()
    assert "Quick mode" in report and "incomplete" not in report
    split_train = results["data"]["split"]["train"]
    for spec in recipe.runs:  # a thinned training split is said in its row, and is not "the split"
        run = next(r for r in results["runs"] if r["name"] == spec.name)
        if spec.train_imbalance:
            assert run["train_images"] < split_train
            assert f"{run['train_images']} of {split_train} training images" in report
            assert sum(c["train"] for c in run["per_class"].values()) == run["train_images"]
            assert "## Per class, by training images" in report and f"| {run['name']} | " in report
        else:
            assert run["train_images"] == split_train
