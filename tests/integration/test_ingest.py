"""Ingest against a real SQLite catalog and store: every bad file is rejected by name with what to do,
good files are kept, versions are immutable, and a failed ingest leaves nothing half-written."""

from __future__ import annotations

import hashlib
import io
import shutil
import struct
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select
from tests.conftest import synthetic_image

from leafdoc.core.errors import Conflict, DatasetError, NotFound, StorageFull
from leafdoc.data.catalog import Catalog, DatasetVersionRow, ImageRow
from leafdoc.data.datasets import get_version, latest_version, list_datasets, version_items
from leafdoc.data.ingest import ingest
from leafdoc.data.splits import split_items
from leafdoc.data.store import LocalStore, open_store


@pytest.fixture
def data(settings):
    catalog = Catalog(settings.catalog_url)
    yield catalog, open_store(settings.store_location)
    catalog.dispose()


def two_classes(root: Path, per_class: int = 3) -> Path:
    for i in range(per_class):
        synthetic_image(root / "healthy" / f"h{i}.jpg", color=(40, 170, 60), seed=i)
        synthetic_image(root / "rust" / f"r{i}.png", color=(170, 90, 40), seed=100 + i)
    return root


def shas(catalog: Catalog, dataset: str, version: int | None = None) -> dict[str, str]:
    return {sha: label for sha, label, _ in version_items(catalog, get_version(catalog, dataset, version))}


def n_versions(catalog: Catalog) -> int:
    with catalog.Session() as s:
        return s.scalar(select(func.count()).select_from(DatasetVersionRow))


def rejected(result) -> dict[str, str]:
    assert all(set(r) == {"file", "reason"} for r in result.rejected)
    return {Path(r["file"].split(":")[-1]).name: r["reason"] for r in result.rejected}


