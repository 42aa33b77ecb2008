"""sources.py: folders, zips and CSVs become labelled entries; anything that cannot be an entry is
skipped by name with a reason, and unsafe zips are refused."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from tests.conftest import synthetic_image

from leafdoc.core.errors import DatasetError
from leafdoc.data.sources import Entry, Limits, Skipped, iter_csv, iter_folder, iter_source, iter_zip


def split(items) -> tuple[list[Entry], dict[str, str]]:
    items = list(items)
    return [i for i in items if isinstance(i, Entry)], {i.name: i.reason for i in items if isinstance(i, Skipped)}


def labels(entries: list[Entry]) -> dict[str, str]:
    return {Path(e.name.split(":")[-1]).name: e.label for e in entries}


def jpeg(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (seed, 100, 50)).save(buf, "JPEG")
    return buf.getvalue()


def make_zip(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return path


# --- folders -------------------------------------------------------------------------------------


def test_folder_labels_come_from_top_level_class_folders(tmp_path):
    synthetic_image(tmp_path / "healthy" / "a.jpg")
    synthetic_image(tmp_path / "rust" / "field 2" / "b.png")
    (tmp_path / "rust" / "notes.txt").write_text("seen on Monday")
    (tmp_path / "rust" / ".DS_Store").write_bytes(b"\0")
    synthetic_image(tmp_path / "stray.jpg")
    entries, skipped = split(iter_folder(tmp_path))
    assert labels(entries) == {"a.jpg": "healthy", "b.png": "rust"}
    assert "not an image file type (.txt)" in skipped[str(tmp_path / "rust" / "notes.txt")]
    assert "hidden or system file" in skipped[str(tmp_path / "rust" / ".DS_Store")]
    assert "put each photo in a folder named after its label" in skipped[str(tmp_path / "stray.jpg")]
    assert entries[0].read() == (tmp_path / "healthy" / "a.jpg").read_bytes()


@pytest.mark.parametrize("splits", [("train", "test"), ("Train", "Valid", "Test"), ("validation",)])
def test_a_folder_of_splits_is_refused_naming_them_and_the_class_folders_to_pass(tmp_path, splits):
    """DIR/{train,test}/<classes> once made two classes named "train" and "test", silently."""
    for split in splits:
        for cls in ("Apple___healthy", "Apple___Black_rot"):
            synthetic_image(tmp_path / split / cls / "a.jpg")
    with pytest.raises(DatasetError) as err:
        list(iter_folder(tmp_path))
    said = f"{err.value.message} {err.value.hint}"
    assert str(tmp_path) in said and all(f"{s}/" in said for s in splits), said
    assert "not a class" in said or "not classes" in said
    assert "Apple___Black_rot, Apple___healthy" in said  # the class folders found inside them
    first = "train" if "train" in splits else ("Train" if "Train" in splits else splits[0])
    assert f"leafdoc ingest {tmp_path / first} --dataset NAME" in err.value.hint
    assert "leafdoc train --dataset NAME" in err.value.hint


def test_one_folder_holding_the_class_folders_is_refused_naming_the_folder_to_pass(tmp_path):
    """DIR/mydata/<classes> once made one class named "mydata"; training then only said a classifier needs 2."""
    for cls in ("healthy", "rust"):
        synthetic_image(tmp_path / "mydata" / cls / "a.jpg")
    with pytest.raises(DatasetError) as err:
        list(iter_source(tmp_path))
    assert f"{tmp_path}: all its photos are in sub-folders of one folder, mydata/ (healthy, rust)" in err.value.message
    assert "'mydata'" in err.value.message
    assert f"pass `{tmp_path / 'mydata'}` instead" in err.value.hint
    entries, _ = split(iter_folder(tmp_path / "mydata"))  # what the hint says to pass
    assert sorted(e.label for e in entries) == ["healthy", "rust"]
    # adding photos sorted into sub-folders to a class the dataset already has is still one class
    entries, _ = split(iter_folder(tmp_path, known_labels=frozenset({"mydata"})))
    assert {e.label for e in entries} == {"mydata"}


def test_a_class_with_photos_in_sub_folders_beside_other_classes_is_still_one_class(tmp_path):
    synthetic_image(tmp_path / "healthy" / "a.jpg")
    synthetic_image(tmp_path / "rust" / "field 1" / "b.jpg")
    synthetic_image(tmp_path / "rust" / "field 2" / "c.jpg")
    synthetic_image(tmp_path / "test" / "d.jpg")  # a class named like a split, photos straight in it: a class
    entries, _ = split(iter_folder(tmp_path))
    assert labels(entries) == {"a.jpg": "healthy", "b.jpg": "rust", "c.jpg": "rust", "d.jpg": "test"}
    synthetic_image(tmp_path / "lone" / "rust" / "field 1" / "e.jpg")
    entries, _ = split(iter_folder(tmp_path / "lone" / "rust"))  # sub-folders with no photos beside them: classes
    assert labels(entries) == {"e.jpg": "field 1"}


def test_one_class_folder_given_for_the_folder_of_classes_is_refused_naming_its_parent(tmp_path):
    """`leafdoc ingest mydata/healthy`, whose sub-folder `greenhouse 2` holds a few of its photos, made a dataset of one
    class named "greenhouse 2" and left the folder's own photos out as "not inside a class folder"."""
    for i in range(5):
        synthetic_image(tmp_path / "mydata" / "healthy" / f"{i}.jpg")
    synthetic_image(tmp_path / "mydata" / "healthy" / "greenhouse 2" / "g.jpg")
    synthetic_image(tmp_path / "mydata" / "rust" / "r.jpg")
    healthy = tmp_path / "mydata" / "healthy"
    with pytest.raises(DatasetError) as err:
        list(iter_source(healthy))
    said = err.value.message
    assert f"{healthy}: 5 of its photos are in it directly, in no class folder and 1 in its sub-folders" in said
    assert "(greenhouse 2)" in said and "it looks like one class folder" in said
    assert f"`leafdoc ingest {tmp_path / 'mydata'} --dataset NAME`" in err.value.hint
    zpath = make_zip(tmp_path / "healthy.zip", {f"{i}.jpg": jpeg(i) for i in range(3)} | {"gh/g.jpg": jpeg(9)})
    with pytest.raises(DatasetError, match="looks like one class folder") as err:
        list(iter_zip(zpath))
    assert "Zip the folder that holds the class folders" in err.value.hint
    # the usual slip, a class folder with no folder in it at all (docs review, session 74: every photo was rejected as
    # "not inside a class folder" and the parent never named)
    rust = tmp_path / "mydata" / "rust"
    with pytest.raises(DatasetError) as err:
        list(iter_source(rust))
    assert f"{rust}: 1 of its photos are in it directly, in no class folder: it looks like one" in err.value.message
    assert f"`leafdoc ingest {tmp_path / 'mydata'} --dataset NAME`" in err.value.hint
    # a stray photo beside the class folders is only left out, by name, as before
    synthetic_image(tmp_path / "mydata" / "logo.jpg")
    entries, skipped = split(iter_folder(tmp_path / "mydata"))
    assert {e.label for e in entries} == {"healthy", "rust"}
    assert "not inside a class folder" in skipped[str(tmp_path / "mydata" / "logo.jpg")]


