"""The model folder's card: typed, and tolerant of the cards already written (the starter's, older ones)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from leafdoc.core.errors import ModelError
from leafdoc.modelfolder import ModelCard, check_model_dir, read_card, read_split, split_parts, write_card

STARTER = Path(__file__).resolve().parents[2] / "models" / "starter"

pytestmark = pytest.mark.unit


def test_the_starters_card_reads_typed_and_writes_back_unchanged(tmp_path):
    raw = json.loads((STARTER / "card.json").read_text())
    card = read_card(STARTER)
    assert card.input.size == raw["input"]["size"] and card.input.resize == raw["input"]["resize"]
    labels = json.loads((STARTER / "labels.json").read_text())
    assert card.dataset.split == raw["dataset"]["split"] and card.n_classes == len(labels) == 34
    assert card.metrics.test["accuracy"] == raw["metrics"]["test"]["accuracy"]
    assert card.ood["threshold"] == raw["ood"]["threshold"] and card.field == raw["field"]
    write_card(tmp_path, card)
    assert json.loads((tmp_path / "card.json").read_text()) == raw  # nothing lost, nothing added


def test_an_older_card_without_the_checks_or_metrics_loads_and_stays_without_them(tmp_path):
    old = {"format": 1, "backbone": "mobilenet_v2", "input": {"size": 96}, "n_classes": 3, "made_by": "0.0.1"}
    (tmp_path / "card.json").write_text(json.dumps(old))
    card = read_card(tmp_path)
    assert card.ood is None and card.field is None and card.metrics is None and card.abstain is None
    assert card.input.morphology == "none" and card.input.morph_kernel == 3  # the defaults of their time
    card.abstain = {"min_confidence": 0.6}
    write_card(tmp_path, card)
    again = json.loads((tmp_path / "card.json").read_text())
    assert again == {**old, "abstain": {"min_confidence": 0.6}}  # unknown keys kept, no null sections
    card.abstain = None
    write_card(tmp_path, card)
    assert "abstain" not in json.loads((tmp_path / "card.json").read_text())


@pytest.mark.parametrize(
    ("text", "said"),
    [("{not json", "cannot be read as JSON"), ('{"input": {"size": "big"}}', "input.size"), ("[1, 2]", "JSON object")],
)
def test_a_broken_card_is_a_model_error_naming_the_file(tmp_path, text, said):
    (tmp_path / "card.json").write_text(text)
    with pytest.raises(ModelError) as err:
        read_card(tmp_path)
    assert str(tmp_path / "card.json") in err.value.message and said in err.value.message


def test_a_folder_missing_files_names_them(tmp_path):
    shutil.copy(STARTER / "card.json", tmp_path / "card.json")
    with pytest.raises(ModelError) as err:
        check_model_dir(tmp_path)
    assert "missing model.onnx, labels.json" in err.value.message


def test_a_folder_of_photos_is_said_not_to_be_a_model_folder(tmp_path):
    """`leafdoc predict PHOTO_FOLDER ...` said "Copy the whole model folder again, or re-train it"."""
    from typer.testing import CliRunner

    from leafdoc.cli.main import app

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.jpg", "b.JPG", "notes.txt"):
        (photos / name).write_bytes(b"x")
    with pytest.raises(ModelError) as err:
        check_model_dir(photos)
    said = f"{err.value.message} {err.value.hint}"
    assert f"{photos}: not a model folder (no model.onnx or card.json); it holds 2 photos." in said
    assert "leafdoc train --out" in said and "leafdoc predict MODEL_DIR PHOTO..." in said
    assert "Copy the whole model folder again" not in said
    result = CliRunner().invoke(app, ["predict", str(photos), str(photos / "a.jpg")])
    assert result.exit_code != 0 and "not a model folder" in result.exception.message


def test_a_card_built_in_code_writes_only_what_was_given():
    card = ModelCard(backbone="baseline_cnn", input={"size": 32})
    assert card.to_dict() == {"backbone": "baseline_cnn", "input": {"size": 32}}


def test_the_starters_split_reads_as_parts_of_each_photo():
    split = read_split(STARTER)
    parts = split_parts(split)
    assert len(parts) == sum(len(split[p]) for p in ("train", "val", "test"))  # each photo in one part
    assert sum(1 for part in parts.values() if part == "test") == len(split["test"]) == 5221


@pytest.mark.parametrize(
    ("text", "said"),
    [(None, "no such file"), ("{not json", "cannot be read as JSON"), ('{"train": "abc"}', "not a split")],
)
def test_a_broken_split_is_a_model_error_naming_the_file(tmp_path, text, said):
    if text is not None:
        (tmp_path / "split.json").write_text(text)
    with pytest.raises(ModelError) as info:
        read_split(tmp_path)
    assert str(tmp_path / "split.json") in str(info.value) and said in str(info.value)
