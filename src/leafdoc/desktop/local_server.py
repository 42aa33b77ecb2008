"""The app's own leafdoc server: `leafdoc serve` on a free loopback port, with a fresh admin token.

Started when the app is given no server address; stopped when the app closes. It uses the usual
settings (LEAFDOC_HOME and friends from the environment, embedded defaults otherwise), so it sees the
same catalog and models as `leafdoc serve` run by hand. The admin token is made up for this run and
given to the server through LEAFDOC_ADMIN_TOKEN, so the Retrain tab works without asking for one.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from leafdoc.api_client import ApiError, LeafdocClient
from leafdoc.runtime.parentwatch import stop_child

START_TIMEOUT = 180.0  # first start seeds the model registry; a busy 2-core laptop needs a while


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    def __init__(self, log_path: Path | None = None):
        self.token = secrets.token_urlsafe(24)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="leafdoc-desktop-server-", suffix=".log")
            os.close(fd)
            log_path = Path(name)
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "LEAFDOC_ADMIN_TOKEN": self.token}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        cmd = [
            sys.executable,
            "-m",
            "leafdoc.desktop.serve_child",
            str(os.getpid()),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:].strip()
        except OSError:
            return ""

    def wait_ready(self, timeout: float = START_TIMEOUT, cancelled: Callable[[], bool] = lambda: False) -> dict:
        """Block (in a worker thread) until the server answers /readyz; raises ApiError if it cannot start."""
        deadline = time.monotonic() + timeout
        with LeafdocClient(self.base) as client:
            while True:
                if self.proc is None or self.proc.poll() is not None:
                    raise ApiError(
                        "The built-in leafdoc server stopped while starting.",
                        hint=f"Its log ({self.log_path}) ends with:\n{self.log_tail()}",
                    )
                if cancelled():
                    raise ApiError("Stopped waiting for the built-in server.")
                try:
                    ready = client.ready()
                    if ready.get("ready"):
                        return ready
                except ApiError:
                    pass  # not listening yet
                if time.monotonic() > deadline:
                    raise ApiError(
                        f"The built-in leafdoc server did not get ready within {timeout:.0f} s.",
                        hint=f"Its log is {self.log_path}.",
                    )
                time.sleep(0.3)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (serve stops its consumer and exits), then kill if it hangs."""
        if self.proc is not None:
            stop_child(self.proc, timeout)
