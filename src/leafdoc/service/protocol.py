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

Heads: a request's line and headers together may be HEAD_LIMIT_BYTES (64 KiB); past that the client gets 431
`headers_too_large` (414 `url_too_long` when most of it is the URL) and the connection is closed. uvicorn's parser
has no such limit and copies a header that is still coming on every read of the socket, on the event loop: one
connection sending a 100 MiB header held the worker for 9.4 s of CPU (every other request on it waited as long) and
+195 MB. The bytes are counted as they are read, for each request apart (the next one on a kept-alive connection
starts again from 0), and at most HEAD_LIMIT_BYTES of them reach the parser while the head is incomplete; a
pipelined request whose head begins inside the same read as the end of the previous request's body is counted
from the next read (at most one read, 256 KiB, more). nginx's default is 4 buffers of 8 KiB per header line,
h11's 16 KiB in all: 64 KiB leaves room for large cookies. After the answer the server reads and drops what the
client still sends for LINGER_SECONDS (or until it closes), so that the client reads the answer rather than a reset.

Body rate: a body that keeps coming, but too slowly, holds what it sent so far (the batch route keeps it all, up to
200 MiB) as long as its client likes: 1 byte every 59 s was never cut. From a body's start, each window of
LEAFDOC_BODY_RATE_WINDOW_SECONDS (30) must bring at least LEAFDOC_BODY_MIN_BYTES_PER_SECOND (1 KiB/s) on average,
else 408 `request_timeout` and the connection is closed (a client that sent 168 MiB at once and then a byte every
10 s is cut when its second window ends).
1 KiB/s is 8 kbit/s, a third of what a phone on GPRS sends; a window of 30 s lets a link stall for most of one and
catch up. Time the server is not reading (reading paused: the app busy, the read-ahead full) is not counted in a
window, nor a client's wait for the app to read (`Expect: 100-continue`). The app passes both in its lifespan's
state (BODY_RATE_STATE_KEY); a rate of 0 turns the floor off.
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from leafdoc.core.errors import LeafdocError
from leafdoc.service.errors import RequestTimeout, error_body

READ_AHEAD_BYTES = 1024 * 1024
DEFAULT_TIMEOUT_SECONDS = 60.0
STREAM_GRACE_SECONDS = 2.0  # a response still streaming this long after the server began to stop is cut: shutdown()
TIMEOUT_STATE_KEY = "leafdoc_client_timeout_seconds"  # in the app's lifespan state
HEAD_LIMIT_BYTES = 64 * 1024  # a request's line and headers together: more is answered 431 (or 414) and closed
LINGER_SECONDS = 2.0  # after such an answer, what the client still sends is read and dropped this long at most
BODY_RATE_STATE_KEY = "leafdoc_body_min_rate"  # in the app's lifespan state: (bytes per second, window seconds)
DEFAULT_BODY_MIN_RATE = 1024  # bytes per second
DEFAULT_BODY_RATE_WINDOW = 30.0  # seconds


class HeadersTooLarge(LeafdocError):
    status = 431
    code = "headers_too_large"


class UrlTooLong(LeafdocError):
    status = 414
    code = "url_too_long"


REASONS = {408: "Request Timeout", 414: "URI Too Long", 431: "Request Header Fields Too Large"}


