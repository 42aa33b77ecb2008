"""Where labelled photos come from: a folder of class folders, a .zip of one, or a CSV of path,label.

Each source yields `Entry` objects (a name for messages, a label, and a way to read the bytes),
or `Skipped` objects for files that cannot be entries (with the reason), so nothing is dropped
silently. Zips are read defensively: `../` or absolute member paths, too many members, and
members that would unpack past the size limits are refused by name.
"""

from __future__ import annotations

import csv
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from leafdoc.core.errors import DatasetError
from leafdoc.data.names import printable
from leafdoc.imaging.photos import is_image_name

# The biggest plausible compression ratio for a photo; JPEG/PNG barely compress inside a zip.
MAX_COMPRESSION_RATIO = 200


@dataclass(frozen=True)
class Entry:
    name: str
    label: str
    read: Callable[[], bytes]


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 25 * 1024 * 1024
    max_zip_members: int = 100_000
    max_zip_uncompressed_bytes: int = 4 * 1024**3


def _is_hidden(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _reader(path: Path, max_bytes: int, name: str) -> Callable[[], bytes]:
    def read() -> bytes:
        size = path.stat().st_size
        if size > max_bytes:
            raise DatasetError(
                f"{name}: {size:,} bytes is over the per-file limit of {max_bytes:,} bytes.",
                hint="Downscale the photo or raise LEAFDOC_MAX_IMAGE_BYTES.",
            )
        return path.read_bytes()

    return read


# Folder names that say "a part of a dataset", never "a label": DIR/train/<classes> is a split, not a class.
SPLIT_ORDER = ("train", "val", "valid", "validation", "test")
SPLIT_NAMES = frozenset(SPLIT_ORDER)


def _listing(names, most: int = 4, keep_order: bool = False) -> str:
    names = list(names) if keep_order else sorted(names)
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def nesting_problem(
    root: Path,
    photos: list[tuple[str, ...]],
    known_labels: frozenset[str] = frozenset(),
    relative_names: bool = False,
    *,
    zip_top: str | None = None,
) -> DatasetError | None:
    """Why `root` is a level above its class folders, if it is; `photos`: the path parts (inside `root`) of its
    photos. Labels come from the top-level folders, so a folder one level too deep would silently become the
    classes: DIR/{train,test}/<classes> would be 2 classes named "train" and "test", DIR/mydata/<classes> one class
    named "mydata". Refused, naming the folder and what to pass instead. A class whose photos are sorted into
    sub-folders (DIR/rust/field 2/x.jpg beside DIR/healthy/y.jpg) is still one class; a lone folder of them is too
    when its name is already a label of the dataset it is added to (`known_labels`). `zip_top`: `root` is a zip, its
    photos' parts are inside the top folder `zip_top` (`"mydata/"` for a zip of the folder mydata, `""` for a zip of
    its contents), and what to do is which folder to zip."""
    zipped = zip_top is not None
    # an upload is named as the client sent it (a zip by its file name), never where the server keeps it
    where = str(root) if not relative_names else root.name if zipped else "the upload"
    top_in = zip_top or ""  # how a folder is named inside the zip
    inside: dict[str, list[tuple[str, ...]]] = {}
    for parts in photos:
        if len(parts) >= 2:
            inside.setdefault(parts[0], []).append(parts[1:])
    splits = sorted(
        (top for top, rel in inside.items() if top.lower() in SPLIT_NAMES and any(len(r) >= 2 for r in rel)),
        key=lambda top: (SPLIT_ORDER.index(top.lower()), top),  # train first
    )
    if splits:
        classes = sorted({r[0] for top in splits for r in inside[top] if len(r) >= 2})
        one = splits[0]
        them = "it" if len(splits) == 1 else "them"
        if zipped:
            others = _listing((f"{top_in}{s}/" for s in splits if s != one), keep_order=True)
            send = "upload that zip" if relative_names else "`leafdoc ingest` that zip with --dataset NAME"
            hint = (
                f"Zip the class folders themselves: make a zip of the folder {top_in}{one}/ (the class folders are "
                f"inside it) and {send}"
                + (
                    f", then the same for each other split ({others}) to the same dataset (leafdoc makes its own "
                    "train/validation/test split)."
                    if others
                    else "."
                )
            )
        elif relative_names:
            hint = "Upload the class folders themselves: zip the folder that holds them, one split at a time."
        else:
            others = _listing((s for s in splits if s != one), keep_order=True)
            hint = (
                f"Point leafdoc at the class folders: `leafdoc ingest {Path(root) / one} --dataset NAME`, then the "
                f"same for each other split ({others}) to the same --dataset (leafdoc makes its own train/validation/"
                "test split), and `leafdoc train --dataset NAME`."
                if others
                else f"Point leafdoc at the class folders: `leafdoc ingest {Path(root) / one} --dataset NAME` and "
                "`leafdoc train --dataset NAME`."
            )
        what = "is a dataset split, not a class" if len(splits) == 1 else "are dataset splits, not classes"
        folders = _listing((f"{top_in}{s}/" for s in splits), keep_order=True)
        names = _listing(map(repr, splits), keep_order=True)
        return DatasetError(
            f"{where}: {folders} {what}: the class folders are inside {them} ({_listing(classes)}). As it is, the "
            f"labels would be the split names ({names}).",
            hint=hint,
        )
    loose = sum(1 for parts in photos if len(parts) == 1)  # photos in `root` itself, in no class folder
    # a folder given on this machine with its photos in it and no folder at all: one class folder given for the
    # folder that holds them, the likeliest slip (a server's upload of a flat zip or files is labelled by `label`)
    flat = loose and not inside and not zipped and not relative_names
    if flat or (inside and loose > max(len(rel) for rel in inside.values())):
        # most photos lie in the folder itself: one class folder given for the folder that holds them (its own
        # sub-folders would become the classes, and its photos be left out; with no sub-folder at all, nothing is
        # ingested and the command says so)
        subs = f" and {len(photos) - loose} in its sub-folders ({_listing(inside)})" if inside else ""
        if zipped or relative_names:
            hint = "Zip the folder that holds the class folders (one folder per class, each holding its photos)."
        else:
            hint = (
                f"Pass the folder that holds the class folders (`leafdoc ingest {Path(root).parent} --dataset NAME`, "
                f"if {Path(root).name}/ is one of them), or put these photos in a folder named after their class."
            )
        return DatasetError(
            f"{where}: {loose} of its photos are in it directly, in no class folder{subs}: it looks like one class "
            "folder, not the folder that holds the class folders, so its photos would be left out.",
            hint=hint,
        )
    if len(inside) == 1:
        (top, rel), *_ = inside.items()
        if top not in known_labels and all(len(r) >= 2 for r in rel):
            subs = sorted({r[0] for r in rel})
            if zipped:
                one_class = (
                    f"upload the zip with label={top}, or to a dataset that already has a class {top!r}."
                    if relative_names
                    else f"ingest the zip into a dataset that already has a class {top!r} (`--dataset NAME`), or "
                    "list the photos in a CSV with path,label."
                )
                hint = (
                    f"If the folders inside {top_in}{top}/ are the classes, zip the folder {top_in}{top}/ itself, "
                    f"not the one that holds it. If {top!r} is one class whose photos are sorted into sub-folders, "
                    + one_class
                )
            elif relative_names:
                hint = f"Upload the class folders themselves: zip the folder {top!r}, not the one that holds it."
            else:
                hint = (
                    f"If the folders inside {top}/ are the classes, pass `{Path(root) / top}` instead. If {top!r} "
                    f"is one class whose photos are sorted into sub-folders, ingest it into a dataset that already has "
                    f"a class {top!r} (`--dataset NAME`), or list the photos in a CSV with path,label."
                )
            return DatasetError(
                f"{where}: all its photos are in sub-folders of one folder, {top_in}{top}/ ({_listing(subs)}), so they "
                f"would all get one label, {top!r}: the classes look one level further down.",
                hint=hint,
            )
    return None


def iter_folder(
    root: Path,
    limits: Limits = Limits(),
    relative_names: bool = False,
    known_labels: frozenset[str] = frozenset(),
) -> Iterator[Entry | Skipped]:
    """One subfolder per class; files in nested folders belong to their top-level class folder. Files are named
    by their path, or (`relative_names`: a folder the server made of an upload) by their path inside `root`.
    A folder one level above its class folders is refused (`nesting_problem`)."""
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder.", hint="Pass a folder with one subfolder per class.")
    paths = sorted(root.rglob("*"))
    photos = [
        rel.parts
        for rel in (p.relative_to(root) for p in paths if not p.is_dir())
        if not _is_hidden(rel.parts) and is_image_name(rel)
    ]
    if problem := nesting_problem(root, photos, known_labels, relative_names):
        raise problem
    holding = {parts[0] for parts in photos if len(parts) >= 2}
    for path in paths:
        if path.is_dir():
            rel = path.relative_to(root)
            if len(rel.parts) == 1 and not _is_hidden(rel.parts) and rel.parts[0] not in holding:
                name = printable(str(rel) if relative_names else str(path)) + "/"
                yield Skipped(name, "a class folder with no photos in it: add its photos, or remove the folder")
            continue
        rel = path.relative_to(root)
        name = printable(str(rel) if relative_names else str(path))
        if _is_hidden(rel.parts):
            yield Skipped(name, "hidden or system file, not a photo")
            continue
        if len(rel.parts) < 2:
            yield Skipped(name, "not inside a class folder (put each photo in a folder named after its label)")
            continue
        if not is_image_name(path):
            yield Skipped(name, f"not an image file type ({path.suffix or 'no suffix'})")
            continue
        yield Entry(name, rel.parts[0], _reader(path, limits.max_file_bytes, name))


def _safe_member_parts(member: str) -> tuple[str, ...] | None:
    """The member's path parts, or None if it could escape the extraction root."""
    if member.startswith(("/", "\\")) or "\\" in member or (len(member) > 1 and member[1] == ":"):
        return None
    parts = PurePosixPath(member).parts
    if any(p in ("..", "") for p in parts):
        return None
    return parts


def iter_zip(
    zpath: Path,
    limits: Limits = Limits(),
    label: str | None = None,
    relative_names: bool = False,
    known_labels: frozenset[str] = frozenset(),
) -> Iterator[Entry | Skipped]:
    """A zip of class folders (optionally inside one top folder), or flat photos with `label`. Without `label`, a
    zip whose class folders are one level further down is refused before any entry (`nesting_problem`)."""

    def shown_as(p: Path) -> str:
        return p.name if relative_names else str(p)

    try:
        zf = zipfile.ZipFile(zpath)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f"{shown_as(zpath)}: not a readable zip file ({exc}).", hint="Re-create the zip.") from None
    except UnicodeDecodeError:
        raise DatasetError(
            f"{shown_as(zpath)}: not a readable zip file (file names marked as UTF-8 are not valid UTF-8).",
            hint="Re-create the zip with a tool that writes UTF-8 names (e.g. `zip` or your system's "
            "'Compress'), or rename the files to plain letters and digits first.",
        ) from None
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > limits.max_zip_members:
        raise DatasetError(
            f"{shown_as(zpath)}: {len(infos):,} files is over the limit of {limits.max_zip_members:,}.",
            hint="Split the upload into several zips.",
        )
    declared = sum(i.file_size for i in infos)
    if declared > limits.max_zip_uncompressed_bytes:
        raise DatasetError(
            f"{shown_as(zpath)}: unpacks to {declared:,} bytes, "
            f"over the limit of {limits.max_zip_uncompressed_bytes:,}.",
            hint="Split the upload into several zips.",
        )
    parts_of = {i.filename: _safe_member_parts(i.filename) for i in infos}
    # A zip made by zipping the dataset folder has one top folder holding the class folders. Only photos
    # count: macOS adds a __MACOSX/ top folder and .DS_Store files beside the class folders.
    safe = [p for p in parts_of.values() if p and not _is_hidden(p) and is_image_name(p[-1])]
    strip = 0
    if label is None and safe and len({p[0] for p in safe}) == 1 and all(len(p) >= 3 for p in safe):
        # rust/<field 1, field 2>/... added to a dataset with a class 'rust' (and none named like its sub-folders)
        # is that class's photos sorted into folders, as a folder of them is; otherwise a zipped dataset folder
        adds_to_a_class = safe[0][0] in known_labels and not known_labels & {p[1] for p in safe}
        strip = 0 if adds_to_a_class else 1
    if label is None and (
        problem := nesting_problem(
            zpath, [p[strip:] for p in safe], known_labels, relative_names, zip_top=f"{safe[0][0]}/" if strip else ""
        )
    ):
        zf.close()
        raise problem
    for info in infos:
        name = f"{zpath.name}:{printable(info.filename)}"
        parts = parts_of[info.filename]
        if parts is None:
            yield Skipped(
                name,
                "unsafe path in the zip (absolute or containing '..'), refused; "
                "re-create the zip from the dataset folder",
            )
            continue
        parts = parts[strip:]
        if _is_hidden(parts):
            yield Skipped(name, "hidden or system file, not a photo")
            continue
        if not is_image_name(info.filename):
            yield Skipped(
                name,
                f"not an image file type ({PurePosixPath(info.filename).suffix or 'no suffix'})",
            )
            continue
        if label is None and len(parts) < 2:
            yield Skipped(name, "not inside a class folder (put each photo in a folder named after its label)")
            continue
        if info.file_size > limits.max_file_bytes:
            yield Skipped(
                name,
                f"{info.file_size:,} bytes is over the per-file limit of {limits.max_file_bytes:,}; "
                "downscale the photo or raise LEAFDOC_MAX_IMAGE_BYTES",
            )
            continue
        if info.compress_size and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO:
            yield Skipped(
                name,
                f"compresses {info.file_size / info.compress_size:,.0f} to 1, implausible for a photo "
                "(a zip bomb?), refused; zip the original photos",
            )
            continue
        yield Entry(name, label or parts[0], _zip_reader(zf, info, limits.max_file_bytes, name))


