"""Clients that stop sending (service/protocol.py): uvicorn as `leafdoc serve` runs it answers 408
`request_timeout` and closes a connection whose headers are not in within the client timeout, or whose body stops
arriving for that long; a slow client that keeps sending, and time the server itself is not reading, never count.
Before, all three kinds of stalled connection were still open after 100 s.

Served here: a plain ASGI app that hands the timeout to the server in its lifespan's state, as leafdoc's app does
(tests/e2e/test_slow_clients_serve.py runs the real `leafdoc serve`)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import time

import uvicorn
from tests.live_server import free_port, read_response, read_until_closed, uvicorn_in_thread

from leafdoc.service.protocol import READ_AHEAD_BYTES, TIMEOUT_STATE_KEY
from leafdoc.service.run import uvicorn_options

TIMEOUT = 0.6


class Served:
    """uvicorn with serve's options in a thread, serving an app that reads the whole body (after `sleep` seconds,
    busy elsewhere) and answers its sha256; `seen` holds what each request's app got: its digest, or "disconnect"."""

    def __init__(self, sleep: float = 0.0):
        self.seen: list[str] = []
        self.sleep = sleep
        self.port = free_port()
        options = uvicorn_options("127.0.0.1", self.port, 1, "warning")
        options.update(factory=False, log_config=None, interface="asgi3")
        self.config = uvicorn.Config(self.app, **options)

    async def app(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            scope["state"][TIMEOUT_STATE_KEY] = TIMEOUT
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await asyncio.sleep(self.sleep)
        digest, more = hashlib.sha256(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.seen.append("disconnect")
                return
            digest.update(message.get("body", b""))
            more = message.get("more_body", False)
        self.seen.append(digest.hexdigest())
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]})
        await send({"type": "http.response.body", "body": digest.hexdigest().encode()})

    def __enter__(self) -> Served:
        self.server, self.thread = uvicorn_in_thread(self.config)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)


def post_head(length: int) -> bytes:
    return f"POST /photo HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode()


def test_stalled_connections_are_answered_408_and_closed():
    with Served() as served:
        idle = served.connect()  # sends nothing at all
        half_headers = served.connect()
        half_headers.sendall(b"POST /photo HTTP/1.1\r\nHost: x\r\n")
        half_body = served.connect()
        half_body.sendall(post_head(100_000) + bytes(40_000))
        stalled = (("idle", idle), ("headers", half_headers), ("body", half_body))
        results = {name: read_until_closed(s) for name, s in stalled}
        seen = list(served.seen)
    errors = {}
    for name, (took, status, headers, body) in results.items():
        errors[name] = json.loads(body)
        assert status == 408 and errors[name]["error"] == "request_timeout", (name, status, body)
        assert took < TIMEOUT + 1.5, (name, took)
        assert headers["connection"] == "close"
    assert "headers were not all in within 0.6 s" in errors["headers"]["message"]
    assert "nothing came for 0.6 s" in errors["body"]["message"]
    assert seen == ["disconnect"]  # the app waiting for the body was told the client is gone, and kept nothing


def test_a_slow_client_that_keeps_sending_is_never_cut():
    """Bytes every 0.3 s for 3 s (five times the timeout in all): the timeout is between reads, not for the whole."""
    payload = bytes(range(256)) * 40
    with Served() as served:
        sock = served.connect()
        sock.sendall(post_head(len(payload)))
        for i in range(0, len(payload), 1024):
            time.sleep(0.3)
            sock.sendall(payload[i : i + 1024])
        _, _, data = read_response(sock)
    assert data == hashlib.sha256(payload).hexdigest().encode(), data[:200]


def test_time_the_server_is_not_reading_is_not_the_clients():
    """The app busy for 1.5 s (2.5 times the timeout) before it reads a 3 MB body sent at once: uvicorn stops
    reading after the read-ahead, the client waits on the server, and the body arrives whole."""
    payload = bytes(range(256)) * (3 * 1024 * 4)
    assert len(payload) > 2 * READ_AHEAD_BYTES
    with Served(sleep=1.5) as served:
        sock = served.connect()
        sender = threading.Thread(target=sock.sendall, args=(post_head(len(payload)) + payload,))
        sender.start()
        status, _, body = read_response(sock)
        sender.join()
    assert status == 200 and body == hashlib.sha256(payload).hexdigest().encode()


def test_a_kept_alive_connection_waits_between_requests_as_uvicorn_keeps_it():
    """Idle between requests is uvicorn's keep-alive (5 s), not the request timeout: a second request 1.2 s after the
    first answer (twice the timeout) is answered on the same connection."""
    with Served() as served:
        sock = served.connect()
        for payload in (b"first", b"second"):
            sock.sendall(post_head(len(payload)) + payload)
            status, _, body = read_response(sock)
            assert status == 200 and body == hashlib.sha256(payload).hexdigest().encode()
            time.sleep(2 * TIMEOUT)
