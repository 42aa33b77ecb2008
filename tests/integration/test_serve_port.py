"""`leafdoc serve` on a port another program listens on stops at once, naming the port and what to do. uvicorn said
only "ERROR: [Errno 98] Address already in use", after the registry was seeded and the web page's process and the
training consumer had started; and the lab guide's `until curl .../readyz` loop was answered by the other program."""

from __future__ import annotations

import socket
import subprocess
import sys
import time


def test_a_port_in_use_is_named_before_anything_starts(tmp_path):
    with socket.socket() as other:  # another program, listening
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        home = tmp_path / "home"
        env = {"LEAFDOC_HOME": str(home), "PATH": "/usr/bin:/bin"}
        started = time.monotonic()
        cmd = [sys.executable, "-m", "leafdoc.cli.main", "serve", "--port", str(port), "--workers", "2"]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1, said
    assert f"port {port} on 127.0.0.1 is in use by another program" in said and "--port" in said, said
    assert "training consumer started" not in said and "web page runs" not in said, said  # nothing was started
    assert not (home / "catalog.sqlite").exists()  # nor the data home's registry seeded
    assert time.monotonic() - started < 60


def test_a_free_port_is_left_free():
    from leafdoc.service.run import check_port_free

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    check_port_free("127.0.0.1", port)  # nothing raised: the port is free
    with socket.socket() as again:  # ...and still free: the probe let it go
        again.bind(("127.0.0.1", port))
