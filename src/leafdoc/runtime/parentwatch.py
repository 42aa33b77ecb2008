"""Stop when the process that started this one is gone: written once for the four processes that need it.

The job worker beside `leafdoc serve` (service/worker.py), a job's training process (service/training.py),
`leafdoc serve --parent-pid` (service/run.py: the desktop app's own server, the tests' servers) and the API worker
processes of `leafdoc serve --workers N` (service/balance.py) each have a parent
that normally stops them; when the parent is killed or crashes instead, a daemon thread notices (its parent
process id changes, POSIX) and runs the process's own way of stopping. The other way round, `stop_child` is how
those parents stop a child: SIGTERM, then SIGKILL if it hangs."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable


def on_parent_exit(action: Callable[[], None], parent_pid: int | None = None, every: float = 1.0) -> threading.Thread:
    """Call `action()` once, from a daemon thread, when the parent (`parent_pid`, default: the current one) is
    gone. Checks every `every` seconds."""
    parent = os.getppid() if parent_pid is None else parent_pid

    def watch() -> None:
        while True:
            time.sleep(every)
            if os.getppid() != parent:
                action()
                return

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


def stop_child(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM `proc` (its own way of stopping), wait up to `timeout` seconds, then SIGKILL it; reaped either way."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
