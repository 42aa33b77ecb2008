"""The routes of the offline page (/app), with their own Content-Security-Policy: only what the page needs, on
its path only (the API's answers and /ui keep theirs)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import logging
import re
import threading
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from leafdoc.core.redact import redact
from leafdoc.imaging import upload_size
from leafdoc.inference import explain
from leafdoc.inference.abstain import min_confidence
from leafdoc.inference.cropfirst import CROP_MISMATCH_SHARE
from leafdoc.offline import checks, halve
from leafdoc.offline.texts import URGENT_RULE, all_texts
from leafdoc.runtime.memory import give_back_after
from leafdoc.words import history
from leafdoc.words.not_found import not_found_html

log = logging.getLogger(__name__)
APP_PATH = "/app"
STATIC = Path(__file__).parent / "static"
# Answers the page keeps waiting for a connection, each with its photo (at most 1,024 px: 100-400 kB): a bound on what
# it stores, far inside a browser's quota for a site; the next is refused, saying to connect first.
FEEDBACK_KEEP = 50
VENDOR = Path(__file__).parent / "vendor"  # filled by scripts/install.sh from web/node_modules (git-ignored)
# What the page loads of onnxruntime-web's dist: the WebAssembly build's ES module, and the module and .wasm it loads.
VENDOR_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
# The page's own files, by the name it asks for them (nothing else under STATIC is served).
PAGE_FILES = {
    "": ("index.html", "text/html; charset=utf-8"),
    "app.js": ("app.js", "text/javascript; charset=utf-8"),
    "checks.js": ("checks.js", "text/javascript; charset=utf-8"),
    "words.js": ("words.js", "text/javascript; charset=utf-8"),
    "heatmap.js": ("heatmap.js", "text/javascript; charset=utf-8"),
    "history.js": ("history.js", "text/javascript; charset=utf-8"),
    "feedback.js": ("feedback.js", "text/javascript; charset=utf-8"),
    "shrink.js": ("shrink.js", "text/javascript; charset=utf-8"),
    "prepare.js": ("prepare.js", "text/javascript; charset=utf-8"),
    "app.css": ("app.css", "text/css; charset=utf-8"),
    "sw.js": ("sw.js", "text/javascript; charset=utf-8"),
    "manifest.webmanifest": ("manifest.webmanifest", "application/manifest+json"),
    "icon-192.png": ("icon-192.png", "image/png"),
    "icon-512.png": ("icon-512.png", "image/png"),
}
VENDOR_TYPES = {".mjs": "text/javascript; charset=utf-8", ".wasm": "application/wasm"}

# What each part lets in:
# - script-src 'self' 'wasm-unsafe-eval': the page's scripts and ONNX Runtime Web's modules from this server, and
#   compiling its WebAssembly (no 'unsafe-inline', no 'unsafe-eval': the page has no inline script and no eval);
# - connect-src 'self': the model, its description and the .wasm are fetched from this server only;
# - worker-src 'self': the service worker (ONNX Runtime runs on the page's thread: no proxy or blob workers);
# - img-src blob:: the chosen photo is shown from a blob: URL; manifest-src 'self': the web manifest.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "style-src 'self'",
        "img-src 'self' blob:",
        "connect-src 'self'",
        "worker-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Cross-origin isolated (nothing from other sites may be loaded or open it), so ONNX Runtime Web may share
    # memory between threads: it runs the model on up to 4 cores of the phone instead of one.
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
}
MISSING = (
    "ONNX Runtime Web is not installed beside this leafdoc: run `bash scripts/install.sh` (it needs npm) or "
    "`cd web && npm ci` and copy {files} from web/node_modules/onnxruntime-web/dist/ into {folder}."
)


# Sent gzipped to a browser that accepts it: the page's text files and ONNX Runtime Web's (its .wasm: 14.2 MB -> 3.7
# MB). Not the model or its checks: float weights shrink by 7%, not worth the CPU of every first visit.
GZIP_SUFFIXES = (".wasm", ".mjs", ".js", ".css", ".html", ".webmanifest")


def accepts_gzip(request: Request) -> bool:
    """Whether the request's Accept-Encoding takes gzip (named, or `*`, and not with q=0)."""
    for part in request.headers.get("accept-encoding", "").lower().split(","):
        name, *params = (p.strip() for p in part.split(";"))
        if name in ("gzip", "*"):
            q = next((p[2:] for p in params if p.startswith("q=")), "1")
            try:
                return float(q) > 0
            except ValueError:
                return False
    return False


@functools.lru_cache(maxsize=16)
def _gzipped(path: str, mtime_ns: int, size: int) -> bytes:
    """A file's gzip, made once per version of the file (its time and size are part of the key)."""
    return gzip.compress(Path(path).read_bytes(), 6, mtime=0)


