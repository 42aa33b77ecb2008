"""POST /v1/predict, /v1/predict/batch, /v1/explain: open to everyone."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from leafdoc.core.errors import LeafdocError, RequestTooLarge
from leafdoc.core.i18n import negotiate
from leafdoc.inference.answer import Answer, ExplainAnswer
from leafdoc.inference.baseline import ood_threshold
from leafdoc.service import serving
from leafdoc.service.deps import AppState, get_state
from leafdoc.service.errors import InvalidRequest, NotAPhotoBody
from leafdoc.service.routes import errors
from leafdoc.service.schemas import BatchAnswer

router = APIRouter(prefix="/v1", tags=["diagnosis"])

_binary = {"schema": {"type": "string", "format": "binary"}}


CROP_WORDS = (
    "The crop the leaf is of, if the grower knows it: as GET /v1/models lists it under `crops` (`tomato`, `corn`, "
    "`bell pepper`) or as the labels' prefix (`Corn_(maize)`), in any case. The answer then chooses among that "
    "crop's labels only (probabilities renormalised over them); an unknown crop is answered 422 with the crops the "
    "serving model knows. Empty or left out: every label."
)


def _image_body(field: str, many: bool) -> dict:
    prop = {"type": "array", "items": {"type": "string", "format": "binary"}} if many else _binary["schema"]
    crop = {"type": "string", "description": CROP_WORDS + " Also accepted as the query parameter `crop`."}
    form = {"schema": {"type": "object", "properties": {field: prop, "crop": crop}, "required": [field]}}
    content = {"multipart/form-data": form}
    if not many:
        content.update({"image/jpeg": _binary, "image/png": _binary, "application/octet-stream": _binary})
    return {"requestBody": {"required": True, "content": content}}


MAX_PARTS = 1_000  # parts of one multipart body, files and fields together
FORM_FIELDS = {b"crop"}  # the fields without a file that are read (each at most MAX_FIELD_BYTES); others are skipped
MAX_FIELD_BYTES = 200


class _ImageParts:
    """multipart/form-data parsed as it streams: each file part (any field name) is kept in memory up to the
    per-image limit; a larger one is dropped the moment it passes the limit and stands as its own error.
    Fields without a file name are skipped, not kept, except those of FORM_FIELDS (`crop`), kept in `fields`."""

    def __init__(self, boundary: bytes, limit: int):
        from python_multipart.multipart import MultipartParser

        self.limit = limit
        self.items: list[tuple[str | None, bytes | LeafdocError]] = []
        self.parts = 0
        self._header: list[bytes] = [b"", b""]
        self._headers: dict[bytes, bytes] = {}
        self._buf: bytearray | None = None
        self._size = 0
        self._name: str | None = None
        self._is_file = False
        self.refused: LeafdocError | None = None  # the first file refused as too large
        self.fields: dict[str, str] = {}
        self._field: bytes | None = None  # the FORM_FIELDS name of the part being read, if it is one
        callbacks = {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, a, b: self._header.__setitem__(0, self._header[0] + d[a:b]),
            "on_header_value": lambda d, a, b: self._header.__setitem__(1, self._header[1] + d[a:b]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }
        self.parser = MultipartParser(boundary, callbacks)

    def _begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise InvalidRequest(f"the form has more than {MAX_PARTS} parts.", hint="Send fewer files per request.")
        self._headers, self._buf, self._size, self._name, self._is_file = {}, None, 0, None, False
        self._field = None

    def _header_end(self) -> None:
        self._headers[self._header[0].strip().lower()] = self._header[1].strip()
        self._header = [b"", b""]

    def _headers_done(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        if b"filename" in params:
            self._is_file = True
            self._name = params[b"filename"].decode("utf-8", "replace")
            self._buf = bytearray()
        elif params.get(b"name") in FORM_FIELDS:
            self._field = params[b"name"]
            self._buf = bytearray()

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._field is not None:
            self._buf += data[start:end]
            if len(self._buf) > MAX_FIELD_BYTES:
                raise InvalidRequest(
                    f"the form field `{self._field.decode()}` is over {MAX_FIELD_BYTES} bytes.",
                    hint="Send a crop's name, e.g. `tomato`.",
                )
            return
        if not self._is_file:
            return
        self._size += end - start
        if self._buf is not None and self._size > self.limit:
            self._buf = None  # refused now: the rest of this part is counted, never kept
            self.refused = self.refused or serving.image_too_large(self._name or "image", self._size, self.limit)
        if self._buf is not None:
            self._buf += data[start:end]

    def _end(self) -> None:
        if self._field is not None:
            self.fields[self._field.decode()] = bytes(self._buf).decode("utf-8", "replace")
            self._buf, self._field = None, None
            return
        if not self._is_file:
            return
        if self._buf is None:
            self.items.append((self._name, serving.image_too_large(self._name or "image", self._size, self.limit)))
        else:
            self.items.append((self._name, bytes(self._buf)))
        self._buf = None


async def read_images(
    request: Request, limit: int, stop_at_too_large: bool, fields: dict[str, str] | None = None
) -> list[tuple[str | None, bytes | LeafdocError]]:
    """Files of a multipart form (any field name), or the raw body as one image; a file over `limit` bytes is
    refused while it streams in: at once (`stop_at_too_large`), or as that file's own error in the list. The form's
    FORM_FIELDS (`crop`) go into `fields`."""
    from python_multipart.multipart import parse_options_header

    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    name = request.query_params.get("filename")
    if ctype.endswith(b"json") or ctype.startswith(b"text/"):
        raise NotAPhotoBody(
            f"a body of type {ctype.decode('latin-1')[:60]} is not a photo.",
            hint="Send the photo as a multipart form (curl -F file=@leaf.jpg; a batch: -F files=@a.jpg -F "
            "files=@b.jpg) or as the raw body with its type (curl --data-binary @leaf.jpg -H 'Content-Type: "
            "image/jpeg').",
        )
    if ctype == b"multipart/form-data":
        if not params.get(b"boundary"):
            raise InvalidRequest("the multipart body has no boundary.", hint="Let your HTTP client build the form.")
        parts = _ImageParts(params[b"boundary"], limit)
        try:
            async for chunk in request.stream():
                parts.parser.write(chunk)
                if stop_at_too_large and parts.refused:
                    raise parts.refused
            parts.parser.finalize()
        except (LeafdocError, ClientDisconnect):
            raise
        except Exception as exc:
            raise InvalidRequest(
                f"the multipart body cannot be parsed ({exc}).",
                hint="Let your HTTP client build the form (curl -F file=@leaf.jpg), with short field and file names.",
            ) from None
        finally:
            # The parser's callbacks are bound to `parts`, which holds the parser: a cycle that kept every photo of
            # the request (a 192 MiB batch: +200 MB) until the garbage collector came round, often many requests later.
            parts.parser = None
        if fields is not None:
            fields.update(parts.fields)
        return parts.items
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise serving.image_too_large(name or "image", len(body), limit)
    return [(name, bytes(body))] if body else []


def _one(items: list[tuple[str | None, bytes]]) -> tuple[str | None, bytes]:
    if len(items) != 1:
        raise InvalidRequest(
            f"send exactly one image (got {len(items)}).",
            hint="Send one file part (named `file`, as the API documents; any name is taken), or the photo as the "
            "raw request body; for several images use /v1/predict/batch.",
        )
    return items[0]


def _top_k(state: AppState, top_k: int | None) -> int:
    return top_k or state.settings.top_k


def _record(state: AppState, answers: list[tuple[Answer, bytes]], request: Request) -> None:
    """Count the answers and queue their records (service/predictionlog.py: off the request path), with the client
    address the per-client limits see (a page visitor's own: ratelimit.page_visitor)."""
    loaded = state.holder.loaded
    threshold = ood_threshold(loaded.predictor.card) if loaded else None
    client = request.client.host if request.client else "unknown"
    for answer, data in answers:
        state.prediction_log.record(answer, threshold, data, client)
    state.metrics.record_answers([a for a, _ in answers], threshold)


TopK = Query(None, ge=1, le=100, description="How many labels to return (default: LEAFDOC_TOP_K).")
CropQuery = Query(None, max_length=MAX_FIELD_BYTES, description=CROP_WORDS + " Also accepted as the form field `crop`.")


LangQuery = Query(
    None,
    max_length=35,
    description="The language of the answer's words (`message`, `caution`, `advice`): en, es, fr or hi (a tag such as "
    "`es-MX` is read as its language; any other is answered 422). Without it, the best of the request's "
    "Accept-Language that leafdoc speaks, else en. Translated advice is marked in the answer's `unreviewed`.",
)


def request_language(query: str | None, request: Request, response: Response) -> str:
    """The answer's language (i18n.negotiate), said in Content-Language; answers vary with Accept-Language."""
    lang = negotiate(query, request.headers.get("accept-language"))
    response.headers["Content-Language"] = lang
    response.headers["Vary"] = "Accept-Language"
    return lang


def _crop(query: str | None, form: dict[str, str]) -> str | None:
    """The crop the request names, as the form field or the query parameter (both: they must agree)."""
    given = [c for c in (form.get("crop"), query) if c is not None and c.strip()]
    if len(given) == 2 and given[0].strip().lower() != given[1].strip().lower():
        raise InvalidRequest(
            f"the form field `crop` ({given[0]!r}) and the query parameter `crop` ({given[1]!r}) disagree.",
            hint="Send the crop once.",
        )
    return given[0] if given else None


@router.post(
    "/predict",
    response_model=Answer,
    summary="Diagnose one leaf photo",
    responses=errors(413, 415, 422, 503),
    openapi_extra=_image_body("file", many=False),
)
async def predict(
    request: Request,
    response: Response,
    top_k: int | None = TopK,
    crop: str | None = CropQuery,
    lang: str | None = LangQuery,
    state: AppState = Depends(get_state),
) -> Answer:
    lang = request_language(lang, request, response)
    form: dict[str, str] = {}
    name, data = _one(await read_images(request, state.settings.max_image_bytes, stop_at_too_large=True, fields=form))
    args = (state.holder, data, name, _top_k(state, top_k))
    crop = _crop(crop, form)
    if serving.on_loop(state.holder, data):  # no thread hand-off: docs/load-tests.md, "Predictions on the loop"
        result = serving.predict_bytes(*args, on_loop=True, crop=crop, lang=lang)
    else:
        result = await run_in_threadpool(serving.predict_bytes, *args, crop=crop, lang=lang)
    _record(state, [(result, data)], request)
    return result


@router.post(
    "/predict/batch",
    response_model=BatchAnswer,
    summary="Diagnose several photos in one request",
    responses=errors(413, 415, 422, 503),
    openapi_extra=_image_body("files", many=True),
)
async def predict_batch(
    request: Request,
    response: Response,
    top_k: int | None = TopK,
    crop: str | None = CropQuery,
    lang: str | None = LangQuery,
    state: AppState = Depends(get_state),
) -> BatchAnswer:
    lang = request_language(lang, request, response)
    form: dict[str, str] = {}
    items = await read_images(request, state.settings.max_image_bytes, stop_at_too_large=False, fields=form)
    limit = state.settings.max_batch_images
    if len(items) > limit:
        raise RequestTooLarge(
            f"{len(items)} images is over the limit of {limit} per batch.",
            hint="Split them into several requests, or raise LEAFDOC_MAX_BATCH_IMAGES.",
        )
    if not items:
        raise InvalidRequest("the batch holds no image.", hint="Send the photos as multipart files (field `files`).")
    crop = _crop(crop, form)
    result = await run_in_threadpool(serving.predict_batch, state.holder, items, _top_k(state, top_k), crop, lang)
    _record(state, [(r.prediction, items[i][1]) for i, r in enumerate(result.results) if r.prediction], request)
    return result


@router.post(
    "/explain",
    response_model=ExplainAnswer,
    summary="Diagnose one photo and show where the model looked (class activation heat map)",
    responses=errors(413, 415, 422, 503),
    openapi_extra=_image_body("file", many=False),
)
async def explain(
    request: Request,
    response: Response,
    top_k: int | None = TopK,
    label: str | None = Query(None, description="Explain this label instead of the top one."),
    crop: str | None = CropQuery,
    lang: str | None = LangQuery,
    state: AppState = Depends(get_state),
) -> ExplainAnswer:
    lang = request_language(lang, request, response)
    form: dict[str, str] = {}
    name, data = _one(await read_images(request, state.settings.max_image_bytes, stop_at_too_large=True, fields=form))
    crop = _crop(crop, form)
    result = await run_in_threadpool(
        serving.explain_bytes, state.holder, data, name, _top_k(state, top_k), label, crop, lang
    )
    _record(state, [(result, data)], request)
    return result
