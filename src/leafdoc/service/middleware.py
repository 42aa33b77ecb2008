"""ASGI middleware: request size limits (413 before the body is read when Content-Length says so, and
while it streams otherwise) and request metrics by route template."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from leafdoc.errors import RequestTooLarge
from leafdoc.service.metrics import ServiceMetrics


def _too_large(limit: int, got: int | None = None) -> RequestTooLarge:
    size = f"{got:,} bytes" if got is not None else "the request body"
    return RequestTooLarge(
        f"{size} is over this route's limit of {limit:,} bytes.",
        hint="Send fewer or smaller files per request, or raise LEAFDOC_MAX_REQUEST_BYTES / LEAFDOC_MAX_IMAGE_BYTES.",
    )


class BodyLimit:
    def __init__(self, app, limit_for: Callable[[str], int]):
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit_for(scope.get("path", ""))
        declared = next((v for k, v in scope.get("headers", []) if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            exc = _too_large(limit, int(declared))
            body = json.dumps(exc.to_dict()).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": exc.status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit)
            return message

        await self.app(scope, limited_receive, send)


class RequestMetrics:
    def __init__(self, app, metrics: ServiceMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            self.metrics.requests.labels(method, name, str(status)).inc()
            self.metrics.latency.labels(method, name).observe(time.perf_counter() - start)
