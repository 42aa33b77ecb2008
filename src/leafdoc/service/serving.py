"""The serving model of one API worker, swapped without a restart, and predictions made with it.

Each worker follows the registry's serving pointer: at most every `model_check_seconds` it reads
the pointer's stamp (one indexed row), and when it moved, loads the new version fully and then
swaps one reference. A request holds the `Loaded` it started with, so it finishes on that model
even if the pointer moves meanwhile: promotion never fails a request in flight.

The fast path (measured with `python -m loadtest.run`, see the README's "Load tests"): each ONNX Runtime
session runs on one intra-op thread, NumPy's BLAS on one thread per worker process, and the worker hands
the GIL around every millisecond. (Batching concurrent single requests into one ONNX call was measured
too, and gave nothing measurable on this model: it was taken out.)
"""

from __future__ import annotations

import io
import logging
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from leafdoc.advice import Knowledge, shipped_knowledge
from leafdoc.core.errors import ImageTooLarge, LeafdocError
from leafdoc.core.settings import Settings
from leafdoc.imaging.photos import jpeg_frame
from leafdoc.inference.answer import Answer, ExplainAnswer
from leafdoc.inference.predictor import Photo, Predictor
from leafdoc.model_versions import NoModel, Registry
from leafdoc.modelfolder import default_variant, read_card, variant_file
from leafdoc.runtime.memory import TRIM_AFTER_BYTES, malloc_trim
from leafdoc.service.schemas import BatchAnswer, BatchItem, ErrorAnswer

log = logging.getLogger(__name__)

# One intra-op thread per ONNX Runtime session. Parallelism comes from concurrent requests (threadpool) and
# from API workers; ONNX Runtime's default (a thread per core, spinning while it waits for work) made every
# call slower and burnt CPU that decoding and the other workers needed, most of all on a shared machine.
SESSION_THREADS = 1
# How often a thread holding the GIL is asked to let another run (Python's default: 5 ms). An API worker's
# event loop needs the GIL to read requests and write answers while threadpool threads decode and score
# photos; handing it around sooner let one worker answer more requests in less time.
SWITCH_INTERVAL_SECONDS = 0.001


