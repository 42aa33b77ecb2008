"""What one client may make a real `leafdoc serve` hold (service/protocol.py, service/middleware.py), over raw sockets:
a request head that never ends is refused with 431 (a URL: 414) once it passes HEAD_LIMIT_BYTES, and the worker
answers others meanwhile; large but ordinary headers still pass, counted per request on a kept-alive connection; a
body that comes slower than LEAFDOC_BODY_MIN_BYTES_PER_SECOND is cut with 408; a body that would take the worker's
LEAFDOC_MAX_BODY_BYTES_IN_FLIGHT over is answered 503 `busy` before it is read.

Before: a 100 MiB header cost 9.4 s of CPU on the event loop (/healthz waited 9.5 s) and was cut only by the 60 s
header timeout; a body trickling 1 byte every 10 s was never cut; and any number of 200 MiB bodies were taken in at
once. The server here runs the shipped starter model (no training) with a 1 s body-rate window and an 8 MiB budget,
so that each test takes seconds."""

from __future__ import annotations

import io
import json
import select
import socket
import threading
import time
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from PIL import Image
from tests.live_server import read_response, read_responses, read_until_closed, start_server

from leafdoc.model_versions import starter_model_dir
from leafdoc.service.protocol import HEAD_LIMIT_BYTES

pytestmark = pytest.mark.e2e

MIN_RATE = 20_000  # bytes a second, over each window of
WINDOW = 1.0  # second
BUDGET = 8 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("limits")
    srv = start_server(
        root,
        starter_model_dir(),
        LEAFDOC_UI="false",
        LEAFDOC_BODY_MIN_BYTES_PER_SECOND=str(MIN_RATE),
        LEAFDOC_BODY_RATE_WINDOW_SECONDS=str(WINDOW),
        LEAFDOC_MAX_BODY_BYTES_IN_FLIGHT=str(BUDGET),
    )
    yield srv
    srv.stop()


def connect(server) -> socket.socket:
    url = urlsplit(server.base)
    return socket.create_connection((url.hostname, url.port), timeout=10)


