"""No answer of the web page names a folder of the server (issue 51, #11): Gradio's paths replaced by aliases.

Gradio names every file by its absolute server path, `FileData.path` and the `url` made of it: in `/ui/config` and
the page's HTML (the example photos, in the install folder), in `/gradio_api/upload`'s answer and in every event's
result (uploads and heat maps, in `<data home>/cache/ui`). Gradio has no setting for it, so the page's process
rewrites what goes into and out of Gradio, around every /ui request (`hide_paths_in_answers`, `map_file_url`,
`map_json_request`, used by mount.py), with the folders where.py names (`named_folders`):

- out: every answer but a file (JSON, HTML, plain text, and event streams line by line) has each folder replaced
  by its alias, in every spelling Gradio writes (as is, JSON-escaped, with `\\/`, URL-quoted): the page's folder by
  `/leafdoc/page-files`, the examples' by `/leafdoc/examples`, the data home by `/leafdoc/data-home` and the
  install folder by `/leafdoc/install`;
- in: a `file=` URL, and the `path` of a file in a JSON body (an event's data), under the alias of a folder the page
  serves (the first two) are mapped back to that folder before Gradio sees them, if they stay inside it once `..`
  is resolved (else they are left as sent: no such file). Gradio's checks and the page's own (`PageFiles`) run
  after, as before. The other aliases are names only and open nothing;
- a server folder a visitor names (in any string of a JSON body, or a `file=` URL) is swapped for a secret marker
  of that folder before Gradio sees it, and the marker back for the visitor's own spelling on the way out: Gradio
  and the page quote many values back ("Value: ... is not in the list of choices"), and an answer that showed an
  alias where the visitor sent a guess would confirm the guess. So a real path opens nothing from outside (only
  aliases do), and a guess comes back as it was sent, right or wrong.

Multipart bodies (uploads) and file answers pass untouched: a large photo costs nothing more.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from leafdoc.core.errors import LeafdocError
from leafdoc.ui.guard import JSON, answer

# What may follow a folder's name for it to be that folder and not a longer name (`/a/ui` in `/a/ui2`): anything
# but a character of a file name's spelling (as is, URL-quoted or JSON-escaped: a backslash may start `\/`).
_NOT_A_NAME = r"(?![\w.~%+-])"
_NOT_A_NAME_BYTES = rb"(?![\w.~%+\x80-\xff-]|\\u)"  # `\u`: a JSON-escaped letter
REWRITTEN = frozenset({"application/json", "text/html", "text/plain", "text/event-stream"})  # answers' types
EVENTS = "text/event-stream"


def _json_text(text: str, ascii_only: bool) -> str:
    return json.dumps(text, ensure_ascii=ascii_only)[1:-1]


def _spelled(text: str) -> list[bytes]:
    """`text` in every spelling Gradio writes a path in, one for each encoder of `_ENCODERS`, in that order."""
    return [encode(text).encode() for encode in _ENCODERS]


_PLAIN = (
    lambda t: t,  # as is (orjson, the page's HTML, plain text)
    lambda t: _json_text(t, ascii_only=False),  # in a JSON string
    lambda t: _json_text(t, ascii_only=True),  # in a JSON string by json.dumps (the /call/ routes' streams)
    lambda t: quote(t, safe="/"),  # in a URL (Gradio's `file=` URLs)
)
_ENCODERS = (*_PLAIN, *(lambda t, e=e: e(t).replace("/", "\\/") for e in _PLAIN))  # each also with `\/` for `/`


class PathAliases:
    """The folders the page's answers must not name and their aliases: (alias, folder, served) for each, served
    meaning the alias is mapped back (see the module docstring). Each folder counts in both its spellings, as given
    (made absolute) and resolved; a folder that is the root of the file system is left out."""

    def __init__(self, folders: Iterable[tuple[str, Path, bool]]):
        named: dict[str, str] = {}  # a spelling of a folder -> its alias
        self.served: list[tuple[str, str]] = []  # (alias, the folder Gradio knows: resolved)
        for alias, folder, served in folders:
            for spelling in (os.path.abspath(folder), str(Path(folder).resolve())):
                if spelling != os.sep:
                    named.setdefault(spelling, alias)
            if served:
                self.served.append((alias, str(Path(folder).resolve())))
        self.named = dict(sorted(named.items(), key=lambda kv: -len(kv[0])))  # a folder inside another first
        self.markers = {real: _marker() for real in self.named}
        self.refused = _marker()  # put before a path that must open nothing (`file_path`); taken out of answers
        # out: each spelling of each folder -> its alias spelled the same way
        out: dict[bytes, bytes] = {}
        for real, alias in self.named.items():
            for spelled, alias_spelled in zip(_spelled(real), _spelled(alias), strict=True):
                out.setdefault(spelled, alias_spelled)
        self._out = out
        self._out_re = _alternatives(out, _NOT_A_NAME_BYTES)
        # back: a marker (as is, or with `\/`) -> the visitor's own spelling of the folder, JSON-escaped
        back: dict[bytes, bytes] = {}
        for real, marker in [*self.markers.items(), ("", self.refused)]:
            back[marker.encode()] = _json_text(real, ascii_only=False).encode()
            back[marker.replace("/", "\\/").encode()] = _json_text(real, ascii_only=False).replace("/", "\\/").encode()
        self._back = back
        self._back_re = _alternatives(back, b"")
        self._in_re = (
            re.compile("(?:" + "|".join(map(re.escape, self.named)) + ")" + _NOT_A_NAME) if self.named else None
        )

    # ---- out -------------------------------------------------------------------------------------------------

    def hide(self, body: bytes) -> bytes:
        """An answer's bytes with every folder replaced by its alias, and every marker by the folder as the visitor
        spelt it (in that order: what the visitor sent is not aliased)."""
        if self._out_re is not None:
            body = self._out_re.sub(lambda m: self._out[m.group(0)], body)
        if self._back_re is not None and b"leafdoc-" in body:
            body = self._back_re.sub(lambda m: self._back[m.group(0)], body)
        return body

    # ---- in --------------------------------------------------------------------------------------------------

    def masked(self, text: str) -> str:
        """`text` from a visitor with each folder it names swapped for the folder's marker."""
        if self._in_re is None:
            return text
        return self._in_re.sub(lambda m: self.markers[m.group(0)], text)

    def real_path(self, path: str) -> str:
        """A visitor's file path: under the alias of a served folder (and inside it once `..` is resolved), the
        file in that folder; anything else as it is."""
        for alias, folder in self.served:
            if path.startswith(alias + "/"):
                normal = posixpath.normpath(path)
                if normal.startswith(alias + "/"):
                    return folder + normal[len(alias) :]
        return path

    def file_path(self, path: str) -> str:
        """A file's path as a visitor sent it: under a served alias, the real file (`real_path`). A path that opens a
        file in a named folder otherwise, in any spelling Gradio would open (`a/../b`, `./`, relative to the working
        folder), is made one that opens nothing (the refusal marker before it, which is taken out of answers: quoted
        back, it reads as sent). Anything else as it is (folders masked)."""
        mapped = self.real_path(path)
        if mapped != path:
            return mapped
        if "://" not in path and path:  # a URL is not opened as a path
            opened = os.path.abspath(path)  # what Gradio opens (utils.abspath)
            if self.masked(opened) != opened:
                return self.refused + self.masked(path)
        return self.masked(path)

    def inward(self, value, key: str | None = None):
        """A JSON value from a visitor: folders masked in every string, a file's `path` as `file_path` says."""
        if isinstance(value, str):
            return self.file_path(value) if key == "path" else self.masked(value)
        if isinstance(value, list):
            return [self.inward(v) for v in value]
        if isinstance(value, dict):
            return {self.masked(k): self.inward(v, k) for k, v in value.items()}
        return value

    def request_json(self, body: bytes) -> bytes | None:
        """A JSON request body with `inward` applied, or None when that changes nothing (or it is not JSON)."""
        try:
            value = json.loads(body)
        except ValueError:
            return None  # Gradio answers it
        changed = self.inward(value)
        if changed == value:
            return None
        return json.dumps(changed, ensure_ascii=False, separators=(",", ":")).encode()

    def file_url_path(self, path: str) -> str:
        """The path of a request to Gradio's file routes (decoded, as the ASGI scope holds it) with the file it names
        mapped as `file_path` says: `.../file=<path>`, and the older `.../file/<path>` (no alias mapped back: the
        page does not use that route; a named folder masked all the same)."""
        head, sep, named = path.partition("/file=")
        if sep:
            return head + sep + self.file_path(named)
        head, sep, named = path.partition("/file/")
        if sep:
            opened = os.path.abspath(named)  # what the route opens
            return head + sep + self.refused + named if self.masked(opened) != opened else path
        return path


