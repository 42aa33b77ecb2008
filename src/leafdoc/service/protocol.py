"""uvicorn's HTTP protocol (httptools) as `leafdoc serve` runs it: request bodies read ahead in steps of up to 1 MiB
instead of 64 KiB, and a client that stops sending in the middle of a request timed out.

Read ahead: uvicorn stops reading a connection once more than 64 KiB of its request body wait for the app
(`HIGH_WATER_LIMIT`), and reads on when the app takes them; one read of the socket takes up to 256 KiB. So a 2.1 MB
phone photo came in about ten steps, each a turn of the worker's event loop, and on a busy worker each turn waits
for the predictions of the other connections: under load a 12 MP photo's p95 was 2.3 times a 256-px photo's. Read
ahead up to READ_AHEAD_BYTES, it comes in two or three steps: 1.55-1.59 times (docs/load-tests.md, "Reading request
bodies ahead"). Memory: at most READ_AHEAD_BYTES, plus one read of the socket (256 KiB), wait per connection for the
app to take them. The routes that take a body keep what they read anyway, up to their own limits
(service/middleware.py).

Timeouts: uvicorn times out only a kept-alive connection idle between requests. A connection that sent nothing, or
part of a request's headers, or part of its body and then nothing, was held for ever (measured: all three still
open after 100 s), so anyone who could reach the port could pile up connections, and the photo bytes they hold,
until the workers ran out of file descriptors or memory. nginx in front (deploy/) times these out; `leafdoc serve`
exposed directly now does as nginx does by default, with LEAFDOC_CLIENT_TIMEOUT_SECONDS (60, nginx's default) for
both of nginx's timeouts: a request's line and headers must be in within it of the connection opening (or of the
request's first byte, on a kept-alive one), and its body may go that long with nothing received (nginx's
`client_body_timeout`: a slow network sending steadily is never cut). The app passes the setting in its lifespan's
state (service/app.py); served without a lifespan, DEFAULT_TIMEOUT_SECONDS. Time the server itself stops reading
(the app busy, the read-ahead full, a pipelined request waiting) does not count. The client gets 408
`request_timeout` (JSON, as the API's other errors), and the connection is closed: a route waiting for the body sees
the client gone and keeps nothing of it. The timers cost about 4 us a request (two set and cancelled), against 5-15
ms for a prediction.
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from leafdoc.service.errors import RequestTimeout

READ_AHEAD_BYTES = 1024 * 1024
DEFAULT_TIMEOUT_SECONDS = 60.0
STREAM_GRACE_SECONDS = 2.0  # a response still streaming this long after the server began to stop is cut: shutdown()
TIMEOUT_STATE_KEY = "leafdoc_client_timeout_seconds"  # in the app's lifespan state


def timeout_response(waited_for: str, seconds: float) -> bytes:
    """The whole 408 answer, in the API's error shape, written on the connection just before it is closed."""
    if waited_for == "headers":
        message = f"The request's headers were not all in within {seconds:g} s."
    else:
        message = f"The request's body stopped arriving: nothing came for {seconds:g} s."
    error = RequestTimeout(message, hint="Send the request again in one go; on a slow network, send a smaller photo.")
    body = json.dumps(error.to_dict()).encode()
    head = (
        f"HTTP/1.1 {error.status} Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class ReadAheadProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with READ_AHEAD_BYTES for uvicorn's 64 KiB, and the timeouts above (see the docstring)."""

    _timer: asyncio.TimerHandle | None = None
    _waiting_for = ""  # "headers" or "body" while a timer runs
    _last_read = 0.0
    _seconds = DEFAULT_TIMEOUT_SECONDS

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._seconds = float(self.app_state.get(TIMEOUT_STATE_KEY, DEFAULT_TIMEOUT_SECONDS))
        self._wait_for("headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._timer is None:  # a kept-alive connection's next request; the first one's clock runs since connect
            self._wait_for("headers")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self.parser.should_upgrade() and self._should_upgrade():
            self._stop_waiting()  # a WebSocket: its own protocol from here on
        else:
            self._wait_for("body")  # stopped at once by on_message_complete if it has none

    def on_body(self, body: bytes) -> None:
        self._last_read = self.loop.time()
        if (self.parser.should_upgrade() and self._should_upgrade()) or self.cycle.response_complete:
            return
        self.cycle.body += body
        if len(self.cycle.body) > READ_AHEAD_BYTES:
            self.flow.pause_reading()
        self.cycle.message_event.set()

    def on_message_complete(self) -> None:
        self._stop_waiting()
        super().on_message_complete()

    def _wait_for(self, what: str) -> None:
        self._stop_waiting()
        self._waiting_for = what
        self._last_read = self.loop.time()
        self._timer = self.loop.call_later(self._seconds, self._check_waiting)

    def _stop_waiting(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check_waiting(self) -> None:
        self._timer = None
        seconds = self._seconds
        if self.transport.is_closing():
            return
        cycle, now = self.cycle, self.loop.time()
        headers = self._waiting_for == "headers"
        if self.flow.read_paused or (headers and cycle is not None and not cycle.response_complete):
            self._last_read = now  # the server is not reading, or still answers the last request: not the client's time
        left = seconds - (now - self._last_read)
        if left > 0.01:  # bytes of the body came since, or the server held the client up: wait on
            self._timer = self.loop.call_later(left, self._check_waiting)
            return
        # Answer 408 unless this request already has an answer (started, or given before its body was all in).
        if cycle is None or (cycle.response_complete if headers else not cycle.response_started):
            self.transport.write(timeout_response(self._waiting_for, seconds))
        self._cut(cycle)  # the app, if it waits for the body, is told the client is gone

    def shutdown(self) -> None:
        """The server is stopping: uvicorn closes idle connections and waits for the others' answers, and a stream
        that never ends by itself (the web page's event streams, and its streams forwarded by ui/proxy.py) would
        keep it waiting for ever. A response still streaming STREAM_GRACE_SECONDS later is cut: the app is told the
        client is gone (Starlette's streams and the page's proxy stop on it) and the connection is closed."""
        super().shutdown()
        cycle = self.cycle
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            self.loop.call_later(STREAM_GRACE_SECONDS, self._end_stream, cycle)

    def _end_stream(self, cycle) -> None:
        if cycle is self.cycle and not cycle.response_complete and not self.transport.is_closing():
            self._cut(cycle)

    def _cut(self, cycle) -> None:
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()
