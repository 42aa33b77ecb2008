"""The web API as a client sees it: predictions, explanations, abstentions, limits, admin token,
models, hot swap, health and metrics. Real SQLite catalog and queue files under a tmp data home,
the session's tiny model served through ONNX Runtime. (Uploads: test_service_uploads.py; training
jobs: test_service_jobs.py.)"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from service_support import (
    ADMIN,
    TOKEN,
    Clients,
    assert_error,
    flat_photo,
    leaf_photos,
    model_copy,
    photo_bytes,
    service_settings,
)

from leafdoc.data.catalog import Catalog
from leafdoc.data.ingest import ingest
from leafdoc.data.store import open_store
from leafdoc.inference.predictor import Predictor
from leafdoc.words.labels import pretty_label


@pytest.fixture(scope="module")
def models(tiny_model, tmp_path_factory):
    """Copies of the tiny model: one that always answers, one that abstains unless 99% sure."""
    root = tmp_path_factory.mktemp("models")
    return {
        "answers": model_copy(tiny_model, root / "answers", min_confidence=0.0),
        "unsure": model_copy(tiny_model, root / "unsure", min_confidence=0.99),
    }


@pytest.fixture
def make_client(tmp_path):
    clients = Clients()
    yield lambda model_dir, home=None, **overrides: clients(
        service_settings(home or tmp_path / "home", model_dir, **overrides)
    )
    clients.close()


@pytest.fixture
def client(make_client, models):
    return make_client(models["answers"])


@pytest.fixture
def no_starter(monkeypatch, tmp_path):
    """Make sure no starter model in the repository gets seeded."""
    monkeypatch.setattr("leafdoc.model_versions.starter_model_dir", lambda: tmp_path / "no-starter")


@pytest.fixture(scope="module")
def leaf(leaf_folder_module):
    return leaf_photos(leaf_folder_module)[0].read_bytes()


@pytest.fixture(scope="module")
def leaf_folder_module(tmp_path_factory):
    from tests.conftest import make_leaf_folder

    return make_leaf_folder(tmp_path_factory.mktemp("leaves") / "leaves", per_class=4)


# ---- predict ---------------------------------------------------------------------------------------


JSON_TYPE = {"content-type": "application/json"}


def test_predict_multipart_gives_top_k_with_probabilities_and_model_version(client, leaf, models):
    r = client.post("/v1/predict", files={"file": ("leaf.jpg", leaf, "image/jpeg")})
    assert r.status_code == 200, r.text
    body = r.json()
    labels = Predictor(models["answers"]).labels
    assert body["model_version"] == 1
    assert body["file"] == "leaf.jpg"
    assert {t["label"] for t in body["top_k"]} == set(labels)  # top 3 of 3 labels
    probs = [t["probability"] for t in body["top_k"]]
    assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 1) < 1e-3
    assert body["abstained"] is False and body["label"] == body["top_k"][0]["label"]
    assert body["reason"] is None and body["message"] is None
    # The answer is the model's own on this photo (ONNX Runtime here), each probability under its label.
    p = Predictor(models["answers"])
    own = p.predict_arrays(p.preprocess(leaf)[None])["probabilities"][0]
    answered = {t["label"]: t["probability"] for t in body["top_k"]}
    assert answered == pytest.approx(dict(zip(labels, own, strict=True)), abs=1e-5)


def test_predict_raw_body_answers_like_multipart(client, leaf):
    multipart = client.post("/v1/predict", files={"file": ("leaf.jpg", leaf)}).json()
    raw = client.post("/v1/predict?top_k=1", content=leaf, headers={"content-type": "image/jpeg"})
    assert raw.status_code == 200, raw.text
    assert raw.json()["top_k"] == multipart["top_k"][:1]


def test_abstains_with_reason_when_not_confident(make_client, models, leaf):
    c = make_client(models["unsure"])
    body = c.post("/v1/predict", files={"file": ("leaf.jpg", leaf)}).json()
    assert body["abstained"] is True and body["label"] is None
    assert body["reason"] == "unsure"
    assert body["min_confidence"] == pytest.approx(0.99)
    assert 2 <= len(body["candidates"]) <= 3
    assert set(body["candidates"]) <= {t["label"] for t in body["top_k"]}
    assert "Not sure" in body["message"] and pretty_label(body["candidates"][0]) in body["message"]
    assert "%" not in body["message"]  # a refusal carries no confidence figure (the figures stay in top_k)


def test_abstains_on_a_photo_that_is_not_usable(client):
    body = client.post("/v1/predict", files={"file": ("black.png", flat_photo((0, 0, 0)))}).json()
    assert body["abstained"] is True and body["reason"] == "poor_photo"
    assert "dark" in body["message"]
    body = client.post("/v1/predict", files={"file": ("grey.png", flat_photo((128, 128, 128)))}).json()
    assert body["reason"] == "poor_photo" and "one colour" in body["message"]
    assert body["problems"] == ["one_colour"]


# ---- batch -----------------------------------------------------------------------------------------


def test_batch_answers_each_image_and_a_bad_one_alone(client, leaf):
    files = [
        ("files", ("a.jpg", leaf, "image/jpeg")),
        ("files", ("broken.jpg", b"\xff\xd8\xff\xe0 truncated", "image/jpeg")),
        ("files", ("b.jpg", photo_bytes(1), "image/jpeg")),
    ]
    r = client.post("/v1/predict/batch", files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["n"] == 3 and body["model_version"] == 1
    a, broken, b = body["results"]
    assert a["file"] == "a.jpg" and a["prediction"]["top_k"] and a["error"] is None
    assert broken["prediction"] is None and broken["error"]["error"] == "bad_image"
    assert "broken.jpg" in broken["error"]["message"]
    assert b["prediction"]["file"] == "b.jpg"
    # Each answer of the batch is the one the photo gets alone.
    for name, photo, got in (("a.jpg", leaf, a), ("b.jpg", photo_bytes(1), b)):
        alone = client.post("/v1/predict", files={"file": (name, photo, "image/jpeg")}).json()
        assert [t["label"] for t in got["prediction"]["top_k"]] == [t["label"] for t in alone["top_k"]]
        assert [t["probability"] for t in got["prediction"]["top_k"]] == pytest.approx(
            [t["probability"] for t in alone["top_k"]], abs=1e-5
        )


def test_batch_over_the_configured_limit_is_413(make_client, models):
    c = make_client(models["answers"], max_batch_images=2)
    files = [("files", (f"{i}.jpg", photo_bytes(i))) for i in range(3)]
    body = assert_error(c.post("/v1/predict/batch", files=files), 413, "request_too_large")
    assert "3 images" in body["message"] and "2" in body["message"]
    assert c.post("/v1/predict/batch", files=files[:2]).status_code == 200


# ---- explain ---------------------------------------------------------------------------------------


def test_explain_returns_heat_map_of_the_feature_map_and_a_png_overlay(client, leaf, models):
    r = client.post("/v1/explain", files={"file": ("leaf.jpg", leaf)})
    assert r.status_code == 200, r.text
    body = r.json()
    p = Predictor(models["answers"])
    cam = p.predict_arrays(p.preprocess(leaf)[None], ["cam"])["cam"]
    heat = np.array(body["heatmap"])
    assert heat.shape == cam.shape[1:3]
    assert heat.min() >= 0 and heat.max() <= 1
    assert body["explained_label"] == body["top_k"][0]["label"]
    # The map shown is that label's class activation map of the model (ReLU'd, scaled to 0..1).
    own = np.maximum(cam[0][..., p.labels.index(body["explained_label"])], 0)
    np.testing.assert_allclose(heat * body["heatmap_scale"], own, atol=1e-4 * max(1.0, own.max()))
    png = base64.b64decode(body["overlay_png"])
    assert png.startswith(b"\x89PNG")
    img = Image.open(io.BytesIO(png))
    assert img.size == (body["overlay_size"], body["overlay_size"]) and img.mode == "RGB"

    other = body["top_k"][-1]["label"]
    r2 = client.post(f"/v1/explain?label={other}", files={"file": ("leaf.jpg", leaf)})
    assert r2.json()["explained_label"] == other
    own = np.maximum(cam[0][..., p.labels.index(other)], 0)
    np.testing.assert_allclose(
        np.array(r2.json()["heatmap"]) * r2.json()["heatmap_scale"], own, atol=1e-4 * max(1.0, own.max())
    )
    assert_error(client.post("/v1/explain?label=Banana", files={"file": ("leaf.jpg", leaf)}), 422, "invalid_request")


# ---- every error answer of the prediction routes ------------------------------------------------------


@pytest.mark.parametrize("route", ["/v1/predict", "/v1/explain"])
def test_single_image_routes_error_answers(make_client, models, route, leaf):
    c = make_client(models["answers"], max_image_bytes=20_000, max_image_pixels=50_000)
    assert_error(c.post(route), 422, "invalid_request")  # no image at all
    two = [("file", ("a.jpg", photo_bytes(0))), ("file", ("b.jpg", photo_bytes(1)))]
    assert_error(c.post(route, files=two), 422, "invalid_request")
    body = assert_error(c.post(route, files={"file": ("notes.txt", b"hello, not a photo")}), 422, "bad_image")
    assert "notes.txt" in body["message"] and body["hint"]
    body = assert_error(c.post(route, files={"file": ("big.png", flat_photo(size=(400, 300)))}), 413, "image_too_large")
    assert "pixels" in body["message"]
    big_file = photo_bytes(0, (200, 200), "PNG")
    assert len(big_file) > 20_000
    body = assert_error(c.post(route, files={"file": ("heavy.png", big_file)}), 413, "image_too_large")
    assert "bytes" in body["message"]
    assert_error(c.post(f"{route}?top_k=0", files={"file": ("a.jpg", photo_bytes(0))}), 422, "invalid_request")


@pytest.mark.parametrize("route", ["/v1/predict", "/v1/predict/batch", "/v1/explain"])
def test_request_bodies_over_the_route_limit_are_413_before_reading(make_client, models, route):
    c = make_client(models["answers"], max_image_bytes=10_000, max_batch_images=2)
    blob = b"\0" * 600_000
    body = assert_error(c.post(route, content=blob, headers={"content-type": "image/jpeg"}), 413, "request_too_large")
    assert "limit" in body["message"]

    def chunks():  # no Content-Length: the limit applies while the body streams in
        for _ in range(60):
            yield b"\0" * 10_000

    assert_error(c.post(route, content=chunks(), headers={"content-type": "image/jpeg"}), 413, "request_too_large")


def test_batch_error_answers(client):
    assert_error(client.post("/v1/predict/batch"), 422, "invalid_request")
    assert_error(client.post("/v1/predict/batch?top_k=abc", files=[("files", ("a", b"x"))]), 422, "invalid_request")


def test_no_serving_model_is_503_and_not_ready(make_client, no_starter, leaf):
    c = make_client(None)
    for route in ("/v1/predict", "/v1/explain"):
        body = assert_error(c.post(route, files={"file": ("a.jpg", leaf)}), 503, "no_model")
        assert "LEAFDOC_MODEL_DIR" in body["hint"]
    assert_error(c.post("/v1/predict/batch", files=[("files", ("a.jpg", leaf))]), 503, "no_model")
    r = c.get("/readyz")
    assert r.status_code == 503 and r.json()["ready"] is False and r.json()["checks"]["model"] != "ok"
    assert c.get("/healthz").json() == {"status": "ok"}


def test_readiness_names_no_internal_address_and_the_log_does(client, monkeypatch, caplog):
    """/readyz is public behind the proxy; it answered the database's and Redis's own errors, which name their hosts
    inside the cluster. Now the check says 'unreachable' and the server's log says why, once until it changes."""
    state = client.app.state.leafdoc
    db_error = 'connection to server at "postgres.leafdoc-data.svc" (10.0.3.7), port 5432 failed: Connection refused'

    def refused(*args, **kwargs):
        raise OSError(db_error)

    monkeypatch.setattr(state.catalog.engine, "connect", refused)
    monkeypatch.setattr(state.queue, "length", lambda: (_ for _ in ()).throw(ConnectionError("redis.internal:6379")))
    with caplog.at_level("WARNING", logger="leafdoc.service.routes.health"):
        for _ in range(3):
            r = client.get("/readyz")
    assert r.status_code == 503, r.text
    checks = r.json()["checks"]
    assert checks["catalog"] == checks["queue"] == "unreachable (the server's log says why)"
    assert "leafdoc-data" not in r.text and "10.0.3.7" not in r.text and "redis.internal" not in r.text
    logged = [rec.getMessage() for rec in caplog.records if rec.name == "leafdoc.service.routes.health"]
    assert sum("postgres.leafdoc-data.svc" in m for m in logged) == 1, logged  # once, not on every probe
    assert sum("redis.internal:6379" in m for m in logged) == 1, logged