def one_blas_thread() -> bool:
    """NumPy's BLAS on one thread in this process (an API worker); False if threadpoolctl is missing.

    The not-a-leaf score multiplies each photo's features by a 1280 x 1280 matrix. With OpenBLAS's default
    (a thread per core, busy-waiting for each other), concurrent requests made that product cost 5-10 times
    the CPU on 2 shared cores; requests and workers already run in parallel, so one thread each is enough.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        log.warning("threadpoolctl is not installed: NumPy's BLAS keeps a thread per core (slower under load)")
        return False
    threadpool_limits(1, user_api="blas")
    return True


@dataclass(frozen=True)
class Loaded:
    version: int
    stamp: int
    predictor: Predictor
    knowledge: Knowledge  # the advice its answers carry (leafdoc/advice)


class ModelHolder:
    def __init__(self, settings: Settings, registry: Registry, on_swap: Callable[[int], None] | None = None):
        self.settings = settings
        self.registry = registry
        self.on_swap = on_swap
        self._loaded: Loaded | None = None
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self._checking = False  # a check started by current(wait=False) is running in its own thread
        self.last_error: str | None = None
        # Read and checked once, at start: a broken knowledge file stops the server with its name and field.
        self.knowledge = shipped_knowledge(settings.advice_dir)
        # Decoding is where a photo costs memory (up to 3 bytes x max_image_pixels each, photos.open_photo):
        # at most this many at once per worker, whatever the threadpool's size.
        self.decoding = threading.BoundedSemaphore(settings.max_concurrent_decodes)
        self.trim = malloc_trim()
        one_blas_thread()  # process-wide, like the switch interval: this process serves requests
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)

    @property
    def loaded(self) -> Loaded | None:
        return self._loaded

    def current(self, wait: bool = True) -> Loaded:
        """The version to serve this request with. `wait=False` (on the event loop): a due check of the serving
        pointer (a database read, and maybe a new version loaded) runs in a thread of its own, and this request is
        served by the version loaded now."""
        if wait:
            self.maybe_refresh()
        elif self.refresh_due() and not self._checking:
            self._checking = True
            threading.Thread(target=self._check_in_background, name="leafdoc-model-check", daemon=True).start()
        loaded = self._loaded
        if loaded is None:
            raise NoModel(
                "no model is serving yet." + (f" Last error: {self.last_error}" if self.last_error else ""),
                hint="Set LEAFDOC_MODEL_DIR to a model folder before starting, or promote a registered "
                "version: `leafdoc models promote VERSION`, or POST /v1/models/{version}/promote.",
            )
        return loaded

    def refresh_due(self) -> bool:
        """Whether the next request reads the serving pointer (and may load a new version: seconds)."""
        return time.monotonic() - self._checked >= self.settings.model_check_seconds

    def maybe_refresh(self) -> None:
        if not self.refresh_due():
            return
        # The first load waits; later checks are skipped by requests that find another one checking.
        if not self._lock.acquire(blocking=self._loaded is None):
            return
        try:
            if time.monotonic() - self._checked >= self.settings.model_check_seconds:
                self._refresh_locked()
        finally:
            self._lock.release()

    def _check_in_background(self) -> None:
        try:
            self.maybe_refresh()
        finally:
            self._checking = False

    def refresh(self) -> Loaded | None:
        """Check the pointer now (after this worker promoted or rolled back, say)."""
        with self._lock:
            self._refresh_locked()
        return self._loaded

    def _refresh_locked(self) -> None:
        self._checked = time.monotonic()
        try:
            ptr = self.registry.serving()
        except Exception as exc:  # the catalog is unreachable: keep serving what we have
            self.last_error = f"cannot read the serving pointer ({exc})"
            log.warning(self.last_error)
            return
        current = self._loaded
        if ptr is None or (current is not None and current.stamp == ptr.stamp):
            return
        if current is not None and current.version == ptr.version:
            self._loaded = Loaded(ptr.version, ptr.stamp, current.predictor, self.knowledge)
            return
        try:
            folder = self.registry.local_dir(ptr.version)
            predictor = Predictor(
                folder,
                threads=SESSION_THREADS,
                max_pixels=self.settings.max_image_pixels,
                variant=self._variant(folder, ptr.version),
                any_cpu=self.settings.int8_any_cpu,
            )
        except LeafdocError as exc:
            self.last_error = f"model version {ptr.version} cannot be loaded: {exc.message}"
            log.error("%s%s", self.last_error, f" {exc.hint}" if exc.hint else "")  # the log is the operator's
            return
        loaded = Loaded(ptr.version, ptr.stamp, predictor, self.knowledge)
        warm_ms = warm_up(loaded)
        self._loaded = loaded  # the swap: one reference
        self.last_error = None
        log.info(
            "serving model version %s with its %s (first prediction, made before serving: %s)",
            ptr.version,
            predictor.model_file.name,
            "failed, see above" if warm_ms is None else f"{warm_ms:.0f} ms",
        )
        if self.on_swap:
            self.on_swap(ptr.version)

    def _variant(self, folder, version) -> str:
        """LEAFDOC_ONNX_VARIANT when the folder has that copy; a version without it (a fresh retraining, say)
        is served with model.onnx rather than not at all."""
        wanted = self.settings.onnx_variant
        if wanted is None:  # unset: int8 where it is safe (issue 57)
            try:
                chosen, why = default_variant(folder, read_card(folder))
            except (LeafdocError, OSError, ValueError) as exc:
                chosen, why = "fp32", exc.message if isinstance(exc, LeafdocError) else str(exc)
            log.info("model version %s: serving its %s (LEAFDOC_ONNX_VARIANT unset: %s)", version, chosen, why)
            return chosen
        try:
            variant_file(folder, read_card(folder), wanted, self.settings.int8_any_cpu)
        except (LeafdocError, OSError, ValueError) as exc:
            why = exc.message if isinstance(exc, LeafdocError) else str(exc)
            log.warning("model version %s: serving its model.onnx, not the %s copy (%s)", version, wanted, why)
            return "fp32"
        return wanted

    def load(self, loaded: Loaded, data: bytes, name: str) -> Photo:
        """A photo ready for `loaded`'s model, decoded within this worker's decoding slots. After a photo decoded
        big (or one that failed part-way), the freed pixels are given back to the system: glibc kept them, and a
        worker stayed 305 MB larger after four 16-bit PNGs and three batches of them (test_security_probes.py)."""
        check_size(data, name, self.settings)
        try:
            with self.decoding:
                photo = loaded.predictor.load(data, name)
        except Exception:
            cost = decode_cost(data)
            if cost is None or cost > self.settings.loop_decode_bytes:  # never on the event loop (`on_loop`)
                self.give_back_memory()
            raise
        if photo.frame is not None and photo.frame.decoded >= TRIM_AFTER_BYTES:
            self.give_back_memory()
        return photo

    def give_back_memory(self) -> None:
        if self.trim is not None:
            self.trim(0)  # in this request's thread (it lets go of the GIL), not on the event loop


def image_too_large(name: str, size: int, limit: int) -> ImageTooLarge:
    return ImageTooLarge(
        f"{name}: {size:,} bytes is over the limit of {limit:,} bytes per image.",
        hint="Send a smaller photo (about 1000 pixels across is plenty), or raise LEAFDOC_MAX_IMAGE_BYTES.",
    )


def check_size(data: bytes, name: str, settings: Settings) -> bytes:
    if len(data) > settings.max_image_bytes:
        raise image_too_large(name, len(data), settings.max_image_bytes)
    return data


def predict_many(
    loaded: Loaded,
    photos: list[Photo],
    names: list[str | None],
    top_k: int,
    crop: str | None = None,
    lang: str = "en",
) -> list[Answer]:
    """The answers as the API gives them (Predictor.answer, inference/answer.py): each with the version that made it
    and an id of its own. `crop`: a label prefix (Predictor.crop) the answers choose within; `lang`: their words'
    language (leafdoc/core/i18n.py)."""
    answers = loaded.predictor.answer(photos, names, top_k, loaded.knowledge, loaded.version, crop=crop, lang=lang)
    for a in answers:
        a.prediction_id = secrets.token_urlsafe(16)  # 128 random bits: feedback names it, nobody can guess one
    return answers


def warm_up_photo(size: int = 256) -> bytes:
    """A JPEG of a green leaf with brown spots on a pale sheet, made here: it goes down every step a real photo
    takes (decoding, framing, the light, the model and every check)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), (214, 210, 200))
    draw = ImageDraw.Draw(img)
    draw.ellipse((size * 0.2, size * 0.1, size * 0.8, size * 0.9), fill=(62, 128, 48))
    for x, y in ((0.4, 0.35), (0.55, 0.6), (0.45, 0.7)):
        draw.ellipse((size * x, size * y, size * (x + 0.06), size * (y + 0.06)), fill=(110, 80, 40))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=90)
    return out.getvalue()


