"""Training jobs run by a real consumer (the worker loop over the SQLite Huey queue, each job in its
own process): a job that succeeds registers and promotes a candidate the API then serves without a
restart; a job that fails is marked failed with its error and leaves the serving model and the
registry untouched; queued jobs survive a restart; one training runs at a time; an admin cancels a
queued job (it never runs) or a running one (its process is stopped, nothing registered); a job whose
worker is killed is taken over by another worker and continues after its last checkpoint, until its
attempts run out."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from service_support import (
    ADMIN,
    TOKEN,
    Clients,
    assert_error,
    class_zip,
    leaf_photos,
    model_copy,
    service_settings,
    worker_process,
    zip_of,
)
from tests.conftest import REPO, alive, make_leaf_folder, without_carried_photos

from leafdoc.core.errors import Conflict
from leafdoc.data import leases
from leafdoc.data.catalog import Catalog, utcnow
from leafdoc.data.ingest import ingest
from leafdoc.data.store import open_store
from leafdoc.model_versions import Registry
from leafdoc.modelfolder import FIELD_PHOTOS_FILE
from leafdoc.service import checkpoints, training
from leafdoc.service.jobs import (
    CANCELLED_RUNNING,
    TRAINING_LEASE,
    JobCancelled,
    JobQueue,
    cancel,
    claim,
    create_job,
    fail,
    get_job,
    retry_or_fail,
    succeed,
    update_job,
)
from leafdoc.service.worker import Worker
from leafdoc.train.checkpoint import beside
from leafdoc.ui.text import job_summary

ZIP = "application/zip"
TINY = {"epochs": 1, "batch_size": 8, "image_size": 32, "alpha": 0.35, "weights": "none"}


@pytest.fixture
def settings_(tmp_path, job_model):
    return service_settings(tmp_path / "home", job_model)


@pytest.fixture
def app_client():
    clients = Clients()
    yield clients
    clients.close()


def ingest_folder(settings, folder, dataset: str = "tiny") -> None:
    catalog = Catalog(settings.catalog_url)
    ingest(folder, catalog, open_store(settings.store_location), dataset)
    catalog.dispose()


def wait_for(predicate, timeout: float = 120.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting")


def assert_registry_untouched(client, settings) -> None:
    models = client.get("/v1/models").json()
    assert models["serving_version"] == 1
    assert [m["version"] for m in models["models"]] == [1]
    assert sorted(p.name for p in settings.models_dir.iterdir() if not p.name.startswith(".")) == ["1"]
    jobs_dir = settings.models_dir / ".jobs"
    assert not jobs_dir.exists() or not any(jobs_dir.iterdir())  # no half-written candidate left
    assert leases.current_holder(Catalog(settings.catalog_url), TRAINING_LEASE) is None


def test_a_retraining_job_learns_and_the_api_then_answers_with_what_it_learned(tmp_path, job_model, app_client):
    """Upload a task a learning model gets right (three colours under noise), retrain through the API: the
    job's test figure is far above chance (1/3), and once promoted the API names fresh photos' colours."""
    from tests.conftest import COLOURS, colour_folder

    s = service_settings(tmp_path / "home", job_model, promote_margin=1.0)  # any candidate passes
    api = app_client(s)
    colours = class_zip(colour_folder(tmp_path / "colours", 14))
    assert api.post("/v1/uploads", headers=ADMIN, files={"file": ("colours.zip", colours, ZIP)}).status_code == 201
    options = {"backbone": "baseline_cnn", "weights": "none", "image_size": 32, "epochs": 12, "patience": 12}
    body = {"options": {**options, "batch_size": 8}, "warm_start": False}  # another backbone than the serving one
    r = api.post("/v1/training-jobs", headers=ADMIN, json=body)
    assert r.status_code == 202, r.text
    Worker(s).run(burst=True)
    job = api.get(f"/v1/training-jobs/{r.json()['id']}").json()
    assert job["state"] == "succeeded", job["error"]
    assert job["metrics"]["test"]["accuracy"] >= 0.9, job["metrics"]["test"]
    assert job["progress"]["field_check"] == {"refuses": False}  # the tiny serving model had no such check
    assert job["progress"]["other_leaves"]["fitted"] is False  # nor can a 32 px CNN have the other-leaves check
    # colours, not the serving model's leaves: however good its figures, not promoted unasked (it would answer every
    # leaf as a colour); an admin promotes it by hand
    assert job["candidate_version"] == 2 and api.get("/v1/models").json()["serving_version"] == 1
    assert "it does not know 3 of the serving model's 3 classes" in job["promotion"]["reason"], job["promotion"]
    assert api.post("/v1/models/2/promote", headers=ADMIN, json={}).status_code == 200
    assert api.get("/v1/models").json()["serving_version"] == 2
    fresh = colour_folder(tmp_path / "fresh", 3, seed0=500)
    answers = {
        (c, i): api.post("/v1/predict", files={"file": ("p.png", (fresh / c / f"{c}{i}.png").read_bytes())}).json()
        for c in COLOURS
        for i in range(3)
    }
    assert all(a["model_version"] == 2 for a in answers.values())
    assert all(a["top_k"][0]["label"] == c for (c, _), a in answers.items()), answers


def _test_photos(model_dir, folder) -> list:
    """The photos of `folder` that the model folder's split.json holds out as test (by sha256)."""
    import hashlib

    wanted = set(json.loads((model_dir / "split.json").read_text())["test"])
    return [p for p in leaf_photos(folder) if hashlib.sha256(p.read_bytes()).hexdigest() in wanted]


