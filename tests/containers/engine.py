"""The container engine for tests/containers, set up as deploy/engine.sh sets it up for the build scripts.

These tests build or run images, so they need podman (or docker) and minutes of CPU: CI (scripts/test.sh) does not run
them. They run from scripts/test-containers.sh, which sets LEAFDOC_CONTAINER_TESTS=1; without it, or without an
engine, they are skipped with the reason."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OPT_IN = "LEAFDOC_CONTAINER_TESTS"


def engine() -> tuple[str, dict[str, str]]:
    """(podman or docker, the environment to run it with), or skip with the reason."""
    if os.environ.get(OPT_IN) != "1":
        pytest.skip(f"container tests run from scripts/test-containers.sh ({OPT_IN}=1): they build and run images")
    if not (shutil.which("podman") or shutil.which("docker")):
        pytest.skip("no container engine (podman or docker) on this machine: docs/deploy.md, 'Building the images'")
    out = subprocess.run(
        ["bash", "-c", 'source deploy/engine.sh && leafdoc_engine_setup && echo "$ENGINE ${CONTAINERS_CONF:-}"'],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    env = dict(os.environ)
    if len(out) > 1:
        env["CONTAINERS_CONF"] = out[1]
    return out[0], env


def run(argv: list[str], env: dict[str, str], timeout: float = 600, check: bool = True) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout
