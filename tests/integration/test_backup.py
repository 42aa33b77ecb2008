"""`leafdoc backup DEST`: the copy is a data home with the same dataset versions and every photo's bytes; it never
overwrites, never copies into itself, and refuses a home whose catalog and store live elsewhere with what to use
instead."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

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

    # what it says, without --json: how to restore (the home moved aside, never the copy's files over it)
    r = subprocess.run([LEAFDOC, "backup", tmp_path / "backups" / "tuesday"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    said = " ".join((r.stdout + r.stderr).split())
    assert "move the data home aside and copy this folder in its place" in said and "put its files" not in said, said

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


@pytest.mark.parametrize(
    ("database_url", "store_url", "catalog_step", "store_step"),
    [
        (None, "s3://leafdoc/store", 'catalog.sqlite ".backup DEST/catalog.sqlite"', "aws s3 sync"),
        (None, "/mnt/store", 'catalog.sqlite ".backup DEST/catalog.sqlite"', "(/mnt/store: tar or rsync"),
        ("postgresql://leafdoc:pw@db/leafdoc", "/mnt/store", "pg_dump", "(/mnt/store: tar or rsync"),
        ("postgresql://leafdoc:pw@db/leafdoc", "s3://leafdoc/store", "pg_dump", "aws s3 sync"),
    ],
)
def test_a_refusal_says_what_to_back_up_for_its_catalog_and_store(
    tmp_path, database_url, store_url, catalog_step, store_step
):
    """A SQLite catalog with a bucket (or a shared folder) was told to use pg_dump: the hint names the catalog's
    own kind, catalog first, then the store's."""
    settings = Settings(home=tmp_path / "home", database_url=database_url, store_url=store_url)
    with pytest.raises(ConfigError) as refused:
        backup_home(settings, tmp_path / "copy")
    hint = refused.value.hint
    assert catalog_step in hint and store_step in hint, hint
    assert hint.index(catalog_step) < hint.index(store_step), hint
    assert ("pg_dump" in hint) == (database_url is not None), hint


def test_photos_added_after_the_store_was_listed_but_before_the_catalog_was_copied_are_in_the_backup(
    tmp_path, monkeypatch
):
    """An ingest that commits between the start of `leafdoc backup` and the catalog's copy: the copied catalog names
    its photos, so the store's copy must hold them. The store was listed before the catalog was copied, and these
    photos were left out: the backup named photos it did not have."""
    import leafdoc.data.backup as backup_module

    home = tmp_path / "home"
    settings = Settings(home=home)
    settings.ensure_home()
    catalog, store = Catalog(settings.catalog_url), open_store(settings.store_location)
    ingest(photos(tmp_path / "one", 2), catalog, store, "leaves")
    late = photos(tmp_path / "late", 2, seed=70)
    real_connect = backup_module.sqlite3.connect
    written = []

    def connect_after_an_ingest(*args, **kwargs):  # the catalog's copy starts: another process has just ingested
        if not written:
            written.append(ingest(late, catalog, store, "leaves"))
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(backup_module, "sqlite3", SimpleNamespace(connect=connect_after_an_ingest))
    try:
        dest = tmp_path / "copy"
        done = backup_home(settings, dest)
    finally:
        catalog.dispose()
    assert written, "the catalog was not copied"
    original = versions(home)
    assert sorted(original) == [("leaves", 1), ("leaves", 2)] and len(original["leaves", 2]) == 8
    assert versions(dest) == original  # every photo the copied catalog names is in the copied store
    assert done["blobs"] == 8


def test_a_folder_that_appears_at_the_destination_during_the_copy_is_kept(tmp_path):
    """Two backups started together to one dated folder (cron), or anything else written there meanwhile: the
    backup checked DEST once at its start and, at its end, replaced whatever had come there, deleting it."""
    home = tmp_path / "home"
    settings = Settings(home=home)
    settings.ensure_home()
    catalog, store = Catalog(settings.catalog_url), open_store(settings.store_location)
    ingest(photos(tmp_path / "one", 2), catalog, store, "leaves")
    catalog.dispose()
    dest = tmp_path / "copy"

    def another_backup_arrives(done: int, total: int) -> None:
        if done == 1:
            dest.mkdir()
            (dest / "OTHER-RUN.txt").write_text("kept")

    with pytest.raises(ConfigError, match="appeared while") as refused:
        backup_home(settings, dest, progress=another_backup_arrives)
    assert refused.value.hint == "Name a new folder."
    assert sorted(p.name for p in dest.iterdir()) == ["OTHER-RUN.txt"]
    assert (dest / "OTHER-RUN.txt").read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".copy")] == []  # no half-made copy left beside it
