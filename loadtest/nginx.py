"""nginx (Debian's package) as a load balancer in front of `leafdoc serve` replicas, run as a plain
foreground process with a generated config: its pid file, logs and temp folders all live in one folder.

Requests go round robin to the replicas over kept-alive upstream connections. A replica that refuses
connections is skipped: predictions are retried on the next replica even though they are POSTs (a
diagnosis has no side effect beyond metrics), other routes only when the request was never sent.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

NGINX_CANDIDATES = ("/usr/sbin/nginx", "nginx")

PROXY = """\
            proxy_pass http://leafdoc;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 600s;
            proxy_send_timeout 600s;"""


def find_nginx() -> str | None:
    for candidate in NGINX_CANDIDATES:
        path = shutil.which(candidate)
        if path:
            return path
    return None


def nginx_config(
    folder: Path,
    port: int,
    upstream_ports: list[int],
    *,
    worker_processes: int = 1,
    access_log: bool = False,
    fail_timeout: float = 5,
) -> str:
    folder = Path(folder).resolve()
    servers = "\n".join(
        f"        server 127.0.0.1:{p} max_fails=1 fail_timeout={fail_timeout:g}s;" for p in upstream_ports
    )
    # As root, nginx's workers would switch to `nobody`, who cannot write this folder's temp paths.
    user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
    log = f"access_log {folder}/access.log;" if access_log else "access_log off;"
    temp = "\n".join(
        f"    {kind}_temp_path {folder}/temp/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""\
{user}daemon off;
worker_processes {worker_processes};
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    {log}
{temp}
    # Photo uploads stay in memory (up to 1 MB) instead of temp files; batches and zips may be large.
    client_body_buffer_size 1m;
    client_max_body_size 256m;
    upstream leafdoc {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location /v1/predict {{
{PROXY}
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
        }}
        location / {{
{PROXY}
            proxy_next_upstream error timeout http_502 http_503;
        }}
    }}
}}
"""


@dataclass
class Nginx:
    proc: subprocess.Popen
    folder: Path
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: fast shutdown of master and workers
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def error_log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text(errors="replace") if path.is_file() else ""


def start_nginx(folder: Path, port: int, upstream_ports: list[int], **config) -> Nginx:
    """Write the config into `folder` and start nginx in the foreground; wait until it listens."""
    exe = find_nginx()
    if exe is None:
        raise FileNotFoundError("nginx is not installed (Debian: apt-get install nginx)")
    folder = Path(folder).resolve()
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / "temp" / kind).mkdir(parents=True, exist_ok=True)
    conf = folder / "nginx.conf"
    conf.write_text(nginx_config(folder, port, upstream_ports, **config))
    check = subprocess.run(
        [exe, "-t", "-p", str(folder), "-c", str(conf), "-e", str(folder / "error.log")], capture_output=True, text=True
    )
    if check.returncode != 0:
        raise RuntimeError(f"nginx rejects its config {conf}:\n{check.stderr}")
    with open(folder / "stdout.log", "wb") as out:
        proc = subprocess.Popen(
            [exe, "-p", str(folder), "-c", str(conf), "-e", str(folder / "error.log")],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    nginx = Nginx(proc, folder, port)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited with {proc.returncode}:\n{nginx.error_log()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return nginx
        time.sleep(0.1)
    nginx.stop()
    raise RuntimeError(f"nginx did not listen on port {port}:\n{nginx.error_log()}")
