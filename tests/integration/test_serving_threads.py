"""An API worker runs NumPy's BLAS on one thread (service/serving.py, one_blas_thread): OpenBLAS's threads
busy-wait for each other, and concurrent requests made the not-a-leaf score cost 5-10 times the CPU on 2 shared
cores. Checked in a process of its own: the setting is process-wide."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CHILD = """
import json
import numpy  # loads its BLAS, so threadpoolctl sees it
import threadpoolctl

before = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
from leafdoc.service.app import create_app

app = create_app()
assert app.state.leafdoc.holder.loaded is not None, "no model loaded"
blas = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
print(json.dumps({"before": before, "blas": blas}))
"""


def test_an_api_worker_runs_numpys_blas_on_one_thread(tmp_path, tiny_model):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one CPU: BLAS runs one thread here whatever leafdoc does")
    env = {
        **os.environ,
        "LEAFDOC_HOME": str(tmp_path / "home"),
        "LEAFDOC_MODEL_DIR": str(tiny_model),
        "LEAFDOC_UI": "false",
    }
    env.pop("OMP_NUM_THREADS", None)
    env.pop("OPENBLAS_NUM_THREADS", None)
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["before"] and max(got["before"]) > 1, got  # OpenBLAS's default: a thread per core
    assert got["blas"] and set(got["blas"]) == {1}, got