def answer_made_up_photo(loaded: Loaded) -> Answer:
    """The whole answer a loaded model gives warm_up_photo(); raises what the model raises. Used before a model
    serves (warm_up), and before `leafdoc models add` or `promote` changes the registry (cli/models.py's
    check_answers)."""
    photo = loaded.predictor.load(warm_up_photo(), "made-up photo")
    return predict_many(loaded, [photo], [None], 1)[0]


def warm_up(loaded: Loaded) -> float | None:
    """Answer one made-up photo with a model just loaded, before it serves; the milliseconds it took, or None.

    A process's first prediction pays once for what is set up lazily (image plugins imported, OpenCV's and ONNX
    Runtime's first calls): 200-300 ms against 15-20 ms for the next ones, measured on 2026-11-27. Paid here, it
    is not a visitor's wait after every start, worker restart or promotion."""
    start = time.perf_counter()
    try:
        answer_made_up_photo(loaded)
    except Exception:  # a model that cannot answer fails its requests with their own errors; serve it anyway
        log.exception("model version %s: the first prediction, made before serving, failed", loaded.version)
        return None
    return (time.perf_counter() - start) * 1000


JPEG = b"\xff\xd8\xff"
PNG = b"\x89PNG\r\n\x1a\n"


BASELINE_SOF = (0xC0, 0xC1)  # a JPEG's frame marker: baseline or extended sequential, one pass over the data


def _baseline_jpeg(data: bytes, within: int = 256 * 1024) -> bool:
    """Whether a JPEG is sequential and in one scan: its data is then read once. A progressive JPEG is read once
    per scan, and a crafted one can have hundreds (imaging/photos.py MAX_JPEG_SCANS)."""
    frame = jpeg_frame(data, within)
    return frame is not None and frame.marker in BASELINE_SOF and frame.scans == 1


def decode_cost(data: bytes) -> int | None:
    """About how many bytes decoding this photo works through, from its first bytes alone: a sequential JPEG's
    own size (decoded at reduced scale, its every coefficient is still read once), a PNG's pixels x 3 (its header's
    width and height); None for other JPEGs (progressive: read once per scan), any other format, or a header too
    short to say."""
    if data.startswith(JPEG):
        return len(data) if _baseline_jpeg(data) else None
    if data.startswith(PNG) and len(data) >= 24 and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big") * int.from_bytes(data[20:24], "big") * 3
    return None


