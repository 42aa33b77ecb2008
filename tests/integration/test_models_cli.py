"""`leafdoc models list` and `leafdoc models add FOLDER [--promote]` (cli/models.py): a data home keeps serving the
versions it has, so an install seeded with an older starter takes the newer one only when it is added; `serve` and
`models list` say when the shipped starter is not in the registry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leafdoc.cli.main import app
from leafdoc.core.settings import Settings
from leafdoc.lifecycle.workspace import Workspace
from leafdoc.model_versions import starter_model_dir
from leafdoc.service import serving

REPO = Path(__file__).resolve().parents[2]
PHOTO = REPO / "examples" / "tomato_early_blight.jpg"


def models(*args: str) -> tuple[int, str]:
    """Exit code, and what was printed or the error's message (main() prints it: cli/main.py)."""
    result = CliRunner().invoke(app, ["models", *args])
    return result.exit_code, result.output + (str(result.exception) if result.exception else "")


@pytest.fixture
def old_home(tmp_path, tiny_model, monkeypatch) -> Settings:
    """A data home seeded from a starter folder that is not the one shipped now (the tiny model in a folder named
    `starter`), as an install from before an upgrade is."""
    old = shutil.copytree(tiny_model, tmp_path / "old" / "starter")
    monkeypatch.setenv("LEAFDOC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LEAFDOC_MODEL_DIR", str(old))
    s = Settings.load()
    s.ensure_home()
    with Workspace.open(s) as ws:
        assert ws.registry.seed() == 1
    monkeypatch.delenv("LEAFDOC_MODEL_DIR")
    return Settings.load()


def served_label(settings: Settings) -> tuple[int, str]:
    """The version a fresh worker serves and its label for the example photo."""
    with Workspace.open(settings) as ws:
        holder = serving.ModelHolder(settings, ws.registry)
        got = serving.predict_bytes(holder, PHOTO.read_bytes(), "photo.jpg", 1)
    return got.model_version, got.label


def test_an_old_home_is_told_of_the_new_starter_and_serves_it_once_added(old_home, monkeypatch):
    code, text = models("list", "--json")
    listed = json.loads(text)
    assert code == 0 and listed["serving"] == 1 and [v["source"][:5] for v in listed["versions"]] == ["seed:"]
    assert f"leafdoc models add {starter_model_dir()} --promote" in listed["hint"]

    code, text = models("add", str(starter_model_dir()), "--json")
    added = json.loads(text)
    assert code == 0 and added.pop("notes") == [
        "Not compared with version 1: this data home does not hold its test photos (dataset starter v1), so "
        f"neither model's figures on them are known. `leafdoc evaluate {starter_model_dir()} --data DIR` scores it on "
        "a folder of photos."
    ]  # said: with nothing else, "version 2 serves from now on" read as if the two had been compared
    assert added == {"version": 2, "added": True, "serving": 1, "promoted": False}
    assert json.loads(models("list", "--json")[1])["hint"] is None  # the shipped starter is in the registry now

    monkeypatch.setenv("LEAFDOC_MODEL_CHECK_SECONDS", "2.5")
    code, text = models("add", str(starter_model_dir()), "--promote")
    assert code == 0 and "already in the registry as model version 2" in text and "version 2 serves" in text
    # How soon a running server takes it up: the setting's value (it printed only the setting's name)
    assert "takes it up within 2.5 s (LEAFDOC_MODEL_CHECK_SECONDS)" in " ".join(text.split()), text
    listed = json.loads(models("list", "--json")[1])
    assert listed["serving"] == 2 and [v["status"] for v in listed["versions"]] == ["archived", "serving"]

    # What a worker serves from now on: the starter's answer for the example photo, not the tiny model's.
    assert served_label(old_home) == (2, "Tomato___Early_blight")
    code, text = models("list")
    assert code == 0 and "added:" in text and "not in the registry" not in text


def test_a_folder_the_service_could_not_serve_is_refused_and_nothing_is_added(old_home, tiny_model, tmp_path):
    broken = shutil.copytree(tiny_model, tmp_path / "broken")
    (broken / "model.onnx").write_bytes((broken / "model.onnx").read_bytes()[:5000])  # cut short in a copy
    code, text = models("add", str(broken), "--promote")
    assert code == 1 and "broken" in text and "model.onnx" in text, text
    missing = shutil.copytree(tiny_model, tmp_path / "no-labels")
    (missing / "labels.json").unlink()
    code, text = models("add", str(missing))
    assert code == 1 and "missing labels.json" in text, text
    listed = json.loads(models("list", "--json")[1])
    assert [v["version"] for v in listed["versions"]] == [1] and listed["serving"] == 1


def test_serve_registers_the_shipped_starter_as_a_candidate_once_and_serves_what_it_served(old_home):
    from leafdoc.service.run import offer_shipped_starter

    with Workspace.open(old_home) as ws:
        registry = ws.registry
        said = offer_shipped_starter(registry)
        assert said and "registered as version 2, a candidate" in said and "POST /v1/models/2/promote" in said, said
        assert offer_shipped_starter(registry) is None  # once: the shipped starter is in the registry now
        assert registry.serving().version == 1 and registry.holding(starter_model_dir()) == 2
        assert registry.get(2).status == "candidate" and "promote it to serve it" in registry.get(2).promotion["reason"]
    code, text = models("add", str(starter_model_dir()), "--promote", "--json")
    promoted = json.loads(text)
    assert code == 0 and [n.split(":")[0] for n in promoted.pop("notes")] == ["Not compared with version 1"]
    assert promoted == {"version": 2, "added": False, "serving": 2, "promoted": True}


