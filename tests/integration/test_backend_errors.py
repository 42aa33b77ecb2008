"""What an operator sees when a backing service is misconfigured or away: a catalog URL that cannot be opened, a
bucket that does not exist, an S3 endpoint written without its scheme. Each is a plain message naming the setting to
check (the CLI: `error:` and `what to do:`, exit 1; the API: /readyz's checks and a 503), never a traceback, never a
password."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

import pytest
from tests.backends import S3_ENV, create_bucket, redis_server, s3_server
from tests.integration.service_support import ADMIN, Clients, class_zip, service_settings
from tests.live_server import free_port

from leafdoc.core.errors import ConfigError, ServerFault
from leafdoc.core.settings import Settings
from leafdoc.data.catalog import Catalog, make_engine
from leafdoc.data.store import open_store
from leafdoc.service.errors import SERVER_HINT
from leafdoc.service.jobs import create_job
from leafdoc.service.worker import Worker


def leafdoc(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "LEAFDOC_HOME": str(tmp_path / "home"), "COLUMNS": "400", **env}
    return subprocess.run(
        [sys.executable, "-m", "leafdoc.cli.main", *args], env=full, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("command", [["models", "list"], ["worker", "--burst"]])
def test_a_database_that_cannot_be_reached_is_named_without_its_password(tmp_path, command):
    port = free_port()  # nothing listens there
    proc = leafdoc(tmp_path, *command, LEAFDOC_DATABASE_URL=f"postgresql://leafdoc:s3cret-pw@127.0.0.1:{port}/leafdoc")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "Traceback" not in out and "s3cret-pw" not in out, out
    assert f"error: the catalog at postgresql://leafdoc:***@127.0.0.1:{port}/leafdoc cannot be opened" in out, out
    assert "Connection refused" in out, out
    assert "what to do: Check LEAFDOC_DATABASE_URL" in out, out


def test_a_database_url_that_is_not_one_is_named(tmp_path):
    proc = leafdoc(tmp_path, "models", "list", LEAFDOC_DATABASE_URL="leafdoc-db:5432")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in out, out
    assert "error: LEAFDOC_DATABASE_URL='leafdoc-db:5432' is not a database URL leafdoc can open" in out, out
    assert "postgresql://user:password@host:5432/database" in out, out


def test_postgres_urls_as_managed_services_write_them_are_accepted():
    engine = make_engine("postgres://leafdoc:pw@db.example:5432/leafdoc")  # Heroku, Render, Fly... hand these out
    assert engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
    assert engine.url.host == "db.example" and engine.url.database == "leafdoc"


def test_a_catalog_a_newer_leafdoc_upgraded_is_refused_with_what_to_do(tmp_path):
    """An upgrade rolled back (`kubectl rollout undo`, an older image): every replica and worker of the older
    version met Alembic's "Can't locate revision" as a traceback. Now one sentence, and the catalog is left as it is."""
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    Catalog(url).dispose()
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099_from_a_newer_leafdoc'")
    with pytest.raises(ConfigError) as caught:
        Catalog(url)
    assert caught.value.message.startswith(f"the catalog at {url} has schema revision '0099_from_a_newer_leafdoc'")
    assert "a newer leafdoc has upgraded it" in caught.value.message
    assert "Run the leafdoc version that upgraded the catalog" in caught.value.hint
    assert "restore the catalog's backup" in caught.value.hint
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0099_from_a_newer_leafdoc"
    engine.dispose()


@pytest.fixture(scope="module")
def s3_endpoint():
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_keys(monkeypatch):
    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)


def test_a_missing_bucket_is_a_server_fault_naming_the_settings(s3_endpoint, s3_keys):
    store = open_store("s3://no-such-bucket/store", s3_endpoint)
    for call in (lambda: store.put(b"a leaf"), lambda: store.get("0" * 64), lambda: store.write_named("ckpt", b"x")):
        with pytest.raises(ServerFault) as caught:
            call()
        assert "the store's bucket 'no-such-bucket' cannot be" in caught.value.message
        assert "NoSuchBucket" in caught.value.message
        assert "LEAFDOC_STORE_URL (s3://no-such-bucket/store: the bucket must exist" in caught.value.hint
        assert f"LEAFDOC_S3_ENDPOINT_URL ({s3_endpoint})" in caught.value.hint


