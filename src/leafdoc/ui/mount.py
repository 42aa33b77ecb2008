"""Mount the web page at /ui without paying for Gradio until it is wanted.

Importing Gradio and building the page take seconds (tens of seconds on a busy two-core machine). The
app factory runs in every API worker and every test, most of which never serve a page, so /ui is a small
ASGI app that builds the Gradio app on its first request (in a thread: the API keeps answering), starts
Gradio's queue, and hands every request to it from then on. In the page's own process (`server.py`) it is built
as soon as the API answers /readyz instead (Settings.ui_build_at_start), so the first visitor does not wait for
it. The page is stopped with the service.

With several API workers the page runs in a process of its own, and the workers forward /ui to it (`proxy.py`,
`server.py`): Gradio keeps each visit in the process that served it.

Gradio keeps visitors' uploads and the files it serves in its cache folder, by default one shared by every
Gradio app on the machine (/tmp/gradio). The page gets a folder of its own under the data home's cache
(`use_page_folder`), and what Gradio answers about a file it refuses names no path (`_quiet_file_errors`).
Around every request: the checks and headers of ui/guard.py (host names, security headers, uploads), and the
aliases of ui/aliases.py (no answer names a folder of the server: the page's, the examples', the data home, the
install folder).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from leafdoc.core.settings import Settings

from leafdoc.core.settings import MULTIPART_OVERHEAD
from leafdoc.ui.aliases import PathAliases, carries_json, hide_paths_in_answers, map_file_url, map_json_request
from leafdoc.ui.guard import HOST_REFUSED, PageUploads, refused_host, with_headers
from leafdoc.ui.language import early_script
from leafdoc.ui.proxy import PageProxy, plain_answer
from leafdoc.ui.where import named_folders, page_folder, use_page_folder
from leafdoc.words.not_found import not_found_html

log = logging.getLogger(__name__)

UI_PATH = "/ui"
UPLOAD_ROUTE = "/gradio_api/upload"
FILE_REFUSED = json.dumps({"detail": "File not allowed."}).encode()


class LazyPage:
    """ASGI app that builds the Gradio page on the first request it gets."""

    def __init__(self, settings: Settings, path: str):
        self.settings, self.path = settings, path
        self.allowed_hosts = frozenset(h.strip().lower() for h in settings.allowed_hosts.split(",") if h.strip())
        limit = settings.max_image_bytes + MULTIPART_OVERHEAD
        self.uploads = PageUploads(page_folder(settings), settings.ui_folder_bytes, limit)
        self.aliases = PathAliases(named_folders(settings))
        self._app: Any = None
        self._lock = asyncio.Lock()
        self._running = AsyncExitStack()

    async def __call__(self, scope, receive, send) -> None:
        refused = refused_host(scope, self.allowed_hosts) if scope["type"] == "http" else None
        if refused is not None:  # before anything else: such a request does not build the page either
            return await plain_answer(send, 400, HOST_REFUSED.format(host=refused))
        if self._app is None:
            try:
                await self._start()
            except Exception:
                log.exception("the web page could not be built")
                await plain_answer(send, 503, "The web page could not be started; the server log says why.")
                return
        if scope["type"] != "http":
            return await self._app(scope, receive, send)
        path, file_route = scope.get("path", ""), _is_file_route(scope.get("path", ""))
        send = with_headers(send, file_route=file_route)
        if file_route:  # the file an alias names (ui/aliases.py); a file's bytes are passed as they are
            scope, send = map_file_url(scope, self.aliases), _quiet_file_errors(send)
        elif scope.get("method") != "HEAD":  # no server folder named in the answer; the page in the language asked
            send = early_script(hide_paths_in_answers(_page_when_not_found(send, scope, self.path), self.aliases))
        if path.endswith(UPLOAD_ROUTE) and scope.get("method") == "POST":
            return await self.uploads(self._app, scope, receive, send)
        if not file_route and carries_json(scope):  # an event's files named by their aliases
            mapped = await map_json_request(scope, receive, send, self.aliases)
            if mapped is None:
                return
            scope, receive = mapped
        await self._app(scope, receive, send)

    async def _start(self) -> None:
        async with self._lock:
            if self._app is not None:
                return
            started = time.monotonic()
            use_page_folder(self.settings)  # before Gradio is imported: it reads some of it then
            app, blocks = await in_daemon_thread(_build, self.settings, self.path)
            # What gr.mount_gradio_app's lifespan does at startup: Gradio's own lifespan, then its queue.
            await self._running.enter_async_context(app.router.lifespan_context(app))
            blocks.run_startup_events()
            await blocks.run_extra_startup_events()
            self._app = app
            log.info("the web page is built (%.1f s)", time.monotonic() - started)

    async def build_now(self) -> None:
        """Build the page before anyone opens it (Settings.ui_build_at_start), once the API it calls is ready: built
        beside the API workers' start, it took the same CPU and put their readiness off by 8 s on two cores. A
        failure is logged, and the first visit tries again."""
        await api_ready(self.settings.ui_api_url)
        try:
            await self._start()
        except Exception:
            log.exception("the web page could not be built")

    async def aclose(self) -> None:
        await self._running.aclose()


def _build(settings: Settings, path: str):
    """The Gradio app and its Blocks. Gradio is imported here, once, in the build's thread: imported on the event
    loop, it held the loop (and a SIGTERM's handling) for the 5-8 s it takes."""
    from leafdoc.ui.page import build_app

    return build_app(settings, path)


async def in_daemon_thread(fn, *args):
    """`fn(*args)` in a thread of its own, awaited. A daemon thread: a service stopped while the page is still being
    built (seconds, at start) stops at once, where a worker thread of the event loop's pool held the process until
    the build was done (7-8 s instead of 1.7 to stop `serve` just after it started)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()

    def settle(result, error) -> None:
        if done.done():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)

    def run() -> None:
        try:
            result, error = fn(*args), None
        except BaseException as exc:  # handed to the awaiting task
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="leafdoc-page-build", daemon=True).start()
    return await done


async def api_ready(url: str | None, wait: float = 120.0) -> bool:
    """Whether the API at `url` answered /readyz within `wait` seconds (True at once without a URL)."""
    if not url:
        return True
    import httpx

    deadline = time.monotonic() + wait
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{url.rstrip('/')}/readyz")).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    return False


def _is_file_route(path: str) -> bool:
    return "/file=" in path or "/gradio_api/file/" in path


def _answer_instead(send, instead):
    """`send` that, where `instead(status)` gives a body and its content headers for the app's answer, sends that
    answer (the status and other headers kept, Content-Length its own) and drops the app's own body."""
    replaced = False

    async def wrapped(message) -> None:
        nonlocal replaced
        if message["type"] == "http.response.start" and (answer := instead(message["status"])) is not None:
            replaced = True
            body, headers = answer
            kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _BODY_HEADERS]
            await send({**message, "headers": [*kept, *headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
        elif not replaced:
            await send(message)

    return wrapped


def _quiet_file_errors(send):
    """Gradio's `file=` route answers a refused path with the path itself ("File not allowed: /etc/...");
    say only that it is not allowed, with the same status."""
    refused = (FILE_REFUSED, [(b"content-type", b"application/json")])
    return _answer_instead(send, lambda status: refused if status >= 400 else None)


def _page_when_not_found(send, scope, page: str):
    """Gradio answers an address under /ui that is none of its routes with JSON ({"detail": "Not Found"}); a browser
    opening one (a GET that accepts HTML: a mistyped link, an old bookmark) gets a page with a link back to the page
    instead, as under /app (words/not_found.py). The page's own calls ask for JSON and keep Gradio's answer."""
    headers = {k.lower(): v for k, v in scope.get("headers", [])}
    if scope.get("method") != "GET" or b"text/html" not in headers.get(b"accept", b""):
        return send

    def not_found(status: int):
        if status != 404:
            return None
        root = scope.get("root_path", "")  # where the page is mounted: /ui, or /ui under a proxy's prefix
        prefix = root[: -len(page)] if root.endswith(page) else ""
        html = not_found_html(headers.get(b"accept-language", b"").decode("latin-1"), prefix, page)
        return html.encode(), [(b"content-type", b"text/html; charset=utf-8"), (b"vary", b"Accept-Language")]

    return _answer_instead(send, not_found)


_BODY_HEADERS = {b"content-type", b"content-length", b"content-encoding", b"transfer-encoding"}


def to_the_page(path: str):
    """GET / (and HEAD /): a redirect to the page (it was a 404 in JSON for whoever typed the server's address), its
    query kept (`/?lang=es`). The address is relative (`ui/`), so it stays right behind a proxy that serves leafdoc
    under a prefix of its own."""
    from starlette.requests import Request
    from starlette.responses import RedirectResponse

    async def redirect(request: Request) -> RedirectResponse:
        query = request.url.query
        return RedirectResponse(path.strip("/") + "/" + (f"?{query}" if query else ""), status_code=307)

    return redirect


def mount_ui(
    app: FastAPI, settings: Settings, path: str = UI_PATH, build_at_start: bool = False
) -> LazyPage | PageProxy:
    """Mount the page at `path`; it is built on its first request (or, `build_at_start`, in the background once the
    API it calls answers /readyz) and stopped with the app. With `settings.ui_page_socket` (an API worker of
    `leafdoc serve --workers N`), what is mounted forwards each request to the page's own process on that socket
    instead (ui/proxy.py)."""
    from starlette.middleware.gzip import GZipMiddleware

    page = PageProxy(settings.ui_page_socket) if settings.ui_page_socket else LazyPage(settings, path)
    # The page's HTML (356 kB, never cached: it names the host it was asked by) and its JSON go gzipped to a browser
    # that takes it (33 kB: 6.5 s less on each visit over Slow 3G, the slow-network review of session 72). Gradio's
    # scripts come compressed already (passed as they are), photos and event streams are not compressed, and nothing
    # the page sends holds a secret for a compression attack (BREACH) to guess: the admin token is never in it.
    app.mount(path, GZipMiddleware(page, minimum_size=1024, compresslevel=6))
    app.add_route("/", to_the_page(path), methods=["GET", "HEAD"], include_in_schema=False)
    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a):
        async with outer(a) as state:
            building = asyncio.create_task(page.build_now()) if build_at_start and isinstance(page, LazyPage) else None
            try:
                yield state
            finally:
                if building is not None and not building.done():
                    building.cancel()
                await page.aclose()

    app.router.lifespan_context = lifespan
    return page
