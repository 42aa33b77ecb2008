"""Errors the API adds to leafdoc's, and the handlers that turn every error into one JSON shape:
`{"error": code, "message": ..., "hint": ...}` with the error's HTTP status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from leafdoc.core.errors import LeafdocError, ServerFault, server_fault
from leafdoc.core.redact import redact

log = logging.getLogger(__name__)

CLIENT_CLOSED = 499  # the client closed the connection before the answer (nginx's code)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
}


class InvalidRequest(LeafdocError):
    status = 422
    code = "invalid_request"


class BadUpload(LeafdocError):
    status = 422
    code = "bad_upload"


class NotAPhotoBody(LeafdocError):
    """A body sent to a photo route as JSON or text: no photo is in it (a client that sent base64 in JSON)."""

    status = 415
    code = "unsupported_media_type"


class AdminDisabled(LeafdocError):
    status = 403
    code = "admin_disabled"


class RequestTimeout(LeafdocError):
    """A client stopped sending its request: answered by the server's protocol itself (service/protocol.py)."""

    status = 408
    code = "request_timeout"


SERVER_HINT = "Send the same request again later; if this lasts, tell the server's operator (its log says more)."


def error_body(exc: LeafdocError) -> dict:
    """An error in the API's shape; every error says what to do (`hint`), if only where the documentation is."""
    body = exc.to_dict()
    body.setdefault("hint", DEFAULT_HINT)
    return body


def _leafdoc_error(request: Request, exc: LeafdocError) -> JSONResponse:
    body = error_body(exc)
    if isinstance(exc, ServerFault):  # the hint the library gives is the operator's; the client's is to retry
        log.error("server fault on %s %s: %s", request.method, request.url.path, exc)
        body["message"] = f"the server is at fault, not your request: {exc.message}"
        body["hint"] = SERVER_HINT
    return JSONResponse(redact(body), status_code=exc.status, headers=getattr(exc, "headers", None))


def _catalog_error(request: Request, exc: Exception) -> JSONResponse:
    """The catalog (SQLite file, PostgreSQL) cannot be reached or written: locked for too long, read-only, full, the
    database down. The transaction that failed was rolled back."""
    log.exception("the catalog failed on %s %s", request.method, request.url.path)
    # the database's own words stay in the log: a server's name its host and port inside the network
    fault = server_fault(
        exc, "its catalog is unavailable; what this request was writing was not saved, nothing was registered."
    )
    return _leafdoc_error(request, fault)


MAX_DETAILS = 20  # problems listed in a 422 (the count says how many there were): a body of 90,000 unknown keys
# was answered with 8 MB of details


JSON_HINT = "Send a JSON object with Content-Type: application/json, as the route's examples at /docs show."


def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = exc.errors()
    first_type = problems[0].get("type") if problems else None
    if first_type == "json_invalid":  # JSON that does not parse: 400, as service.md says, and where it broke
        at = problems[0].get("loc", ("body", "?"))[-1]
        why = (problems[0].get("ctx") or {}).get("error", "malformed")
        message = f"the request's body is not valid JSON: {why} (character {at})."
        return JSONResponse({"error": "bad_request", "message": message, "hint": JSON_HINT}, status_code=400)
    if first_type == "model_attributes_type" and tuple(problems[0].get("loc", ())) == ("body",):
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()[:60] or "no Content-Type"
        message = (
            "the body must be a JSON object, not a list or a single value."
            if kind.endswith("json")
            else f"the body must be a JSON object with Content-Type: application/json (it was sent as {kind})."
        )
        return JSONResponse({"error": "invalid_request", "message": message, "hint": JSON_HINT}, status_code=422)
    details = jsonable_encoder(problems[:MAX_DETAILS], custom_encoder={Exception: str})
    for d in details:
        d.pop("input", None)  # may echo a whole upload back
        d.pop("url", None)
    first = details[0] if details else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return JSONResponse(
        {
            "error": "invalid_request",
            "message": f"the request is not valid: {where}: {first.get('msg', 'invalid')}"
            + (f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""),
            "hint": "See the API documentation at /docs.",
            "details": details,
        },
        status_code=422,
    )


# What to do after an error Starlette or FastAPI answers before a route runs (every error carries a hint).
HTTP_HINTS = {
    400: "Send the body as the route's documentation at /docs shows it (JSON: a flat object, as in the examples).",
    404: "See /docs for the routes.",
    405: "Use one of the methods the Allow header lists; /docs shows each route's.",
}
DEFAULT_HINT = "See the API documentation at /docs."


def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"there is no route {request.url.path}."
    elif exc.status_code == 400 and message == "There was an error parsing the body":  # FastAPI's, e.g. nested deep
        message = "the request's body could not be read as JSON (malformed, or nested too deep)."
    elif exc.status_code == 405 and message == "Method Not Allowed":
        message = f"{request.method} is not a method of {request.url.path}."
    body = {
        "error": HTTP_CODES.get(exc.status_code, "http_error"),
        "message": message,
        "hint": HTTP_HINTS.get(exc.status_code, DEFAULT_HINT),
    }
    return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


def _client_gone(request: Request, exc: ClientDisconnect) -> Response:
    """The client hung up before its request was read: no server error, nobody to answer. Logged in one line
    and counted as 499 (nginx's code for it), apart from the 5xx answers."""
    log.warning("client disconnected before sending the whole request: %s %s", request.method, request.url.path)
    return Response(status_code=CLIENT_CLOSED)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse(
        {"error": "internal", "message": f"an unexpected error happened ({type(exc).__name__}); it was logged."},
        status_code=500,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(LeafdocError, _leafdoc_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _catalog_error)
    app.add_exception_handler(SQLAlchemyTimeout, _catalog_error)
    app.add_exception_handler(Exception, _unexpected)