def _accuracy(model_dir, folder, split_of) -> float:
    """`model_dir`'s accuracy on the test photos of `split_of`'s split, with ONNX Runtime."""
    import numpy as np

    from leafdoc.inference.predictor import Predictor

    photos, predictor = _test_photos(split_of, folder), Predictor(model_dir)
    probs = predictor.predict_arrays(np.stack([predictor.preprocess(p) for p in photos]))["probabilities"]
    return float(np.mean([predictor.labels[i] == p.parent.name for i, p in zip(probs.argmax(1), photos, strict=True)]))


def test_training_job_runs_after_a_restart_and_its_candidate_is_promoted(tmp_path, job_model, leaf_folder, app_client):
    s = service_settings(tmp_path / "home", job_model, promote_margin=1.0)  # any candidate passes
    first = app_client(s)
    up = first.post("/v1/uploads", headers=ADMIN, files={"file": ("leaves.zip", class_zip(leaf_folder), ZIP)})
    assert up.status_code == 201, up.text
    r = first.post("/v1/training-jobs", headers=ADMIN, json={"options": TINY})
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    first.__exit__(None, None, None)

    api = app_client(s)  # the server restarted; the job is still queued, in the catalog and the queue
    assert api.get(f"/v1/training-jobs/{job_id}").json()["state"] == "queued"
    Worker(s).run(burst=True)

    job = api.get(f"/v1/training-jobs/{job_id}").json()
    assert job["state"] == "succeeded", job["error"]
    assert job["epoch"] == job["epochs"] == 1
    [epoch] = job["metrics"]["history"]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(epoch)
    assert job["candidate_version"] == 2 and job["finished"] and job["error"] is None
    # A finished job still says how its photos were split: the new version's split.json, counted here.
    split = json.loads((s.models_dir / "2" / "split.json").read_text())
    counts = {part: len(split[part]) for part in ("train", "val", "test")}
    assert sum(counts.values()) == 18
    # What the new version does with leaves it was not taught: the CNN at 32 px is not the bank's Lite0 at 224 px.
    other = {"fitted": False, "why_not": "the bank's photos were prepared otherwise (size 224, not 32)"}
    assert job["progress"] == {
        "phase": "done",
        "split": counts,
        "field_check": {"refuses": False},
        "other_leaves": other,
    }
    said = f"Photos: {counts['train']} for training, {counts['val']} for validation, {counts['test']} for test"
    assert said in job_summary(job)  # what the page shows
    assert "Other leaves: no check (the bank" in job_summary(job)
    p = job["promotion"]
    # One figure for the candidate: the job's test accuracy is the one the promotion rule compared.
    assert job["metrics"]["test"]["accuracy"] == pytest.approx(p["candidate"], abs=1e-6)
    assert p["metric"] == "accuracy" and p["margin"] == 1.0 and p["serving_version"] == 1
    assert isinstance(p["candidate"], float) and isinstance(p["serving"], float)
    assert p["promote"] is True and p["promoted"] is True and "serving v1" in p["reason"]
    # The serving model split the same 18 photos with the same seed: no test photo is one it trained on.
    assert p["n_left_out"] == 0 and p["n_images"] == p["n_test_images"] == counts["test"]

    models = api.get("/v1/models").json()
    assert models["serving_version"] == 2
    assert models["history"][-1]["action"] == "auto_promote"
    v2 = api.get("/v1/models/2").json()
    assert v2["status"] == "serving" and v2["job_id"] == job_id and v2["promotion"] == p
    assert v2["card"]["warm_start"] == "all" and v2["parent_version"] == 1
    assert v2["card"]["metrics"]["test"]["accuracy"] == pytest.approx(p["candidate"], abs=1e-6)
    # Both figures are the two models' accuracies on the candidate's test photos, scored again here.
    assert p["n_images"] == len(_test_photos(s.models_dir / "2", leaf_folder))
    assert p["candidate"] == pytest.approx(_accuracy(s.models_dir / "2", leaf_folder, s.models_dir / "2"), abs=1e-6)
    assert p["serving"] == pytest.approx(_accuracy(job_model, leaf_folder, s.models_dir / "2"), abs=1e-6)
    assert (s.models_dir / "2" / "model.onnx").is_file() and not any((s.models_dir / ".jobs").iterdir())
    photo = leaf_photos(leaf_folder)[0].read_bytes()
    assert api.post("/v1/predict", files={"file": ("a.jpg", photo)}).json()["model_version"] == 2  # no restart
    # The new model has its own monitoring baseline: its answers on every validation photo of the job's split.
    baseline = v2["card"]["baseline"]
    assert baseline["answers"] == v2["card"]["dataset"]["split"]["val"] > 0
    assert sum(baseline["abstentions"].values()) + sum(baseline["labels"].values()) == baseline["answers"]
    assert sum(baseline["score_bins"]) == baseline["answers"]
    seen = api.get("/v1/monitoring", headers=ADMIN).json()
    assert seen["model_version"] == 2 and seen["baseline"]["answers"] == baseline["answers"]
    assert "no validation baseline" not in seen["drift"].get("why", "")
    assert 'leafdoc_training_jobs{state="succeeded"} 1.0' in api.get("/metrics").text
    assert api.post("/v1/models/rollback", headers=ADMIN).json()["serving_version"] == 1


def test_a_failing_job_is_marked_failed_and_registers_nothing(settings_, leaf_folder, app_client):
    api = app_client(settings_)
    one_class = zip_of({f"only/{p.name}": p.read_bytes() for p in leaf_photos(leaf_folder / "Apple___healthy")})
    up = api.post("/v1/uploads?dataset=oneclass", headers=ADMIN, files={"file": ("o.zip", one_class, ZIP)})
    assert up.status_code == 201
    job_id = api.post("/v1/training-jobs", headers=ADMIN, json={"dataset": "oneclass", "options": TINY}).json()["id"]
    Worker(settings_).run(burst=True)
    job = api.get(f"/v1/training-jobs/{job_id}").json()
    assert job["state"] == "failed"
    assert "1 class" in job["error"] and "at least 2" in job["error"]
    assert job["attempts"] == 1  # its own failure: not tried again, though LEAFDOC_JOB_MAX_ATTEMPTS is 3
    assert job["candidate_version"] is None and job["finished"]
    assert_registry_untouched(api, settings_)
    assert 'leafdoc_training_jobs{state="failed"} 1.0' in api.get("/metrics").text


