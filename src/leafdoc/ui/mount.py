"""Mount the web page at /ui without paying for Gradio until someone opens it.

Importing Gradio and building the page take seconds (tens of seconds on a busy two-core machine). The
app factory runs in every API worker and every test, most of which never serve a page, so /ui is a small
ASGI app that builds the Gradio app on its first request (in a thread: the API keeps answering), starts
Gradio's queue, and hands every request to it from then on. The page is stopped with the service.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from fastapi import FastAPI

    from leafdoc.settings import Settings

log = logging.getLogger(__name__)

UI_PATH = "/ui"
FALLBACK_API_URL = "http://127.0.0.1:8000"


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
        await self._app(scope, receive, send)

    async def _start(self) -> None:
        async with self._lock:
            if self._app is not None:
                return
            from leafdoc.ui.page import build_app  # Gradio is imported here, once

            app, blocks = await anyio.to_thread.run_sync(build_app, self.settings, self.path)
            # What gr.mount_gradio_app's lifespan does at startup: Gradio's own lifespan, then its queue.
            await self._running.enter_async_context(app.router.lifespan_context(app))
            blocks.run_startup_events()
            await blocks.run_extra_startup_events()
            self._app = app

    async def aclose(self) -> None:
        await self._running.aclose()


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