def test_promote_and_rollback_switch_what_a_worker_serves_and_refuse_what_could_not_serve(old_home, tmp_path):
    assert models("add", str(starter_model_dir()), "--json")[0] == 0  # version 2, a candidate
    tiny = served_label(old_home)
    assert tiny[0] == 1

    # A version whose files on this machine were damaged is made again from the store (its files' sha256 are
    # checked); one whose stored file is damaged too is refused before it serves, and nothing changes.
    with Workspace.open(old_home) as ws:  # the version's files on this machine, as a worker finds them
        onnx = ws.registry.local_dir(2) / "model.onnx"
        blob = ws.registry.store._path(ws.registry.get(2).files["model.onnx"])
    good = onnx.read_bytes()
    onnx.write_bytes(good[:5000])
    blob.chmod(0o644)
    blob.write_bytes(good[:5000])
    code, text = models("promote", "2")
    assert code == 1 and "model.onnx in the store does not match its sha256" in flat(text), text
    assert json.loads(models("list", "--json")[1])["serving"] == 1
    blob.write_bytes(good)
    assert onnx.read_bytes() == good[:5000]  # still damaged here: the promotion below makes it again

    code, text = models("promote", "2", "--reason", "the new starter", "--json")
    event = json.loads(text)
    assert code == 0 and (event["version"], event["previous_version"], event["action"]) == (2, 1, "promote")
    assert event["reason"] == "the new starter"
    assert served_label(old_home) == (2, "Tomato___Early_blight") and onnx.read_bytes() == good

    code, text = models("promote", "2")
    assert code == 1 and "already serving" in text, text
    code, text = models("promote", "7")
    assert code == 1 and "model version 7 is not in the registry" in text and "leafdoc models list" in text, text

    code, text = models("rollback")
    assert code == 0 and "model version 1 serves from now on (was 2)" in " ".join(text.split()), text
    assert served_label(old_home) == tiny
    code, text = models("rollback")
    assert code == 1 and "no earlier serving version" in text and "leafdoc models promote VERSION" in text, text
    listed = json.loads(models("list", "--json")[1])
    assert listed["serving"] == 1 and [v["status"] for v in listed["versions"]] == ["serving", "archived"]


def test_models_list_gives_each_test_accuracy_with_the_photos_it_was_measured_on(old_home, tiny_model):
    """A lab's first model scored on a handful of test photos read "66.7%" beside the starter's "99.1%" on 5,221, as
    if the two figures were worth the same."""
    test = json.loads((tiny_model / "card.json").read_text())["metrics"]["test"]
    code, text = models("list")
    assert code == 0 and f"{100 * test['accuracy']:.1f}% of {test['n']}" in text, text


def flat(text: str) -> str:
    return " ".join(text.split())


def test_models_show_prints_a_versions_card_with_its_own_sentences_and_no_server_folder(old_home, tiny_model, tmp_path):
    """`leafdoc models show VERSION`: what the version learnt from, its limitations and its test accuracy with the
    photos it was measured on, as its card.json says them; the folder it was seeded from (under tmp_path) and the
    folders its card names are not printed, as the API does not answer them (core/redact.py)."""
    card = json.loads((tiny_model / "card.json").read_text())
    test = card["metrics"]["test"]
    code, text = models("show", "1")
    said = flat(text)
    assert code == 0 and said.startswith("Model version 1 · serving"), text
    assert flat(card["limitations"]) in said
    for paragraph in filter(None, (p.strip() for p in card["provenance"].split("\n"))):
        assert flat(paragraph) in said
    assert f"Test accuracy {100 * test['accuracy']:.1f}% of {test['n']} test photos" in said
    assert "Registered from: seed:starter." in said  # seeded from tmp_path/old/starter: its name only
    code, raw = models("show", "1", "--json")
    answer = json.loads(raw)
    assert code == 0 and answer["version"] == 1 and answer["card"]["limitations"] == card["limitations"]
    for where in (str(tmp_path), str(tiny_model.parent), "/tmp/"):
        assert where not in text and where not in raw

    code, text = models("show", "7")
    assert code == 1 and "model version 7 is not in the registry; its versions are 1." in flat(text), text


def test_models_show_reads_a_model_folders_card_the_starters_sources_and_licences(old_home):
    """`leafdoc models show MODEL_DIR` (or --dir) reads a folder's card: the shipped starter's, with the data it learnt
    from and their licences, its classes by crop and its test accuracy of 5,221 photos."""
    card = json.loads((starter_model_dir() / "card.json").read_text())
    code, text = models("show", str(starter_model_dir()))
    said = flat(text)
    assert code == 0 and said.startswith("Model folder starter"), text
    assert 'Image licence: CC BY-SA 3.0, credit "PlantVillage, Hughes & Salathé 2015".' in said
    assert flat(card["limitations"]) in said and "Test accuracy 99.1% of 5,221 test photos" in said
    assert "The classes it knows: 34 of 11 crops" in said and "Potato (3): Early blight; Late blight; Healthy" in said
    assert "Huanglongbing (citrus greening)" in said and "Haunglongbing" not in said  # as an answer names it
    assert str(starter_model_dir().parent) not in text
    assert all(len(line) <= 80 for line in text.splitlines())
    assert models("show", "--dir", str(starter_model_dir()))[1] == text
