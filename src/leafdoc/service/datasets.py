"""Dataset statistics for the API: `leafdoc stats` as JSON, cached per immutable dataset version."""

from __future__ import annotations

import json
import re
import threading

from leafdoc.core.atomic import atomic_write_bytes, atomic_write_json
from leafdoc.core.errors import NotFound
from leafdoc.core.settings import Settings
from leafdoc.data.catalog import Catalog
from leafdoc.data.store import BlobStore
from leafdoc.service.errors import InvalidRequest

# The sample sizes (photos measured per class) statistics are computed for; none: every photo. Each is computed once
# per dataset version and cached, so a client cannot make the server measure a dataset again by asking for another
# size (61 sizes in a row cost 6-8 s of CPU each on 1,500 photos, and left 61 cache files).
STATS_SAMPLES = (20, 50, 200)
_computing: dict[str, threading.Lock] = {}  # one computation per cache file at a time; the others wait for it
_computing_lock = threading.Lock()


def check_sample(sample: int | None) -> None:
    if sample is not None and sample not in STATS_SAMPLES:
        raise InvalidRequest(
            f"sample={sample}: statistics are measured on {', '.join(map(str, STATS_SAMPLES))} photos per class, "
            "or on every photo.",
            hint=f"Ask for one of {', '.join(map(str, STATS_SAMPLES))}, or leave `sample` out.",
        )


def dataset_stats(
    settings: Settings, catalog: Catalog, store: BlobStore, name: str, version: int | None, sample: int | None
) -> dict:
    # stats.py draws with matplotlib: import it only when someone asks for statistics.
    from leafdoc.data.stats import catalog_entries, compute_stats

    check_sample(sample)
    entries, number = catalog_entries(catalog, store, name, version)  # NotFound for unknown names/versions
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    cached = settings.cache_dir / "stats" / f"{safe}-v{number}-sample{sample or 'all'}.json"
    with _computing_lock:
        lock = _computing.setdefault(str(cached), threading.Lock())
    with lock:
        if cached.is_file():
            try:
                return json.loads(cached.read_text())
            except ValueError:
                pass
        result = compute_stats(entries, sample=sample, source=f"{name} v{number}", max_pixels=settings.max_image_pixels)
        result["dataset"], result["version"] = name, number
        atomic_write_json(cached, result)
        return result


PLOT_KINDS = ("class_distribution", "sizes", "colour", "sharpness", "samples")


def dataset_plot(
    settings: Settings,
    catalog: Catalog,
    store: BlobStore,
    name: str,
    kind: str,
    version: int | None,
    sample: int | None,
) -> bytes:
    """One picture of `leafdoc stats` as PNG bytes, cached beside the statistics it draws."""
    from leafdoc.data.stats import PLOTS, catalog_entries, load_samples, plot_samples
    from leafdoc.imaging.figure_png import figure_png

    stats = dataset_stats(settings, catalog, store, name, version, sample)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    cached = settings.cache_dir / "stats" / f"{safe}-v{stats['version']}-sample{sample or 'all'}-{kind}.png"
    if cached.is_file():
        return cached.read_bytes()
    if not stats.get("n_measured"):
        raise NotFound(
            f"dataset {name} v{stats['version']} has no readable image to draw.",
            hint="Upload photos to it first (POST /v1/uploads).",
        )
    if kind == "samples":
        entries, _ = catalog_entries(catalog, store, name, stats["version"])
        png = figure_png(plot_samples(load_samples(stats, entries)))
    else:
        png = figure_png(PLOTS[f"{kind}.png"](stats))
    atomic_write_bytes(cached, png)
    return png