# ---- admin token -----------------------------------------------------------------------------------

ADMIN_ROUTES = [
    ("post", "/v1/uploads"),
    ("get", "/v1/uploads"),
    ("get", "/v1/uploads/abc"),
    ("post", "/v1/training-jobs"),
    ("get", "/v1/training-jobs"),
    ("post", "/v1/models/1/promote"),
    ("post", "/v1/models/rollback"),
    ("get", "/v1/monitoring"),  # a business's volumes and its growers' diseases (LEAFDOC_MONITORING_OPEN opens it)
]


@pytest.mark.parametrize(("method", "route"), ADMIN_ROUTES)
def test_admin_routes_need_the_right_token(client, method, route):
    call = getattr(client, method)
    body = assert_error(call(route), 401, "unauthorized")
    assert "admin token" in body["message"] and "Bearer" in body["hint"]
    assert_error(call(route, headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
    assert_error(call(route, headers={"X-Admin-Token": TOKEN + "x"}), 401, "unauthorized")
    # The right token, as a bearer or a header, gets past the check (whatever the route answers next).
    assert call(route, headers=ADMIN).status_code not in (401, 403)
    assert call(route, headers={"X-Admin-Token": TOKEN}).status_code not in (401, 403)


def test_admin_routes_refuse_when_no_token_is_configured(make_client, models):
    c = make_client(models["answers"], admin_token=None)
    body = assert_error(c.post("/v1/models/rollback", headers=ADMIN), 403, "admin_disabled")
    assert "LEAFDOC_ADMIN_TOKEN" in body["hint"]
    assert c.post("/v1/predict", files={"file": ("a.jpg", photo_bytes(0))}).status_code == 200  # still open


# ---- models: promote, rollback, hot swap --------------------------------------------------------------


def register_copy(client, models, tmp_path, note: str) -> int:
    """Register another version (a copy of the tiny model that abstains unless 99% sure)."""
    registry = client.app.state.leafdoc.registry
    folder = model_copy(models["unsure"], tmp_path / note, note=note)
    version, _ = registry.register(folder, source=f"test:{note}")
    return version


def test_models_list_detail_and_their_errors(client):
    body = client.get("/v1/models").json()
    assert body["serving_version"] == 1
    [m] = body["models"]
    assert m["status"] == "serving" and m["serving"] is True and m["dataset"] == "tiny"
    assert body["history"][0]["action"] == "seed"
    detail = client.get("/v1/models/1").json()
    assert detail["card"]["input"]["size"] == 32 and set(detail["files"]) >= {"model.onnx", "labels.json"}
    # The card names the folder its photos came from, not where it was on the machine that trained it.
    assert detail["card"]["dataset"]["sources"] == ["leaves"]
    assert "named `leaves`: 18 photos of 3 classes" in detail["card"]["provenance"]
    assert "/tmp/" not in json.dumps(detail) and "pytest-of" not in json.dumps(detail)
    crops = sorted({label.split("___")[0].split("_(")[0].replace("_", " ").lower() for label in m["labels"]})
    assert m["crops"] == {"field": [], "lab_only": crops} == detail["crops"]  # learnt from lab photos only
    assert_error(client.get("/v1/models/99"), 404, "not_found")
    assert_error(client.get("/v1/models/latest"), 422, "invalid_request")
    assert_error(client.post("/v1/models/99/promote", headers=ADMIN), 404, "not_found")
    assert_error(client.post("/v1/models/1/promote", headers=ADMIN), 409, "conflict")
    body = assert_error(client.post("/v1/models/rollback", headers=ADMIN), 409, "conflict")
    assert "no earlier" in body["message"]
    assert_error(client.post("/v1/models/rollback", headers=ADMIN, json={"bogus": 1}), 422, "invalid_request")


def test_promote_switches_predictions_and_rollback_returns(client, models, tmp_path, leaf):
    v2 = register_copy(client, models, tmp_path, "v2")
    assert client.get(f"/v1/models/{v2}").json()["status"] == "candidate"
    r = client.post(f"/v1/models/{v2}/promote", headers=ADMIN, json={"reason": "looks better"})
    assert r.status_code == 200, r.text
    assert r.json()["serving_version"] == v2 and r.json()["previous_version"] == 1
    pred = client.post("/v1/predict", files={"file": ("a.jpg", leaf)}).json()
    assert pred["model_version"] == v2 and pred["abstained"] is True  # v2 abstains unless 99% sure
    statuses = {m["version"]: m["status"] for m in client.get("/v1/models").json()["models"]}
    assert statuses == {1: "archived", v2: "serving"}

    r = client.post("/v1/models/rollback", headers=ADMIN)
    assert r.status_code == 200 and r.json()["serving_version"] == 1 and r.json()["previous_version"] == v2
    assert client.post("/v1/predict", files={"file": ("a.jpg", leaf)}).json()["model_version"] == 1
    history = client.get("/v1/models").json()["history"]
    assert [h["action"] for h in history] == ["seed", "promote", "rollback"]
    assert history[1]["reason"] == "looks better"
    assert_error(client.post("/v1/models/rollback", headers=ADMIN), 409, "conflict")
    body = assert_error(client.post("/v1/models/1/promote", headers=ADMIN), 409, "conflict")  # serving already
    assert "already serving" in body["message"] and "GET /v1/models" in body["hint"]


def test_promotion_reaches_every_worker_without_restart(make_client, models, tmp_path, leaf):
    """Two API workers on one data home: promoting through one switches the other at its next request."""
    a = make_client(models["answers"], home=tmp_path / "shared")
    b = make_client(models["answers"], home=tmp_path / "shared")
    assert b.post("/v1/predict", files={"file": ("a.jpg", leaf)}).json()["model_version"] == 1
    v2 = register_copy(a, models, tmp_path, "v2")
    assert a.post(f"/v1/models/{v2}/promote", headers=ADMIN).status_code == 200
    assert b.post("/v1/predict", files={"file": ("a.jpg", leaf)}).json()["model_version"] == v2
    assert b.get("/metrics").text.count(f"leafdoc_serving_model_version {float(v2)}") == 1


def test_requests_in_flight_during_promotions_never_fail(client, models, tmp_path, leaf):
    v2 = register_copy(client, models, tmp_path, "v2")
    stop = threading.Event()
    answers: list[tuple[int, int | None]] = []

    def hammer() -> None:
        while not stop.is_set():
            r = client.post("/v1/predict", files={"file": ("a.jpg", leaf)})
            answers.append((r.status_code, r.json().get("model_version")))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            assert client.post(f"/v1/models/{v2}/promote", headers=ADMIN).status_code == 200
            assert client.post("/v1/models/rollback", headers=ADMIN).status_code == 200
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert answers and all(status == 200 for status, _ in answers)
    assert {v for _, v in answers} <= {1, v2}


def test_held_model_finishes_on_the_old_predictor_after_a_swap(client, models, tmp_path, leaf):
    holder = client.app.state.leafdoc.holder
    old = holder.current()
    v2 = register_copy(client, models, tmp_path, "v2")
    client.post(f"/v1/models/{v2}/promote", headers=ADMIN)
    assert holder.current().version == v2 and holder.current().predictor is not old.predictor
    x = old.predictor.preprocess(leaf)  # a request that started before the swap still completes
    assert old.predictor.predict_arrays(x[None], ["probabilities"])["probabilities"].shape == (1, 3)


# ---- datasets --------------------------------------------------------------------------------------


def test_datasets_and_their_stats(client, leaf_folder_module):
    assert client.get("/v1/datasets").json() == {"datasets": []}
    s = client.app.state.leafdoc.settings
    catalog = Catalog(s.catalog_url)
    ingest(leaf_folder_module, catalog, open_store(s.store_location), "tiny")
    catalog.dispose()
    [ds] = client.get("/v1/datasets").json()["datasets"]
    assert ds["name"] == "tiny" and ds["latest"] == 1 and ds["versions"][0]["n_images"] == 12
    r = client.get("/v1/datasets/tiny/stats?sample=20")
    assert r.status_code == 200, r.text
    stats = r.json()
    assert stats["n_images"] == 12 and stats["n_classes"] == 3 and stats["n_measured"] == 12
    assert set(stats["class_counts"].values()) == {4}
    assert client.get("/v1/datasets/tiny/stats?sample=20").json() == stats  # cached per version
    assert_error(client.get("/v1/datasets/tiny/stats?sample=2"), 422, "invalid_request")  # only the fixed sizes
    assert_error(client.get("/v1/datasets/nope/stats"), 404, "not_found")
    assert_error(client.get("/v1/datasets/tiny/stats?version=7"), 404, "not_found")
    assert_error(client.get("/v1/datasets/tiny/stats?sample=0"), 422, "invalid_request")


# ---- training-job routes without a worker (jobs run in test_service_jobs.py) -------------------------


def test_training_job_routes_and_their_errors(client, leaf_folder_module):
    assert_error(client.get("/v1/training-jobs"), 401, "unauthorized")  # the list is an operator's
    assert client.get("/v1/training-jobs", headers=ADMIN).json() == {"jobs": [], "queue_length": 0}
    body = assert_error(client.post("/v1/training-jobs", headers=ADMIN), 404, "not_found")
    assert "tiny" in body["message"]  # the default dataset does not exist yet
    assert "POST /v1/uploads" in body["hint"] and "leafdoc ingest" not in body["hint"]  # a client's way, not a command
    s = client.app.state.leafdoc.settings
    catalog = Catalog(s.catalog_url)
    ingest(leaf_folder_module, catalog, open_store(s.store_location), "tiny")
    catalog.dispose()
    bad = {"options": {"image_size": 5}}
    assert_error(client.post("/v1/training-jobs", headers=ADMIN, json=bad), 422, "invalid_request")
    assert_error(client.post("/v1/training-jobs", headers=ADMIN, json={"options": {"nope": 1}}), 422, "invalid_request")
    assert_error(client.post("/v1/training-jobs", headers=ADMIN, json={"dataset": "nope"}), 404, "not_found")
    assert_error(client.post("/v1/training-jobs", headers=ADMIN, json={"dataset_version": 3}), 404, "not_found")
    r = client.post("/v1/training-jobs", headers=ADMIN, json={"options": {"epochs": 1}})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["state"] == "queued" and job["dataset"] == "tiny" and job["dataset_version"] == 1
    assert job["options"]["epochs"] == 1 and job["options"]["image_size"] == 32  # the rest from the card
    assert job["parent_version"] == 1 and job["warm_start"] is True
    assert client.get(f"/v1/training-jobs/{job['id']}").json()["state"] == "queued"
    listing = client.get("/v1/training-jobs?state=queued", headers=ADMIN).json()
    assert listing["queue_length"] == 1 and [j["id"] for j in listing["jobs"]] == [job["id"]]
    assert client.get("/v1/training-jobs?state=failed", headers=ADMIN).json()["jobs"] == []
    assert_error(client.get("/v1/training-jobs?state=bogus", headers=ADMIN), 422, "invalid_request")
    assert_error(client.get("/v1/training-jobs/nope"), 404, "not_found")


# ---- operations ------------------------------------------------------------------------------------


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.head("/healthz").status_code == 200  # load balancers probe with HEAD too
    r = client.get("/readyz")
    assert r.status_code == 200
    # keep_photos: the page tells visitors whether their photos are kept; off unless LEAFDOC_KEEP_PHOTOS=true
    assert r.json() == {
        "ready": True,
        "status": "ok",
        "checks": {"catalog": "ok", "model": "ok", "queue": "ok"},
        "model_version": 1,
        "model_file": "model.onnx",  # LEAFDOC_ONNX_VARIANT unset: fp32 (test_job_serving_copy: the int8 file)
        "keep_photos": False,
    }


def test_metrics_has_the_named_series(make_client, models, leaf, tmp_path):
    c = make_client(models["unsure"])
    c.post("/v1/predict", files={"file": ("a.jpg", leaf)})  # abstains (unsure)
    c.post("/v1/predict", files={"file": ("b.png", flat_photo((0, 0, 0)))})  # abstains (poor photo)
    c.post("/v1/predict", files={"file": ("c.txt", b"nope")})  # 422
    text = c.get("/metrics").text
    assert 'leafdoc_http_requests_total{method="POST",route="/v1/predict",status="200"} 2.0' in text
    assert 'leafdoc_http_requests_total{method="POST",route="/v1/predict",status="422"} 1.0' in text
    assert 'leafdoc_http_request_duration_seconds_bucket{le="0.5",method="POST",route="/v1/predict"}' in text
    assert 'leafdoc_abstentions_total{reason="unsure"} 1.0' in text
    assert 'leafdoc_abstentions_total{reason="poor_photo"} 1.0' in text
    assert "leafdoc_serving_model_version 1.0" in text
    assert "leafdoc_queue_length 0.0" in text
    assert 'leafdoc_training_jobs{state="failed"} 0.0' in text
    c2 = make_client(models["answers"], home=tmp_path / "answers")
    label = c2.post("/v1/predict", files={"file": ("a.jpg", leaf)}).json()["label"]
    assert f'leafdoc_predictions_total{{label="{label}"}} 1.0' in c2.get("/metrics").text


def test_unknown_routes_and_methods_answer_json(client):
    body = assert_error(client.get("/v1/nothing"), 404, "not_found")
    assert "/v1/nothing" in body["message"]
    body = assert_error(client.get("/v1/predict"), 405, "method_not_allowed")
    assert "GET is not a method of /v1/predict" in body["message"] and "Allow" in body["hint"]
    # JSON nested too deep for the parser (FastAPI's bare 400 "There was an error parsing the body")
    deep = "[" * 1500 + "]" * 1500  # under the route's 4 KiB
    r = client.post("/v1/predictions/x/feedback", content='{"correct": ' + deep + "}", headers=JSON_TYPE)
    body = assert_error(r, 400, "bad_request")
    assert "could not be read as JSON" in body["message"]
    # a multipart body the parser cannot read says what to do
    bad = b"--b\r\nContent-Disposition: form-data; name=file; filename=" + b"x" * 70000 + b"\r\n\r\nz\r\n--b--\r\n"
    r = client.post("/v1/predict", content=bad, headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code >= 400 and r.json().get("hint"), r.text


def test_openapi_documents_every_route_with_its_error_answers(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for route in (
        "/v1/predict",
        "/v1/predict/batch",
        "/v1/explain",
        "/v1/uploads",
        "/v1/training-jobs",
        "/v1/training-jobs/{job_id}",
        "/v1/models",
        "/v1/models/{version}",
        "/v1/models/{version}/promote",
        "/v1/models/rollback",
        "/v1/datasets",
        "/v1/datasets/{name}/stats",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert route in paths, route
    assert "multipart/form-data" in paths["/v1/predict"]["post"]["requestBody"]["content"]
    assert {"413", "422", "503"} <= set(paths["/v1/predict"]["post"]["responses"])
    assert {"401", "403", "409", "413", "422"} <= set(paths["/v1/uploads"]["post"]["responses"])
    assert client.get("/docs").status_code == 200


def test_every_error_a_client_meets_is_in_the_openapi_document_with_the_body_it_has(client):
    """The API review of session 74: /openapi.json described the 422 of eleven routes as FastAPI's {"detail": [...]}
    (leafdoc sends {"error", "message", "hint"}), and left out the 415 of /v1/predict, the 400 and 413 of every JSON
    route and the admin gate's 401/429; a client generated from it failed on those. Each error below is made for real,
    then looked up in the document: its status listed for that route, with the body leafdoc sends."""
    from datetime import datetime

    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in json.dumps(spec)
    ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)  # client generators need them apart
    ico = io.BytesIO()
    Image.new("RGB", (64, 64), "green").save(ico, "ICO")
    r = client.post("/v1/predict", files={"file": ("leaf.jpg", photo_bytes(0))})
    pid = r.json()["prediction_id"]
    made = [
        ("get", "/v1/models/{version}", client.get("/v1/models/abc"), 422, "invalid_request"),
        ("get", "/v1/review", client.get("/v1/review", params={"limit": "x"}, headers=ADMIN), 422, "invalid_request"),
        ("get", "/v1/uploads", client.get("/v1/uploads"), 401, "unauthorized"),
        ("post", "/v1/predict", client.post("/v1/predict", files={"file": ("a.ico", ico.getvalue())}), 415, None),
        (
            "post",
            "/v1/predict/batch",
            client.post("/v1/predict/batch", json={"files": ["aGVsbG8="]}),
            415,
            "unsupported_media_type",
        ),
        (
            "post",
            "/v1/predictions/{prediction_id}/feedback",
            client.post(f"/v1/predictions/{pid}/feedback", content='{"correct": tru', headers=JSON_TYPE),
            400,
            "bad_request",
        ),
        (
            "post",
            "/v1/predictions/{prediction_id}/feedback",
            client.post(f"/v1/predictions/{pid}/feedback", content="correct=true"),
            422,
            "invalid_request",
        ),
        (
            "post",
            "/v1/models/{version}/promote",
            client.post("/v1/models/1/promote", content="x" * 2_000_000, headers={**ADMIN, **JSON_TYPE}),
            413,
            None,
        ),
    ]
    for method, path, r, status, code in made:
        assert r.status_code == status, (path, r.status_code, r.text)
        body = r.json()
        assert body["message"] and body["hint"] and (code is None or body["error"] == code), (path, body)
        documented = spec["paths"][path][method]["responses"]
        assert str(status) in documented, (path, status, sorted(documented))
        said = documented[str(status)]["content"]["application/json"]["schema"]["$ref"]
        assert said.endswith("/ErrorAnswer"), (path, status, said)
    assert "not valid JSON: Expecting value (character 12)" in made[5][2].json()["message"]
    assert "application/json" in made[6][2].json()["message"]
    assert "multipart" in made[4][2].json()["hint"]  # what to send instead
    assert made[2][2].headers["www-authenticate"].startswith("Bearer")
    # times carry their zone (the schema says date-time: RFC 3339 wants one)
    recorded = client.post(f"/v1/predictions/{pid}/feedback", json={"correct": True}).json()["recorded"]
    assert datetime.fromisoformat(recorded).utcoffset().total_seconds() == 0, recorded


def test_serving_path_never_imports_tensorflow(tiny_model, tmp_path):
    """The API process (app, prediction, explanation, uploads, job records) runs without TensorFlow."""
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from fastapi.testclient import TestClient
        import leafdoc.service.app, leafdoc.service.worker, leafdoc.service.training, leafdoc.model_versions
        from service_support import service_settings, photo_bytes
        s = service_settings(Path({str(tmp_path / "home")!r}), Path({str(tiny_model)!r}))
        c = TestClient(leafdoc.service.app.create_app(s))
        assert c.post("/v1/predict", files={{"file": ("a.jpg", photo_bytes(0))}}).status_code == 200
        assert c.post("/v1/explain", files={{"file": ("a.jpg", photo_bytes(0))}}).status_code == 200
        bad = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf2onnx"))
        assert not bad, bad
        print("ok")
        """
    )
    here = str(Path(__file__).parent)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=here, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-3000:]


def test_the_api_client_reads_why_a_server_is_not_ready(client, monkeypatch):
    """The desktop app's status bar showed a server not ready as the 503's body cut at 200 characters ("The server
    answered 503: {"ready":false,...,"model":"r"); the client now reads the body, so the app names the part that is not
    ready."""
    from leafdoc.api_client import LeafdocClient

    state = client.app.state.leafdoc
    monkeypatch.setattr(state.catalog.engine, "connect", lambda *a, **k: (_ for _ in ()).throw(OSError("refused")))
    api = LeafdocClient("http://testserver")
    api._http = client  # the app itself, in this process
    ready = api.ready()
    assert ready["ready"] is False and ready["checks"]["catalog"] == "unreachable (the server's log says why)"
    assert ready["checks"]["model"] == "ok" and ready["model_version"] == 1
    monkeypatch.undo()
    assert api.ready()["ready"] is True


def test_a_rollback_that_names_its_version_is_refused_when_another_would_serve(client, models, tmp_path):
    """The security review of session 73: the page's rollback button names the version it would serve, read when the
    versions were last shown; another admin's promotion meanwhile made the click serve another. A rollback sent with
    `to_version` now serves that version or is refused (409), changing nothing."""
    v2 = register_copy(client, models, tmp_path, "v2")
    v3 = register_copy(client, models, tmp_path, "v3")
    assert client.post(f"/v1/models/{v2}/promote", headers=ADMIN).status_code == 200  # the page: "Roll back to 1"
    assert client.post(f"/v1/models/{v3}/promote", headers=ADMIN).status_code == 200  # another admin, meanwhile
    body = assert_error(client.post("/v1/models/rollback", headers=ADMIN, json={"to_version": 1}), 409, "conflict")
    assert f"would now serve version {v2}, not version 1" in body["message"] and "GET /v1/models" in body["hint"]
    assert client.get("/v1/models").json()["serving_version"] == v3  # nothing changed
    r = client.post("/v1/models/rollback", headers=ADMIN, json={"to_version": v2})
    assert r.status_code == 200 and r.json()["serving_version"] == v2
    assert_error(client.post("/v1/models/rollback", headers=ADMIN, json={"to_version": 0}), 422, "invalid_request")


def test_a_page_of_another_site_calls_the_api_only_from_the_origins_the_operator_names(make_client, models):
    """The API review of session 74: a farm's web app on its own site could not call the API from the browser (no
    CORS answer: its preflight got 405). LEAFDOC_CORS_ORIGINS names the sites that may; others still may not."""
    from leafdoc.core.settings import Settings

    farm, other = "https://farm.example", "https://evil.example"
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    closed = make_client(models["answers"])
    r = closed.options("/v1/predict", headers={"Origin": farm, **preflight})
    assert r.status_code == 405 and "access-control-allow-origin" not in r.headers
    api = make_client(models["answers"], home=None, cors_origins=f"{farm}, https://lab.example:8443")
    for path in ("/v1/predict", "/v1/uploads"):  # an admin route's preflight too: it carries no token
        r = api.options(path, headers={"Origin": farm, **preflight})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == farm, (path, r.text)
        assert "authorization" in r.headers["access-control-allow-headers"].lower()
        r = api.options(path, headers={"Origin": other, **preflight})
        assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
    r = api.post("/v1/predict", files={"file": ("a.jpg", photo_bytes(0))}, headers={"Origin": farm})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == farm
    assert "content-language" in r.headers["access-control-expose-headers"].lower()
    r = api.post("/v1/predict", files={"file": ("a.jpg", photo_bytes(0))}, headers={"Origin": other})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers  # its page cannot read it
    assert_error(api.get("/v1/uploads", headers={"Origin": farm}), 401, "unauthorized")  # the token still needed
    for bad in ("farm.example", "https://farm.example/path", "ftp://farm.example"):
        with pytest.raises(ValueError, match="cors_origins"):
            Settings(cors_origins=bad)
