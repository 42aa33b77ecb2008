"""Ingest: labelled photos -> content-addressed store + a new immutable dataset version.

Every file is fully decoded; exact duplicates (sha256) are not stored twice; near-duplicates
(perceptual hash, invariant to flips and rotations) are reported and later kept in one split.
A bad file is rejected with its reason and never aborts the rest. The version is written in one
database transaction after all its blobs are in the store, so a failed ingest leaves nothing
half-registered.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image
from sqlalchemy import func, insert, literal, select
from sqlalchemy.exc import IntegrityError

from leafdoc.core.errors import Conflict, DatasetError, LeafdocError, server_fault
from leafdoc.data.catalog import (
    Catalog,
    DatasetItemRow,
    DatasetRow,
    DatasetVersionRow,
    ImageRow,
    to_signed64,
)
from leafdoc.data.datasets import latest_version, version_items
from leafdoc.data.names import name_problem, shown
from leafdoc.data.phash import canonical_phash, near_duplicate_pairs
from leafdoc.data.sources import Entry, Limits, Skipped, iter_source
from leafdoc.data.store import BlobStore
from leafdoc.imaging.photos import DEFAULT_MAX_PIXELS, open_photo, sha256_bytes
from leafdoc.imaging.quality import check_photo

INGEST_MIN_SIDE = 256  # the perceptual hash reads a 32 px thumbnail; 256 px keeps it as from the whole photo

NEAR_DUPLICATE_BITS = 4  # bits apart under the closest flip/rotation (data/phash.phash_distance)

Progress = Callable[[int, int], None]


@dataclass
class IngestResult:
    dataset: str
    version: int | None
    created_version: bool
    added: int
    duplicates: list[dict] = field(default_factory=list)
    near_duplicates: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    # Photos added that leafdoc would refuse to diagnose (imaging/quality.py: too dark, black and white, blurred...):
    # kept, as a lab may mean them, but named, as a model then learns from photos no grower's answer comes from.
    poor_photos: list[dict] = field(default_factory=list)
    n_images: int = 0
    n_classes: int = 0
    classes: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Decoded:
    entry: Entry
    sha: str
    data: bytes
    nbytes: int
    width: int
    height: int
    format: str
    mode: str
    phash: int
    problems: tuple[str, ...] = ()  # imaging/quality.py's codes


def _decode_entry(entry: Entry, max_pixels: int) -> _Decoded | Skipped:
    try:
        data = entry.read()
        # Decoded whole (a truncated file fails here), but no larger than the hash and checks need.
        img, frame = open_photo(data, entry.name, max_pixels, min_side=INGEST_MIN_SIDE)
        width, height = frame.size
        # Pillow's `format` is lost by convert(); re-read the header cheaply for the record.
        with Image.open(io.BytesIO(data)) as raw:
            fmt, mode = raw.format or "?", raw.mode
        return _Decoded(
            entry,
            sha256_bytes(data),
            data,
            len(data),
            width,
            height,
            fmt,
            mode,
            canonical_phash(img),
            tuple(p.code for p in check_photo(img, own_size=frame.size)),
        )
    except LeafdocError as exc:
        return Skipped(entry.name, _reason(exc, entry.name))
    except OSError as exc:
        return Skipped(entry.name, f"cannot read the file ({exc}); check that it exists and is readable")
    except Exception as exc:  # one odd file must never abort the rest of the ingest
        return Skipped(entry.name, f"cannot be read as an image ({type(exc).__name__}: {exc}); re-export the photo")


def _reason(exc: LeafdocError, name: str) -> str:
    """The error's message without the file name (the summary shows it beside), plus what to do."""
    message = exc.message.removeprefix(f"{name}: ")
    return f"{message} {exc.hint}" if exc.hint else message


def _near_duplicates(new: list[_Decoded], existing: list[int], existing_names: list[str]) -> list[dict]:
    """Each new image that is a near-duplicate of an earlier one (existing first), with the first match."""
    if not new:
        return []
    hashes = list(existing) + [d.phash for d in new]
    names = existing_names + [d.entry.name for d in new]
    first: dict[int, int] = {}
    for i, j in near_duplicate_pairs(hashes, NEAR_DUPLICATE_BITS, start=len(existing)):
        first.setdefault(i, j)
    return [{"file": names[i], "similar_to": names[j]} for i, j in sorted(first.items())]


