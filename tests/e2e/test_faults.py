"""The fault suite (issue 59, docs/faults.md): what a user sees when a process dies or the server's disks fail.

Real processes killed with SIGKILL (`leafdoc serve --workers 2`'s API workers, a `leafdoc worker`), real filesystems
that refuse writes (a read-only bind mount, a full tmpfs: root ignores chmod), two writers on one catalog. Each test
counts what a user would notice: requests lost, versions whole, a retry's wait, how a job ends. `-m faults` runs
them apart; they need root (mount) for the disk faults, and are skipped with the reason without it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from tests.conftest import TINY_CLASSES, make_leaf_folder
from tests.integration.service_support import (
    ADMIN as TEST_ADMIN,
)
from tests.integration.service_support import (
    Clients,
    model_copy,
    photo_bytes,
    service_settings,
    worker_process,
    zip_of,
)
from tests.live_server import ADMIN, answering_copy, api_workers, start_server, wait_for

pytestmark = pytest.mark.faults

LEADER = "faults"  # the dataset the uploads here go to


@contextlib.contextmanager
def mounted(target: Path, *how: list[str]):
    """`mount` each argument list in turn over `target` (a folder or file) for the block, then unmount it all.
    Skips the test when this process may not mount (not root, no CAP_SYS_ADMIN)."""
    done = 0
    try:
        for args in how:
            r = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True)
            if r.returncode != 0:
                pytest.skip(f"cannot mount here ({r.stderr.strip()}): the disk faults need root")
            done += "remount" not in args[1]  # a remount changes a mount, adds none
        yield target
    finally:
        for _ in range(done):
            subprocess.run(["umount", "-l", str(target)], capture_output=True)


def read_only(target: Path):
    return mounted(target, ["--bind", str(target)], ["-o", "remount,bind,ro"])


def full_disk(target: Path, size: str = "64k"):
    return mounted(target, ["-t", "tmpfs", "-o", f"size={size}", "tmpfs"])


MANY = 1000  # photos in the upload killed mid-ingest


def photos_zip(seed: int, n: int, size=(640, 480)) -> bytes:
    """n new photos (noise: distinct) in class folders."""
    return zip_of(
        {f"batch/{TINY_CLASSES[i % 3]}/p{seed}-{i}.jpg": photo_bytes(seed * 1000 + i, size) for i in range(n)}
    )


def upload(base: str, data: bytes, dataset: str = LEADER, timeout: float = 120) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/uploads",
        headers=ADMIN,
        params={"dataset": dataset},
        files={"file": ("batch.zip", data, "application/zip")},
        timeout=timeout,
    )


def versions(base: str, dataset: str = LEADER) -> list[tuple[int, int]]:
    """(version, photos) of each version of `dataset`, as GET /v1/datasets lists them."""
    for d in httpx.get(f"{base}/v1/datasets", timeout=30).json()["datasets"]:
        if d["name"] == dataset:
            return sorted((v["version"], v["n_images"]) for v in d["versions"])
    return []


def lease_holder(home: Path, name: str) -> str | None:
    with contextlib.closing(sqlite3.connect(f"file:{home / 'catalog.sqlite'}?mode=ro", uri=True, timeout=5)) as db:
        row = db.execute("SELECT holder FROM leases WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


TIMEOUT = 120  # a slow answer on a loaded machine is not a lost one: only no answer at all is


class Load:
    """`users` threads predicting in a loop, each on its own kept-alive connection (a new one after a failure):
    every answer's time, status and model version."""

    def __init__(self, base: str, photo: bytes, users: int = 4):
        self.base, self.photo, self.users = base, photo, users
        self.answers: list[tuple[float, int, int | None]] = []  # (time, status or 0 for no answer, model version)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._user, daemon=True) for _ in range(users)]

    def _user(self) -> None:
        client = httpx.Client(base_url=self.base, timeout=TIMEOUT)
        while not self.stop.is_set():
            try:
                r = client.post("/v1/predict", files={"file": ("leaf.jpg", self.photo)})
                got = (time.monotonic(), r.status_code, r.json().get("model_version") if r.status_code == 200 else None)
            except httpx.HTTPError:
                got = (time.monotonic(), 0, None)
                client.close()
                client = httpx.Client(base_url=self.base, timeout=TIMEOUT)
            self.answers.append(got)
        client.close()

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)

    def after(self, t: float) -> list[tuple[float, int, int | None]]:
        return [a for a in self.answers if a[0] >= t]


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_model):
    """`leafdoc serve --workers 2` with the tiny model answering, dataset `faults` ingested; an upload waits at most
    20 s for another one to the same dataset (so a lock left by a dead worker shows as 409, not a long hang)."""
    root = tmp_path_factory.mktemp("faults")
    model = answering_copy(tiny_model, root / "model")
    server = start_server(
        root / "server",
        model,
        workers=2,
        ready_within=300,  # the suite runs beside the rest on a loaded machine: a start took over 2 minutes
        LEAFDOC_DEFAULT_DATASET=LEADER,
        LEAFDOC_UPLOAD_WAIT_SECONDS="20",
        LEAFDOC_UI="false",  # no page process: one process fewer to start on a busy machine
    )
    try:
        first = upload(server.base, photos_zip(0, 6, (96, 96)))
        assert first.status_code == 201, first.text
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def leaf_photo(tmp_path_factory) -> bytes:
    return sorted(make_leaf_folder(tmp_path_factory.mktemp("leaf"), per_class=1).rglob("*.jpg"))[0].read_bytes()


