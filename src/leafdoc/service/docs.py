"""/docs and /redoc, the API's documentation pages, with every file they load served by the service itself: Swagger
UI 5 and ReDoc as the fastapi-offline package ships them (pinned in requirements.lock). FastAPI's own pages load
them from a CDN with no integrity hash: a script a third party could change, and a blank page on a farm's
offline network."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(fastapi_offline.__file__).parent / "static"
STATIC_PATH = "/docs/static"


def mount_docs(app: FastAPI) -> None:
    """Serve /docs, /redoc and their files (the app must be made with docs_url=None, redoc_url=None)."""
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC), name="docs-static")

    def at(request: Request, path: str) -> str:
        return request.scope.get("root_path", "").rstrip("/") + path

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=at(request, app.openapi_url),
            title=f"{app.title} · API",
            swagger_js_url=at(request, f"{STATIC_PATH}/swagger-ui-bundle.js"),
            swagger_css_url=at(request, f"{STATIC_PATH}/swagger-ui.css"),
            swagger_favicon_url=at(request, f"{STATIC_PATH}/favicon.png"),
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=at(request, app.openapi_url),
            title=f"{app.title} · API",
            redoc_js_url=at(request, f"{STATIC_PATH}/redoc.standalone.js"),
            redoc_favicon_url=at(request, f"{STATIC_PATH}/favicon.png"),
            with_google_fonts=False,
        )
