"""An evaluation report a person reads: report.md and index.html with PNG figures next to them.

Every figure is a small function returning a matplotlib Figure, so a notebook or the desktop app
can draw the same pictures from the same `evaluate_folder` result without writing a report.
Figures are built with `Figure()`, not pyplot: no global backend or figure registry to leak on a
server, and a notebook or Qt canvas can still show them; PNGs are rendered with Agg.
"""

from __future__ import annotations

import html
import io
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from leafdoc.core.atomic import atomic_dir, check_replaceable
from leafdoc.core.errors import LeafdocError
from leafdoc.evaluate.metrics import calibration_error_of_bins
from leafdoc.evaluate.significance import accuracy_interval, accuracy_interval_text
from leafdoc.imaging.figure_png import figure_png
from leafdoc.imaging.photos import read_source
from leafdoc.imaging.photos import thumbnail as photo_thumbnail
from leafdoc.words.percent import precise_percent

GALLERY_LIMIT = 48
THUMB_PX = 160
LABEL_CHARS = 56


def display_label(label: str, max_chars: int = LABEL_CHARS) -> str:
    """PlantVillage-style `Crop___Disease_name` as `Crop: Disease name`, shortened for axes."""
    crop, sep, disease = label.partition("___")
    text = f"{crop}: {disease}" if sep else label
    text = " ".join(text.replace("_", " ").split())
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"


def active_classes(cm: np.ndarray) -> list[int]:
    """Indices of classes that are in the data or were predicted: the rest of the matrix is zeros."""
    cm = np.asarray(cm)
    return [i for i in range(len(cm)) if cm[i, :].sum() or cm[:, i].sum()]


