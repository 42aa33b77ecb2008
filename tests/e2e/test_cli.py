"""The CLI as a user runs it: a real subprocess, a tmp data home, real photos."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from tests.conftest import REPO, TINY_CNN_CLI, run_until_killed

from leafdoc.modelfolder import read_labels

EXAMPLES = sorted((REPO / "examples").glob("*.jpg"))


def leafdoc(*args, home: Path, check: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "LEAFDOC_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "leafdoc.cli.main", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        check=check,
    )


def test_train_predict_export_as_a_user(tmp_path, leaf_folder):
    out = tmp_path / "model"
    r = leafdoc(
        "train",
        "--data",
        leaf_folder,
        "--out",
        out,
        *TINY_CNN_CLI,  # the commands are what this checks (Lite0's exports: test_train.py)
        home=tmp_path / "home",
    )
    assert r.returncode == 0, r.stderr
    card = json.loads((out / "card.json").read_text())
    test_figures = card["metrics"]["test"]
    assert f"test accuracy {test_figures['accuracy']:.4f}, top-3 {test_figures['top3_accuracy']:.4f}" in r.stdout
    assert {p.name for p in out.iterdir()} >= {"model.keras", "model.onnx", "labels.json", "card.json"}
    assert not list(tmp_path.glob(".model.*")), "no temporary folder is left behind"

    photo = next((leaf_folder / "Apple___healthy").iterdir())
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a photo")
    r = leafdoc("predict", out, photo, bad, "--top-k", "2", "--json", home=tmp_path / "home")
    assert r.returncode == 1, r.stderr  # one photo went unanswered: a script must know, and still gets the answers
    answers = json.loads(r.stdout)
    assert [a["file"] for a in answers] == [str(photo), str(bad)]
    labels = json.loads((out / "labels.json").read_text())
    # The two most likely labels of the trained model on that photo, with its probabilities (ONNX Runtime here).
    from leafdoc.inference.predictor import Predictor

    own = Predictor(out)
    probs = own.predict_arrays(own.preprocess(photo)[None])["probabilities"][0]
    assert [t["label"] for t in answers[0]["top_k"]] == [labels[i] for i in probs.argsort()[::-1][:2]]
    assert [t["probability"] for t in answers[0]["top_k"]] == pytest.approx(sorted(probs)[::-1][:2], abs=1e-5)
    assert answers[1]["error"].startswith("not a photo leafdoc can read")  # `file` names it
    assert "top_k" not in answers[1]
    r = leafdoc("predict", out, bad, home=tmp_path / "home")  # nothing could be read
    assert r.returncode == 1 and "notes.jpg" in r.stdout + r.stderr
    assert leafdoc("predict", out, photo, home=tmp_path / "home").returncode == 0  # every photo answered

    r = leafdoc("export", out, "--format", "tflite", home=tmp_path / "home")
    assert r.returncode == 0, r.stderr
    # the file for the phone, checked as a user checks it: it answers as model.onnx does on the same photos
    photos = [next((leaf_folder / c).iterdir()) for c in sorted(p.name for p in leaf_folder.iterdir())]
    answers = {}
    for model in (out, out / "model.tflite"):
        r = leafdoc("predict", model, *photos, "--top-k", str(len(labels)), "--json", home=tmp_path / "home")
        assert r.returncode == 0, r.stderr
        answers[model.name] = [{t["label"]: t["probability"] for t in a["top_k"]} for a in json.loads(r.stdout)]
    for onnx, tfl in zip(answers["model"], answers["model.tflite"], strict=True):
        assert onnx.keys() == tfl.keys() == set(labels)
        assert max(abs(onnx[k] - tfl[k]) for k in labels) < 1e-4


def test_train_will_not_replace_a_folder_it_did_not_write(tmp_path, leaf_folder):
    """--out is replaced whole when the model is written: a lab's photo folder or a file given as --out (a slip of
    the hand) is refused before anything is read, and kept as it was; an earlier model there is replaced."""
    photos = tmp_path / "photos"
    shutil.copytree(leaf_folder, photos)
    (photos / "NOTES.txt").write_text("where each photo was taken")
    before = sorted(p.relative_to(photos) for p in photos.rglob("*"))
    note = tmp_path / "model.txt"
    note.write_text("not a model")
    for out in (photos, note):
        r = leafdoc("train", "--data", photos, "--out", out, *TINY_CNN_CLI, home=tmp_path / "home")
        said = " ".join(r.stderr.split())  # the error wraps at the terminal's width
        assert r.returncode != 0 and "already exists and is not an earlier leafdoc output" in said, r.stderr
        assert str(out) in said and "Pass a new or empty folder" in said
    assert sorted(p.relative_to(photos) for p in photos.rglob("*")) == before
    assert note.read_text() == "not a model"
    assert not (tmp_path / "home" / "store").exists() or not any((tmp_path / "home" / "store").rglob("*"))
    out = tmp_path / "model"
    for _ in range(2):  # the second run replaces the first run's model
        r = leafdoc("train", "--data", photos, "--out", out, *TINY_CNN_CLI, home=tmp_path / "home")
        assert r.returncode == 0, r.stderr
    assert (out / "card.json").is_file() and not (out / "NOTES.txt").exists()


def test_train_killed_part_way_resumes_from_its_last_epoch(tmp_path, leaf_folder):
    """Killed (SIGTERM: a stopped container or session) after epoch 2 of 8, the run leaves its checkpoint
    beside --out; `--resume` trains only the epochs after it."""

    out, home = tmp_path / "model", tmp_path / "home"
    args = ["train", "--data", leaf_folder, "--out", out, "--weights", "none", "--backbone", "baseline_cnn"]
    args += ["--image-size", "16", "--epochs", "8", "--batch-size", "4", "--patience", "10"]
    env = {**os.environ, "LEAFDOC_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "200"}
    env["PYTHONUNBUFFERED"] = "1"  # each log line as it is written
    code, seen = run_until_killed(
        [sys.executable, "-m", "leafdoc.cli.main", *map(str, args)], "scratch epoch 2:", env=env
    )
    assert code == 130, seen  # as for Ctrl-C: stopped at a batch's end, not killed inside TensorFlow
    state = json.loads((tmp_path / ".model.checkpoint" / "state.json").read_text())
    assert 1 <= state["epoch"] < 8 and not out.exists()  # epoch 2 is logged just before it is saved
    said = " ".join(seen.split())  # what it says as it stops: where --resume goes on from
    assert f"stopped: `--resume` goes on from the checkpoint after scratch epoch {state['epoch']}" in said, seen
    assert "stopped" not in [line.strip() for line in seen.splitlines()], seen  # said once, not again bare

    r = leafdoc(*args, "--resume", "--json", home=home)
    assert r.returncode == 0, r.stderr
    card = json.loads(r.stdout)
    assert [h["epoch"] for h in card["history"]] == list(range(1, 9))
    assert f"continuing from the checkpoint after scratch epoch {state['epoch']}" in r.stderr + r.stdout
    assert not (tmp_path / ".model.checkpoint").exists()


def test_train_refuses_imagenet_offline_with_advice(tmp_path, leaf_folder, monkeypatch):
    """These machines cannot download ImageNet weights: the message says what to pass instead."""
    home = tmp_path / "home"
    keras_home = tmp_path / "keras"  # an empty Keras cache, so nothing is found locally
    env_backup = os.environ.get("KERAS_HOME")
    os.environ["KERAS_HOME"] = str(keras_home)
    try:
        r = leafdoc(
            "train",
            "--data",
            leaf_folder,
            "--out",
            tmp_path / "m",
            "--backbone",
            "mobilenet_v2",  # Keras downloads its weights (the default, EfficientNet-Lite0, installs offline)
            "--weights",
            "imagenet",
            "--image-size",
            "96",
            "--epochs",
            "1",
            home=home,
        )
    finally:
        if env_backup is None:
            os.environ.pop("KERAS_HOME", None)
        else:
            os.environ["KERAS_HOME"] = env_backup
    if r.returncode == 0:
        pytest.skip("this machine could download ImageNet weights")
    assert "--weights none" in " ".join(r.stderr.split()) and "Traceback" not in r.stderr  # wrapped at the width
    assert not (tmp_path / "m").exists(), "no half-written model folder"


def test_model_folder_missing_a_file(tmp_path, tiny_model):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    (broken / "labels.json").unlink()
    r = leafdoc("predict", broken, EXAMPLES[0], home=tmp_path / "home")
    assert r.returncode == 1
    assert "labels.json" in r.stderr and "Traceback" not in r.stderr


def test_predict_with_the_starter_model(tmp_path):
    starter = REPO / "models" / "starter"
    if not (starter / "model.onnx").is_file():
        pytest.skip("no starter model committed yet")
    r = leafdoc("predict", starter, *EXAMPLES, "--json", home=tmp_path / "home")
    assert r.returncode == 0, r.stderr
    answers = json.loads(r.stdout)
    truth = {
        "apple_cedar_rust.jpg": "Apple___Cedar_apple_rust",
        "corn_common_rust.jpg": "Corn_(maize)___Common_rust_",
        "potato_healthy.jpg": "Potato___healthy",
        "tomato_early_blight.jpg": "Tomato___Early_blight",
    }
    right = sum(a["top_k"][0]["label"] == truth[Path(a["file"]).name] for a in answers)
    assert right >= 3, answers  # held-out photos: the starter model gets (nearly) all of them


def test_predict_prints_what_to_do_and_its_json_has_the_apis_answer_shape(tmp_path):
    from leafdoc.advice import shipped_knowledge
    from leafdoc.inference.answer import Answer

    starter = REPO / "models" / "starter"
    if not (starter / "model.onnx").is_file():
        pytest.skip("no starter model committed yet")
    photo = REPO / "examples" / "tomato_early_blight.jpg"
    entry = shipped_knowledge().get("Tomato___Early_blight")

    r = leafdoc("predict", starter, photo, home=tmp_path / "home")
    assert r.returncode == 0, r.stderr
    said = " ".join(r.stdout.split())
    # the diagnosis in words, as the page names it, with the label (a folder's name) beside it
    assert f"{photo}: Tomato — Early blight (Tomato___Early_blight)" in said
    assert "What to do: " + " ".join(entry.summary.split()) in said
    assert 'leafdoc advice "Tomato___Early_blight"' in said and entry.sources[0].title in said
    answer = json.loads(leafdoc("predict", starter, photo, "--json", home=tmp_path / "home").stdout)[0]
    for t in answer["top_k"]:  # each figure as a share of 100 to two places, never a certainty, then its words
        share = t["probability"]
        shown = ">99.99%" if share >= 0.99995 else "<0.01%" if share < 0.00005 else f"{share:.2%}"
        assert f"{shown} {t['name']}" in said and t["name"].startswith("Tomato — "), (shown, said)
    assert "100.00%" not in said and " 0.00%" not in said

    answer = json.loads(leafdoc("predict", starter, photo, "--json", home=tmp_path / "home").stdout)[0]
    assert answer["advice"]["summary"] == entry.summary and answer["advice"]["route"].endswith("Early_blight")
    assert answer["model_version"] is None  # a model folder, not a registry version
    api_fields = set(Answer.model_fields)
    assert set(answer) == api_fields  # the same fields as the API's answer
    Answer.model_validate(answer)

    full = leafdoc("advice", "Tomato___Early_blight", home=tmp_path / "home")
    assert full.returncode == 0 and "What it looks like" in full.stdout and entry.sources[0].title in full.stdout
    missing = leafdoc("advice", "Tomato___Purple_spots", home=tmp_path / "home")
    assert missing.returncode == 1 and "no advice for label 'Tomato___Purple_spots'" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_predict_names_a_file_it_cannot_read_once(tmp_path):
    """It printed "x.jpg: x.jpg: no such file.": the error's message names the file, and so did the line before it."""
    missing, text, folder = tmp_path / "missing.jpg", tmp_path / "notes.jpg", tmp_path / "folder.jpg"
    text.write_text("this is not a photo")
    folder.mkdir()
    r = leafdoc("predict", REPO / "models" / "starter", missing, text, folder, home=tmp_path / "home")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    lines = r.stdout.splitlines()
    expected = {
        missing: "no such file. Check the path.",
        text: "not a photo leafdoc can read",
        folder: "a folder with no photos in it or its sub-folders.",  # the others still answered
    }
    for path, said in expected.items():
        [line] = [line for line in lines if path.name in line]
        assert line.startswith(f"{path}: {said}"), line
        assert line.count(path.name) == 1, line
    answers = json.loads(
        leafdoc("predict", REPO / "models" / "starter", missing, text, folder, "--json", home=tmp_path / "home").stdout
    )
    assert [a["file"] for a in answers] == [str(p) for p in expected]
    assert [a["error"][:20] for a in answers] == [said[:20] for said in expected.values()]


