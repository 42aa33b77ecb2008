"""What the web page's process checks and adds around Gradio, for every request to /ui (mount.py's LazyPage), in
one API worker or in the page's own process alike:

- Host and X-Forwarded-Host must name this server (`host_allowed`: LEAFDOC_ALLOWED_HOSTS, else its own names and
  the address the request arrived on; not any address): Gradio writes them into the page's URLs (`/ui/config`'s
  `root`), so a forged one made the page point elsewhere for whatever cached it; and the answers that can carry
  them (HTML, JSON, event streams) are sent with `Cache-Control: no-store`;
- every answer carries the security headers (SECURITY_HEADERS: one CSP, no framing by other sites, nosniff,
  no Referer to other sites);
- a file answer (`file=`) carries only file headers (FILE_HEADERS): Gradio's answer to a Range request echoed
  every request header back (its route_utils.py copies `dict(request.headers)` into the response), Authorization and
  Cookie included;
- uploads (`PageUploads`): the page's folder holds at most `ui_folder_bytes` (507 beyond it), and an upload cut
  short, by its visitor hanging up or by the size limit (app.body_limits, the API's single-photo limit), leaves no
  partial file behind and is answered 499 or 413 with one log line, not a traceback;
- no answer names a folder of the server (the page's, the examples', the data home, the install folder): files are
  named by aliases, mapped back on the way in (ui/aliases.py).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import socket
from pathlib import Path

from leafdoc.core.errors import LeafdocError, too_large

log = logging.getLogger(__name__)

JSON = "application/json"
GONE = LeafdocError("the visitor disconnected")  # what cut an upload short when its visitor left

# The page's Content-Security-Policy, in one place and set by nothing. What each part lets in, and for whom:
# - script-src 'unsafe-inline': Gradio writes the page's config into an inline <script>, and the page's head script
#   (ui/downscale.py) is inline; 'unsafe-eval': Gradio 6's HTML component compiles its template (and js_on_load)
#   with `new Function`: without it the page's header shows "Error rendering HTML" (no 'wasm-unsafe-eval': the page
#   compiles no WebAssembly; the offline page at /app, which does, has a policy of its own: leafdoc/offline);
# - style-src 'unsafe-inline': Gradio's components set inline styles;
# - img-src/media-src data: blob:: previews of a chosen photo before it is uploaded;
# - worker-src 'self' blob:: the page's service worker and Gradio's workers;
# - connect-src 'self': the page talks to its own server only (fetch, event streams);
# - frame-ancestors 'self': no other site may show the page in a frame (clickjacking).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "media-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "manifest-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    )
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"SAMEORIGIN"),  # frame-ancestors for browsers that predate it
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]
FILE_HEADERS = frozenset(
    {
        b"content-type",
        b"content-length",
        b"content-range",
        b"content-disposition",
        b"accept-ranges",
        b"last-modified",
        b"etag",
        b"cache-control",
        b"date",
        b"server",
        b"vary",
    }
)
HOST_REFUSED = (
    "This server does not answer to the host name {host!r}. If that is its name, start it with "
    "LEAFDOC_ALLOWED_HOSTS={host} (several names: separated by commas)."
)
SERVER_HEADER = b"x-leafdoc-server"  # set by ui/proxy.py: the address the visitor's connection reached the worker on
# Answers that can name the host they were asked by (the page's HTML and config, its event streams): never kept by a
# cache, which would hand one visitor's to the next.
NOT_STORED = (b"cache-control", b"no-store")
VARYING_TYPES = (b"text/html", b"application/json", b"text/event-stream")
FOLDER_FULL = (
    "The page's upload folder is full for now; send the photo again in a few minutes (or use the API: POST "
    "/v1/predict)."
)


def _header(scope, name: bytes) -> str | None:
    return next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == name), None)


def _host_name(value: str) -> str:
    """`example.org:8000` -> `example.org`; `[::1]:8000` -> `::1`."""
    value = value.strip().split(",")[0].strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def own_names() -> frozenset[str]:
    """The names this machine goes by without a setting: localhost and its host name (and its .local name)."""
    name = socket.gethostname().lower()
    return frozenset({"localhost", name, f"{name}.local"})


def _address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1, a server on :: reached over IPv4
    return mapped or address


def host_allowed(host: str, allowed: frozenset[str], server: str | None = None) -> bool:
    """Whether the page may name `host` (a Host or X-Forwarded-Host value): one of `allowed` (LEAFDOC_ALLOWED_HOSTS;
    `*`: any); `server`, the local address the request's connection arrived on (a visitor who reached this server by
    its address); and, with `allowed` unset, one of own_names(). Any other address is refused like any other name:
    an attacker owns addresses too, and the page wrote whichever it was sent into its URLs."""
    name = _host_name(host)
    if "*" in allowed or name in allowed:
        return True
    address = _address(name)
    if address is not None:
        return address == _address(server or "")
    return not allowed and name in own_names()


def server_address(scope) -> str | None:
    """The local address the request's connection arrived on: the scope's `server` on a TCP socket; in the page's own
    process (a Unix socket, no address), what the API worker that forwarded the request put in SERVER_HEADER (only
    such workers can open that socket: ui/proxy.py)."""
    server = scope.get("server")
    if server and server[1] is not None:  # a Unix socket's is (path, None)
        return str(server[0])
    return _header(scope, SERVER_HEADER)


def refused_host(scope, allowed: frozenset[str]) -> str | None:
    """The first Host or X-Forwarded-Host value of a request that names no allowed host, or None."""
    server = server_address(scope)
    for name in (b"host", b"x-forwarded-host"):
        value = _header(scope, name)
        if value is not None and not host_allowed(value, allowed, server):
            return _host_name(value)[:100]
    return None


def with_headers(send, file_route: bool):
    """`send` that adds SECURITY_HEADERS to the answer and, for a file answer, keeps only FILE_HEADERS."""

    async def wrapped(message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if not file_route or k.lower() in FILE_HEADERS]
            kind = next((v.lower() for k, v in headers if k.lower() == b"content-type"), b"")
            if not file_route and kind.startswith(VARYING_TYPES):
                headers = [(k, v) for k, v in headers if k.lower() != NOT_STORED[0]] + [NOT_STORED]
            names = {k.lower() for k, _ in headers}
            headers += [(k, v) for k, v in SECURITY_HEADERS if k not in names]
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


def folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):  # deleted meanwhile (Gradio's cache cleaning)
                total += os.lstat(os.path.join(root, name)).st_size
    return total


class PageUploads:
    """Gradio's upload route (`/gradio_api/upload`) with a cap on the page's folder, and what an upload cut short
    leaves behind removed (see the module's docstring). Gradio writes each upload to a temporary file `tmp*` in the
    folder's top level, then moves it into a subfolder named after its hash; one it gives up on stays, so top-level
    `tmp*` files are removed whenever no upload is in flight."""

    def __init__(self, folder: Path, cap: int, limit: int):
        self.folder, self.cap, self.limit = folder, cap, limit
        self.in_flight = 0

    async def __call__(self, app, scope, receive, send) -> None:
        declared = _header(scope, b"content-length")
        incoming = int(declared) if declared and declared.isdigit() else 0
        if incoming > self.limit:
            await answer(send, 413, json.dumps(too_large(self.limit, incoming).to_dict()), JSON)
            return
        if folder_bytes(self.folder) + incoming > self.cap:
            log.warning("the page's upload folder is full (over %d bytes): an upload was refused", self.cap)
            await answer(send, 507, FOLDER_FULL)
            return
        cut: LeafdocError | None = None  # why the body stopped: too large, or the visitor left (None: it did not)
        received = 0

        async def counted():
            nonlocal cut, received
            try:
                message = await receive()
            except LeafdocError as exc:  # BodyLimit's, in an API worker
                cut = exc
                raise
            if message["type"] == "http.disconnect":
                cut = GONE
            elif message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    cut = too_large(self.limit)
                    raise cut
            return message

        async def answered(message) -> None:
            # Gradio answers an exception from its upload route 500 (Starlette's ServerErrorMiddleware), then
            # raises it: a body cut short is answered for what it is instead, and the exception ends here.
            if cut is None:
                await send(message)
            elif message["type"] == "http.response.start":
                status, text = (499, "") if cut is GONE else (cut.status, json.dumps(cut.to_dict()))
                await answer(send, status, text, JSON)

        self.in_flight += 1
        try:
            await app(scope, counted, answered)
        except Exception:
            if cut is None:
                raise
            what = "the visitor disconnected" if cut is GONE else cut.message
            log.warning("an upload to the page stopped before its end: %s", what)
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self.sweep()

    def sweep(self) -> None:
        """Top-level temporary files of uploads that did not finish (see the class docstring)."""
        try:
            leftovers = [p for p in self.folder.iterdir() if p.name.startswith("tmp") and p.is_file()]
        except OSError:
            return
        for path in leftovers:
            path.unlink(missing_ok=True)


async def answer(send, status: int, text: str, media_type: str = "text/plain; charset=utf-8") -> None:
    body = text.encode()
    headers = [(b"content-type", media_type.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
