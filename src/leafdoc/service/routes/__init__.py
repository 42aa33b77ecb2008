"""The API's routes, one module per resource. Routes stay thin: parse, call the library, answer."""

from __future__ import annotations

from leafdoc.service.schemas import ErrorAnswer

DESCRIPTIONS = {
    400: "The body cannot be read as JSON (malformed, or nested too deep).",
    401: "The admin token is missing or wrong.",
    403: "Admin routes are disabled (no LEAFDOC_ADMIN_TOKEN on the server).",
    404: "No such resource.",
    409: "Conflicts with the current state.",
    413: "The request, an image, or a batch is over a configured limit.",
    415: "A body that is not a photo (JSON, text), or a photo in a format leafdoc does not open (ICO, ICNS, ...).",
    422: "An unusable image, upload, or invalid request (`details` lists an invalid request's fields).",
    429: "Too many requests from this address (wrong admin tokens, feedback): send again after Retry-After.",
    503: "No model is serving (`no_model`), the server is busy (`busy`: send it again after Retry-After), or its "
    "store or catalog cannot be written or reached (`server_fault`: nothing was registered; retry later).",
    507: "The server's disk is full (`storage_full`): nothing was registered; retry once its operator freed space.",
}


def errors(*codes: int) -> dict:
    """OpenAPI `responses` for the error answers a route can give (all share ErrorAnswer)."""
    return {c: {"model": ErrorAnswer, "description": DESCRIPTIONS.get(c, "Error.")} for c in codes}


ADMIN = (401, 403)

# A version number (of a model or a dataset) as the catalog stores it, a 32-bit integer: a larger one is a 422, not the
# database's overflow error (a 500, and a traceback in the log for every such request).
MAX_VERSION = 2**31 - 1
