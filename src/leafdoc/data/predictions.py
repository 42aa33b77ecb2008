"""The catalog's record of answers (PredictionRow): written in batches, feedback and review set on one row,
the review queue, and the hourly/daily figures monitoring reads — aggregated in SQL, so a window of
millions of answers costs a few grouped queries, never a row each in memory.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy import case, func, insert, select, update

from leafdoc.core.errors import NotFound
from leafdoc.data.catalog import Catalog, CounterRow, DatasetItemRow, PredictionRow, utcnow

PERIOD_HOURS = {"hour": 1, "day": 24}


def hour_of(when: datetime) -> int:
    return int(when.replace(tzinfo=UTC).timestamp() // 3600)


KEPT_BYTES = "kept_photo_bytes"  # the counters row: bytes kept photos added to the store (migration 0007)


def insert_many(catalog: Catalog, rows: list[dict]) -> None:
    """The rows, and the bytes their kept photos added to the store counted in the same transaction."""
    if rows:
        added = sum(r.get("photo_bytes") or 0 for r in rows)
        with catalog.Session.begin() as s:
            s.execute(insert(PredictionRow), rows)
            if added:
                _count(s, added)


def _count(s, n: int) -> None:
    s.execute(update(CounterRow).where(CounterRow.name == KEPT_BYTES).values(value=CounterRow.value + n))


def kept_photo_bytes(catalog: Catalog) -> int:
    """Bytes kept photos take in the store, as every API worker and replica counted them: one row read."""
    with catalog.Session() as s:
        return int(s.scalar(select(CounterRow.value).where(CounterRow.name == KEPT_BYTES)) or 0)


def _release(s, sha: str, *where) -> int:
    """Take the rows (`where`) of photo `sha` out of the kept bytes; what they counted. In a transaction that took
    the counter's lock first (_lock_counter)."""
    P = PredictionRow
    n = int(s.scalar(select(func.coalesce(func.sum(P.photo_bytes), 0)).where(P.photo_sha256 == sha, *where)))
    s.execute(update(P).where(P.photo_sha256 == sha, P.photo_bytes.is_not(None), *where).values(photo_bytes=0))
    if n:
        _count(s, -n)
    return n


def _lock_counter(s) -> None:
    """The kept bytes' counter row, write-locked for the transaction (an update of +0): a second release of the same
    photo (retention in two workers at once) waits for this one, then reads the bytes it left, 0, and does not count
    them off again."""
    _count(s, 0)


def in_a_dataset(s, sha: str) -> bool:
    return s.scalar(select(DatasetItemRow.sha256).where(DatasetItemRow.sha256 == sha).limit(1)) is not None


def release_to_dataset(catalog: Catalog, sha: str) -> int:
    """A kept photo an admin's review added to a dataset is the dataset's now (blobs are by content: the same one):
    it no longer counts against the kept photos' quota. The bytes released (0 if no dataset holds it)."""
    with catalog.Session.begin() as s:
        _lock_counter(s)
        return _release(s, sha) if in_a_dataset(s, sha) else 0


def forget_old_photos(catalog: Catalog, store, before: datetime, batch: int = 500) -> tuple[int, int]:
    """Delete the kept photos whose last answer came before `before` (retention), except those a dataset holds
    (their bytes leave the quota instead): (photos deleted, bytes released). The rows stay, without a photo."""
    P = PredictionRow
    cutoff = hour_of(before)
    deleted = freed = 0
    last = ""
    while True:
        with catalog.Session() as s:
            shas = s.scalars(
                select(P.photo_sha256)
                .where(P.photo_sha256.is_not(None), P.hour < cutoff, P.photo_sha256 > last)
                .group_by(P.photo_sha256)
                .order_by(P.photo_sha256)
                .limit(batch)
            ).all()
        if not shas:
            return deleted, freed
        last = shas[-1]
        for sha in shas:
            with catalog.Session.begin() as s:
                _lock_counter(s)
                if s.scalar(select(P.id).where(P.photo_sha256 == sha).limit(1)) is None:
                    continue  # another worker's retention took it while this one waited for the lock
                if in_a_dataset(s, sha):
                    freed += _release(s, sha)
                    continue
                if s.scalar(select(P.id).where(P.photo_sha256 == sha, P.hour >= cutoff).limit(1)) is not None:
                    continue  # answered again since: it goes with its last answer
                freed += _release(s, sha)
                s.execute(update(P).where(P.photo_sha256 == sha).values(photo_sha256=None, photo_bytes=None))
            with catalog.Session() as s:  # a worker may have recorded it again meanwhile: then it stays
                if s.scalar(select(P.id).where(P.photo_sha256 == sha).limit(1)) is not None or in_a_dataset(s, sha):
                    continue
            store.delete(sha)
            deleted += 1


