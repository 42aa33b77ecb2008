"""Errors that carry a plain message: what went wrong, on which file or value, and what to do.

The CLI prints them without a traceback and exits non-zero; the API maps them to 4xx answers, and a fault of the
server's own (ServerFault: its disk, store or catalog) to 503 or 507, so that no client blames its request.
"""

from __future__ import annotations

import errno


class LeafdocError(Exception):
    """Base class. `status` is the HTTP status the API answers with."""

    status = 400
    code = "error"

    def __init__(self, message: str, *, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message} {hint}")

    def to_dict(self) -> dict:
        out = {"error": self.code, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        return out


class ImageError(LeafdocError):
    """A file or upload that is not a usable image."""

    status = 422
    code = "bad_image"


class ImageTooLarge(ImageError):
    status = 413
    code = "image_too_large"


class UnsupportedImageFormat(ImageError):
    """An image in a format leafdoc does not decode (icons, layered or vector formats): images.PHOTO_FORMATS."""

    status = 415
    code = "unsupported_image_format"


class DatasetError(LeafdocError):
    """A dataset folder, zip, CSV or catalog entry that cannot be used."""

    status = 422
    code = "bad_dataset"


class ModelError(LeafdocError):
    """A model folder that is missing files or does not match what is asked of it."""

    status = 422
    code = "bad_model"


class UnknownCrop(LeafdocError):
    """A crop the model has no labels of (inference/cropfirst.py): the message lists the ones it knows."""

    status = 422
    code = "unknown_crop"


class UnknownLanguage(LeafdocError):
    """A `lang` the answers are not translated into."""

    status = 422
    code = "unknown_language"


class NotFound(LeafdocError):
    status = 404
    code = "not_found"


class ConfigError(LeafdocError):
    """Bad settings or options (a backbone that does not exist, weights that cannot be had)."""

    status = 400
    code = "bad_config"


class Unauthorized(LeafdocError):
    status = 401
    code = "unauthorized"
    headers = {"WWW-Authenticate": 'Bearer realm="leafdoc admin"'}  # HTTP's 401 names how to authenticate


class RequestTooLarge(LeafdocError):
    status = 413
    code = "request_too_large"


def too_large(limit: int, got: int | None = None) -> RequestTooLarge:
    size = f"{got:,} bytes" if got is not None else "the request body"
    return RequestTooLarge(
        f"{size} is over this route's limit of {limit:,} bytes.",
        hint="Send fewer or smaller files per request, or raise LEAFDOC_MAX_REQUEST_BYTES / LEAFDOC_MAX_IMAGE_BYTES "
        "(LEAFDOC_MAX_JSON_BYTES for a JSON body; feedback's 4 KiB is fixed: it is a few hundred bytes).",
    )


class Conflict(LeafdocError):
    status = 409
    code = "conflict"


class ServerFault(LeafdocError):
    """The server (or the machine running an ingest) could not do its part: its store or catalog cannot be written
    or reached. Not the fault of what was sent: the same request can succeed once it is fixed."""

    status = 503
    code = "server_fault"


class StorageFull(ServerFault):
    status = 507
    code = "storage_full"


FULL = (errno.ENOSPC, errno.EDQUOT)


def server_fault(exc: BaseException, message: str, *, hint: str | None = None) -> ServerFault:
    """The ServerFault for `exc`, a failed write or connection: StorageFull when the disk or quota is full."""
    full = isinstance(exc, OSError) and exc.errno in FULL or "disk is full" in str(exc)  # SQLite: SQLITE_FULL
    return (StorageFull if full else ServerFault)(message, hint=hint)
