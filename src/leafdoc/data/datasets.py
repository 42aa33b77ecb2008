"""Queries over the catalog's datasets: their versions (the latest, or one by number) and a version's items;
what training, stats, the experiment runner and the API read. Ingest (data/ingest.py) writes them."""

from __future__ import annotations

import re

from sqlalchemy import select

from leafdoc.core.errors import NotFound
from leafdoc.data.catalog import Catalog, DatasetItemRow, DatasetRow, DatasetVersionRow, ImageRow, to_unsigned64


def latest_version(catalog: Catalog, dataset: str) -> DatasetVersionRow | None:
    with catalog.Session() as s:
        return s.scalars(
            select(DatasetVersionRow)
            .join(DatasetRow, DatasetRow.id == DatasetVersionRow.dataset_id)
            .where(DatasetRow.name == dataset)
            .order_by(DatasetVersionRow.version.desc())
            .limit(1)
        ).first()


def get_version(catalog: Catalog, dataset: str, version: int | None = None) -> DatasetVersionRow:
    if version is None:
        row = latest_version(catalog, dataset)
        if row is None:
            raise NotFound(
                f"dataset {dataset!r} is not in the catalog.",
                hint="Run `leafdoc ingest PATH --dataset NAME` first.",
            )
        return row
    with catalog.Session() as s:
        row = s.scalars(
            select(DatasetVersionRow)
            .join(DatasetRow, DatasetRow.id == DatasetVersionRow.dataset_id)
            .where(DatasetRow.name == dataset, DatasetVersionRow.version == version)
        ).first()
    if row is None:
        raise NotFound(f"dataset {dataset!r} has no version {version}.")
    return row


def version_items(catalog: Catalog, version_row: DatasetVersionRow) -> list[tuple[str, str, int]]:
    """(sha256, label, canonical phash) of every image in a dataset version, sorted by sha."""
    with catalog.Session() as s:
        rows = s.execute(
            select(DatasetItemRow.sha256, DatasetItemRow.label, ImageRow.phash)
            .join(ImageRow, ImageRow.sha256 == DatasetItemRow.sha256)
            .where(DatasetItemRow.version_id == version_row.id)
            .order_by(DatasetItemRow.sha256)
        ).all()
    return [(sha, label, to_unsigned64(ph)) for sha, label, ph in rows]


def version_labels(catalog: Catalog, version_row: DatasetVersionRow) -> list[str]:
    """The classes of a dataset version, sorted."""
    with catalog.Session() as s:
        labels = s.scalars(
            select(DatasetItemRow.label).where(DatasetItemRow.version_id == version_row.id).distinct()
        ).all()
    return sorted(labels)


def version_sources(catalog: Catalog, version_row: DatasetVersionRow) -> list[str]:
    """The names of the folders, zips or files (their last part only, never where they were on the machine) whose
    photos make up a dataset version: its own ingest's and every earlier version's it holds, oldest first, each once."""
    with catalog.Session() as s:
        sources = s.scalars(
            select(DatasetVersionRow.source)
            .where(
                DatasetVersionRow.dataset_id == version_row.dataset_id, DatasetVersionRow.version <= version_row.version
            )
            .order_by(DatasetVersionRow.version)
        ).all()
    names = (re.split(r"[/\\]", str(src).rstrip("/\\"))[-1] for src in sources)  # a Windows path too
    return list(dict.fromkeys(n for n in names if n))


def list_datasets(catalog: Catalog) -> list[dict]:
    with catalog.Session() as s:
        rows = s.execute(
            select(DatasetRow.name, DatasetVersionRow)
            .join(DatasetVersionRow, DatasetRow.id == DatasetVersionRow.dataset_id)
            .order_by(DatasetRow.name, DatasetVersionRow.version)
        ).all()
    out: dict[str, dict] = {}
    for name, v in rows:
        d = out.setdefault(name, {"name": name, "versions": []})
        d["versions"].append(
            {
                "version": v.version,
                "n_images": v.n_images,
                "n_classes": v.n_classes,
                "created": v.created.isoformat(),
                "source": v.source,
            }
        )
    for d in out.values():
        d["latest"] = d["versions"][-1]["version"]
    return list(out.values())