def two_workers(served) -> list:
    """The server's two API workers, once both run (a test before may have killed one: its replacement starts)."""
    return wait_for(lambda: len(w := api_workers(served)) == 2 and w, 60, "two API workers")


def served_workers(served) -> list:
    """The two API workers once both have started serving and the supervisor has heard so (its next look, within a
    second): a worker killed before that counts as one that failed to start (service/balance.py)."""
    workers = two_workers(served)
    wait_for(
        lambda: all(f"Started server process [{w.pid}]" in served.log.read_text() for w in workers),
        60,
        "both workers to start serving",
    )
    time.sleep(3)  # the supervisor looks every half second; a loaded machine answers it late
    return workers


def replaced_in(served, victim: int, within: float) -> float:
    """Seconds from now until `victim` (killed just before) is gone and two API workers run again."""
    killed = time.monotonic()
    wait_for(
        lambda: victim not in (pids := {w.pid for w in api_workers(served)}) and len(pids) == 2,
        within,
        f"a new worker within {within:.0f} s",
    )
    return time.monotonic() - killed


def test_an_api_worker_killed_mid_upload_leaves_nothing_and_the_retry_goes_through_at_once(served):
    """Killed while it ingests an upload (holding the dataset's lock, its body spooled under the data home): the
    upload registers nothing, the same upload sent again at once goes through in seconds (it waited 50 s for the dead
    worker's lock: issue 59), and the killed one's spooled body is removed (it stayed for good)."""
    # 1,000 small photos: an ingest of them holds the lock for 1.7 s on a Zen 4 EPYC (40 larger ones held it for 0.1 s,
    # between two looks of the test, which then waited for a lock it had missed); timed undisturbed first
    start = time.monotonic()
    assert upload(served.base, photos_zip(7, MANY, (96, 96))).status_code == 201
    undisturbed = time.monotonic() - start
    before = versions(served.base)
    batch = photos_zip(1, MANY, (96, 96))
    spool = served.home / "uploads"
    sent = ThreadPoolExecutor(1)
    pending = sent.submit(upload, served.base, batch)
    holder = wait_for(lambda: lease_holder(served.home, f"ingest:{LEADER}"), 60, "the upload to take its lock", 0.02)
    pid = int(holder.split(":")[1])
    assert pid in {w.pid for w in api_workers(served)}
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    with pytest.raises(httpx.HTTPError):  # the client's request is lost: the connection closed without an answer
        pending.result()
    sent.shutdown()
    left = set(spool.iterdir())
    assert left, "the killed upload had spooled nothing: the test did not kill it mid-upload"
    assert versions(served.base) == before  # the killed upload registered nothing

    start = time.monotonic()  # sent again at once, as a client that lost its answer does
    again = upload(served.base, batch)
    took = time.monotonic() - start
    assert again.status_code == 201, again.text
    assert took < undisturbed + 15, f"the retry took {took:.1f} s, an undisturbed upload {undisturbed:.1f} s"
    assert again.json()["added"] == MANY
    assert versions(served.base) == [*before, (before[-1][0] + 1, before[-1][1] + MANY)]  # whole: every photo in

    wait_for(lambda: not left & set(spool.iterdir()), 60, "the killed upload's spooled body to be removed")
    swept = time.monotonic() - killed
    print(f"spool removed {swept:.1f} s after the kill; the retry took {took:.1f} s (undisturbed {undisturbed:.1f} s)")