def _default_name(source: Path) -> str:
    # `leafdoc ingest .` names the dataset after the folder, not "" (Path(".").stem is empty).
    path = source.resolve() if source.name in ("", ".", "..") else source
    return path.name if source.is_dir() else path.stem


def check_dataset_name(name: str) -> str:
    """A dataset name is used in file names (summaries, caches): refuse ones that are empty or a path."""
    problem = name_problem(name)
    if problem:
        raise DatasetError(
            f"{shown(name)} cannot be a dataset name: {problem}.",
            hint="Pass --dataset NAME: up to 200 printable characters, without '/' or '\\', not starting with "
            "'.' or a space.",
        )
    return name


def _put(store: BlobStore, d: _Decoded, dataset: str, prev: DatasetVersionRow | None) -> None:
    try:
        store.put(d.data)
    except LeafdocError:
        raise
    except Exception as exc:  # disk full, read-only, bucket unreachable...: stop, and say that nothing was registered
        state = f"still at version {prev.version}" if prev else "not created"
        raise server_fault(
            exc,
            f"{d.entry.name}: could not be written to the store ({type(exc).__name__}: {exc}). "
            f"Nothing was registered: dataset {dataset!r} is {state}.",
            hint="Fix the store (free disk space, check the bucket and its credentials) and run the ingest again.",
        ) from exc


def ingest(
    source: Path,
    catalog: Catalog,
    store: BlobStore,
    dataset: str | None = None,
    *,
    label: str | None = None,
    limits: Limits = Limits(),
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Progress | None = None,
    workers: int = 4,
    source_name: str | None = None,
) -> IngestResult:
    """`source_name`: what to call a source the server made of an upload (the client's file name); files are
    then named inside it, and no message or record names where the server keeps it."""
    source = Path(source)
    dataset = check_dataset_name(dataset or _default_name(source))
    prev = latest_version(catalog, dataset)
    current: dict[str, str] = {}  # sha -> label of the version being built
    prev_items: list[tuple[str, str, int]] = []
    if prev is not None:
        prev_items = version_items(catalog, prev)
        current = {sha: lab for sha, lab, _ in prev_items}
    # A lone class folder (its photos in sub-folders) is fine when it adds to a class the dataset has.
    known = frozenset(current.values())
    items = list(iter_source(source, limits, label, relative_names=source_name is not None, known_labels=known))
    if not items:
        raise DatasetError(
            f"{source_name or source}: no files found.",
            hint="Pass a folder with one subfolder per class, each holding photos.",
        )

    result = IngestResult(dataset=dataset, version=prev.version if prev else None, created_version=False, added=0)
    result.rejected = [{"file": i.name, "reason": i.reason} for i in items if isinstance(i, Skipped)]
    entries = []
    for item in (i for i in items if isinstance(i, Entry)):
        problem = name_problem(item.label)
        if problem:  # one rule for every source of labels: zip and folder names, CSV columns, form fields
            reason = f"its label {shown(item.label)} cannot be used: {problem}; rename the class folder or label"
            result.rejected.append({"file": item.name, "reason": reason})
        else:
            entries.append(item)

    added: list[_Decoded] = []
    first_name: dict[str, str] = {}
    done = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for outcome in pool.map(lambda e: _decode_entry(e, max_pixels), entries):
            done += 1
            if progress:
                progress(done, len(entries))
            if isinstance(outcome, Skipped):
                result.rejected.append({"file": outcome.name, "reason": outcome.reason})
                continue
            known = current.get(outcome.sha)
            if known is not None:
                if known != outcome.entry.label:
                    result.rejected.append(
                        {
                            "file": outcome.entry.name,
                            "reason": f"the same image is already labelled {known!r}; fix one of the two labels",
                        }
                    )
                else:
                    result.duplicates.append(
                        {
                            "file": outcome.entry.name,
                            "of": first_name.get(outcome.sha, "earlier version"),
                        }
                    )
                continue
            _put(store, outcome, dataset, prev)
            current[outcome.sha] = outcome.entry.label
            first_name[outcome.sha] = outcome.entry.name
            outcome.data = b""  # the store has it; free the memory
            added.append(outcome)
            if outcome.problems:
                result.poor_photos.append({"file": outcome.entry.name, "problems": list(outcome.problems)})

    existing = [ph for _, _, ph in prev_items]
    result.near_duplicates = _near_duplicates(added, existing, [f"{sha[:12]} ({lab})" for sha, lab, _ in prev_items])
    result.added = len(added)

    if added:
        try:
            result.version = _write_version(
                catalog, dataset, prev, prev_items, added, source_name or str(source), result
            )
        except IntegrityError:
            raise _conflict(dataset, prev, "another ingest wrote the same dataset or photos") from None
        result.created_version = True
    classes: dict[str, int] = {}
    for lab in current.values():
        classes[lab] = classes.get(lab, 0) + 1
    result.classes = dict(sorted(classes.items()))
    result.n_images = len(current)
    result.n_classes = len(classes)
    return result


