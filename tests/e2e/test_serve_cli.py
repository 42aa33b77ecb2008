"""`leafdoc serve` as a user runs it: one command, a real HTTP server (a worker process per CPU) with its training
consumer beside it, answering predictions and running jobs, and stopping cleanly (workers and consumer too) on
SIGTERM."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
from tests.conftest import alive, consumer_and_api_workers
from tests.live_server import free_port, wait_for

TOKEN = "e2e-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def api_workers_per_cpu() -> tuple[int, int]:
    """How many API workers an API-only `leafdoc serve` runs here, and the CPUs it may use."""
    from leafdoc.service.run import usable_cpus

    cpus = usable_cpus()
    return min(cpus, 4), cpus


def children(serve_pid: int, n: int) -> tuple[int, list[int]]:
    """The serve process's consumer and its `n` API workers, once all are up (one worker runs in the serve
    process itself)."""
    [consumer], api_workers = wait_for(
        lambda: (c := consumer_and_api_workers(serve_pid))[0] and len(c[1]) == (n if n > 1 else 0) and c,
        60,
        "the consumer and the API workers",
    )
    return consumer, api_workers


@pytest.fixture
def server(tmp_path, tiny_model):
    port = free_port()
    env = {
        **os.environ,
        "LEAFDOC_HOME": str(tmp_path / "home"),
        "LEAFDOC_MODEL_DIR": str(tiny_model),
        "LEAFDOC_ADMIN_TOKEN": TOKEN,
        "LEAFDOC_WORKER_POLL_SECONDS": "0.2",
        "LEAFDOC_UI": "false",  # an API server (the web page's process: the test below)
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

    # Told nothing, it runs one API worker per CPU it may use (at most 4): on 2 CPUs, 2
    # workers predicting on their event loops, where one worker in its threadpool answered 0.73 as many a second.
    n, cpus = api_workers_per_cpu()
    said = log.read_text()
    assert f"{n} API worker{'s' * (n > 1)} (one per CPU" in said, said
    where = "on each worker's event loop" if n >= cpus else "in each worker's threadpool"  # over 4 CPUs: threadpool
    assert f"single predictions run {where} ({n} worker" in said, said
    consumer, api_workers = children(proc.pid, n)

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
    wait_for(lambda: not any(alive(w) for w in api_workers), 30, "the API workers to stop")


def test_serve_killed_outright_leaves_no_api_worker_nor_consumer_behind(server):
    """SIGKILL to `leafdoc serve` (an OOM kill, `kill -9`): uvicorn's supervisor cannot stop its workers, so each
    API worker notices its parent is gone and shuts down, as the consumer does; none keeps the port or its model."""
    proc, base, log = server
    consumer, api_workers = children(proc.pid, api_workers_per_cpu()[0])
    proc.kill()
    proc.wait()
    wait_for(lambda: not any(alive(w) for w in api_workers), 30, "the API workers to stop once serve was killed")
    wait_for(lambda: not alive(consumer), 30, "the consumer to stop once serve was killed")


PARENT = """
import subprocess, sys, time
log = open(sys.argv[1], "wb")
serve = subprocess.Popen(sys.argv[2:] + ["--parent-pid", str(__import__("os").getpid())], stdout=log, stderr=log)
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
    log = tmp_path / "serve.log"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, log, *cmd], env=env, stdout=subprocess.PIPE, text=True)
    serve_pid = int(parent.stdout.readline())
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(f"{base}/healthz", timeout=2).status_code == 200, 120, "the server to answer")
        n, _ = api_workers_per_cpu()  # with the web page (the default) too: a worker per CPU
        consumer, api_workers = children(serve_pid, n)
        said = " ".join(log.read_text().split())
        assert f"{n} API worker{'s' * (n > 1)} (one per CPU" in said, said
        pages = [int(m) for m in re.findall(r"the web page runs in a process of its own \(pid (\d+)\)", said)]
        assert len(pages) == (n > 1), said  # with one worker the page is in it
        assert alive(serve_pid) and alive(consumer) and all(map(alive, pages))  # the parent is alive: all serve on
        parent.kill()
        parent.wait()
        wait_for(lambda: not alive(serve_pid), 60, "the server to stop once its parent was killed")
        wait_for(lambda: not alive(consumer), 30, "the consumer to stop with it")
        wait_for(lambda: not any(alive(w) for w in api_workers), 30, "the API workers to stop with it")
        wait_for(lambda: not any(alive(p) for p in pages), 30, "the web page's process to stop with it")
    finally:
        parent.kill()
        if alive(serve_pid):
            os.kill(serve_pid, signal.SIGKILL)