def _start_job_in_a_worker(settings, leaf_folder, app_client, options=TINY):
    ingest_folder(settings, leaf_folder)
    api = app_client(settings)
    job_id = api.post("/v1/training-jobs", headers=ADMIN, json={"options": options}).json()["id"]
    worker = Worker(settings)
    thread = threading.Thread(target=worker.run, kwargs={"burst": True})
    thread.start()
    catalog = Catalog(settings.catalog_url)
    row = wait_for(lambda: (j := get_job(catalog, job_id)).state == "running" and j.pid and j)
    return api, worker, thread, job_id, row.pid


def test_a_killed_training_process_is_tried_again_from_its_checkpoint_until_its_attempts_run_out(
    tmp_path, job_model, leaf_folder, app_client
):
    """Killed by a signal (the OOM killer, an operator), not failed by itself: the job is queued again and the
    next attempt continues after the saved epoch; when the last attempt is killed too, the job fails."""
    s = service_settings(tmp_path / "home", job_model, job_max_attempts=2)
    api, worker, thread, job_id, _ = _start_job_in_a_worker(s, leaf_folder, app_client, options=LONG)
    catalog = Catalog(s.catalog_url)
    try:
        first = wait_for(lambda: (j := get_job(catalog, job_id)).epoch >= 1 and _saved_epochs(s, job_id) and j, 300)
        assert first.attempts == 1 and first.resumed_epoch is None
        os.kill(first.pid, signal.SIGKILL)

        second = wait_for(lambda: (j := get_job(catalog, job_id)).resumed_epoch and j.pid != first.pid and j, 300)
        assert second.state == "running" and second.attempts == 2 and second.resumed_epoch >= 1
        assert "attempt 2 of 2: continuing after epoch" in second.progress["phase"]
        os.kill(second.pid, signal.SIGKILL)
        thread.join(timeout=120)
        assert not thread.is_alive()
    finally:
        worker.stop()
        thread.join(timeout=120)
    job = api.get(f"/v1/training-jobs/{job_id}").json()
    assert job["state"] == "failed" and job["attempts"] == 2
    assert job["error"].startswith("gave up after attempt 2 of 2 (LEAFDOC_JOB_MAX_ATTEMPTS)")
    assert "killed (SIGKILL: often the kernel's out-of-memory killer, see `dmesg`" in job["error"]
    assert job["candidate_version"] is None
    assert checkpoints.name(job_id) not in _named(s)  # a finished job's checkpoint is deleted
    assert_registry_untouched(api, s)
    photo = leaf_photos(leaf_folder)[0].read_bytes()
    assert api.post("/v1/predict", files={"file": ("a.jpg", photo)}).status_code == 200


def _saved_epochs(settings, job_id: str) -> list[int]:
    """The epochs whose checkpoint the job's training process says it wrote to the store (its log)."""
    log = settings.home / "jobs" / f"{job_id}.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    return [int(n) for n in re.findall(r"checkpoint after epoch (\d+) saved to the store", text)]


def _named(settings) -> list[str]:
    folder = settings.home / "store" / "named"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_stopping_the_worker_stops_the_job_and_queues_it_again_for_the_next_worker(settings_, leaf_folder, app_client):
    """SIGTERM to `leafdoc worker` (a pod evicted, a container stopped): the job goes back to the queue at once."""
    api, worker, thread, job_id, pid = _start_job_in_a_worker(settings_, leaf_folder, app_client)
    worker.stop()  # what SIGTERM does to `leafdoc worker`
    thread.join(timeout=120)
    assert not thread.is_alive()
    job = api.get(f"/v1/training-jobs/{job_id}").json()
    assert job["state"] == "queued" and job["attempts"] == 1 and job["error"] is None
    assert job["progress"]["phase"].startswith("queued again after attempt 1 of 3")
    assert "the worker was stopped" in job["progress"]["phase"]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert_registry_untouched(api, settings_)

    Worker(settings_).run(burst=True)  # the next worker
    job = api.get(f"/v1/training-jobs/{job_id}").json()
    assert job["state"] == "succeeded" and job["attempts"] == 2 and job["candidate_version"] == 2, job["error"]
    assert "attempt 2 of 3" in (settings_.home / "jobs" / f"{job_id}.log").read_text()