def photo_jpeg(side: int = 400) -> bytes:
    """A leaf-green noise JPEG of about 150-200 KB (noise does not compress): a photo as a phone might send it."""
    rng = np.random.default_rng(0)
    arr = np.clip(np.array([40, 160, 60]) + rng.integers(-60, 60, (side, side, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def post_head(server, length: int, route: str = "/v1/predict") -> bytes:
    return (
        f"POST {route} HTTP/1.1\r\nHost: {urlsplit(server.base).netloc}\r\nContent-Type: image/jpeg\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def send_without_end(sock: socket.socket, start: bytes, filler: bytes, most: int) -> tuple[int, float | None]:
    """Send `start`, then `filler` over and over (up to `most` bytes) until the server answers: (bytes sent, seconds
    until the answer was there to read, None if it never came while sending)."""
    began, sent = time.monotonic(), 0
    sock.sendall(start)
    try:
        while sent < most:
            if select.select([sock], [], [], 0)[0]:
                return sent, time.monotonic() - began
            sock.sendall(filler)
            sent += len(filler)
    except OSError:  # the server closed: what it answered is still there to read
        return sent, time.monotonic() - began
    return sent, None


def test_a_header_that_never_ends_is_refused_431_while_the_worker_answers_others(server):
    """Up to 64 MiB of one header line (uvicorn alone: 3-4 s of CPU on the worker's loop, and no answer until its
    60 s header timeout); /healthz is asked every 50 ms meanwhile on another connection."""
    waits: list[float] = []
    done = threading.Event()

    def probe():
        with httpx.Client(base_url=server.base, timeout=30) as client:
            while not done.is_set():
                t = time.monotonic()
                assert client.get("/healthz").status_code == 200
                waits.append(time.monotonic() - t)
                time.sleep(0.05)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    sock = connect(server)
    try:
        start = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
        sent, answered_after = send_without_end(sock, start, b"a" * 65536, 64 * 1024 * 1024)
        time.sleep(0.3)  # /healthz asked a few more times after the attack
    finally:
        done.set()
        prober.join(timeout=30)
    assert answered_after is not None, f"no answer after {sent} bytes of one header"
    sock.settimeout(5)
    status, headers, body = read_response(sock)
    sock.close()
    error = json.loads(body)
    assert status == 431 and error["error"] == "headers_too_large" and headers["connection"] == "close", body
    assert f"{HEAD_LIMIT_BYTES // 1024} KiB" in error["message"]
    assert answered_after < 3, answered_after
    assert len(waits) >= 3 and max(waits) < 1.0, waits


def test_a_url_that_never_ends_is_refused_414(server):
    sock = connect(server)
    sent, answered_after = send_without_end(sock, b"GET /healthz?q=", b"a" * 65536, 16 * 1024 * 1024)
    assert answered_after is not None, f"no answer after {sent} bytes of one URL"
    sock.settimeout(5)
    status, _, body = read_response(sock)
    sock.close()
    assert status == 414 and json.loads(body)["error"] == "url_too_long", body


def test_large_ordinary_headers_pass_and_are_counted_per_request(server):
    """Three requests on one connection, each with 16 KB of cookies and 30 KB of other headers (46 KB: under the
    limit each, 138 KB together), the first alone, then two pipelined in one write: all three answered 200."""
    cookies = "; ".join(f"c{i}={'v' * 90}" for i in range(16 * 1024 // 96))
    extra = "".join(f"X-Trace-{i}: {'t' * 1000}\r\n" for i in range(30))
    one = f"GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: {cookies}\r\n{extra}\r\n".encode()
    assert 40_000 < len(one) < HEAD_LIMIT_BYTES and 2 * len(one) > HEAD_LIMIT_BYTES
    sock = connect(server)
    sock.sendall(one)
    answers = [read_response(sock)]
    sock.sendall(one + one)
    answers += read_responses(sock, 2)  # often in one read of the socket
    sock.close()
    assert [status for status, _, _ in answers] == [200, 200, 200], answers


def test_a_body_slower_than_the_floor_is_cut_408_and_a_steady_one_is_answered(server):
    """100 KB at once, then 1 KB every 0.25 s (4 KB/s, against a floor of 20 KB/s over 1 s windows; the audit's
    client sent 168 MiB, then a byte every 10 s) is cut after its second window; a photo sent at about 60 KB/s for 3 s
    (three windows) is diagnosed."""
    slow = connect(server)
    slow.sendall(post_head(server, 1_000_000) + b"\xff" * 100_000)
    began, cut = time.monotonic(), None
    try:
        for _ in range(20):  # 5 s at most
            slow.sendall(b"\xff" * 1000)
            time.sleep(0.25)
            if select.select([slow], [], [], 0)[0]:
                break
    except OSError:
        pass
    cut = time.monotonic() - began
    slow.settimeout(3)
    _, status, _, body = read_until_closed(slow)
    assert status == 408, (status, body)
    error = json.loads(body)
    assert error["error"] == "request_timeout" and "too slowly" in error["message"], error
    assert cut < 3 * WINDOW + 1, cut

    photo = photo_jpeg()
    steady = connect(server)
    steady.sendall(post_head(server, len(photo)))
    piece = len(photo) // 30 + 1
    for i in range(0, len(photo), piece):
        steady.sendall(photo[i : i + piece])
        time.sleep(0.1)
    status, _, body = read_response(steady)
    steady.close()
    assert status == 200 and json.loads(body)["top_k"], body[:300]


def test_a_body_over_the_budget_in_flight_is_503_before_it_is_read(server):
    """A 6 MiB body in flight (sent at 640 KB/s, above the floor) leaves 2 MiB of the 8 MiB budget: a 4 MiB one is
    answered 503 `busy` with Retry-After at once, its body unsent, and so is a chunked one (counted at its route's
    limit); once the first is gone, the 4 MiB one gets in."""
    first = connect(server)
    first.sendall(post_head(server, 6 * 1024 * 1024))
    stop = threading.Event()

    def feed():
        try:
            while not stop.is_set():
                first.sendall(bytes(65536))
                time.sleep(0.1)
        except OSError:
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        time.sleep(0.3)  # the first request is in, its body coming
        answers = []
        chunked = post_head(server, 0).replace(b"Content-Length: 0", b"Transfer-Encoding: chunked")
        for head in (post_head(server, 4 * 1024 * 1024), chunked):
            second = connect(server)
            second.sendall(head)
            second.settimeout(5)
            answers.append(read_response(second))
            second.close()
    finally:
        stop.set()
        feeder.join(timeout=10)
        first.close()
    for status, headers, body in answers:
        error = json.loads(body)
        assert status == 503 and error["error"] == "busy" and int(headers["retry-after"]) >= 1, (status, body)

    time.sleep(0.5)  # the first request's app sees its client gone and gives its bytes back
    again = connect(server)
    again.sendall(post_head(server, 4 * 1024 * 1024) + bytes(4 * 1024 * 1024))
    again.settimeout(30)
    status, _, body = read_response(again)
    again.close()
    assert status not in (503, 413) and json.loads(body)["error"] in ("bad_image", "unsupported_image_format"), body