def bomb_png(side: int = 10_000) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    packer = zlib.compressobj(9)
    row = b"\x00" + b"\xff" * ((side + 7) // 8)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# --- bad input -----------------------------------------------------------------------------------


def test_bad_files_are_rejected_by_name_and_the_good_ones_kept(tmp_path, data):
    catalog, store = data
    root = two_classes(tmp_path / "leaves")
    good = (root / "healthy" / "h0.jpg").read_bytes()
    (root / "rust" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "rust" / "notes.jpg").write_text("these are my notes, not a photo")
    (root / "rust" / "empty.jpg").write_bytes(b"")
    (root / "rust" / "bomb.png").write_bytes(bomb_png())
    (root / "rust" / "readme.txt").write_text("hello")

    result = ingest(root, catalog, store, "leaves")

    assert result.added == 6 and result.version == 1 and result.created_version
    reasons = rejected(result)
    assert set(reasons) == {"truncated.jpg", "notes.jpg", "empty.jpg", "bomb.png", "readme.txt"}
    assert reasons["truncated.jpg"].startswith("the image data is corrupt or truncated")
    assert "Copy the file again from its source" in reasons["truncated.jpg"]
    assert (
        reasons["notes.jpg"].startswith("not a photo leafdoc can read")
        and "Use a photo file: JPEG, PNG, HEIC" in reasons["notes.jpg"]
    )
    assert reasons["empty.jpg"] == "the file is empty (0 bytes). Re-export or re-copy the photo."
    assert "10000x10000 pixels is over the limit" in reasons["bomb.png"] and "Downscale" in reasons["bomb.png"]
    assert "not an image file type (.txt)" in reasons["readme.txt"]
    assert Counter(shas(catalog, "leaves").values()) == {"healthy": 3, "rust": 3}


def test_odd_modes_and_rotated_photos_are_ingested(tmp_path, data):
    catalog, store = data
    root = two_classes(tmp_path / "modes", per_class=1)
    synthetic_image(root / "healthy" / "cmyk.jpg", mode="CMYK", seed=3)
    synthetic_image(root / "healthy" / "grey.png", mode="L", seed=4)
    synthetic_image(root / "rust" / "alpha.png", mode="RGBA", seed=5)
    deep = np.random.default_rng(6).integers(0, 65535, (20, 30)).astype(np.uint16)
    Image.fromarray(deep).save(root / "rust" / "deep.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (60, 20), "green").save(root / "rust" / "phone.jpg", exif=exif.tobytes())

    result = ingest(root, catalog, store, "modes")

    assert result.rejected == []
    assert result.added == 7
    with catalog.Session() as s:
        phone = s.get(ImageRow, sha_of(root / "rust" / "phone.jpg"))
        deep_row = s.get(ImageRow, sha_of(root / "rust" / "deep.png"))
    assert (phone.width, phone.height) == (20, 60)  # recorded upright
    assert deep_row.mode == "I;16" and deep_row.format == "PNG"


def test_empty_folder_is_a_dataset_error(tmp_path, data):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError) as err:
        ingest(tmp_path / "empty", *data)
    assert "empty: no files found" in err.value.message and err.value.hint
    assert n_versions(data[0]) == 0


def test_a_folder_above_its_class_folders_registers_nothing_unless_it_adds_to_that_class(tmp_path, data):
    catalog, store = data
    for split in ("train", "test"):
        two_classes(tmp_path / "splits" / split)
    with pytest.raises(DatasetError, match="train/, test/ are dataset splits, not classes"):
        ingest(tmp_path / "splits", catalog, store, "plants")
    assert n_versions(catalog) == 0
    for field in ("field 1", "field 2"):  # rust/<field>/...: one folder, its photos in sub-folders
        for i in range(2):
            synthetic_image(tmp_path / "wrapped" / "rust" / field / f"{i}.jpg", color=(150, 80, 30), seed=200 + i)
    with pytest.raises(DatasetError, match="sub-folders of one folder, rust/"):
        ingest(tmp_path / "wrapped", catalog, store, "plants")
    assert n_versions(catalog) == 0
    ingest(two_classes(tmp_path / "classes"), catalog, store, "plants")  # a dataset with a class 'rust'
    result = ingest(tmp_path / "wrapped", catalog, store, "plants")  # its photos sorted into sub-folders: added
    assert result.created_version and result.added == 2  # the two fields hold the same two images
    assert set(shas(catalog, "plants").values()) == {"healthy", "rust"}


def test_nothing_usable_creates_no_version(tmp_path, data):
    catalog, store = data
    (tmp_path / "bad" / "rust").mkdir(parents=True)
    (tmp_path / "bad" / "rust" / "a.jpg").write_text("not a photo")
    result = ingest(tmp_path / "bad", catalog, store)
    assert result.version is None and not result.created_version and result.added == 0
    assert set(rejected(result)) == {"a.jpg"}
    assert list_datasets(catalog) == []


# --- sources -------------------------------------------------------------------------------------


@pytest.mark.parametrize("top", ["", "leaves/"])
def test_ingest_a_zip(tmp_path, data, top):
    catalog, store = data
    root = two_classes(tmp_path / "leaves")
    zpath = tmp_path / "upload.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for f in sorted(root.rglob("*.*")):
            zf.write(f, top + f.relative_to(root).as_posix())
        zf.writestr("../escape.jpg", (root / "healthy" / "h0.jpg").read_bytes())
        zf.writestr("/abs/escape.jpg", (root / "rust" / "r0.png").read_bytes())
        zf.writestr(zipfile.ZipInfo(f"{top}rust/bomb.jpg"), b"\0" * 3_000_000, zipfile.ZIP_DEFLATED)

    result = ingest(zpath, catalog, store)

    assert result.dataset == "upload" and result.version == 1
    assert result.added == 6 and result.classes == {"healthy": 3, "rust": 3}
    reasons = {r["file"]: r["reason"] for r in result.rejected}
    assert reasons.keys() == {
        "upload.zip:../escape.jpg",
        "upload.zip:/abs/escape.jpg",
        f"upload.zip:{top}rust/bomb.jpg",
    }
    assert reasons["upload.zip:../escape.jpg"].startswith("unsafe path in the zip")
    assert "zip bomb" in reasons[f"upload.zip:{top}rust/bomb.jpg"]
    assert not (tmp_path / "escape.jpg").exists()


def test_a_zip_one_level_above_its_class_folders_registers_and_stores_nothing(tmp_path, data):
    """The folder check, for zips too: a zip of DIR/{train,test}/<classes> became classes "train" and "test"."""
    catalog, store = data
    for split in ("train", "test"):
        two_classes(tmp_path / "plants" / split)
    zpath = tmp_path / "plants.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for f in sorted((tmp_path / "plants").rglob("*.*")):
            zf.write(f, f.relative_to(tmp_path).as_posix())  # plants/train/healthy/h0.jpg: as zipping the folder
    with pytest.raises(DatasetError) as err:
        ingest(zpath, catalog, store)
    assert err.value.message.startswith(f"{zpath}: plants/train/, plants/test/ are dataset splits, not classes")
    assert "make a zip of the folder plants/train/" in err.value.hint
    assert n_versions(catalog) == 0 and list_datasets(catalog) == []
    assert not [p for p in store.root.rglob("*") if p.is_file()], "no photo of the refused zip is in the store"


def test_ingest_a_csv(tmp_path, data):
    catalog, store = data
    root = two_classes(tmp_path / "photos")
    cpath = tmp_path / "labels.csv"
    lines = ["path,label"] + [f"photos/{p.relative_to(root).as_posix()},{p.parent.name}" for p in root.rglob("*.*")]
    cpath.write_text("\n".join(lines + ["photos/gone.jpg,rust"]) + "\n")

    result = ingest(cpath, catalog, store)

    assert result.dataset == "labels" and result.added == 6
    assert result.rejected == [
        {
            "file": f"{cpath}:8 (photos/gone.jpg)",
            "reason": "file not found; check the path (relative paths start at the CSV's folder)",
        }
    ]


def test_csv_with_missing_columns_registers_nothing(tmp_path, data):
    cpath = tmp_path / "labels.csv"
    cpath.write_text("image,disease\na.jpg,rust\n")
    with pytest.raises(DatasetError, match="'path' and 'label' columns"):
        ingest(cpath, *data)
    assert n_versions(data[0]) == 0


# --- versions ------------------------------------------------------------------------------------


def test_re_ingest_then_add_one_image(tmp_path, data):
    catalog, store = data
    root = two_classes(tmp_path / "leaves")
    first = ingest(root, catalog, store, "leaves")
    v1 = shas(catalog, "leaves", 1)

    again = ingest(root, catalog, store, "leaves")
    assert again.version == 1 and not again.created_version and again.added == 0
    assert len(again.duplicates) == 6 and n_versions(catalog) == 1

    synthetic_image(root / "rust" / "new.jpg", color=(200, 60, 30), seed=77)
    third = ingest(root, catalog, store, "leaves")
    assert third.version == 2 and third.added == 1 and len(third.duplicates) == 6
    v2 = shas(catalog, "leaves", 2)
    assert v1.items() < v2.items() and len(v2) == 7
    assert shas(catalog, "leaves", 1) == v1  # version 1 is immutable
    assert get_version(catalog, "leaves", 2).parent_version == 1
    assert first.n_images == 6 and third.n_images == 7


def test_exact_duplicates_in_one_ingest_are_stored_once(tmp_path, data):
    catalog, store = data
    root = two_classes(tmp_path / "leaves")
    shutil.copy(root / "rust" / "r0.png", root / "rust" / "r0 copy.png")
    result = ingest(root, catalog, store)
    assert result.added == 6
    assert result.duplicates == [{"file": str(root / "rust" / "r0.png"), "of": str(root / "rust" / "r0 copy.png")}]


def test_same_image_under_two_labels_is_rejected(tmp_path, data):
    catalog, store = data
    root = two_classes(tmp_path / "leaves")
    shutil.copy(root / "rust" / "r0.png", root / "healthy" / "looks_rusty.png")
    result = ingest(root, catalog, store)
    reasons = rejected(result)
    assert reasons.keys() == {"r0.png"}
    assert "already labelled 'healthy'; fix one of the two labels" in reasons["r0.png"]
    assert result.added == 6


def test_flipped_and_rotated_copies_are_reported_and_split_together(tmp_path, data, leaf_folder):
    catalog, store = data
    leaf = sorted((leaf_folder / "Apple___healthy").glob("*.jpg"))[0]
    with Image.open(leaf) as img:
        img.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(leaf.parent / "flipped.jpg", quality=90)
        img.transpose(Image.Transpose.ROTATE_90).save(leaf.parent / "rotated.jpg", quality=90)

    result = ingest(leaf_folder, catalog, store, "leaves")

    assert result.added == 20 and result.rejected == []
    near = {Path(d["file"]).name: Path(d["similar_to"]).name for d in result.near_duplicates}
    assert len(near) == 2  # the two later of the three copies; no pair among the 18 distinct leaves
    assert set(near) | set(near.values()) == {leaf.name, "flipped.jpg", "rotated.jpg"}

    items = version_items(catalog, get_version(catalog, "leaves"))
    by_sha = {sha: label for sha, label, _ in items}
    copies = {sha_of(p) for p in (leaf, leaf.parent / "flipped.jpg", leaf.parent / "rotated.jpg")}
    assert copies <= by_sha.keys()
    for seed in range(5):
        assignment = split_items(items, seed=seed)
        assert len({assignment[s] for s in copies}) == 1


def sha_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- failures leave nothing half-written ---------------------------------------------------------


def _fail_on_third_put(monkeypatch):
    calls = {"n": 0}
    real_put = LocalStore.put

    def put(self, blob: bytes) -> str:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real_put(self, blob)

    monkeypatch.setattr(LocalStore, "put", put)


def test_store_failure_midway_registers_no_version(tmp_path, data, monkeypatch):
    catalog, store = data
    root = two_classes(tmp_path / "leaves")
    _fail_on_third_put(monkeypatch)
    with pytest.raises(StorageFull) as err:  # the disk's fault, not the photos': the API answers 507
        ingest(root, catalog, store, "leaves")
    assert "could not be written to the store" in err.value.message
    assert "Nothing was registered: dataset 'leaves' is not created" in err.value.message
    assert "free disk space" in err.value.hint
    assert n_versions(catalog) == 0 and list_datasets(catalog) == []
    monkeypatch.undo()
    assert ingest(root, catalog, store, "leaves").added == 6  # the next try works


def test_store_failure_midway_keeps_the_old_version_intact(tmp_path, data, monkeypatch):
    catalog, store = data
    root = two_classes(tmp_path / "leaves")
    ingest(root, catalog, store, "leaves")
    v1 = shas(catalog, "leaves")
    for i in range(4):
        synthetic_image(root / "healthy" / f"more{i}.jpg", seed=50 + i)
    _fail_on_third_put(monkeypatch)
    with pytest.raises(StorageFull, match="dataset 'leaves' is still at version 1"):
        ingest(root, catalog, store, "leaves")
    assert latest_version(catalog, "leaves").version == 1 and n_versions(catalog) == 1
    assert shas(catalog, "leaves") == v1
    with pytest.raises(NotFound):
        get_version(catalog, "leaves", 2)


def test_concurrent_ingest_into_the_same_dataset_loses_nothing(tmp_path, settings, data):
    """Another ingest registers a version while this one runs: this one must not write a version that
    silently drops the other's images; it refuses with Conflict and the user runs it again."""
    catalog, store = data
    root = two_classes(tmp_path / "leaves")
    ingest(root, catalog, store, "leaves")
    other = tmp_path / "other"
    synthetic_image(other / "healthy" / "theirs.jpg", seed=61)
    synthetic_image(root / "rust" / "mine.jpg", seed=62)
    state = {"done": False}

    def meanwhile(done: int, total: int) -> None:
        if not state["done"]:
            state["done"] = True
            second = Catalog(settings.catalog_url)
            assert ingest(other, second, store, "leaves").version == 2
            second.dispose()

    with pytest.raises(Conflict) as err:
        ingest(root, catalog, store, "leaves", progress=meanwhile)
    assert "another ingest registered version 2" in err.value.message and "Run the same ingest again" in err.value.hint
    assert latest_version(catalog, "leaves").version == 2

    retry = ingest(root, catalog, store, "leaves")
    assert retry.version == 3 and retry.added == 1
    assert len(shas(catalog, "leaves", 3)) == 8  # 6 + theirs + mine


def test_dataset_names(tmp_path, data, monkeypatch):
    catalog, store = data
    root = two_classes(tmp_path / "my leaves")
    monkeypatch.chdir(root)
    assert ingest(Path("."), catalog, store).dataset == "my leaves"
    with pytest.raises(DatasetError, match="cannot be a dataset name"):
        ingest(root, catalog, store, "../../etc")


def test_store_blobs_match_what_was_ingested(tmp_path, data):
    catalog, store = data
    root = two_classes(tmp_path / "leaves", per_class=2)
    ingest(root, catalog, store, "leaves")
    for sha in shas(catalog, "leaves"):
        blob = store.get(sha)
        assert Image.open(io.BytesIO(blob)).size == (48, 40)


def test_more_photos_than_sqlite_takes_values_in_one_statement_are_looked_up(data):
    """A lab's 35,000 photos in one ingest: SQLite refuses a statement of more than 32,766 values, and asking the
    catalog which photos it already holds in one IN (...) failed with "too many SQL variables". Python's own SQLite
    takes 250,000 here, but in a process that imported TensorFlow first (`leafdoc train`, a training job) the sqlite3
    module runs on TensorFlow's copy, which takes 32,766: this test sets that limit on its connections."""
    import sqlite3

    from sqlalchemy import event

    from leafdoc.data.ingest import stored_shas

    catalog, _ = data

    @event.listens_for(catalog.engine, "connect")
    def _as_under_tensorflow(dbapi_conn, _record):
        dbapi_conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32766)

    catalog.engine.dispose()  # connections made from here on have the limit
    shas = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(40_000)]
    with catalog.Session.begin() as s:
        for sha in (shas[0], shas[25_000], shas[-1]):
            s.add(ImageRow(sha256=sha, width=1, height=1, format="JPEG", mode="RGB", nbytes=1, phash=0))
    with catalog.Session() as s:
        assert stored_shas(s, shas) == {shas[0], shas[25_000], shas[-1]}


