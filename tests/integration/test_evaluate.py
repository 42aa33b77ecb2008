"""`leafdoc evaluate` on a tiny real model (ONNX Runtime) and real PlantVillage photos."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.conftest import TINY_CLASSES, synthetic_image
from typer.testing import CliRunner

from leafdoc.cli.main import app
from leafdoc.evaluate.significance import accuracy_interval_text, wilson_interval

REQUIRED = (
    "accuracy",
    "top3_accuracy",
    "macro_f1",
    "ece",
    "n",
    "labels",
    "per_class",
    "confusion_matrix",
    "most_confused",
    "skipped",
    "model",
    "data",
)


def run_evaluate(*args: str) -> dict:
    result = CliRunner().invoke(app, ["evaluate", *map(str, args), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def n_images(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file())


def test_json_has_every_key_with_consistent_numbers(tiny_model, leaf_folder, settings):
    r = run_evaluate(tiny_model, "--data", leaf_folder)
    assert set(REQUIRED) <= set(r)
    assert r["n"] == n_images(leaf_folder) == 18
    assert r["labels"] == json.loads((tiny_model / "labels.json").read_text())
    cm = r["confusion_matrix"]
    assert sum(map(sum, cm)) == r["n"]
    assert r["accuracy"] == pytest.approx(sum(cm[i][i] for i in range(len(cm))) / r["n"])
    assert r["accuracy"] <= r["top3_accuracy"] <= 1.0
    lo, hi = r["accuracy_ci95"]  # 95% Wilson interval: on 18 photos, wide
    assert lo <= r["accuracy"] <= hi and hi - lo > 0.2
    assert [lo, hi] == pytest.approx(wilson_interval(round(r["accuracy"] * r["n"]), r["n"]), abs=1e-4)
    check_per_class_figures_and_calibration_from_the_answers(r)
    check_reliability_figure_agrees_with_ece(r)
    for label in TINY_CLASSES:
        assert set(r["per_class"][label]) == {"precision", "recall", "f1", "support"}
        assert r["per_class"][label]["support"] == 6
    assert len(r["predictions"]) == r["n"]
    assert sum(not p["correct"] for p in r["predictions"]) == r["n"] - round(r["accuracy"] * r["n"])
    assert r["skipped"] == []
    assert r["model"] == str(tiny_model) and r["data"] == str(leaf_folder)


def check_per_class_figures_and_calibration_from_the_answers(r: dict) -> None:
    """Precision, recall, F1 and macro F1 are those of the confusion matrix, and the ECE is that of the
    per-image answers' confidences (15 equal bins, lo < confidence <= hi), recomputed here from scratch."""
    cm = np.array(r["confusion_matrix"])
    f1s = []
    for i, label in enumerate(r["labels"]):
        tp, support, predicted = cm[i, i], cm[i].sum(), cm[:, i].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        got = r["per_class"][label]
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((precision, recall, f1), abs=1e-6), label
        f1s.append(f1)
    assert r["macro_f1"] == pytest.approx(np.mean(f1s), abs=1e-6)
    conf = np.array([p["confidence"] for p in r["predictions"]])
    right = np.array([p["predicted"] == p["true"] for p in r["predictions"]])
    edges = np.linspace(0, 1, 16)
    bins = [(conf > lo) & (conf <= hi) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    ece = sum(m.sum() / len(conf) * abs(right[m].mean() - conf[m].mean()) for m in bins if m.any())
    assert r["ece"] == pytest.approx(ece, abs=1e-5)  # confidences are rounded to 6 places in the answers


def check_reliability_figure_agrees_with_ece(r: dict) -> None:
    """The reliability figure the report draws from this result: its bars' weighted gap is the ECE the
    result (and the figure's title) reports, on the same bins (a 10-bin figure beside a 15-bin ECE said
    0.0226 under a title of 0.025)."""
    from leafdoc.evaluate.metrics import CALIBRATION_BINS
    from leafdoc.evaluate.report import plot_reliability

    assert len(r["reliability"]) == CALIBRATION_BINS and sum(b["n"] for b in r["reliability"]) == r["n"]
    ax, ax_n = plot_reliability(r["reliability"], r["ece"]).axes[:2]
    half = len(ax.patches) // 2
    accuracy, confidence, counts = ax.patches[:half], ax.patches[half:], [b.get_height() for b in ax_n.patches]
    gap = sum(n * abs(a.get_height() - c.get_height()) for n, a, c in zip(counts, accuracy, confidence, strict=True))
    assert gap / r["n"] == pytest.approx(r["ece"], abs=1e-6)
    assert f"ECE {r['ece']:.3f}" in ax.get_title()


def test_a_subset_of_the_model_classes_is_evaluated(tiny_model, leaf_folder, settings):
    shutil.rmtree(leaf_folder / TINY_CLASSES[2])
    r = run_evaluate(tiny_model, "--data", leaf_folder)
    assert r["n"] == 12
    assert r["classes"] == sorted(TINY_CLASSES[:2])
    assert r["per_class"][TINY_CLASSES[2]]["support"] == 0
    assert len(r["confusion_matrix"]) == len(r["labels"]) == 3  # predictions may still name the absent class


def test_per_class_evaluates_a_seeded_random_sample_of_each_class(tiny_model, leaf_folder, settings, tmp_path):
    ood = tmp_path / "ood"
    for folder, n in (("cars", 5), ("walls", 2)):
        for i in range(n):
            synthetic_image(ood / folder / f"{i}.png", size=(80, 80), color=(120, 120, 200), seed=i)
    r = run_evaluate(tiny_model, "--data", leaf_folder, "--ood", ood, "--per-class", "4", "--seed", "3")
    assert r["n"] == 12 and {c["support"] for c in r["per_class"].values()} == {4}  # 4 of each class's 6
    assert r["sample"] == {"per_class": 4, "seed": 3, "photos": 12, "of": 18}
    assert r["ood"]["n"] + r["ood"]["skipped"] == 4 + 2  # per folder too
    again = run_evaluate(tiny_model, "--data", leaf_folder, "--per-class", "4", "--seed", "3")
    other = run_evaluate(tiny_model, "--data", leaf_folder, "--per-class", "4", "--seed", "4")
    files = [sorted(p["file"] for p in x["predictions"]) for x in (r, again, other)]
    assert files[0] == files[1] and files[0] != files[2]  # the seed decides which photos
    assert run_evaluate(tiny_model, "--data", leaf_folder)["sample"] is None
    bad = CliRunner().invoke(app, ["evaluate", str(tiny_model), "--data", str(leaf_folder), "--per-class", "0"])
    assert bad.exit_code != 0 and "--per-class" in bad.output


def test_split_scores_only_the_photos_split_json_puts_in_that_part(tiny_model, leaf_folder, settings, tmp_path):
    from leafdoc.imaging.photos import sha256_bytes

    split = json.loads((tiny_model / "split.json").read_text())
    hash_of = {str(p): sha256_bytes(p.read_bytes()) for p in leaf_folder.rglob("*") if p.is_file()}
    for part in ("train", "val", "test"):
        r = run_evaluate(tiny_model, "--data", leaf_folder, "--split", part)
        scored = {hash_of[p["file"]] for p in r["predictions"]}
        assert scored == set(split[part]) and r["n"] == len(split[part]) > 0, part
        assert r["split"] == {"part": part, "photos": r["n"], "of": 18}
    unseen = run_evaluate(tiny_model, "--data", leaf_folder, "--split", "unseen")
    assert {hash_of[p["file"]] for p in unseen["predictions"]} == set(split["test"])  # this folder: all in split
    assert run_evaluate(tiny_model, "--data", leaf_folder)["split"] is None

    other = tmp_path / "other"  # photos the model never saw are all unseen, and none are its test photos
    for label in TINY_CLASSES:
        synthetic_image(other / label / "new.png", size=(80, 80), seed=TINY_CLASSES.index(label))
    assert run_evaluate(tiny_model, "--data", other, "--split", "unseen")["n"] == 3
    none = CliRunner().invoke(app, ["evaluate", str(tiny_model), "--data", str(other), "--split", "test"])
    assert none.exit_code != 0 and "none of its 3 photos are the model's test photos" in str(none.exception)

    bare = tmp_path / "bare"
    shutil.copytree(tiny_model, bare)
    (bare / "split.json").unlink()
    missing = CliRunner().invoke(app, ["evaluate", str(bare), "--data", str(leaf_folder), "--split", "test"])
    assert missing.exit_code != 0 and "split.json: no such file" in str(missing.exception)
    wrong = CliRunner().invoke(app, ["evaluate", str(tiny_model), "--data", str(leaf_folder), "--split", "tset"])
    assert wrong.exit_code != 0 and "train, val, test, unseen" in str(wrong.exception)


def test_photos_the_model_learnt_from_are_counted_and_the_figures_said_to_overstate_it(
    tiny_model, leaf_folder, settings, tmp_path
):
    """`leafdoc evaluate models/starter --data plantvillage` scored 4,161 photos of 4,500 the starter was trained or
    chosen on (94 of field-corn's 247 too) and said nothing: 99.9% on them reads as the model's accuracy."""
    split = json.loads((tiny_model / "split.json").read_text())
    train, val = len(split["train"]), len(split["val"])
    r = run_evaluate(tiny_model, "--data", leaf_folder)
    assert r["seen_in_training"] == {"train": train, "val": val, "of": 18}
    said = f"{train + val} of the 18 photos are photos the model was trained on ({train}) or chosen on ({val}"

    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["evaluate", str(tiny_model), "--data", str(leaf_folder), "--report", str(out)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"warning: {said}" in text and "the figures overstate how it does on photos it never saw" in text
    md = (out / "report.md").read_text()
    assert f"**Warning:** {said}" in md
    assert f"| of which the model learnt from (training, validation) | {train + val} ({train}, {val}) |" in md
    assert "<code>--split unseen</code> all the others" in (out / "index.html").read_text()

    assert run_evaluate(tiny_model, "--data", leaf_folder, "--split", "unseen")["seen_in_training"] is None
    # The training photos asked for by name are still photos it learnt: said, not left to read as its accuracy.
    assert run_evaluate(tiny_model, "--data", leaf_folder, "--split", "train")["seen_in_training"] == {
        "train": train,
        "val": 0,
        "of": train,
    }
    asked = CliRunner().invoke(app, ["evaluate", str(tiny_model), "--data", str(leaf_folder), "--split", "val"])
    said = f"{val} of the {val} photos are photos the model was chosen on (its validation photos)"
    assert asked.exit_code == 0 and f"warning: {said}" in " ".join(asked.output.split()), asked.output
    other = tmp_path / "other"  # photos the model never saw: nothing to say
    for label in TINY_CLASSES:
        synthetic_image(other / label / "new.png", size=(80, 80), seed=TINY_CLASSES.index(label))
    fresh = CliRunner().invoke(app, ["evaluate", str(tiny_model), "--data", str(other)])
    assert fresh.exit_code == 0 and "warning" not in fresh.output


def test_each_photo_is_read_and_hashed_once(tiny_model, leaf_folder, settings, monkeypatch):
    """The seen_in_training count hashed every photo again after the scoring pass had read it (a second read of the
    whole folder); its sha256 now comes from the bytes the pass read. With --split the photos are hashed to be chosen,
    before the pass, and not again."""
    import collections
    import hashlib

    from leafdoc.evaluate.evaluate import evaluate_folder

    photos = {str(p): p.read_bytes() for p in leaf_folder.rglob("*") if p.is_file()}
    by_bytes = {data: name for name, data in photos.items()}
    reads, hashes = collections.Counter(), collections.Counter()
    real_read, real_sha = Path.read_bytes, hashlib.sha256

    def read_bytes(self):
        if str(self) in photos:
            reads[str(self)] += 1
        return real_read(self)

    def sha256(data=b"", **kw):
        if bytes(data) in by_bytes:
            hashes[by_bytes[bytes(data)]] += 1
        return real_sha(data, **kw)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    monkeypatch.setattr(hashlib, "sha256", sha256)
    r = evaluate_folder(tiny_model, leaf_folder, settings)
    assert r["n"] == len(photos) == 18 and r["seen_in_training"]["of"] == 18
    assert reads == dict.fromkeys(photos, 1), "a photo read more than once"
    assert hashes == dict.fromkeys(photos, 1), "a photo hashed more than once"

    reads.clear()
    hashes.clear()
    r = evaluate_folder(tiny_model, leaf_folder, settings, split="test")
    assert set(hashes.values()) == {1} and len(hashes) == 18  # every photo hashed once, to choose the test photos
    assert r["seen_in_training"] is None


def test_unknown_class_folder_is_a_clear_error_naming_it(tiny_model, leaf_folder, settings):
    synthetic_image(leaf_folder / "Banana___Mystery_spot" / "x.png")
    # As a user runs it: the real entry point, a message on stderr, no traceback, exit code 1.
    proc = subprocess.run(
        [sys.executable, "-m", "leafdoc.cli.main", "evaluate", str(tiny_model), "--data", str(leaf_folder), "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
        timeout=120,
    )
    assert proc.returncode == 1
    assert "Banana___Mystery_spot" in proc.stderr
    assert str(tiny_model) in proc.stderr.replace("\n", "")
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_corrupt_images_are_listed_as_skipped_and_the_rest_evaluated(tiny_model, leaf_folder, settings):
    broken = leaf_folder / TINY_CLASSES[0] / "broken.jpg"
    broken.write_bytes(b"this is not a jpeg")
    truncated = leaf_folder / TINY_CLASSES[1] / "truncated.jpg"
    data = sorted((leaf_folder / TINY_CLASSES[1]).iterdir())[0].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    r = run_evaluate(tiny_model, "--data", leaf_folder)
    skipped = {s["file"]: s["reason"] for s in r["skipped"]}
    assert set(skipped) == {str(broken), str(truncated)}
    assert "not a photo leafdoc can read" in skipped[str(broken)]
    assert "corrupt or truncated" in skipped[str(truncated)]
    assert r["n"] == 18
    assert str(broken) not in {p["file"] for p in r["predictions"]}


@pytest.fixture
def confusing_folder(tmp_path, leaf_folder) -> Path:
    """The same photos filed under two classes: whatever the model says, half of them are wrong."""
    root = tmp_path / "confusing"
    shutil.copytree(leaf_folder, root)
    src = root / TINY_CLASSES[0]
    dst = root / TINY_CLASSES[1]
    for f in sorted(src.iterdir())[:4]:
        shutil.copy2(f, dst / f"copy_{f.name}")
    return root


def test_report_has_markdown_html_figures_and_names_the_confused_pairs(
    tiny_model, confusing_folder, tmp_path, settings
):
    report = tmp_path / "report"
    r = run_evaluate(tiny_model, "--data", confusing_folder, "--report", report)
    assert r["most_confused"], "identical photos under two labels must produce confusions"
    assert {"report.md", "index.html", "confusion_matrix.png", "reliability.png"} <= {p.name for p in report.iterdir()}
    for png in report.glob("*.png"):
        with Image.open(png) as img:
            img.verify()
    html = (report / "index.html").read_text()
    md = (report / "report.md").read_text()
    confused = html.split("Most confused pairs", 1)[1].split("<h2>", 1)[0]
    for pair in r["most_confused"]:
        assert pair["true"] in confused and pair["predicted"] in confused
        assert pair["true"] in md
    # The gallery shows every mistake here (fewer than the cap), each as a thumbnail next to the page.
    wrong = [p for p in r["predictions"] if not p["correct"]]
    thumbs = sorted(report.glob("misclassified_*.png"))
    assert len(thumbs) == len(wrong) >= 4
    for t in thumbs:
        assert f'src="{t.name}"' in html
        with Image.open(t) as img:
            assert max(img.size) <= 160
    assert "http://" not in html and "https://" not in html  # self-contained: works offline
    assert f"{r['accuracy']:.1%}" in html


def test_report_shows_the_photos_it_would_not_answer_with_why_and_its_best_guess(
    tiny_model, leaf_folder, tmp_path, settings
):
    """The guide promises a gallery of the photos the model got wrong or would not answer: each refused photo is
    shown with its thumbnail, the reason and what the grower was told, and the model's best guess (the report
    gave only their count)."""
    from html import escape

    from leafdoc.evaluate.report import REASON_TEXT

    model = tmp_path / "unsure-model"
    shutil.copytree(tiny_model, model)
    card = json.loads((model / "card.json").read_text())
    card["abstain"] = {**(card.get("abstain") or {}), "min_confidence": 0.999}  # too demanding: it refuses photos
    (model / "card.json").write_text(json.dumps(card))
    report = tmp_path / "report"
    r = run_evaluate(model, "--data", leaf_folder, "--report", report)
    refused = [p for p in r["predictions"] if p["abstained"]]
    assert refused and all(p["message"] for p in refused)
    html = (report / "index.html").read_text()
    assert "Photos it would not answer" in html
    section = html.split("Photos it would not answer", 1)[1].split("<h2>", 1)[0]
    thumbs = sorted(report.glob("refused_*.png"))
    assert len(thumbs) == len(refused)  # fewer than the gallery's cap: every one
    for t in thumbs:
        assert f'src="{t.name}"' in section
        with Image.open(t) as img:
            assert max(img.size) <= 160
    # The first card is the refusal it was most sure of: its thumbnail, why, what it said and its best guess.
    first = max(refused, key=lambda p: (p["reason"] == min(q["reason"] for q in refused), p["confidence"]))
    card_html = section.split("</figure>", 1)[0]
    assert 'src="refused_000.png"' in card_html and escape(first["file"]) in card_html
    assert REASON_TEXT[first["reason"]] in card_html and escape(first["message"]) in card_html
    assert escape(first["predicted"]) in card_html and f"{first['confidence']:.1%}" in card_html
    assert "Photos it would not answer" in (report / "report.md").read_text()


def test_rich_summary_for_people(tiny_model, leaf_folder, settings):
    result = CliRunner().invoke(app, ["evaluate", str(tiny_model), "--data", str(leaf_folder)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.stdout and "macro F1" in result.stdout
    r = run_evaluate(tiny_model, "--data", leaf_folder)
    assert accuracy_interval_text(r["accuracy"], r["n"]) in result.stdout  # "88.9% (95% CI 67.2–96.9%)"
    for label in TINY_CLASSES:
        assert label in result.stdout


def test_evaluation_and_stats_need_no_tensorflow():
    """A serving install has no TensorFlow; evaluate, report and stats must work there."""
    code = (
        "import sys, leafdoc.evaluate.evaluate, leafdoc.evaluate.report, leafdoc.data.stats; "
        "print('tensorflow' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
