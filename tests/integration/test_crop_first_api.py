"""Crop first through the API, on the real starter model and its own held-out test photos: a photo the model takes
for another crop is answered within the crop the grower gives (form field or query, words or the labels' prefix,
any case) on /v1/predict, /v1/predict/batch and /v1/explain; an unknown crop is answered 422 with the crops the
serving model knows; `leafdoc predict --crop` does the same on a model folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from service_support import Clients, assert_error, service_settings
from tests.conftest import PLANTVILLAGE, REPO
from typer.testing import CliRunner

from leafdoc.inference.fieldcrops import crop_name, crop_of

STARTER = REPO / "models" / "starter"
SERVING = ("model.onnx", "labels.json", "card.json", "ood.npz")


@pytest.fixture(scope="module")
def starter_copy(tmp_path_factory) -> Path:
    if not (STARTER / "model.onnx").is_file() or not PLANTVILLAGE.is_dir():
        pytest.skip(f"needs the starter model and the shared PlantVillage photos ({PLANTVILLAGE})")
    dest = tmp_path_factory.mktemp("crop-first") / "starter"
    dest.mkdir()
    for f in SERVING:
        if (STARTER / f).is_file():
            shutil.copy2(STARTER / f, dest / f)
    return dest


@pytest.fixture(scope="module")
def api(starter_copy, tmp_path_factory):
    clients = Clients()
    yield clients(service_settings(tmp_path_factory.mktemp("crop-home"), starter_copy))
    clients.close()


@pytest.fixture(scope="module")
def other_crop_photo(starter_copy) -> tuple[Path, str, str]:
    """(photo, its label, the label the model gives it unaided): a held-out test photo of the starter's it takes for
    another crop's condition (tests/crop_photos.py)."""
    from tests.crop_photos import other_crop_photo_or_skip

    return other_crop_photo_or_skip(STARTER, PLANTVILLAGE)


def post(api, route: str, photo: Path, **form) -> dict:
    files = {"file": (photo.name, photo.read_bytes(), "image/jpeg")}
    r = api.post(route, files=files, data=form or None)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_photo_taken_for_another_crop_is_answered_within_the_crop_given(api, other_crop_photo):
    photo, truth, unaided = other_crop_photo
    crop = crop_name(crop_of(truth))
    without = post(api, "/v1/predict", photo)
    assert without["top_k"][0]["label"] == unaided and without["crop_given"] is None and without["crop_share"] is None
    given = post(api, "/v1/predict", photo, crop=crop)
    assert given["crop_given"] == crop
    assert {crop_of(t["label"]) for t in given["top_k"]} == {crop_of(truth)}  # only the crop's labels
    assert given["top_k"][0]["label"] != unaided and crop_of(given["top_k"][0]["label"]) == crop_of(truth)
    assert given["label"] in (None, given["top_k"][0]["label"])
    if not given["abstained"]:
        assert given["confidence"] >= given["min_confidence"]
    assert given["crop_share"] < 0.5  # the model gave most of its probability to another crop
    # renormalised: the crop's labels share all the probability
    assert sum(t["probability"] for t in post(api, "/v1/predict?top_k=30", photo, crop=crop)["top_k"]) == (
        pytest.approx(1.0, abs=1e-4)
    )


def test_the_crop_is_taken_as_the_labels_prefix_in_any_case_and_as_a_query_parameter(api, other_crop_photo):
    photo, truth, _ = other_crop_photo
    prefix = crop_of(truth)
    words = post(api, "/v1/predict", photo, crop=crop_name(prefix))
    raw = post(api, "/v1/predict", photo, crop=prefix.upper())
    r = api.post(f"/v1/predict?crop={crop_name(prefix).upper()}", content=photo.read_bytes())
    assert r.status_code == 200, r.text
    for other in (raw, r.json()):
        assert other["top_k"] == words["top_k"] and other["crop_given"] == crop_name(prefix)


def test_explain_and_batch_take_the_crop_too(api, other_crop_photo):
    photo, truth, _ = other_crop_photo
    crop = crop_name(crop_of(truth))
    explained = post(api, "/v1/explain", photo, crop=crop)
    assert crop_of(explained["explained_label"]) == crop_of(truth)  # the heat map of the crop's top label
    assert explained["crop_given"] == crop and crop_of(explained["top_k"][0]["label"]) == crop_of(truth)
    # a label of another crop cannot be explained within the crop given
    other = next(
        label for label in api.get("/v1/models").json()["models"][0]["labels"] if crop_of(label) != crop_of(truth)
    )
    r = api.post(
        "/v1/explain",
        params={"label": other},
        files={"file": (photo.name, photo.read_bytes(), "image/jpeg")},
        data={"crop": crop},
    )
    assert "is not a condition of the crop given" in assert_error(r, 422, "invalid_request")["message"]
    files = [("files", (photo.name, photo.read_bytes(), "image/jpeg"))] * 2
    r = api.post("/v1/predict/batch", files=files, data={"crop": crop})
    assert r.status_code == 200, r.text
    for item in r.json()["results"]:
        assert item["prediction"]["crop_given"] == crop
        assert crop_of(item["prediction"]["top_k"][0]["label"]) == crop_of(truth)


def test_every_crop_get_v1_models_lists_is_accepted(api, other_crop_photo):
    photo = other_crop_photo[0]
    models = api.get("/v1/models").json()
    [row] = [m for m in models["models"] if m["version"] == models["serving_version"]]
    listed = row["crops"]["field"] + row["crops"]["lab_only"]
    assert len(listed) == len({crop_of(label) for label in row["labels"]})
    for crop in listed:
        answer = post(api, "/v1/predict", photo, crop=crop)
        assert answer["crop_given"] == crop
        assert all(crop_name(crop_of(t["label"])) == crop for t in answer["top_k"])


