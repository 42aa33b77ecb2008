"""What an API worker killed mid-request leaves under the data home, and its removal.

A request's temporary files are its own to remove (the upload route does, in a `finally`), but a process killed
outright (SIGKILL, the out-of-memory killer, a lost machine) runs no `finally`: a bulk upload's spooled body, up to
LEAFDOC_MAX_REQUEST_BYTES, stayed in `<home>/uploads/` for good, and repeated kills filled the disk (issue 59).
So each request spools in a folder named for its process too, `uploads/<host>_<pid>_<upload id>/`, and every API
worker sweeps as it starts and then every `leftover_seconds / 4` (and looks for dead processes' uploads every 5 s):

- a folder of a process of this host that no longer runs goes at once, whatever its age;
- anything else under `uploads/` (another host's process, a pid taken by a new process, the layout before this
  one) and a half-written store file (`.<name>.*.tmp`, core.atomic.atomic_write_bytes) go once untouched for
  `leftover_seconds`: none of them is data (a dataset version is registered only once all its blobs are whole in
  the store), and a live request touches its files far more often than that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import time
import uuid
from pathlib import Path

from leafdoc.core.settings import Settings
from leafdoc.data.leases import gone_here

log = logging.getLogger(__name__)

UPLOADS = "uploads"
DEAD_CHECK_SECONDS = 5.0


def new_upload_folder(settings: Settings) -> tuple[str, Path]:
    """A new upload's id and the folder its body is spooled in, named for this process so that a sweep can tell
    whether its owner still runs."""
    upload_id = uuid.uuid4().hex
    folder = settings.home / UPLOADS / f"{socket.gethostname()}_{os.getpid()}_{upload_id}"
    folder.mkdir(parents=True, exist_ok=False)
    return upload_id, folder


def _owner_gone(name: str) -> bool:
    host, pid, _ = (["", "", ""] + name.rsplit("_", 2))[-3:]
    return gone_here(f"{host}:{pid}")


def _newest_change(path: Path) -> float:
    """The latest modification time of `path` or anything in it (a spool being written touches its file)."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                with contextlib.suppress(OSError):  # removed meanwhile
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
    return newest


def _remove(path: Path) -> int:
    """Remove a file or folder; the bytes it held (0 if it was gone already)."""
    try:
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return 0
    return size


def sweep(settings: Settings, max_age: float | None = None, *, aged: bool = True) -> tuple[int, int]:
    """Remove what dead processes left (see the module's doc); `max_age` defaults to `leftover_seconds`. With
    `aged` False, only the upload folders of dead processes of this host (a look at `uploads/` alone, cheap enough
    to do every few seconds). Returns how many entries went and the bytes they held."""
    max_age = settings.leftover_seconds if max_age is None else max_age
    old = time.time() - max_age
    doomed: list[Path] = []
    uploads = settings.home / UPLOADS
    for entry in sorted(uploads.iterdir()) if uploads.is_dir() else []:
        try:
            if _owner_gone(entry.name) or aged and _newest_change(entry) < old:
                doomed.append(entry)
        except FileNotFoundError:
            continue  # its own request removed it meanwhile
    store = Path(settings.store_location)
    if aged and not settings.store_url and store.is_dir():
        for root, _, files in os.walk(store):
            for name in files:
                path = Path(root) / name
                if name.startswith(".") and name.endswith(".tmp") and _newest_change(path) < old:
                    doomed.append(path)
    count = size = 0
    for path in doomed:
        try:
            size += _remove(path)
            count += 1
        except OSError:
            log.exception("could not remove %s, which a process that stopped left behind", path)
    if count:
        log.warning(
            "removed %d leftover(s) of requests whose process stopped before cleaning up (%.1f MB)", count, size / 1e6
        )
    return count, size


async def sweep_forever(settings: Settings) -> None:
    """Until cancelled (the app's lifespan runs it): the whole sweep now and every `leftover_seconds / 4`, and the
    uploads of dead processes every DEAD_CHECK_SECONDS between, so a worker killed mid-upload is swept by its
    siblings within seconds even while its replacement is slow to start."""
    whole_at = 0.0
    while True:
        aged = time.monotonic() >= whole_at
        if aged:
            whole_at = time.monotonic() + max(settings.leftover_seconds / 4, 1.0)
        try:
            await asyncio.to_thread(sweep, settings, aged=aged)
        except Exception:  # a leftover costs only space: never stop serving over it
            log.exception("could not sweep what stopped processes left under the data home")
        await asyncio.sleep(min(DEAD_CHECK_SECONDS, max(settings.leftover_seconds / 4, 1.0)))
