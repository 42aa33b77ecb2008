"""What a dataset looks like, as numbers (stats.json) and pictures (PNG).

Class balance, image sizes and aspect ratios, colour and brightness, and sharpness per class: the
features that explain why a model works on one dataset and not on the photos users take.
`compute_stats` returns plain JSON-ready data (the web service answers with it), `write_stats`
writes the files, and each `plot_*` returns a matplotlib Figure a notebook or the desktop app reuses.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image

from leafdoc.core.atomic import atomic_dir, check_replaceable
from leafdoc.core.errors import DatasetError, LeafdocError
from leafdoc.data.sources import Entry, Limits, Skipped, iter_folder
from leafdoc.imaging.figure_png import figure_png
from leafdoc.imaging.photos import DEFAULT_MAX_PIXELS, decode

if TYPE_CHECKING:
    from leafdoc.data.catalog import Catalog
    from leafdoc.data.store import BlobStore

Progress = Callable[[int, int], None]

# Sharpness and colour are measured on a copy at most this big: the variance of the Laplacian
# depends on resolution, so a fixed scale makes a phone photo and a 256 px crop comparable,
# and means over a 256 px copy match full-resolution means at a hundredth of the cost.
MEASURE_PX = 256
HIST_BINS = 20
SAMPLES_PER_CLASS = 4
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def measure(img: Image.Image) -> dict:
    """Features of one decoded RGB image: size, aspect (w/h), mean RGB, brightness, sharpness."""
    import cv2

    w, h = img.size
    small = img
    if max(w, h) > MEASURE_PX:
        scale = MEASURE_PX / max(w, h)
        small = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX)
    rgb = np.asarray(small, dtype=np.float64)
    grey = np.asarray(small.convert("L"))  # ITU-R 601 luma, what people call brightness
    return {
        "width": w,
        "height": h,
        "aspect": w / h,
        "mean_rgb": [float(v) for v in rgb.reshape(-1, 3).mean(axis=0)],
        "brightness": float(grey.mean()),
        "sharpness": float(cv2.Laplacian(grey, cv2.CV_64F).var()),
    }


def _measure_entry(entry: Entry, max_pixels: int) -> dict | Skipped:
    try:
        return measure(decode(entry.read(), entry.name, max_pixels))
    except LeafdocError as exc:
        return Skipped(entry.name, exc.message.removeprefix(f"{entry.name}: "))
    except OSError as exc:
        return Skipped(entry.name, f"cannot read the file ({exc})")


def sample_entries(entries: Sequence[Entry], per_class: int | None, seed: int = 0) -> list[Entry]:
    """At most `per_class` entries of each class, chosen at random but the same every run."""
    if per_class is None:
        return list(entries)
    by_class: dict[str, list[Entry]] = defaultdict(list)
    for e in entries:
        by_class[e.label].append(e)
    rng = random.Random(seed)
    out: list[Entry] = []
    for label in sorted(by_class):
        items = sorted(by_class[label], key=lambda e: e.name)
        out += items if len(items) <= per_class else sorted(rng.sample(items, per_class), key=lambda e: e.name)
    return out


def summarize(values: Iterable[float]) -> dict:
    """min, max, mean and quantiles (p10, p25, median, p75, p90): enough to draw a box plot later."""
    arr = np.asarray(list(values), dtype=np.float64)
    if not arr.size:
        return {"n": 0}
    q = np.quantile(arr, QUANTILES)
    return {
        "n": int(arr.size),
        "min": float(arr.min()),
        "max": float(arr.max()),
        "mean": float(arr.mean()),
        **{f"p{round(p * 100)}": float(v) for p, v in zip(QUANTILES, q, strict=True)},
    }


def histogram(values: Sequence[float], bins: int = HIST_BINS) -> dict:
    arr = np.asarray(values, dtype=np.float64)
    if not arr.size:
        return {"edges": [], "counts": []}
    lo, hi = float(arr.min()), float(arr.max())
    if lo == hi:  # one size for all images: one narrow bar, not twenty empty ones
        half = max(abs(lo) * 0.02, 0.01)
        lo, hi, bins = lo - half, hi + half, 1
    counts, edges = np.histogram(arr, bins=bins, range=(lo, hi))
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def imbalance_ratio(counts: dict[str, int]) -> float | None:
    """Images in the biggest class over images in the smallest (1.0 = balanced)."""
    nonzero = [c for c in counts.values() if c > 0]
    return float(max(nonzero) / min(nonzero)) if nonzero else None


def _class_stats(rows: list[dict]) -> dict:
    return {
        "n": len(rows),
        # every image counts once, whatever its size, so a few huge photos do not set the class colour
        "mean_rgb": [float(v) for v in np.mean([r["mean_rgb"] for r in rows], axis=0)],
        "brightness": summarize(r["brightness"] for r in rows),
        "sharpness": summarize(r["sharpness"] for r in rows),
        "width": summarize(r["width"] for r in rows),
        "height": summarize(r["height"] for r in rows),
        "aspect": summarize(r["aspect"] for r in rows),
    }


def compute_stats(
    entries: Sequence[Entry],
    *,
    sample: int | None = None,
    seed: int = 0,
    samples_per_class: int = SAMPLES_PER_CLASS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    skipped: Sequence[Skipped] = (),
    source: str | None = None,
    progress: Progress | None = None,
    workers: int = 2,
) -> dict:
    """Measure every entry (or `sample` per class) and return JSON-ready statistics.

    `class_counts` and `imbalance_ratio` count every entry given, even when only a sample is
    measured, but for those found unreadable: a file that cannot be decoded is no photo of its class (a
    lab counts its classes to see what training will learn from). Unreadable images are listed under
    `skipped` with their reason; with `sample`, only the sampled ones are decoded, so an unreadable file
    outside the sample is still counted.
    """
    entries = list(entries)
    if not entries:
        raise DatasetError(f"{source or 'the dataset'}: no images to measure.", hint="Check the folder or dataset.")
    chosen = sample_entries(entries, sample, seed)
    rows: dict[str, list[dict]] = defaultdict(list)
    names: dict[str, list[str]] = defaultdict(list)
    bad = [{"file": s.name, "reason": s.reason} for s in skipped]
    unreadable: Counter[str] = Counter()
    # Threads: Pillow and OpenCV release the GIL while decoding and filtering.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for done, (entry, res) in enumerate(
            zip(chosen, pool.map(partial(_measure_entry, max_pixels=max_pixels), chosen), strict=True), 1
        ):
            if isinstance(res, Skipped):
                bad.append({"file": res.name, "reason": res.reason})
                unreadable[entry.label] += 1
            else:
                rows[entry.label].append(res)
                names[entry.label].append(entry.name)
            if progress:
                progress(done, len(chosen))

    counts = {label: n - unreadable[label] for label, n in sorted(Counter(e.label for e in entries).items())}
    every = [r for label in sorted(rows) for r in rows[label]]
    return {
        "source": source,
        "n_images": sum(counts.values()),
        "n_measured": len(every),
        "n_classes": len(counts),
        "sample_per_class": sample,
        "class_counts": counts,
        "imbalance_ratio": imbalance_ratio(counts),
        "size": {
            "width": summarize(r["width"] for r in every),
            "height": summarize(r["height"] for r in every),
            "aspect": summarize(r["aspect"] for r in every),
            "histograms": {k: histogram([r[k] for r in every]) for k in ("width", "height", "aspect")},
        },
        "overall": _class_stats(every) if every else {"n": 0},
        "per_class": {label: _class_stats(rows[label]) for label in sorted(rows)},
        "samples": {label: names[label][:samples_per_class] for label in sorted(names)},
        "skipped": bad,
    }


# -- where entries come from ----------------------------------------------------------------------


def folder_entries(root: Path, limits: Limits = Limits()) -> tuple[list[Entry], list[Skipped]]:
    """The photos of a class-folder dataset on disk, and the files that are not photos."""
    entries, skipped = [], []
    for item in iter_folder(Path(root), limits):
        (entries if isinstance(item, Entry) else skipped).append(item)
    return entries, skipped


def catalog_entries(
    catalog: Catalog, store: BlobStore, dataset: str, version: int | None = None
) -> tuple[list[Entry], int]:
    """The images of a catalog dataset version (blobs read lazily from the store), and its version number."""
    from leafdoc.data.datasets import get_version, version_items

    row = get_version(catalog, dataset, version)
    items = version_items(catalog, row)
    return [Entry(sha, label, partial(store.get, sha)) for sha, label, _ in items], row.version


# -- pictures -------------------------------------------------------------------------------------


def _barh_figure(n: int, width: float = 8.0) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, max(2.5, 0.28 * n + 1.2)), layout="constrained")
    return fig, fig.add_subplot()


def plot_class_distribution(stats: dict) -> Figure:
    counts = stats["class_counts"]
    labels = list(counts)
    fig, ax = _barh_figure(len(labels))
    ax.barh(labels, [counts[k] for k in labels], color="#4c72b0")
    ax.invert_yaxis()  # first class at the top, like the tables
    ax.tick_params(axis="y", labelsize=8)
    ratio = stats.get("imbalance_ratio")
    ax.set_title(f"Images per class (imbalance max/min: {ratio:.2f})" if ratio else "Images per class")
    ax.set_xlabel("images")
    for i, k in enumerate(labels):
        ax.text(counts[k], i, f" {counts[k]}", va="center", fontsize=7)
    return fig


def plot_sizes(stats: dict) -> Figure:
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    hists = stats["size"]["histograms"]
    for ax, key, title in zip(
        fig.subplots(1, 3),
        ("width", "height", "aspect"),
        ("width (px)", "height (px)", "aspect (w / h)"),  # short: the web page's icons cover a title's right end
        strict=True,
    ):
        h, summary = hists[key], stats["size"][key]
        if h["counts"]:
            edges = np.asarray(h["edges"])
            ax.bar(edges[:-1], h["counts"], width=np.diff(edges), align="edge", color="#55a868", edgecolor="white")
        if summary.get("n") and summary["min"] == summary["max"]:
            title += f": all {summary['min']:g}"
        elif summary.get("n"):
            title += f": median {summary['p50']:g}"
        ax.set_title(title)
        ax.set_ylabel("images")
    return fig


def plot_colour(stats: dict) -> Figure:
    """Mean R, G, B per class (left) and brightness per class, each bar in the class's mean colour (right)."""
    per = stats["per_class"]
    labels = list(per)
    fig = Figure(figsize=(12, max(2.5, 0.3 * len(labels) + 1.2)), layout="constrained")
    ax_rgb, ax_b = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(labels))
    for k, (name, colour) in enumerate((("R", "#d62728"), ("G", "#2ca02c"), ("B", "#1f77b4"))):
        ax_rgb.barh(y + (k - 1) * 0.27, [per[c]["mean_rgb"][k] for c in labels], height=0.27, color=colour, label=name)
    ax_rgb.set_yticks(y, labels, fontsize=8)
    ax_rgb.invert_yaxis()
    ax_rgb.set_xlim(0, 255)
    ax_rgb.set_title("Mean colour per class")
    ax_rgb.legend(fontsize=8, loc="lower right")
    swatches = [np.clip(np.array(per[c]["mean_rgb"]) / 255, 0, 1) for c in labels]
    ax_b.barh(y, [per[c]["brightness"]["mean"] for c in labels], color=swatches, edgecolor="black", linewidth=0.4)
    ax_b.set_xlim(0, 255)
    ax_b.set_title("Brightness per class (bar colour = mean colour)")
    return fig