def test_photos_leafdoc_would_refuse_to_diagnose_are_kept_and_named(data, tmp_path, capsys):
    """`leafdoc train --data` took a black-and-white photo and a one-colour one into training without a word, though
    `leafdoc predict` refuses both. Ingest keeps them (a lab may mean them) and names each with its problems."""
    from tests.conftest import PLANTVILLAGE

    from leafdoc.cli.printing import print_ingest

    if not PLANTVILLAGE.is_dir():
        pytest.skip("shared datasets not found")
    catalog, store = data
    root = tmp_path / "photos"
    for label in ("Apple___healthy", "Apple___Apple_scab"):
        (root / label).mkdir(parents=True)
        for f in sorted((PLANTVILLAGE / label).glob("*.jpg"))[:4]:
            shutil.copy(f, root / label)
    leaf = Image.open(sorted((PLANTVILLAGE / "Apple___healthy").glob("*.jpg"))[10])
    leaf.convert("L").save(root / "Apple___healthy" / "grey.jpg")
    Image.new("RGB", (300, 300), (30, 140, 40)).save(root / "Apple___Apple_scab" / "flat.png")
    result = ingest(root, catalog, store, "orchard")
    assert result.added == 10  # kept
    poor = {Path(p["file"]).name: p["problems"] for p in result.poor_photos}
    assert poor == {"grey.jpg": ["no_colour"], "flat.png": ["one_colour"]}, poor
    print_ingest(result.to_dict(), root)
    said = " ".join(capsys.readouterr().err.split())
    assert "2 photos added are ones leafdoc would refuse to diagnose (" in said
    assert "Apple___healthy/grey.jpg (black and white)" in said and "Apple___Apple_scab/flat.png (one colour)" in said
