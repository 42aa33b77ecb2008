"""Load shedding (service/middleware.py, ShedLoad): while an API worker's event loop runs more than
LEAFDOC_SHED_AFTER_SECONDS behind, a prediction is answered 503 `busy` with Retry-After at once, and the probes are
still answered; once the loop catches up, predictions are answered again. The flood against a real server is in
tests/e2e/test_overload.py."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from service_support import assert_error, leaf_photos, model_copy, service_settings

from leafdoc.service.app import create_app
from leafdoc.service.middleware import LoopLag


def test_loop_lag_sees_a_blocked_loop_and_its_recovery():
    async def go() -> tuple[float, float, float]:
        lag = LoopLag(interval=0.02)
        lag.start()
        await asyncio.sleep(0.1)
        quiet = lag.now()
        time.sleep(0.4)  # a callback that holds the loop, as a queue of predictions does
        blocked = lag.now()
        await asyncio.sleep(0.2)
        return quiet, blocked, lag.now()

    quiet, blocked, after = asyncio.run(go())
    assert quiet < 0.15 and blocked >= 0.35 and after < 0.15, (quiet, blocked, after)


@pytest.fixture(scope="module")
def model(tiny_model, tmp_path_factory):
    return model_copy(tiny_model, tmp_path_factory.mktemp("model") / "answers", min_confidence=0.0)


@pytest.fixture(scope="module")
def leaf(tmp_path_factory) -> bytes:
    from tests.conftest import make_leaf_folder

    return leaf_photos(make_leaf_folder(tmp_path_factory.mktemp("leaves") / "leaves", per_class=1))[0].read_bytes()


def run_behind_a_blocked_loop(app, leaf: bytes, hold: float) -> dict[str, httpx.Response]:
    """A prediction to start the worker's lag timer; then the loop held for `hold` s with a prediction, a batch, a
    probe and a feedback queued behind it; then, the loop caught up, another prediction and /metrics."""

    async def go() -> dict[str, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://leafdoc") as c:
            first = await c.post("/v1/predict", files={"file": ("leaf.jpg", leaf)})
            await asyncio.sleep(0.3)

            async def block() -> None:
                time.sleep(hold)

            blocker = asyncio.create_task(block())
            queued = {
                "behind": c.post("/v1/predict", files={"file": ("leaf.jpg", leaf)}),
                "batch": c.post("/v1/predict/batch", files=[("files", ("a.jpg", leaf)), ("files", ("b.jpg", leaf))]),
                "healthz": c.get("/healthz"),
                "feedback": c.post(f"/v1/predictions/{first.json()['prediction_id']}/feedback", json={"correct": True}),
            }
            tasks = {k: asyncio.create_task(v) for k, v in queued.items()}
            await blocker
            answers = {k: await t for k, t in tasks.items()}
            await asyncio.sleep(0.5)  # the loop catches up
            answers["first"] = first
            answers["after"] = await c.post("/v1/predict", files={"file": ("leaf.jpg", leaf)})
            answers["metrics"] = await c.get("/metrics")
            return answers

    return asyncio.run(go())


def test_predictions_are_shed_while_the_loop_is_behind_and_the_probes_are_not(tmp_path, model, leaf):
    app = create_app(service_settings(tmp_path / "home", model, shed_after_seconds=0.2, model_check_seconds=3600.0))
    a = run_behind_a_blocked_loop(app, leaf, hold=0.6)
    assert a["first"].status_code == 200 and a["after"].status_code == 200, (a["first"].text, a["after"].text)
    assert a["after"].json()["top_k"][0]["label"] == a["first"].json()["top_k"][0]["label"]
    for name in ("behind", "batch"):
        body = assert_error(a[name], 503, "busy")
        assert a[name].headers["retry-after"] == "1"
        assert "busy" in body["message"] and "again" in body["hint"], body
    assert a["healthz"].status_code == 200 and a["feedback"].status_code == 200, (a["healthz"].text, a["feedback"].text)
    metrics = a["metrics"].text
    assert "leafdoc_requests_shed_total 2.0" in metrics, metrics
    for route in ("/v1/predict", "/v1/predict/batch"):  # shed before routing, counted under their own routes
        assert f'leafdoc_http_requests_total{{method="POST",route="{route}",status="503"}} 1.0' in metrics, metrics
    lag = [line for line in metrics.splitlines() if line.startswith("leafdoc_event_loop_lag_seconds ")]
    assert lag and float(lag[0].split()[1]) < 0.2, lag  # the last check, after the loop caught up


def test_nothing_is_shed_with_shedding_off(tmp_path, model, leaf):
    app = create_app(service_settings(tmp_path / "home", model, shed_after_seconds=0.0, model_check_seconds=3600.0))
    a = run_behind_a_blocked_loop(app, leaf, hold=0.6)
    assert [a[k].status_code for k in ("first", "behind", "batch", "after")] == [200] * 4
