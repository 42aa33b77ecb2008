"""A server stopping while an event stream is open (service/protocol.py's shutdown): uvicorn waits for every answer
in progress, and the web page's event streams (a visit's heartbeat) never end by themselves, so `leafdoc serve` with
a page open in a browser waited for ever on Ctrl-C or SIGTERM. Now a stream still running STREAM_GRACE_SECONDS after
the stop began is cut; an answer that is not a stream is still given in full."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route
from tests.live_server import free_port, uvicorn_in_thread

from leafdoc.service.protocol import STREAM_GRACE_SECONDS
from leafdoc.service.run import uvicorn_options


async def forever(request):
    async def events():
        while True:
            yield b"data: ALIVE\n\n"
            await asyncio.sleep(0.2)

    return StreamingResponse(events(), media_type="text/event-stream")


async def slow(request):
    await asyncio.sleep(1.5)  # still working when the stop begins
    return PlainTextResponse("done")


def _stop_with_a_stream_open(http: str | None) -> tuple[float, str]:
    """Seconds the server took to stop with one event stream open and one slow answer in progress, and that answer."""
    app = Starlette(routes=[Route("/stream", forever), Route("/slow", slow)])
    port = free_port()
    options = uvicorn_options("127.0.0.1", port, 1, "warning")
    options.update(factory=False, lifespan="off", log_config=None)
    if http is not None:
        options["http"] = http
    server, thread = uvicorn_in_thread(uvicorn.Config(app, **options))
    slow_answer: list[str] = []

    def ask_slow() -> None:
        slow_answer.append(httpx.get(f"http://127.0.0.1:{port}/slow", timeout=30).text)

    with httpx.stream("GET", f"http://127.0.0.1:{port}/stream", timeout=30) as r:
        events = r.iter_bytes()
        assert next(events).startswith(b"data: ALIVE")
        asker = threading.Thread(target=ask_slow)
        asker.start()
        time.sleep(0.3)
        start = time.monotonic()
        server.should_exit = True
        thread.join(timeout=STREAM_GRACE_SECONDS + 4)
        took = time.monotonic() - start
        stopped = not thread.is_alive()
        if not stopped:  # the old behaviour: end it for the test's sake
            server.force_exit = True
            thread.join(timeout=15)
    asker.join(timeout=30)
    return (took if stopped else float("inf")), (slow_answer or ["(none)"])[0]


def test_a_server_stops_with_an_event_stream_open_and_finishes_the_answers_in_progress():
    took, answer = _stop_with_a_stream_open(None)  # serve's protocol
    assert took < STREAM_GRACE_SECONDS + 3, took
    assert answer == "done"
    # uvicorn's own protocol waits for the stream: the stop above is the change's, not uvicorn's
    took, _ = _stop_with_a_stream_open("httptools")
    assert took == float("inf")
