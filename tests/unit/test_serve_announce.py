"""The line `leafdoc serve` says once it answers (service/announce.py)."""

from __future__ import annotations

import socket
import time

from leafdoc.service.announce import announce_when_up, base_url, serving_line


def test_the_line_names_the_server_and_the_page():
    assert base_url("0.0.0.0", 8000) == "http://127.0.0.1:8000"  # every interface: reached locally
    assert base_url("::", 8000) == "http://[::1]:8000" and base_url("10.0.0.5", 80) == "http://10.0.0.5:80"
    said = serving_line("http://127.0.0.1:8000", page=True)
    assert said == "leafdoc is serving on http://127.0.0.1:8000 — the page: http://127.0.0.1:8000/ui"
    assert serving_line("http://127.0.0.1:8000", page=False).endswith("documentation: http://127.0.0.1:8000/docs")


def test_nothing_is_said_when_another_server_holds_the_port():
    """The server will fail to bind it (and say so): another's /healthz answering is no sign this one serves."""
    said: list[str] = []
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        stop = announce_when_up("127.0.0.1", other.getsockname()[1], True, said.append, wait=2)
        time.sleep(0.5)
        stop.set()
    assert said == []