def test_worker_start_fails_orphaned_jobs_and_requeues_lost_ones(settings_):
    catalog = Catalog(settings_.catalog_url)
    common = dict(dataset="tiny", dataset_version=1, options={}, warm_start=True, parent_version=1, epochs=1)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    here_dead = f"{socket.gethostname()}:{dead.stdout.strip()}"
    orphan = create_job(catalog, **common).id  # its worker on this machine is gone: retried at once
    update_job(catalog, orphan, state="running", attempts=1, worker=here_dead, heartbeat=utcnow())
    stale = create_job(catalog, **common).id  # its worker elsewhere fell silent: retried
    update_job(
        catalog, stale, state="running", attempts=2, worker="elsewhere:1", heartbeat=utcnow() - timedelta(hours=1)
    )
    last = create_job(catalog, **common).id  # same, in its last attempt: failed
    update_job(
        catalog, last, state="running", attempts=3, worker="elsewhere:3", heartbeat=utcnow() - timedelta(hours=1)
    )
    cancelling = create_job(catalog, **common).id  # an admin asked to cancel it: never retried
    update_job(catalog, cancelling, state="running", attempts=1, worker=here_dead, heartbeat=utcnow())
    cancel(catalog, cancelling)
    alive = create_job(catalog, **common).id
    update_job(catalog, alive, state="running", attempts=1, worker="elsewhere:2", heartbeat=utcnow())
    lost = create_job(catalog, **common).id  # recorded, but never reached the queue

    worker = Worker(settings_)
    worker.recover()
    job = get_job(catalog, orphan)
    assert job.state == "queued" and job.attempts == 1 and job.worker is None
    assert (
        "queued again after attempt 1 of 3" in job.progress["phase"]
        and "stopped before it finished" in (job.progress["phase"])
    )
    job = get_job(catalog, stale)
    assert job.state == "queued" and "after attempt 2 of 3" in job.progress["phase"]
    assert "no sign of life" in job.progress["phase"]
    job = get_job(catalog, last)
    assert job.state == "failed" and job.error.startswith("gave up after attempt 3 of 3 (LEAFDOC_JOB_MAX_ATTEMPTS)")
    assert "no sign of life from its worker (elsewhere:3)" in job.error
    assert get_job(catalog, cancelling).state == "cancelled"
    assert get_job(catalog, alive).state == "running"
    assert worker.queue.waiting_job_ids() == {orphan, stale, lost}
    worker.recover()  # idempotent: not queued twice
    assert worker.queue.length() == 3
    assert claim(catalog, stale, "here:1") == 3  # the next claim is its third attempt


def test_one_training_at_a_time_others_wait_queued(settings_):
    catalog = Catalog(settings_.catalog_url)
    assert leases.try_acquire(catalog, TRAINING_LEASE, "another-worker", 60)
    job = create_job(
        catalog, dataset="tiny", dataset_version=1, options={}, warm_start=True, parent_version=1, epochs=1
    )
    JobQueue(settings_).enqueue(job.id)
    worker = Worker(settings_)
    assert worker.run_once() is True  # took the task, found the lease taken, put the job back for later
    assert get_job(catalog, job.id).state == "queued" and get_job(catalog, job.id).started is None
    assert worker.queue.waiting_job_ids() == {job.id}
    assert leases.current_holder(catalog, TRAINING_LEASE) == "another-worker"


def test_retraining_calibrates_with_the_nonleaf_folders_of_the_setting(tmp_path, job_model, leaf_folder, app_client):
    """The starter's card names no non-leaf folders, so a retrain takes LEAFDOC_NONLEAF_DIRS; a job's own
    option wins over the setting. The job keeps the folders; its answers name them without the server's path."""
    from leafdoc.service.jobs import get_job

    flowers, cifar, mine = (str(tmp_path / n) for n in ("flowers", "cifar", "mine"))
    s = service_settings(tmp_path / "home", job_model, run_consumer=False, nonleaf_dirs=f"{flowers}:{cifar}")
    api = app_client(s)
    up = api.post("/v1/uploads", headers=ADMIN, files={"file": ("leaves.zip", class_zip(leaf_folder), ZIP)})
    assert up.status_code == 201, up.text
    job = api.post("/v1/training-jobs", headers=ADMIN, json={"options": TINY}).json()
    assert job["options"]["nonleaf_dirs"] == ["flowers", "cifar"]  # no server path in an answer
    catalog = Catalog(s.catalog_url)
    assert get_job(catalog, job["id"]).options["nonleaf_dirs"] == [flowers, cifar]
    own = api.post("/v1/training-jobs", headers=ADMIN, json={"options": {**TINY, "nonleaf_dirs": [mine]}}).json()
    assert get_job(catalog, own["id"]).options["nonleaf_dirs"] == [mine]
    catalog.dispose()
    plain = service_settings(tmp_path / "home2", job_model, run_consumer=False)
    api2 = app_client(plain)
    assert api2.post("/v1/uploads", headers=ADMIN, files={"file": ("l.zip", class_zip(leaf_folder), ZIP)}).is_success
    assert api2.post("/v1/training-jobs", headers=ADMIN, json={"options": TINY}).json()["options"]["nonleaf_dirs"] == []


def test_a_job_names_its_starting_weights_not_a_file_on_the_server(tmp_path, job_model, leaf_folder, app_client):
    """`weights` is starter, imagenet or none over the API: a weights file on the server is `leafdoc train --weights
    PATH`'s. A client naming one (any path the server could read) is refused before a job is queued, saying what
    it may name; a name is taken."""
    s = service_settings(tmp_path / "home", job_model, run_consumer=False)
    api = app_client(s)
    assert api.post("/v1/uploads", headers=ADMIN, files={"file": ("l.zip", class_zip(leaf_folder), ZIP)}).is_success
    for path in ("/etc/passwd", str(job_model / "model.onnx"), "../weights.h5"):
        refused = api.post("/v1/training-jobs", headers=ADMIN, json={"options": {**TINY, "weights": path}})
        said = json.dumps(assert_error(refused, 422, "invalid_request"))
        assert "options.weights" in said and "'imagenet', 'starter' or 'none'" in said, said
        assert str(tmp_path) not in said.replace(path, "")  # nothing of the server's beyond what was sent
    assert api.get("/v1/training-jobs", headers=ADMIN).json()["jobs"] == []
    taken = api.post("/v1/training-jobs", headers=ADMIN, json={"options": {**TINY, "weights": "imagenet"}})
    assert taken.status_code == 202 and taken.json()["options"]["weights"] == "imagenet", taken.text


