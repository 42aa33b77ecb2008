"""The line `leafdoc serve` prints once the server answers: where it serves, and the web page's address (it printed
neither; a newcomer had to guess /ui). Said by the process that started the server, once, however many workers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import httpx

WAIT_SECONDS = 600.0  # a server starting beside a training run on two cores took minutes


def reached_at(host: str) -> str:
    """Where a server bound to `host` is reached: one on every interface (0.0.0.0, ::) locally."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def base_url(host: str, port: int) -> str:
    shown = reached_at(host)
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def serving_line(base: str, page: bool) -> str:
    if page:
        return f"leafdoc is serving on {base} — the page: {base}/ui"
    return f"leafdoc is serving on {base} — the API's documentation: {base}/docs"


def announce_when_up(
    host: str, port: int, page: bool, say: Callable[[str], None], wait: float = WAIT_SECONDS
) -> threading.Event:
    """Say `serving_line` once the server on `host:port` answers /healthz, from a thread; set the returned event to
    stop waiting (the server stopped first). Called before the server binds its port: if something answers there
    already, that is another server (this one will fail to bind, and say so), and nothing is said."""
    base, stop = base_url(host, port), threading.Event()
    try:
        with socket.create_connection((reached_at(host), port), timeout=0.5):
            return stop  # taken
    except OSError:
        pass

    def watch() -> None:
        deadline = time.monotonic() + wait
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    say(serving_line(base, page))
                    return
            except httpx.HTTPError:
                pass
            stop.wait(0.2)

    threading.Thread(target=watch, daemon=True, name="leafdoc-announce").start()
    return stop
