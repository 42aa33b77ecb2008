"""Building the web page (importing Gradio: seconds) never holds up the API or a stop (ui/mount.py): the page is
built in a thread of its own, Gradio imported there too. Imported on the event loop, it held a one-worker server's
API for the whole build (a /readyz took 10.9 s during a first visit, 2026-11-27) and kept the page's own process
from stopping (serve stopped in 7-8 s instead of 1.3-1.7 when stopped while the page was being built)."""

from __future__ import annotations

import threading
import time

import httpx
from tests.live_server import start_server


def test_the_api_of_one_worker_answers_while_the_first_visit_builds_the_page(tmp_path, tiny_model):
    server = start_server(tmp_path / "server", tiny_model, workers=1)  # the page is built inside the worker
    try:
        visit: dict = {}

        def first_visit() -> None:
            start = time.monotonic()
            visit["status"] = httpx.get(f"{server.base}/ui/", timeout=300).status_code
            visit["seconds"] = time.monotonic() - start

        visitor = threading.Thread(target=first_visit)
        visitor.start()
        waits = []
        while visitor.is_alive() and len(waits) < 40:
            start = time.monotonic()
            assert httpx.get(f"{server.base}/readyz", timeout=60).status_code == 200
            waits.append(time.monotonic() - start)
            time.sleep(0.25)
        visitor.join()
        assert visit["status"] == 200 and visit["seconds"] > 2, visit  # the page was built during the probes
        assert len(waits) >= 4 and max(waits) < 1.5, waits
    finally:
        server.stop()


def test_serve_stopped_while_its_page_is_being_built_stops_at_once(tmp_path, tiny_model):
    server = start_server(tmp_path / "server", tiny_model, workers=2, LEAFDOC_UI_BUILD_AT_START="true")
    try:
        time.sleep(1.5)  # the API is ready: the page's process saw it within 0.5 s and is importing Gradio now
        assert "the web page is built" not in server.log.read_text()  # still building: it takes seconds
        start = time.monotonic()
        server.stop()
        stopped = time.monotonic() - start
    finally:
        server.stop()
    assert server.proc.returncode == 0 and stopped < 5, stopped