def test_an_api_worker_killed_under_load_loses_only_the_requests_in_flight(served, leaf_photo):
    """4 users predicting; one of the two API workers killed outright. Lost: at most the requests in flight on it
    (one per user); every request is answered again within 20 s, by the replacement worker too."""
    with Load(served.base, leaf_photo, users=4) as load:
        time.sleep(3)
        victim = api_workers(served)[0].pid
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        replaced_in(served, victim, 60)
        time.sleep(max(0.0, killed + 20 - time.monotonic()))
        time.sleep(3)
    lost = [a for a in load.answers if a[1] != 200]
    assert len(lost) <= load.users, f"{len(lost)} requests lost of {len(load.answers)}"
    assert all(a[1] == 200 for a in load.after(killed + 20)) and len(load.after(killed + 20)) >= 4
    print(f"{len(load.answers)} requests, {len(lost)} lost")


def test_a_worker_killed_before_it_answers_the_supervisor_is_replaced_within_seconds(served, leaf_photo):
    """uvicorn's supervisor pings each worker every half second and waited up to its health check's timeout (60 s
    here) for the answer; the supervisor holds its own copy of the pipe's other end, so a worker killed before it
    answered left that wait running the whole minute, and nothing was replaced meanwhile (CI: "timed out waiting for
    a new worker"). Stopped first (SIGSTOP: the ping stays unanswered), then killed: replaced within 10 s."""
    victim = two_workers(served)[0].pid
    os.kill(victim, signal.SIGSTOP)
    time.sleep(2)  # the supervisor has pinged the stopped worker and waits for its answer
    os.kill(victim, signal.SIGKILL)
    took = replaced_in(served, victim, 10)
    answered = httpx.post(f"{served.base}/v1/predict", files={"file": ("leaf.jpg", leaf_photo)}, timeout=TIMEOUT)
    assert answered.status_code == 200, answered.text
    print(f"replaced {took:.1f} s after the kill")


def test_a_worker_killed_while_the_other_does_not_answer_is_replaced_within_seconds(served, leaf_photo):
    """One API worker stopped (SIGSTOP: alive, answering nothing, as a worker busy in C code for a while), the other
    killed: the killed one is replaced within 10 s, though the supervisor gets no answer from the stopped one. Once
    resumed, the stopped worker is kept, not killed as hung, and every request is answered."""
    stalled, victim = (w.pid for w in two_workers(served))
    os.kill(stalled, signal.SIGSTOP)
    try:
        time.sleep(2)  # the supervisor is now waiting on the stopped worker
        os.kill(victim, signal.SIGKILL)
        took = replaced_in(served, victim, 10)
    finally:
        os.kill(stalled, signal.SIGCONT)
    with Load(served.base, leaf_photo, users=4) as load:
        time.sleep(3)
    assert stalled in {w.pid for w in api_workers(served)}, "the resumed worker was killed"
    assert len(load.answers) >= 4 and all(a[1] == 200 for a in load.answers), load.answers[:8]
    print(f"replaced {took:.1f} s after the kill")