def test_an_s3_endpoint_without_its_scheme_is_named(s3_keys):
    with pytest.raises(ConfigError) as caught:
        open_store("s3://leafdoc/store", "minio:9000")
    assert caught.value.message.startswith("LEAFDOC_S3_ENDPOINT_URL='minio:9000' is not an endpoint URL")
    assert "http://minio:9000" in caught.value.hint


def test_a_replica_whose_bucket_is_missing_says_so_in_readyz_and_answers_503(
    tmp_path, s3_endpoint, s3_keys, tiny_model, leaf_folder
):
    """One replica seeds the registry into the bucket; a second, on the same catalog but with LEAFDOC_STORE_URL naming
    a bucket that does not exist, cannot fetch the serving model: /readyz says why (it was a 500 `internal`), and
    an upload is a 503 server fault that names the bucket (it was a 500), without the server's addresses."""
    catalog = f"sqlite:///{tmp_path / 'shared-catalog.sqlite'}"
    good = create_bucket(s3_endpoint, "leafdoc-good")
    with Clients() as clients:
        first = clients(
            service_settings(
                tmp_path / "one",
                tiny_model,
                database_url=catalog,
                store_url=f"s3://{good}/store",
                s3_endpoint_url=s3_endpoint,
            )
        )
        assert first.get("/readyz").json()["model_version"] == 1
        second = clients(
            service_settings(
                tmp_path / "two",
                None,
                database_url=catalog,
                store_url="s3://leafdoc-typo/store",
                s3_endpoint_url=s3_endpoint,
            )
        )
        r = second.get("/readyz")
        assert r.status_code == 503, r.text
        model = r.json()["checks"]["model"]
        assert "model version 1 cannot be loaded: the store's bucket 'leafdoc-typo' cannot be read" in model, model
        assert "NoSuchBucket" in model and s3_endpoint not in r.text
        assert r.json()["checks"]["catalog"] == "ok"

        r = second.post(
            "/v1/uploads", files={"file": ("l.zip", class_zip(leaf_folder), "application/zip")}, headers=ADMIN
        )
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "server_fault" and r.json()["hint"] == SERVER_HINT
        assert "the store's bucket 'leafdoc-typo' cannot be written" in r.json()["message"]
        assert s3_endpoint not in r.text


def test_a_worker_started_with_its_queue_down_says_so_and_exits_in_burst_mode(tmp_path):
    port = free_port()
    proc = leafdoc(tmp_path, "worker", "--burst", LEAFDOC_QUEUE_URL=f"redis://:q-pw@127.0.0.1:{port}/0")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "Traceback" not in out and "q-pw" not in out, out
    assert f"error: the job queue at redis://:***@127.0.0.1:{port}/0 cannot be reached" in out, out
    assert "what to do: Check LEAFDOC_QUEUE_URL" in out, out