MEDIAN_STYLE = {"color": "#dd8452", "linewidth": 2}
MEAN_STYLE = {"marker": "^", "markerfacecolor": "#55a868", "markeredgecolor": "#55a868", "linestyle": "none"}


def plot_sharpness(stats: dict) -> Figure:
    """Box plot per class of the variance of the Laplacian: low boxes are blurry classes. Each class is named with the
    photos its box was drawn from (a box of 2 photos looks like one of 200), and the legend says which mark is the
    median and which the mean."""
    per = stats["per_class"]
    labels = [c for c in per if per[c]["sharpness"].get("n")]
    fig, ax = _barh_figure(len(labels), width=9)
    boxes = [
        {
            "label": f"{c} (n={per[c]['sharpness']['n']})",
            "med": per[c]["sharpness"]["p50"],
            "q1": per[c]["sharpness"]["p25"],
            "q3": per[c]["sharpness"]["p75"],
            "whislo": per[c]["sharpness"]["p10"],
            "whishi": per[c]["sharpness"]["p90"],
            "mean": per[c]["sharpness"]["mean"],
        }
        for c in labels
    ]
    if boxes:
        ax.bxp(
            boxes,
            orientation="horizontal",
            showfliers=False,
            showmeans=True,
            medianprops=MEDIAN_STYLE,
            meanprops=MEAN_STYLE,
        )
        ax.legend(
            handles=[Line2D([], [], label="median", **MEDIAN_STYLE), Line2D([], [], label="mean", **MEAN_STYLE)],
            fontsize=8,
            loc="best",
        )
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlabel(
        f"variance of the Laplacian, higher is sharper (greyscale, long side <= {MEASURE_PX} px)\n"
        "box: middle half of the photos; whiskers: 10th-90th percentile"
    )
    ax.set_title("Sharpness per class")
    return fig


