"""Recording answers off the request path.

A request only appends its record to a bounded buffer (a lock and a list append); a background thread per
API worker writes the buffer to the catalog in one batched INSERT every `prediction_flush_seconds`, and with
LEAFDOC_KEEP_PHOTOS puts each photo in the store first. When the buffer is full (the catalog is down or
slower than the traffic), new records are dropped and counted, never waited for: answering comes first.
Photos waiting to be stored are bounded in bytes too (`prediction_buffer_bytes`). A photo over KEEP_AS_SENT_BYTES is
kept as a 1024-px JPEG copy (imaging/upload_size.py, made in the writing thread): what the page and the desktop app
send is kept as it came, and a client cannot fill the store at 25 MiB a request (bytes appended to a small photo
made it store 24 MiB a request, 7 GB a minute a worker, in the third security audit).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from leafdoc.core.settings import Settings
from leafdoc.data import predictions
from leafdoc.data.catalog import Catalog, utcnow
from leafdoc.data.store import BlobStore
from leafdoc.imaging.upload_size import reencoded
from leafdoc.inference.answer import Answer
from leafdoc.inference.drift import score_bin

log = logging.getLogger(__name__)

# A 1024-px phone photo as the page sends it is 0.2-0.6 MB; a larger one is kept as a 1024-px copy.
KEEP_AS_SENT_BYTES = 1536 * 1024


@dataclass
class _Pending:
    rows: list[dict] = field(default_factory=list)
    photos: dict[str, bytes] = field(default_factory=dict)  # prediction id -> photo bytes (keep_photos)
    photo_bytes: int = 0


class PredictionLog:
    def __init__(self, settings: Settings, catalog: Catalog, store: BlobStore, on_drop=None, on_photo_drop=None):
        self.settings, self.catalog, self.store = settings, catalog, store
        self.on_drop, self.on_photo_drop = on_drop, on_photo_drop
        self._pending = _Pending()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.photos_dropped = 0

    # ---- the request path: cheap --------------------------------------------------------------------

    def record(self, answer: Answer, threshold: float | None, photo: bytes | None = None) -> None:
        """Queue one answer's record (and its photo with keep_photos); never blocks on the catalog."""
        now = utcnow()
        row = {
            "id": answer.prediction_id,
            "created": now,
            "hour": predictions.hour_of(now),
            "model_version": answer.model_version,
            "label": answer.top_k[0].label if answer.top_k else answer.label,
            "confidence": float(answer.confidence),
            "abstained": answer.abstained,
            "reason": answer.reason,
            "ood_score": answer.ood_score,
            "score_bin": score_bin(answer.ood_score, threshold),
            "photo_sha256": None,
            "photo_name": (answer.file or None) and answer.file[:200],
            "crop_given": (answer.crop_given or None) and answer.crop_given[:64],
        }
        keep = photo is not None and self.settings.keep_photos
        with self._lock:
            p = self._pending
            if len(p.rows) >= self.settings.prediction_buffer:
                self.dropped += 1
                if self.on_drop:
                    self.on_drop()
                return
            p.rows.append(row)
            if keep:
                if p.photo_bytes + len(photo) <= self.settings.prediction_buffer_bytes:
                    p.photos[row["id"]] = photo
                    p.photo_bytes += len(photo)
                else:
                    self.photos_dropped += 1
                    if self.on_photo_drop:
                        self.on_photo_drop()
        self._ensure_thread()

    # ---- off the request path -----------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="leafdoc-prediction-log", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.prediction_flush_seconds):
            try:
                self.flush()
            except Exception:  # the catalog is down: the records stay buffered (bounded) until it is back
                log.exception("prediction records could not be written; will retry")

    def flush(self) -> int:
        """Write what is buffered now (also called by a feedback for an answer not yet written)."""
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, _Pending()
            if not batch.rows:
                return 0
            try:
                for row in batch.rows:
                    data = batch.photos.get(row["id"])
                    if data is not None and len(data) > KEEP_AS_SENT_BYTES:
                        data = reencoded(data, row["photo_name"] or "photo")  # None: it cannot be decoded
                    if data is not None:
                        row["photo_sha256"] = self.store.put(data)
                predictions.insert_many(self.catalog, batch.rows)
            except Exception:
                with self._lock:  # put them back in front, within the bound
                    room = max(self.settings.prediction_buffer - len(self._pending.rows), 0)
                    kept = batch.rows[:room]
                    self._pending.rows[:0] = kept
                    self.dropped += len(batch.rows) - len(kept)
                    for row in kept:
                        if row["id"] in batch.photos and row["photo_sha256"] is None:
                            self._pending.photos[row["id"]] = batch.photos[row["id"]]
                    self._pending.photo_bytes = sum(len(v) for v in self._pending.photos.values())
                raise
            return len(batch.rows)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.flush()
        except Exception:
            log.exception("prediction records could not be written at shutdown")