def test_a_worker_waits_out_a_queue_outage_and_then_runs_the_jobs_queued_meanwhile(tmp_path, caplog):
    """Redis restarting or failing over killed every worker with a traceback (a queue read in its loop was not
    guarded, where the catalog's was). Now the worker says once that the queue is away, waits, and when it answers
    queues again the jobs the API could not hand to it meanwhile (their rows say "waiting: could not reach the
    queue"), and runs them."""
    caplog.set_level(logging.INFO, logger="leafdoc.service.worker")
    port = free_port()
    settings = Settings(home=tmp_path / "home", queue_url=f"redis://127.0.0.1:{port}/0", worker_poll_seconds=0.1)
    settings.ensure_home()
    worker = Worker(settings)
    ran: list[str] = []
    worker.queue._runner = ran.append  # the task the queue carries reaches the worker; no training here
    job = create_job(
        worker.catalog, dataset="d", dataset_version=1, options={}, warm_start=False, parent_version=None, epochs=1
    )
    loop = threading.Thread(target=worker.run, daemon=True)
    loop.start()
    try:
        time.sleep(1.5)
        assert loop.is_alive(), "the worker stopped when its queue could not be reached"
        down = [r.getMessage() for r in caplog.records if "cannot be reached" in r.getMessage()]
        assert len(down) == 1, down  # said once, not every poll
        assert down[0].startswith(f"the job queue at redis://127.0.0.1:{port}/0 cannot be reached"), down
        assert "Check LEAFDOC_QUEUE_URL" in down[0] and down[0].endswith("Waiting for it.")
        with redis_server(tmp_path / "redis", port=port):
            deadline = time.monotonic() + 20
            while not ran and time.monotonic() < deadline:
                time.sleep(0.1)
            assert ran == [job.id]
            assert any(r.getMessage() == "the job queue answers again" for r in caplog.records)
    finally:
        worker.stop()
        loop.join(timeout=10)
        worker.close()


def metric_lines(client, name: str) -> list[str]:
    return [line for line in client.get("/metrics").text.splitlines() if line.split(" ")[0].split("{")[0] == name]


def test_metrics_say_the_queue_is_down_instead_of_that_it_is_empty(tmp_path, tiny_model):
    """While Redis could not be read, `leafdoc_queue_length` still gave a number, which a dashboard shows as how many
    jobs wait, with nothing to say that the queue itself was away. Now `leafdoc_queue_up` is 0 and the length is
    absent while the queue cannot be read, and both come back with it."""
    port = free_port()
    settings = service_settings(tmp_path / "home", tiny_model, queue_url=f"redis://127.0.0.1:{port}/0")
    with Clients() as clients:
        api = clients(settings)
        with redis_server(tmp_path / "redis", port=port):
            create_job(
                api.app.state.leafdoc.catalog,
                dataset="d",
                dataset_version=1,
                options={},
                warm_start=False,
                parent_version=None,
                epochs=1,
            )
            assert metric_lines(api, "leafdoc_queue_up") == ["leafdoc_queue_up 1.0"]
            assert metric_lines(api, "leafdoc_queue_length") == ["leafdoc_queue_length 1.0"]
        down = api.get("/metrics")
        assert down.status_code == 200
        assert metric_lines(api, "leafdoc_queue_up") == ["leafdoc_queue_up 0.0"]
        assert metric_lines(api, "leafdoc_queue_length") == []  # unknown: not a number a dashboard would show
        assert 'leafdoc_training_jobs{state="queued"} 1.0' in down.text  # the catalog's records still answer
        assert str(port) not in down.text and "127.0.0.1" not in down.text  # no host of the server in the answer
        with redis_server(tmp_path / "redis", port=port):
            assert metric_lines(api, "leafdoc_queue_up") == ["leafdoc_queue_up 1.0"]
            assert metric_lines(api, "leafdoc_queue_length") == ["leafdoc_queue_length 1.0"]


def test_a_redis_queue_that_never_answers_holds_a_call_5_seconds_not_forever(tmp_path):
    """redis-py before 8 waited forever on a Redis that accepts and never answers: each /readyz probe and /metrics
    scrape (which reads the queue for `leafdoc_queue_up`) would hang a thread. service/jobs.py sets 5 s; the URL's
    own options win."""
    from leafdoc.service.jobs import make_huey

    kwargs = make_huey(Settings(home=tmp_path, queue_url="redis://127.0.0.1:1/0")).storage.pool.connection_kwargs
    assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (5, 5)
    url = "redis://127.0.0.1:1/0?socket_timeout=2"
    assert make_huey(Settings(home=tmp_path, queue_url=url)).storage.pool.connection_kwargs["socket_timeout"] == 2