def plot_samples(samples: dict[str, list[Image.Image]], thumb_px: int = 96) -> Figure:
    """A grid: one row per class, a few photos each."""
    labels = list(samples)
    cols = max([len(v) for v in samples.values()] + [1])
    inch = thumb_px / 72
    fig = Figure(figsize=(cols * inch + 3.5, max(1, len(labels)) * (inch + 0.1)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(max(1, len(labels)), cols, squeeze=False))
    for r, label in enumerate(labels):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(samples[label]):
                ax.imshow(samples[label][c])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    return fig


def load_samples(stats: dict, entries: Sequence[Entry], thumb_px: int = 128) -> dict[str, list[Image.Image]]:
    """Thumbnails of the sample images `compute_stats` chose, read again from their entries."""
    by_name = {e.name: e for e in entries}
    out: dict[str, list[Image.Image]] = {}
    for label, names in stats.get("samples", {}).items():
        thumbs = []
        for name in names:
            try:
                img = decode(by_name[name].read(), name)
            except (LeafdocError, OSError, KeyError):
                continue  # compute_stats already measured it; a file changed since is not worth failing for
            img.thumbnail((thumb_px, thumb_px), Image.Resampling.LANCZOS)
            thumbs.append(img)
        out[label] = thumbs
    return out


PLOTS: dict[str, Callable[[dict], Figure]] = {
    "class_distribution.png": plot_class_distribution,
    "sizes.png": plot_sizes,
    "colour.png": plot_colour,
    "sharpness.png": plot_sharpness,
}


def write_stats(stats: dict, out_dir: Path, entries: Sequence[Entry] | None = None) -> list[Path]:
    """Write stats.json and the PNGs into `out_dir` atomically; samples.png needs the `entries`."""
    import json

    out_dir = Path(out_dir)
    check_replaceable(out_dir, "stats.json")
    written = ["stats.json"]
    with atomic_dir(out_dir) as tmp:
        (tmp / "stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
        if stats.get("n_measured"):
            for name, plot in PLOTS.items():
                (tmp / name).write_bytes(figure_png(plot(stats)))
                written.append(name)
        if entries is not None and stats.get("samples"):
            (tmp / "samples.png").write_bytes(figure_png(plot_samples(load_samples(stats, entries))))
            written.append("samples.png")
    return [out_dir / n for n in written]
