"""Build notebooks/evaluation.ipynb (without outputs) from the cells below.

    .venv/bin/python notebooks/build_evaluation.py

Edit the cells here, not in the .ipynb, and re-run this script: the notebook stays reviewable in diffs.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

OUT = Path(__file__).with_name("evaluation.ipynb")

CELLS: list[tuple[str, str]] = [
    (
        "md",
        """# leafdoc: evaluating a model

This notebook evaluates a leafdoc model folder on a labelled photo folder (one subfolder per class)
and explains what the numbers mean. Everything is computed by leafdoc's own functions
(`leafdoc.evaluate`, `leafdoc.inference.explain`, `leafdoc.data.stats`, `leafdoc.imaging.figure_png`), the same code as
`leafdoc evaluate` and the service, so what you see here is what users get.

**Run it**: `jupyter lab notebooks/evaluation.ipynb` (or *Run all* in VS Code) with the project's
virtualenv as the kernel. The first code cell holds the parameters; each can be overridden with an
environment variable before starting Jupyter:

| variable | meaning | default |
|---|---|---|
| `LEAFDOC_NB_MODEL` | model folder | `models/starter` |
| `LEAFDOC_NB_DATA` | labelled photos, one subfolder per class | `../shared/datasets/plantvillage` |
| `LEAFDOC_NB_OOD` | photos that are *not* leaves (empty: skip) | `../shared/datasets/flowers` if present |
| `LEAFDOC_NB_LIMIT` | photos per class to evaluate (`0`: all) | `10` |
| `LEAFDOC_NB_SPLIT` | photos scored, by the model's `split.json`: `test`, `val`, `train`, `unseen`, `all` | `test` |

The default scores only the model's test photos, those it neither learnt from nor was chosen on, as
`leafdoc evaluate --split test` does: figures on photos the model learnt overstate how it does on new
ones (`unseen`: in neither train nor val; `all`: every photo). A folder the model never saw (no photo in its
`split.json`) needs `LEAFDOC_NB_SPLIT=unseen` or `all`.
The default evaluates a small random sample per class so the notebook runs in about a minute;
use `LEAFDOC_NB_LIMIT=0` for the full folder (the numbers in the README come from the full test split).""",
    ),
    (
        "code",
        """import os
from pathlib import Path

# The repository root: this notebook lives in <repo>/notebooks.
REPO = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
_flowers = REPO.parent / "shared" / "datasets" / "flowers"

MODEL = Path(os.environ.get("LEAFDOC_NB_MODEL", REPO / "models" / "starter"))
DATA = Path(os.environ.get("LEAFDOC_NB_DATA", REPO.parent / "shared" / "datasets" / "plantvillage"))
OOD = os.environ.get("LEAFDOC_NB_OOD", str(_flowers) if _flowers.is_dir() else "")
LIMIT = int(os.environ.get("LEAFDOC_NB_LIMIT", "10"))  # photos per class; 0 = every photo
SPLIT = os.environ.get("LEAFDOC_NB_SPLIT", "test").strip() or "all"  # test, val, train, unseen, or all
SEED = 0  # which photos the sample takes
GALLERY = 12  # misclassified photos shown
GRADCAM = 4  # photos explained with Grad-CAM

print(
    f"model: {MODEL}\\ndata:  {DATA}\\nOOD:   {OOD or '(none)'}\\nlimit: {LIMIT or 'all'} per class\\n"
    f"split: {SPLIT}"
)""",
    ),
    (
        "md",
        """## Setup

Display helpers only: leafdoc's plot functions return matplotlib `Figure`s, which we render to PNG
with `figure_png`; tables are shown as Markdown.""",
    ),
    (
        "code",
        """import base64
import io

import numpy as np
from IPython.display import HTML, Image, Markdown, display
from PIL import Image as PILImage

from leafdoc.data.stats import (
    compute_stats,
    folder_entries,
    load_samples,
    plot_class_distribution,
    plot_colour,
    plot_samples,
    plot_sharpness,
    plot_sizes,
)
from leafdoc.evaluate.evaluate import evaluate_folder
from leafdoc.evaluate.report import (
    active_classes,
    class_rows,
    display_label,
    image_png,
    images_evaluated,
    misclassified,
    plot_confusion_matrix,
    plot_reliability,
    plot_risk_coverage,
    seen_warning,
    selective_rows,
    summary_rows,
    thumbnail,
)
from leafdoc.imaging.figure_png import figure_png
from leafdoc.inference.explain import explain_bytes
from leafdoc.inference.predictor import Predictor


def show(fig, jpeg=False):
    \"\"\"A leafdoc Figure as an image output (JPEG for photo grids: a tenth of the size).\"\"\"
    png = figure_png(fig)
    if not jpeg:
        return display(Image(png))
    buf = io.BytesIO()
    PILImage.open(io.BytesIO(png)).convert("RGB").save(buf, format="JPEG", quality=80)
    display(Image(buf.getvalue(), format="jpeg"))


