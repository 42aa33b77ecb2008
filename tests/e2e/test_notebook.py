"""notebooks/evaluation.ipynb runs end to end (nbclient, a real kernel) on the tiny model and a few photos,
and shows what it promises: the metrics of evaluate_folder, the figures, Grad-CAM and the abstention numbers."""

from __future__ import annotations

import subprocess
import sys

import pytest
from tests.conftest import REPO, make_leaf_folder, synthetic_image

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = REPO / "notebooks" / "evaluation.ipynb"
GENERATOR = REPO / "notebooks" / "build_evaluation.py"


def test_committed_notebook_is_built_by_the_generator_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells if c.cell_type == "code")
    built = subprocess.run(
        [sys.executable, "-c", "import build_evaluation as b, nbformat; print(nbformat.writes(b.build()))"],
        cwd=GENERATOR.parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert [c.source for c in nbformat.reads(built, as_version=4).cells] == [c["source"] for c in nb.cells], (
        "evaluation.ipynb is stale: run `python notebooks/build_evaluation.py`"
    )


def _outputs(nb) -> tuple[str, dict[str, int]]:
    """All text of the outputs (streams, Markdown, HTML) and a count of the MIME types shown."""
    text, kinds = [], {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                text.append(out.text)
            for mime, value in out.get("data", {}).items():
                kinds[mime] = kinds.get(mime, 0) + 1
                if mime in ("text/markdown", "text/html", "text/plain"):
                    text.append(value)
    return "\n".join(text), kinds


def test_evaluation_notebook_runs_on_the_tiny_model(tiny_model, tmp_path, monkeypatch):
    from leafdoc.evaluate.evaluate import evaluate_folder

    leaves = make_leaf_folder(tmp_path / "leaves", per_class=4)
    ood = tmp_path / "ood"
    for i in range(3):  # not leaves: flat, noisy colour fields
        synthetic_image(ood / f"thing_{i}.png", size=(64, 64), color=(200, 40 + 60 * i, 180), seed=i)
    monkeypatch.setenv("LEAFDOC_NB_MODEL", str(tiny_model))
    monkeypatch.setenv("LEAFDOC_NB_DATA", str(leaves))
    monkeypatch.setenv("LEAFDOC_NB_OOD", str(ood))
    monkeypatch.setenv("LEAFDOC_NB_LIMIT", "0")  # every photo: the same data as evaluate_folder below
    monkeypatch.setenv(
        "LEAFDOC_NB_SPLIT", "all"
    )  # not only the test split (tests/integration/test_evaluation_notebook_split.py)
    monkeypatch.setenv("LEAFDOC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MPLBACKEND", "Agg")

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()  # raises CellExecutionError if any cell fails

    text, kinds = _outputs(nb)
    expected = evaluate_folder(tiny_model, leaves, ood_dir=ood)
    lo, hi = expected["accuracy_ci95"]
    n, right = expected["n"], round(expected["accuracy"] * expected["n"])
    assert f"{expected['accuracy']:.1%} (95% CI {lo:.1%}–{hi:.1%}); {right} of {n} photos" in text
    assert f"{expected['n']} photos of 3 classes evaluated; accuracy {expected['accuracy']:.4f}" in text
    # Confusion matrix, reliability, risk-coverage and the four dataset figures are PNGs; samples a JPEG.
    assert kinds.get("image/png", 0) >= 7
    assert kinds.get("image/jpeg", 0) == 1
    assert "| class | precision | recall | F1 | support |" in text
    # Each class's row holds that class's figures, worked out here from the model's own answers (scikit-learn
    # on ONNX Runtime's top-1 labels), not from evaluate_folder, which the notebook itself calls.
    from sklearn.metrics import precision_recall_fscore_support

    from leafdoc.inference.predictor import Predictor

    photos = sorted((p, p.parent.name) for p in leaves.rglob("*") if p.is_file())
    answers = Predictor(tiny_model).predict_files([p for p, _ in photos])
    truth, said = [c for _, c in photos], [a.top_k[0].label for a in answers]
    classes = sorted(set(truth))
    precision, recall, f1, support = precision_recall_fscore_support(truth, said, labels=classes, zero_division=0)
    for i, c in enumerate(classes):
        shown = f"{precision[i]:.3f}" if c in said else "–"  # a class never answered: no precision to measure
        assert f"| {c} | {shown} | {recall[i]:.3f} | {f1[i]:.3f} | {support[i]} |" in text, c
    assert len(set(said)) >= 2  # the tiny model learns: its answers are not one label for every photo
    assert "photos misclassified" in text
    # Grad-CAM: at least one photo and its overlay, inline.
    assert text.count("data:image/png;base64,") >= 2
    assert (
        "AURC" in text
        and "of photos it is most sure of (ranked by confidence)" in text
        and "answered (coverage)" in text
    )
    assert f"non-leaf photos refused ({expected['ood']['n']} in {ood})" in text
    assert f"{expected['ood']['abstained']:.1%} of 3 non-leaf photos refused" in text
    assert "12 photos in 3 classes" in text
