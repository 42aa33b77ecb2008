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


def backup_home(settings: Settings, dest: Path, progress: Callable[[int, int], None] | None = None) -> dict:
    """Copy the catalog, then the store, of `settings`' data home into the new folder `dest` (whole, or not at
    all); returns what was copied."""
    if settings.database_url or settings.store_url:
        raise ConfigError(
            "`leafdoc backup` copies a data home's own catalog and store; this one's are elsewhere "
            f"({'LEAFDOC_DATABASE_URL' if settings.database_url else 'LEAFDOC_STORE_URL'} is set).",
            hint="Back the database up with pg_dump and the bucket with its versioning or replication "
            "(docs/deploy.md, 'Backups').",
        )
    catalog, store = settings.home / CATALOG, Path(settings.store_location)
    if not catalog.is_file():
        raise ConfigError(
            f"{settings.home}: no catalog to back up (no {CATALOG}).",
            hint="Check LEAFDOC_HOME: it names the data home `leafdoc serve` and `leafdoc ingest` use.",
        )
    dest = Path(dest)
    if dest.exists():
        raise ConfigError(f"{dest}: already exists.", hint="Name a new folder: a backup never overwrites one.")
    if dest.resolve().is_relative_to(settings.home.resolve()):
        raise ConfigError(f"{dest}: is inside the data home it would copy.", hint="Name a folder outside it.")
    blobs = [p for p in sorted(store.rglob("*")) if p.is_file() and p.relative_to(store).parts[0] != NAMED]
    with atomic_dir(dest) as tmp:
        source = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
        copy = sqlite3.connect(tmp / CATALOG)
        try:
            source.backup(copy)  # one consistent moment, while others write
        finally:
            copy.close()
            source.close()
        size = 0
        for i, blob in enumerate(blobs):  # after the catalog: every blob a row names was stored before the row
            target = tmp / STORE / blob.relative_to(store)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copy2(blob, target)
            except FileNotFoundError:  # deleted since it was listed (the kept-photo retention): no row names it
                continue
            size += target.stat().st_size
            if progress is not None:
                progress(i + 1, len(blobs))
    return {
        "dest": str(dest),
        "catalog_bytes": (dest / CATALOG).stat().st_size,
        "blobs": len(blobs),
        "blob_bytes": size,
    }
