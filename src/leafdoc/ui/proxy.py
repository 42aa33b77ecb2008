"""/ui in an API worker of a `leafdoc serve` with several workers: each request handed to the page's own process.

Gradio keeps a visit's session (its queue, the events it streams back) in the process that served the page, so
with several API workers a visit whose requests landed on two of them got no answer (7 of 8 visits failed with 2
workers). `leafdoc serve` therefore runs the page in one process of its own (ui/server.py), listening on a Unix
socket in a private folder, and every API worker forwards /ui to it: one place for every visit, and the API's
predictions on every worker. The page's own calls to the API come back through the public port, so they are
spread over the workers like any client's.

Forwarded as they come: the request's method, path, query and headers (Host included, so Gradio writes the same
URLs it would unproxied; hop-by-hop headers left out; X-Forwarded-For and X-Forwarded-Proto set to the client's
address and scheme as the worker's uvicorn decided them, and X-Leafdoc-Server to the local address the visitor
reached, for the page's host check; the page process trusts them from this socket only), its
body in the chunks the worker receives, and the answer's status, headers and body chunk by chunk (Gradio's event
streams). A visitor who goes away stops the stream. What the worker checks before the app (body limits, load
shedding) applies to /ui as to the API. If the page's process is not there, the visitor gets 503 with a plain
sentence, the log gets the reason, and no path is shown.
"""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import httpx

from leafdoc.ui.guard import SERVER_HEADER

log = logging.getLogger(__name__)

# RFC 9110 section 7.6.1's hop-by-hop fields (and any a request's Connection header names), and the forwarding
# headers this proxy sets itself.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"expect",  # 100-continue is between the visitor and the worker
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        SERVER_HEADER,
    }
)
CONNECT_SECONDS = 5.0
NOT_RUNNING = "The web page is not running at the moment; the server log says why. The API is not affected."


class PageProxy:
    """ASGI app that forwards every HTTP request to the page's process on `socket_path` (see the docstring)."""

    def __init__(self, socket_path: Path):
        self.socket_path = Path(socket_path)
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        if self._client is None:  # made in the worker's event loop, on the first visit
            transport = httpx.AsyncHTTPTransport(uds=str(self.socket_path), retries=1)
            # No read timeout: the page streams events for as long as a visit waits; the process is local and ours.
            timeout = httpx.Timeout(None, connect=CONNECT_SECONDS, pool=None)
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=32)
            self._client = httpx.AsyncClient(transport=transport, timeout=timeout, limits=limits)
        return self._client

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":  # the page uses HTTP and server-sent events only
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1003})
            return
        request = self.client().build_request(
            scope["method"],
            _url(scope),
            headers=_forwarded_headers(scope),
            content=_body(receive) if _has_body(scope) else None,
        )
        try:
            response = await self.client().send(request, stream=True)
        except _ClientGone:
            return
        except httpx.TransportError as exc:
            log.error("the web page's process did not answer on %s: %s", self.socket_path, exc)
            await plain_answer(send, 503, NOT_RUNNING)
            return
        try:
            await _relay(response, receive, send)
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class _ClientGone(Exception):
    """The visitor went away while sending the request's body."""


def _url(scope) -> httpx.URL:
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    return httpx.URL(scheme="http", host="page", raw_path=path + (b"?" + query if query else b""))


def _forwarded_headers(scope) -> list[tuple[bytes, bytes]]:
    named = {t.strip().lower() for k, v in scope["headers"] if k.lower() == b"connection" for t in v.split(b",")}
    headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP and k.lower() not in named]
    client = scope.get("client")  # as the worker's uvicorn decided it (trusting forwarding headers from its proxy only)
    if client:
        headers.append((b"x-forwarded-for", client[0].encode("latin-1")))
    headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode("latin-1")))
    server = scope.get("server")  # the address the visitor reached: the page's host check allows it (ui/guard.py)
    if server and server[1] is not None:
        headers.append((SERVER_HEADER, str(server[0]).encode("latin-1")))
    return headers


def _has_body(scope) -> bool:
    names = {k.lower() for k, _ in scope["headers"]}
    return b"content-length" in names or b"transfer-encoding" in names


async def _body(receive):
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def _relay(response: httpx.Response, receive, send) -> None:
    """The answer's status, headers and body, chunk by chunk, until it ends or the visitor goes away."""
    headers = [(k, v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    async with anyio.create_task_group() as tasks:

        async def stop_when_gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            tasks.cancel_scope.cancel()

        tasks.start_soon(stop_when_gone)
        try:
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except httpx.TransportError as exc:  # the page's process went away mid-answer: the visitor's is cut short
            log.error("the web page's process stopped answering: %s", exc)
        finally:
            tasks.cancel_scope.cancel()


async def plain_answer(send, status: int, text: str) -> None:
    """A whole answer of one plain sentence."""
    body = text.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
