"""parentwatch: a process whose parent dies runs its way of stopping (the worker beside `leafdoc serve`, a job's
training process and the desktop app's server all rely on it)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.integration

CHILD = """
import os, sys, time
from leafdoc.parentwatch import on_parent_exit
done = sys.argv[1]
on_parent_exit(lambda: (open(done, "w").write(str(os.getpid())), os._exit(0)), every=0.1)
print("watching", flush=True)
time.sleep(60)
"""

PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], stdout=subprocess.PIPE, text=True)
print(child.pid, flush=True)
print(child.stdout.readline().strip(), flush=True)
time.sleep(60)
"""


def test_a_process_stops_its_own_way_once_its_parent_is_killed(tmp_path):
    done = tmp_path / "stopped"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, str(done)], stdout=subprocess.PIPE, text=True)
    try:
        child_pid = int(parent.stdout.readline())
        assert parent.stdout.readline().strip() == "watching"
        time.sleep(0.5)
        assert not done.exists()  # the parent is alive: nothing happens
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert done.exists() and done.read_text() == str(child_pid)
    finally:
        parent.kill()
