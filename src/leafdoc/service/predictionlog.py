"""Recording answers off the request path.

A request only appends its record to a bounded buffer (a lock and a list append); a background thread per
API worker writes the buffer to the catalog in one batched INSERT every `prediction_flush_seconds`, and with
LEAFDOC_KEEP_PHOTOS puts each photo in the store first. When the buffer is full (the catalog is down or
slower than the traffic), new records are dropped and counted, never waited for: answering comes first.
Photos waiting to be stored are bounded in bytes too (`prediction_buffer_bytes`). A photo over KEEP_AS_SENT_BYTES is
kept as a 1024-px JPEG copy (imaging/upload_size.py, made in the writing thread): what the page and the desktop app
send is kept as it came, and a client cannot fill the store at 25 MiB a request (bytes appended to a small photo
made it store 24 MiB a request, 7 GB a minute a worker, in the third security audit).

Kept photos are bounded in total and per client (docs/security.md, "Kept photos"): the catalog counts the bytes they
added to the store (data/predictions.py, `kept_photo_bytes`, updated in the transaction that records them), and this
thread reads that one row before storing a batch, so every worker and replica stops keeping once the total is over
`kept_photos_max_mb` (each may add at most the batch it was writing). One client address keeps at most
`kept_photos_per_client_hour` photos an hour. A photo refused either way is counted as dropped; its answer is recorded.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from leafdoc.core.settings import Settings
from leafdoc.data import predictions
from leafdoc.data.catalog import Catalog, utcnow
from leafdoc.data.store import BlobStore
from leafdoc.imaging.photos import sha256_bytes
from leafdoc.imaging.upload_size import reencoded
from leafdoc.inference.answer import Answer
from leafdoc.inference.drift import score_bin
from leafdoc.service.ratelimit import RateLimited, kept_photo_limiter

log = logging.getLogger(__name__)

# A 1024-px phone photo as the page sends it is 0.2-0.6 MB; a larger one is kept as a 1024-px copy.
KEEP_AS_SENT_BYTES = 1536 * 1024
QUOTA_RECHECK_SECONDS = 5.0
PRUNE_EVERY_SECONDS = 3600.0
# Retention's first run, after the log's thread starts: not at once, so that workers starting together do not all
# prune at the same moment (a test patches it away to run retention itself).
FIRST_PRUNE_SECONDS = 60.0


@dataclass
class _Pending:
    rows: list[dict] = field(default_factory=list)
    photos: dict[str, bytes] = field(default_factory=dict)  # prediction id -> photo bytes (keep_photos)
    clients: dict[str, str] = field(default_factory=dict)  # prediction id -> the client address that sent it
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
        self.photos_dropped = 0  # every photo not kept: the buffer was full, over the quota, over a client's cap
        self.photos_over_quota = 0
        self.photos_over_client_cap = 0
        self.client_limit = kept_photo_limiter(settings) if settings.keep_photos else None
        self.quota_bytes = int(settings.kept_photos_max_mb * 1024 * 1024)
        self._quota_full = False  # as of the last flush: photos are refused at once, not buffered
        self._quota_read_at = 0.0

    # ---- the request path: cheap --------------------------------------------------------------------

    def record(
        self, answer: Answer, threshold: float | None, photo: bytes | None = None, client: str = "unknown"
    ) -> None:
        """Queue one answer's record (and its photo with keep_photos, sent by `client`); never blocks on the
        catalog."""
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
            "photo_bytes": None,
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
                if self._quota_full:
                    self._photo_dropped("quota")
                elif p.photo_bytes + len(photo) <= self.settings.prediction_buffer_bytes:
                    p.photos[row["id"]] = photo
                    p.clients[row["id"]] = client
                    p.photo_bytes += len(photo)
                else:
                    self._photo_dropped()
        self._ensure_thread()

    def _photo_dropped(self, why: str = "") -> None:
        """Count a photo not kept (under self._lock)."""
        self.photos_dropped += 1
        if why == "quota":
            self.photos_over_quota += 1
        elif why == "client":
            self.photos_over_client_cap += 1
        if self.on_photo_drop:
            self.on_photo_drop()

    # ---- off the request path -----------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="leafdoc-prediction-log", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        pruned_at = None
        started = time.monotonic()
        while not self._stop.wait(self.settings.prediction_flush_seconds):
            try:
                self.flush()
            except Exception:  # the catalog is down: the records stay buffered (bounded) until it is back
                log.exception("prediction records could not be written; will retry")
            now = time.monotonic()
            due = now - started >= FIRST_PRUNE_SECONDS if pruned_at is None else now - pruned_at >= PRUNE_EVERY_SECONDS
            if self.settings.keep_photos and self.settings.kept_photos_days and due:
                pruned_at = time.monotonic()
                try:
                    self.forget_old_photos()
                except Exception:  # tried again in an hour; the quota still holds meanwhile
                    log.exception("old kept photos could not be deleted")

    def forget_old_photos(self) -> tuple[int, int]:
        """Retention (LEAFDOC_KEPT_PHOTOS_DAYS): kept photos whose last answer is older go, unless a dataset holds
        them (data/predictions.py, forget_old_photos). (photos deleted, bytes released from the quota)."""
        before = utcnow() - timedelta(days=self.settings.kept_photos_days)
        deleted, freed = predictions.forget_old_photos(self.catalog, self.store, before)
        if deleted or freed:
            log.info(
                "kept photos: %d older than %d days deleted, %.1f MiB released from the quota",
                deleted,
                self.settings.kept_photos_days,
                freed / 2**20,
            )
        return deleted, freed

    def flush(self) -> int:
        """Write what is buffered now (also called by a feedback for an answer not yet written)."""
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, _Pending()
            if not batch.rows:
                if self._quota_full:
                    self._kept_bytes(batch)  # room made meanwhile (retention, a review, a raised quota)?
                return 0
            try:
                kept = self._kept_bytes(batch)
                for row in batch.rows:
                    data = batch.photos.get(row["id"])
                    if data is not None and not self._may_keep(kept, batch.clients.get(row["id"], "unknown")):
                        data = None
                    if data is not None and len(data) > KEEP_AS_SENT_BYTES:
                        data = reencoded(data, row["photo_name"] or "photo")  # None: it cannot be decoded
                    if data is not None:
                        row["photo_sha256"], row["photo_bytes"] = self._put(data)
                        kept += row["photo_bytes"]
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
                            self._pending.clients[row["id"]] = batch.clients.get(row["id"], "unknown")
                    self._pending.photo_bytes = sum(len(v) for v in self._pending.photos.values())
                raise
            return len(batch.rows)

    def _kept_bytes(self, batch: _Pending) -> int:
        """The kept photos' bytes as the catalog counts them, read when this batch has photos to keep, and every
        few seconds while over the quota (to notice room made by retention, reviews, or a raised quota)."""
        now = time.monotonic()
        if not batch.photos and not (self._quota_full and now - self._quota_read_at >= QUOTA_RECHECK_SECONDS):
            return 0
        self._quota_read_at = now
        kept = predictions.kept_photo_bytes(self.catalog)
        if self._quota_full and kept < self.quota_bytes:
            self._quota_full = False
            log.warning(
                "kept photos take %.1f MiB, under LEAFDOC_KEPT_PHOTOS_MAX_MB again: photos are kept again", kept / 2**20
            )
        return kept

    def _may_keep(self, kept: int, client: str) -> bool:
        """Whether a photo of `client` may be kept, with `kept` bytes kept so far; counted when not."""
        if kept >= self.quota_bytes:
            with self._lock:
                self._photo_dropped("quota")
                if not self._quota_full:
                    self._quota_full = True
                    log.warning(
                        "kept photos take %.1f MiB, the most LEAFDOC_KEPT_PHOTOS_MAX_MB (%g) allows: new photos are "
                        "answered but not kept. Review the kept ones (labelled ones join a dataset and leave the "
                        "quota), set LEAFDOC_KEPT_PHOTOS_DAYS to delete old ones, or raise LEAFDOC_KEPT_PHOTOS_MAX_MB.",
                        kept / 2**20,
                        self.settings.kept_photos_max_mb,
                    )
            return False
        try:
            self.client_limit.take(client, "kept photos")
        except RateLimited:
            with self._lock:
                self._photo_dropped("client")
            return False
        return True

    def _put(self, data: bytes) -> tuple[str, int]:
        """Store a photo: its id and the bytes it added (0 when the store held it already: blobs are by content)."""
        sha = sha256_bytes(data)
        if self.store.exists(sha):
            return sha, 0
        return self.store.put(data), len(data)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.flush()
        except Exception:
            log.exception("prediction records could not be written at shutdown")