def test_a_worker_that_cannot_start_is_tried_again_less_and_less_often_while_the_other_serves(served, leaf_photo):
    """A worker killed while the catalog cannot be opened (a database restarting): each replacement dies before it
    serves. uvicorn started the next one at once, twice a second (a crash loop: half a core and a traceback a try);
    now the next starts 1 s after, then 2 s, 4 s, ... (service/balance.py), the other worker answering all along.
    Once the catalog is back, a replacement serves, and the next worker killed is replaced at once again."""
    survivor, victim = (w.pid for w in served_workers(served))
    catalog = served.home / "catalog.sqlite"
    kept = catalog.with_name("catalog.sqlite.kept")
    catalog.rename(kept)  # the workers running keep it open; a new one cannot open a folder as its catalog
    catalog.mkdir()
    try:
        os.kill(victim, signal.SIGKILL)
        life: dict[int, list[float]] = {}  # each replacement: [seen first, seen gone]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(len(t) == 2 for t in life.values()) < 4:
            now, running = time.monotonic(), {w.pid for w in api_workers(served)} - {survivor, victim}
            for pid in running - life.keys():
                life[pid] = [now]
            for pid, times in life.items():
                if len(times) == 1 and pid not in running:
                    times.append(now)
            time.sleep(0.05)
        answered = httpx.post(f"{served.base}/v1/predict", files={"file": ("leaf.jpg", leaf_photo)}, timeout=TIMEOUT)
        assert answered.status_code == 200, answered.text  # the worker that was running serves throughout
    finally:
        catalog.rmdir()
        kept.rename(catalog)
    tries = sorted(life.values())
    assert len(tries) >= 4 and all(len(t) == 2 for t in tries[:4]), f"replacements seen: {tries}"
    # From one failed worker's end to the next one's start: the supervisor's own latency (about a second here, the same
    # each time), then 1, 2 and 4 s put off; started at once, as uvicorn did, the three waits were 0.9-1.0 s.
    waits = [later[0] - earlier[1] for earlier, later in zip(tries, tries[1:], strict=False)][:3]
    assert waits[2] >= 3.5 and waits[2] - waits[0] >= 2.0, f"waits between failed starts: {waits}"
    assert "the next API worker starts in 4 s (3 failed to start in a row)" in served.log.read_text()

    fresh = next(w.pid for w in served_workers(served) if w.pid != survivor)  # the catalog back: the next try serves
    answered = httpx.post(f"{served.base}/v1/predict", files={"file": ("leaf.jpg", leaf_photo)}, timeout=TIMEOUT)
    assert answered.status_code == 200, answered.text
    os.kill(fresh, signal.SIGKILL)
    took = replaced_in(served, fresh, 10)  # it served: the next start is not put off
    print(f"waits between failed starts: {', '.join(f'{w:.1f} s' for w in waits)}; replaced {took:.1f} s after")


def test_promotion_and_rollback_under_load_answer_every_request_from_one_whole_version(served, leaf_photo, tmp_path):
    """Two swaps of the serving model (promote v2, roll back to v1) under 4 users: every request answered 200 by
    one of the two versions, and each swap seen by every new answer within 5 s."""
    from leafdoc.core.settings import Settings
    from leafdoc.lifecycle.workspace import Workspace

    ws = Workspace.open(Settings(home=served.home))
    try:
        v1 = ws.registry.serving().version
        v2, _ = ws.registry.register(
            model_copy(ws.registry.local_dir(v1), tmp_path / "v2", note="the second"), source="test"
        )
    finally:
        ws.close()
    switched = []
    with Load(served.base, leaf_photo, users=4) as load:
        time.sleep(2)
        for route, want in ((f"/v1/models/{v2}/promote", v2), ("/v1/models/rollback", v1)):
            r = httpx.post(f"{served.base}{route}", headers=ADMIN, json={"reason": "fault suite"}, timeout=TIMEOUT)
            assert r.status_code == 200, r.text
            at = time.monotonic()
            wait_for(lambda w=want, t=at: [a[2] for a in load.after(t)][-4:] == [w] * 4, 30, f"v{want} answers")
            settled = (
                max(a[0] for a in load.after(at) if a[2] != want) if any(a[2] != want for a in load.after(at)) else at
            )
            switched.append(settled - at)
            time.sleep(2)
    assert all(a[1] == 200 for a in load.answers), [a for a in load.answers if a[1] != 200][:5]
    assert {a[2] for a in load.answers} == {v1, v2}
    assert max(switched) < 5, switched
    print(f"{len(load.answers)} answers, swaps settled in {switched}")


