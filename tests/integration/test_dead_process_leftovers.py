"""What a process killed outright leaves (issue 59, docs/faults.md): its lock goes as soon as it is known dead, its
spooled uploads and half-written store files are swept (at once for a dead process of this host, after
`leftover_seconds` otherwise), and nothing that is data is ever swept. The kill -9 versions are in
tests/e2e/test_faults.py."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from datetime import timedelta

import pytest
from service_support import Clients, service_settings
from sqlalchemy import update

from leafdoc.core.errors import Conflict
from leafdoc.data import leases
from leafdoc.data.catalog import Catalog, LeaseRow, utcnow
from leafdoc.data.store import open_store
from leafdoc.service import leftovers

pytestmark = pytest.mark.faults
HOST = socket.gethostname()


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def aged(path, seconds: float):
    """Set the modification time of `path` and all it holds `seconds` back."""
    then = time.time() - seconds
    for p in [path, *(path.rglob("*") if path.is_dir() else [])]:
        os.utime(p, (then, then))
    return path


def test_a_lock_of_a_dead_process_of_this_host_is_taken_at_once_others_only_when_they_expire(tmp_path):
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    gone, alive, away = f"{HOST}:{dead_pid()}:1", f"{HOST}:{os.getpid()}:1", "another-host:1:1"
    for name, holder in (("a", gone), ("b", alive), ("c", away)):
        assert leases.try_acquire(catalog, name, holder, ttl=600)
    assert leases.try_acquire(catalog, "a", "me", ttl=60)  # the dead holder's: at once
    assert leases.current_holder(catalog, "a") == "me"
    assert not leases.try_acquire(catalog, "b", "me", ttl=60)  # a live process's: kept
    assert not leases.try_acquire(catalog, "c", "me", ttl=60)  # another host's: cannot be seen, kept
    with (
        pytest.raises(Conflict, match="dataset 'c' is busy"),
        leases.hold(catalog, "c", ttl=60, wait=0.3, what="dataset 'c'"),
    ):
        pass
    with catalog.Session.begin() as s:  # another host's lease, not renewed past its ttl, goes as before
        s.execute(update(LeaseRow).where(LeaseRow.name == "c").values(expires=utcnow() - timedelta(seconds=1)))
    assert leases.try_acquire(catalog, "c", "me", ttl=60)
    assert leases.gone_here(f"{HOST}:{dead_pid()}") and not leases.gone_here(f"{HOST}:{os.getpid()}")
    assert not leases.gone_here("not a holder") and not leases.gone_here(None)
    catalog.dispose()


def test_the_sweep_removes_what_dead_processes_left_and_nothing_else(tmp_path):
    s = service_settings(tmp_path / "home", None, leftover_seconds=600)
    uploads = s.home / "uploads"
    dead = uploads / f"{HOST}_{dead_pid()}_{'a' * 32}"  # killed mid-upload, a moment ago
    (dead / ".parts").mkdir(parents=True)
    (dead / ".parts" / "body").write_bytes(b"x" * 100_000)
    live = uploads / f"{HOST}_{os.getpid()}_{'b' * 32}"  # an upload under way in a live process: kept
    live.mkdir()
    (live / "batch.zip").write_bytes(b"y")
    away_old = uploads / f"other-host_1_{'c' * 32}"
    away_old.mkdir()
    (away_old / "batch.zip").write_bytes(b"z")
    aged(away_old, 3600)  # another host's, untouched for an hour: gone
    away_new = uploads / f"other-host_1_{'d' * 32}"  # another host's, written to a minute ago: kept
    away_new.mkdir()
    (away_new / "batch.zip").write_bytes(b"w")
    aged(away_new, 60)
    legacy = uploads / ("e" * 32)  # the layout before, from an old killed worker: gone once old
    legacy.mkdir()
    aged(legacy, 3600)

    store = open_store(s.store_location)
    sha = store.put(b"a blob that is data")
    blob = store._path(sha)
    aged(blob, 7200)  # an old blob is data: kept, however old
    half = blob.parent / f".{'f' * 64}.abc123.tmp"  # a blob half-written by a killed process
    half.write_bytes(b"half")
    aged(half, 3600)
    fresh_half = blob.parent / f".{'0' * 64}.def456.tmp"  # being written now: kept
    fresh_half.write_bytes(b"half")

    count, size = leftovers.sweep(s)
    assert sorted(p.name for p in uploads.iterdir()) == sorted([live.name, away_new.name])
    assert blob.read_bytes() == b"a blob that is data" and fresh_half.exists() and not half.exists()
    assert count == 4 and size == 100_000 + 1 + 4
    assert leftovers.sweep(s) == (0, 0)


def test_an_api_worker_sweeps_as_it_starts(tmp_path, tiny_model):
    s = service_settings(tmp_path / "home", tiny_model)
    dead = s.home / "uploads" / f"{HOST}_{dead_pid()}_{'a' * 32}"
    dead.mkdir(parents=True)
    (dead / "batch.zip").write_bytes(b"x" * 1000)
    with Clients() as clients:
        clients(s)
        deadline = time.monotonic() + 30
        while dead.exists():
            assert time.monotonic() < deadline, "the starting API worker left a dead process's upload"
            time.sleep(0.1)
