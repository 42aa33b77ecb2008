"""Where the web page keeps its files and which API it talks to: used by the mount (before Gradio is
imported) and by the page itself, so neither imports the other for it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leafdoc.core.settings import PAGE_KEY_HEADER, VISITOR_HEADER

if TYPE_CHECKING:
    from leafdoc.core.settings import Settings

FALLBACK_API_URL = "http://127.0.0.1:8000"
EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "examples"  # the repository's examples/ (src layout)


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


def named_folders(settings: Settings) -> list[tuple[str, Path, bool]]:
    """(alias, folder, served) for each folder the page's answers must not name (ui/aliases.py): the two it serves
    files from (their aliases work both ways), then the data home and where leafdoc is installed (names only)."""
    package = Path(__file__).resolve().parents[1]  # leafdoc/
    folders = [
        ("/leafdoc/page-files", page_folder(settings), True),
        ("/leafdoc/examples", EXAMPLES_DIR, True),  # the example photos and the photo guide's (examples/guide)
        ("/leafdoc/data-home", settings.home, False),
        ("/leafdoc/install", package, False),
    ]
    if EXAMPLES_DIR.is_dir():  # a source checkout: the repository holds the package, the examples and the venv
        folders.append(("/leafdoc/install", EXAMPLES_DIR.parent, False))
    return folders


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


def visitor_headers(settings: Settings, scope: dict[str, Any] | None) -> dict[str, str]:
    """What the page adds to the API calls it makes for the visitor of `scope`: the visitor's address (as the
    server's uvicorn decided it: behind a trusted proxy, from its X-Forwarded-For) and the page's key, so the API's
    per-address limits (wrong admin tokens, feedback) count this visitor, not the page's own address, which every
    visitor shared (service/ratelimit.py, page_visitor). Nothing without a visitor's address."""
    client = (scope or {}).get("client")
    if not client or not client[0] or not settings.ui_page_key:
        return {}
    return {VISITOR_HEADER: str(client[0]), PAGE_KEY_HEADER: settings.ui_page_key}
