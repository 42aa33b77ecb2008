"""The load test's locustfile, run headless for a few seconds against a live `leafdoc serve`: it sends
real leaf photos (single and batch predictions, catalogue reads) and every request succeeds."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
from tests.conftest import REPO, make_leaf_folder


def test_locustfile_runs_headless_against_a_live_server_without_failures(live_server, tmp_path):
    if importlib.util.find_spec("locust") is None:
        pytest.skip("locust is not installed (the dev extra)")
    from loadtest.run import read_stats

    images = make_leaf_folder(tmp_path / "photos", per_class=3)
    cmd = [sys.executable, "-m", "locust", "-f", str(REPO / "loadtest" / "locustfile.py"), "--headless"]
    cmd += ["-u", "2", "-r", "2", "-t", "5s", "-H", live_server.base, "--only-summary"]
    cmd += ["--images", str(images), "--csv", str(tmp_path / "smoke"), "--exit-code-on-error", "1"]
    done = subprocess.run(
        cmd, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    stats = read_stats(tmp_path / "smoke")
    assert stats["predict single"]["requests"] > 0
    assert stats["Aggregated"]["requests"] > stats["predict single"]["requests"]  # the reads ran too
    failed = {name: row["failures"] for name, row in stats.items() if row["failures"]}
    assert not failed, f"failed requests: {failed}\n{done.stderr[-3000:]}"