def test_retraining_fits_the_field_check_with_the_field_folders_of_the_setting(
    tmp_path, job_model, leaf_folder, app_client
):
    """LEAFDOC_FIELD_DIRS gives a retrain the unlike-training check's field photos when neither the job nor the
    serving model's card says which; a job's own list wins, and an empty one says: no such check (a model
    trained on field photos would refuse what it learnt). Answers name the folders without the server's path."""
    from leafdoc.service.jobs import get_job

    corn, mine = str(tmp_path / "corn"), str(tmp_path / "mine")
    s = service_settings(tmp_path / "home", job_model, run_consumer=False, field_dirs=corn)
    api = app_client(s)
    assert api.post("/v1/uploads", headers=ADMIN, files={"file": ("l.zip", class_zip(leaf_folder), ZIP)}).is_success
    catalog = Catalog(s.catalog_url)
    jobs = {
        name: api.post("/v1/training-jobs", headers=ADMIN, json={"options": {**TINY, **extra}}).json()
        for name, extra in (("setting", {}), ("own", {"field_dirs": [mine]}), ("none", {"field_dirs": []}))
    }
    assert jobs["setting"]["options"]["field_dirs"] == ["corn"]  # no server path in an answer
    stored = {name: get_job(catalog, job["id"]).options["field_dirs"] for name, job in jobs.items()}
    assert stored == {"setting": [corn], "own": [mine], "none": []}
    catalog.dispose()
    plain = service_settings(tmp_path / "home2", job_model, run_consumer=False)
    api2 = app_client(plain)
    assert api2.post("/v1/uploads", headers=ADMIN, files={"file": ("l.zip", class_zip(leaf_folder), ZIP)}).is_success
    assert api2.post("/v1/training-jobs", headers=ADMIN, json={"options": TINY}).json()["options"]["field_dirs"] is None


def test_a_retrain_of_a_model_that_refuses_field_photos_keeps_that_check_or_says_it_learns_them(
    tmp_path, leaf_folder, app_client
):
    """The starter refuses field photos (`unlike_training`) and carries the field photos it was calibrated with:
    a warm-started retrain that names none refits the check with those. Without them (an older model folder, or no
    warm start) the retrain could not refit it, so its new version would guess on field photos: the job is
    refused with what to do, unless it says it learns them (`field_dirs: []`, an upload's `learn_field`) or
    LEAFDOC_FIELD_DIRS names folders to refit it with."""
    from leafdoc.service.jobs import get_job

    starter = REPO / "models" / "starter"
    carrying = service_settings(tmp_path / "carries", starter, run_consumer=False)
    carries = app_client(carrying)
    catalog = Catalog(carrying.catalog_url)
    local = Registry(carrying, catalog, open_store(carrying.store_location)).local_dir(1)  # what a job starts from
    assert (local / FIELD_PHOTOS_FILE).read_bytes() == (starter / FIELD_PHOTOS_FILE).read_bytes()
    catalog.dispose()
    assert carries.post("/v1/uploads", headers=ADMIN, files={"file": ("l.zip", class_zip(leaf_folder), ZIP)}).is_success
    kept = carries.post("/v1/training-jobs", headers=ADMIN, json={"options": TINY})
    assert kept.status_code == 202 and kept.json()["options"]["field_dirs"] is None  # the carried photos
    cold = carries.post("/v1/training-jobs", headers=ADMIN, json={"options": TINY, "warm_start": False})
    assert "without a warm start" in assert_error(cold, 422, "invalid_request")["message"]

    older = without_carried_photos(starter, tmp_path / "older")
    s = service_settings(tmp_path / "home", older, run_consumer=False)
    api = app_client(s)
    up = api.post("/v1/uploads", headers=ADMIN, files={"file": ("l.zip", class_zip(leaf_folder), ZIP)})
    assert up.status_code == 201, up.text
    refused = api.post("/v1/training-jobs", headers=ADMIN, json={"options": TINY})
    error = assert_error(refused, 422, "invalid_request")
    assert "refuses field photos" in error["message"] and "would guess on them" in error["message"]
    assert '"field_dirs": []' in error["hint"] and "LEAFDOC_FIELD_DIRS" in error["hint"]
    assert api.get("/v1/training-jobs", headers=ADMIN).json()["jobs"] == []  # nothing half-queued
    learns = api.post("/v1/training-jobs", headers=ADMIN, json={"options": {**TINY, "field_dirs": []}})
    assert learns.status_code == 202, learns.text
    catalog = Catalog(s.catalog_url)
    assert get_job(catalog, learns.json()["id"]).options["field_dirs"] == []
    # An upload that asks for a retrain: without learn_field it is stored and says why no job started.
    photos = class_zip(make_leaf_folder(tmp_path / "again", skip=6))
    stored = api.post("/v1/uploads?retrain=true", headers=ADMIN, files={"file": ("a.zip", photos, ZIP)}).json()
    assert stored["added"] > 0 and stored["training_job"] is None
    assert stored["retrain"].startswith("retraining was not started: the serving model (version 1) refuses field")
    more = class_zip(make_leaf_folder(tmp_path / "more", skip=12))
    form = {"retrain": "true", "learn_field": "true"}
    with_job = api.post("/v1/uploads", headers=ADMIN, data=form, files={"file": ("m.zip", more, ZIP)}).json()
    assert get_job(catalog, with_job["training_job"]["id"]).options["field_dirs"] == []
    catalog.dispose()
    # With field folders on the server, the retrain refits the check with them and needs no choice.
    corn = str(tmp_path / "corn")
    api2 = app_client(service_settings(tmp_path / "home2", older, run_consumer=False, field_dirs=corn))
    assert api2.post("/v1/uploads", headers=ADMIN, files={"file": ("l.zip", class_zip(leaf_folder), ZIP)}).is_success
    kept_check = api2.post("/v1/training-jobs", headers=ADMIN, json={"options": TINY})
    assert kept_check.status_code == 202 and kept_check.json()["options"]["field_dirs"] == ["corn"]


# ---- cancelling ------------------------------------------------------------------------------------

# Long enough to be caught mid-training (tiny images, many epochs, no early stop), never waited for.
LONG = {**TINY, "epochs": 300, "patience": 300}


