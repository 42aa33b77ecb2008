"""The service for the desktop app (leafdoc.service.run, as `leafdoc serve`), stopping by itself when the
app that started it is gone.

The app stops its server on a normal exit; this covers the rest (the app killed or crashed): a
thread checks every second whether the parent process still exists and, when not, sends this
process SIGTERM, which `leafdoc serve` handles by shutting down cleanly (its training consumer too).
"""

from __future__ import annotations

import os
import signal
import sys

from leafdoc.parentwatch import on_parent_exit


def main(argv: list[str]) -> None:
    parent_pid, args = int(argv[0]), argv[1:]
    if os.name == "posix":
        on_parent_exit(lambda: os.kill(os.getpid(), signal.SIGTERM), parent_pid)
    import argparse

    from leafdoc.service.run import serve
    from leafdoc.settings import Settings

    ap = argparse.ArgumentParser(prog="leafdoc.desktop.serve_child")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--log-level", default="info")
    opts = ap.parse_args(args)
    settings = Settings.load()
    settings.ensure_home()
    serve(settings, opts.host, opts.port, log_level=opts.log_level)


if __name__ == "__main__":
    main(sys.argv[1:])