async def _file(request: Request, path: Path, media: str) -> Response:
    """A file of the page or of ONNX Runtime Web, gzipped when the browser takes it and it is text or WebAssembly."""
    if path.suffix in GZIP_SUFFIXES and accepts_gzip(request):
        stat = path.stat()
        body = await run_in_threadpool(_gzipped, str(path), stat.st_mtime_ns, stat.st_size)  # 0.6 s for the .wasm
        response = Response(body, media_type=media, headers={"Content-Encoding": "gzip"})
    else:
        response = FileResponse(path, media_type=media)
    response.headers["Vary"] = "Accept-Encoding"
    return _with_headers(response)


def vendor_missing() -> list[str]:
    """The files of ONNX Runtime Web the page needs that are not installed."""
    return [f for f in VENDOR_FILES if not (VENDOR / f).is_file()]


def _with_headers(response: Response, cache: str = "no-cache") -> Response:
    response.headers.update(HEADERS)
    response.headers["Cache-Control"] = cache  # the service worker decides what is kept; the browser revalidates
    return response


def offline_min_confidence(card) -> float:
    """The confidence the page needs to answer a model whose checks it cannot run (a model folder without ood.npz, or
    whose model gives no features). The server holds a photo its unlike-training check takes for a field photo to the
    stricter threshold the card sets for field photos (`field.learnt.min_confidence`); without that check the page
    holds every photo to the stricter of the two (docs/phone.md). With the checks, the page decides as the server."""
    threshold = min_confidence(card)
    field = (card.field or {}).get("learnt") or {} if card.ood else {}
    if field.get("min_confidence") is not None:
        threshold = max(threshold, float(field["min_confidence"]))
    return threshold


def limits_of(card) -> dict:
    """The card's limitations and their translations, and nothing else of it, with any server folder a hand-edited card
    names reduced to its last part, as GET /v1/models answers the card (core/redact.py)."""
    return redact({"limitations": card.limitations, "limitations_translated": card.limitations_translated})


def model_description(loaded) -> dict:
    """What the page needs to prepare a photo and read the model's answer, from the serving model's card."""
    p = loaded.predictor
    runs_checks = checks.available(p)
    return {
        "version": loaded.version,
        "model": f"model/{loaded.version}/model.onnx",
        "model_bytes": _model_bytes(loaded),
        "labels": p.labels,
        "input": {
            "size": p.prep.size,
            "framing": p.prep.framing,
            "white_balance": p.prep.white_balance,
            "light_range": list(p.prep.light_range) if p.prep.light_range else None,
            "morphology": p.prep.morphology,
        },
        # the not-a-leaf and unlike-training checks, run in the page (static/checks.js); without them, the stricter
        # threshold for every photo
        "checks": f"model/{loaded.version}/checks.bin" if runs_checks else None,
        "checks_bytes": len(_checks_file(loaded)) if runs_checks else None,
        "min_confidence": min_confidence(p.card) if runs_checks else offline_min_confidence(p.card),
        "server_min_confidence": min_confidence(p.card),
        "crop_mismatch_share": CROP_MISMATCH_SHARE,  # a crop the model all but rules out (cropfirst.crop_mismatch)
        # every language's words, so the page speaks the grower's with no connection (offline/texts.py)
        "texts": all_texts(
            p.labels, loaded.knowledge, p.card.field if p.field is not None else None, limits_of(p.card)
        ),
        "urgent_rule": URGENT_RULE,
        # the side of the square the heat map is drawn over, as the server's (inference/explain.py)
        "heat_map_px": explain.DISPLAY_SIZE,
        # the history of diagnoses the browser keeps, shared with the web page's (words/history.py)
        "history": {"key": history.KEY, "keep": history.KEEP, "thumb_px": history.THUMB_PX},
        # feedback kept on the phone until there is a connection (static/feedback.js), its photo as /ui uploads it
        "feedback": {
            "keep": FEEDBACK_KEEP,
            "long_side": upload_size.LONG_SIDE,
            "quality": upload_size.JPEG_QUALITY / 100,
        },
    }


router = APIRouter(include_in_schema=False)


@router.get(APP_PATH)
async def app_root() -> Response:
    return _with_headers(RedirectResponse(f"{APP_PATH}/"))


@router.get(APP_PATH + "/model.json")
async def model_json(request: Request) -> Response:
    """The serving model's description; asked for at every visit with a connection (180 kB, 40 kB gzipped: the
    words of four languages), so made once per version, gzipped once."""
    loaded = request.app.state.leafdoc.holder.current(wait=False)
    body = await run_in_threadpool(
        _once_per_version,
        loaded,
        "model.json",
        lambda: json.dumps(model_description(loaded), ensure_ascii=False).encode(),
    )
    headers = {"Vary": "Accept-Encoding"}
    if accepts_gzip(request):
        body = await run_in_threadpool(
            _once_per_version, loaded, "model.json.gz", lambda: gzip.compress(body, 6, mtime=0)
        )
        headers["Content-Encoding"] = "gzip"
    return _with_headers(Response(body, media_type="application/json", headers=headers))