def plot_confusion_matrix(
    cm: np.ndarray | list, labels: list[str], normalize: bool = True, row_labels: list[str] | None = None
) -> Figure:
    """Rows are true classes, columns predictions; colour is the row share, numbers are counts. `row_labels`: the
    rows' classes when they are not the columns' (a report leaves out the rows of classes with no photo).

    Colouring by row share keeps small classes visible next to big ones; the cell text keeps the counts.
    """
    cm = np.asarray(cm, dtype=np.int64)
    row_labels = labels if row_labels is None else row_labels
    n = max(len(labels), len(row_labels))
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0) if normalize else cm
    cell = 0.32 if n > 12 else 0.6  # inches per class; 30 classes still fit a screen width
    side = max(4.0, cell * n + 1.5)
    fig = Figure(figsize=(side + 3.5, side + 3.0), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    names = [display_label(lab) for lab in labels]
    font = 8 if n > 12 else 10
    ax.set_xticks(range(len(labels)), names, rotation=60, ha="right", rotation_mode="anchor", fontsize=font)
    ax.set_yticks(range(len(row_labels)), [display_label(lab) for lab in row_labels], fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (every photo, refused ones included)")
    ax.set_title("Confusion matrix" + (" (colour: share of the true class)" if normalize else ""))
    for i, j in zip(*np.nonzero(cm), strict=True):
        dark = share[i, j] > (0.5 if normalize else share.max() / 2)
        ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=font - 1, color="white" if dark else "black")
    fig.colorbar(im, ax=ax, shrink=0.6)
    return fig


def plot_reliability(bins: list[dict], ece: float | None = None) -> Figure:
    """Accuracy against confidence per bin; bars below the diagonal mean over-confidence. The title's ECE is
    the bars' own weighted gap (the calibration error is defined on these bins), so the two always agree;
    `ece` is accepted for older callers and not used: a number from another binning would contradict the bars."""
    fig = Figure(figsize=(5.5, 6), layout="constrained")
    ax, ax_n = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    width = (bins[0]["hi"] - bins[0]["lo"]) * 0.9 if bins else 0.09
    filled = [b for b in bins if b["n"]]  # an empty bin has no accuracy; drawing 0 would look like a failure
    centres = [(b["lo"] + b["hi"]) / 2 for b in filled]
    ax.bar(centres, [b["accuracy"] for b in filled], width=width, color="#4c72b0", label="accuracy")
    ax.bar(
        centres,
        [b["confidence"] for b in filled],
        width=width,
        fill=False,
        edgecolor="#c44e52",
        hatch="//",
        label="mean confidence",
    )
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left", fontsize=8)
    n = sum(b["n"] for b in bins)
    ax.set_title(
        f"Reliability: all {n} photos, refused ones included\n(ECE {calibration_error_of_bins(bins):.3f}, "
        f"{len(bins)} bins)",
        fontsize=10,
    )
    ax_n.bar(centres, [b["n"] for b in filled], width=width, color="grey")
    ax_n.set_xlabel("confidence")
    ax_n.set_ylabel("images")
    return fig


# Up to this many points the risk-coverage curve marks each one (a photo each when there are this few photos): a line
# through one point draws nothing, and the evaluation of 1-2 photos was an empty frame.
FEW_POINTS = 30
# Below this many photos the figure says the curve is too short to read a trend from.
FEW_PHOTOS = 10


def risk_coverage_note(sel: dict) -> str | None:
    """The sentence the risk-coverage figure carries under its title when the curve alone would mislead: no photo
    answered, or too few photos for a curve."""
    n = sel["answered"] + sel["abstained"]
    notes = []
    if n < FEW_PHOTOS:
        notes.append(f"Only {n} photo{'s' if n != 1 else ''}: each point is one photo, too few to read a curve from.")
    if not sel["answered"]:
        notes.append(f"leafdoc answered none of the {n} photo{'s' if n != 1 else ''}.")
    return " ".join(notes) or None


UNLIKE_TRAINING = ("not_a_leaf", "unknown_leaf", "unlike_training")  # refusals of a leaf unlike the training photos
ADVISE_FROM = 0.2  # the share of the photos refused from which the report says what would make the model answer more


def refusal_advice(sel: dict) -> str | None:
    """What would make the model answer more of photos like these, when it refused at least ADVISE_FROM of them, by
    the reason most of its refusals give. A lab's tomato model refused all 89 of its field photos of tomato leaves
    (66 "not_a_leaf", 23 "unknown_leaf") and the report said only that."""
    n, refused, by = sel["answered"] + sel["abstained"], sel["abstained"], sel["abstained_by_reason"]
    if not n or refused < ADVISE_FROM * n:
        return None
    unlike = sum(by.get(reason, 0) for reason in UNLIKE_TRAINING)
    if 2 * unlike >= refused:
        return (
            f"It refused {unlike} of these {n} photos as unlike the photos it learnt from, not as photos of no leaf: "
            "they were taken another way (leaves on the plant, another background, light or camera). If it will be "
            "sent photos like these, train it on photos like these too (put some in its class folders, then "
            "`leafdoc ingest` and `leafdoc train` again), or photograph leaves the way its training photos were taken."
        )
    if 2 * by.get("unsure", 0) >= refused:
        return (
            f"It was not sure of {by['unsure']} of these {n} photos, between classes that look alike (the most "
            "confused pairs above): more training photos of those classes would make it sure of more of them."
        )
    if 2 * by.get("poor_photo", 0) >= refused:
        return (
            f"It refused {by['poor_photo']} of these {n} photos as too dark, blurred or small to read: better photos, "
            "not another model, would be answered."
        )
    return None


def plot_risk_coverage(sel: dict) -> Figure:
    """Error rate among the answered photos as the model answers more of them, most confident first, and where
    leafdoc's own decision (its checks and threshold) lands. Every point is visible: marked when there are few
    (one photo is one point), and a risk of 0 is drawn above the axis, not on it."""
    fig = Figure(figsize=(5.5, 4), layout="constrained")
    ax = fig.add_subplot()
    cover, risk = sel["curve"]["coverage"], sel["curve"]["risk"]
    n = sel["answered"] + sel["abstained"]
    few = len(cover) <= FEW_POINTS
    ax.plot(
        cover,
        risk,
        color="#4c72b0",
        marker="o" if few else None,
        markersize=4,
        clip_on=False,
        zorder=3,
        label=f"softmax ranking (AURC {sel['aurc']:.3f})",
    )
    risks = list(risk)
    if sel.get("accuracy_answered") is not None:
        decision_risk = 1 - sel["accuracy_answered"]
        risks.append(decision_risk)
        ax.plot(
            [sel["coverage"]],
            [decision_risk],
            "o",
            color="#c44e52",
            markersize=9,
            markerfacecolor="none",  # hollow: the curve's own point under it (one photo: the same point) shows
            markeredgewidth=2,
            clip_on=False,
            zorder=4,
            label=f"leafdoc's decision ({sel['answered']} of {n} answered)",
        )
    top = max(0.05, max(risks, default=0.0) * 1.1)
    ax.set_ylim(-0.03 * top, top)  # a curve at 0 (no mistake) drawn just above the bottom axis, not hidden in it
    ax.set_xlabel("coverage (share of photos answered)")
    ax.set_ylabel("risk (error rate on answered photos)")
    ax.set_xlim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    note = risk_coverage_note(sel)
    ax.set_title("Risk-coverage" + (f"\n{note}" if note else ""), fontsize=10 if note else None, wrap=True)
    return fig


def coverage_text(sel: dict) -> str:
    """ "50.7% (38 of 75)": the share of photos answered, with the counts it is a share of."""
    n = sel["answered"] + sel["abstained"]
    return f"{pct(sel['coverage'])} ({sel['answered']} of {n})"


def answered_accuracy_text(sel: dict) -> str:
    """ "89.5% (95% CI 75.9%–95.8%; 34 of 38 answered)": right among the answered photos, with its interval and
    counts. A grower reads this figure as how often an answer is right, and it is often measured on few photos."""
    acc, answered = sel["accuracy_answered"], sel["answered"]
    if acc is None or not answered:
        return "- (no photo answered)"
    lo, hi = accuracy_interval(acc, answered)
    return f"{acc:.1%} (95% CI {lo:.1%}–{hi:.1%}; {round(acc * answered)} of {answered} answered)"


# The two headline figures, named so that a lab reads which photos each is on: "accuracy" beside "accuracy on answered"
# read as two measures of one thing (field-corn: 79.4% beside 94.9%), when the first counts every refusal's top guess.
FORCED_ROW = "right if forced to answer every photo"
ANSWERED_ROW = "right on the photos it answered"
# The coverage rows rank the photos by the top probability alone, leafdoc's checks left out: what another threshold
# would give. Said under the abstention table, where they do not read as contradicting the answered figure.
RANKED_NOTE = (
    'Rows "ranked by confidence": the photos with the highest top probability, leafdoc\'s checks and threshold left '
    'out: what a stricter or looser threshold would give, not what leafdoc answered (that is "right on the photos it '
    'answered" above).'
)


def forced_accuracy_text(result: dict) -> str:
    """ "79.4% (95% CI 73.9%–84.0%); 196 of 247 photos, its top guess on each, refusals included"."""
    n = result["n"]
    text = f"{accuracy_interval_text(result['accuracy'], n)}; {round(result['accuracy'] * n)} of {n} photos"
    return text + (", its top guess on each, refused ones included" if result.get("selective") else "")


def headline_rows(result: dict) -> list[tuple[str, str]]:
    """Right if forced to answer, then right on what it answered (with how many it answered), when it decided."""
    sel = result.get("selective")
    if not sel:
        return [("accuracy (top guess on every photo)", forced_accuracy_text(result))]
    answered = answered_accuracy_text(sel)
    if sel["answered"]:
        answered += f"; it answered {coverage_text(sel)}"
    return [(FORCED_ROW, forced_accuracy_text(result)), (ANSWERED_ROW, answered)]


def selective_rows(result: dict) -> list[tuple[str, str]]:
    sel = result.get("selective")
    if not sel:
        return []
    reasons = ", ".join(f"{k}: {v}" for k, v in sel["abstained_by_reason"].items()) or "none"
    rows = [
        ("answered (coverage)", coverage_text(sel)),
        ("refused (not answered)", f"{sel['abstained']} ({reasons})"),
        *(
            (f"right on the {k} of photos it is most sure of (ranked by confidence)", pct(v))
            for k, v in sel["accuracy_at"].items()
            if k != "100%"  # every photo: "right if forced to answer every photo"
        ),
        ("AURC (area under risk-coverage, lower is better)", f"{sel['aurc']:.4f}"),
    ]
    if result.get("ood"):
        o = result["ood"]
        rows.append((f"non-leaf photos refused ({o['n']} in {o['data']})", f"{pct(o['abstained'])}"))
        for reason, count in sorted(o.get("by_reason", {}).items()):
            if reason != "answered":
                rows.append((f"  of which as {reason}", pct(count / o["n"])))
    return rows


def confused_table(result: dict) -> tuple[list[str], list[tuple]]:
    """The most confused pairs (the model's likeliest label, answered or not) with, when leafdoc decided, how many of
    them it did not answer: "predicted as ... 19" alone read as 19 wrong answers a grower got, when on field photos
    most were not answered ("not sure", or not a leaf like the training ones)."""
    pairs = result["most_confused"]
    predictions = result.get("predictions", [])
    if not result.get("selective") or not predictions or "abstained" not in predictions[0]:
        return ["true", "predicted as", "count"], [(p["true"], p["predicted"], p["count"]) for p in pairs]
    refused_of: dict[tuple[str, str], int] = {}
    for p in predictions:
        if p.get("abstained") and p["predicted"] != p["true"]:
            refused_of[p["true"], p["predicted"]] = refused_of.get((p["true"], p["predicted"]), 0) + 1
    rows = [
        (p["true"], p["predicted"], p["count"], p["count"] - refused_of.get((p["true"], p["predicted"]), 0))
        for p in pairs
    ]
    return ["true", "likeliest label", "photos", "of which answered so (the rest: not answered)"], rows


def misclassified(predictions: list[dict], limit: int | None = None) -> list[dict]:
    """Wrong predictions, most confident first: confident mistakes are the ones that hurt users."""
    wrong = [p for p in predictions if p["predicted"] != p["true"]]
    wrong.sort(key=lambda p: (-p["confidence"], p["file"]))
    return wrong[:limit] if limit is not None else wrong


def refused(predictions: list[dict], limit: int | None = None) -> list[dict]:
    """The photos leafdoc would not answer (abstained), by reason, then most confident first: the ones it nearly
    answered (a threshold set too high refuses them) before the ones it had no idea about."""
    kept = [p for p in predictions if p.get("abstained")]
    kept.sort(key=lambda p: (p.get("reason") or "", -p["confidence"], p["file"]))
    return kept[:limit] if limit is not None else kept


# What each abstention reason (inference/abstain.py) means, for a report's reader.
REASON_TEXT = {
    "unsure": "not sure",
    "not_a_leaf": "not a leaf photo like the training ones",
    "unlike_training": "unlike the training photos (a field photo?)",
    "unknown_leaf": "a leaf more like other crops' and conditions' than the model's own (other_leaves check)",
    "poor_photo": "poor photo",
}


def reason_text(reason: str | None) -> str:
    return REASON_TEXT.get(reason or "", reason or "refused")


def thumbnail(path: str | Path, size: int = THUMB_PX) -> Image.Image:
    """The photo as the decoder sees it (upright RGB), fitted in a size x size box."""
    return photo_thumbnail(*read_source(path), size)[0]


def image_png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def pct(x: float) -> str:
    """A share as the report and `leafdoc evaluate`'s summary show it: one decimal, as the photos rarely bear more."""
    return f"{x:.1%}"


def _prob(p: float) -> str:
    """A photo's probability, as `leafdoc predict` shows one: never "100.0%" (a wrong answer among them)."""
    return precise_percent(p, 1)


def images_evaluated(result: dict) -> str:
    sample, split = result.get("sample"), result.get("split")
    text = str(result["n"])
    if sample:
        text += f" (at most {sample['per_class']} per class, seed {sample['seed']}, of {sample['of']})"
    if split:
        text += f"; the model's {split['part']} photos: {split['photos']} of the folder's {split['of']} photo files"
    return text


def seen_warning(result: dict) -> str | None:
    """What the figures are worth when the model learnt from (or was chosen on) some of the photos scored."""
    words = [_own_split_warning(result.get("seen_in_training")), _start_warning(result.get("learnt_by_start"))]
    return " ".join(w for w in words if w) or None


def _start_warning(learnt: dict | None) -> str | None:
    if not learnt:
        return None
    return (
        f"{learnt['photos']} of the {learnt['of']} photos are among those the network this model started from "
        "(leafdoc's starter) learnt or was chosen on, by its split.json: the figures overstate how the model does on "
        "photos it never saw, --split test or not. Score it on photos of your own."
    )


def _own_split_warning(seen: dict | None) -> str | None:
    if not seen:
        return None
    train, val = seen["train"], seen["val"]
    which = {
        (True, False): "photos the model was trained on",
        (False, True): "photos the model was chosen on (its validation photos)",
        (True, True): f"photos the model was trained on ({train}) or chosen on ({val}, its validation photos)",
    }[bool(train), bool(val)]
    return (
        f"{train + val} of the {seen['of']} photos are {which}, by its split.json: the figures overstate how it does "
        "on photos it never saw. `--split test` scores only the photos it kept back, `--split unseen` all the others."
    )


# The model card's `limitations`, shown under the report's title: what the model's makers measured it cannot do.
LIMITATIONS_TITLE = "The model card's limitations"


def _code(escaped: str) -> str:
    """`text` in backquotes as <code>text</code>, in HTML already escaped."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


def summary_rows(result: dict) -> list[tuple[str, str]]:
    rows = [
        ("images evaluated", images_evaluated(result)),
        *headline_rows(result),
        ("top-3 accuracy", pct(result["top3_accuracy"])),
        ("macro F1", f"{result['macro_f1']:.3f}"),
        ("expected calibration error", f"{result['ece']:.3f}"),
        ("classes in the data", f"{len(result.get('classes', []))} of {len(result['labels'])} model labels"),
        ("skipped files", str(len(result.get("skipped", [])))),
    ]
    if seen := result.get("seen_in_training"):
        learnt = f"{seen['train'] + seen['val']} ({seen['train']}, {seen['val']})"
        rows.insert(1, ("of which the model learnt from (training, validation)", learnt))
    return rows


def matrix_classes(cm: np.ndarray) -> tuple[list[int], list[int]]:
    """The confusion matrix's rows and columns as the report draws them: a row for each class with photos in the
    data, a column for each class in the data or predicted (a row of a class only predicted would be all zeros)."""
    cm = np.asarray(cm)
    cols = active_classes(cm) or list(range(len(cm)))
    rows = [i for i in cols if cm[i, :].sum()] or cols
    return rows, cols


def confusion_caption(result: dict) -> str:
    """What the matrix counts: every photo, the refused ones by their top guess; which classes only were predicted."""
    cm = np.asarray(result["confusion_matrix"])
    rows, cols = matrix_classes(cm)
    only_predicted = [result["labels"][i] for i in cols if i not in rows]
    sel = result.get("selective")
    refused = (
        f", the {sel['abstained']} it refused included (counted at their top guess)" if sel and sel["abstained"] else ""
    )
    text = (
        f"Every one of the {int(cm.sum())} photos{refused}: a row for each class in the data, a column for its top "
        "guess."
    )
    if only_predicted:
        text += (
            f" {len(only_predicted)} column{'s are' if len(only_predicted) != 1 else ' is'} a class with no photo in "
            f"the data, only guessed: {', '.join(display_label(lab) for lab in only_predicted)}."
        )
    return text


def reliability_caption(result: dict) -> str:
    n = sum(b["n"] for b in result["reliability"])
    return (
        f"All {n} photos, the refused ones included: each photo's top probability against whether its top guess was "
        "right. It says how far the probabilities can be trusted, not how often leafdoc's answers are right."
    )


def class_figures(result: dict, label: str) -> tuple[str, str, str]:
    """Precision, recall and F1 of one class as shown: "–" where there is nothing to measure them on (the JSON keeps
    0.0). Precision of a class never predicted is 0 of 0 answers; recall of a class not in the data, 0 of 0 photos,
    and its F1 with it: "0.000" there read as a class the model never finds."""
    i = result["labels"].index(label)
    cm = np.asarray(result["confusion_matrix"])
    c = result["per_class"][label]
    precision = f"{c['precision']:.3f}" if cm[:, i].sum() else "–"
    recall, f1 = (f"{c['recall']:.3f}", f"{c['f1']:.3f}") if c["support"] else ("–", "–")
    return precision, recall, f1


def class_rows(result: dict) -> list[tuple[str, str, str, str, int]]:
    """Per-class rows for the classes in the data or predicted (others have nothing to say)."""
    cm = np.asarray(result["confusion_matrix"])
    rows = []
    for i in active_classes(cm):
        label = result["labels"][i]
        rows.append((label, *class_figures(result, label), result["per_class"][label]["support"]))
    return rows


def gallery_title(result: dict, gallery: list[dict]) -> str:
    wrong = len(misclassified(result.get("predictions", [])))
    return f"Misclassified images ({len(gallery)} of {wrong} shown, most confident first)"


def refused_title(result: dict, gallery: list[dict]) -> str:
    n = len(refused(result.get("predictions", [])))
    return f"Photos it would not answer ({len(gallery)} of {n} shown, by reason, most confident first)"


def _right(g: dict) -> str:
    return "right" if g["predicted"] == g["true"] else "wrong"


def _md_table(header: list[str], rows: list) -> str:
    def esc(v) -> str:
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(
    result: dict, figures: dict[str, str], gallery: list[dict], refused_gallery: list[dict] | None = None
) -> str:
    parts = [
        "# Evaluation report",
        f"Model `{result['model']}` on `{result['data']}`, {result.get('created', '')}",
        *([f"**Warning:** {seen_warning(result)}"] if seen_warning(result) else []),
        *([f"**{LIMITATIONS_TITLE}:** {result['limitations']}"] if result.get("limitations") else []),
        "## Metrics",
        _md_table(["metric", "value"], summary_rows(result)),
        "## Per class",
        _md_table(["class", "precision", "recall", "F1", "support"], class_rows(result)),
        "## Confusion matrix",
        f"![confusion matrix]({figures['confusion_matrix']})",
        confusion_caption(result),
        "## Most confused pairs",
        _md_table(*confused_table(result)) if result["most_confused"] else "No image was misclassified.",
        "## Calibration",
        f"![reliability diagram]({figures['reliability']})",
        reliability_caption(result),
    ]
    if "risk_coverage" in figures:
        parts += [
            "## Abstention (selective prediction)",
            _md_table(["measure", "value"], selective_rows(result)),
            RANKED_NOTE,
            f"![risk-coverage curve]({figures['risk_coverage']})",
            *([note] if (note := risk_coverage_note(result["selective"])) else []),
            *([f"**What would help:** {advice}"] if (advice := refusal_advice(result["selective"])) else []),
        ]
    parts += [f"## {gallery_title(result, gallery)}"]
    parts.append(
        _md_table(
            ["image", "true", "predicted", "confidence", "file"],
            [
                (f"![]({g['thumbnail']})", g["true"], g["predicted"], _prob(g["confidence"]), f"`{g['file']}`")
                for g in gallery
            ],
        )
        if gallery
        else "None."
    )
    if refused_gallery is not None and result.get("selective"):
        parts += [f"## {refused_title(result, refused_gallery)}"]
        parts.append(
            _md_table(
                ["image", "true", "why not answered", "best guess", "confidence", "right?", "file"],
                [
                    (
                        f"![]({g['thumbnail']})",
                        g["true"],
                        reason_text(g.get("reason")),
                        g["predicted"],
                        _prob(g["confidence"]),
                        _right(g),
                        f"`{g['file']}`",
                    )
                    for g in refused_gallery
                ],
            )
            if refused_gallery
            else "None: it answered every photo."
        )
    if result.get("skipped"):
        parts += [
            "## Skipped files",
            _md_table(["file", "reason"], [(s["file"], s["reason"]) for s in result["skipped"]]),
        ]
    return "\n\n".join(parts) + "\n"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img.figure { max-width: 100%; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 1rem; }
figure { margin: 0; font-size: 0.8rem; word-break: break-word; }
figcaption .wrong { color: #b00020; }
figcaption .right { color: #1b6e20; }
figcaption .refused { color: #8a5a00; }
figcaption .message { display: block; color: #555; margin-top: 0.2rem; }
p.warning { background: #fff4e5; border-left: 4px solid #b26a00; padding: 0.5rem 0.8rem; }
"""


_NUMBER = re.compile(r"-?\d+(\.\d+)?%?|–")  # "–": a figure with nothing to measure it on


def _html_table(header: list[str], rows: list) -> str:
    def td(v) -> str:
        cls = ' class="num"' if _NUMBER.fullmatch(str(v)) else ""
        return f"<td{cls}>{html.escape(str(v))}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(td(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(
    result: dict, figures: dict[str, str], gallery: list[dict], refused_gallery: list[dict] | None = None
) -> str:
    e = html.escape
    confused = _html_table(*confused_table(result)) if result["most_confused"] else "<p>No image was misclassified.</p>"
    cards = "".join(
        f'<figure><img src="{e(g["thumbnail"])}" alt="{e(Path(g["file"]).name)}">'
        f'<figcaption>true: <b>{e(g["true"])}</b><br>predicted: <b class="wrong">{e(g["predicted"])}</b> '
        f"({_prob(g['confidence'])})"
        + (
            f'<br><span class="refused">not answered: {e(reason_text(g.get("reason")))}</span>'
            if g.get("abstained")
            else ""
        )
        + f"<br><small>{e(g['file'])}</small></figcaption></figure>"
        for g in gallery
    )
    refused_cards = "".join(
        f'<figure><img src="{e(g["thumbnail"])}" alt="{e(Path(g["file"]).name)}">'
        f"<figcaption>true: <b>{e(g['true'])}</b><br>"
        f'not answered: <b class="refused">{e(reason_text(g.get("reason")))}</b><br>'
        f'best guess: <b class="{_right(g)}">{e(g["predicted"])}</b> ({_prob(g["confidence"])}, {_right(g)})'
        + (f'<small class="message">{e(g["message"])}</small>' if g.get("message") else "")
        + f"<small>{e(g['file'])}</small></figcaption></figure>"
        for g in refused_gallery or []
    )
    refused_section = (
        f"<h2>{e(refused_title(result, refused_gallery))}</h2>"
        f'<div class="gallery">{refused_cards or "<p>None: it answered every photo.</p>"}</div>'
        if refused_gallery is not None and result.get("selective")
        else ""
    )
    skipped = (
        "<h2>Skipped files</h2>"
        + _html_table(["file", "reason"], [(s["file"], s["reason"]) for s in result["skipped"]])
        if result.get("skipped")
        else ""
    )
    selective = (
        "<h2>Abstention (selective prediction)</h2>"
        + _html_table(["measure", "value"], selective_rows(result))
        + f"<p>{e(RANKED_NOTE)}</p>"
        + f'<img class="figure" src="{e(figures["risk_coverage"])}" alt="risk-coverage curve">'
        + (f"<p>{e(note)}</p>" if (note := risk_coverage_note(result["selective"])) else "")
        + (
            f"<p><strong>What would help:</strong> {e(advice)}</p>"
            if (advice := refusal_advice(result["selective"]))
            else ""
        )
        if "risk_coverage" in figures
        else ""
    )
    seen = seen_warning(result)
    warning = f'<p class="warning"><b>Warning:</b> {_code(e(seen))}</p>' if seen else ""
    if result.get("limitations"):
        warning += f"<p><b>{e(LIMITATIONS_TITLE)}:</b> {e(result['limitations'])}</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>leafdoc evaluation: {e(Path(result["model"]).name)}</title>