def test_a_cancelled_queued_job_never_runs(settings_, leaf_folder, app_client):
    ingest_folder(settings_, leaf_folder)
    api = app_client(settings_)
    job_id = api.post("/v1/training-jobs", headers=ADMIN, json={"options": TINY}).json()["id"]
    r = api.post(f"/v1/training-jobs/{job_id}/cancel", headers=ADMIN)
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["state"] == "cancelled" and job["finished"] and job["cancel_requested"] and job["started"] is None
    assert "before it started" in job["error"]

    worker = Worker(settings_)
    assert worker.queue.waiting_job_ids() == {job_id}  # its task is still in the queue...
    worker.run(burst=True)  # ...and the worker takes it and skips it
    assert worker.queue.length() == 0
    job = api.get(f"/v1/training-jobs/{job_id}").json()
    assert job["state"] == "cancelled" and job["started"] is None and job["candidate_version"] is None
    assert not (settings_.home / "jobs" / f"{job_id}.log").exists()  # no training process was started
    assert_registry_untouched(api, settings_)
    assert 'leafdoc_training_jobs{state="cancelled"} 1.0' in api.get("/metrics").text
    assert [j["id"] for j in api.get("/v1/training-jobs?state=cancelled", headers=ADMIN).json()["jobs"]] == [job_id]

    again = assert_error(api.post(f"/v1/training-jobs/{job_id}/cancel", headers=ADMIN), 409, "conflict")
    assert "already been cancelled" in again["message"]


def _killed_while_saving(folder) -> list[str]:
    """What a process killed in the middle of core.atomic.atomic_dir(folder) leaves beside `folder` (the real
    temp names, made by the real code in a process that dies mid-save), as the names under its parent."""
    code = (
        "import os, sys; from pathlib import Path; from leafdoc.core.atomic import atomic_dir\n"
        "with atomic_dir(Path(sys.argv[1])) as tmp:\n"
        "    (tmp / 'weights.npz').write_bytes(b'half')\n"
        "    os._exit(9)\n"
    )
    before = set(os.listdir(folder.parent)) if folder.parent.exists() else set()
    assert subprocess.run([sys.executable, "-c", code, str(folder)]).returncode == 9
    return sorted(set(os.listdir(folder.parent)) - before)


def test_a_job_that_ended_leaves_no_half_written_folder_on_the_machine(settings_, leaf_folder, app_client):
    # A training process stopped while it saved (SIGTERM on cancel comes at any moment) leaves atomic_dir's
    # temp folders beside its model folder JOB and its checkpoint `.JOB.checkpoint`.
    ingest_folder(settings_, leaf_folder)
    api = app_client(settings_)
    job_id = api.post("/v1/training-jobs", headers=ADMIN, json={"options": TINY}).json()["id"]
    other = api.post("/v1/training-jobs", headers=ADMIN, json={"options": TINY}).json()["id"]
    jobs_dir = settings_.models_dir / ".jobs"
    for name in [
        job_id,
        f".{job_id}.checkpoint",
        f"..{job_id}.checkpoint.old",
        f".{job_id}.old",
        f".{other}.checkpoint",
        other,
    ]:
        (jobs_dir / name).mkdir(parents=True)
        (jobs_dir / name / "weights.npz").write_bytes(b"x" * 100)
    half = _killed_while_saving(jobs_dir / job_id) + _killed_while_saving(beside(jobs_dir / job_id))
    assert len(half) == 2 and all(name.endswith(".partial") for name in half), half
    (jobs_dir / f".{job_id}.tmp").write_bytes(b"half a file")
    assert api.post(f"/v1/training-jobs/{job_id}/cancel", headers=ADMIN).json()["state"] == "cancelled"

    worker = Worker(settings_)
    try:
        worker.run_job(job_id)  # the worker meets the cancelled job and cleans up after it
    finally:
        worker.close()
    assert sorted(p.name for p in jobs_dir.iterdir()) == sorted([f".{other}.checkpoint", other])  # not another job's

    # A worker killed mid-job cleans up nothing: the next worker to start removes what ended jobs left,
    # and nothing of a job that is running (perhaps under a worker beside it on this machine) or queued.
    catalog = Catalog(settings_.catalog_url)
    done = api.post("/v1/training-jobs", headers=ADMIN, json={"options": TINY}).json()["id"]
    assert claim(catalog, done, "gone:1") and fail(catalog, done, "its worker was killed")
    assert claim(catalog, other, "beside:1")  # running
    waiting = api.post("/v1/training-jobs", headers=ADMIN, json={"options": TINY}).json()["id"]
    for name in (
        done,
        f".{done}.checkpoint",
        f".{done}.x1.partial",
        f"..{done}.checkpoint.x2.partial",
        "not-a-job",
        ".not-a-job.checkpoint",
        waiting,
    ):
        (jobs_dir / name).mkdir()
    starting = Worker(settings_)
    starting.recover()
    starting.close()
    assert sorted(p.name for p in jobs_dir.iterdir()) == sorted([f".{other}.checkpoint", other, waiting])
    catalog.dispose()


