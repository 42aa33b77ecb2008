"""Recipes: every shipped recipe parses in both modes; a bad recipe fails before any training, with a
message that names the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from leafdoc.core.errors import ConfigError
from leafdoc.experiments.recipe import RECIPES_DIR, available_recipes, find_recipe, load_recipe, parse_recipe

SHIPPED = ("cifar10-mobilenetv2", "flowers-resnet50", "leaves-baseline-vs-transfer", "plantvillage-mobilenetv2")

MINIMAL = """\
name: mini
data: {path: plantvillage}
base: {image_size: 32, epochs: 2}
runs:
  - name: a
  - name: b
    init_from: a
    learning_rate: 1.0e-4
"""


def write(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_four_recipes_ship_with_imagenet_weights_and_parse_in_both_modes():
    """Each recipe starts from EfficientNet-Lite0's ImageNet weights (the ones leafdoc has offline); its basic
    CNN, if it has one, trains from scratch; `--weights none` trains the source's network from scratch."""
    assert set(SHIPPED) <= set(available_recipes())
    for name in SHIPPED:
        recipe = load_recipe(name)
        assert recipe.name == name and recipe.weights == "imagenet", name
        for quick in (False, True):
            configs = [recipe.config(run, quick=quick) for run in recipe.runs]
            for c in configs:
                assert (c.backbone, c.weights) in {("efficientnet_lite0", "imagenet"), ("baseline_cnn", "none")}
            scratch = [recipe.config(run, quick=quick, weights="none") for run in recipe.runs]
            assert all(c.weights == "none" and c.backbone != "efficientnet_lite0" for c in scratch), name
        quick_sizes = {recipe.config(run, quick=True).image_size for run in recipe.runs}
        assert max(quick_sizes) <= 64, f"{name}: quick mode must stay small"


def test_weights_none_trains_what_the_committed_from_scratch_reports_trained():
    """docs/experiments/NAME/ holds each recipe's full run from scratch (from before leafdoc had ImageNet
    weights); `--weights none` must still train every one of those runs with the same settings, or the README
    would quote figures the recipe no longer makes."""
    import json

    docs = Path(__file__).resolve().parents[2] / "docs" / "experiments"
    for name in SHIPPED:
        recipe = load_recipe(name)
        results = json.loads((docs / name / "results.json").read_text())
        assert results["weights"] == "none" and results["mode"] == "full", name
        specs = {run.name: run for run in recipe.runs}
        for run in results["runs"]:
            if run["name"] not in specs:  # the search's winner
                continue
            now = recipe.config(specs[run["name"]], quick=False, weights="none").model_dump()
            then = run["settings"]
            differs = {k: (then[k], now[k]) for k in then.keys() & now.keys() if then[k] != now[k]}
            assert not differs, (name, run["name"], differs)


def test_shipped_recipes_say_what_the_source_used(tmp_path):
    for name in SHIPPED:
        text = find_recipe(name).read_text()
        assert "weights: imagenet" in text, f"{name}: say that the source used ImageNet weights"
        assert load_recipe(name).source.strip(), name


def test_cifar_stages_continue_and_end_fine_tuning_the_whole_network():
    recipe = load_recipe("cifar10-mobilenetv2")
    assert [r.init_from for r in recipe.runs] == [None, "frozen-5", "frozen-15", "extra-head"]
    assert recipe.data.test_path == "cifar10/test"
    last = recipe.runs[-1]
    pretrained = recipe.config(last, quick=False, weights="imagenet")
    assert pretrained.fine_tune_fraction == 1.0 and pretrained.base_learning_rate / 10 == pytest.approx(1e-5)
    assert pretrained.head_units == [256]
    first = recipe.config(recipe.runs[0], quick=False, weights="imagenet")
    assert first.learning_rate == pytest.approx(1e-4) and first.epochs == 5 and first.fine_tune_epochs == 0


def test_layers_override_in_order(tmp_path):
    """base < run < scratch < run.scratch < quick < run.quick; weights only where they apply."""
    recipe = parse_recipe(
        {
            "name": "layers",
            "data": {"path": "x"},
            "base": {"epochs": 3, "image_size": 96},
            "scratch": {"epochs": 7},
            "quick": {"image_size": 32, "per_class": 5},
            "runs": [
                {"name": "a", "epochs": 4, "scratch": {"learning_rate": 0.01}, "quick": {"image_size": 24}},
                {"name": "cnn", "backbone": "baseline_cnn"},
            ],
        }
    )
    a, cnn = recipe.runs
    assert recipe.config(a, quick=False).epochs == 7  # scratch beats the run
    assert recipe.config(a, quick=False, weights="imagenet").epochs == 4  # no scratch layer with weights
    assert recipe.config(a, quick=False, weights="imagenet").learning_rate is None
    assert recipe.config(a, quick=False).learning_rate == 0.01
    assert recipe.config(a, quick=True).image_size == 24
    assert recipe.config(cnn, quick=True).image_size == 32
    assert recipe.config(cnn, quick=False, weights="imagenet").weights == "none"  # the basic CNN has none