def test_worker_burst_with_an_empty_queue_says_there_is_nothing_to_do(tmp_path):
    r = leafdoc("worker", "--burst", home=tmp_path / "home")  # it exited without a word
    assert r.returncode == 0, r.stderr
    assert "no job waiting; nothing to do" in r.stderr and "Traceback" not in r.stderr


def test_no_arguments_shows_help(tmp_path):
    r = leafdoc(home=tmp_path / "home")
    assert "ingest" in r.stdout + r.stderr and "predict" in r.stdout + r.stderr


def test_train_help_lists_every_training_setting_with_its_help_and_default(tmp_path):
    """`leafdoc train`'s options are generated from TrainConfig: a field added there is an option here."""
    import re
    from typing import get_args

    from leafdoc.cli.options import as_options
    from leafdoc.train.config import TrainConfig

    r = subprocess.run(
        [str(Path(sys.executable).with_name("leafdoc")), "train", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "400", "LEAFDOC_HOME": str(tmp_path), "NO_COLOR": "1", "TERM": "dumb"},
    )
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    for name, field in TrainConfig.model_fields.items():
        if name in ("nonleaf_dirs", "field_dirs"):  # folders that must exist: --nonleaf DIR, --field DIR
            assert "--" + name.removesuffix("_dirs") in text
            continue
        flag = "--" + name.replace("_", "-")
        assert flag in text, flag
        if name == "backbone":  # its help is the registry's list
            assert all(b in text for b in get_args(field.annotation)), text
            continue
        said = as_options(field.description or "", TrainConfig.model_fields)
        assert said and said.split(":")[0][:40] in text, name
    assert f"[default: {TrainConfig().fine_tune_fraction}]" in text  # which the hand-written options left out
    # in the command line's words: options, not the settings' names nor the source files a lab does not have
    assert not re.search(r"\b\w+\.py\b", text), re.search(r"\b\w+\.py\b", text)
    others = [n for n in TrainConfig.model_fields if "_" in n and f" {n} " in f" {text} ".replace("`", " ")]
    assert not others, others
    assert "<list[" not in text and "keep the best checkpoint" not in text