def test_an_empty_class_folder_is_named(tmp_path):
    """A class folder with no photo in it was left out without a word by `ingest` and `stats`."""
    synthetic_image(tmp_path / "healthy" / "a.jpg")
    synthetic_image(tmp_path / "rust" / "b.jpg")
    (tmp_path / "mosaic virus").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.txt").write_text("not a photo")
    (tmp_path / ".thumbnails").mkdir()  # hidden: not a class folder
    entries, skipped = split(iter_folder(tmp_path))
    assert {e.label for e in entries} == {"healthy", "rust"}
    empty = "a class folder with no photos in it: add its photos, or remove the folder"
    assert skipped[f"{tmp_path / 'mosaic virus'}/"] == empty and skipped[f"{tmp_path / 'notes'}/"] == empty
    assert not any(".thumbnails" in name for name in skipped)


def test_a_file_is_not_a_folder(tmp_path):
    with pytest.raises(DatasetError, match="not a folder"):
        list(iter_folder(synthetic_image(tmp_path / "x.jpg")))


def test_folder_file_over_the_size_limit_is_refused_when_read(tmp_path):
    path = synthetic_image(tmp_path / "big" / "a.png", size=(64, 64))
    (entry,) = iter_folder(tmp_path, Limits(max_file_bytes=100))
    with pytest.raises(DatasetError, match="over the per-file limit of 100 bytes") as err:
        entry.read()
    assert str(path) in err.value.message


