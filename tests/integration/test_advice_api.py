"""Advice with every diagnosis, through the API: the starter model on real PlantVillage photos (examples/),
the full entry's route, abstentions without advice, a label with no knowledge file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import unquote

import pytest
from service_support import Clients, assert_error, flat_photo, service_settings

from leafdoc.advice import shipped_knowledge

REPO = Path(__file__).resolve().parents[2]
STARTER = REPO / "models" / "starter"
EXAMPLES = REPO / "examples"
SERVING = ("model.onnx", "labels.json", "card.json", "ood.npz")


def serving_copy(dest: Path, rename: dict[str, str] | None = None) -> Path:
    """The starter's serving files (not its Keras file), with some labels renamed if asked."""
    if not (STARTER / "model.onnx").is_file():
        pytest.skip("no starter model in the repository")
    dest.mkdir(parents=True)
    for f in SERVING:
        if (STARTER / f).is_file():
            shutil.copy2(STARTER / f, dest / f)
    if rename:
        labels = json.loads((dest / "labels.json").read_text())
        (dest / "labels.json").write_text(json.dumps([rename.get(label, label) for label in labels]))
    return dest


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    root = tmp_path_factory.mktemp("advice-api")
    clients = Clients()
    yield clients(service_settings(root / "home", serving_copy(root / "starter")))
    clients.close()


def predict(client, photo: Path, route: str = "/v1/predict") -> dict:
    r = client.post(route, files={"file": (photo.name, photo.read_bytes(), "image/jpeg")})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize(
    "photo, label",
    [("tomato_early_blight.jpg", "Tomato___Early_blight"), ("corn_common_rust.jpg", "Corn_(maize)___Common_rust_")],
)
def test_a_diagnosis_carries_its_labels_advice_and_the_full_entry_is_at_its_route(api, photo, label):
    body = predict(api, EXAMPLES / photo)
    assert body["label"] == label and not body["abstained"]
    advice = body["advice"]
    entry = shipped_knowledge().get(label)
    assert advice["available"] is True and advice["label"] == label
    assert advice["summary"] == entry.summary
    assert advice["title"] == entry.title
    assert [s["title"] for s in advice["sources"]] == [s.title for s in entry.sources]
    assert all(s["publisher"] for s in advice["sources"])

    full = api.get(advice["route"])
    assert full.status_code == 200, full.text
    assert unquote(advice["route"]) == f"/v1/advice/{label}"
    got = full.json()
    assert got["label"] == label and got["symptoms"] == entry.symptoms
    assert got["actions"]["cultural"] == entry.actions.cultural
    assert [c["label"] for c in got["confused_with"]] == [c.label for c in entry.confused_with]


def test_explain_and_batch_answers_carry_the_same_advice(api):
    photo = EXAMPLES / "apple_cedar_rust.jpg"
    single = predict(api, photo)
    explained = predict(api, photo, "/v1/explain")
    batch = api.post("/v1/predict/batch", files=[("files", (photo.name, photo.read_bytes()))]).json()
    assert single["advice"]["label"] == "Apple___Cedar_apple_rust"
    assert explained["advice"] == single["advice"]
    assert batch["results"][0]["prediction"]["advice"] == single["advice"]


def test_an_abstained_answer_carries_no_advice(api):
    r = api.post("/v1/predict", files={"file": ("dark.jpg", flat_photo((3, 3, 3)), "image/jpeg")})
    body = r.json()
    assert body["abstained"] is True and body["label"] is None
    assert body["advice"] is None


def test_a_label_without_a_knowledge_file_says_so_instead_of_advice(tmp_path):
    model = serving_copy(tmp_path / "renamed", rename={"Tomato___Early_blight": "Tomato___Mystery_blight"})
    clients = Clients()
    try:
        client = clients(service_settings(tmp_path / "home", model))
        body = predict(client, EXAMPLES / "tomato_early_blight.jpg")
    finally:
        clients.close()
    assert body["label"] == "Tomato___Mystery_blight"
    advice = body["advice"]
    assert advice["available"] is False and advice["summary"] is None and advice["route"] is None
    assert advice["sources"] == [] and "no advice for 'Tomato___Mystery_blight'" in advice["message"]


def test_advice_routes_are_open_list_every_entry_and_404_in_the_api_error_shape(api):
    listed = api.get("/v1/advice").json()["entries"]
    assert len(listed) == len(shipped_knowledge().entries) == 38
    for item in listed[:3]:
        assert api.get(item["route"]).json()["label"] == item["label"]
    body = assert_error(api.get("/v1/advice/Tomato___Purple_spots"), 404, "not_found")
    assert "Tomato___Purple_spots" in body["message"] and "/v1/advice" in body["hint"]
    assert "/work" not in json.dumps(body) and "knowledge" not in body["message"]
    assert api.get("/v1/advice/" + "x" * 500).status_code == 422


def test_a_bad_knowledge_folder_stops_the_server_with_the_file_and_field(tmp_path):
    from leafdoc.advice import KnowledgeError
    from leafdoc.service.app import create_app

    extra = tmp_path / "advice"
    extra.mkdir()
    (extra / "mine.toml").write_text('label = "Mine___spots"\ncrop = "Mine"\n')
    with pytest.raises(KnowledgeError) as caught:
        create_app(service_settings(tmp_path / "home", None, advice_dir=extra))
    assert "mine.toml" in caught.value.message and "crop_scientific" in caught.value.message
