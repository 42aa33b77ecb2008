"""The request counter of /metrics: a request is counted, with its status, before the last part of its answer leaves,
so a client that has its whole answer finds it in the next scrape (with two workers, a scrape right after the last of
8 answers once said 7: the count came after the send). A request that ends with no whole answer is counted too."""

from __future__ import annotations

import asyncio

import pytest

from leafdoc.service.middleware import RequestMetrics
from leafdoc.service.prometheus import ServiceMetrics


def counted(metrics: ServiceMetrics, path: str, status: str) -> float:
    value = metrics.registry.get_sample_value(
        "leafdoc_http_requests_total", {"method": "POST", "route": path, "status": status}
    )
    return value or 0.0


def call(app, path: str = "/v1/predict") -> list[tuple[str, float]]:
    """Runs one request through `app`; what the client received, with the count of 200s at that moment."""
    metrics = app.metrics
    received = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        received.append((message["type"], counted(metrics, path, "200")))

    scope = {"type": "http", "path": path, "method": "POST"}
    asyncio.run(app(scope, receive, send))
    return received


def metrics_around(inner) -> RequestMetrics:
    return RequestMetrics(inner, ServiceMetrics(lambda: {}), paths=frozenset({"/v1/predict"}))


def test_an_answer_is_counted_before_its_last_part_reaches_the_client():
    async def answer(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{", "more_body": True})
        await send({"type": "http.response.body", "body": b"}"})

    app = metrics_around(answer)
    received = call(app)
    # Not yet counted while the answer is under way; counted once, by the time its last part is sent.
    assert received == [("http.response.start", 0.0), ("http.response.body", 0.0), ("http.response.body", 1.0)]
    assert counted(app.metrics, "/v1/predict", "200") == 1.0


def test_a_request_that_ends_without_an_answer_is_counted_as_an_error_once():
    async def broken(scope, receive, send):
        raise RuntimeError("the route failed before answering")

    app = metrics_around(broken)
    with pytest.raises(RuntimeError):
        call(app)
    assert counted(app.metrics, "/v1/predict", "500") == 1.0
    assert counted(app.metrics, "/v1/predict", "200") == 0.0