# --- zips ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("top", ["", "leaves/"])
def test_zip_with_or_without_one_top_folder(tmp_path, top):
    zpath = make_zip(tmp_path / "leaves.zip", {f"{top}healthy/a.jpg": jpeg(1), f"{top}rust/b.jpg": jpeg(2)})
    entries, skipped = split(iter_zip(zpath))
    assert labels(entries) == {"a.jpg": "healthy", "b.jpg": "rust"}
    assert skipped == {}
    assert [e.read() for e in entries] == [jpeg(1), jpeg(2)]


def test_zip_made_on_a_mac_still_has_its_top_folder_stripped(tmp_path):
    """Finder adds __MACOSX/ and .DS_Store: they must not turn every photo's label into 'leaves'."""
    zpath = make_zip(
        tmp_path / "leaves.zip",
        {
            "leaves/healthy/a.jpg": jpeg(1),
            "leaves/rust/b.jpg": jpeg(2),
            "leaves/.DS_Store": b"\0\0",
            "__MACOSX/leaves/healthy/._a.jpg": b"\0\5\26\7",
        },
    )
    entries, skipped = split(iter_zip(zpath))
    assert labels(entries) == {"a.jpg": "healthy", "b.jpg": "rust"}
    assert all("hidden or system file" in r for r in skipped.values()) and len(skipped) == 2


def test_zip_paths_that_escape_are_refused_by_name_and_the_rest_is_kept(tmp_path):
    zpath = make_zip(
        tmp_path / "upload.zip",
        {"healthy/a.jpg": jpeg(1), "../evil.jpg": jpeg(2), "/etc/evil.jpg": jpeg(3), "rust/../../up.jpg": jpeg(4)},
    )
    entries, skipped = split(iter_zip(zpath))
    assert labels(entries) == {"a.jpg": "healthy"}
    assert set(skipped) == {"upload.zip:../evil.jpg", "upload.zip:/etc/evil.jpg", "upload.zip:rust/../../up.jpg"}
    for reason in skipped.values():
        assert reason.startswith("unsafe path in the zip") and "re-create the zip" in reason


def test_zip_bomb_member_is_refused(tmp_path):
    zpath = make_zip(
        tmp_path / "bomb.zip",
        {"healthy/a.jpg": jpeg(1), "healthy/bomb.jpg": b"\0" * 5_000_000},
        compression=zipfile.ZIP_DEFLATED,
    )
    entries, skipped = split(iter_zip(zpath))
    assert labels(entries) == {"a.jpg": "healthy"}
    assert "implausible for a photo (a zip bomb?), refused" in skipped["bomb.zip:healthy/bomb.jpg"]


def test_zip_limits_refuse_the_whole_zip(tmp_path):
    zpath = make_zip(tmp_path / "many.zip", {f"c/{i}.jpg": jpeg(i) for i in range(3)})
    with pytest.raises(DatasetError, match="3 files is over the limit of 2"):
        list(iter_zip(zpath, Limits(max_zip_members=2)))
    with pytest.raises(DatasetError, match="unpacks to .* bytes, over the limit of 10"):
        list(iter_zip(zpath, Limits(max_zip_uncompressed_bytes=10)))


def test_not_a_zip(tmp_path):
    fake = tmp_path / "photos.zip"
    fake.write_text("not a zip")
    with pytest.raises(DatasetError, match="photos.zip: not a readable zip file") as err:
        list(iter_zip(fake))
    assert "Re-create the zip" in err.value.hint