def test_a_cancelled_running_job_is_stopped_registers_nothing_and_the_next_job_runs(settings_, leaf_folder, app_client):
    ingest_folder(settings_, leaf_folder)
    api = app_client(settings_)
    job_id = api.post("/v1/training-jobs", headers=ADMIN, json={"options": LONG}).json()["id"]
    next_id = api.post("/v1/training-jobs", headers=ADMIN, json={"options": TINY}).json()["id"]
    worker = Worker(settings_)
    thread = threading.Thread(target=worker.run, kwargs={"burst": True})
    thread.start()
    try:
        catalog = Catalog(settings_.catalog_url)
        row = wait_for(lambda: (j := get_job(catalog, job_id)).epoch >= 1 and j, timeout=300)  # mid-training
        assert row.state == "running" and alive(row.pid)

        r = api.post(f"/v1/training-jobs/{job_id}/cancel", headers=ADMIN)
        asked = time.monotonic()
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "running" and r.json()["cancel_requested"]  # its worker ends it
        assert api.post(f"/v1/training-jobs/{job_id}/cancel", headers=ADMIN).json()["state"] in ("running", "cancelled")

        job = wait_for(lambda: (j := api.get(f"/v1/training-jobs/{job_id}").json())["state"] != "running" and j, 60)
        assert time.monotonic() - asked < 15  # a check every second, then SIGTERM to the training process
        assert job["state"] == "cancelled" and job["finished"] and job["candidate_version"] is None
        assert "cancelled by an admin while it ran" in job["error"] and 1 <= job["epoch"] < job["epochs"]
        assert not alive(row.pid)
        assert api.get("/v1/models").json()["serving_version"] == 1

        after = wait_for(lambda: (j := get_job(catalog, next_id)).state in ("succeeded", "failed") and j, 300)
        assert after.state == "succeeded", after.error  # the queued job behind it still ran
    finally:
        worker.stop()
        thread.join(timeout=120)
    assert not thread.is_alive()
    models = api.get("/v1/models").json()["models"]
    assert [m["job_id"] for m in models if m["job_id"]] == [next_id]  # nothing was registered for the cancelled job
    assert get_job(catalog, job_id).state == "cancelled"  # and it stayed so
    jobs_dir = settings_.models_dir / ".jobs"
    left = sorted(str(p.relative_to(jobs_dir)) for p in jobs_dir.rglob("*")) if jobs_dir.exists() else []
    assert left == [], (job_id, next_id, left)


def test_cancel_answers_409_for_finished_jobs_404_for_unknown_and_needs_the_admin_token(
    tmp_path, job_model, app_client
):
    s = service_settings(tmp_path / "home", job_model, run_consumer=False)
    api = app_client(s)
    catalog = Catalog(s.catalog_url)
    common = dict(dataset="tiny", dataset_version=1, options={}, warm_start=True, parent_version=1, epochs=1)
    for state in ("succeeded", "failed"):
        job_id = create_job(catalog, **common).id
        update_job(catalog, job_id, state=state, finished=utcnow())
        body = assert_error(api.post(f"/v1/training-jobs/{job_id}/cancel", headers=ADMIN), 409, "conflict")
        assert f"already {state}" in body["message"] and body["hint"]
        assert get_job(catalog, job_id).state == state and get_job(catalog, job_id).cancel_requested is None

    body = assert_error(api.post("/v1/training-jobs/no-such-job/cancel", headers=ADMIN), 404, "not_found")
    assert "no-such-job" in body["message"]

    queued = create_job(catalog, **common).id
    wrong = {"Authorization": "Bearer not-the-token"}
    assert (
        "wrong"
        in assert_error(api.post(f"/v1/training-jobs/{queued}/cancel", headers=wrong), 401, "unauthorized")["message"]
    )
    assert_error(api.post(f"/v1/training-jobs/{queued}/cancel"), 401, "unauthorized")
    open_server = app_client(service_settings(tmp_path / "home", job_model, run_consumer=False, admin_token=None))
    assert_error(open_server.post(f"/v1/training-jobs/{queued}/cancel", headers=ADMIN), 403, "admin_disabled")
    assert get_job(catalog, queued).state == "queued"  # none of those touched it
    assert api.post(f"/v1/training-jobs/{queued}/cancel", headers={"X-Admin-Token": TOKEN}).json()["state"] == (
        "cancelled"
    )


def test_a_job_cancelled_as_it_finishes_registers_no_candidate(tmp_path, job_model):
    """The child's last step races the cancel: the job is marked succeeded only inside the transaction that
    registers its candidate, and only if it is running with no cancel requested, so the registration rolls back."""
    s = service_settings(tmp_path / "home", job_model)
    catalog = Catalog(s.catalog_url)
    registry = Registry(s, catalog, open_store(s.store_location))
    registry.seed()
    common = dict(dataset="tiny", dataset_version=1, options={}, warm_start=True, parent_version=1, epochs=1)
    job_id = create_job(catalog, **common).id
    assert claim(catalog, job_id, "here:1")
    assert cancel(catalog, job_id).state == "running"

    with pytest.raises(JobCancelled):
        registry.register(
            model_copy(job_model, tmp_path / "candidate"),
            source=f"job:{job_id}",
            job_id=job_id,
            serve="auto_promote",
            on_commit=lambda session, version, served: succeed(session, job_id, candidate_version=version),
        )
    assert [v.version for v in registry.versions()] == [1] and registry.serving().version == 1
    assert fail(catalog, job_id, "the training process was killed (SIGTERM) before it finished.")
    job = get_job(catalog, job_id)
    assert job.state == "cancelled" and job.error == CANCELLED_RUNNING and job.candidate_version is None
    assert not fail(catalog, job_id, "again")  # exactly one terminal state
    with pytest.raises(Conflict):
        cancel(catalog, job_id)

    other = create_job(catalog, **common).id  # no cancel: it succeeds, and then cannot be cancelled
    assert claim(catalog, other, "here:1")
    version, _ = registry.register(
        model_copy(job_model, tmp_path / "candidate2"),
        source=f"job:{other}",
        job_id=other,
        on_commit=lambda session, version, served: succeed(session, other, candidate_version=version),
    )
    assert get_job(catalog, other).state == "succeeded" and get_job(catalog, other).candidate_version == version == 2
    with pytest.raises(Conflict, match="already succeeded"):
        cancel(catalog, other)
    catalog.dispose()


