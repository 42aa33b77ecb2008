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