def _zip_reader(zf: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int, name: str) -> Callable[[], bytes]:
    def read() -> bytes:
        # Read at most max_bytes+1 so a member that lies about its size still cannot blow up memory.
        try:
            with zf.open(info) as fh:
                data = fh.read(max_bytes + 1)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as exc:
            # bad CRC, corrupt deflate data, truncated zip, encrypted member, unsupported compression
            raise DatasetError(
                f"{name}: cannot be unpacked ({exc}).",
                hint="Re-create the zip (without a password) and upload it again.",
            ) from None
        if len(data) > max_bytes:
            raise DatasetError(
                f"{name}: unpacks past the per-file limit of {max_bytes:,} bytes (its header says less).",
                hint="Re-create the zip from the original photos.",
            )
        return data

    return read


def iter_csv(cpath: Path, limits: Limits = Limits()) -> Iterator[Entry | Skipped]:
    """A CSV with `path,label` columns; relative paths are relative to the CSV's folder."""
    try:
        text = cpath.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{cpath}: cannot read the CSV ({exc}).", hint="Save it as UTF-8 text.") from None
    reader = csv.DictReader(text.splitlines())
    fields = [f.strip().lower() for f in (reader.fieldnames or [])]
    if "path" not in fields or "label" not in fields:
        raise DatasetError(
            f"{cpath}: the CSV needs a header with 'path' and 'label' columns (found: {', '.join(fields) or 'none'}).",
            hint="Add a first line 'path,label' and one photo per line.",
        )
    for lineno, row in enumerate(reader, start=2):
        where = f"{cpath}:{lineno}"
        if None in row:  # more fields than the header: often a path with an unquoted comma
            yield Skipped(where, "the row has more fields than the header; quote paths and labels that contain commas")
            continue
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        if not row.get("path") or not row.get("label"):
            yield Skipped(where, "row without a path or label; fill in both columns")
            continue
        path = Path(row["path"])
        if not path.is_absolute():
            path = cpath.parent / path
        if not path.is_file():
            yield Skipped(
                f"{where} ({row['path']})",
                "file not found; check the path (relative paths start at the CSV's folder)",
            )
            continue
        if not is_image_name(path):
            yield Skipped(str(path), f"not an image file type ({path.suffix or 'no suffix'})")
            continue
        yield Entry(printable(str(path)), row["label"], _reader(path, limits.max_file_bytes, printable(str(path))))


