"""The data home's three stores: the catalog (migrations), the content-addressed blob store, and the
decoded-array cache. Each must survive re-opening and interruption without losing or half-writing data."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text
from tests.conftest import synthetic_image

from leafdoc.core.errors import ConfigError, NotFound
from leafdoc.data.cache import build_cache, cache_key
from leafdoc.data.catalog import MIGRATIONS, Catalog, DatasetRow
from leafdoc.data.store import LocalStore, open_store
from leafdoc.imaging.photos import Preparation, preprocess, sha256_bytes


def head_revision() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


# --- catalog -------------------------------------------------------------------------------------


def test_migrations_create_the_schema_in_a_fresh_sqlite_file(tmp_path):
    path = tmp_path / "new" / "folder" / "catalog.sqlite"
    catalog = Catalog(f"sqlite:///{path}")
    try:
        assert path.is_file()
        tables = set(inspect(catalog.engine).get_table_names())
        assert {"images", "datasets", "dataset_versions", "dataset_items", "alembic_version"} <= tables
        with catalog.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]
    finally:
        catalog.dispose()


def test_reopening_is_idempotent_and_keeps_the_data(tmp_path):
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    first = Catalog(url)
    with first.Session.begin() as s:
        s.add(DatasetRow(name="leaves"))
    first.dispose()

    for _ in range(2):
        again = Catalog(url)
        with again.Session() as s:
            assert s.scalars(select(DatasetRow.name)).all() == ["leaves"]
        with again.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
        again.dispose()


# --- store ---------------------------------------------------------------------------------------


def test_store_is_content_addressed(tmp_path):
    store = open_store(str(tmp_path / "store"))
    data = b"a leaf photo"
    sha = store.put(data)
    assert sha == sha256_bytes(data)
    assert store.exists(sha) and store.get(sha) == data
    assert store.put(data) == sha  # the same bytes are stored once
    blobs = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert blobs == [tmp_path / "store" / sha[:2] / sha[2:4] / sha]


def test_store_refuses_invalid_ids_and_reports_missing_blobs(tmp_path):
    store = LocalStore(tmp_path / "store")
    for bad in ("../../etc/passwd", "abc", "G" * 64, "A" * 64):
        with pytest.raises(NotFound, match="is not a blob id"):
            store.get(bad)
        with pytest.raises(NotFound):
            store.exists(bad)
    missing = "0" * 64
    assert not store.exists(missing)
    with pytest.raises(NotFound, match=f"blob {missing} is not in the store"):
        store.get(missing)


def test_store_write_is_atomic(tmp_path, monkeypatch):
    store = LocalStore(tmp_path / "store")
    data = b"x" * 10_000
    sha = sha256_bytes(data)

    def crash(*args, **kwargs):
        raise OSError("power cut")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="power cut"):
        store.put(data)
    assert not store.exists(sha)
    assert [p for p in (tmp_path / "store").rglob("*") if p.is_file()] == []  # no temp file left behind
    monkeypatch.undo()
    assert store.put(data) == sha and store.get(sha) == data


def test_store_files_are_readable_like_any_other_file(tmp_path):
    """Not 0600 as tempfile makes them: the API may run as another user than the CLI that ingested."""
    old = os.umask(0o022)
    try:
        store = LocalStore(tmp_path / "store")
        sha = store.put(b"shared")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "store" / sha[:2] / sha[2:4] / sha).stat().st_mode) & 0o044 == 0o044


def test_unsupported_store_url():
    with pytest.raises(ConfigError, match="not supported"):
        open_store("ftp://example.org/blobs")


def test_a_store_url_missing_a_slash_is_refused_not_taken_for_a_folder(tmp_path, monkeypatch):
    """`s3:/bucket/x` was a folder named `s3:` under whatever the current directory was: each replica wrote its own
    store there, and the others could not rebuild the models."""
    monkeypatch.chdir(tmp_path)
    for typo in ("s3:/bucket/x", "S3:bucket", "file:/var/lib/leafdoc/store"):
        with pytest.raises(ConfigError, match="missing a slash") as exc:
            open_store(typo)
        assert "s3://bucket/prefix" in exc.value.message and "LEAFDOC_STORE_URL" in exc.value.hint
    assert list(tmp_path.iterdir()) == []  # nothing written anywhere
    assert open_store(f"file://{tmp_path}/store").put(b"x")  # the right spellings still work


# --- cache ---------------------------------------------------------------------------------------


@pytest.fixture
def blobs(tmp_path):
    store = LocalStore(tmp_path / "store")
    shas = [
        store.put(synthetic_image(tmp_path / f"img{i}.png", size=(40 + i, 30), seed=i).read_bytes()) for i in range(5)
    ]
    return store, shas


def test_cache_is_built_once_and_reused(tmp_path, blobs, monkeypatch):
    store, shas = blobs
    folder = tmp_path / "cache" / cache_key("leaves", 1, Preparation(16))
    said = []
    arr = build_cache(folder, shas, store, Preparation(16), workers=2, progress=lambda *a: said.append(a))
    assert arr.shape == (5, 16, 16, 3) and arr.dtype == np.uint8
    assert said == [(0, 5), (5, 5)]  # the bar shows its total (the photos) before the first is decoded
    assert np.array_equal(arr[3], preprocess(store.get(shas[3]), 16))
    mtime = (folder / "images.npy").stat().st_mtime_ns

    def no_decoding(*args, **kwargs):
        raise AssertionError("the cache was rebuilt")

    monkeypatch.setattr(Preparation, "__call__", no_decoding)
    said.clear()
    again = build_cache(folder, shas, store, Preparation(16), progress=lambda *a: said.append(a))
    assert np.array_equal(again, arr) and said[-1] == (5, 5)  # reused: the bar is full, not "0/?"
    assert (folder / "images.npy").stat().st_mtime_ns == mtime


def test_cache_is_rebuilt_when_the_images_change(tmp_path, blobs):
    store, shas = blobs
    folder = tmp_path / "cache" / "x"
    build_cache(folder, shas[:3], store, Preparation(8))
    arr = build_cache(folder, shas, store, Preparation(8))
    assert arr.shape == (5, 8, 8, 3)


def test_interrupted_cache_build_leaves_no_cache_folder(tmp_path, blobs, monkeypatch):
    store, shas = blobs
    calls = {"n": 0}
    real_get = store.get

    def get(sha: str) -> bytes:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_get(sha)

    monkeypatch.setattr(store, "get", get)
    folder = tmp_path / "cache" / cache_key("leaves", 1, Preparation(16))
    with pytest.raises(KeyboardInterrupt):
        build_cache(folder, shas, store, Preparation(16), workers=1)
    assert not folder.exists()
    assert list((tmp_path / "cache").iterdir()) == []  # no half-built temp folder either

    monkeypatch.undo()
    assert build_cache(folder, shas, store, Preparation(16)).shape == (5, 16, 16, 3)


def test_cache_folder_name_is_safe_and_says_what_it_holds():
    assert cache_key("../my leaves", 3, Preparation(96)) == ".._my_leaves-v3-96px"
    assert cache_key("leaves", 1, Preparation(64, morphology="tophat", morph_kernel=5)) == "leaves-v1-64px-tophat5"
    # A framed cache is another cache: a model trained with framing never reads centre crops, nor the other way.
    assert cache_key("leaves", 1, Preparation(64, framing="leaf")) == "leaves-v1-64px-leaf"
    tophat_framed = Preparation(64, framing="leaf", morphology="tophat", morph_kernel=5)
    assert cache_key("leaves", 1, tophat_framed) == "leaves-v1-64px-tophat5-leaf"
    # So is a white-balanced one (white_balance: sheet).
    assert cache_key("leaves", 1, Preparation(64, "leaf", "sheet")) == "leaves-v1-64px-leaf-wbsheet"
    assert cache_key("leaves", 1, Preparation(64, "leaf", "none")) == "leaves-v1-64px-leaf"