def test_a_redis_outage_leaves_predictions_and_readiness_and_takes_jobs_for_later(tmp_path, tiny_model, leaf_folder):
    """/readyz failed while Redis was away, and deploy/k8s/api.yaml routes by it, so a Redis outage took every API pod
    out of service though no prediction needs Redis. Now the pod stays ready (200) with `"status": "degraded"` and
    the queue `unreachable` (no host or port of Redis in it), predictions answer, and a training job is taken for
    later (202, its open record saying it waits for the queue: it said Redis's host and port); all recover with
    Redis."""
    from leafdoc.data.ingest import ingest

    port = free_port()
    settings = service_settings(tmp_path / "home", tiny_model, queue_url=f"redis://127.0.0.1:{port}/0")
    photo = sorted(p for p in leaf_folder.rglob("*") if p.is_file())[0].read_bytes()
    with Clients() as clients:
        api = clients(settings)
        ingest(leaf_folder, api.app.state.leafdoc.catalog, api.app.state.leafdoc.store, "tiny")
        with redis_server(tmp_path / "redis", port=port):
            assert api.get("/readyz").status_code == 200
        for _ in range(2):  # the second probe as the first: no state left behind by the first
            down = api.get("/readyz")
            assert down.status_code == 200, down.text
            body = down.json()
            assert body["ready"] is True and body["status"] == "degraded", body
            assert body["checks"] == {
                "catalog": "ok",
                "model": "ok",
                "queue": "unreachable (the server's log says why)",
            }
            assert str(port) not in down.text and "127.0.0.1" not in down.text
        r = api.post("/v1/predict", files={"file": ("leaf.jpg", photo)})
        assert r.status_code == 200 and r.json()["model_version"] == 1, r.text
        job = api.post("/v1/training-jobs", headers=ADMIN, json={"options": {"epochs": 1}})
        assert job.status_code == 202, job.text
        followed = api.get(f"/v1/training-jobs/{job.json()['id']}")  # open to whoever has the id
        assert followed.json()["state"] == "queued", followed.text
        assert followed.json()["progress"] == {
            "phase": "waiting: could not reach the job queue; a worker queues the job when it answers"
        }
        assert str(port) not in job.text + followed.text and "127.0.0.1" not in job.text + followed.text
        with redis_server(tmp_path / "redis", port=port):
            back = api.get("/readyz")
            assert back.status_code == 200 and back.json()["status"] == "ok", back.text
            assert api.post("/v1/predict", files={"file": ("leaf.jpg", photo)}).status_code == 200


def test_a_worker_queues_a_job_the_api_could_not_hand_to_the_queue_without_restarting(tmp_path):
    """A job the API took while it could not reach Redis (a partition between that replica and Redis, or an outage
    shorter than the worker's poll) waited in the catalog until a worker restarted: the worker put such jobs back in
    the queue only at start and after it saw the queue down itself. Now it looks every half lease."""
    with redis_server(tmp_path / "redis") as url:
        settings = Settings(home=tmp_path / "home", queue_url=url, worker_poll_seconds=0.1, job_lease_seconds=0.6)
        settings.ensure_home()
        worker = Worker(settings)
        ran: list[str] = []
        worker.queue._runner = ran.append
        loop = threading.Thread(target=worker.run, daemon=True)
        loop.start()
        try:
            time.sleep(0.5)  # the worker has started (and recovered what it found then)
            job = create_job(  # as the API leaves a job whose enqueue failed: queued in the catalog, not in Redis
                worker.catalog,
                dataset="d",
                dataset_version=1,
                options={},
                warm_start=False,
                parent_version=None,
                epochs=1,
            )
            deadline = time.monotonic() + 10
            while not ran and time.monotonic() < deadline:
                time.sleep(0.1)
            assert ran == [job.id]
        finally:
            worker.stop()
            loop.join(timeout=10)
            worker.close()


