"""Mount the web page at /ui without paying for Gradio until someone opens it.

Importing Gradio and building the page take seconds (tens of seconds on a busy two-core machine). The
app factory runs in every API worker and every test, most of which never serve a page, so /ui is a small
ASGI app that builds the Gradio app on its first request (in a thread: the API keeps answering), starts
Gradio's queue, and hands every request to it from then on. The page is stopped with the service.

Gradio keeps visitors' uploads and the files it serves in its cache folder, by default one shared by every
Gradio app on the machine (/tmp/gradio). The page gets a folder of its own under the data home's cache
(`use_page_folder`), and what Gradio answers about a file it refuses names no path (`_quiet_file_errors`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from fastapi import FastAPI

    from leafdoc.settings import Settings

log = logging.getLogger(__name__)

UI_PATH = "/ui"
FALLBACK_API_URL = "http://127.0.0.1:8000"
FILE_REFUSED = json.dumps({"detail": "File not allowed."}).encode()


def page_folder(settings: Settings) -> Path:
    """The page's own folder: visitors' uploads, the pictures it shows. Nothing else writes there."""
    return settings.cache_dir / "ui"


def use_page_folder(settings: Settings) -> Path:
    """Point Gradio's cache at the page's own folder (resolved: Gradio compares resolved paths) and return it.

    Gradio reads its folders from the environment (GRADIO_TEMP_DIR: uploads and cache, which the page serves;
    GRADIO_EXAMPLES_CACHE: cached example outputs, served too), some of it when Gradio is imported, so this
    runs before that. One page per process: the folder is the process's.
    """
    folder = page_folder(settings)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder = folder.resolve()
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    os.environ["GRADIO_EXAMPLES_CACHE"] = str(folder / "examples")
    return folder


def api_base(settings: Settings, scope: dict[str, Any] | None) -> str:
    """The API's base URL for one page request.

    By default the page talks to the server it is mounted in, at the local address the browser's request
    arrived on (the ASGI scope's `server`: the socket `leafdoc serve --host/--port` bound, e.g.
    127.0.0.1:8000). That is the server's own socket, so it stays right behind a reverse proxy, and a forged
    Host header cannot send the admin token elsewhere. Plain http: `leafdoc serve` terminates no TLS.
    """
    if settings.ui_api_url:
        return settings.ui_api_url.rstrip("/")
    server = (scope or {}).get("server")
    if server and server[1]:
        host, port = server
        if ":" in host:  # an IPv6 address
            host = f"[{host}]"
        return f"http://{host}:{port}"
    return FALLBACK_API_URL


class LazyPage:
    """ASGI app that builds the Gradio page on the first request it gets."""

    def __init__(self, settings: Settings, path: str):
        self.settings, self.path = settings, path
        self._app: Any = None
        self._lock = asyncio.Lock()
        self._running = AsyncExitStack()

    async def __call__(self, scope, receive, send) -> None:
        if self._app is None:
            try:
                await self._start()
            except Exception:
                log.exception("the web page could not be built")
                await _plain(send, 503, "The web page could not be started; the server log says why.")
                return
        if scope["type"] == "http" and _is_file_route(scope.get("path", "")):
            send = _quiet_file_errors(send)
        await self._app(scope, receive, send)

    async def _start(self) -> None:
        async with self._lock:
            if self._app is not None:
                return
            use_page_folder(self.settings)  # before Gradio is imported: it reads some of it then
            from leafdoc.ui.page import build_app  # Gradio is imported here, once

            app, blocks = await anyio.to_thread.run_sync(build_app, self.settings, self.path)
            # What gr.mount_gradio_app's lifespan does at startup: Gradio's own lifespan, then its queue.
            await self._running.enter_async_context(app.router.lifespan_context(app))
            blocks.run_startup_events()
            await blocks.run_extra_startup_events()
            self._app = app

    async def aclose(self) -> None:
        await self._running.aclose()


def _is_file_route(path: str) -> bool:
    return "/file=" in path or "/gradio_api/file/" in path


def _quiet_file_errors(send):
    """Gradio's `file=` route answers a refused path with the path itself ("File not allowed: /etc/...");
    say only that it is not allowed, with the same status."""
    quiet = False

    async def wrapped(message) -> None:
        nonlocal quiet
        if message["type"] == "http.response.start" and message["status"] >= 400:
            quiet = True
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _BODY_HEADERS]
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(FILE_REFUSED)).encode())]
            await send({**message, "headers": headers})
        elif message["type"] == "http.response.body" and quiet:
            if not message.get("more_body", False):
                await send({"type": "http.response.body", "body": FILE_REFUSED})
        else:
            await send(message)

    return wrapped


_BODY_HEADERS = {b"content-type", b"content-length", b"content-encoding", b"transfer-encoding"}


async def _plain(send, status: int, message: str) -> None:
    body = message.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def mount_ui(app: FastAPI, settings: Settings, path: str = UI_PATH) -> LazyPage:
    """Mount the page at `path`; it is built on its first request and stopped with the app."""
    page = LazyPage(settings, path)
    app.mount(path, page)
    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a):
        async with outer(a) as state:
            try:
                yield state
            finally:
                await page.aclose()

    app.router.lifespan_context = lifespan
    return page