@router.get(APP_PATH + "/model/{version}/model.onnx")
async def model_file(request: Request, version: int) -> Response:
    """The serving version's model.onnx, most of its weights in half precision (offline/halve.py: half the download,
    the same answers), by its version, so a new version is a new file to the page's cache."""
    loaded = request.app.state.leafdoc.holder.current(wait=False)
    if version != loaded.version:
        return _with_headers(PlainTextResponse(f"version {version} is not the serving model", status_code=404))
    body = await run_in_threadpool(_model_file, loaded)
    if body is None:  # too large to halve: from its file (Starlette answers its ranges)
        path = loaded.predictor.model_dir / "model.onnx"
        return _with_headers(FileResponse(path, media_type="application/octet-stream"))
    tag = await run_in_threadpool(_tag, loaded, "model.onnx", body)  # the build's lock may be held: not on the loop
    return _with_headers(_resumable(request, body, tag))


def _tag(loaded, name: str, body: bytes) -> str:
    """The ETag of a file made once per version: its bytes' SHA-256 (the first 32 hex digits), computed once too; the
    page checks what it put together against it (app.js isTagged)."""
    made = _once_per_version(loaded, name + ".etag", lambda: hashlib.sha256(body).hexdigest()[:32].encode())
    return "sha256-" + made.decode()


ONE_RANGE = re.compile(r"bytes=([0-9]{0,18})-([0-9]{0,18})", re.ASCII | re.IGNORECASE)


def _one_range(asked: str, size: int) -> tuple[int, int] | bool | None:
    """The bytes a `Range` header asks for, as (first, last), both included; None where it is not one range of
    bytes this answer can read (then the whole is sent, as RFC 9110 allows); False where it starts past the end."""
    found = ONE_RANGE.fullmatch(asked.strip())
    if found is None or found.group(1) == found.group(2) == "":
        return None
    first, last = (int(p) if p else None for p in found.groups())
    if first is None:  # the last N bytes
        return (max(0, size - last), size - 1) if last and size else False
    if first >= size:
        return False
    end = size - 1 if last is None else min(last, size - 1)
    return (first, end) if end >= first else None


def _resumable(request: Request, body: bytes, tag: str, media: str = "application/octet-stream") -> Response:
    """`body` with its ETag: 304 to a browser that has it (If-None-Match); the part a `Range` asks for (206), unless
    `If-Range` names another version's tag, so that a phone whose download dropped asks only for the rest."""
    etag = f'"{tag}"'
    headers = {"ETag": etag, "Accept-Ranges": "bytes"}
    if etag in (t.strip() for t in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=304, headers=headers)
    asked = request.headers.get("range")
    if asked and request.headers.get("if-range", etag).strip() == etag:
        part = _one_range(asked, len(body))
        if part is False:
            return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{len(body)}"})
        if part is not None:
            first, last = part
            headers["Content-Range"] = f"bytes {first}-{last}/{len(body)}"
            # a view, not a copy: 150 slow readers of a copy each held the model's 7 MB (+1.1 GB)
            part = memoryview(body)[first : last + 1]
            return Response(part, status_code=206, media_type=media, headers=headers)
    return Response(body, media_type=media, headers=headers)


_BUILT: dict[tuple[str, str, int], bytes] = {}
# One build at a time: the first visitors after a start or a promotion all asked for the model at once, and each
# halved it (30 at once took a worker from 252 to 957 MB). Re-entrant: model.json's build reads the model's size.
_BUILDING = threading.RLock()
HALVE_MAX_BYTES = 200 * 1024**2  # a model larger than this is sent as it is (no phone page runs one that big anyway)


def _once_per_version(loaded, name: str, make) -> bytes:
    """`make()` for a serving version, made once (the last two versions' kept: a promotion is a new version)."""
    key = (name, str(loaded.predictor.model_dir), loaded.version)
    made = _BUILT.get(key)
    if made is not None:
        return made
    with _BUILDING:
        made = _BUILT.get(key)
        if made is None:
            mine = [k for k in _BUILT if k[0] == name]
            for old in mine[: max(0, len(mine) - 1)]:
                _BUILT.pop(old, None)
            made = _BUILT[key] = make()
    return made


def _model_bytes(loaded) -> int:
    made = _model_file(loaded)
    return len(made) if made is not None else (loaded.predictor.model_dir / "model.onnx").stat().st_size