def on_loop(holder: ModelHolder, data: bytes) -> bool:
    """Whether this single photo is predicted on the worker's event loop (Settings.predict_on_loop): only when it
    is cheap to decode and a model is loaded, so the loop never waits for long (the serving pointer is then checked
    in a thread: ModelHolder.current(wait=False))."""
    settings = holder.settings
    if not settings.predict_on_loop or holder.loaded is None:
        return False
    cost = decode_cost(data)
    return cost is not None and cost <= settings.loop_decode_bytes


def predict_bytes(
    holder: ModelHolder,
    data: bytes,
    name: str | None,
    top_k: int,
    on_loop: bool = False,
    crop: str | None = None,
    lang: str = "en",
) -> Answer:
    """`crop`: the crop the grower named, as sent (UnknownCrop, 422, if the serving model has no such crop)."""
    loaded = holder.current(wait=not on_loop)
    among = loaded.predictor.crop(crop)
    photo = holder.load(loaded, data, name or "image")
    return predict_many(loaded, [photo], [name], top_k, among, lang)[0]


def predict_batch(
    holder: ModelHolder, items: list[tuple[str | None, bytes]], top_k: int, crop: str | None = None, lang: str = "en"
) -> BatchAnswer:
    """Every image gets its answer or its own error: one bad photo never fails the batch (an unknown `crop` does:
    it is the request's)."""
    loaded = holder.current()
    among = loaded.predictor.crop(crop)
    results = [BatchItem(file=name) for name, _ in items]
    arrays, slots = [], []
    for i, (name, data) in enumerate(items):
        label = name or f"image {i + 1}"
        if isinstance(data, LeafdocError):  # refused while it streamed in (routes/predict.py)
            results[i].error = ErrorAnswer(**data.to_dict())
            continue
        try:
            arrays.append(holder.load(loaded, data, label))
            slots.append(i)
        except LeafdocError as exc:
            results[i].error = ErrorAnswer(**exc.to_dict())
    answers = predict_many(loaded, arrays, [items[i][0] for i in slots], top_k, among, lang)
    for i, a in zip(slots, answers, strict=True):
        results[i].prediction = a
    return BatchAnswer(model_version=loaded.version, n=len(items), results=results)


def explain_bytes(
    holder: ModelHolder,
    data: bytes,
    name: str | None,
    top_k: int,
    label: str | None,
    crop: str | None = None,
    lang: str = "en",
) -> ExplainAnswer:
    from leafdoc.inference.cropfirst import crop_indices
    from leafdoc.inference.explain import DISPLAY_SIZE
    from leafdoc.inference.explain import explain_bytes as explain
    from leafdoc.inference.fieldcrops import crop_name, crop_of
    from leafdoc.service.errors import InvalidRequest

    loaded = holder.current()
    p = loaded.predictor
    among = p.crop(crop)
    index = None
    if label is not None:
        if label not in p.labels:
            raise InvalidRequest(
                f"label {label!r} is not one of the model's labels.",
                hint="GET /v1/models/{version} lists them; leave `label` out to explain the top one.",
            )
        index = p.labels.index(label)
        if among is not None and crop_of(label) != among:
            raise InvalidRequest(
                f"label {label!r} is not a condition of the crop given ({crop_name(among)}).",
                hint="Explain one of that crop's labels, or leave `label` or `crop` out.",
            )
    check_size(data, name or "image", holder.settings)
    with holder.decoding:
        ex = explain(p, data, name or "image", index, None if among is None else crop_indices(p.labels, among))
    one_row = {n: v[None] for n, v in ex.outputs.items()}
    [answer] = p.answer(
        [ex.photo], [name], top_k, loaded.knowledge, loaded.version, outputs=one_row, crop=among, lang=lang
    )
    return ExplainAnswer(
        **{**dict(answer), "prediction_id": secrets.token_urlsafe(16)},
        explained_label=p.labels[ex.class_index],
        heatmap=[[round(float(v), 5) for v in row] for row in ex.heatmap],
        heatmap_scale=round(ex.scale, 6),
        overlay_png=ex.overlay_base64(),
        overlay_size=max(p.size, DISPLAY_SIZE),
    )