def test_every_attempt_warm_starts_from_the_model_serving_when_the_first_attempt_started(
    settings_, leaf_folder, job_model, tmp_path, app_client
):
    """A job's parent is the model serving when its first attempt starts (not when it was submitted); a later
    attempt starts from that same parent even if another model was promoted in between."""
    ingest_folder(settings_, leaf_folder)
    api = app_client(settings_)
    catalog = Catalog(settings_.catalog_url)
    registry = Registry(settings_, catalog, open_store(settings_.store_location))
    first = api.post("/v1/training-jobs", headers=ADMIN, json={"options": TINY}).json()
    assert first["parent_version"] == 1
    v2, _ = registry.register(model_copy(job_model, tmp_path / "v2", note="v2"), source="test")
    registry.promote(v2)
    assert claim(catalog, first["id"], "here:1") == 1
    assert training.run_job(settings_, first["id"], 1) == 0  # in this process: the worker's child, without it
    job = api.get(f"/v1/training-jobs/{first['id']}").json()
    assert job["state"] == "succeeded" and job["parent_version"] == v2  # v2 served as it started
    assert registry.get(job["candidate_version"]).card["parent_version"] == str(v2)

    second = api.post("/v1/training-jobs", headers=ADMIN, json={"options": TINY}).json()
    assert claim(catalog, second["id"], "here:1") == 1
    update_job(catalog, second["id"], attempt=1, parent_version=v2)  # what attempt 1 recorded as it started
    assert retry_or_fail(catalog, get_job(catalog, second["id"]), 3, "its worker was lost") == "queued"
    registry.promote(1)  # meanwhile an admin serves v1 again
    assert claim(catalog, second["id"], "here:2") == 2
    assert training.run_job(settings_, second["id"], 2) == 0
    job = api.get(f"/v1/training-jobs/{second['id']}").json()
    assert job["state"] == "succeeded", job["error"]
    assert job["parent_version"] == v2 and registry.get(job["candidate_version"]).card["parent_version"] == str(v2)
    catalog.dispose()


# ---- a lost worker ---------------------------------------------------------------------------------

# Long enough to kill its worker in epoch 2 or later, short enough to be waited for.
RESUMABLE = {**TINY, "epochs": 12, "patience": 12}


def test_a_worker_killed_mid_job_is_replaced_by_a_standby_that_continues_after_the_saved_epoch(
    tmp_path, job_model, leaf_folder, app_client
):
    """Two `leafdoc worker` processes, as two pods: A trains, B waits. A is killed with SIGKILL after a few
    epochs (its training process stops by itself). Once A's heartbeat is older than the lease, B queues the
    job again, takes the training lease, and continues after the last epoch A saved, not from epoch 1."""
    s = service_settings(tmp_path / "home", job_model, run_consumer=False, job_lease_seconds=3)
    env = {"LEAFDOC_JOB_LEASE_SECONDS": "3", "LEAFDOC_WORKER_POLL_SECONDS": "0.1"}
    ingest_folder(s, leaf_folder)
    api = app_client(s)
    job_id = api.post("/v1/training-jobs", headers=ADMIN, json={"options": RESUMABLE}).json()["id"]
    catalog = Catalog(s.catalog_url)
    with worker_process(s.home, env, tmp_path / "a.log") as a:
        running = wait_for(lambda: (j := get_job(catalog, job_id)).state == "running" and j.pid and j, 120)
        assert running.worker == f"{socket.gethostname()}:{a.pid}" and running.attempts == 1
        with worker_process(s.home, env, tmp_path / "b.log") as b:
            wait_for(lambda: max(_saved_epochs(s, job_id), default=0) >= 2, 300, every=0.05)
            a.kill()  # SIGKILL: no goodbye, the pod is gone
            a.wait()
            killed_at = time.monotonic()
            wait_for(lambda: not alive(running.pid), 30)  # its training process noticed and stopped
            saved = max(_saved_epochs(s, job_id))

            job = wait_for(
                lambda: (
                    (j := api.get(f"/v1/training-jobs/{job_id}").json())["state"] not in ("queued", "running") and j
                ),
                300,
            )
            assert job["state"] == "succeeded", job["error"]
            b_log = (tmp_path / "b.log").read_text()
            assert f"claimed by worker {socket.gethostname()}:{b.pid} (attempt 2 of 3)" in b_log
            assert "no sign of life from its worker" in b_log
            wait_for(lambda: leases.current_holder(catalog, TRAINING_LEASE) is None, 60)  # B let go of it
    assert time.monotonic() - killed_at > 3  # B waited for the lease to run out

    # A's training process may upload one more checkpoint after the last log line we read (the line is written
    # after the upload, and the process can stop in between): B continues after the newest checkpoint in the store.
    assert job["attempts"] == 2 and saved <= job["resumed_epoch"] <= saved + 1 and saved >= 2
    saved = job["resumed_epoch"]
    assert job["epoch"] == job["epochs"] == RESUMABLE["epochs"] and job["candidate_version"] == 2
    history = job["metrics"]["history"]
    assert [h["epoch"] for h in history] == list(range(1, RESUMABLE["epochs"] + 1))  # each epoch once
    assert {h["attempt"] for h in history if h["epoch"] <= saved} == {1}
    assert {h["attempt"] for h in history if h["epoch"] > saved} == {2}  # epoch 1 was not trained again
    text = (s.home / "jobs" / f"{job_id}.log").read_text()
    assert f"attempt 2 of 3: continuing after epoch {saved}" in text
    assert f"its worker (process {a.pid}) is gone: stopping" in text

    v2 = api.get("/v1/models/2").json()
    assert v2["job_id"] == job_id and v2["card"]["training"]["epochs"] == RESUMABLE["epochs"]
    assert checkpoints.name(job_id) not in _named(s)  # deleted once the job ended
    jobs_dir = s.models_dir / ".jobs"
    assert not jobs_dir.exists() or not any(jobs_dir.iterdir())
    catalog.dispose()