def iter_source(
    path: Path,
    limits: Limits = Limits(),
    label: str | None = None,
    relative_names: bool = False,
    known_labels: frozenset[str] = frozenset(),
) -> Iterator[Entry | Skipped]:
    """Dispatch on what PATH is: folder, .zip or .csv. `relative_names`: the source is a file or folder the server
    made of an upload, so names and messages say where things are inside it, never where the server keeps it.
    `known_labels`: the labels of the dataset a folder or zip is added to (`nesting_problem`)."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder.", hint="Check the path.")
    if path.is_dir():
        return iter_folder(path, limits, relative_names, known_labels)
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return iter_zip(path, limits, label, relative_names, known_labels)
    if suffix == ".csv":
        return iter_csv(path, limits)
    raise DatasetError(
        f"{path}: not a folder, .zip or .csv.",
        hint="Pass a folder with one subfolder per class, a zip of such a folder, or a CSV with path,label columns.",
    )


def list_labelled_folder(root: Path) -> tuple[list[tuple[Path, str]], list[Skipped]]:
    """(path, label) pairs of a class-folder dataset, for evaluation and stats straight from disk."""
    entries, skipped = [], []
    for item in iter_folder(Path(root)):
        if isinstance(item, Entry):
            entries.append((Path(item.name), item.label))
        else:
            skipped.append(item)
    if not entries:
        raise DatasetError(
            f"{root}: no images found.",
            hint="Pass a folder with one subfolder per class, each holding photos.",
        )
    return entries, skipped
