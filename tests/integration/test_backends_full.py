"""Every at-scale backend at once, every part its own process, as a cluster runs them: the catalog in
PostgreSQL, the job queue in Redis, the blob store in an S3-compatible bucket (moto's server on
loopback); two `leafdoc serve` replicas without a consumer, each with its own data home (its own
machine), and one `leafdoc worker` that consumes the queue. Settings reach every process only as
LEAFDOC_ environment variables, as in deploy/.

The flow a user goes through: upload a zip of labelled photos, retrain, the candidate is registered,
an admin promotes it, predictions come from the new version on both replicas, an admin rolls back."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from tests.backends import (
    S3_ENV,
    bucket_keys,
    create_bucket,
    new_database,
    postgres_server,
    redis_server,
    s3_server,
)
from tests.integration.service_support import class_zip, leaf_photos
from tests.live_server import ADMIN, answering_copy, start_server, wait_for

from leafdoc.core.settings import Settings
from leafdoc.data.catalog import Catalog, TrainingJobRow, utcnow
from leafdoc.imaging.photos import sha256_bytes
from leafdoc.service.jobs import JobQueue, create_job, get_job, update_job
from leafdoc.service.worker import Worker

ZIP = "application/zip"
TINY = {"epochs": 1, "batch_size": 8, "image_size": 32, "alpha": 0.35, "weights": "none"}


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    with (
        postgres_server() as database_url,
        redis_server(tmp_path_factory.mktemp("redis")) as queue_url,
        s3_server() as s3_endpoint,
    ):
        yield database_url, queue_url, s3_endpoint


def _post(base: str, path: str, **kw) -> httpx.Response:
    return httpx.post(f"{base}{path}", timeout=60, **kw)


def _get(base: str, path: str, **kw) -> httpx.Response:
    return httpx.get(f"{base}{path}", timeout=60, **kw)


def _predicted_version(base: str, photo: bytes) -> int:
    r = _post(base, "/v1/predict", files={"file": ("leaf.jpg", photo, "image/jpeg")})
    assert r.status_code == 200, r.text
    return r.json()["model_version"]


@contextlib.contextmanager
def worker_process(root: Path, env: dict[str, str]):
    """`leafdoc worker` as a separate machine runs it: its own data home, its output in worker.log."""
    root.mkdir(parents=True, exist_ok=True)
    log = root / "worker.log"
    exe = Path(sys.executable).with_name("leafdoc")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(exe), "worker"],
            env={**os.environ, **env, "LEAFDOC_HOME": str(root / "home")},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_upload_retrain_promote_predict_rollback_on_postgres_redis_s3(backends, tmp_path, job_model, leaf_folder):
    database_url, queue_url, s3_endpoint = backends
    bucket = create_bucket(s3_endpoint, "leafdoc-full")
    env = {
        **S3_ENV,
        "LEAFDOC_DATABASE_URL": database_url,
        "LEAFDOC_QUEUE_URL": queue_url,
        "LEAFDOC_STORE_URL": f"s3://{bucket}/leafdoc",
        "LEAFDOC_S3_ENDPOINT_URL": s3_endpoint,
        "LEAFDOC_RUN_CONSUMER": "false",  # the API replicas train nothing: the worker does
        # A rule no candidate can pass (accuracy >= serving + 2): promotion is the admin's act here.
        "LEAFDOC_PROMOTE_MARGIN": "-2",
    }
    seed_model = answering_copy(job_model, tmp_path / "seed-model")
    servers = []
    try:
        servers.append(start_server(tmp_path / "replica-a", seed_model, **env))
        servers.append(start_server(tmp_path / "replica-b", seed_model, **env))
        a, b = (s.base for s in servers)
        photo = leaf_photos(leaf_folder)[0].read_bytes()

        # One registry for both replicas: v1 seeded once, its files in the bucket, both serve it.
        models = _get(b, "/v1/models").json()
        assert models["serving_version"] == 1 and [m["version"] for m in models["models"]] == [1]
        keys = set(bucket_keys(s3_endpoint, bucket, "leafdoc/"))
        onnx_sha = sha256_bytes((seed_model / "model.onnx").read_bytes())
        assert f"leafdoc/{onnx_sha[:2]}/{onnx_sha}" in keys
        assert _predicted_version(a, photo) == _predicted_version(b, photo) == 1
        for base in (a, b):
            ready = _get(base, "/readyz").json()
            assert ready["ready"] is True and ready["checks"] == {"catalog": "ok", "model": "ok", "queue": "ok"}

        # Upload through replica A: every photo lands in the bucket, replica B sees the dataset.
        up = _post(a, "/v1/uploads", headers=ADMIN, files={"file": ("leaves.zip", class_zip(leaf_folder), ZIP)})
        assert up.status_code == 201, up.text
        assert up.json()["added"] == len(leaf_photos(leaf_folder))
        keys = set(bucket_keys(s3_endpoint, bucket, "leafdoc/"))
        for p in leaf_photos(leaf_folder):
            sha = sha256_bytes(p.read_bytes())
            assert f"leafdoc/{sha[:2]}/{sha}" in keys, p
        [ds] = _get(b, "/v1/datasets").json()["datasets"]
        assert ds["name"] == "tiny" and ds["latest"] == 1

        # Retrain through replica B: the job waits in Redis until a worker takes it.
        r = _post(b, "/v1/training-jobs", headers=ADMIN, json={"options": TINY})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        probe = Settings(home=tmp_path / "probe", queue_url=queue_url)
        assert JobQueue(probe).waiting_job_ids() == {job_id}
        assert _get(a, f"/v1/training-jobs/{job_id}").json()["state"] == "queued"

        with worker_process(tmp_path / "worker", env) as (worker, worker_log):
            job = wait_for(
                lambda: (j := _get(a, f"/v1/training-jobs/{job_id}").json())["state"] in ("succeeded", "failed") and j,
                600,
                "the worker to run the training job",
            )
            assert job["state"] == "succeeded", job["error"]
            assert JobQueue(probe).waiting_job_ids() == set()

            # The worker process ran it, not a replica: the catalog, its log and its data home say so.
            catalog = Catalog(database_url)
            with catalog.Session() as s:
                assert s.get(TrainingJobRow, job_id).worker == f"{socket.gethostname()}:{worker.pid}"
            catalog.dispose()
            text = worker_log.read_text()
            assert f"job {job_id}: claimed by worker {socket.gethostname()}:{worker.pid}" in text
            wait_for(lambda: f"job {job_id}: succeeded (candidate v2)" in worker_log.read_text(), 60, "the worker log")
            assert (tmp_path / "worker" / "home" / "jobs" / f"{job_id}.log").is_file()
            for server in servers:
                assert not (server.home / "jobs").exists()

            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=60) == 0, worker_log.read_text()[-3000:]

        # The candidate is registered (not promoted by the rule), its files in the bucket.
        assert job["epoch"] == job["epochs"] == 1 and job["candidate_version"] == 2
        p = job["promotion"]
        assert p["promote"] is False and p["promoted"] is False and "worse than serving v1" in p["reason"]
        v2 = _get(a, "/v1/models/2").json()
        assert v2["status"] == "rejected" and v2["job_id"] == job_id and v2["serving"] is False
        assert v2["card"]["warm_start"] == "all" and v2["parent_version"] == 1
        keys = set(bucket_keys(s3_endpoint, bucket, "leafdoc/"))
        assert {f"leafdoc/{sha[:2]}/{sha}" for sha in v2["files"].values()} <= keys
        assert _predicted_version(a, photo) == _predicted_version(b, photo) == 1

        # An admin promotes v2 on replica A: both replicas answer with v2, rebuilt from the bucket.
        r = _post(a, "/v1/models/2/promote", headers=ADMIN, json={"reason": "checked by hand"})
        assert r.status_code == 200, r.text
        assert r.json()["serving_version"] == 2 and r.json()["previous_version"] == 1
        assert _predicted_version(b, photo) == 2
        assert _predicted_version(a, photo) == 2
        for server in servers:  # each replica's copy is v2's network, byte for byte, as the bucket holds it
            onnx = (server.home / "models" / "2" / "model.onnx").read_bytes()
            assert sha256_bytes(onnx) == v2["files"]["model.onnx"] != onnx_sha
            assert _get(server.base, "/readyz").json()["model_version"] == 2

        # An admin rolls back on replica B: both replicas answer with v1 again.
        r = _post(b, "/v1/models/rollback", headers=ADMIN)
        assert r.status_code == 200, r.text
        assert r.json()["serving_version"] == 1
        assert _predicted_version(a, photo) == _predicted_version(b, photo) == 1
        history = [(e["action"], e["version"]) for e in _get(a, "/v1/models").json()["history"]]
        assert history == [("seed", 1), ("promote", 2), ("rollback", 1)]
        assert 'leafdoc_training_jobs{state="succeeded"} 1.0' in _get(b, "/metrics").text
    finally:
        for server in servers:
            server.stop()


def test_processes_starting_together_on_a_fresh_postgres_all_start(backends):
    """Replicas and workers of a new deployment start at once, each bringing the catalog schema to head."""
    url = new_database(backends[0], "fresh")
    code = "import sys; from leafdoc.data.catalog import Catalog; Catalog(sys.argv[1]).dispose()"
    procs = [subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], "\n".join(errors)[-3000:]
    catalog = Catalog(url)
    with catalog.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
    catalog.dispose()


def test_a_job_orphaned_by_a_worker_restart_ends_once_its_heartbeat_is_older_than_the_lease(backends, tmp_path):
    """A worker pod dies mid-job and its replacement starts at once (under another host name, or as pid 1
    again in the same container): the job's heartbeat is still fresh then, so the start-up check leaves it.
    The running worker must end that attempt once the heartbeat is older than the lease, not leave it running
    forever: here it was the job's last attempt, so the job fails."""
    database_url, queue_url, _ = backends
    settings = Settings(
        home=tmp_path / "worker",
        database_url=new_database(database_url, "orphan"),
        queue_url=queue_url.rsplit("/", 1)[0] + "/1",  # a Redis database of its own
        job_lease_seconds=3,
        worker_poll_seconds=0.2,
        job_max_attempts=1,
    )
    catalog = Catalog(settings.catalog_url)
    job = create_job(
        catalog, dataset="tiny", dataset_version=1, options={}, warm_start=False, parent_version=None, epochs=1
    )
    update_job(
        catalog,
        job.id,
        state="running",
        attempts=1,
        worker="leafdoc-worker-5d8f7-old:1",
        started=utcnow(),
        heartbeat=utcnow(),
    )
    worker = Worker(settings)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        assert get_job(catalog, job.id).state == "running"  # fresh heartbeat: left alone at start
        failed = wait_for(lambda: (j := get_job(catalog, job.id)).state == "failed" and j, 30, "the job to be failed")
        assert "no sign of life" in failed.error and "leafdoc-worker-5d8f7-old:1" in failed.error
        assert failed.error.startswith("gave up after attempt 1 of 1 (LEAFDOC_JOB_MAX_ATTEMPTS)")
    finally:
        worker.stop()
        thread.join(timeout=30)
        worker.close()
        catalog.dispose()