def test_train_from_a_model_that_refuses_field_photos_but_carries_none_says_the_new_one_will_not(
    tmp_path, tiny_model, monkeypatch
):
    """`leafdoc train --init-from MODEL` without --field: when MODEL has the unlike-training check but not the field
    photos to refit it with (a folder from before field_photos.zip), the run says the new model will guess on field
    photos and how to keep the check, wrapped at the terminal's 80 columns; the starter carries its photos (the check
    is refitted), so nothing is said; nor for a model without the check."""
    from rich.console import Console
    from tests.conftest import without_carried_photos

    from leafdoc.cli import main
    from leafdoc.cli.main import warn_field_check_dropped
    from leafdoc.cli.printing import console

    older = without_carried_photos(REPO / "models" / "starter", tmp_path / "older")
    narrow = Console(width=80, soft_wrap=True, log_path=False)  # as the CLI's console, on an 80-column terminal
    monkeypatch.setattr(main, "console", narrow)
    with narrow.capture() as said:
        warn_field_check_dropped(older)
    assert all(len(line) <= 80 for line in said.get().splitlines()), said.get()
    text = " ".join(said.get().split())
    assert "refuses field photos" in text and "will guess on them" in text and "--field DIR" in text
    monkeypatch.undo()
    for quiet_model in (REPO / "models" / "starter", tiny_model):
        with console.capture() as quiet:
            warn_field_check_dropped(quiet_model)
        assert quiet.get() == ""


