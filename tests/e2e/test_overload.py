"""A flood against a real `leafdoc serve` (one API worker, predictions on its event loop, as an API-only server
runs them): predictions beyond what the worker can answer in time are shed with 503 `busy` and Retry-After
(LEAFDOC_SHED_AFTER_SECONDS), every other one is answered, and /healthz stays quick throughout. Without shedding
the probe waits behind every queued prediction (2.2-3.8 s for the 400 here)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

import httpx
import pytest
from loadtest.images import multipart
from tests.conftest import make_leaf_folder
from tests.live_server import answering_copy, read_response, start_server

pytestmark = pytest.mark.e2e

FLOOD = 400
SHED_AFTER = 0.2

# /healthz every 0.1 s from a process of its own (the flood's client must not delay it): when it asked (the
# system's monotonic clock, the same in every process) and how long the answer took, on stdout.
PROBE = """
import http.client, sys, time
host, port, until = sys.argv[1], int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
while time.monotonic() < until:
    t = time.monotonic()
    c = http.client.HTTPConnection(host, port, timeout=30)
    c.request("GET", "/healthz")
    r = c.getresponse()
    r.read()
    print(r.status, t, time.monotonic() - t, flush=True)
    c.close()
    time.sleep(0.1)
"""


def seconds_per_prediction(base: str, photo: bytes, times: int = 15) -> float:
    """The mean seconds the server spent on one prediction of `photo` (its own latency histogram, which leaves the
    client's and the network's time out), asked `times` times one after another on an idle server."""
    with httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(times):
            client.post("/v1/predict", files={"file": ("leaf.jpg", photo, "image/jpeg")}).raise_for_status()
        metrics = client.get("/metrics").text
    route = r'\{method="POST",route="/v1/predict"\} ([0-9.e+-]+)'
    total = float(re.search(r"leafdoc_http_request_duration_seconds_sum" + route, metrics).group(1))
    count = float(re.search(r"leafdoc_http_request_duration_seconds_count" + route, metrics).group(1))
    assert count == times, metrics
    return total / count


def flood(base: str, photo: bytes) -> tuple[list[tuple[int, dict, bytes]], list[tuple[int, float]]]:
    """FLOOD predictions sent at once over raw sockets (the client's own cost is small beside the server's), while
    another process asks /healthz every 0.1 s: each answer's (status, headers, body), and the status and seconds
    of each probe that was waiting while the flood was on."""
    url = urlsplit(base)
    body, ctype = multipart("file", [("leaf.jpg", photo)])
    request = (
        f"POST /v1/predict HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    probe = subprocess.Popen(
        [sys.executable, "-c", PROBE, url.hostname, str(url.port), "30"], stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(0.5)  # the probe's first answers: the server idle
        start = time.monotonic()
        socks = [socket.create_connection((url.hostname, url.port), timeout=120) for _ in range(FLOOD)]
        for s in socks:
            s.sendall(request)
        answers = []
        for s in socks:
            answers.append(read_response(s))
            s.close()
        end = time.monotonic()
        time.sleep(1.0)  # the probe waiting through the flood answers and prints
    finally:
        probe.kill()
        out, _ = probe.communicate()
    probes = [(int(status), float(at), float(took)) for status, at, took in (line.split() for line in out.splitlines())]
    return answers, [(status, took) for status, at, took in probes if at <= end and at + took >= start]


# Serial: the probe's wait is a latency, and a test training beside it on the other core stretched it past the bound
# in CI (1.6 s, stop 62).
@pytest.mark.serial
def test_a_flood_is_shed_and_the_probe_stays_answered(tmp_path, tiny_model):
    photo = next((make_leaf_folder(tmp_path / "leaves", per_class=1)).rglob("*.jpg")).read_bytes()
    server = start_server(
        tmp_path,
        answering_copy(tiny_model, tmp_path / "model"),
        workers=1,
        LEAFDOC_UI="false",
        LEAFDOC_PREDICT_ON_LOOP="true",
        LEAFDOC_SHED_AFTER_SECONDS=str(SHED_AFTER),
    )
    try:
        one = seconds_per_prediction(server.base, photo)
        answers, probes = flood(server.base, photo)
        metrics = httpx.get(f"{server.base}/metrics").text
    finally:
        server.stop()
    answered = [json.loads(b) for status, _, b in answers if status == 200]
    shed = [(h, json.loads(b)) for status, h, b in answers if status == 503]
    assert len(answered) + len(shed) == FLOOD, sorted({status for status, _, _ in answers})
    assert answered and shed, f"{len(answered)} answered, {len(shed)} shed"
    assert len({a["top_k"][0]["label"] for a in answered}) == 1  # the same photo, the same diagnosis, however busy
    for headers, error in shed:
        assert error["error"] == "busy" and "again" in error["hint"] and headers["retry-after"] == "1", error
    assert f"leafdoc_requests_shed_total {float(len(shed))}" in metrics
    # The probe waits for a few times SHED_AFTER, not for every prediction sent: with shedding off it waited 3.8 s
    # here for this flood, 0.7 times FLOOD predictions of the server's time (5.3 s); with it on, 0.3 s. That time is
    # the machine's, so the bound is the larger of 1.5 s and a third of FLOOD predictions (CI's slower machine kept
    # the probe 1.9 s with shedding working, stop 76).
    assert probes and {status for status, _ in probes} == {200}, probes
    bound = max(1.5, FLOOD * one / 3)
    assert max(seconds for _, seconds in probes) < bound, f"{probes}, bound {bound:.2f} s ({one * 1000:.1f} ms each)"