def test_a_store_that_refuses_writes_answers_503_or_507_and_registers_nothing(served):
    """A read-only store (a bind mount: root ignores chmod) and a full one (a 64 kB tmpfs): the upload answers 503
    `server_fault` / 507 `storage_full`, saying the server is at fault and nothing was registered (it answered 422
    `bad_upload`, and a client blamed its photos); a client's own fault still answers 422; once the store is
    writable again the same upload lands whole."""
    before = versions(served.base)
    batch = photos_zip(2, 6)
    store = served.home / "store"
    for fault, status, code in ((read_only, 503, "server_fault"), (full_disk, 507, "storage_full")):
        with fault(store):
            r = upload(served.base, batch)
            assert r.status_code == status, r.text
            body = r.json()
            assert body["error"] == code and "the server is at fault" in body["message"], body
            assert "Nothing was registered" in body["message"] and "again later" in body["hint"], body
            assert str(served.home) not in r.text  # no server path in the answer
            assert versions(served.base) == before
            unlabelled = httpx.post(  # photos sent as files with no label: the client's fault stays the client's
                f"{served.base}/v1/uploads", headers=ADMIN, files={"files": ("x.jpg", photo_bytes(9))}, timeout=60
            )
            assert unlabelled.status_code == 422 and unlabelled.json()["error"] == "bad_upload", unlabelled.text
    again = upload(served.base, batch)
    assert again.status_code == 201 and again.json()["added"] == 6, again.text
    assert versions(served.base)[-1] == (before[-1][0] + 1, before[-1][1] + 6)


def test_a_full_disk_for_spooled_uploads_answers_507(served):
    """The upload's body cannot even be kept while it is read: 507, the server's fault, nothing registered."""
    before = versions(served.base)
    with full_disk(served.home / "uploads", "64k"):
        r = upload(served.base, photos_zip(3, 6))
    assert r.status_code == 507 and r.json()["error"] == "storage_full", r.text
    assert "the server is at fault" in r.json()["message"] and "Nothing was registered" in r.json()["message"]
    assert versions(served.base) == before


def test_a_catalog_that_cannot_be_written_answers_503_and_registers_nothing(tmp_path, tiny_model):
    """The catalog's file turned read-only under a running API (a bind mount over it): an upload answers 503
    `server_fault` naming the catalog (it answered 500 `internal`), a client's own fault still answers 422."""
    settings = service_settings(tmp_path / "home", tiny_model, default_dataset=LEADER)
    with Clients() as clients:
        api = clients(settings)
        ok = api.post("/v1/uploads", headers=TEST_ADMIN, files={"file": ("a.zip", photos_zip(4, 3, (96, 96)))})
        assert ok.status_code == 201, ok.text
        with read_only(settings.home / "catalog.sqlite"):
            api.app.state.leafdoc.catalog.dispose()  # new connections open the file through the read-only mount
            r = api.post("/v1/uploads", headers=TEST_ADMIN, files={"file": ("b.zip", photos_zip(5, 3, (96, 96)))})
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["error"] == "server_fault" and "catalog is unavailable" in body["message"], body
            assert "the server is at fault" in body["message"] and "nothing was registered" in body["message"].lower()
            assert "readonly" not in body["message"].lower()  # the database's own words only in the server's log
            bad = api.post("/v1/uploads", headers=TEST_ADMIN, files={"files": ("x.jpg", b"not a photo")})
            assert bad.status_code == 422, bad.text
        api.app.state.leafdoc.catalog.dispose()
        datasets = api.get("/v1/datasets").json()["datasets"]
        assert [(d["name"], d["latest"]) for d in datasets] == [(LEADER, 1)]


