"""Bulk labelled uploads: stream the body to disk under the data home, ingest it as a new dataset
version, keep the upload's record in the catalog, and optionally queue a retraining.

Uploads to one dataset are serialised by a catalog lease: ingest builds version N+1 from version N,
so two concurrent uploads must not both start from the same N (each would drop the other's photos).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from starlette.requests import ClientDisconnect

from leafdoc.core.errors import DatasetError, LeafdocError, NotFound, ServerFault, server_fault
from leafdoc.core.settings import Settings
from leafdoc.data import leases
from leafdoc.data.catalog import Catalog, UploadRow, utcnow
from leafdoc.data.ingest import ingest
from leafdoc.data.names import name_problem, shown
from leafdoc.data.sources import Limits
from leafdoc.service import leftovers
from leafdoc.service.deps import AppState
from leafdoc.service.errors import BadUpload
from leafdoc.service.jobs import get_job, job_dict
from leafdoc.service.training import default_dataset, submit

CHUNK = 1024 * 1024
# The dataset's lock is renewed every third of this: a holder on another host that dies (one on this host is seen
# dead at once: data/leases.py) holds up the next upload this long at most. Losing the lock to a stalled renewal
# costs nothing worse than a Conflict: ingest refuses to register a version built on one that moved under it.
INGEST_LEASE_SECONDS = 15.0


@dataclass
class SpooledFile:
    name: str  # the client's file name, reduced to a safe base name
    path: Path


@dataclass
class Spooled:
    folder: Path
    files: list[SpooledFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)


def safe_name(name: str | None, default: str) -> str:
    base = PurePosixPath((name or "").replace("\\", "/")).name.strip()
    base = "".join(c for c in base if c.isprintable() and c not in '<>:"|?*')
    if not base or base.startswith("."):
        base = default + (Path(base).suffix if base else "")
    return base[:200]


def check_name(value: str, what: str) -> str:
    """A form field's label or dataset name, by the rule every source of names follows (data/names.py)."""
    value = value.strip()
    problem = name_problem(value)
    if problem:
        raise BadUpload(
            f"{what} {shown(value)} is not usable: {problem}.",
            hint="Use 1-200 printable characters, no slashes, not starting with a dot.",
        )
    return value


def spool_fault(exc: OSError) -> ServerFault:
    return server_fault(
        exc,
        f"the upload could not be kept on the server's disk while it was read ({type(exc).__name__}: {exc}). "
        "Nothing was registered.",
        hint="Free disk space under the data home (LEAFDOC_HOME/uploads) or make it writable, then retry the upload.",
    )


@contextmanager
def spool_folder(settings: Settings) -> Iterator[tuple[str, Path]]:
    """A new upload's id and the folder its files are kept in for the block, removed after it (or, if this process
    is killed meanwhile, by the next sweep: service/leftovers.py). A disk that refuses them is the server's fault."""
    try:
        upload_id, folder = leftovers.new_upload_folder(settings)
    except OSError as exc:
        raise spool_fault(exc) from None
    try:
        yield upload_id, folder
    except OSError as exc:
        raise spool_fault(exc) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _unique(folder: Path, name: str) -> Path:
    path = folder / name
    stem, suffix, n = path.stem, path.suffix, 1
    while path.exists():
        path = folder / f"{stem}-{n}{suffix}"
        n += 1
    return path


async def spool_request(request, folder: Path) -> Spooled:
    """Write a multipart form's files (or a raw body) to `folder` as they stream in."""
    from python_multipart.multipart import FormParser, parse_options_header

    spooled = Spooled(folder)
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype == b"multipart/form-data":
        boundary = params.get(b"boundary")
        if not boundary:
            raise BadUpload("the multipart body has no boundary.", hint="Let your HTTP client build the form.")
        parts = folder / ".parts"
        parts.mkdir()
        raw_files = []

        def on_field(f) -> None:
            if f.field_name:
                spooled.fields[f.field_name.decode("utf-8", "replace")] = (f.value or b"").decode("utf-8", "replace")

        def on_file(f) -> None:
            raw_files.append(f)

        parser = FormParser(
            "multipart/form-data",
            on_field,
            on_file,
            boundary=boundary,
            config={"UPLOAD_DIR": str(parts), "MAX_MEMORY_FILE_SIZE": 0, "UPLOAD_DELETE_TMP": False},
        )
        try:
            async for chunk in request.stream():
                parser.write(chunk)
            parser.finalize()
        except (LeafdocError, ClientDisconnect, OSError):  # OSError: the server's disk, not the body
            raise
        except Exception as exc:
            raise BadUpload(f"the multipart body cannot be parsed ({exc}).") from None
        for i, f in enumerate(raw_files):
            name = safe_name(f.file_name.decode("utf-8", "replace") if f.file_name else None, f"file{i}")
            dest = _unique(folder, name)
            if f.in_memory:
                dest.write_bytes(f.file_object.getvalue())
            else:
                f.file_object.close()
                os.replace(f.actual_file_name.decode(), dest)
            spooled.files.append(SpooledFile(name, dest))
        shutil.rmtree(parts, ignore_errors=True)
    else:
        name = safe_name(request.query_params.get("filename"), "upload" + _suffix_for(ctype.decode()))
        dest = folder / name
        with open(dest, "wb") as fh:
            async for chunk in request.stream():
                fh.write(chunk)
        if dest.stat().st_size:
            spooled.files.append(SpooledFile(name, dest))
    return spooled


