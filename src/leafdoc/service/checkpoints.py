"""A training job's checkpoint in the shared store, so that whichever worker runs its next attempt (on
another machine, with another data home) continues after the last finished epoch.

After every epoch the job's checkpoint folder (train/checkpoint.py: weights, optimizer slots,
state.json) is packed into one uncompressed tar (the arrays hardly compress) and written under the
job's name, replacing the previous epoch's at once (`write_named`): a worker killed while writing it
leaves the previous one. It is deleted when the job ends, however it ends. No TensorFlow here: the
worker uses this module too.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

from leafdoc.core.atomic import atomic_dir
from leafdoc.data.store import BlobStore


def name(job_id: str) -> str:
    return f"job-{job_id}.checkpoint.tar"


def pack(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(Path(folder).iterdir()):
            if path.is_file():
                tar.add(path, arcname=path.name, recursive=False)
    return buf.getvalue()


def upload(store: BlobStore, job_id: str, folder: Path) -> int:
    """Replace the job's checkpoint in the store with the folder's; returns its size in bytes."""
    data = pack(folder)
    store.write_named(name(job_id), data)
    return len(data)


def download(store: BlobStore, job_id: str, folder: Path) -> bool:
    """Put the job's checkpoint from the store into `folder` (replaced whole). False if there is none."""
    data = store.read_named(name(job_id))
    if data is None:
        return False
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar, atomic_dir(Path(folder)) as tmp:
        for member in tar.getmembers():
            # Only plain files at the top: a name with a path in it would write outside the folder.
            if not member.isfile() or Path(member.name).name != member.name or member.name.startswith("."):
                raise ValueError(f"checkpoint of job {job_id} in the store holds an unexpected entry {member.name!r}")
            src = tar.extractfile(member)
            with open(tmp / member.name, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return True


def discard(store: BlobStore, job_id: str) -> None:
    store.delete_named(name(job_id))