def test_toml_recipes_work_too(tmp_path):
    path = write(
        tmp_path,
        'name = "t"\n[data]\npath = "flowers"\n[[runs]]\nname = "a"\nepochs = 2\n',
        "t.toml",
    )
    recipe = load_recipe(path)
    assert recipe.config(recipe.runs[0], quick=False).epochs == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            MINIMAL.replace("learning_rate: 1.0e-4", "learnig_rate: 1.0e-4"),
            ["runs[1]", "learnig_rate", "learning_rate"],
        ),
        (MINIMAL.replace("learning_rate: 1.0e-4", "learning_rate: fast"), ["runs[1] (b).learning_rate", "fast"]),
        (MINIMAL.replace("image_size: 32", "image_size: 8"), ["base.image_size", "greater than or equal to 16"]),
        (MINIMAL.replace("init_from: a", "init_from: z"), ["runs[1] (b)", "init_from 'z'", "earlier runs: a"]),
        (MINIMAL.replace("- name: b", "- name: a"), ["used twice"]),
        (MINIMAL.replace("data: {path: plantvillage}\n", ""), ["data", "Field required"]),
        (MINIMAL + "tune:\n  space: {epochs: {low: 1, high: 5}}\n", ["tune.space", "cannot tune 'epochs'"]),
        (MINIMAL + "tune:\n  space: {dropout: {low: 0.5, high: 0.1}}\n", ["tune.space.dropout", "low (0.5)"]),
        (MINIMAL.replace("epochs: 2}", "epochs: 2, weights: imagenet}"), ["base", "`weights` is set once"]),
        (MINIMAL + "pipeline: {run: nope}\n", ["pipeline.run", "'nope' is not one of the runs"]),
        (MINIMAL + "quick: {per_class: 1}\n", ["quick.per_class", "greater than or equal to 3"]),
        (MINIMAL.replace("name: mini", "name: mini\ncolour: red"), ["colour", "Extra inputs are not permitted"]),
        (MINIMAL + "    with_extra: true\n", ["runs[1] (b): with_extra needs data.extra"]),
        (
            MINIMAL.replace("{path: plantvillage}", "{path: pv, test_path: t, extra: {path: field-corn}}"),
            ["data", "held-out half is the test folder"],
        ),
        ("name: [oops\n", ["not valid YAML"]),
        ("- just\n- a list\n", ["a recipe is a mapping"]),
    ],
)
def test_bad_recipes_name_the_file_and_the_field(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_recipe(path)
    message = err.value.message
    assert str(path) in message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_quick_values_are_checked_too(tmp_path):
    """A bad value that only the quick mode uses fails at load time, not after the full runs."""
    path = write(tmp_path, MINIMAL + "    quick: {batch_size: 0}\n")
    with pytest.raises(ConfigError, match=r"runs\[1\] \(b\)\.quick\.batch_size"):
        load_recipe(path)


def test_unknown_recipe_lists_the_shipped_ones():
    with pytest.raises(ConfigError) as err:
        load_recipe("no-such-recipe")
    assert "no-such-recipe" in err.value.message
    assert "plantvillage-mobilenetv2" in err.value.hint


def test_recipes_folder_is_in_the_repository():
    assert RECIPES_DIR.is_dir() and (RECIPES_DIR / "README.md").is_file()


def test_quick_mode_never_turns_on_a_phase_the_run_leaves_out(tmp_path):
    """`--quick` shortens runs; it does not change what a run is. The "transfer" run of leaves-baseline-vs-transfer
    ("ImageNet base frozen", fine_tune_epochs 0) fine-tuned for an epoch in quick mode (the recipe's `quick:` says
    fine_tune_epochs 1, for the fine-tune run), and MLflow recorded fine_tune_epochs=1."""
    recipe = load_recipe(find_recipe("leaves-baseline-vs-transfer"))
    transfer, fine_tune = recipe.run("transfer"), recipe.run("fine-tune")
    assert recipe.config(transfer, quick=False, weights="imagenet").fine_tune_epochs == 0
    assert recipe.config(transfer, quick=True, weights="imagenet").fine_tune_epochs == 0
    # The run that fine-tunes still does, shortened to the quick layer's one epoch (10 in full).
    assert recipe.config(fine_tune, quick=False, weights="imagenet").fine_tune_epochs == 10
    assert recipe.config(fine_tune, quick=True, weights="imagenet").fine_tune_epochs == 1

    # The same for runs that leave the phase out by the base's 0, whichever quick layer says more (the recipe's or the
    # run's own); a quick layer only shortens it (3 where the run has 6, 2 kept), the other settings apply as written.
    path = write(
        tmp_path,
        MINIMAL.replace("base: {image_size: 32, epochs: 2}", "base: {image_size: 96, epochs: 2, fine_tune_epochs: 0}")
        + "  - name: c\n    fine_tune_epochs: 2\n  - name: d\n    quick: {fine_tune_epochs: 4}\n"
        + "  - name: e\n    fine_tune_epochs: 6\n"
        + "quick: {fine_tune_epochs: 3, image_size: 32, epochs: 1}\n",
    )
    mini = load_recipe(path)
    quick = {run.name: mini.config(run, quick=True) for run in mini.runs}
    assert {name: cfg.fine_tune_epochs for name, cfg in quick.items()} == {"a": 0, "b": 0, "c": 2, "d": 0, "e": 3}
    assert {cfg.image_size for cfg in quick.values()} == {32} and {cfg.epochs for cfg in quick.values()} == {1}
