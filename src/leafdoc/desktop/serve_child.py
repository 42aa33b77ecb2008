"""`leafdoc serve` for the desktop app, stopping by itself when the app that started it is gone.

The app stops its server on a normal exit; this covers the rest (the app killed or crashed): a
thread checks every second whether the parent process still exists and, when not, sends this
process SIGTERM, which `leafdoc serve` handles by shutting down cleanly (its training consumer too).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def main(argv: list[str]) -> None:
    parent_pid, args = int(argv[0]), argv[1:]
    if os.name == "posix":
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="parent-watch").start()
    from leafdoc.cli import main as cli_main

    sys.argv = ["leafdoc", "serve", *args]
    cli_main()


if __name__ == "__main__":
    main(sys.argv[1:])
