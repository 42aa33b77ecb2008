"""The web page's own process, for `leafdoc serve` with several API workers.

Gradio keeps each visit in the process that served it, so the page cannot be split over workers. `serve` starts
this process (`PageProcess`), serving only /ui on a Unix socket in a folder of its own (mode 0700: no other user of
the machine can connect), and each API worker forwards /ui to it (ui/proxy.py). The page is built on the first
visit, as in one worker (mount.py), and talks to the API at the server's public address: its predictions are
spread over the workers like any client's. It stops with `serve`, or by itself when `serve` is gone; if it dies
while `serve` runs, `serve` starts it again (its visits' sessions are lost; new visits work).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from leafdoc.runtime.parentwatch import on_parent_exit, stop_child
from leafdoc.runtime.serverlog import log_config

SOCKET_NAME = "page.sock"
SOCKET_ENV = "LEAFDOC_UI_PAGE_SOCKET"  # Settings.ui_page_socket: set for the API workers, not for the page
STOP_SECONDS = 10.0
RESTART_PAUSE_MAX = 60.0


def local_api_url(host: str, port: int) -> str:
    """The address at which this machine reaches `leafdoc serve --host host --port port`: loopback for a server
    on every interface."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    return f"http://{host}:{port}"


class PageProcess:
    """The page's process, started by `leafdoc serve` before its API workers and started again if it dies (see the
    module's docstring)."""

    def __init__(self, api_url: str, log_level: str = "info", say=print):
        self.folder = Path(tempfile.mkdtemp(prefix="leafdoc-page-"))  # short: a socket's path has at most 107 bytes
        self.socket = self.folder / SOCKET_NAME
        self.say = say
        self._env = {k: v for k, v in os.environ.items() if k != SOCKET_ENV}
        self._env.setdefault("LEAFDOC_UI_API_URL", api_url)
        self._cmd = [sys.executable, "-m", "leafdoc.ui.server", "--socket", str(self.socket)]
        self._cmd += ["--parent-pid", str(os.getpid()), "--log-level", log_level]
        self._stopping, self._lock = threading.Event(), threading.Lock()
        self.proc = subprocess.Popen(self._cmd, env=self._env)
        threading.Thread(target=self._keep_running, name="page-process", daemon=True).start()

    def _keep_running(self) -> None:
        """Start the process again when it exits while `serve` runs: at once after a long life, after up to a minute
        when it keeps dying young (a page that cannot start)."""
        pause = 1.0
        while True:
            started = time.monotonic()
            code = self.proc.wait()
            # Ctrl-C in a terminal (and `timeout`) signal the whole process group: the page may exit just before
            # `serve` begins to stop. A moment's wait keeps that from being reported as a crash to restart.
            if self._stopping.wait(0.5):
                return
            pause = 1.0 if time.monotonic() - started > RESTART_PAUSE_MAX else min(pause * 2, RESTART_PAUSE_MAX)
            self.say(f"the web page's process exited ({code}); starting it again in {pause:g} s")
            if self._stopping.wait(pause):
                return
            with self._lock:  # not while stop() runs
                if self._stopping.is_set():
                    return
                self.socket.unlink(missing_ok=True)
                self.proc = subprocess.Popen(self._cmd, env=self._env)

    def wait_ready(self, timeout: float = 60.0) -> bool:
        """Whether the process listens within `timeout` seconds (False: it exited, or is still starting)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.socket.exists():
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
        stop_child(self.proc, STOP_SECONDS + 10)
        shutil.rmtree(self.folder, ignore_errors=True)


def page_app(settings):
    """An ASGI app that serves the page at /ui and nothing else."""
    from starlette.applications import Starlette

    from leafdoc.ui.mount import mount_ui

    app = Starlette()
    mount_ui(app, settings, build_at_start=settings.ui_build_at_start)
    return app


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="leafdoc.ui.server", description="The web page's own process (see the code).")
    ap.add_argument("--socket", required=True, type=Path)
    ap.add_argument("--parent-pid", type=int)
    ap.add_argument("--log-level", default="info")
    opts = ap.parse_args(argv)

    import uvicorn

    from leafdoc.core.settings import Settings

    settings = Settings.load().model_copy(update={"ui_page_socket": None})
    if opts.parent_pid is not None:
        on_parent_exit(lambda: os.kill(os.getpid(), signal.SIGTERM), opts.parent_pid)
    uvicorn.run(
        page_app(settings),
        uds=str(opts.socket),
        log_level=opts.log_level,
        log_config=log_config(opts.log_level),  # leafdoc's loggers too: "the web page is built (s)"
        access_log=False,  # the API worker that forwarded the request logged it
        proxy_headers=True,  # the client's address, from X-Forwarded-For, set by the forwarding worker only
        forwarded_allow_ips="*",  # only processes that can open the socket (its folder is 0700) connect
        timeout_graceful_shutdown=STOP_SECONDS,  # event streams still open are cut then
    )


if __name__ == "__main__":
    main()
