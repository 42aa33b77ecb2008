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

from leafdoc.service.routes import DESCRIPTIONS

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


# Answers the service's own layers give before or around a route (the admin gate, the body limits, the request
# parser), which a route's `responses=` does not name: added to /openapi.json so that a client generated from it
# knows every status it can meet, and FastAPI's 422 body (`HTTPValidationError`, {"detail": [...]}) is replaced by the
# one leafdoc sends (`ErrorAnswer`, like every error: service/errors.py).
GATE_CODES = (401, 403, 429)  # the admin gate's (service/middleware.py AdminGate)


def document_errors(app: FastAPI, gated: set[tuple[str, str]]) -> None:
    """Make app.openapi() name every error answer each route can give, all in the shape leafdoc sends; `gated`:
    (path, method) of the routes behind the admin token."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            _complete(build(), gated)
        return app.openapi_schema

    app.openapi = openapi


def _complete(schema: dict, gated: set[tuple[str, str]]) -> None:
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorAnswer"}}}
    for path, operations in schema.get("paths", {}).items():
        for method, op in operations.items():
            responses = op.setdefault("responses", {})
            added = list(GATE_CODES) if (path, method.upper()) in gated else []
            body = op.get("requestBody", {}).get("content", {})
            added += [400, 413] if "application/json" in body else [413] if body else []  # BodyLimit, the parser
            added += [422] if body or op.get("parameters") else []
            for code in added:
                responses.setdefault(str(code), {"description": DESCRIPTIONS[code]})
            for code, answer in responses.items():
                said = str(answer.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref"))
                if code[0] in "45" and ("content" not in answer or said.endswith("/HTTPValidationError")):
                    answer["content"] = error  # FastAPI's own 422 included (a route's own body, /readyz's, stays)
                    if answer.get("description") == "Validation Error":
                        answer["description"] = DESCRIPTIONS[422]
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
