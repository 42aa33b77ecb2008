"""The same code at scale, by settings alone: a PostgreSQL catalog, a Redis queue and a store shared by
several API replicas and a worker, each with its own data home (its own machine). The servers are
started here in tmp folders from the binaries the system packages install (scripts/system-packages.sh);
a test that needs one is skipped, with the reason, only when it cannot be started."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from service_support import ADMIN, Clients, class_zip, leaf_photos, model_copy, service_settings, zip_of

from leafdoc.data import leases
from leafdoc.data.catalog import Catalog
from leafdoc.service.worker import Worker

ZIP = "application/zip"
PG_BIN = Path("/usr/lib/postgresql")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(PG_BIN.glob("*/bin/pg_ctl")) if PG_BIN.is_dir() else []
    return versions[-1].parent if versions else None


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]  # PostgreSQL refuses to run as root


@pytest.fixture(scope="module")
def postgres_url():
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (scripts/system-packages.sh installs it)")
    # Not under pytest's tmp folder: that one is private to root, and PostgreSQL runs as its own user.
    root = Path(tempfile.mkdtemp(prefix="leafdoc-pg-"))
    data = root / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
    port = free_port()
    init = subprocess.run(
        _as_postgres([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
        capture_output=True,
        text=True,
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"PostgreSQL could not be initialised: {init.stderr[-500:]}")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = subprocess.run(
        _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"]),
        capture_output=True,
        text=True,
    )
    if start.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"PostgreSQL could not be started: {start.stderr[-500:]}")
    try:
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE leafdoc")
        yield f"postgresql://postgres@127.0.0.1:{port}/leafdoc"
    finally:
        subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]))
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (scripts/system-packages.sh installs it)")
    port = free_port()
    root = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(port=port)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.skip("redis-server could not be started")
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def cluster(postgres_url, redis_url, tmp_path, tiny_model):
    """Settings for 'machines' that share the catalog, the queue and the store, each with its own home."""
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:  # a clean catalog for every test
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    shared = dict(
        database_url=postgres_url,
        queue_url=redis_url,
        store_url=str(tmp_path / "shared-store"),
    )
    clients = Clients()

    def machine(name: str):
        return service_settings(tmp_path / name, tiny_model, **shared)

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
    assert b.get("/v1/training-jobs").json()["queue_length"] == 1
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