def table(header, rows):
    def cell(v):
        return str(v).replace("|", "\\\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    display(Markdown("\\n".join(lines)))


def png_tag(data: bytes, width: int = 160) -> str:
    return f'<img src="data:image/png;base64,{base64.b64encode(data).decode()}" width="{width}">'""",
    ),
    (
        "md",
        """## Evaluate

`evaluate_folder` runs every photo through the serving path (ONNX Runtime, the same preprocessing
as training) and leafdoc's decision (answer, or abstain with a reason). With an OOD folder it also
counts how many non-leaf photos the model refused.

`split=SPLIT` keeps only the photos the model folder's `split.json` puts in that part (by content), as
`leafdoc evaluate --split` does; the cell prints which photos were scored, and the same warning as
`leafdoc evaluate` when some of them are photos the model learnt from or was chosen on.""",
    ),
    (
        "code",
        """predictor = Predictor(MODEL)
result = evaluate_folder(
    MODEL,
    DATA,
    predictor=predictor,
    ood_dir=Path(OOD) if OOD else None,
    per_class=LIMIT or None,
    seed=SEED,
    split=None if SPLIT == "all" else SPLIT,
)
print(f"photos scored: {images_evaluated(result)}" + ("" if result["split"] else " (every photo of the folder)"))
print(f"{result['n']} photos of {len(result['classes'])} classes evaluated; accuracy {result['accuracy']:.4f}")
if warning := seen_warning(result):
    display(Markdown(f"**warning**: {warning}"))""",
    ),
    (
        "md",
        """## Metrics

- **accuracy**: share of photos whose top prediction is the true class (every photo counts, even
  those leafdoc would abstain on).
- **top-3 accuracy**: the true class is among the three most likely ones.
- **macro F1**: the mean of the per-class F1 scores, so every class weighs the same whatever its size.
- **expected calibration error (ECE)**: how far the model's confidence is from its actual accuracy
  (0 is perfectly calibrated; see *Calibration* below).""",
    ),
    ("code", """table(["metric", "value"], summary_rows(result))"""),
    (
        "md",
        """## Confusion matrix

Rows are the true classes, columns what the model predicted. A perfect model has numbers only on
the diagonal. The colour is the share of the row (so small classes stay visible), the numbers are
photo counts. Only classes present in the data or predicted are shown.""",
    ),
    (
        "code",
        """cm = np.asarray(result["confusion_matrix"])
keep = active_classes(cm) or list(range(len(result["labels"])))
show(plot_confusion_matrix(cm[np.ix_(keep, keep)], [result["labels"][i] for i in keep]))""",
    ),
    (
        "md",
        """## Per class: precision, recall, F1

- **precision**: of the photos predicted as this class, the share that really are.
- **recall**: of the photos of this class, the share the model found.
- **F1**: their harmonic mean. **support**: photos of the class in the data.

A low recall means the disease is missed; a low precision means the model calls it too often.""",
    ),
    ("code", """table(["class", "precision", "recall", "F1", "support"], class_rows(result))"""),
    (
        "md",
        """## Most confused pairs

The off-diagonal cells of the confusion matrix with the most photos: which disease is taken for which.""",
    ),
    (
        "code",
        """if result["most_confused"]:
    table(["true", "predicted as", "count"], [(p["true"], p["predicted"], p["count"]) for p in result["most_confused"]])
else:
    display(Markdown("No photo was misclassified."))""",
    ),
    (
        "md",
        """## Misclassified photos

The wrong predictions, most confident first: a confident mistake is the one that misleads a user.
Look for a pattern (background, lighting, a second disease on the leaf, a wrong label in the data).""",
    ),
    (
        "code",
        """wrong = misclassified(result["predictions"])
cards = []
for p in wrong[:GALLERY]:
    cards.append(
        f'<figure style="margin:0;font-size:11px">{png_tag(image_png(thumbnail(p["file"])))}'
        f"<figcaption>true: <b>{display_label(p['true'], 40)}</b><br>"
        f"predicted: <b style='color:#b00020'>{display_label(p['predicted'], 40)}</b> ({p['confidence']:.0%})"
        f"{'<br><i>abstained: ' + p['reason'] + '</i>' if p.get('abstained') else ''}</figcaption></figure>"
    )
print(f"{len(wrong)} of {result['n']} photos misclassified; {len(cards)} shown")
if cards:
    grid = "display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:12px"
    display(HTML(f'<div style="{grid}">{"".join(cards)}</div>'))""",
    ),
    (
        "md",
        """## Where the model looks (Grad-CAM)

`explain_bytes` returns the class activation map of the predicted class over the photo: red is the
evidence the model used most, blue the least. A good model looks at the lesions on the leaf, not at
the background. Shown: photos of different classes, half misclassified, half confidently right
(left: the photo, right: the map of the class the model predicted).""",
    ),
    (
        "code",
        """right = sorted((p for p in result["predictions"] if p["correct"]), key=lambda p: -p["confidence"])
picked, seen = [], set()
for pool, n in ((wrong, GRADCAM // 2), (right, GRADCAM)):  # half mistakes, then confident right answers
    for p in pool:
        if p["true"] not in seen and len(picked) < n:
            picked.append(p)
            seen.add(p["true"])
cards = []
for p in picked:
    ex = explain_bytes(predictor, Path(p["file"]).read_bytes(), Path(p["file"]).name)
    label = predictor.labels[ex.class_index]
    cards.append(
        f'<figure style="margin:0;font-size:11px">{png_tag(image_png(thumbnail(p["file"], 200)), 200)} '
        f"{png_tag(ex.overlay_png, 200)}<figcaption>true: <b>{display_label(p['true'], 50)}</b><br>"
        f"explained: <b>{display_label(label, 50)}</b> ({ex.probabilities[ex.class_index]:.0%})</figcaption></figure>"
    )
display(HTML(f'<div style="display:flex;flex-wrap:wrap;gap:16px">{"".join(cards)}</div>'))""",
    ),
    (
        "md",
        """## Calibration

When the model says 90 %, is it right 90 % of the time? Photos are grouped by confidence; each bar
is the accuracy of its group, the hatched outline its mean confidence. Bars below the diagonal
mean over-confidence. The lower panel shows how many photos fall in each group (a bar over a
handful of photos says little). ECE is the photo-weighted gap between the two.""",
    ),
    ("code", """show(plot_reliability(result["reliability"], result["ece"]))"""),
    (
        "md",
        """## Selective prediction: knowing when not to answer

leafdoc abstains instead of guessing when the photo is unusable (too small, dark, blurred...), does
not look like a leaf of its classes (`not_a_leaf`), or the model is unsure. The table shows:

- **answered (coverage)**: share of photos answered; **refused** by reason (the metrics above give **right on
  the photos it answered** beside **right if forced to answer every photo**);
- **right on the 50 % / 80 % of photos it is most sure of (ranked by confidence)**: the photos ranked by top
  probability alone, its checks left out: what another threshold would give;
- **AURC**: area under the risk-coverage curve (mean error rate over all coverages; lower is better);
- with an OOD folder, the share of non-leaf photos (here flowers) refused.

The curve: the error rate among answered photos as the model answers more of them, most confident
first. A good ranking keeps the risk low until high coverage; the red dot is leafdoc's own decision.""",
    ),
    (
        "code",
        """sel = result["selective"]
table(["measure", "value"], selective_rows(result))
if sel["coverage"] is not None:
    show(plot_risk_coverage(sel))
if result.get("ood"):
    o = result["ood"]
    print(f"OOD: {o['abstained']:.1%} of {o['n']} non-leaf photos refused; by reason: {o['by_reason']}")""",
    ),
    (
        "md",
        """## The dataset

What the photos look like explains a lot about the numbers above: class balance, image sizes,
colour and brightness, sharpness, and a few samples per class. Counts are over the whole folder;
sizes, colour and sharpness are measured on `LIMIT` random photos per class.""",
    ),
    (
        "code",
        """entries, not_photos = folder_entries(DATA)
stats = compute_stats(entries, sample=LIMIT or None, seed=SEED, skipped=not_photos, source=str(DATA))
print(
    f"{stats['n_images']} photos in {stats['n_classes']} classes, {stats['n_measured']} measured; "
    f"imbalance (largest / smallest class): {stats['imbalance_ratio']}"
)
show(plot_class_distribution(stats))""",
    ),
    (
        "md",
        """**Image sizes**: a model trained on one size of photo may struggle with very different ones
(leafdoc resizes every photo, but the aspect ratio and detail change).""",
    ),
    ("code", """show(plot_sizes(stats))"""),
    (
        "md",
        """**Colour and brightness** per class: a class that differs mainly by background or lighting
invites the model to learn the studio rather than the disease.""",
    ),
    ("code", """show(plot_colour(stats))"""),
    (
        "md",
        """**Sharpness** (variance of the Laplacian; higher is sharper): blurred photos hide lesions.""",
    ),
    ("code", """show(plot_sharpness(stats))"""),
    ("md", """**Samples**: a few photos of each class."""),
    ("code", """show(plot_samples(load_samples(stats, entries)), jpeg=True)"""),
]


def build() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, (kind, source) in enumerate(CELLS):
        cell = new_markdown_cell(source) if kind == "md" else new_code_cell(source)
        cell["id"] = f"cell-{i:02d}"  # stable ids: rebuilding does not churn the diff
        if i == 1:
            cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


if __name__ == "__main__":
    nbformat.write(build(), OUT)
    print(f"wrote {OUT}")
