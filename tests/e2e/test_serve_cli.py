"""`leafdoc serve` as a user runs it: one command, a real HTTP server with its training consumer beside
it, answering predictions and running jobs, and stopping cleanly (consumer too) on SIGTERM."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
from tests.conftest import alive, children_of
from tests.live_server import free_port, wait_for

TOKEN = "e2e-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def server(tmp_path, tiny_model):
    port = free_port()
    env = {
        **os.environ,
        "LEAFDOC_HOME": str(tmp_path / "home"),
        "LEAFDOC_MODEL_DIR": str(tiny_model),
        "LEAFDOC_ADMIN_TOKEN": TOKEN,
        "LEAFDOC_WORKER_POLL_SECONDS": "0.2",
    }
    exe = Path(sys.executable).with_name("leafdoc")
    base = f"http://127.0.0.1:{port}"
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen([str(exe), "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: httpx.get(f"{base}/healthz", timeout=2).status_code == 200, 120, "the server to answer")
            yield proc, base, tmp_path / "serve.log"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_serve_predicts_over_http_runs_jobs_and_stops_cleanly(server, leaf_folder, tiny_model):
    proc, base, log = server
    photo = next((leaf_folder / "Apple___healthy").iterdir()).read_bytes()
    r = httpx.post(f"{base}/v1/predict", files={"file": ("leaf.jpg", photo, "image/jpeg")}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["model_version"] == 1
    # The served answer is the model folder's own on that photo: each label with its probability.
    from leafdoc.inference.predictor import Predictor

    own = Predictor(tiny_model)
    probs = own.predict_arrays(own.preprocess(photo)[None])["probabilities"][0]
    answered = {t["label"]: t["probability"] for t in r.json()["top_k"]}
    assert answered == pytest.approx(dict(zip(own.labels, probs.tolist(), strict=True)), abs=1e-5)
    assert httpx.get(f"{base}/readyz").json()["ready"] is True

    [consumer] = wait_for(lambda: children_of(proc.pid), 30, "the consumer process")

    # The consumer beside the API takes jobs: this one fails fast (one class) and says why.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in sorted((leaf_folder / "Apple___healthy").iterdir()):
            z.writestr(f"Apple___healthy/{p.name}", p.read_bytes())
    up = httpx.post(f"{base}/v1/uploads?dataset=one", headers=ADMIN, files={"file": ("one.zip", buf.getvalue())})
    assert up.status_code == 201, up.text
    job = httpx.post(f"{base}/v1/training-jobs", headers=ADMIN, json={"dataset": "one"}).json()
    done = wait_for(
        lambda: (j := httpx.get(f"{base}/v1/training-jobs/{job['id']}").json())["state"] == "failed" and j,
        120,
        "the consumer to run the job",
    )
    assert "at least 2" in done["error"]

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
    wait_for(lambda: not alive(consumer), 30, "the consumer to stop")


PARENT = """
import subprocess, sys, time
serve = subprocess.Popen(sys.argv[1:] + ["--parent-pid", str(__import__("os").getpid())])
print(serve.pid, flush=True)
time.sleep(120)
"""


def test_serve_with_parent_pid_stops_itself_and_its_consumer_when_the_parent_is_killed(tmp_path, tiny_model):
    """`leafdoc serve --parent-pid` (what the desktop app and the tests' servers use): the parent killed outright,
    no teardown, and the server shuts down by itself, its training consumer too; nothing is left running."""
    port = free_port()
    env = {**os.environ, "LEAFDOC_HOME": str(tmp_path / "home"), "LEAFDOC_MODEL_DIR": str(tiny_model)}
    exe = Path(sys.executable).with_name("leafdoc")
    cmd = [str(exe), "serve", "--port", str(port)]
    parent = subprocess.Popen([sys.executable, "-c", PARENT, *cmd], env=env, stdout=subprocess.PIPE, text=True)
    serve_pid = int(parent.stdout.readline())
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(f"{base}/healthz", timeout=2).status_code == 200, 120, "the server to answer")
        [consumer] = wait_for(lambda: children_of(serve_pid), 30, "the consumer process")
        assert alive(serve_pid) and alive(consumer)  # the parent is alive: the server keeps serving
        parent.kill()
        parent.wait()
        wait_for(lambda: not alive(serve_pid), 60, "the server to stop once its parent was killed")
        wait_for(lambda: not alive(consumer), 30, "the consumer to stop with it")
    finally:
        parent.kill()
        if alive(serve_pid):
            os.kill(serve_pid, signal.SIGKILL)