def test_two_ingests_and_an_upload_on_one_catalog_at_once_leave_every_version_whole(served, tmp_path):
    """Two `leafdoc ingest` processes into one new dataset while the API takes an upload into another: no
    "database is locked"; an ingest that found the other's version written under it says so and registers nothing,
    and run again it lands; the last version holds every photo of both."""
    folders = []
    for k in range(2):
        folder = tmp_path / f"part{k}"
        for i in range(8):
            (folder / TINY_CLASSES[i % 3]).mkdir(parents=True, exist_ok=True)
            (folder / TINY_CLASSES[i % 3] / f"{k}-{i}.jpg").write_bytes(photo_bytes(7000 + 100 * k + i, (320, 240)))
        folders.append(folder)
    env = {**os.environ, "LEAFDOC_HOME": str(served.home)}
    exe = str(Path(sys.executable).with_name("leafdoc"))

    def ingest(folder: Path) -> subprocess.CompletedProcess:
        cmd = [exe, "ingest", str(folder), "--dataset", "pair", "--json"]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)

    before = versions(served.base)
    with ThreadPoolExecutor(3) as pool:  # all three at once
        running = [pool.submit(ingest, f) for f in folders] + [pool.submit(upload, served.base, photos_zip(6, 6))]
        *ingests, sent = [r.result() for r in running]
    assert sent.status_code == 201, sent.text
    for run in ingests:
        said = " ".join((run.stdout + run.stderr).split())  # an error wraps at the terminal's width (80 here)
        assert "database is locked" not in said, said
        if run.returncode != 0:
            assert "Nothing was registered" in said, said
            assert ingest(folders[ingests.index(run)]).returncode == 0
    pair = versions(served.base, "pair")
    assert pair[-1][1] == 16, pair  # both folders, whole
    assert all(n in (8, 16) for _, n in pair), pair
    assert versions(served.base)[-1] == (before[-1][0] + 1, before[-1][1] + 6)


# ---- the job worker ---------------------------------------------------------------------------------------------

TINY = {"epochs": 6, "patience": 6, "batch_size": 8, "image_size": 32, "alpha": 0.35, "weights": "none"}


def test_a_job_worker_killed_mid_epoch_is_claimed_again_within_15_s_of_its_death_being_known(
    tmp_path, job_model, leaf_folder
):
    """`leafdoc worker` killed with SIGKILL during epoch 3 and started again (as systemd or a pod restart does): the
    job is running again within 15 s of the new worker seeing the old one dead (it waited out the dead worker's 60 s
    training lock, about a minute: issue 59), continues after the saved epoch, and succeeds in its second attempt."""
    from leafdoc.data.catalog import Catalog
    from leafdoc.data.ingest import ingest
    from leafdoc.data.store import open_store

    settings = service_settings(tmp_path / "home", job_model, run_consumer=False)
    catalog = Catalog(settings.catalog_url)
    ingest(leaf_folder, catalog, open_store(settings.store_location), "tiny")
    env = {"LEAFDOC_WORKER_POLL_SECONDS": "0.2"}  # the lease: the default 60 s
    log = settings.home / "jobs"
    with Clients() as clients:
        api = clients(settings)
        job_id = api.post("/v1/training-jobs", headers=TEST_ADMIN, json={"options": TINY}).json()["id"]

        def job() -> dict:
            return api.get(f"/v1/training-jobs/{job_id}").json()

        def saved() -> int:
            text = (log / f"{job_id}.log").read_text(errors="replace") if (log / f"{job_id}.log").exists() else ""
            return text.count("saved to the store")

        with worker_process(settings.home, env, tmp_path / "a.log") as a:
            wait_for(lambda: saved() >= 2, 600, "two epochs saved")
            a.kill()
            a.wait()
        with worker_process(settings.home, env, tmp_path / "b.log"):
            # The new worker knows the old one is dead at its first look (service/worker.py, recover), and says so; on
            # a loaded machine its interpreter and imports alone took over a minute, not counted here.
            known = "stopped before it finished"
            wait_for(lambda: known in (tmp_path / "b.log").read_text(), 300, "the new worker to see the old one dead")
            started = time.monotonic()
            wait_for(lambda: job()["attempts"] == 2 and job()["state"] == "running", 120, "the job claimed again")
            claimed = time.monotonic() - started
            assert claimed < 15, f"claimed again {claimed:.1f} s after the new worker saw the old one dead"
            done = wait_for(lambda: (j := job())["state"] not in ("queued", "running") and j, 600, "the job's end")
    catalog.dispose()
    assert done["state"] == "succeeded", done["error"]
    assert done["attempts"] == 2 and done["resumed_epoch"] >= 2 and done["epoch"] == TINY["epochs"]
    assert [h["epoch"] for h in done["metrics"]["history"]] == list(range(1, TINY["epochs"] + 1))
    print(f"claimed again {claimed:.1f} s after the new worker saw the old one dead")