def test_corrupt_zip_member_fails_with_its_name_when_read(tmp_path):
    member = bytes(range(256)) * 8 + jpeg(1)
    zpath = make_zip(tmp_path / "c.zip", {"healthy/a.jpg": member}, compression=zipfile.ZIP_DEFLATED)
    data = bytearray(zpath.read_bytes())
    start = data.index(b"healthy/a.jpg") + len("healthy/a.jpg")  # the local header; the data follows
    for i in range(start + 10, start + 60):  # scramble the compressed bytes
        data[i] ^= 0x5A
    zpath.write_bytes(bytes(data))
    (entry,) = [i for i in iter_zip(zpath) if isinstance(i, Entry)]
    with pytest.raises(DatasetError, match=r"c.zip:healthy/a.jpg: cannot be unpacked"):
        entry.read()


def test_flat_zip_with_a_label(tmp_path):
    zpath = make_zip(tmp_path / "rust.zip", {"a.jpg": jpeg(1), "b.jpg": jpeg(2)})
    entries, _ = split(iter_zip(zpath, label="rust"))
    assert labels(entries) == {"a.jpg": "rust", "b.jpg": "rust"}


@pytest.mark.parametrize("top", ["", "plants/"])
def test_a_zip_of_splits_is_refused_naming_the_zip_and_the_folder_to_zip(tmp_path, top):
    """A zip of DIR/{train,test}/<classes> (or of its contents) became two classes named "train" and "test"."""
    members = {
        f"{top}{s}/{c}/{s}-{c}.jpg": jpeg(i)
        for i, (s, c) in enumerate((s, c) for s in ("train", "test") for c in ("healthy", "rust"))
    }
    zpath = make_zip(tmp_path / "splits.zip", members)
    for relative_names, where in ((False, str(zpath)), (True, "splits.zip")):  # the CLI's words, the service's
        with pytest.raises(DatasetError) as err:
            list(iter_zip(zpath, relative_names=relative_names))
        assert err.value.message.startswith(f"{where}: {top}train/, {top}test/ are dataset splits, not classes"), err
        assert "(healthy, rust)" in err.value.message and "('train', 'test')" in err.value.message
        assert f"make a zip of the folder {top}train/" in err.value.hint and f"split ({top}test/)" in err.value.hint
        assert ("`leafdoc ingest` that zip" in err.value.hint) != relative_names, err.value.hint
        if relative_names:  # an upload's answer names no server path
            assert str(tmp_path) not in f"{err.value.message} {err.value.hint}"
    # what the hint says: a zip of the folder train/ (it has its class folders inside)
    train = make_zip(
        tmp_path / "train.zip", {k[len(top) :]: v for k, v in members.items() if k[len(top) :].startswith("train/")}
    )
    entries, _ = split(iter_zip(train))
    assert labels(entries) == {"train-healthy.jpg": "healthy", "train-rust.jpg": "rust"}
    # a flat zip given one label is that label's, whatever folders it has
    entries, _ = split(iter_zip(zpath, label="rust"))
    assert {e.label for e in entries} == {"rust"} and len(entries) == 4


def test_a_zip_of_the_folder_above_the_class_folders_is_refused_unless_it_adds_to_that_class(tmp_path):
    """outer/mydata/<classes> in a zip: the top folder is stripped, and "mydata" became the only class."""
    zpath = make_zip(
        tmp_path / "outer.zip", {"outer/mydata/healthy/a.jpg": jpeg(1), "outer/mydata/rust/b.jpg": jpeg(2)}
    )
    with pytest.raises(DatasetError) as err:
        list(iter_source(zpath))
    assert err.value.message == (
        f"{zpath}: all its photos are in sub-folders of one folder, outer/mydata/ (healthy, rust), so they would all "
        "get one label, 'mydata': the classes look one level further down."
    )
    assert "zip the folder outer/mydata/ itself, not the one that holds it" in err.value.hint
    entries, _ = split(iter_source(zpath, known_labels=frozenset({"mydata"})))  # photos of a class, sorted in folders
    assert {e.label for e in entries} == {"mydata"}
    mydata = make_zip(tmp_path / "mydata.zip", {"mydata/healthy/a.jpg": jpeg(1), "mydata/rust/b.jpg": jpeg(2)})
    entries, _ = split(iter_source(mydata))  # the zip the hint asks for
    assert labels(entries) == {"a.jpg": "healthy", "b.jpg": "rust"}


