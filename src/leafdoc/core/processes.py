"""Whether a process of this host still runs: how a lock, a worker or a half-written folder is known to be dead."""

from __future__ import annotations

import os
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Whether process `pid` of this host runs (a zombie, killed and not yet reaped by its parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: a zombie still answers kill(0); its state in /proc ("pid (name) S ...") says it is dead
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    state = stat.rfind(b")") + 2
    return stat[state : state + 1] != b"Z"
