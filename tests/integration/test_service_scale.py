"""The same code at scale, by settings alone: a PostgreSQL catalog, a Redis queue and a store shared by
several API replicas and a worker, each with its own data home (its own machine). The servers are
started in tmp folders from the binaries the system packages install (scripts/system-packages.sh), by
tests/backends.py; a test that needs one is skipped, with the reason, only when it cannot be started."""

from __future__ import annotations

import threading

import pytest
from service_support import ADMIN, Clients, class_zip, leaf_photos, model_copy, service_settings, zip_of
from tests.backends import flush_redis, redis_server, reset_postgres

from leafdoc.data import leases
from leafdoc.data.catalog import Catalog
from leafdoc.service.worker import Worker

ZIP = "application/zip"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def cluster(postgres_url, redis_url, tmp_path, tiny_model):
    """Settings for 'machines' that share the catalog, the queue and the store, each with its own home."""
    reset_postgres(postgres_url)  # a clean catalog and queue for every test
    flush_redis(redis_url)
    shared = dict(
        database_url=postgres_url,
        queue_url=redis_url,
        store_url=str(tmp_path / "shared-store"),
    )
    clients = Clients()

    def machine(name: str, **overrides):
        return service_settings(tmp_path / name, tiny_model, **shared, **overrides)

    yield machine, lambda name: clients(machine(name))
    clients.close()


def test_replicas_share_models_uploads_promotions_and_jobs(cluster, leaf_folder, tmp_path):
    machine, api = cluster
    a, b = api("replica-a"), api("replica-b")  # a seeds v1; b finds the registry seeded
    photo = leaf_photos(leaf_folder)[0].read_bytes()
    r = b.post("/v1/predict", files={"file": ("a.jpg", photo)})
    assert r.status_code == 200 and r.json()["model_version"] == 1  # rebuilt from the shared store
    assert [m["version"] for m in a.get("/v1/models").json()["models"]] == [1]

    up = a.post("/v1/uploads", headers=ADMIN, files={"file": ("leaves.zip", class_zip(leaf_folder), ZIP)})
    assert up.status_code == 201, up.text
    assert b.get(f"/v1/uploads/{up.json()['upload_id']}", headers=ADMIN).json() == up.json()
    assert b.get("/v1/datasets").json()["datasets"][0]["latest"] == 1

    registry = a.app.state.leafdoc.registry
    src = a.app.state.leafdoc.settings.model_dir
    v2, _ = registry.register(model_copy(src, tmp_path / "v2", min_confidence=0.99), source="t")
    assert b.post(f"/v1/models/{v2}/promote", headers=ADMIN).status_code == 200
    assert a.post("/v1/predict", files={"file": ("a.jpg", photo)}).json()["model_version"] == v2
    assert a.post("/v1/models/rollback", headers=ADMIN).json()["serving_version"] == 1

    one = zip_of({f"only/{p.name}": p.read_bytes() for p in leaf_photos(leaf_folder / "Apple___healthy")})
    assert a.post("/v1/uploads?dataset=one", headers=ADMIN, files={"file": ("o.zip", one, ZIP)}).status_code == 201
    job = a.post("/v1/training-jobs", headers=ADMIN, json={"dataset": "one"}).json()
    assert b.get("/v1/training-jobs", headers=ADMIN).json()["queue_length"] == 1
    assert a.app.state.leafdoc.queue.waiting_job_ids() == {job["id"]}  # in Redis
    Worker(machine("worker")).run(burst=True)  # a worker machine
    done = b.get(f"/v1/training-jobs/{job['id']}").json()
    assert done["state"] == "failed" and "at least 2" in done["error"]
    assert 'leafdoc_training_jobs{state="failed"} 1.0' in a.get("/metrics").text


def test_uploads_through_two_replicas_at_once_both_land_whole(cluster, leaf_folder):
    machine, api = cluster
    a, b = api("replica-a"), api("replica-b")
    classes = sorted(p.name for p in leaf_folder.iterdir())
    zips = [
        zip_of({f"{c}/{p.name}": p.read_bytes() for c in classes for p in leaf_photos(leaf_folder / c)[half::2]})
        for half in (0, 1)
    ]
    results = {}

    def send(client, i) -> None:
        results[i] = client.post("/v1/uploads", headers=ADMIN, files={"file": (f"p{i}.zip", zips[i], ZIP)})

    threads = [threading.Thread(target=send, args=(c, i)) for i, c in enumerate((a, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i].status_code for i in (0, 1)] == [201, 201]
    [ds] = a.get("/v1/datasets").json()["datasets"]
    assert ds["latest"] == 2 and ds["versions"][-1]["n_images"] == len(leaf_photos(leaf_folder))


def test_leases_on_postgresql(cluster):
    machine, _ = cluster
    s = machine("m")
    one, two = Catalog(s.catalog_url), Catalog(s.catalog_url)
    got = []
    threads = [
        threading.Thread(target=lambda c=c, h=h: got.append(leases.try_acquire(c, "x", h, 60)))
        for c, h in ((one, "a"), (two, "b"), (one, "c"), (two, "d"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == [False, False, False, True]


def test_feedback_rate_limit_is_shared_by_replicas_through_redis(cluster, leaf_folder):
    """With a Redis queue the feedback buckets are in Redis: two replicas give one address 3 a minute in all,
    not 3 each; feedback sent to replica b for an answer replica a gave a moment ago waits for its record."""
    machine, _ = cluster
    clients = Clients()
    try:
        a, b = (clients(machine(n, feedback_per_minute=3)) for n in ("limit-a", "limit-b"))
        pid = a.post("/v1/predict", files={"file": ("a.jpg", leaf_photos(leaf_folder)[0].read_bytes())}).json()[
            "prediction_id"
        ]
        said = [b.post(f"/v1/predictions/{pid}/feedback", json={"correct": True})]  # a's record: not written yet
        said += [c.post(f"/v1/predictions/{pid}/feedback", json={"correct": True}) for c in (a, b)]
        assert [r.status_code for r in said] == [200, 200, 200], [r.text for r in said]
        over = a.post(f"/v1/predictions/{pid}/feedback", json={"correct": False})
        assert over.status_code == 429 and over.json()["error"] == "rate_limited", over.text
        assert int(over.headers["Retry-After"]) >= 1
        assert b.post(f"/v1/predictions/{pid}/feedback", json={"correct": False}).status_code == 429
    finally:
        clients.close()
