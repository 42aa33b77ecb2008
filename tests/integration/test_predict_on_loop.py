"""Single predictions on the API worker's event loop (Settings.predict_on_loop): a cheap photo is predicted there
and answers exactly as through the threadpool; a costly one, a progressive JPEG or another format goes to the
threadpool; the serving pointer is checked in a thread of its own, so a promotion still reaches the worker; errors
answer the same either way."""

from __future__ import annotations

import asyncio
import io
import time

import pytest
from PIL import Image
from service_support import ADMIN, Clients, assert_error, leaf_photos, model_copy, photo_bytes, service_settings

from leafdoc.service import serving


@pytest.fixture(scope="module")
def model(tiny_model, tmp_path_factory):
    return model_copy(tiny_model, tmp_path_factory.mktemp("model") / "answers", min_confidence=0.0)


@pytest.fixture
def make_client(tmp_path, model):
    clients = Clients()
    n = iter(range(100))

    def make(home=None, **overrides):
        values = dict(model_check_seconds=3600.0, predict_on_loop=True)
        values.update(overrides)
        return clients(service_settings(home or tmp_path / f"home{next(n)}", model, **values))

    yield make
    clients.close()


@pytest.fixture
def where(monkeypatch):
    """Where each prediction ran: "loop" (the request's event loop thread) or "thread" (a threadpool thread)."""
    seen: list[str] = []
    real = serving.predict_bytes

    def spy(*args, **kwargs):
        try:
            asyncio.get_running_loop()
            seen.append("loop")
        except RuntimeError:
            seen.append("thread")
        return real(*args, **kwargs)

    monkeypatch.setattr(serving, "predict_bytes", spy)
    return seen


@pytest.fixture(scope="module")
def leaf(tmp_path_factory):
    from tests.conftest import make_leaf_folder

    return leaf_photos(make_leaf_folder(tmp_path_factory.mktemp("leaves") / "leaves", per_class=1))[0].read_bytes()


def without_id(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "prediction_id"}


def test_a_cheap_photo_is_predicted_on_the_loop_and_answers_as_in_the_threadpool(make_client, where, leaf):
    on, off = make_client(), make_client(predict_on_loop=False)
    a = on.post("/v1/predict", files={"file": ("leaf.jpg", leaf)})
    b = off.post("/v1/predict", files={"file": ("leaf.jpg", leaf)})
    assert a.status_code == b.status_code == 200, (a.text, b.text)
    assert where == ["loop", "thread"]
    assert without_id(a.json()) == without_id(b.json())
    png = photo_bytes(3, (64, 48), "PNG")  # a small PNG is cheap too, and the raw body the same as multipart
    r = on.post("/v1/predict", content=png, headers={"content-type": "image/png"})
    assert r.status_code == 200 and where[-1] == "loop"
    # Both answers are counted on this path too (diagnoses and abstentions).
    counted = [
        float(line.rsplit(" ", 1)[1])
        for line in on.get("/metrics").text.splitlines()
        if line.startswith(("leafdoc_predictions_total{", "leafdoc_abstentions_total{"))
    ]
    assert sum(counted) == 2


def test_a_prediction_on_the_loop_hands_nothing_to_the_threadpool(make_client, leaf, monkeypatch):
    """Dependencies included: FastAPI runs a plain `def` dependency (get_state, require_admin) in its threadpool,
    a hand-off and back on every request that costs the loop what predicting there saves."""
    import anyio.to_thread

    handed: list[str] = []
    real = anyio.to_thread.run_sync

    async def spy(func, *args, **kwargs):
        handed.append(getattr(func, "func", func).__qualname__)  # Starlette wraps the call in functools.partial
        return await real(func, *args, **kwargs)

    c = make_client()
    assert c.post("/v1/predict", files={"file": ("leaf.jpg", leaf)}).status_code == 200  # warm: the first loads
    monkeypatch.setattr(anyio.to_thread, "run_sync", spy)
    for _ in range(3):
        r = c.post("/v1/predict", files={"file": ("leaf.jpg", leaf)})
        assert r.status_code == 200 and r.json()["label"] is not None, r.text
    assert handed == [], f"handed to the threadpool during predictions on the loop: {handed}"
    # The spy does see a hand-off: the same photo through the threadpool path is one per request.
    off = make_client(predict_on_loop=False)
    assert off.post("/v1/predict", files={"file": ("leaf.jpg", leaf)}).status_code == 200
    assert handed == ["predict_bytes"], handed


