"""Atomic writes: write to a temp file in the same folder, fsync, rename. Readers never see half a file."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from leafdoc.core.errors import ConfigError
from leafdoc.core.processes import pid_alive


def _read_umask() -> int:
    mask = os.umask(0o022)  # the only way to read the umask is to set it; put it back at once
    os.umask(mask)
    return mask


# mkstemp/mkdtemp create 0600/0700 entries (they are meant to be private); our files and folders are
# not, so give them the permissions a plain open()/mkdir() would, or another user (the API's service
# account, a reader of the shared data home) gets "permission denied". Read once, at import.
_UMASK = _read_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode())


# A folder half-written by atomic_dir is named .NAME.XXXXXXXX.PID@HOST.partial: the process writing it, so that a
# later write to NAME can tell one whose writer was killed (kill -9, a lost machine) from one being written now.
STALE_SECONDS = 24 * 3600  # a half-written folder whose writer cannot be checked (another host's, or from before
# names carried one), untouched this long, is stale: a save adds its files in minutes


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:63] or "host"


def _partials(parent: Path, name: str | None = None) -> list[tuple[Path, int | None, str | None]]:
    """The folders atomic_dir half-wrote in `parent` (beside `parent / name`, or beside any destination there when
    `name` is None), each with its writer's pid and host (None: not recorded)."""
    named = re.escape(name) if name is not None else r".+?"
    pattern = re.compile(rf"\.{named}\.[a-z0-9_]{{8}}(?:\.(\d+)@([A-Za-z0-9-]+))?\.partial")
    found = []
    for entry in parent.iterdir() if parent.is_dir() else []:
        if (m := pattern.fullmatch(entry.name)) and entry.is_dir() and not entry.is_symlink():
            found.append((entry, int(m[1]) if m[1] else None, m[2]))
    return found


def _remove_stale(partials: list[tuple[Path, int | None, str | None]], now: float | None) -> list[Path]:
    now = time.time() if now is None else now
    here, gone = _host(), []
    for path, pid, host in partials:
        if pid is not None and host == here:
            stale = pid != os.getpid() and not pid_alive(pid)
        else:
            try:
                stale = now - path.stat().st_mtime > STALE_SECONDS
            except OSError:
                continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            gone.append(path)
    return gone


def remove_stale_partials(final: Path, now: float | None = None) -> list[Path]:
    """Delete the half-written folders beside `final` that no live process is writing: those of a process of this
    host that has ended, and those whose writer cannot be checked (another host's, or named before writers were
    recorded) untouched for STALE_SECONDS. A folder another run is writing now is kept: two runs may write to one
    destination at once, and the later to finish replaces the other's. Returns what was deleted."""
    final = Path(final)
    return _remove_stale(_partials(final.parent, final.name), now)


def remove_stale_partials_in(folder: Path, now: float | None = None) -> list[Path]:
    """`remove_stale_partials` for every destination in `folder`: for a folder of many destinations that are each
    written once and then only read (a registry's model versions), where no later write to the same one comes."""
    return _remove_stale(_partials(Path(folder)), now)


@contextmanager
def atomic_dir(final: Path, keep_existing: Callable[[Path], bool] | None = None, exclusive: bool = False):
    """Build a folder under a temp name beside `final`; it appears under its name only if the block succeeds.

    An existing `final` is replaced only after the new one is complete. What a killed earlier write to `final`
    left half-written beside it is deleted first (`remove_stale_partials`).

    `keep_existing`: for a folder several processes may build at once from the same source (a model version
    rebuilt from the store by each worker of a fresh machine), where the first whole one wins and others may
    already be reading it. An existing `final` that `keep_existing(final)` says is whole is kept and the new
    folder dropped, as it is when another process renames its folder in first; only one it says is not is
    replaced.

    `exclusive`: never replace anything: a `final` that came while the folder was built (another run's backup to
    the same folder) is a ConfigError and the new folder is dropped.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(final)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=f".{os.getpid()}@{_host()}.partial"))
    try:
        tmp.chmod(0o777 & ~_UMASK)
        yield tmp
        if keep_existing is not None:
            if final.exists() and keep_existing(final):
                shutil.rmtree(tmp, ignore_errors=True)
                return
            if final.exists():  # a leftover with files missing
                shutil.rmtree(final, ignore_errors=True)
            try:
                os.rename(tmp, final)  # never over a folder: fails if another process's whole one came in between
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
            return
        if exclusive:
            if os.path.lexists(final):
                raise ConfigError(
                    f"{final}: appeared while this folder was being made there; it was left as it is and nothing was "
                    "written to it.",
                    hint="Name a new folder.",
                )
            os.rename(tmp, final)  # never over a folder with anything in it
            return
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_replaceable(out_dir: Path, marker: str) -> None:
    """Refuse to replace a folder we did not write: atomic_dir swaps the whole folder, contents and all."""
    out_dir = Path(out_dir)
    if out_dir.is_file() or (out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / marker).is_file()):
        raise ConfigError(
            f"{out_dir}: already exists and is not an earlier leafdoc output (no {marker}); it would be replaced.",
            hint="Pass a new or empty folder.",
        )