def _conflict(dataset: str, prev: DatasetVersionRow | None, what: str) -> Conflict:
    start = f"version {prev.version}" if prev else "no version"
    return Conflict(
        f"dataset {dataset!r}: {what} while this ingest ran (it started from {start}). "
        "Nothing was registered by this ingest.",
        hint="Run the same ingest again: photos already in the store are not copied twice.",
    )


# sha256s asked for in one query: SQLite refuses more than 32,766 values in a statement (Python's own SQLite here
# takes 250,000, but TensorFlow brings its own, which the sqlite3 module uses once TensorFlow is imported first:
# PlantVillage's 34,781 photos in one ingest by scripts/train_starter.py failed with "too many SQL variables").
SHAS_PER_QUERY = 10_000


def stored_shas(session, shas: list[str]) -> set[str]:
    """Which of `shas` the catalog's images table already holds, asked for a bounded number at a time."""
    known: set[str] = set()
    for i in range(0, len(shas), SHAS_PER_QUERY):
        chunk = shas[i : i + SHAS_PER_QUERY]
        known.update(session.scalars(select(ImageRow.sha256).where(ImageRow.sha256.in_(chunk))))
    return known


def _write_version(catalog, dataset, prev, prev_items, added, source, result) -> int:
    labels = {sha: lab for sha, lab, _ in prev_items}
    labels.update({d.sha: d.entry.label for d in added})
    with catalog.Session.begin() as s:
        ds = s.scalars(select(DatasetRow).where(DatasetRow.name == dataset)).first()
        if ds is None:
            ds = DatasetRow(name=dataset)
            s.add(ds)
            s.flush()
        known = stored_shas(s, [d.sha for d in added])
        for d in added:
            if d.sha not in known:
                s.add(
                    ImageRow(
                        sha256=d.sha,
                        width=d.width,
                        height=d.height,
                        format=d.format,
                        mode=d.mode,
                        nbytes=d.nbytes,
                        phash=to_signed64(d.phash),
                    )
                )
        # Versions are numbered per dataset; take the next number inside the transaction. If another
        # ingest registered a version since this one read its parent, writing ours would drop that
        # version's new images from the latest version: refuse instead (the unique constraint on
        # (dataset, version) catches the same race when both commit at once).
        top = s.scalar(select(func.max(DatasetVersionRow.version)).where(DatasetVersionRow.dataset_id == ds.id))
        if top != (prev.version if prev else None):
            raise _conflict(dataset, prev, f"another ingest registered version {top}")
        number = (top or 0) + 1
        summary = {
            "added": result.added,
            "duplicates": len(result.duplicates),
            "near_duplicates": len(result.near_duplicates),
            "rejected": result.rejected,
        }
        row = DatasetVersionRow(
            dataset_id=ds.id,
            version=number,
            parent_version=prev.version if prev else None,
            n_images=len(labels),
            n_classes=len(set(labels.values())),
            source=source,
            summary=summary,
        )
        s.add(row)
        s.flush()
        if prev is not None:  # a version holds every image of its parent, plus the new ones
            s.execute(
                insert(DatasetItemRow).from_select(
                    ["version_id", "sha256", "label", "source_name"],
                    select(
                        literal(row.id),
                        DatasetItemRow.sha256,
                        DatasetItemRow.label,
                        DatasetItemRow.source_name,
                    ).where(DatasetItemRow.version_id == prev.id),
                )
            )
        s.add_all(
            DatasetItemRow(version_id=row.id, sha256=d.sha, label=d.entry.label, source_name=d.entry.name)
            for d in added
        )
    return number
