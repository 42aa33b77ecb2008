"""The service for the desktop app (leafdoc.service.run, as `leafdoc serve`), stopping by itself when the
app that started it is gone.

The app stops its server on a normal exit; this covers the rest (the app killed or crashed): given the app's
process id, the serve runtime watches it and, once it is gone, shuts down cleanly (its training consumer too),
as `leafdoc serve --parent-pid` does.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    parent_pid, args = int(argv[0]), argv[1:]
    import argparse

    from leafdoc.core.settings import Settings
    from leafdoc.service.run import serve

    ap = argparse.ArgumentParser(prog="leafdoc.desktop.serve_child")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--log-level", default="info")
    opts = ap.parse_args(args)
    settings = Settings.load()
    settings.ensure_home()
    # One person at a desk sends one photo at a time: one worker, one copy of the model, a quicker start.
    serve(settings, opts.host, opts.port, workers=1, log_level=opts.log_level, parent_pid=parent_pid)


if __name__ == "__main__":
    main(sys.argv[1:])