def test_an_unknown_crop_is_422_naming_the_crops_the_model_knows(api, other_crop_photo):
    photo = other_crop_photo[0]
    r = api.post("/v1/predict", files={"file": (photo.name, photo.read_bytes(), "image/jpeg")}, data={"crop": "banana"})
    body = assert_error(r, 422, "unknown_crop")
    models = api.get("/v1/models").json()
    [row] = [m for m in models["models"] if m["version"] == models["serving_version"]]
    assert "'banana'" in body["message"]
    for crop in row["crops"]["field"] + row["crops"]["lab_only"]:
        assert f"'{crop}'" in body["message"]
    for route in ("/v1/explain", "/v1/predict/batch"):
        field = "files" if route.endswith("batch") else "file"
        r = api.post(route, files={field: (photo.name, photo.read_bytes(), "image/jpeg")}, data={"crop": "banana"})
        assert_error(r, 422, "unknown_crop")
    # the form field and the query parameter must not disagree
    files = {"file": (photo.name, photo.read_bytes(), "image/jpeg")}
    assert_error(api.post("/v1/predict?crop=corn", files=files, data={"crop": "tomato"}), 422, "invalid_request")


def test_the_openapi_schema_documents_the_crop(api):
    schema = api.get("/openapi.json").json()
    answer = schema["components"]["schemas"]["Answer"]["properties"]
    assert "crop_given" in answer and "crop" in answer["crop_given"]["description"]
    assert "crop_share" in answer
    form = schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert "crop" in form["properties"]


def test_leafdoc_predict_takes_the_crop(starter_copy, other_crop_photo):
    from leafdoc.cli.main import app

    photo, truth, unaided = other_crop_photo
    runner = CliRunner()
    r = runner.invoke(app, ["predict", str(starter_copy), str(photo), "--crop", crop_name(crop_of(truth)), "--json"])
    assert r.exit_code == 0, r.output
    [answer] = json.loads(r.stdout)
    assert crop_of(answer["top_k"][0]["label"]) == crop_of(truth) and answer["crop_given"] == crop_name(crop_of(truth))
    # as a user runs it: one plain message with the crops it knows, no traceback, exit 1
    cmd = [sys.executable, "-m", "leafdoc.cli.main", "predict", str(starter_copy), str(photo), "--crop", "banana"]
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "300"})
    said = " ".join((bad.stdout + bad.stderr).split())
    assert bad.returncode == 1 and "'banana' is not one this model knows" in said and "'tomato'" in said, said
    assert "Traceback" not in said


def test_a_crop_too_long_is_refused_as_it_streams_in(api, other_crop_photo):
    photo = other_crop_photo[0]
    files = {"file": (photo.name, photo.read_bytes(), "image/jpeg")}
    body = assert_error(api.post("/v1/predict", files=files, data={"crop": "tomato" * 50_000}), 422, "invalid_request")
    assert "`crop` is over 200 bytes" in body["message"]
    assert api.post("/v1/predict?crop=" + "t" * 300, files=files).status_code == 422


def test_leafdoc_predict_answers_in_the_language_asked_for(starter_copy):
    """`leafdoc predict --lang`: the refusals, warnings and advice in that language, as the API gives them; an unknown
    language refused before the model is read, naming those spoken."""
    from leafdoc.advice import shipped_knowledge
    from leafdoc.cli.main import app
    from leafdoc.core.i18n import msg, render
    from leafdoc.inference.abstain import NOT_A_LEAF

    photos = [REPO / "examples" / "guide" / "not_a_leaf.jpg", REPO / "examples" / "tomato_early_blight.jpg"]
    runner = CliRunner()
    r = runner.invoke(app, ["predict", str(starter_copy), *map(str, photos), "--lang", "es-MX", "--json"])
    assert r.exit_code == 0, r.output
    refused, answered = json.loads(r.stdout)
    assert refused["reason"] == "not_a_leaf" and refused["message"] == render(msg(NOT_A_LEAF), "es")
    # as read by a person: the diagnosis and its runners-up named in Spanish, the label itself beside the first
    shown = runner.invoke(app, ["predict", str(starter_copy), str(photos[1]), "--lang", "es"], env={"COLUMNS": "300"})
    # the headline wraps at the console's width (fixed when the console was made, whatever COLUMNS says now): a
    # longer checkout path put its label on a second line, so it is read whole, up to the first runner-up
    lines = shown.stdout.splitlines()
    ends = next(i for i, line in enumerate(lines) if line.startswith("  ") and "%" in line)
    first, top = " ".join(" ".join(lines[:ends]).split()), lines[ends : ends + len(answered["top_k"])]
    assert first == f"{photos[1]}: Tomate — Tizón temprano (Tomato___Early_blight)", shown.stdout
    assert [line.split(maxsplit=1)[1] for line in top] == [t["name"] for t in answered["top_k"]], shown.stdout
    assert refused["language"] == answered["language"] == "es"
    spanish = shipped_knowledge().reference("Tomato___Early_blight", "es")
    assert (
        answered["advice"]["summary"]
        == spanish["summary"]
        != shipped_knowledge().reference(answered["label"])["summary"]
    )
    cmd = [sys.executable, "-m", "leafdoc.cli.main", "predict", str(starter_copy), str(photos[1]), "--lang", "de"]
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "300"})
    said = " ".join((bad.stdout + bad.stderr).split())
    assert bad.returncode == 1 and "'de' is not one leafdoc answers in" in said and "--lang" in said, said
    assert "Traceback" not in said