def test_train_on_a_folder_whose_name_the_data_home_already_holds_says_it_trains_on_both(tmp_path):
    """`train --data DIR` ingests into the dataset named after the folder: where the data home already held one of
    that name (another folder of the same name, an earlier ingest), the run trained on all of its latest version, the
    earlier photos too, and said so only in the version number it printed. Now a note says how many photos it trains
    on against the folder's, and how to train on the folder alone; a data home without that name prints none."""
    from tests.conftest import make_leaf_folder

    first = make_leaf_folder(tmp_path / "a" / "leaves", per_class=4)
    again = make_leaf_folder(tmp_path / "b" / "leaves", per_class=4, skip=4)  # same name, 12 other photos
    home = tmp_path / "home"
    r = leafdoc("train", "--data", first, "--out", tmp_path / "m1", *TINY_CNN_CLI, home=home)
    assert r.returncode == 0, r.stderr
    assert "note:" not in r.stdout + r.stderr
    r = leafdoc("train", "--data", again, "--out", tmp_path / "m2", *TINY_CNN_CLI, home=home)
    assert r.returncode == 0, r.stderr
    said = " ".join((r.stdout + r.stderr).split())
    assert "already held a dataset named 'leaves'; this folder's 12 new photos made v2" in said, said
    assert "trains on all 24 photos of v2, not only the 12 in leaves" in said
    assert "--dataset leaves --dataset-version N (1 to 1)" in said
    card = json.loads((tmp_path / "m2" / "card.json").read_text())
    assert card["dataset"]["version"] == 2 and sum(card["dataset"]["split"].values()) == 24


