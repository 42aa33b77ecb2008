"""No answer names where the server keeps things (issue: server paths in answers).

Records and messages made before a request reaches the API can hold server paths: a dataset ingested
from a folder on the server, the seed model's folder, a model card's warm-start folder, an error raised
deep in the library. Answers pass through `redact`, which keeps a path's last part (the file's own name)
and drops the folders above it; the server's log keeps the whole path.
"""

from __future__ import annotations

import re
from typing import Any

# An absolute POSIX path: '/' not preceded by a word character or '/' (so not a URL's '//' or a relative
# path), then at least two parts. The API's own routes are left alone.
_PATH = re.compile(r"(?<![\w/.~-])/(?:[^\s/'\"<>|,;]+/)+([^\s/'\"<>|,;]*)")
_ROUTES = ("/v1/", "/ui/", "/docs", "/redoc", "/openapi.json", "/metrics", "/healthz", "/readyz")


def _keep_name(match: re.Match) -> str:
    text = match.group(0)
    if text.startswith(_ROUTES):
        return text
    return match.group(1) or "…"


def redact_text(text: str) -> str:
    return _PATH.sub(_keep_name, text) if "/" in text else text


def redact(value: Any) -> Any:
    """`value` (a JSON-like answer) with every server path reduced to its last part."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