def _not_found(prediction_id: str) -> NotFound:
    return NotFound(
        f"prediction {prediction_id[:64]!r} does not exist.",
        hint="Use the prediction_id of an answer of this server; answers are recorded within a second.",
    )


def get(catalog: Catalog, prediction_id: str) -> PredictionRow:
    return catalog.row(PredictionRow, prediction_id, _not_found(prediction_id))


def set_feedback(catalog: Catalog, prediction_id: str, correct: bool, label: str | None) -> PredictionRow:
    """A user's feedback; a second one replaces the first."""
    with catalog.Session.begin() as s:
        row = s.get(PredictionRow, prediction_id)
        if row is None:
            raise _not_found(prediction_id)
        row.feedback_correct, row.feedback_label, row.feedback_at = correct, label, utcnow()
    return row


def set_review(catalog: Catalog, prediction_id: str, label: str | None, upload_id: str | None) -> PredictionRow:
    """An admin's review: a label (the photo joined a dataset with `upload_id`), or none (dismissed)."""
    with catalog.Session.begin() as s:
        row = s.get(PredictionRow, prediction_id)
        if row is None:
            raise _not_found(prediction_id)
        row.reviewed_label, row.reviewed_at, row.review_upload_id = label, utcnow(), upload_id
    return row


def review_queue(catalog: Catalog, limit: int = 50, with_photo_only: bool = False) -> list[PredictionRow]:
    """Answers not yet reviewed that have feedback or abstained, the most informative first: a user said it
    was wrong, then abstentions and other feedback, each by rising confidence."""
    P = PredictionRow
    rank = case((P.feedback_correct.is_(False), 0), (P.abstained.is_(True), 1), else_=2)
    q = select(P).where(P.reviewed_at.is_(None), (P.feedback_correct.is_not(None)) | P.abstained.is_(True))
    if with_photo_only:
        q = q.where(P.photo_sha256.is_not(None))
    with catalog.Session() as s:
        return list(s.scalars(q.order_by(rank, P.confidence, P.created.desc()).limit(limit)))


def _bucket(period: str):
    width = PERIOD_HOURS[period]
    return PredictionRow.hour if width == 1 else PredictionRow.hour // width


def _start(bucket: int, period: str) -> str:
    hours = int(bucket) * PERIOD_HOURS[period]
    return datetime.fromtimestamp(hours * 3600, UTC).strftime("%Y-%m-%dT%H:%MZ")


def aggregates(catalog: Catalog, period: str, since: datetime, model_version: int | None = None) -> list[dict]:
    """Per hour or day since `since`: answers, abstentions by reason, labels given, not-a-leaf score bins,
    feedback given and agreed with. Oldest first."""
    P = PredictionRow
    b = _bucket(period).label("b")
    where = [P.hour >= hour_of(since)]
    if model_version is not None:
        where.append(P.model_version == model_version)
    buckets: dict[int, dict] = defaultdict(
        lambda: {"answers": 0, "abstentions": {}, "labels": {}, "score_bins": {}, "feedback": 0, "agreed": 0}
    )
    with catalog.Session() as s:
        for bucket, abstained, reason, label, n in s.execute(
            select(b, P.abstained, P.reason, P.label, func.count())
            .where(*where)
            .group_by(b, P.abstained, P.reason, P.label)
        ):
            d = buckets[int(bucket)]
            d["answers"] += n
            if abstained:
                d["abstentions"][reason or "unknown"] = d["abstentions"].get(reason or "unknown", 0) + n
            elif label is not None:
                d["labels"][label] = d["labels"].get(label, 0) + n
        for bucket, sbin, n in s.execute(
            select(b, P.score_bin, func.count()).where(*where, P.score_bin.is_not(None)).group_by(b, P.score_bin)
        ):
            buckets[int(bucket)]["score_bins"][int(sbin)] = n
        for bucket, correct, n in s.execute(
            select(b, P.feedback_correct, func.count())
            .where(*where, P.feedback_correct.is_not(None))
            .group_by(b, P.feedback_correct)
        ):
            d = buckets[int(bucket)]
            d["feedback"] += n
            d["agreed"] += n if correct else 0
    return [{"start": _start(k, period), "bucket": k, **buckets[k]} for k in sorted(buckets)]


def merged(windows: list[dict]) -> dict:
    """Several buckets as one window (drift is checked over the whole of them)."""
    out = {"answers": 0, "abstentions": {}, "labels": {}, "score_bins": {}, "feedback": 0, "agreed": 0}
    for w in windows:
        out["answers"] += w["answers"]
        out["feedback"] += w["feedback"]
        out["agreed"] += w["agreed"]
        for key in ("abstentions", "labels", "score_bins"):
            for k, n in w[key].items():
                out[key][k] = out[key].get(k, 0) + n
    return out