def test_a_class_too_small_is_said_at_ingest_and_left_out_under_a_new_name(tmp_path, leaf_folder):
    """A newcomer's folder with a class of 2 photos (walkthrough, session 71): ingest said nothing, train refused
    with "remove their folders", and after the folder was removed the same refusal came back (a dataset keeps every
    photo ingested into it), while `train --data DIR --dataset NEW`, the way out the notes named, was refused as
    "pass exactly one". Now ingest warns, the refusal names the way out, and that way works."""
    photos, home = tmp_path / "messy", tmp_path / "home"
    shutil.copytree(leaf_folder, photos)
    small = photos / "Corn_(maize)___healthy"
    small.mkdir()
    for photo in sorted((photos / "Apple___healthy").glob("*.jpg"))[:2]:
        shutil.copy(photo, small / f"corn-{photo.name}")  # the same bytes under another label: rejected as such
    for i, photo in enumerate(sorted((photos / "Apple___healthy").glob("*.jpg"))[:2]):
        with Image.open(photo) as img:
            img.rotate(90 * (i + 1)).save(small / f"turned-{i}.jpg")  # two photos of their own

    r = leafdoc("ingest", photos, home=home)
    said = " ".join(r.stderr.split())
    assert r.returncode == 0 and "warning: messy: Corn_(maize)___healthy has 2; training needs at least 3" in said
    assert "--dataset NEWNAME" in said, said
    shutil.rmtree(small)
    r = leafdoc("train", "--data", photos, "--out", tmp_path / "m", *TINY_CNN_CLI, home=home)
    said = " ".join(r.stderr.split())
    assert r.returncode != 0 and "'Corn_(maize)___healthy' has 2" in said and "--dataset NEWNAME" in said, said

    r = leafdoc(
        "train", "--data", photos, "--dataset", "messy-fixed", "--out", tmp_path / "m", *TINY_CNN_CLI, home=home
    )
    assert r.returncode == 0, r.stderr
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    assert card["dataset"]["name"] == "messy-fixed", card["dataset"]
    assert "Corn_(maize)___healthy" not in read_labels(tmp_path / "m") and len(read_labels(tmp_path / "m")) == 3
