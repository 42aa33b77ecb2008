"""Request bodies read ahead (service/protocol.py): the uvicorn that `leafdoc serve` runs takes up to 1 MiB of a
request body while the app is busy elsewhere, so a 2 MB phone photo reaches the app in two or three steps of the
worker's event loop, not the ten of uvicorn's own 64 KiB (under load, 2.3 against 1.55-1.59 times a small
photo's p95: docs/load-tests.md)."""

from __future__ import annotations

import asyncio
import hashlib
import random

import httpx
import uvicorn
from tests.live_server import free_port, uvicorn_in_thread

from leafdoc.service.protocol import READ_AHEAD_BYTES
from leafdoc.service.run import uvicorn_options

BODY = 2 * 1024 * 1024  # a 12 MP phone photo is about 2.1 MB
PAYLOAD = random.Random(0).randbytes(BODY)  # not one repeated byte: a chunk lost, doubled or reordered shows


def _chunks_seen(http: str | None) -> list[int]:
    """The sizes of the body chunks an app gets when it first looks at the body half a second after the request
    started, served by uvicorn with serve's options (or with another `http` protocol)."""
    seen: list[int] = []

    async def app(scope, receive, send):
        assert scope["type"] == "http"
        await asyncio.sleep(0.5)  # the event loop is busy with other requests while the body arrives
        digest, more = hashlib.sha256(), True
        while more:
            message = await receive()
            seen.append(len(message.get("body", b"")))
            digest.update(message.get("body", b""))
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": digest.hexdigest().encode()})

    port = free_port()
    options = uvicorn_options("127.0.0.1", port, 1, "warning")
    options.update(factory=False, lifespan="off", log_config=None)  # a plain ASGI app; the test's own logging
    if http is not None:
        options["http"] = http
    server, thread = uvicorn_in_thread(uvicorn.Config(app, **options))
    try:
        r = httpx.post(f"http://127.0.0.1:{port}/", content=PAYLOAD, timeout=30)
        assert r.status_code == 200 and r.text == hashlib.sha256(PAYLOAD).hexdigest()  # the body, whole and in order
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    return seen


def test_serve_reads_a_phone_photo_ahead_while_the_app_is_busy():
    seen = _chunks_seen(None)
    assert sum(seen) == BODY
    # Read while the app slept: everything up to the read-ahead limit came in its first chunk.
    assert seen[0] > READ_AHEAD_BYTES and len([n for n in seen if n]) <= 3, seen


def test_uvicorn_own_protocol_would_have_stopped_at_64_kib():
    """The check above can fail: uvicorn's own protocol (measured: 128-256 KB a step, ten steps) leaves the rest
    unread until the app asks."""
    seen = _chunks_seen("httptools")
    assert sum(seen) == BODY and seen[0] <= 64 * 1024 + 256 * 1024 and len([n for n in seen if n]) >= 6, seen
