"""Clients that stop sending, against a real `leafdoc serve` (two API workers, LEAFDOC_CLIENT_TIMEOUT_SECONDS=1): a
connection that sends nothing, half its headers, half a photo or half a bulk upload is answered 408
`request_timeout` and closed, and the stalled upload leaves nothing behind; a photo sent slowly but steadily is
diagnosed. Before, each of these connections was held for ever (still open after 100 s), one file descriptor and
the bytes sent so far each."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest
from loadtest.images import multipart
from tests.conftest import make_leaf_folder
from tests.live_server import ADMIN, answering_copy, read_until_closed, start_server

pytestmark = pytest.mark.e2e

TIMEOUT = 1.0


def until_closed(sock: socket.socket) -> tuple[float, int, dict]:
    """Seconds until the server closed the connection, and the status and JSON of what it sent before."""
    took, status, _, body = read_until_closed(sock)
    return took, status, json.loads(body)


def test_stalled_clients_are_timed_out_and_a_slow_one_is_answered(tmp_path, tiny_model):
    photo = next(make_leaf_folder(tmp_path / "leaves", per_class=1).rglob("*.jpg")).read_bytes()
    server = start_server(
        tmp_path,
        answering_copy(tiny_model, tmp_path / "model"),
        workers=2,
        LEAFDOC_UI="false",
        LEAFDOC_CLIENT_TIMEOUT_SECONDS=str(TIMEOUT),
    )
    url = urlsplit(server.base)
    try:
        expected = httpx.post(f"{server.base}/v1/predict", files={"file": ("leaf.jpg", photo)}, timeout=30).json()
        body, ctype = multipart("file", [("leaf.jpg", photo)])

        def head(route: str, length: int, extra: str = "") -> bytes:
            return (
                f"POST {route} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: {ctype}\r\n{extra}"
                f"Content-Length: {length}\r\n\r\n"
            ).encode()

        token = ADMIN["Authorization"]
        stalled = {
            "nothing sent": b"",
            "half the headers": head("/v1/predict", len(body))[:40],
            "half a photo": head("/v1/predict", len(body)) + body[: len(body) // 2],
            "half an upload": head("/v1/uploads?label=Corn___rust", len(body), f"Authorization: {token}\r\n")
            + body[: len(body) // 2],
        }
        socks = {}
        for name, sent in stalled.items():
            socks[name] = socket.create_connection((url.hostname, url.port), timeout=30)
            socks[name].sendall(sent)
        results = {name: until_closed(s) for name, s in socks.items()}

        # A photo sent in pieces, one every 0.4 s for about 3 s: three times the timeout in all, never idle that long.
        slow = socket.create_connection((url.hostname, url.port), timeout=30)
        request = head("/v1/predict", len(body), "Connection: close\r\n") + body
        piece = len(request) // 8 + 1
        for i in range(0, len(request), piece):
            slow.sendall(request[i : i + piece])
            time.sleep(0.4)
        took, status, slow_answer = until_closed(slow)
        uploads = httpx.get(f"{server.base}/v1/uploads", headers=ADMIN, timeout=30).json()["uploads"]
        log = server.log.read_text(errors="replace")
    finally:
        server.stop()
    for name, (seconds, code, error) in results.items():
        assert code == 408 and error["error"] == "request_timeout" and error["hint"], (name, code, error)
        assert seconds < TIMEOUT + 3, (name, seconds)
    assert status == 200 and slow_answer["top_k"] == expected["top_k"], slow_answer
    assert uploads == [] and not any((server.home / "uploads").iterdir())  # the stalled upload left nothing
    assert "Traceback" not in log, log[-3000:]
