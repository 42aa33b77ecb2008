"""`leafdoc stats`: dataset features on images whose answers are known, from disk and from the catalog."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from typer.testing import CliRunner

from leafdoc.cli.main import app
from leafdoc.data.stats import compute_stats, folder_entries, write_stats

PNGS = ("class_distribution.png", "sizes.png", "colour.png", "sharpness.png", "samples.png")


def solid(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def checkerboard(path: Path, size: int = 64, blur: float = 0.0) -> Path:
    """Hard black/white edges everywhere (very sharp), optionally blurred."""
    tile = (np.indices((size, size)).sum(axis=0) // 4 % 2 * 255).astype(np.uint8)
    img = Image.fromarray(tile, "L").convert("RGB")
    if blur:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


@pytest.fixture
def known_folder(tmp_path) -> Path:
    """red: pure red 40x20 and 60x30; blue: 4 pure blue squares (20-32 px);
    sharp: 3 checkerboards (64-80 px); blurry: the same, blurred. Every file is different."""
    root = tmp_path / "known"
    solid(root / "red" / "r0.png", (40, 20), (255, 0, 0))
    solid(root / "red" / "r1.png", (60, 30), (255, 0, 0))
    for i in range(4):
        solid(root / "blue" / f"b{i}.jpg", (20 + 4 * i, 20 + 4 * i), (0, 0, 255))
    for i in range(3):
        checkerboard(root / "sharp" / f"s{i}.png", size=64 + 8 * i)
        checkerboard(root / "blurry" / f"s{i}.png", size=64 + 8 * i, blur=3)
    return root


def stats_of(root: Path, **kw) -> dict:
    entries, skipped = folder_entries(root)
    return compute_stats(entries, skipped=skipped, source=str(root), **kw)


def test_sizes_colours_and_brightness_are_measured_exactly(known_folder):
    s = stats_of(known_folder)
    red, blue = s["per_class"]["red"], s["per_class"]["blue"]
    assert red["mean_rgb"] == [255.0, 0.0, 0.0]
    assert red["aspect"]["min"] == red["aspect"]["max"] == 2.0
    assert red["width"]["min"] == 40 and red["height"]["min"] == 20 and red["width"]["max"] == 60
    assert blue["aspect"]["mean"] == 1.0
    assert blue["mean_rgb"][2] > 250 and blue["mean_rgb"][0] < 5  # JPEG: nearly pure
    # Brightness is luma (0.299 R + 0.587 G + 0.114 B): pure red is dark-ish, pure blue darker.
    assert red["brightness"]["mean"] == pytest.approx(76, abs=1)
    assert blue["brightness"]["mean"] == pytest.approx(29, abs=2)
    assert s["size"]["aspect"]["max"] == 2.0
    assert s["size"]["width"]["min"] == 20 and s["size"]["width"]["max"] == 80


def test_class_counts_and_imbalance_ratio(known_folder):
    s = stats_of(known_folder)
    assert s["class_counts"] == {"blue": 4, "blurry": 3, "red": 2, "sharp": 3}
    assert s["imbalance_ratio"] == pytest.approx(4 / 2)
    assert s["n_images"] == s["n_measured"] == 12 and s["n_classes"] == 4


def test_sharpness_ranks_sharp_over_blurry_and_flat(known_folder):
    per = stats_of(known_folder)["per_class"]
    assert per["red"]["sharpness"]["mean"] == 0.0  # no edges at all
    assert per["sharp"]["sharpness"]["p50"] > 10 * per["blurry"]["sharpness"]["p50"] > 0


def test_sharpness_is_measured_at_a_fixed_scale(tmp_path):
    """A big photo and its 256 px copy score alike: sharpness compares classes, not resolutions."""
    big = checkerboard(tmp_path / "a" / "big.png", size=1024, blur=2)
    (tmp_path / "b").mkdir()
    Image.open(big).resize((256, 256), Image.Resampling.BOX).save(tmp_path / "b" / "small.png")
    per = stats_of(tmp_path)["per_class"]
    assert per["a"]["sharpness"]["mean"] == pytest.approx(per["b"]["sharpness"]["mean"], rel=0.05)


def test_sample_caps_the_images_measured_per_class_but_not_the_counts(known_folder):
    s = stats_of(known_folder, sample=1)
    assert {c: v["n"] for c, v in s["per_class"].items()} == {"blue": 1, "blurry": 1, "red": 1, "sharp": 1}
    assert s["class_counts"]["blue"] == 4 and s["imbalance_ratio"] == 2.0
    assert s == stats_of(known_folder, sample=1)  # the same sample every run


def test_unreadable_files_are_listed_not_fatal(known_folder):
    (known_folder / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (known_folder / "red" / "notes.txt").write_text("hello")
    s = stats_of(known_folder)
    reasons = {Path(x["file"]).name: x["reason"] for x in s["skipped"]}
    assert set(reasons) == {"broken.png", "notes.txt"}
    assert "not an image file type" in reasons["notes.txt"]
    assert s["per_class"]["red"]["n"] == 2
    # A file that cannot be decoded is no photo of its class: the counts a lab reads before training say 2.
    assert s["class_counts"]["red"] == 2 and s["n_images"] == 12 and s["imbalance_ratio"] == 2.0


def test_a_class_of_only_unreadable_files_counts_zero_photos(known_folder):
    (known_folder / "grey").mkdir()
    (known_folder / "grey" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    s = stats_of(known_folder)
    assert s["class_counts"]["grey"] == 0 and s["n_images"] == 12
    assert "grey" not in s["per_class"] and s["imbalance_ratio"] == 2.0


def test_write_stats_makes_json_and_valid_pngs(known_folder, tmp_path):
    entries, skipped = folder_entries(known_folder)
    s = compute_stats(entries, skipped=skipped)
    out = tmp_path / "out"
    written = write_stats(s, out, entries)
    assert {p.name for p in written} == {"stats.json", *PNGS}
    assert json.loads((out / "stats.json").read_text()) == s
    for name in PNGS:
        with Image.open(out / name) as img:
            img.verify()
    with Image.open(out / "samples.png") as img:
        assert img.width > 200 and img.height > 200  # 4 rows of thumbnails, not an empty canvas


def test_cli_stats_from_a_folder(known_folder, tmp_path, settings):
    out = tmp_path / "stats"
    result = CliRunner().invoke(app, ["stats", "--data", str(known_folder), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == json.loads((out / "stats.json").read_text())
    assert printed["per_class"]["red"]["mean_rgb"] == [255.0, 0.0, 0.0]
    assert all((out / name).stat().st_size > 1000 for name in PNGS)


def test_cli_stats_from_a_catalog_dataset(known_folder, tmp_path, settings):
    from leafdoc.data.catalog import Catalog
    from leafdoc.data.ingest import ingest
    from leafdoc.data.store import open_store

    catalog = Catalog(settings.catalog_url)
    ingest(known_folder, catalog, open_store(settings.store_location), "known")
    catalog.dispose()
    out = tmp_path / "stats"
    result = CliRunner().invoke(app, ["stats", "--dataset", "known", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout)
    assert s["source"] == "known v1"
    assert s["class_counts"] == {"blue": 4, "blurry": 3, "red": 2, "sharp": 3}
    # The same bytes through the same decoder: the catalog copy measures exactly like the folder.
    assert s["per_class"] == stats_of(known_folder)["per_class"]
    with Image.open(out / "samples.png") as img:
        img.verify()


def test_cli_stats_needs_exactly_one_source(tmp_path, settings):
    result = CliRunner().invoke(app, ["stats", "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "--data" in str(result.exception) and "--dataset" in str(result.exception)


def test_cli_stats_unknown_dataset_names_it(tmp_path, settings):
    result = CliRunner().invoke(app, ["stats", "--dataset", "nope", "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "nope" in str(result.exception)
    assert not (tmp_path / "o").exists()


def test_stats_never_replaces_a_folder_it_did_not_write(known_folder, tmp_path, settings):
    precious = tmp_path / "documents"
    precious.mkdir()
    (precious / "thesis.docx").write_text("years of work")
    result = CliRunner().invoke(app, ["stats", "--data", str(known_folder), "--out", str(precious)])
    assert result.exit_code != 0
    assert str(precious) in str(result.exception)
    assert (precious / "thesis.docx").read_text() == "years of work"
    # An earlier stats folder is fine to refresh.
    out = tmp_path / "stats"
    for _ in range(2):
        assert CliRunner().invoke(app, ["stats", "--data", str(known_folder), "--out", str(out)]).exit_code == 0
    assert (out / "stats.json").is_file()


def test_cli_stats_plots_show_the_known_counts_sizes_and_colours(known_folder, tmp_path, settings):
    """`leafdoc stats` on images whose answers are known by construction: stats.json holds them, and the
    figures drawn from it (as the CLI, API, web page and desktop draw them) show those numbers, bar by bar."""
    from leafdoc.data.stats import plot_class_distribution, plot_colour, plot_sizes

    out = tmp_path / "stats"
    result = CliRunner().invoke(app, ["stats", "--data", str(known_folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    s = json.loads((out / "stats.json").read_text())

    counts = {"blue": 4, "blurry": 3, "red": 2, "sharp": 3}
    assert s["class_counts"] == counts
    ax = plot_class_distribution(s).axes[0]
    shown = {t.get_text(): bar.get_width() for t, bar in zip(ax.get_yticklabels(), ax.patches, strict=True)}
    assert shown == counts

    widths = [40, 60, 20, 24, 28, 32, 64, 72, 80, 64, 72, 80]  # red, blue, sharp, blurry
    heights = [20, 30, 20, 24, 28, 32, 64, 72, 80, 64, 72, 80]
    assert s["size"]["width"]["mean"] == pytest.approx(np.mean(widths))
    assert s["size"]["height"]["mean"] == pytest.approx(np.mean(heights))
    assert (s["size"]["width"]["min"], s["size"]["width"]["max"]) == (20, 80)
    axes = plot_sizes(s).axes
    for ax, known in zip(axes, (widths, heights), strict=False):
        bars = ax.patches
        edges = [b.get_x() for b in bars] + [bars[-1].get_x() + bars[-1].get_width()]
        expected, _ = np.histogram(known, bins=np.asarray(edges))
        assert [b.get_height() for b in bars] == expected.tolist()

    per = s["per_class"]
    assert per["red"]["mean_rgb"] == [255.0, 0.0, 0.0]
    assert per["sharp"]["mean_rgb"] == [127.5, 127.5, 127.5]  # half the checkerboard is white
    assert per["blue"]["mean_rgb"] == pytest.approx([0, 0, 255], abs=3)  # JPEG
    ax_rgb, ax_b = plot_colour(s).axes[:2]
    labels = list(per)
    rgb_bars = ax_rgb.patches[: 3 * len(labels)]
    for k in range(3):  # one R, G, B bar per class, in the order of the labels
        drawn = [bar.get_width() for bar in rgb_bars[k * len(labels) : (k + 1) * len(labels)]]
        assert drawn == pytest.approx([per[c]["mean_rgb"][k] for c in labels])
    brightness = [bar.get_width() for bar in ax_b.patches]
    assert brightness == pytest.approx([per[c]["brightness"]["mean"] for c in labels])
    assert brightness[labels.index("red")] == pytest.approx(0.299 * 255, abs=1)


def test_sharpness_plot_names_each_box_with_its_photos_and_says_which_mark_is_which(known_folder):
    """A box drawn from 2 photos looked like one drawn from 200, and nothing said that the line is the median and the
    triangle the mean, nor which way is sharp."""
    from leafdoc.data.stats import plot_sharpness

    s = stats_of(known_folder)
    ax = plot_sharpness(s).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["blue (n=4)", "blurry (n=3)", "red (n=2)", "sharp (n=3)"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["median", "mean"]
    assert "higher is sharper" in ax.get_xlabel() and "10th-90th percentile" in ax.get_xlabel()
