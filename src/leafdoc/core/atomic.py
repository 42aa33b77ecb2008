"""Atomic writes: write to a temp file in the same folder, fsync, rename. Readers never see half a file."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from leafdoc.core.errors import ConfigError


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


@contextmanager
def atomic_dir(final: Path):
    """Build a folder under a temp name beside `final`; it appears under its name only if the block succeeds.

    An existing `final` is replaced only after the new one is complete.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".partial"))
    try:
        tmp.chmod(0o777 & ~_UMASK)
        yield tmp
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
