"""The serving image as built (deploy/build-images.sh serve), run as Kubernetes runs it (api.yaml): a read-only root
filesystem with a writable data home and /tmp, 2 CPUs and 2 GiB. It gets ready from the starter model it carries,
answers a real leaf photo with the answer leafdoc gives in process for the same model, has no TensorFlow, runs as
its own user and keeps its HEALTHCHECK."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from leafdoc.inference.predictor import Predictor
from tests.conftest import PLANTVILLAGE
from tests.containers.engine import REPO, engine, run
from tests.live_server import free_port, wait_for

IMAGE = "leafdoc-serve:latest"
# One photo per crop, each of a class the starter model knows.
PHOTOS = [
    ("Tomato___Early_blight", 0),
    ("Corn_(maize)___Common_rust_", 0),
    ("Apple___Cedar_apple_rust", 0),
]


@pytest.fixture(scope="module")
def served():
    """The image running with a published port: (base URL, engine, env, container name)."""
    exe, env = engine()
    if subprocess.run([exe, "image", "inspect", IMAGE], env=env, capture_output=True).returncode != 0:
        pytest.fail(f"no {IMAGE}: build it first (bash deploy/build-images.sh serve)")
    name, port = f"leafdoc-serve-test-{uuid.uuid4().hex[:8]}", free_port()
    run(
        [exe, "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000", "--read-only",
         "-v", "/var/lib/leafdoc", "--tmpfs", "/tmp", "--cpus", "2", "--memory", "2g",
         "-e", "LEAFDOC_UI=false", IMAGE],
        env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        yield base, exe, env, name
    except BaseException:
        print(run([exe, "logs", name], env, check=False)[-3000:])
        raise
    finally:
        run([exe, "rm", "-f", "-v", name], env, check=False)


def test_the_serving_image_gets_ready_from_its_starter_model(served):
    base, exe, env, name = served
    start = time.monotonic()
    ready = wait_for(lambda: httpx.get(f"{base}/readyz", timeout=5).json().get("ready") and True, 180, "/readyz")
    print(f"ready {time.monotonic() - start:.1f} s after the test started waiting")
    body = httpx.get(f"{base}/readyz", timeout=5).json()
    assert ready and body["ready"] is True, body
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200


def test_the_serving_image_answers_a_leaf_photo_as_leafdoc_does_in_process(served):
    base, exe, env, name = served
    wait_for(lambda: httpx.get(f"{base}/readyz", timeout=5).json().get("ready"), 180, "/readyz")
    own = Predictor(REPO / "models" / "starter")
    for cls, index in PHOTOS:
        if not (PLANTVILLAGE / cls).is_dir():
            pytest.skip(f"shared datasets not found at {PLANTVILLAGE}")
        photo: Path = sorted((PLANTVILLAGE / cls).iterdir())[index]
        r = httpx.post(f"{base}/v1/predict", files={"file": (photo.name, photo.read_bytes(), "image/jpeg")}, timeout=60)
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["top_k"][0]["label"] == cls, (photo, got["top_k"])
        assert got["abstained"] is False and got["model_version"] == 1 and got["advice"], got
        expected = own.predict_files([photo])[0]
        assert [t["label"] for t in got["top_k"]] == [t.label for t in expected.top_k]
        for t, e in zip(got["top_k"], expected.top_k, strict=True):
            assert t["probability"] == pytest.approx(e.probability, abs=1e-4)


def test_the_serving_image_has_no_tensorflow_runs_as_leafdoc_and_keeps_its_healthcheck(served):
    base, exe, env, name = served
    probe = "import importlib.util, os; print(importlib.util.find_spec('tensorflow') is None, os.getuid())"
    assert run([exe, "exec", name, "python", "-c", probe], env).split() == ["True", "10001"]
    inspected = json.loads(run([exe, "image", "inspect", IMAGE], env))[0]
    check = inspected.get("Healthcheck") or inspected["Config"].get("Healthcheck")  # podman's place, docker's
    assert check and "/healthz" in " ".join(check["Test"]), "HEALTHCHECK lost: build with --format docker"
    if exe == "podman":  # the check itself passes in the running container (podman runs it on demand here)
        assert subprocess.run([exe, "healthcheck", "run", name], env=env, capture_output=True).returncode == 0