<style>{_CSS}</style></head><body>
<h1>Evaluation report</h1>
<p>Model <code>{e(result["model"])}</code> on <code>{e(result["data"])}</code>, {e(result.get("created", ""))}</p>
{warning}
<h2>Metrics</h2>{_html_table(["metric", "value"], summary_rows(result))}
<h2>Per class</h2>{_html_table(["class", "precision", "recall", "F1", "support"], class_rows(result))}
<h2>Confusion matrix</h2><img class="figure" src="{e(figures["confusion_matrix"])}" alt="confusion matrix">
<p>{e(confusion_caption(result))}</p>
<h2>Most confused pairs</h2>{confused}
<h2>Calibration</h2><img class="figure" src="{e(figures["reliability"])}" alt="reliability diagram">
<p>{e(reliability_caption(result))}</p>
{selective}
<h2>{e(gallery_title(result, gallery))}</h2>
<div class="gallery">{cards or "<p>None.</p>"}</div>
{refused_section}
{skipped}
</body></html>
"""


def _write_gallery(tmp: Path, shown: list[dict], prefix: str = "misclassified") -> list[dict]:
    """`shown`'s thumbnails as `prefix`_NNN.png in `tmp`, and their rows with the thumbnail's name."""
    gallery = []
    for k, p in enumerate(shown):
        name = f"{prefix}_{k:03d}.png"
        try:
            (tmp / name).write_bytes(image_png(thumbnail(p["file"])))
        except (LeafdocError, OSError):
            continue  # the file changed or vanished since evaluation; the tables still list it
        gallery.append({**p, "thumbnail": name})
    return gallery


def write_report(result: dict, out_dir: Path, gallery_limit: int = GALLERY_LIMIT) -> Path:
    """Write report.md, index.html and their PNGs into `out_dir`, atomically; returns out_dir."""
    out_dir = Path(out_dir)
    check_replaceable(out_dir, "index.html")
    result = {**result, "created": result.get("created") or datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
    cm = np.asarray(result["confusion_matrix"])
    rows, cols = matrix_classes(cm)
    figures = {"confusion_matrix": "confusion_matrix.png", "reliability": "reliability.png"}
    with atomic_dir(out_dir) as tmp:
        labels = result["labels"]
        sub = cm[np.ix_(rows, cols)]
        fig = plot_confusion_matrix(sub, [labels[i] for i in cols], row_labels=[labels[i] for i in rows])
        (tmp / figures["confusion_matrix"]).write_bytes(figure_png(fig))
        fig = plot_reliability(result["reliability"], result["ece"])
        (tmp / figures["reliability"]).write_bytes(figure_png(fig))
        if result.get("selective") and result["selective"].get("coverage") is not None:
            figures["risk_coverage"] = "risk_coverage.png"
            (tmp / figures["risk_coverage"]).write_bytes(figure_png(plot_risk_coverage(result["selective"])))
        predictions = result.get("predictions", [])
        gallery = _write_gallery(tmp, misclassified(predictions, gallery_limit))
        refusals = _write_gallery(tmp, refused(predictions, gallery_limit), "refused")
        (tmp / "report.md").write_text(render_markdown(result, figures, gallery, refusals), encoding="utf-8")
        (tmp / "index.html").write_text(render_html(result, figures, gallery, refusals), encoding="utf-8")
    return out_dir
