"""The compose stack as deploy/stack.sh runs it (deploy/compose.yaml: nginx -> 2 API replicas + the web page, the
worker, PostgreSQL, Redis, an S3-compatible store), driven only through nginx's published port as a user drives it:

up (in order, each service healthy first) -> every replica ready -> a real leaf photo diagnosed by the starter model
-> a zip of labelled photos uploaded (its photos land in the bucket) -> a retraining that the worker container runs
-> the candidate promoted (every replica answers with it) -> rolled back (every replica answers v1 again) -> one
API replica killed while clients are predicting: only requests in flight at the kill may fail, and the service
goes on -> down --volumes, and nothing of the stack is left (containers, pod, network, volumes).

Minutes of CPU and the images built: run by scripts/test-containers.sh (LEAFDOC_CONTAINER_TESTS=1), not CI."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from leafdoc.imaging.photos import sha256_bytes
from tests.conftest import LEARNS, PLANTVILLAGE, TINY_CLASSES, make_leaf_folder
from tests.containers.engine import REPO, engine, run
from tests.integration.service_support import class_zip, leaf_photos
from tests.live_server import free_port, wait_for

TOKEN = f"stack-admin-{uuid.uuid4().hex}"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
REPLICAS = 2  # compose.yaml's deploy.replicas of `api`
CLIENTS = 4  # client threads predicting while a replica is killed: at most this many requests are in flight
# Photos the starter model (v1) diagnoses right (tests/containers/test_serve_image.py checks the same ones).
KNOWN = [("Corn_(maize)___Common_rust_", 0), ("Tomato___Early_blight", 0)]


def photo(cls: str, index: int) -> Path:
    if not (PLANTVILLAGE / cls).is_dir():
        pytest.skip(f"shared datasets not found at {PLANTVILLAGE}")
    return sorted((PLANTVILLAGE / cls).iterdir())[index]


def predict(base: str, path: Path, timeout: float = 60) -> dict:
    r = httpx.post(f"{base}/v1/predict", files={"file": (path.name, path.read_bytes(), "image/jpeg")}, timeout=timeout)
    assert r.status_code == 200, r.text
    return r.json()


def all_answer_version(base: str, path: Path, version: int, n: int = 2 * REPLICAS + 2) -> bool:
    """n predictions in a row (nginx spreads them over every replica) all come from `version`."""
    return all(predict(base, path)["model_version"] == version for _ in range(n))


class Stack:
    def __init__(self, root: Path):
        self.exe, self.env = engine()
        self.project = f"leafdoc-test-{uuid.uuid4().hex[:6]}"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env_file = root / "stack.env"
        env_file.write_text(
            f"POSTGRES_PASSWORD=pg-{uuid.uuid4().hex}\nAWS_ACCESS_KEY_ID=leafdoc\n"
            f"AWS_SECRET_ACCESS_KEY=s3-{uuid.uuid4().hex}\nLEAFDOC_ADMIN_TOKEN={TOKEN}\n"
            # No candidate passes the promotion rule (accuracy >= serving's + 2): promoting is the admin's act here.
            "LEAFDOC_PROMOTE_MARGIN=-2\n"
        )
        self.args = ["--project", self.project, "--port", str(self.port), "--env-file", str(env_file)]

    def stack(self, *cmd: str, timeout: float = 1800) -> str:
        return run(["bash", str(REPO / "deploy" / "stack.sh"), *cmd, *self.args], self.env, timeout=timeout)

    def podman(self, *argv: str, check: bool = True) -> str:
        return run([self.exe, *argv], self.env, check=check)

    def logs(self, container: str) -> str:
        done = subprocess.run([self.exe, "logs", container], env=self.env, capture_output=True, text=True, timeout=120)
        return done.stdout + done.stderr

    def containers(self, service: str | None = None, running: bool = False) -> list[str]:
        filters = ["--filter", f"label=com.docker.compose.project={self.project}"]
        if service:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        return sorted(self.podman("ps", *([] if running else ["-a"]), *filters, "--format", "{{.Names}}").split())

    def leftovers(self) -> dict[str, list[str]]:
        label = f"label=com.docker.compose.project={self.project}"
        return {
            "containers": self.containers(),
            "pods": [p for p in self.podman("pod", "ls", "--format", "{{.Name}}").split() if self.project in p],
            "networks": [n for n in self.podman("network", "ls", "--format", "{{.Name}}").split() if self.project in n],
            "volumes": self.podman("volume", "ls", "-q", "--filter", label).split(),
        }


def test_the_stack_end_to_end(tmp_path):
    s = Stack(tmp_path)
    if s.exe != "podman":
        pytest.skip("the stack test drives podman (deploy/stack.sh also runs docker compose, untested here)")
    for image in ("leafdoc-serve:latest", "leafdoc-worker:latest"):
        if s.podman("image", "inspect", image, check=False) == "":
            pytest.fail(f"no {image}: build it first (bash deploy/build-images.sh)")
    timings: dict[str, float] = {}
    start = time.monotonic()
    try:
        s.stack("up")
        timings["up"] = time.monotonic() - start
        exercise(s, tmp_path, timings)
    except BaseException:
        for service in ("api", "ui", "worker", "nginx", "minio", "minio-bucket"):
            logs = run(["bash", str(REPO / "deploy" / "stack.sh"), "logs", service, *s.args], s.env, check=False)
            print(logs[-3000:])
        raise
    finally:
        t = time.monotonic()
        s.stack("down", "--volumes", timeout=600)
        timings["down"] = time.monotonic() - t
        print("timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    # Nothing of the stack is left: no container (running or not), pod, network or volume.
    assert s.leftovers() == {"containers": [], "pods": [], "networks": [], "volumes": []}


def exercise(s: Stack, tmp_path: Path, timings: dict[str, float]) -> None:
    base = s.base
    # Up: every service of compose.yaml running, the replicas as compose.yaml says, the bucket job done.
    assert len(s.containers("api", running=True)) == REPLICAS
    for service in ("ui", "worker", "nginx", "postgres", "redis", "minio"):
        assert len(s.containers(service, running=True)) == 1, service
    [bucket_job] = s.containers("minio-bucket")
    assert s.podman("inspect", "--format", "{{.State.ExitCode}}", bucket_job).strip() == "0"
    ready = httpx.get(f"{base}/readyz", timeout=30).json()
    assert ready["ready"] is True and ready["checks"] == {"catalog": "ok", "model": "ok", "queue": "ok"}, ready
    page = httpx.get(f"{base}/ui/", timeout=60, follow_redirects=True)
    assert page.status_code == 200 and "gradio" in page.text.lower()  # the page, from the `ui` service

    # v1, the starter model seeded once for every replica, diagnoses real leaf photos right on all of them.
    models = httpx.get(f"{base}/v1/models", timeout=30).json()
    assert models["serving_version"] == 1 and [m["version"] for m in models["models"]] == [1]
    for cls, index in KNOWN:
        for _ in range(REPLICAS + 1):
            got = predict(base, photo(cls, index))
            assert got["top_k"][0]["label"] == cls and got["model_version"] == 1 and not got["abstained"], got
    corn = photo(*KNOWN[0])
    v1_labels = {t["label"] for t in predict(base, corn)["top_k"]}

    # Upload a zip of labelled photos through nginx: a new dataset, every photo in the bucket.
    leaves = make_leaf_folder(tmp_path / "leaves")
    t = time.monotonic()
    up = httpx.post(
        f"{base}/v1/uploads", params={"dataset": "tiny"}, headers=ADMIN, timeout=600,
        files={"file": ("leaves.zip", class_zip(leaves), "application/zip")},
    )  # fmt: skip
    timings["upload"] = time.monotonic() - t
    assert up.status_code == 201, up.text
    assert up.json()["added"] == len(leaf_photos(leaves)) == 3 * 6
    [ds] = [d for d in httpx.get(f"{base}/v1/datasets", timeout=30).json()["datasets"] if d["name"] == "tiny"]
    assert ds["latest"] == 1
    # What the bucket holds, asked from inside an API replica with its own settings (S3 endpoint and keys).
    keys = json.loads(
        s.podman(
            "exec", s.containers("api")[0], "python", "-c",
            "import boto3, json, os\n"
            "c = boto3.client('s3', endpoint_url=os.environ['LEAFDOC_S3_ENDPOINT_URL'])\n"
            "pages = c.get_paginator('list_objects_v2').paginate(Bucket='leafdoc', Prefix='store/')\n"
            "print(json.dumps([o['Key'] for p in pages for o in p.get('Contents', [])]))",
        )
    )  # fmt: skip
    for p in leaf_photos(leaves):
        sha = sha256_bytes(p.read_bytes())
        assert f"store/{sha[:2]}/{sha}" in keys, p

    # Retrain on it: the test suite's small model that learns (EfficientNet-Lite0's ImageNet weights, 32 px), from
    # scratch (the starter is 160 px, 34 classes), no field-photo check. The worker container runs it.
    t = time.monotonic()
    r = httpx.post(
        f"{base}/v1/training-jobs", headers=ADMIN, timeout=60,
        json={"dataset": "tiny", "warm_start": False, "options": {**LEARNS, "field_dirs": []}},
    )  # fmt: skip
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    job = wait_for(
        lambda: (
            (j := httpx.get(f"{base}/v1/training-jobs/{job_id}", timeout=30).json())["state"]
            in ("succeeded", "failed", "cancelled")
            and j
        ),
        1800,
        "the training job",
    )
    timings["retrain"] = time.monotonic() - t
    assert job["state"] == "succeeded", job.get("error")
    # The worker container ran it, no API replica did.
    [worker] = s.containers("worker")
    wait_for(lambda: f"job {job_id}: succeeded (candidate v2)" in s.logs(worker), 60, "the worker's log")
    assert f"job {job_id}: claimed by worker" in s.logs(worker)
    for replica in s.containers("api"):
        assert f"job {job_id}: claimed" not in s.logs(replica), replica
    assert job["candidate_version"] == 2 and job["promotion"]["promoted"] is False
    v2 = httpx.get(f"{base}/v1/models/2", timeout=30).json()
    assert v2["serving"] is False and v2["job_id"] == job_id
    assert all_answer_version(base, corn, 1)

    # Promote v2 through any replica: every replica answers with v2, whose labels are the tiny dataset's three.
    r = httpx.post(f"{base}/v1/models/2/promote", headers=ADMIN, json={"reason": "stack test"}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["serving_version"] == 2 and r.json()["previous_version"] == 1
    t = time.monotonic()
    wait_for(lambda: all_answer_version(base, corn, 2), 120, "every replica to answer with v2")
    timings["promote reached every replica"] = time.monotonic() - t
    got = predict(base, corn)
    assert {x["label"] for x in got["top_k"]} <= set(TINY_CLASSES) and got["model_version"] == 2, got
    assert {x["label"] for x in got["top_k"]} != v1_labels
    print(f"v2 on {corn.name}: {[(x['label'], round(x['probability'], 3)) for x in got['top_k']]}")

    # Roll back: every replica answers with v1 again, and right.
    r = httpx.post(f"{base}/v1/models/rollback", headers=ADMIN, timeout=120)
    assert r.status_code == 200 and r.json()["serving_version"] == 1, r.text
    wait_for(lambda: all_answer_version(base, corn, 1), 120, "every replica to answer with v1 again")
    got = predict(base, corn)
    assert got["top_k"][0]["label"] == KNOWN[0][0] and got["model_version"] == 1, got
    history = [(e["action"], e["version"]) for e in httpx.get(f"{base}/v1/models", timeout=30).json()["history"]]
    assert history == [("seed", 1), ("promote", 2), ("rollback", 1)]

    # Kill one API replica (SIGKILL: no draining) while CLIENTS threads predict through nginx.
    results: list[tuple[float, bool, str]] = []  # (when it ended, ok, what)
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=60) as c:
            body = corn.read_bytes()
            while not stop.is_set():
                try:
                    r = c.post(f"{base}/v1/predict", files={"file": (corn.name, body, "image/jpeg")})
                    ok = r.status_code == 200 and r.json()["top_k"][0]["label"] == KNOWN[0][0]
                    results.append((time.monotonic(), ok, str(r.status_code)))
                except httpx.HTTPError as exc:
                    results.append((time.monotonic(), False, type(exc).__name__))

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for th in threads:
        th.start()
    time.sleep(10)
    victim = s.containers("api")[1]
    killed_at = time.monotonic()
    s.podman("kill", "--signal", "KILL", victim)
    time.sleep(20)
    stop.set()
    for th in threads:
        th.join(timeout=120)
    before = [r for r in results if r[0] < killed_at]
    after = [r for r in results if r[0] >= killed_at]
    lost = [r for r in results if not r[1]]
    victim_now = s.podman("inspect", "--format", "{{.State.Status}}", victim).strip()
    print(
        f"kill {victim}: {len(before)} predictions before, {len(after)} after in 20 s, {len(lost)} lost "
        f"({sorted({r[2] for r in lost})}); {victim} is now {victim_now}"
    )
    assert all(ok for _, ok, _ in before)
    assert len(lost) <= CLIENTS, lost  # only requests in flight at the kill (nginx retries a prediction elsewhere)
    late = [r for r in after if r[0] > killed_at + 10]
    assert late and all(ok for _, ok, _ in late), late  # and the service went on with the other replicas
    assert httpx.get(f"{base}/readyz", timeout=30).json()["ready"] is True