def test_cancelling_on_postgres_ends_a_job_once_and_blocks_its_success(backends):
    """Migration 0003 on PostgreSQL, and the conditional UPDATEs that make cancel, success and failure exclusive."""
    from leafdoc.core.errors import Conflict
    from leafdoc.service.jobs import JobCancelled, cancel, claim, fail, succeed

    catalog = Catalog(new_database(backends[0], "cancel"))
    common = dict(dataset="tiny", dataset_version=1, options={}, warm_start=False, parent_version=None, epochs=1)
    try:
        queued = create_job(catalog, **common).id
        assert cancel(catalog, queued).state == "cancelled"
        assert not claim(catalog, queued, "w:1")  # the worker skips it

        running = create_job(catalog, **common).id
        assert claim(catalog, running, "w:1")
        assert cancel(catalog, running).cancel_requested is not None
        with pytest.raises(JobCancelled), catalog.Session.begin() as s:
            succeed(s, running, candidate_version=7)
        assert fail(catalog, running, "the training process was killed (SIGTERM) before it finished.")
        job = get_job(catalog, running)
        assert job.state == "cancelled" and job.candidate_version is None and "cancelled by an admin" in job.error

        done = create_job(catalog, **common).id
        assert claim(catalog, done, "w:1")
        with catalog.Session.begin() as s:
            succeed(s, done, candidate_version=8)
        with pytest.raises(Conflict, match="already succeeded"):
            cancel(catalog, done)
        assert get_job(catalog, done).state == "succeeded" and get_job(catalog, done).cancel_requested is None
    finally:
        catalog.dispose()


