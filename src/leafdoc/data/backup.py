"""`leafdoc backup DEST`: a copy of a data home's state (its catalog and its store) that is itself a data home.

The catalog (SQLite) is copied with SQLite's online backup, so a running service, worker or ingest may go on writing:
the copy is the catalog as it was at one moment. The store is copied after it: a blob is content-addressed and never
changes, and every row names blobs stored before the row was written, so every blob the copied catalog names is
there (unless the kept-photo retention deletes one during the copy). Left out, as a fresh home remakes them: the
model folders under `models/` (rebuilt from the store), the cache, the queue's own file (a job queued and not yet
started is queued again by the worker), and a running job's checkpoint (`store/named/`).

At scale (LEAFDOC_DATABASE_URL, LEAFDOC_STORE_URL) the catalog and the bucket have backups of their own: `pg_dump` and
the bucket's versioning or replication (docs/deploy.md, "Backups").
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from leafdoc.core.atomic import atomic_dir
from leafdoc.core.errors import ConfigError
from leafdoc.core.settings import Settings
from leafdoc.data.store import NAMED

CATALOG = "catalog.sqlite"
STORE = "store"


def _elsewhere_hint(settings: Settings) -> str:
    """What to back up instead, catalog first, for the combination `settings` names: a SQLite catalog with a
    bucket or a shared folder was told to use pg_dump."""
    url = settings.catalog_url
    if url.startswith("sqlite"):  # sqlite:///path, sqlite+pysqlite:///path
        path = url.split(":///", 1)[-1]
        catalog = f'the catalog first, while leafdoc runs: sqlite3 {path} ".backup DEST/catalog.sqlite"'
    else:
        catalog = "the database first with pg_dump (or the managed service's snapshots)"
    location = settings.store_location
    if location.startswith("s3://"):
        store = f"then the bucket ({location}: its versioning, or aws s3 sync)"
    else:
        store = f"then the store's folder ({location}: tar or rsync, leaving out its named/ folder)"
    return f"Back up {catalog}, {store}: docs/deploy.md, 'Backups'."


def backup_home(settings: Settings, dest: Path, progress: Callable[[int, int], None] | None = None) -> dict:
    """Copy the catalog, then the store, of `settings`' data home into the new folder `dest` (whole, or not at
    all); returns what was copied."""
    if settings.database_url or settings.store_url:
        raise ConfigError(
            "`leafdoc backup` copies a data home's own catalog and store; this one's are elsewhere "
            f"({'LEAFDOC_DATABASE_URL' if settings.database_url else 'LEAFDOC_STORE_URL'} is set).",
            hint=_elsewhere_hint(settings),
        )
    catalog, store = settings.home / CATALOG, Path(settings.store_location)
    if not catalog.is_file():
        raise ConfigError(
            f"{settings.home}: no catalog to back up (no {CATALOG}).",
            hint="Check LEAFDOC_HOME: it names the data home `leafdoc serve` and `leafdoc ingest` use.",
        )
    dest = Path(dest)
    if os.path.lexists(dest):
        raise ConfigError(f"{dest}: already exists.", hint="Name a new folder: a backup never overwrites one.")
    if dest.resolve().is_relative_to(settings.home.resolve()):
        raise ConfigError(f"{dest}: is inside the data home it would copy.", hint="Name a folder outside it.")
    with atomic_dir(dest, exclusive=True) as tmp:  # one that appears meanwhile is kept, not replaced
        source = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
        copy = sqlite3.connect(tmp / CATALOG)
        try:
            source.backup(copy)  # one consistent moment, while others write
        finally:
            copy.close()
            source.close()
        # The store is listed after the catalog's copy, not before: a blob stored (and its row committed) between the
        # two would otherwise be named by the copied catalog and missing from the copied store.
        blobs = [p for p in sorted(store.rglob("*")) if p.is_file() and p.relative_to(store).parts[0] != NAMED]
        size = copied = 0
        for i, blob in enumerate(blobs):  # after the catalog: every blob a row names was stored before the row
            target = tmp / STORE / blob.relative_to(store)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copy2(blob, target)
            except FileNotFoundError:  # deleted since it was listed (the kept-photo retention): the copied catalog
                continue  # may still name it, as a prediction whose kept photo is gone
            size += target.stat().st_size
            copied += 1
            if progress is not None:
                progress(i + 1, len(blobs))
    return {
        "dest": str(dest),
        "catalog_bytes": (dest / CATALOG).stat().st_size,
        "blobs": copied,
        "blob_bytes": size,
    }
