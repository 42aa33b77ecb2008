"""Real backing servers for the at-scale tests: PostgreSQL and Redis from the binaries Debian's packages
install (scripts/system-packages.sh), and an S3-compatible HTTP server (moto's server mode) on loopback.

Each helper is a context manager that starts one server in a tmp folder on a free port, yields its URL
and stops it; when the server cannot be started it skips the calling test with the reason. Test modules
wrap them in module-scoped fixtures, so each module starts its servers once.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.live_server import free_port

PG_BIN = Path("/usr/lib/postgresql")

# Credentials moto accepts (any); set in the test process and passed to every leafdoc process.
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "leafdoc-test",
    "AWS_SECRET_ACCESS_KEY": "leafdoc-test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(PG_BIN.glob("*/bin/pg_ctl")) if PG_BIN.is_dir() else []
    return versions[-1].parent if versions else None


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]  # PostgreSQL refuses to run as root


@contextmanager
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server with an empty `leafdoc` database; yields postgresql://…/leafdoc."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (scripts/system-packages.sh installs it)")
    # Not under pytest's tmp folder: that one is private to root, and PostgreSQL runs as its own user.
    root = Path(tempfile.mkdtemp(prefix="leafdoc-pg-"))
    data = root / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
    port = free_port()
    init = subprocess.run(
        _as_postgres([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
        capture_output=True,
        text=True,
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"PostgreSQL could not be initialised: {init.stderr[-500:]}")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = subprocess.run(
        _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"]),
        capture_output=True,
        text=True,
    )
    if start.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"PostgreSQL could not be started: {start.stderr[-500:]}")
    try:
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE leafdoc")
        yield f"postgresql://postgres@127.0.0.1:{port}/leafdoc"
    finally:
        subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]))
        shutil.rmtree(root, ignore_errors=True)


def new_database(url: str, name: str) -> str:
    """Create another, empty database on the server of `url`; returns its URL."""
    import psycopg

    server, _, _ = url.rpartition("/")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


def reset_postgres(url: str) -> None:
    """Drop every table: the next leafdoc process creates the catalog afresh."""
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


@contextmanager
def redis_server(root: Path, port: int | None = None) -> Iterator[str]:
    """A Redis server without persistence, its files under root, on `port` (default: a free one); yields
    redis://…/0."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (scripts/system-packages.sh installs it)")
    port = port or free_port()
    root.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(port=port)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.skip("redis-server could not be started")
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3-compatible HTTP server on loopback (in a thread of this process); yields its endpoint URL."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # pragma: no cover - moto[server] is in leafdoc[dev]
        pytest.skip(f"moto[server] is not installed: {exc}")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request in failure reports
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def create_bucket(endpoint: str, name: str) -> str:
    """Create a bucket (credentials from S3_ENV) and return its name."""
    import boto3

    boto3.client("s3", endpoint_url=endpoint, **_boto_credentials()).create_bucket(Bucket=name)
    return name


def bucket_keys(endpoint: str, bucket: str, prefix: str = "") -> list[str]:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, **_boto_credentials())
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys


def _boto_credentials() -> dict:
    return {
        "aws_access_key_id": S3_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_ENV["AWS_DEFAULT_REGION"],
    }
