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
from leafdoc.runtime.parentwatch import on_parent_exit
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


def kill_and_see_the_child_stop(parent: subprocess.Popen, done, child_pid: int) -> None:
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert done.exists() and done.read_text() == str(child_pid)


def test_a_process_stops_its_own_way_once_its_parent_is_killed(tmp_path):
    done = tmp_path / "stopped"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, str(done)], stdout=subprocess.PIPE, text=True)
    try:
        child_pid = int(parent.stdout.readline())
        assert parent.stdout.readline().strip() == "watching"
        time.sleep(0.5)
        assert not done.exists()  # the parent is alive: nothing happens
        kill_and_see_the_child_stop(parent, done, child_pid)
    finally:
        parent.kill()


LATE_CHILD = """
import os, sys, time
from leafdoc.runtime.parentwatch import on_parent_exit
done, parent = sys.argv[1], int(sys.argv[2])
print("starting", flush=True)
time.sleep(1.5)  # still starting (an API worker loading its model) when its parent is killed
on_parent_exit(lambda: (open(done, "w").write(str(os.getpid())), os._exit(0)), parent, every=0.1)
time.sleep(60)
"""

LATE_PARENT = """
import os, subprocess, sys, time
cmd = [sys.executable, "-c", sys.argv[1], sys.argv[2], str(os.getpid())]
child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
print(child.pid, flush=True)
print(child.stdout.readline().strip(), flush=True)
time.sleep(60)
"""


def test_a_parent_killed_before_the_watch_starts_is_noticed_from_the_pid_it_was_given(tmp_path):
    """Found when `leafdoc serve` was killed outright while its second API worker was still loading: that worker
    read its parent's pid only when it started watching, got init's, and kept running. Given the pid from before
    it started (TurnProcess records the supervisor's), it stops at its first check."""
    done = tmp_path / "stopped"
    parent = subprocess.Popen(
        [sys.executable, "-c", LATE_PARENT, LATE_CHILD, str(done)], stdout=subprocess.PIPE, text=True
    )
    try:
        child_pid = int(parent.stdout.readline())
        assert parent.stdout.readline().strip() == "starting"
        kill_and_see_the_child_stop(parent, done, child_pid)  # before the child watches
    finally:
        parent.kill()


def test_serves_api_workers_watch_the_supervisor_that_started_them():
    import os

    import uvicorn

    from leafdoc.service.balance import TurnProcess

    process = TurnProcess(uvicorn.Config("leafdoc.service.app:create_app", factory=True), [])
    assert process.server.supervisor_pid == os.getpid()