def test_a_worker_killed_mid_job_on_another_machine_is_taken_over_from_the_checkpoint_in_the_bucket(
    backends, tmp_path, job_model, leaf_folder, monkeypatch
):
    """Two `leafdoc worker` processes with data homes of their own (two machines): the checkpoint reaches the
    second one only through the S3 bucket. Worker A is killed with SIGKILL in epoch 2 or later; B takes the
    job over once A's heartbeat is older than the lease and continues after the epoch A saved."""
    import re

    from leafdoc.data.ingest import ingest
    from leafdoc.data.store import open_store
    from leafdoc.model_versions import Registry
    from leafdoc.service import checkpoints
    from leafdoc.service.training import submit

    database_url, queue_url, s3_endpoint = backends
    for k, v in S3_ENV.items():
        monkeypatch.setenv(k, v)
    bucket = create_bucket(s3_endpoint, "leafdoc-takeover")
    env = {
        **S3_ENV,
        "LEAFDOC_DATABASE_URL": new_database(database_url, "takeover"),
        "LEAFDOC_QUEUE_URL": queue_url.rsplit("/", 1)[0] + "/2",  # a Redis database of its own
        "LEAFDOC_STORE_URL": f"s3://{bucket}/leafdoc",
        "LEAFDOC_S3_ENDPOINT_URL": s3_endpoint,
        "LEAFDOC_JOB_LEASE_SECONDS": "3",
        "LEAFDOC_WORKER_POLL_SECONDS": "0.2",
    }
    settings = Settings(
        home=tmp_path / "api",
        model_dir=answering_copy(job_model, tmp_path / "seed-model"),
        database_url=env["LEAFDOC_DATABASE_URL"],
        queue_url=env["LEAFDOC_QUEUE_URL"],
        store_url=env["LEAFDOC_STORE_URL"],
        s3_endpoint_url=s3_endpoint,
    )
    settings.ensure_home()
    catalog = Catalog(settings.catalog_url)
    store = open_store(settings.store_location, s3_endpoint)
    registry = Registry(settings, catalog, store)
    registry.seed()
    ingest(leaf_folder, catalog, store, "tiny")
    epochs = 12
    options = {**TINY, "epochs": epochs, "patience": epochs}
    job_id = submit(settings, catalog, registry, JobQueue(settings), dataset="tiny", options=options)["id"]
    saved_key = f"leafdoc/named/{checkpoints.name(job_id)}"

    def saved_epochs() -> list[int]:
        log = tmp_path / "a" / "home" / "jobs" / f"{job_id}.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return [int(n) for n in re.findall(r"checkpoint after epoch (\d+) saved to the store", text)]

    with worker_process(tmp_path / "a", env) as (a, _):
        running = wait_for(lambda: (j := get_job(catalog, job_id)).state == "running" and j.pid and j, 120, "A")
        with worker_process(tmp_path / "b", env) as (b, b_log):
            wait_for(lambda: max(saved_epochs(), default=0) >= 2, 300, "epoch 2 in A's log")
            assert saved_key in bucket_keys(s3_endpoint, bucket, "leafdoc/named/")
            a.kill()
            a.wait()
            wait_for(lambda: not os.path.exists(f"/proc/{running.pid}/stat") or _zombie(running.pid), 30, "A's child")
            saved = max(saved_epochs())
            job = wait_for(
                lambda: (j := get_job(catalog, job_id)).state not in ("queued", "running") and j, 600, "B to finish"
            )
            assert job.state == "succeeded", job.error
            assert job.worker == f"{socket.gethostname()}:{b.pid}" and job.attempts == 2
            wait_for(lambda: f"job {job_id}: succeeded (candidate v2)" in b_log.read_text(), 60, "B's log")

    # A's training process may upload one more checkpoint after the last log line we read (the line is written
    # after the upload, and the process can stop in between): B continues after the newest checkpoint in the bucket.
    assert saved <= job.resumed_epoch <= saved + 1 and saved >= 2
    saved = job.resumed_epoch
    assert job.epoch == epochs and job.candidate_version == 2
    history = job.metrics["history"]
    assert [h["epoch"] for h in history] == list(range(1, epochs + 1))
    assert [h["attempt"] for h in history] == [1] * saved + [2] * (epochs - saved)
    b_job_log = (tmp_path / "b" / "home" / "jobs" / f"{job_id}.log").read_text()  # B's own data home
    assert "attempt 2 of 3: found its checkpoint in the store" in b_job_log
    assert f"attempt 2 of 3: continuing after epoch {saved}" in b_job_log
    assert saved_key not in bucket_keys(s3_endpoint, bucket, "leafdoc/named/")  # deleted when the job ended
    assert "no longer running here" not in b_log.read_text()  # a job that ended is not taken for a lost one
    catalog.dispose()


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
