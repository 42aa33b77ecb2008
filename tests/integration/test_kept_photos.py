"""Kept photos are bounded (LEAFDOC_KEEP_PHOTOS, docs/security.md "Kept photos"): one client address keeps at most
LEAFDOC_KEPT_PHOTOS_PER_CLIENT_HOUR photos an hour; past LEAFDOC_KEPT_PHOTOS_MAX_MB, counted in the catalog, no API
worker keeps any more (the log says so once) until an admin's review or retention makes room; every answer is still
given and recorded, and each photo not kept is counted where /metrics and /v1/monitoring show it. Retention
(LEAFDOC_KEPT_PHOTOS_DAYS) deletes old kept photos but never one a dataset holds or one answered again since.
Two apps on one catalog and store stand for two API workers (or machines), on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import contextlib
import logging
import re

import pytest
from fastapi.testclient import TestClient
from service_support import ADMIN, Clients, photo_bytes, service_settings
from sqlalchemy import select, update

from leafdoc.data import predictions
from leafdoc.data.catalog import PredictionRow
from leafdoc.imaging.photos import sha256_bytes
from leafdoc.service import predictionlog

MiB = 1024 * 1024


@pytest.fixture
def answering(tiny_model, tmp_path_factory):
    from service_support import model_copy

    return model_copy(tiny_model, tmp_path_factory.mktemp("m") / "answers", min_confidence=0.0)


@pytest.fixture
def workers(tmp_path, answering, database_url, monkeypatch):
    """make(**settings) -> two apps (API workers) on one data home and catalog. Their own retention runs only when a
    test calls it (it would otherwise run on its own a minute in, under a slow test's feet)."""
    monkeypatch.setattr(predictionlog, "FIRST_PRUNE_SECONDS", float("inf"))
    clients = Clients()

    def make(**kw):
        settings = service_settings(tmp_path / "home", answering, database_url=database_url, keep_photos=True, **kw)
        return clients(settings), clients(settings)

    yield make
    clients.close()


def from_address(worker: TestClient, address: str) -> TestClient:
    return TestClient(worker.app, client=(address, 4000))


def send(client: TestClient, photo: bytes) -> str:
    r = client.post("/v1/predict", files={"file": ("leaf.jpg", photo, "image/jpeg")})
    assert r.status_code == 200, r.text  # answered whether or not the photo is kept
    return r.json()["prediction_id"]


def written(*workers: TestClient) -> None:
    for w in workers:
        w.app.state.leafdoc.prediction_log.flush()


def kept_of(worker: TestClient, ids: list[str]) -> dict[str, str | None]:
    with worker.app.state.leafdoc.catalog.Session() as s:
        rows = s.execute(select(PredictionRow.id, PredictionRow.photo_sha256).where(PredictionRow.id.in_(ids)))
        return dict(rows.all())


def dropped_metric(worker: TestClient) -> float:
    text = worker.get("/metrics").text
    return float(re.search(r"^leafdoc_prediction_photos_dropped_total (\S+)$", text, re.M).group(1))


def test_a_client_cap_and_a_quota_shared_by_every_worker_bound_the_kept_photos(workers, caplog, monkeypatch):
    monkeypatch.setattr(predictionlog, "QUOTA_RECHECK_SECONDS", 0.0)
    photos = [photo_bytes(seed=i) for i in range(12)]
    quota = sum(len(p) for p in photos[:3] + photos[5:7]) - 1  # the 5 photos kept (below) reach it
    a, b = workers(kept_photos_per_client_hour=3, kept_photos_max_mb=quota / MiB)
    store = a.app.state.leafdoc.store

    # one client sends 5 photos: all answered, 3 kept (its hourly cap), the other 2 counted as not kept
    first = [send(from_address(a, "203.0.113.1"), p) for p in photos[:5]]
    written(a)
    kept = kept_of(a, first)
    assert len(kept) == 5 and [kept[i] for i in first[:3]] == [sha256_bytes(p) for p in photos[:3]]
    assert kept[first[3]] is None and kept[first[4]] is None
    assert not store.exists(sha256_bytes(photos[3])) and not store.exists(sha256_bytes(photos[4]))
    log_a = a.app.state.leafdoc.prediction_log
    assert (log_a.photos_over_client_cap, log_a.photos_dropped, dropped_metric(a)) == (2, 2, 2.0)

    # another client, on the other worker, is not capped by the first: its 2 photos are kept and reach the quota
    second = [send(from_address(b, "198.51.100.2"), p) for p in photos[5:7]]
    written(b)
    assert all(kept_of(b, second).values())
    assert predictions.kept_photo_bytes(a.app.state.leafdoc.catalog) == quota + 1

    # over the quota, neither worker keeps a photo of anyone, and says so once per worker
    caplog.set_level(logging.WARNING, logger="leafdoc.service.predictionlog")
    late = [send(from_address(w, "192.0.2.3"), p) for w, p in ((a, photos[7]), (b, photos[8]), (a, photos[9]))]
    written(a, b)
    late.append(send(from_address(a, "192.0.2.4"), photos[10]))  # refused at once: not even buffered
    written(a, b)
    assert not any(kept_of(a, late).values()) and len(kept_of(a, late)) == 4
    assert not any(store.exists(sha256_bytes(p)) for p in photos[7:11])
    assert log_a.photos_over_quota == 3 and b.app.state.leafdoc.prediction_log.photos_over_quota == 1
    assert dropped_metric(a) == 5.0
    assert a.get("/v1/monitoring", headers=ADMIN).json()["recording"]["photos_dropped"] == 5
    warnings = [r.getMessage() for r in caplog.records if "LEAFDOC_KEPT_PHOTOS_MAX_MB" in r.getMessage()]
    assert len(warnings) == 2 and all("not kept" in w and "LEAFDOC_KEPT_PHOTOS_DAYS" in w for w in warnings)

    # the review queue offers the kept photos only
    queue = a.get("/v1/review", params={"with_photo": True, "limit": 500}, headers=ADMIN).json()["items"]
    assert {i["prediction_id"] for i in queue} <= set(first[:3] + second)

    # an admin's label puts a kept photo into a dataset: it leaves the quota, and photos are kept again
    labels = a.get("/v1/models/1").json()["labels"]
    r = a.post(f"/v1/review/{first[0]}", json={"label": labels[0]}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert predictions.kept_photo_bytes(a.app.state.leafdoc.catalog) == quota + 1 - len(photos[0])
    written(a)  # each worker looks at the total again within QUOTA_RECHECK_SECONDS while over it (here: at once)
    again = send(from_address(a, "192.0.2.5"), photos[11])
    written(a)
    assert kept_of(a, [again])[again] == sha256_bytes(photos[11])


def test_retention_deletes_old_kept_photos_but_not_a_datasets_nor_one_answered_again(workers):
    a, _ = workers(kept_photos_days=2)
    state = a.app.state.leafdoc
    photos = [photo_bytes(seed=20 + i) for i in range(3)]
    ids = [send(a, p) for p in photos]
    written(a)
    labels = a.get("/v1/models/1").json()["labels"]
    assert a.post(f"/v1/review/{ids[0]}", json={"label": labels[0]}, headers=ADMIN).status_code == 200
    with state.catalog.Session.begin() as s:  # three days ago
        s.execute(update(PredictionRow).values(hour=PredictionRow.hour - 72))
    again = send(a, photos[2])  # answered again now: it stays with its last answer
    written(a)
    before = predictions.kept_photo_bytes(state.catalog)
    assert before == len(photos[1]) + len(photos[2])  # the reviewed one left the quota when it joined the dataset

    deleted, freed = state.prediction_log.forget_old_photos()
    assert (deleted, freed) == (1, len(photos[1]))
    assert predictions.kept_photo_bytes(state.catalog) == len(photos[2])
    assert not state.store.exists(sha256_bytes(photos[1]))
    assert state.store.exists(sha256_bytes(photos[0])) and state.store.exists(sha256_bytes(photos[2]))
    kept = kept_of(a, ids + [again])
    assert kept[ids[1]] is None and kept[ids[0]] and kept[ids[2]] and kept[again]
    assert a.get(f"/v1/review/{ids[0]}/photo", headers=ADMIN).content == photos[0]
    assert a.get(f"/v1/review/{ids[1]}/photo", headers=ADMIN).status_code == 409
    assert state.prediction_log.forget_old_photos() == (0, 0)  # nothing left to do


def test_retention_in_two_workers_at_once_counts_each_photo_off_once(workers):
    """Each API worker runs retention: two at once on the same photos must not count a photo's bytes off twice (the
    quota would then let more in than it says). Each worker's release is held just after it read the photo's bytes,
    until the other has read them too, or a second has passed (one waits on the other's lock: the fix)."""
    import threading

    from sqlalchemy import event

    a, b = workers(kept_photos_days=2)
    state = a.app.state.leafdoc
    photos = [photo_bytes(seed=40 + i) for i in range(4)]
    for p in photos:
        send(a, p)
    written(a)
    with state.catalog.Session.begin() as s:  # three days ago
        s.execute(update(PredictionRow).values(hour=PredictionRow.hour - 72))
    assert predictions.kept_photo_bytes(state.catalog) == sum(map(len, photos))
    both_read = threading.Barrier(2, timeout=1.0)

    def hold(conn, cursor, statement, *args):
        if "sum(predictions.photo_bytes)" in statement.replace('"', "").lower():
            with contextlib.suppress(threading.BrokenBarrierError):
                both_read.wait()

    engines = [w.app.state.leafdoc.catalog.engine for w in (a, b)]  # each worker its own, on one database
    for engine in engines:
        event.listen(engine, "after_cursor_execute", hold)
    results = []
    try:
        threads = [
            threading.Thread(target=lambda w=w: results.append(w.app.state.leafdoc.prediction_log.forget_old_photos()))
            for w in (a, b)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for engine in engines:
            event.remove(engine, "after_cursor_execute", hold)
    assert predictions.kept_photo_bytes(state.catalog) == 0
    assert sum(freed for _, freed in results) == sum(map(len, photos))
    assert sum(deleted for deleted, _ in results) == len(photos)


def test_retention_runs_by_itself_in_each_worker(workers, monkeypatch):
    """Without anyone calling it: each worker's log thread runs retention (first a while after it starts, then at
    every PRUNE_EVERY_SECONDS), so old kept photos go on a server nobody tends."""
    import time

    monkeypatch.setattr(predictionlog, "FIRST_PRUNE_SECONDS", 0.0)
    monkeypatch.setattr(predictionlog, "PRUNE_EVERY_SECONDS", 0.2)
    a, _ = workers(kept_photos_days=2)
    state = a.app.state.leafdoc
    photo = photo_bytes(seed=60)
    send(a, photo)
    written(a)
    assert state.store.exists(sha256_bytes(photo))
    with state.catalog.Session.begin() as s:  # three days ago
        s.execute(update(PredictionRow).values(hour=PredictionRow.hour - 72))
    deadline = time.monotonic() + 30
    while state.store.exists(sha256_bytes(photo)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not state.store.exists(sha256_bytes(photo))
    assert predictions.kept_photo_bytes(state.catalog) == 0