def _suffix_for(content_type: str) -> str:
    return {
        "application/zip": ".zip",
        "application/x-zip-compressed": ".zip",
        "image/jpeg": ".jpg",
        "image/png": ".png",
        "image/webp": ".webp",
        "image/bmp": ".bmp",
        "image/tiff": ".tif",
        "image/gif": ".gif",
    }.get(content_type.split(";")[0].strip().lower(), "")


def source_for(spooled: Spooled, label: str | None) -> Path:
    """The upload as something ingest reads: the zip itself, or a class folder of the files."""
    files = spooled.files
    if not files:
        raise BadUpload(
            "the upload holds no file.",
            hint="Send a zip of class folders as `file`, or photos as `files` with a `label`.",
        )
    zips = [f for f in files if f.name.lower().endswith(".zip")]
    if zips:
        if len(files) > 1:
            raise BadUpload(
                f"send one zip per upload, alone (this one has {len(zips)} zip(s) among {len(files)} files)."
            )
        return zips[0].path
    if label is None:
        raise BadUpload(
            "photos sent as files need a `label` (the class they all belong to).",
            hint="Add the form field label=..., or send a zip with one folder per class.",
        )
    root = spooled.folder / "labelled"
    target = root / label
    target.mkdir(parents=True)
    for f in files:
        # Files that are not images go in too: ingest rejects each with its reason.
        os.replace(f.path, _unique(target, f.name))
    return root


def upload_dict(row: UploadRow, catalog: Catalog) -> dict:
    s = dict(row.summary)
    job = None
    if row.job_id:
        try:
            job = job_dict(get_job(catalog, row.job_id))
        except NotFound:
            job = None
    return {
        "upload_id": row.id,
        "dataset": row.dataset,
        "version": row.version,
        "created_version": row.created_version,
        "added": s.get("added", 0),
        "duplicates": s.get("duplicates", []),
        "near_duplicates": s.get("near_duplicates", []),
        "rejected": s.get("rejected", []),
        "poor_photos": s.get("poor_photos", []),
        "n_images": s.get("n_images", 0),
        "n_classes": s.get("n_classes", 0),
        "classes": s.get("classes", {}),
        "created": row.created,
        "training_job": job,
        "retrain": s.get("retrain"),
    }


def process_upload(
    state: AppState,
    upload_id: str,
    spooled: Spooled,
    *,
    dataset: str | None,
    label: str | None,
    retrain: bool,
    learn_field: bool = False,
) -> dict:
    """Ingest the spooled upload, record it, and queue a retraining if asked and something was added
    (`learn_field`: one that learns the field photos among them, with no unlike-training check)."""
    settings, catalog, store, registry, queue = state.settings, state.catalog, state.store, state.registry, state.queue
    dataset = check_name(dataset, "dataset name") if dataset else default_dataset(settings, registry)
    label = check_name(label, "label") if label else None
    source = source_for(spooled, label)
    limits = Limits(settings.max_image_bytes, settings.max_zip_members, settings.max_zip_uncompressed_bytes)
    with leases.hold(
        catalog,
        f"ingest:{dataset}",
        ttl=min(settings.job_lease_seconds, INGEST_LEASE_SECONDS),
        wait=settings.upload_wait_seconds,
        what=f"dataset {dataset!r}",
    ):
        try:
            result = ingest(
                source,
                catalog,
                store,
                dataset,
                label=label,
                limits=limits,
                max_pixels=settings.max_image_pixels,
                source_name=f"upload {upload_id}: {', '.join(f.name for f in spooled.files)[:300]}",
            )
        except DatasetError as exc:
            raise BadUpload(exc.message, hint=exc.hint) from None
        except OperationalError as exc:  # no version was written: say so, not the generic words (service/errors.py)
            raise server_fault(
                exc,
                f"its catalog is unavailable ({str(exc.orig or exc).splitlines()[0][:200]}). Nothing was registered: "
                f"dataset {dataset!r} is unchanged.",
            ) from None
    summary = result.to_dict()
    row = UploadRow(
        id=upload_id,
        dataset=dataset,
        version=result.version,
        created_version=result.created_version,
        summary=summary,
        created=utcnow(),
    )
    with catalog.Session.begin() as s:
        s.add(row)
    if retrain:
        if result.created_version:
            try:
                options = {"field_dirs": []} if learn_field else None
                job = submit(settings, catalog, registry, queue, dataset=dataset, options=options, upload_id=upload_id)
                row.job_id = job["id"]
                summary["retrain"] = f"training job {job['id']} queued on {dataset} v{result.version}"
            except LeafdocError as exc:
                summary["retrain"] = f"retraining was not started: {exc.message}"
        else:
            summary["retrain"] = "nothing new was added, so no retraining was started"
        with catalog.Session.begin() as s:
            db = s.get(UploadRow, upload_id)
            db.job_id = row.job_id
            db.summary = summary
        row.summary = summary
    return upload_dict(row, catalog)


def get_upload(catalog: Catalog, upload_id: str) -> UploadRow:
    missing = NotFound(f"upload {upload_id!r} does not exist.", hint="GET /v1/uploads lists them.")
    return catalog.row(UploadRow, upload_id, missing)


def list_uploads(catalog: Catalog, limit: int = 100) -> list[UploadRow]:
    with catalog.Session() as s:
        return list(s.scalars(select(UploadRow).order_by(UploadRow.created.desc()).limit(limit)))