def _model_file(loaded) -> bytes | None:
    """The serving model as the page downloads it (offline/halve.py); as it is where it cannot be halved or the
    halved copy does not answer as it does (said in the log once a version); None for a model over HALVE_MAX_BYTES,
    sent from its file (halving takes about five times a model's size in memory)."""
    path = loaded.predictor.model_dir / "model.onnx"
    if path.stat().st_size > HALVE_MAX_BYTES:
        return None

    def make() -> bytes:
        model = path.read_bytes()
        try:
            half = halve.half_weights(model)
            if halve.answers_alike(half, loaded.predictor):
                return half
            log.warning("model.onnx of version %s sent to /app at full size: halved, its answers moved", loaded.version)
        except Exception as e:  # ONNX Runtime reads it (it serves): the page can too, at full size
            log.warning("model.onnx of version %s sent to /app at full size: %s", loaded.version, type(e).__name__)
        finally:
            give_back_after(5 * len(model))
        return model

    return _once_per_version(loaded, "model.onnx", make)


def _checks_file(loaded) -> bytes:
    return _once_per_version(loaded, "checks.bin", lambda: checks.build(loaded.predictor))


@router.get(APP_PATH + "/model/{version}/checks.bin")
async def checks_file(request: Request, version: int) -> Response:
    """The serving version's not-a-leaf and unlike-training checks, for the page to run (offline/checks.py)."""
    loaded = request.app.state.leafdoc.holder.current(wait=False)
    if version != loaded.version or not checks.available(loaded.predictor):
        return _with_headers(PlainTextResponse(f"version {version} has no checks to send", status_code=404))
    body = await run_in_threadpool(_checks_file, loaded)
    tag = await run_in_threadpool(_tag, loaded, "checks.bin", body)
    return _with_headers(_resumable(request, body, tag))


@router.get(APP_PATH + "/ort/{name}")
async def vendor_file(request: Request, name: str) -> Response:
    if name not in VENDOR_FILES:
        return _with_headers(PlainTextResponse("not found", status_code=404))
    path = VENDOR / name
    if not path.is_file():
        message = MISSING.format(files=", ".join(VENDOR_FILES), folder="src/leafdoc/offline/vendor/")
        return _with_headers(PlainTextResponse(message, status_code=404))
    return await _file(request, path, VENDOR_TYPES[path.suffix])


@router.get(APP_PATH + "/status.json")
async def status() -> Response:
    """Whether the page can run here: the ONNX Runtime Web files it lacks, if any."""
    missing = vendor_missing()
    note = MISSING.format(files=", ".join(VENDOR_FILES), folder="src/leafdoc/offline/vendor/") if missing else None
    return _with_headers(JSONResponse({"missing": missing, "note": note}))


@functools.cache
def build() -> str:
    """A hash of the page's files and of ONNX Runtime Web's (by size and time): written into sw.js, so that any change
    to them is a new service worker, which fetches them again."""
    digest = hashlib.sha256()
    for file, _ in sorted(PAGE_FILES.values()):
        digest.update((STATIC / file).read_bytes())
    for name in VENDOR_FILES:
        stat = (VENDOR / name).stat() if (VENDOR / name).is_file() else None
        digest.update(f"{name}:{stat and (stat.st_size, stat.st_mtime_ns)}".encode())
    return digest.hexdigest()[:16]


def not_found_page(request: Request) -> Response:
    """The 404 of an unknown address under /app: a small page with a link back to the page (words/not_found.py)."""
    body = not_found_html(request.headers.get("accept-language"), request.scope.get("root_path", ""), APP_PATH)
    response = _with_headers(Response(body, status_code=404, media_type="text/html; charset=utf-8"))
    response.headers["Vary"] = "Accept-Language"
    return response


@router.get(APP_PATH + "/{name}")
async def page_file(request: Request, name: str) -> Response:
    if name not in PAGE_FILES:
        return not_found_page(request)
    file, media = PAGE_FILES[name]
    if name == "sw.js":
        text = (STATIC / file).read_text().replace("__BUILD__", build())
        return _with_headers(Response(text, media_type=media))
    return await _file(request, STATIC / file, media)


@router.get("/favicon.ico", include_in_schema=False)
async def favicon(request: Request) -> Response:
    """The leaf the browser shows on the tab of /ui, /app and /docs (it asked for /favicon.ico on every page and got
    a 404 in its console)."""
    return await _file(request, STATIC / "icon-192.png", "image/png")


@router.get(APP_PATH + "/")
async def index(request: Request) -> Response:
    return await page_file(request, "")


@router.get(APP_PATH + "/{rest:path}")
async def unknown(request: Request, rest: str) -> Response:
    """Any deeper address under /app that no route above serves (/app/a/b): the same page as an unknown file."""
    return not_found_page(request)


def mount_offline(app: FastAPI) -> None:
    """Serve the offline page at APP_PATH."""
    app.include_router(router)