def test_a_queue_that_never_answers_is_unreachable_within_a_second_with_one_call_in_flight():
    """A blackholed Redis held /readyz 5 s (the queue's socket timeout), the readiness probe's whole timeout, and each
    caller of the public route a thread. Now a caller waits at most `wait`, and callers share the one call in flight."""
    from leafdoc.service.jobs import QueueCheck

    release, calls = threading.Event(), []

    def hangs():
        calls.append(1)
        release.wait(10)

    check = QueueCheck(hangs, wait=0.2)
    started = time.monotonic()
    answers = [check() for _ in range(5)]
    assert time.monotonic() - started < 2.0
    assert all(isinstance(a, TimeoutError) for a in answers) and len(calls) == 1
    release.set()
    deadline = time.monotonic() + 5
    while check() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert check() is None


def test_wrong_admin_tokens_are_counted_once_for_every_replica_sharing_redis(tmp_path, tiny_model, caplog):
    """The wrong-token limit lived in each API worker's memory even with Redis, so workers x replicas multiplied a
    guesser's tries. Now two replicas sharing Redis count one bucket per address; with Redis away each falls back to
    its own count (still a limit, and one that already holds the guesses it saw), and no answer names Redis."""
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    wrong, right = {"Authorization": "Bearer guess"}, ADMIN

    def replica(name):
        return clients(service_settings(tmp_path / name, tiny_model, queue_url=url, admin_failures_per_minute=4))

    with Clients() as clients:
        with redis_server(tmp_path / "redis", port=port):
            a, b = replica("a"), replica("b")
            assert [a.post("/v1/models/rollback", headers=wrong).status_code for _ in range(2)] == [401, 401]
            assert [b.post("/v1/models/rollback", headers=wrong).status_code for _ in range(2)] == [401, 401]
            refused = b.post("/v1/models/rollback", headers=wrong)
            assert refused.status_code == 429 and refused.json()["error"] == "rate_limited", refused.text
            assert int(refused.headers["Retry-After"]) >= 1
            assert a.get("/v1/training-jobs", headers=right).status_code == 429  # the address is held, right token too
        caplog.set_level(logging.WARNING, logger="leafdoc.service.ratelimit")
        # Redis away: replica b counted 2 wrong tokens itself, so it allows 2 more before its own 429.
        answers = [b.post("/v1/models/rollback", headers=wrong) for _ in range(3)]
        assert [r.status_code for r in answers] == [401, 401, 429], [r.text for r in answers]
        assert not any(str(port) in r.text or "127.0.0.1" in r.text for r in answers)
        assert sum("Redis cannot be reached" in r.getMessage() for r in caplog.records) == 1  # said once


def test_a_feedback_limit_in_a_redis_that_never_answers_does_not_hold_the_workers_other_requests(tmp_path, tiny_model):
    """The feedback route asked its limit (shared through Redis) on the event loop: a Redis that accepts and never
    answers held every request of that API worker for the limiter's 1 s timeout. Now the limit is asked in a thread
    (ratelimit.take_off_loop), and the worker's /healthz answers meanwhile."""
    import socket

    held: list[socket.socket] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def accept_and_say_nothing():
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept_and_say_nothing, daemon=True).start()
    url = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    try:
        with Clients() as clients:
            api = clients(service_settings(tmp_path / "home", tiny_model, queue_url=url))
            assert api.get("/healthz").status_code == 200
            feedback: list = []
            sent = threading.Thread(
                target=lambda: feedback.append(
                    api.post("/v1/predictions/AAAAAAAAAAAAAAAAAAAAAA/feedback", json={"correct": True})
                )
            )
            started = time.monotonic()
            sent.start()
            time.sleep(0.2)  # the feedback request is waiting on the silent Redis
            health = api.get("/healthz")
            answered = time.monotonic() - started
            sent.join(timeout=30)
            waited = time.monotonic() - started
            assert health.status_code == 200
            assert waited >= 0.9, waited  # the limiter did wait on Redis (1 s), so the check can fail
            assert answered < 0.7, answered  # ... but not with /healthz behind it
            assert feedback[0].status_code == 404, feedback[0].text  # no such answer; Redis's host not named
            assert "127.0.0.1" not in feedback[0].text
    finally:
        listener.close()
        for s in held:
            s.close()
