"""What every tab of the web page shares: the API client for a visitor's request, status boxes and readable
failures, and the check of the files a visitor sends (`PageFiles`).

Handlers never raise at the user: an `ApiError` (server down, wrong token, bad photo) becomes a readable
message in the page and a toast; anything unexpected is logged here and shown as one plain sentence.

Files: a visitor sends Gradio a file *description* (a path), not the file, so every path an event brings
is hostile. The page opens only what a visitor uploaded through it (see `PageFiles`); Gradio's own checks
are configured in `page.build_app` (see also `ui/mount.py`: the page's own folder).
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from PIL import Image

from leafdoc.api_client import ApiError, LeafdocClient
from leafdoc.core.settings import Settings
from leafdoc.ui import text
from leafdoc.ui.where import EXAMPLES_DIR, api_base, visitor_headers
from leafdoc.words import photo_guide

log = logging.getLogger(__name__)

EXAMPLES = tuple(sorted(EXAMPLES_DIR.glob("*.jpg"))) if EXAMPLES_DIR.is_dir() else ()
# A row of examples/README.md's table of the example photos: | `file.jpg` | `true label` |
_EXAMPLE_ROW = re.compile(r"^\|\s*`([^`/]+\.jpg)`\s*\|\s*`([^`]+)`\s*\|\s*$", re.M)


def example_labels(folder: Path = EXAMPLES_DIR) -> dict[str, str]:
    """Each example photo's true label, read from the table in the folder's README.md: the one list of them, which
    people read too. Its button is named by it, in the page's language; a photo without one (added to the folder by
    hand) is named by its file name."""
    readme = folder / "README.md"
    return dict(_EXAMPLE_ROW.findall(readme.read_text(encoding="utf-8"))) if readme.is_file() else {}


EXAMPLE_LABELS = example_labels()
GUIDE_PHOTOS = tuple(e.path for e in photo_guide.pictured())  # the photo guide's pictures (examples/guide/)


def api_client(settings: Settings, request: gr.Request | None, token: str | None = None) -> LeafdocClient:
    """A client of the API for one visitor's request; its calls count against the visitor's address, not the page's."""
    scope = getattr(getattr(request, "request", None), "scope", None) if request is not None else None
    return LeafdocClient(
        api_base(settings, scope),
        admin_token=(token or "").strip() or None,
        headers=visitor_headers(settings, scope),
    )


# ---- the admin token ----------------------------------------------------------------------------------

ADMIN_TOKEN_INFO = "Typed once, it serves every admin tab until this page is closed or reloaded."


def admin_token_box(elem_id: str, scale: int = 4) -> gr.Textbox:
    """An admin tab's token box. Every admin tab has one, so that each says where the token goes; `share_admin_token`
    keeps them in step, so the admin types it once per visit."""
    return gr.Textbox(
        label="Admin token",
        type="password",
        placeholder="paste the admin token",
        info=ADMIN_TOKEN_INFO,
        scale=scale,
        elem_id=elem_id,
    )


def share_admin_token(boxes: list[gr.Textbox]) -> None:
    """What is typed into one admin token box is copied into the others. The copy is made in the browser (an event
    with no Python function), so the token leaves the page only in the requests that need it, and lives only as long
    as the page: never in the browser's storage, a URL, or a log.

    Copied as it is typed (`input`) and as the box is left (`blur`: a paste from a menu or a password manager, which
    Gradio's `input` misses); both are the visitor's own edits. Not on `change`, which a copy fires in turn: the
    boxes then copied each other back while the admin typed, and letters were lost."""
    for box in boxes:
        others = [b for b in boxes if b is not box]
        copies = ", ".join(["token"] * len(others))
        for edited in (box.input, box.blur):
            edited(None, [box], others, js=f"(token) => [{copies}]", queue=False, show_progress="hidden")


def png(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def status_box(message: str, ok: bool) -> dict:
    return gr.update(value=message, elem_classes=["status-box", "status-ok" if ok else "status-error"])


def problem(exc: Exception, what: str) -> tuple[str, str | None]:
    """(message, hint) for a failure, logged when it is not the server's own answer, its hint in the page's words
    (which control to use, not which form field to send). An unexpected exception's own text is not shown: it can
    name a server path."""
    if isinstance(exc, (ApiError, NotSent)):
        return exc.message, text.in_page_words(exc.hint)
    log.exception("web page: %s failed", what)
    return (
        f"{what} failed ({exc.__class__.__name__}).",
        "This is a bug in the web page; the server log has the details.",
    )


# ---- files a visitor sends ----------------------------------------------------------------------------


class NotSent(Exception):
    """An event named a file the page did not receive from a visitor (or no longer has)."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.message, self.hint = message, hint


def sent_name(value: dict | None) -> str:
    """The file's name as the visitor sent it: a base name, never a path (of theirs or of the server)."""
    value = value if isinstance(value, dict) else {}
    for raw in (value.get("orig_name"), value.get("path")):
        if isinstance(raw, str) and (name := raw.replace("\\", "/").rsplit("/", 1)[-1].strip()):
            return name if len(name) <= 120 else name[:117] + "..."
    return "The file"


@dataclass(frozen=True)
class PageFiles:
    """Which files the page may open: those a visitor uploaded through Gradio's upload route into the
    page's own folder, and the example photos. Gradio checks this too (`build_app`); this is the page's
    own check, so that no change in Gradio's can make a handler read a server file."""

    folder: Path  # the page's own folder (GRADIO_TEMP_DIR), resolved
    examples: frozenset[Path]  # resolved
    uploads: Callable[[], set[str]]  # the paths Gradio's upload route wrote (Blocks.upload_file_set)

    def open(self, value: dict | None) -> tuple[Path, str]:
        """(the file, its name as sent) for an event's file value; raises NotSent for anything else."""
        name = sent_name(value)
        raw = value.get("path") if isinstance(value, dict) else None
        if not isinstance(raw, str) or not raw:
            raise NotSent(f"{name} did not arrive.", "Upload it again.")
        given = Path(os.path.abspath(raw))
        real = given.resolve()  # follows every symlink: a link out of the folder ends outside it
        if given in self.examples and real in self.examples:
            return real, name
        uploaded = raw in self.uploads() or str(given) in self.uploads()
        if not (uploaded and given.is_relative_to(self.folder) and real.is_relative_to(self.folder)):
            log.warning("web page: refused a file that was not uploaded through the page: %s", raw)
            raise NotSent(f"{name} was not uploaded through this page.", "Upload it with the page's upload button.")
        if not real.is_file():
            raise NotSent(f"{name} is no longer on the server.", "Upload it again.")
        return real, name


def fail(exc: Exception, what: str) -> dict:
    message, hint = problem(exc, what)
    gr.Warning(message + (f" {hint}" if hint else ""))
    return status_box(text.error_text(message, hint, title=f"{what} failed"), ok=False)
