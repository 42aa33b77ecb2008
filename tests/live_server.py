"""A real `leafdoc serve` process for tests that talk HTTP (the client, the web page, the desktop app).

It serves a copy of the session's tiny model whose abstention threshold is lowered so that it answers
(the tiny model is barely better than chance, so its calibrated threshold abstains on almost everything),
holds the admin token, and has a small real dataset ingested, so every tab has something to show.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

TOKEN = "live-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
READY_SECONDS = 300  # a server starting beside a training run and other tests took 250 s to answer on two cores


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _parse_response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One whole HTTP response (with Content-Length) read from a raw socket: status, headers (lower-case), body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed a connection without an answer"
        data += chunk
    status, headers, body = _parse_response(data)
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return status, headers, body


def read_responses(sock: socket.socket, n: int) -> list[tuple[int, dict[str, str], bytes]]:
    """`n` whole HTTP responses (each with Content-Length) read from a raw socket, in order: pipelined responses
    often come in one read, which `read_response` (one response, the rest of the read dropped) would lose."""
    data, out = b"", []
    while len(out) < n:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"the server closed a connection after {len(out)} of {n} answers"
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        status, headers, _ = _parse_response(head + b"\r\n\r\n")
        length = int(headers["content-length"])
        while len(rest) < length:
            chunk = sock.recv(65536)
            assert chunk, "the server closed a connection in the middle of an answer"
            rest += chunk
        out.append((status, headers, rest[:length]))
        data = rest[length:]
    return out


def read_until_closed(sock: socket.socket) -> tuple[float, int, dict[str, str], bytes]:
    """Everything the server sends until it closes the connection: how long that took, status, headers, body."""
    start, data = time.monotonic(), b""
    while chunk := sock.recv(65536):
        data += chunk
    return time.monotonic() - start, *_parse_response(data)


def uvicorn_in_thread(config) -> tuple:
    """A uvicorn server (`config`: a uvicorn.Config) run in a thread of this process, once it has started: (server,
    thread). Stop it with `server.should_exit = True` and `thread.join()`."""
    import threading

    import uvicorn

    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    return server, thread


def wait_for(predicate, timeout: float, what: str, every: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def answering_copy(model_dir: Path, dest: Path, min_confidence: float = 0.0) -> Path:
    """A copy of a model folder whose card answers above `min_confidence` (no OOD thresholds)."""
    shutil.copytree(model_dir, dest)
    card = json.loads((dest / "card.json").read_text())
    card["abstain"] = {"min_confidence": min_confidence}
    card.pop("ood", None)
    (dest / "card.json").write_text(json.dumps(card))
    return dest


@dataclass
class LiveServer:
    base: str
    proc: subprocess.Popen
    home: Path
    log: Path
    token: str = TOKEN

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(
    root: Path,
    model_dir: Path,
    dataset: Path | None = None,
    workers: int = 1,
    ready_within: float = READY_SECONDS,
    **env_extra: str,
) -> LiveServer:
    """Start `leafdoc serve` (`--workers workers`) on a free port with its data home under root; ingest
    `dataset` as `tiny` first; fail if it is not ready within `ready_within` seconds."""
    root.mkdir(parents=True, exist_ok=True)
    home = root / "home"
    env = {
        **os.environ,
        "LEAFDOC_HOME": str(home),
        "LEAFDOC_MODEL_DIR": str(model_dir),
        "LEAFDOC_ADMIN_TOKEN": TOKEN,
        "LEAFDOC_DEFAULT_DATASET": "tiny",
        "LEAFDOC_WORKER_POLL_SECONDS": "0.2",
        "LEAFDOC_MODEL_CHECK_SECONDS": "0",
        # Most tests never open the page: its process builds it on the first visit, sparing a test server's start
        # the seconds of CPU Gradio takes (test_serve_workers checks the build at start, the default).
        "LEAFDOC_UI_BUILD_AT_START": "false",
        # A test server never sheds predictions (503 busy) unless its test asks (test_overload): a one-second stall of
        # a loaded two-core machine is not the overload these tests are about (as service_settings for in-process apps)
        "LEAFDOC_SHED_AFTER_SECONDS": "0",
        **env_extra,
    }
    exe = Path(sys.executable).with_name("leafdoc")
    if dataset is not None:
        subprocess.run(
            [str(exe), "ingest", str(dataset), "--dataset", "tiny"], env=env, check=True, capture_output=True
        )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = root / "serve.log"
    with open(log, "wb") as out:
        # --parent-pid: a test run killed part-way (no teardown) leaves no server behind
        cmd = [str(exe), "serve", "--port", str(port), "--workers", str(workers), "--parent-pid", str(os.getpid())]
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = LiveServer(base, proc, home, log)
    try:
        ready = lambda: httpx.get(f"{base}/readyz", timeout=2).status_code == 200  # noqa: E731
        wait_for(ready, ready_within, "the server to be ready")
    except AssertionError:
        server.stop()
        raise AssertionError("leafdoc serve did not start:\n" + log.read_text()[-3000:]) from None
    return server


def api_workers(server) -> list:
    """The worker processes of a `leafdoc serve --workers N` (uvicorn's spawned children)."""
    workers = []
    for child in psutil.Process(server.proc.pid).children():
        try:  # a killed worker stays a zombie until the supervisor reaps it
            if child.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(child.cmdline()):
                workers.append(child)
        except psutil.NoSuchProcess:
            pass
    return workers