def test_a_zip_of_one_class_folder_sorted_into_sub_folders_adds_to_that_class(tmp_path):
    """rust.zip holding rust/field 1/... and rust/field 2/..., added to a dataset that has a class 'rust', once made
    two new classes named after the fields."""
    zpath = make_zip(tmp_path / "rust.zip", {"rust/field 1/a.jpg": jpeg(1), "rust/field 2/b.jpg": jpeg(2)})
    entries, _ = split(iter_source(zpath, known_labels=frozenset({"healthy", "rust"})))
    assert labels(entries) == {"a.jpg": "rust", "b.jpg": "rust"}
    # a zipped dataset folder whose classes the dataset already has still gives those classes
    mydata = make_zip(tmp_path / "rust2.zip", {"rust/healthy/a.jpg": jpeg(1), "rust/rust/b.jpg": jpeg(2)})
    entries, _ = split(iter_source(mydata, known_labels=frozenset({"healthy", "rust"})))
    assert labels(entries) == {"a.jpg": "healthy", "b.jpg": "rust"}
    # and to a new dataset the folders inside the zip's one top folder are the classes, as before
    entries, _ = split(iter_source(zpath))
    assert labels(entries) == {"a.jpg": "field 1", "b.jpg": "field 2"}


# --- CSV -----------------------------------------------------------------------------------------


def test_csv_paths_are_relative_to_the_csv(tmp_path):
    synthetic_image(tmp_path / "img" / "a.jpg")
    synthetic_image(tmp_path / "img" / "b.jpg")
    cpath = tmp_path / "labels.csv"
    cpath.write_text("Path,Label\nimg/a.jpg,healthy\nimg/b.jpg, rust \n")
    entries, skipped = split(iter_csv(cpath))
    assert labels(entries) == {"a.jpg": "healthy", "b.jpg": "rust"}
    assert skipped == {}


def test_csv_without_the_columns_says_which_it_found(tmp_path):
    cpath = tmp_path / "labels.csv"
    cpath.write_text("file,class\na.jpg,healthy\n")
    with pytest.raises(DatasetError) as err:
        list(iter_csv(cpath))
    assert "needs a header with 'path' and 'label' columns (found: file, class)" in err.value.message
    assert str(cpath) in err.value.message
    assert "path,label" in err.value.hint


def test_csv_rows_that_cannot_be_used_are_skipped_by_line(tmp_path):
    synthetic_image(tmp_path / "a.jpg")
    cpath = tmp_path / "labels.csv"
    cpath.write_text("path,label\na.jpg,healthy\nmissing.jpg,rust\nb, c.jpg,rust\n,rust\nnotes.txt,rust\n")
    (tmp_path / "notes.txt").write_text("x")
    entries, skipped = split(iter_csv(cpath))
    assert labels(entries) == {"a.jpg": "healthy"}
    assert "file not found; check the path" in skipped[f"{cpath}:3 (missing.jpg)"]
    assert "more fields than the header" in skipped[f"{cpath}:4"]
    assert "without a path or label" in skipped[f"{cpath}:5"]
    assert "not an image file type (.txt)" in skipped[str(tmp_path / "notes.txt")]


# --- dispatch ------------------------------------------------------------------------------------


def test_source_that_does_not_exist_or_is_not_supported(tmp_path):
    with pytest.raises(DatasetError, match="no such file or folder"):
        iter_source(tmp_path / "nope")
    other = tmp_path / "photos.rar"
    other.write_bytes(b"x")
    with pytest.raises(DatasetError, match=r"photos.rar: not a folder, .zip or .csv"):
        iter_source(other)
