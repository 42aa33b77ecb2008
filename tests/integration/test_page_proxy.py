"""/ui forwarded to the page's own process (ui/proxy.py), as the API workers of `leafdoc serve --workers N` do: two
real uvicorn servers, the page's stand-in on a Unix socket and a front server with /ui mounted by `mount_ui` as a
worker mounts it. What the page gets must be what the visitor sent (body, path, query, Host), less the hop-by-hop
headers and with the visitor's own address; an event stream must reach the visitor as it is sent and stop when the
visitor leaves; no page process must give a plain 503 that names no path."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from tests.live_server import free_port, uvicorn_in_thread

from leafdoc.core.settings import Settings
from leafdoc.ui.mount import mount_ui
from leafdoc.ui.proxy import NOT_RUNNING, PageProxy

BODY = random.Random(1).randbytes(3 * 1024 * 1024 + 17)  # several chunks; a chunk lost or reordered shows


class Page:
    """The page process's stand-in: echoes what it got; streams events until the visitor goes."""

    def __init__(self) -> None:
        self.stream_left = threading.Event()
        self.stream_sent = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/ui/stream":
            await self.stream(receive, send)
            return
        digest, size, more = hashlib.sha256(), 0, True
        while more:
            message = await receive()
            digest.update(message.get("body", b""))
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        seen = {
            "method": scope["method"],
            "raw_path": scope["raw_path"].decode(),
            "query": scope["query_string"].decode(),
            "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
            "sha256": digest.hexdigest(),
            "size": size,
        }
        body = json.dumps(seen).encode()
        headers = [(b"content-type", b"application/json"), (b"x-page", b"yes"), (b"connection", b"keep-alive")]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def stream(self, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        gone = asyncio.create_task(disconnected())
        for i in range(600):  # a minute at most
            await send({"type": "http.response.body", "body": f"data: {i}\n\n".encode(), "more_body": True})
            self.stream_sent = i + 1
            await asyncio.sleep(0.1)
            if gone.done():
                self.stream_left.set()
                return
        await send({"type": "http.response.body", "body": b""})


def _run(app, **where) -> tuple[uvicorn.Server, threading.Thread]:
    return uvicorn_in_thread(uvicorn.Config(app, lifespan="off", log_level="warning", **where))


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[tuple[str, Page]]:
    folder = Path(tempfile.mkdtemp(prefix="leafdoc-test-"))  # short: a socket's path has at most 107 bytes
    page = Page()
    page_server, page_thread = _run(page, uds=str(folder / "page.sock"))
    front = Starlette()
    mount_ui(front, Settings(home=tmp_path_factory.mktemp("home"), ui_page_socket=folder / "page.sock"))
    port = free_port()
    # proxy_headers off: the visitor here connects directly (uvicorn trusts X-Forwarded-For from 127.0.0.1 by default)
    front_server, front_thread = _run(front, host="127.0.0.1", port=port, proxy_headers=False)
    yield f"http://127.0.0.1:{port}", page
    for server, thread in ((front_server, front_thread), (page_server, page_thread)):
        server.should_exit = True
        thread.join(timeout=30)


def test_the_page_gets_the_request_as_the_visitor_sent_it(servers):
    base, _ = servers
    sent_headers = {
        "Host": "leafdoc.example:8443",  # Gradio writes its URLs from it
        "X-Visit": "mine",
        "X-Forwarded-For": "6.6.6.6",  # forged: the page must see the visitor's own address instead
        "X-Forwarded-Proto": "https",  # forged too: the visitor came over plain http
        "TE": "trailers",  # hop-by-hop: not forwarded
        "Connection": "keep-alive, X-Hop",
        "X-Hop": "for the next hop only",  # named by Connection: not forwarded either
    }
    r = httpx.post(f"{base}/ui/gradio_api/upload?upload_id=a%2Fb&x=1", content=BODY, headers=sent_headers, timeout=30)
    assert r.status_code == 201, r.text
    assert r.headers["x-page"] == "yes"
    seen = r.json()
    headers = dict(seen["headers"])
    assert seen["method"] == "POST"
    assert seen["raw_path"] == "/ui/gradio_api/upload"
    assert seen["query"] == "upload_id=a%2Fb&x=1"
    assert (seen["size"], seen["sha256"]) == (len(BODY), hashlib.sha256(BODY).hexdigest())  # whole and in order
    assert headers["host"] == "leafdoc.example:8443"
    assert headers["x-visit"] == "mine"
    assert [v for k, v in seen["headers"] if k == "x-forwarded-for"] == ["127.0.0.1"]
    assert [v for k, v in seen["headers"] if k == "x-forwarded-proto"] == ["http"]
    assert "te" not in headers and "transfer-encoding" not in headers and "x-hop" not in headers
    assert headers["content-length"] == str(len(BODY))

    got = httpx.get(f"{base}/ui/?__theme=dark", timeout=30).json()  # no body: none sent on
    assert (got["method"], got["raw_path"], got["query"], got["size"]) == ("GET", "/ui/", "__theme=dark", 0)
    assert "content-length" not in dict(got["headers"])


def test_an_event_stream_arrives_as_it_is_sent_and_stops_when_the_visitor_leaves(servers):
    base, page = servers
    page.stream_left.clear()
    start = time.monotonic()
    with httpx.stream("GET", f"{base}/ui/stream", timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = r.iter_text()
        first = next(events)
        assert first.startswith("data: 0"), first
        assert time.monotonic() - start < 5  # long before the stream would end by itself (a minute)
        assert next(events).startswith("data: ")
    sent_when_left = page.stream_sent
    assert page.stream_left.wait(10), "the page kept streaming to a visitor who had gone"
    assert page.stream_sent <= sent_when_left + 20


def test_without_the_page_process_the_visitor_gets_a_plain_503_naming_no_path(tmp_path):
    socket = tmp_path / "nothing-here.sock"

    async def visit() -> httpx.Response:
        transport = httpx.ASGITransport(app=PageProxy(socket), client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://leafdoc") as client:
            return await client.get("/ui/")

    r = asyncio.run(visit())
    assert r.status_code == 503
    assert r.text == NOT_RUNNING
    assert str(tmp_path) not in r.text and "sock" not in r.text
