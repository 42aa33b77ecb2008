"""What `leafdoc serve` prints: which model version it serves, with which file (an operator reads this first);
what `leafdoc worker` prints: its queue and catalog, not the catalog library's chatter."""

import os
import subprocess
import sys
from pathlib import Path

import httpx


def test_serve_says_which_model_version_and_file_it_serves(live_server):
    answer = httpx.get(f"{live_server.base}/readyz", timeout=10).json()
    line = f"serving model version {answer['model_version']} with its {answer['model_file']}"
    assert line in live_server.log.read_text()


def test_serve_says_where_single_predictions_run(live_server):
    from leafdoc.service.run import usable_cpus

    cpus = usable_cpus()  # the live server runs one worker, on this machine's CPUs
    where = "on each worker's event loop" if cpus == 1 else "in each worker's threadpool"
    assert f"single predictions run {where} (1 worker for {cpus} CPU" in live_server.log.read_text()


def test_worker_prints_its_queue_not_the_migration_librarys_chatter(tmp_path):
    exe = Path(sys.executable).with_name("leafdoc")
    env = {**os.environ, "LEAFDOC_HOME": str(tmp_path / "home")}
    done = subprocess.run([str(exe), "worker", "--burst"], env=env, capture_output=True, text=True, timeout=120)
    said = done.stdout + done.stderr
    assert done.returncode == 0 and "worker: queue" in said, said
    assert "alembic" not in said and "Context impl" not in said, said  # 9 lines of it on a fresh home before


def test_serve_warns_of_an_admin_token_short_enough_to_guess(tmp_path):
    """LEAFDOC_ADMIN_TOKEN=admin was taken in silence; the routes it guards upload, retrain and promote."""
    import time

    from tests.live_server import free_port

    from leafdoc.core.settings import MIN_ADMIN_TOKEN

    exe = Path(sys.executable).with_name("leafdoc")
    env = {**os.environ, "LEAFDOC_HOME": str(tmp_path / "home"), "LEAFDOC_ADMIN_TOKEN": "zq7x9", "COLUMNS": "300"}
    env["LEAFDOC_UI"] = "false"
    args = [str(exe), "serve", "--port", str(free_port()), "--workers", "1", "--no-consumer"]
    with subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        said, deadline = [], time.monotonic() + 120
        try:
            for line in proc.stdout:
                said.append(line)
                if "API worker" in line or "single predictions run" in line or time.monotonic() > deadline:
                    break  # said before the workers start, after the settings are read
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    text = " ".join("".join(said).split())
    assert "LEAFDOC_ADMIN_TOKEN is 5 characters" in text and f"Use {MIN_ADMIN_TOKEN} or more random" in text, text
    assert "zq7x9" not in text  # the token itself is never printed
