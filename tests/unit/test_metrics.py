"""Metrics on hand-made probabilities, where the right answer is known by counting."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from leafdoc.evaluate.metrics import compute_metrics, expected_calibration_error, most_confused, reliability_bins
from leafdoc.evaluate.report import display_label, misclassified, plot_confusion_matrix, plot_reliability

LABELS = ["apple_scab", "healthy", "rust", "blight"]

# Six images; rows are probabilities over LABELS. True labels: 0 0 1 1 2 3.
PROBS = np.array(
    [
        [0.70, 0.10, 0.10, 0.10],  # 0 -> 0 right
        [0.20, 0.50, 0.20, 0.10],  # 0 -> 1 wrong; true class second: top-3 hit
        [0.10, 0.80, 0.05, 0.05],  # 1 -> 1 right
        [0.60, 0.30, 0.05, 0.05],  # 1 -> 0 wrong; top-3 hit
        [0.40, 0.10, 0.45, 0.05],  # 2 -> 2 right
        [0.50, 0.30, 0.15, 0.05],  # 3 -> 0 wrong; true class last: top-3 miss
    ]
)
Y = np.array([0, 0, 1, 1, 2, 3])


@pytest.fixture
def metrics() -> dict:
    return compute_metrics(Y, PROBS, LABELS)


def test_accuracy_and_top3_match_counting(metrics):
    assert metrics["n"] == 6
    assert metrics["accuracy"] == pytest.approx(3 / 6)
    assert metrics["top3_accuracy"] == pytest.approx(5 / 6)


def test_confusion_matrix_rows_are_true_columns_predicted(metrics):
    assert metrics["confusion_matrix"] == [
        [1, 1, 0, 0],
        [1, 1, 0, 0],
        [0, 0, 1, 0],
        [1, 0, 0, 0],
    ]
    assert sum(map(sum, metrics["confusion_matrix"])) == metrics["n"]


def test_per_class_precision_recall_f1_and_macro_f1(metrics):
    pc = metrics["per_class"]
    # apple_scab: predicted 3 times, right once; 2 true, 1 found.
    assert pc["apple_scab"]["precision"] == pytest.approx(1 / 3)
    assert pc["apple_scab"]["recall"] == pytest.approx(1 / 2)
    assert pc["apple_scab"]["f1"] == pytest.approx(0.4)
    assert pc["healthy"]["f1"] == pytest.approx(0.5)
    assert pc["rust"]["f1"] == pytest.approx(1.0)
    assert pc["blight"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert metrics["macro_f1"] == pytest.approx((0.4 + 0.5 + 1.0 + 0.0) / 4)


def test_macro_f1_ignores_classes_absent_from_the_data():
    """Evaluating on a subset of classes must not be dragged down by the classes left out."""
    probs = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1]])
    m = compute_metrics(np.array([0, 1]), probs, ["a", "b", "c"])
    assert m["macro_f1"] == pytest.approx(1.0)
    assert m["per_class"]["c"]["support"] == 0


def test_ece_is_the_weighted_gap_between_confidence_and_accuracy():
    # Two images at confidence 0.9 (one right) and two at 0.6 (both right):
    # |0.5 - 0.9| * 2/4 + |1.0 - 0.6| * 2/4 = 0.4
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    y = np.array([0, 1, 0, 1])
    assert expected_calibration_error(probs, y) == pytest.approx(0.4)
    assert compute_metrics(y, probs, ["a", "b"])["ece"] == pytest.approx(0.4)


def test_perfectly_calibrated_certain_model_has_zero_ece():
    probs = np.eye(3)
    assert expected_calibration_error(probs, np.arange(3)) == pytest.approx(0.0)


def test_reliability_bins_count_every_image_once():
    bins = reliability_bins(PROBS, Y, bins=10)
    assert sum(b["n"] for b in bins) == len(Y)
    top = next(b for b in bins if b["lo"] == pytest.approx(0.7))  # the 0.8 prediction, right
    assert top["n"] == 1 and top["accuracy"] == 1.0 and top["confidence"] == pytest.approx(0.8)
    assert all(b["accuracy"] is None for b in bins if b["n"] == 0)


def test_most_confused_orders_pairs_by_count_and_skips_the_diagonal():
    cm = np.array([[50, 7, 0], [2, 40, 0], [7, 9, 30]])
    pairs = most_confused(cm, ["a", "b", "c"], top=3)
    assert pairs[0] == {"true": "c", "predicted": "b", "count": 9}
    assert {(p["true"], p["predicted"]) for p in pairs[1:]} == {("a", "b"), ("c", "a")}
    assert all(p["true"] != p["predicted"] for p in most_confused(cm, ["a", "b", "c"]))
    assert most_confused(np.diag([3, 4]), ["a", "b"]) == []


def test_misclassified_lists_confident_mistakes_first():
    preds = [
        {"file": "a.jpg", "true": "x", "predicted": "x", "confidence": 0.99},
        {"file": "b.jpg", "true": "x", "predicted": "y", "confidence": 0.55},
        {"file": "c.jpg", "true": "y", "predicted": "x", "confidence": 0.91},
    ]
    assert [p["file"] for p in misclassified(preds)] == ["c.jpg", "b.jpg"]
    assert [p["file"] for p in misclassified(preds, limit=1)] == ["c.jpg"]


def test_display_label_keeps_plantvillage_names_whole_and_readable():
    assert display_label("Corn_(maize)___Cercospora_leaf_spot Gray_leaf_spot") == (
        "Corn (maize): Cercospora leaf spot Gray leaf spot"
    )
    assert display_label("healthy") == "healthy"
    assert len(display_label("x" * 200)) <= 56


PLANTVILLAGE_30 = [
    f"{crop}___{disease}"
    for crop, disease in [
        ("Corn_(maize)", "Cercospora_leaf_spot Gray_leaf_spot"),
        ("Tomato", "Spider_mites Two-spotted_spider_mite"),
        ("Orange", "Haunglongbing_(Citrus_greening)"),
        ("Cherry_(including_sour)", "Powdery_mildew"),
        ("Tomato", "Tomato_Yellow_Leaf_Curl_Virus"),
    ]
    for _ in range(6)
]


def _png(fig) -> Image.Image:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    buf.seek(0)
    return Image.open(buf)


def test_confusion_matrix_picture_fits_30_long_labels_without_clipping():
    labels = [f"{name}_{i}" for i, name in enumerate(PLANTVILLAGE_30)]
    rng = np.random.default_rng(0)
    cm = np.diag(rng.integers(20, 100, 30)) + rng.integers(0, 3, (30, 30))
    fig = plot_confusion_matrix(cm, labels)
    fig.canvas.draw()
    ax = fig.axes[0]
    ticks = ax.get_xticklabels() + ax.get_yticklabels()
    assert len(ax.get_xticklabels()) == 30
    assert all(t.get_text() for t in ticks)
    # Tick labels must not overlap their neighbours: each y label fits its row.
    heights = [t.get_window_extent().height for t in ax.get_yticklabels()]
    row = ax.get_window_extent().height / 30
    assert max(heights) < row
    img = _png(fig)
    assert img.width > 800 and img.height > 800


def test_reliability_figure_draws_one_bar_per_filled_bin():
    bins = reliability_bins(PROBS, Y, bins=10)
    fig = plot_reliability(bins)
    filled = sum(1 for b in bins if b["n"])
    assert len(fig.axes[0].patches) == 2 * filled  # accuracy + confidence per bin
    assert _png(fig).size[0] > 300


def test_reliability_figure_shows_the_calibration_error_in_its_title():
    """The bars' weighted gap is the ECE the title, the card and `leafdoc evaluate` report. Confidences 0.62
    (both right) and 0.68 (both wrong) share a bin of a 10-bin figure but not of the 15 bins the ECE uses:
    by hand, 15 bins give (2 * 0.38 + 2 * 0.68 + 2 * 0.10) / 6 = 0.3867; 10 bins would draw 0.1333."""
    probs = np.array([[0.62, 0.38], [0.62, 0.38], [0.68, 0.32], [0.68, 0.32], [0.9, 0.1], [0.9, 0.1]])
    y = np.array([0, 0, 1, 1, 0, 0])
    ece = compute_metrics(y, probs, ["a", "b"])["ece"]
    assert ece == pytest.approx(2.32 / 6)
    fig = plot_reliability(reliability_bins(probs, y), ece)  # as evaluate's report draws it
    ax, ax_n = fig.axes[:2]
    bars = ax.patches
    accuracy, confidence = bars[: len(bars) // 2], bars[len(bars) // 2 :]
    counts = [b.get_height() for b in ax_n.patches]
    gap = sum(n * abs(a.get_height() - c.get_height()) for n, a, c in zip(counts, accuracy, confidence, strict=True))
    assert sum(counts) == len(y)
    assert gap / sum(counts) == pytest.approx(ece)
    assert f"ECE {ece:.3f}" in ax.get_title()
