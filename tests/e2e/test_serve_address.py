"""`leafdoc serve` says where it serves, once it answers, in the process that started it (once, with two workers); and
the server's address itself leads to the page: GET / and HEAD / redirect to /ui/ (they were a 404 in JSON), the
API's routes untouched."""

from __future__ import annotations

import re

import httpx
from tests.conftest import REPO
from tests.live_server import start_server, wait_for

STARTER = REPO / "models" / "starter"


def test_serve_prints_the_pages_address_once_and_slash_leads_to_the_page(tmp_path):
    server = start_server(tmp_path, STARTER, workers=2)
    try:
        said = f"leafdoc is serving on {server.base} — the page: {server.base}/ui"
        wait_for(lambda: said in server.log.read_text(), 60, "the serving line")
        for method in ("GET", "HEAD"):
            r = httpx.request(method, f"{server.base}/?lang=es", timeout=60)
            assert r.status_code == 307 and r.headers["location"] == "ui/?lang=es", (method, r.status_code)
        page = httpx.get(f"{server.base}/", follow_redirects=True, timeout=300)
        assert page.status_code == 200 and str(page.url) == f"{server.base}/ui/" and "<html" in page.text.lower()
        assert httpx.get(f"{server.base}/v1/models", timeout=60).status_code == 200  # the API as it was
        assert httpx.get(f"{server.base}/nothing-here", timeout=60).status_code == 404
    finally:
        server.stop()
    log = server.log.read_text()
    assert len(re.findall(r"leafdoc is serving on ", log)) == 1, log[-3000:]  # not once per worker
