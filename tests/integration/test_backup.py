"""`leafdoc backup DEST`: the copy is a data home with the same dataset versions and every photo's bytes; it never
overwrites, never copies into itself, and refuses a home whose catalog and store live elsewhere with what to use
instead."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import synthetic_image

from leafdoc.core.errors import ConfigError
from leafdoc.core.settings import Settings
from leafdoc.data.backup import backup_home
from leafdoc.data.catalog import Catalog
from leafdoc.data.datasets import get_version, list_datasets, version_items
from leafdoc.data.ingest import ingest
from leafdoc.data.store import LocalStore, open_store
from leafdoc.imaging.photos import sha256_bytes

LEAFDOC = Path(sys.executable).with_name("leafdoc")


def photos(root: Path, n: int, seed: int = 0) -> Path:
    for i in range(n):
        synthetic_image(root / "healthy" / f"h{i}.jpg", color=(40, 170, 60), seed=seed + i)
        synthetic_image(root / "rust" / f"r{i}.png", color=(170, 90, 40), seed=seed + 100 + i)
    return root


def versions(home: Path) -> dict:
    """Each dataset version of `home`'s catalog with its (photo sha, label) pairs; every photo's bytes read from
    `home`'s store and checked against its name."""
    catalog, store = Catalog(f"sqlite:///{home / 'catalog.sqlite'}", upgrade=False), LocalStore(home / "store")
    try:
        out = {}
        for d in list_datasets(catalog):
            for v in d["versions"]:
                row = get_version(catalog, d["name"], v["version"])
                out[d["name"], v["version"]] = sorted((sha, label) for sha, label, _ in version_items(catalog, row))
        for items in out.values():
            for sha, _ in items:
                assert sha256_bytes(store.get(sha)) == sha
        return out
    finally:
        catalog.dispose()


def test_a_backup_is_a_data_home_with_the_same_datasets_and_photos(tmp_path):
    home = tmp_path / "home"
    settings = Settings(home=home)
    settings.ensure_home()
    catalog, store = Catalog(settings.catalog_url), open_store(settings.store_location)
    ingest(photos(tmp_path / "one", 3), catalog, store, "leaves")
    ingest(photos(tmp_path / "two", 2, seed=50), catalog, store, "leaves")  # a second version
    (home / "store" / "named").mkdir()
    (home / "store" / "named" / "job-checkpoint").write_bytes(b"x" * 1000)  # a running job's: not copied
    catalog.dispose()

    env = {**os.environ, "LEAFDOC_HOME": str(home), "COLUMNS": "300"}
    env.pop("LEAFDOC_DATABASE_URL", None), env.pop("LEAFDOC_STORE_URL", None)
    dest = tmp_path / "backups" / "monday"
    r = subprocess.run([LEAFDOC, "backup", dest, "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    said = json.loads(r.stdout)
    assert said["blobs"] == 10 and said["blob_bytes"] > 0, said  # 10 photos, the checkpoint left out
    assert not (dest / "store" / "named").exists()

    original = versions(home)
    assert sorted(original) == [("leaves", 1), ("leaves", 2)] and len(original["leaves", 2]) == 10
    assert versions(dest) == original  # every version, every photo's bytes
    # and the copy serves as a home: ingesting the same photos there finds them all already stored
    again = subprocess.run(
        [LEAFDOC, "ingest", tmp_path / "one", "--dataset", "leaves", "--json"],
        env={**env, "LEAFDOC_HOME": str(dest)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary = json.loads(again.stdout)
    assert summary["added"] == 0 and len(summary["duplicates"]) == 6, summary

    # never over an existing folder; never into the home itself
    r = subprocess.run([LEAFDOC, "backup", dest], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "already exists" in r.stderr and "Traceback" not in r.stderr, r.stderr
    with pytest.raises(ConfigError, match="inside the data home"):
        backup_home(settings, home / "backup")


def test_a_home_whose_catalog_is_a_database_server_is_refused_with_what_to_use(tmp_path):
    settings = Settings(home=tmp_path / "home", database_url="postgresql://leafdoc:pw@db/leafdoc")
    with pytest.raises(ConfigError) as refused:
        backup_home(settings, tmp_path / "copy")
    assert "LEAFDOC_DATABASE_URL is set" in refused.value.message and "pg_dump" in refused.value.hint
    assert not (tmp_path / "copy").exists()
