"""uvicorn's HTTP protocol (httptools), reading a request body ahead in steps of up to 1 MiB instead of 64 KiB.

uvicorn stops reading a connection once more than 64 KiB of its request body wait for the app (`HIGH_WATER_LIMIT`),
and reads on when the app takes them; one read of the socket takes up to 256 KiB. So a 2.1 MB phone photo came in
about ten steps, each a turn of the worker's event loop, and on a busy worker each turn waits for the predictions
of the other connections: under load a 12 MP photo's p95 was 2.3 times a 256-px photo's. Read ahead up to
READ_AHEAD_BYTES, it comes in two or three steps: 1.55-1.59 times (docs/load-tests.md, "Reading request bodies
ahead").

Memory: at most READ_AHEAD_BYTES, plus one read of the socket (256 KiB), wait per connection for the app to
take them. The routes that take a body keep what they read anyway, up to their own limits (service/middleware.py).
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

READ_AHEAD_BYTES = 1024 * 1024


class ReadAheadProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with READ_AHEAD_BYTES for uvicorn's 64 KiB (its `on_body`, otherwise the same)."""

    def on_body(self, body: bytes) -> None:
        if (self.parser.should_upgrade() and self._should_upgrade()) or self.cycle.response_complete:
            return
        self.cycle.body += body
        if len(self.cycle.body) > READ_AHEAD_BYTES:
            self.flow.pause_reading()
        self.cycle.message_event.set()