def _marker() -> str:
    """A folder's name no visitor can know (24 random hex digits), all of one length: none begins another."""
    return f"/leafdoc-{secrets.token_hex(12)}"


def _alternatives(table: dict[bytes, bytes], after: bytes) -> re.Pattern[bytes] | None:
    if not table:
        return None
    spellings = sorted(table, key=len, reverse=True)
    return re.compile(b"(?:" + b"|".join(map(re.escape, spellings)) + b")" + after)


# ---- around a request (mount.py) ----------------------------------------------------------------------------


def _header(headers, name: bytes) -> str:
    return next((v.decode("latin-1") for k, v in headers if k.lower() == name), "")


def hide_paths_in_answers(send, aliases: PathAliases):
    """`send` that hides the folders in an answer of a type in REWRITTEN (`PathAliases.hide`): a whole answer is
    held until its end and sent with its new Content-Length (they are small: JSON, the page's HTML); an event stream
    is sent as it comes, up to the end of its last whole line (a path is never cut in two). Other answers, and
    answers with a Content-Encoding, pass as they are."""
    start: dict | None = None
    streamed = passed = False
    held = b""

    async def wrapped(message) -> None:
        nonlocal start, streamed, passed, held
        if message["type"] == "http.response.start":
            headers = message.get("headers", [])
            kind = _header(headers, b"content-type").split(";")[0].strip().lower()
            if kind not in REWRITTEN or _header(headers, b"content-encoding"):
                passed = True
                await send(message)
            elif kind == EVENTS:
                streamed = True
                await send({**message, "headers": [(k, v) for k, v in headers if k.lower() != b"content-length"]})
            else:
                start = message
            return
        if message["type"] != "http.response.body" or passed:
            await send(message)
            return
        more = message.get("more_body", False)
        held += message.get("body", b"")
        if streamed:
            cut = held.rfind(b"\n") + 1 if more else len(held)
            if cut or not more:
                body, held = aliases.hide(held[:cut]), held[cut:]
                await send({"type": "http.response.body", "body": body, "more_body": more})
        elif not more and start is not None:
            body, held = aliases.hide(held), b""
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

    return wrapped