def error_response(error: LeafdocError) -> bytes:
    """The whole answer of `error`, in the API's error shape, written on the connection just before it is closed."""
    body = json.dumps(error_body(error)).encode()
    head = (
        f"HTTP/1.1 {error.status} {REASONS[error.status]}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


SLOW_HINT = "Send the request again in one go; on a slow network, send a smaller photo."


def timeout_response(waited_for: str, seconds: float) -> bytes:
    """The 408 answer of a request whose headers were not all in within `seconds`, or whose body stopped arriving."""
    if waited_for == "headers":
        message = f"The request's headers were not all in within {seconds:g} s."
    else:
        message = f"The request's body stopped arriving: nothing came for {seconds:g} s."
    return error_response(RequestTimeout(message, hint=SLOW_HINT))


def slow_body_response(rate: int, window: float, received: int, seconds: float) -> bytes:
    message = (
        f"The request's body came too slowly: {received} bytes in {seconds:.0f} s, where at least {rate} bytes a "
        f"second are needed over each {window:g} s."
    )
    return error_response(RequestTimeout(message, hint=SLOW_HINT))


def head_too_large_response(url_bytes: int, head_bytes: int) -> bytes:
    """431, or 414 when most of what came of the head is the URL."""
    if 2 * url_bytes > head_bytes:
        error: LeafdocError = UrlTooLong(
            f"The request's URL is over {HEAD_LIMIT_BYTES // 1024} KiB.",
            hint="Send large values in the request's body, not its query string.",
        )
    else:
        error = HeadersTooLarge(
            f"The request's line and headers are over {HEAD_LIMIT_BYTES // 1024} KiB in all.",
            hint="Send fewer or smaller headers (cookies, tokens).",
        )
    return error_response(error)


class PausedClock(FlowControl):
    """uvicorn's FlowControl, keeping how long reading has been paused in all: time the client could not send."""

    def __init__(self, transport, clock) -> None:
        super().__init__(transport)
        self._clock = clock
        self._paused_at = 0.0
        self._paused_total = 0.0

    def pause_reading(self) -> None:
        if not self.read_paused:
            self._paused_at = self._clock()
        super().pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused:
            self._paused_total += self._clock() - self._paused_at
        super().resume_reading()

    def paused_seconds(self) -> float:
        return self._paused_total + (self._clock() - self._paused_at if self.read_paused else 0.0)


class ReadAheadProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with READ_AHEAD_BYTES for uvicorn's 64 KiB, the timeouts, the head limit and the body rate
    floor above (see the docstring)."""

    _timer: asyncio.TimerHandle | None = None
    _waiting_for = ""  # "headers" or "body" while a timer runs
    _last_read = 0.0
    _seconds = DEFAULT_TIMEOUT_SECONDS
    _in_head = True  # the bytes read now belong to a request's line and headers (or to the wait for the next request)
    _head_bytes = 0  # of this request's head, read so far
    _lingering = False  # answered and closing: what the client still sends is dropped unread
    _rate = DEFAULT_BODY_MIN_RATE
    _window = DEFAULT_BODY_RATE_WINDOW
    _rate_timer: asyncio.TimerHandle | None = None
    _window_start = 0.0  # on the client's clock (_client_time)
    _window_bytes = 0

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.flow = PausedClock(transport, self.loop.time)  # before any request's cycle takes it
        self._seconds = float(self.app_state.get(TIMEOUT_STATE_KEY, DEFAULT_TIMEOUT_SECONDS))
        rate, window = self.app_state.get(BODY_RATE_STATE_KEY, (DEFAULT_BODY_MIN_RATE, DEFAULT_BODY_RATE_WINDOW))
        self._rate, self._window = int(rate), float(window)
        self._wait_for("headers")

    def data_received(self, data: bytes) -> None:
        """uvicorn's, with at most HEAD_LIMIT_BYTES of a request's head fed to the parser (see the docstring)."""
        if self._lingering:
            return
        while data:
            if self._in_head:
                room = HEAD_LIMIT_BYTES - self._head_bytes
                if room <= 0:
                    return self._refuse_head()
                piece, data = data[:room], data[room:]
                self._head_bytes += len(piece)
            else:
                piece, data = data, b""
            super().data_received(piece)
            if self.transport.is_closing() or self.transport.get_protocol() is not self:  # an error; a WebSocket
                return
        if self._in_head and self._head_bytes >= HEAD_LIMIT_BYTES:
            self._refuse_head()

    def _refuse_head(self) -> None:
        self._stop_waiting()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:  # a pipelined request: the last one is still answered
            return self._cut(cycle)
        self.transport.write(head_too_large_response(len(getattr(self, "url", b"")), self._head_bytes))
        self._lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()  # after the answer; the client's own close (eof_received) then closes ours
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._timer is None:  # a kept-alive connection's next request; the first one's clock runs since connect
            self._wait_for("headers")

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()
        if self.parser.should_upgrade() and self._should_upgrade():
            self._stop_waiting()  # a WebSocket: its own protocol from here on
        else:
            self._wait_for("body")  # stopped at once by on_message_complete if it has none

    def on_body(self, body: bytes) -> None:
        self._last_read = self.loop.time()
        self._window_bytes += len(body)
        if (self.parser.should_upgrade() and self._should_upgrade()) or self.cycle.response_complete:
            return
        self.cycle.body += body
        if len(self.cycle.body) > READ_AHEAD_BYTES:
            self.flow.pause_reading()
        self.cycle.message_event.set()

    def on_message_complete(self) -> None:
        self._stop_waiting()
        self._in_head, self._head_bytes = True, 0  # what comes next is the next request's head, counted apart
        super().on_message_complete()

    def _wait_for(self, what: str) -> None:
        self._stop_waiting()
        self._waiting_for = what
        self._last_read = self.loop.time()
        self._timer = self.loop.call_later(self._seconds, self._check_waiting)
        if what == "body" and self._rate > 0:
            self._window_start, self._window_bytes = self._client_time(), 0
            self._rate_timer = self.loop.call_later(self._window, self._check_rate)

    def _stop_waiting(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._rate_timer is not None:
            self._rate_timer.cancel()
            self._rate_timer = None

    def _client_time(self) -> float:
        """The loop's clock less the time this connection's reading was paused: the time its client could send."""
        return self.loop.time() - self.flow.paused_seconds()

    def _check_rate(self) -> None:
        """A body window is over: at least `_rate` bytes a second came in it, or 408 and the connection closed."""
        self._rate_timer = None
        if self.transport.is_closing() or self._waiting_for != "body":
            return
        if self.cycle is not None and self.cycle.waiting_for_100_continue:  # the client waits for the app to read
            self._window_start, self._window_bytes = self._client_time(), 0
        spent = self._client_time() - self._window_start
        if spent < self._window - 0.01:  # the server stopped reading for part of the window: wait for the rest
            self._rate_timer = self.loop.call_later(self._window - spent, self._check_rate)
            return
        if self._window_bytes >= self._rate * spent:
            self._window_start, self._window_bytes = self._client_time(), 0
            self._rate_timer = self.loop.call_later(self._window, self._check_rate)
            return
        cycle = self.cycle
        if cycle is None or not cycle.response_started:
            self.transport.write(slow_body_response(self._rate, self._window, self._window_bytes, spent))
        self._stop_waiting()
        self._cut(cycle)

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
