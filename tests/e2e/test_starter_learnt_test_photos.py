"""A model started from the starter's network and scored on PlantVillage photos is scored partly on photos that
network learnt (the starter learnt nearly all of shared PlantVillage's): `train` and `evaluate` must say how many,
and not call its test figures "photos no training saw" (found by the repro review of 2026-12-01: 25 of a 3-class
potato model's 27 test photos were the starter's training or validation photos, and it scored 100%)."""

from __future__ import annotations

import json

from tests.conftest import REPO, make_leaf_folder
from tests.e2e.test_cli import leafdoc

TINY_STARTER = ("--weights", "starter", "--image-size", "32", "--epochs", "2", "--no-augment", "--batch-size", "8")


def starter_learnt() -> set[str]:
    split = json.loads((REPO / "models" / "starter" / "split.json").read_text())
    return set(split["train"]) | set(split["val"])


def test_train_and_evaluate_say_how_many_test_photos_the_starter_learnt(tmp_path):
    data = make_leaf_folder(tmp_path / "leaves", per_class=10)
    out, home = tmp_path / "model", tmp_path / "home"
    r = leafdoc("train", "--data", data, "--out", out, *TINY_STARTER, home=home)
    assert r.returncode == 0, r.stderr
    test = json.loads((out / "split.json").read_text())["test"]
    seen = len(set(test) & starter_learnt())
    assert seen > 0, "shared PlantVillage's photos are nearly all the starter's: some test photo must be"

    card = json.loads((out / "card.json").read_text())
    assert card["dataset"]["test_learnt_by_start"] == seen
    said = " ".join((r.stdout + r.stderr).split())
    assert f"{seen} of the {len(test)} test photos are among the photos the network this model started from" in said
    assert "the test figures are on photos no training saw" not in said

    r = leafdoc("evaluate", out, "--data", data, "--split", "test", "--json", home=home)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["learnt_by_start"] == {"photos": seen, "of": result["n"]}
    report = tmp_path / "report"
    r = leafdoc("evaluate", out, "--data", data, "--split", "test", "--report", report, home=home)
    assert r.returncode == 0, r.stderr
    assert f"{seen} of the {result['n']} photos are among those the network this model started from" in " ".join(
        (r.stdout + r.stderr).split()
    )
    md = (report / "report.md").read_text()
    assert f"**Warning:** {seen} of the {result['n']} photos are among those the network" in md


def test_a_model_from_imagenet_weights_is_not_warned(tmp_path, tiny_model):
    data = make_leaf_folder(tmp_path / "leaves")
    r = leafdoc("evaluate", tiny_model, "--data", data, "--split", "test", "--json", home=tmp_path / "home")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["learnt_by_start"] is None