def map_file_url(scope, aliases: PathAliases):
    """The scope of a request to Gradio's file routes with the file it names mapped (`PathAliases.file_url_path`)."""
    path = aliases.file_url_path(scope["path"])
    if path == scope["path"]:
        return scope
    return {**scope, "path": path, "raw_path": quote(path, safe="/=").encode()}


def carries_json(scope) -> bool:
    """Whether a request has a body Gradio reads as JSON (FastAPI does with no Content-Type too)."""
    headers = scope.get("headers", [])
    if scope.get("method") not in ("POST", "PUT", "PATCH"):
        return False
    kind = _header(headers, b"content-type").split(";")[0].strip().lower()
    return kind in ("", "application/json") or kind.endswith("+json")


async def map_json_request(scope, receive, send, aliases: PathAliases):
    """(scope, receive) of a request whose JSON body has its paths mapped (`PathAliases.request_json`; the body is
    read whole first: the API's limit for JSON, 1 MiB, held it already), or None when the visitor left while
    sending it, or the body was refused while it was read (over its limit: answered here)."""
    chunks = []
    while True:
        try:
            message = await receive()
        except LeafdocError as exc:  # BodyLimit's, in an API worker
            await answer(send, exc.status, json.dumps(exc.to_dict()), JSON)
            return None
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    mapped = aliases.request_json(body)
    if mapped is not None:
        body = mapped
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in (b"content-length", b"transfer-encoding")]
        scope = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
    given = False

    async def replay():
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return scope, replay