def test_costly_photos_progressive_jpegs_and_other_formats_go_to_the_threadpool(make_client, where):
    c = make_client(loop_decode_bytes=20_000)
    big_png = photo_bytes(0, (100, 100), "PNG")  # 100 x 100 x 3 = 30,000 decoded bytes: over the 20,000
    small_png = photo_bytes(0, (80, 80), "PNG")  # 19,200: under
    big_jpeg = photo_bytes(1, (400, 300), "JPEG")
    assert len(big_jpeg) > 20_000
    webp, progressive = io.BytesIO(), io.BytesIO()
    Image.open(io.BytesIO(small_png)).save(webp, "WEBP")
    Image.open(io.BytesIO(small_png)).save(progressive, "JPEG", progressive=True)
    for data in (big_png, small_png, big_jpeg, webp.getvalue(), progressive.getvalue()):
        assert c.post("/v1/predict", files={"file": ("p", data)}).status_code == 200
    assert where == ["thread", "loop", "thread", "thread", "thread"]


def test_a_promotion_reaches_a_worker_predicting_on_its_loop_without_holding_a_request(
    make_client, where, tmp_path, model
):
    """Two API workers on one data home; the second predicts on its loop and checks the serving pointer at every
    request: in a thread of its own, so the request that finds the check due is answered by the version loaded
    now, and the promoted version serves the requests after the check."""
    a = make_client(home=tmp_path / "shared")
    b = make_client(home=tmp_path / "shared", model_check_seconds=0.0)
    photo = photo_bytes(0)
    assert b.post("/v1/predict", files={"file": ("p.jpg", photo)}).json()["model_version"] == 1
    registry = a.app.state.leafdoc.registry
    v2, _ = registry.register(model_copy(model, tmp_path / "v2", note="v2"), source="test:v2")
    assert a.post(f"/v1/models/{v2}/promote", headers=ADMIN).status_code == 200
    holder = b.app.state.leafdoc.holder
    deadline = time.monotonic() + 60
    versions = []
    while time.monotonic() < deadline and (not versions or versions[-1] != v2):
        versions.append(b.post("/v1/predict", files={"file": ("p.jpg", photo)}).json()["model_version"])
        time.sleep(0.05)
    assert versions[-1] == v2 and set(versions) <= {1, v2}, versions
    assert holder.loaded.version == v2 and set(where) == {"loop"}, where


def test_errors_on_the_loop_answer_as_in_the_threadpool(make_client, where):
    for on_loop in (True, False):
        c = make_client(predict_on_loop=on_loop, max_image_pixels=50_000)
        whole = photo_bytes(4, (64, 48), "JPEG")
        broken = whole[: len(whole) // 2]  # a sequential JPEG's headers, then half its data
        body = assert_error(c.post("/v1/predict", files={"file": ("broken.jpg", broken)}), 422, "bad_image")
        assert "broken.jpg" in body["message"] and body["hint"]
        # 120,000 pixels: over the limit, refused from the header (a PNG: a JPEG is held to it at its reduced scale)
        huge = photo_bytes(2, (400, 300), "PNG")
        body = assert_error(c.post("/v1/predict", files={"file": ("huge.png", huge)}), 413, "image_too_large")
        assert "pixels" in body["message"]
        assert c.get("/healthz").status_code == 200  # the loop is still serving after the errors
    assert where == ["loop", "loop", "thread", "thread"]
