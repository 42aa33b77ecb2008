"""notebooks/evaluation.ipynb scores the model's test photos by default (LEAFDOC_NB_SPLIT, as `leafdoc evaluate
--split test`), says which photos it scored, and warns, as the CLI does, when the photos scored are ones the model
learnt: it printed "accuracy 0.9062" on 32 photos, 27 of which the model was trained on, and said nothing."""

from __future__ import annotations

import pytest
from tests.conftest import REPO

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = REPO / "notebooks" / "evaluation.ipynb"


def _run_up_to_evaluation(monkeypatch, tmp_path, **env) -> str:
    """Run the notebook's cells up to its evaluation cell; the text of their outputs."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LEAFDOC_NB_OOD", "")
    monkeypatch.setenv("LEAFDOC_NB_LIMIT", "0")
    monkeypatch.setenv("LEAFDOC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    last = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "evaluate_folder(" in c.source)
    nb.cells = nb.cells[: last + 1]
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()
    text = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                text.append(out.text)
            text.extend(v for m, v in out.get("data", {}).items() if m in ("text/markdown", "text/plain"))
    return "\n".join(text)


def test_notebook_scores_the_test_split_by_default_and_warns_on_learnt_photos(tiny_model, tmp_path, monkeypatch):
    from leafdoc.evaluate.evaluate import evaluate_folder

    leaves = tiny_model.parent / "leaves"  # the folder the tiny model was trained from (tests/conftest.py)
    everything = evaluate_folder(tiny_model, leaves)
    test = evaluate_folder(tiny_model, leaves, split="test")
    assert 0 < test["n"] < everything["n"] == 18

    text = _run_up_to_evaluation(monkeypatch, tmp_path, LEAFDOC_NB_MODEL=str(tiny_model), LEAFDOC_NB_DATA=str(leaves))
    assert "split: test" in text
    assert f"photos scored: {test['n']}; the model's test photos: {test['n']} of the folder's 18 photo files" in text
    assert f"{test['n']} photos of 3 classes evaluated; accuracy {test['accuracy']:.4f}" in text
    assert f"{everything['n']} photos of 3 classes evaluated" not in text
    assert "warning" not in text  # none of the test photos was learnt

    # Every photo, on request: the figures come with leafdoc evaluate's warning, naming how many were learnt.
    text = _run_up_to_evaluation(
        monkeypatch, tmp_path, LEAFDOC_NB_MODEL=str(tiny_model), LEAFDOC_NB_DATA=str(leaves), LEAFDOC_NB_SPLIT="all"
    )
    seen = everything["seen_in_training"]
    assert f"{everything['n']} photos of 3 classes evaluated; accuracy {everything['accuracy']:.4f}" in text
    assert "(every photo of the folder)" in text
    assert f"**warning**: {seen['train'] + seen['val']} of the 18 photos are photos the model was" in text
    assert "overstate" in text

    # The model's training photos: warned too, by leafdoc evaluate's own words.
    text = _run_up_to_evaluation(
        monkeypatch, tmp_path, LEAFDOC_NB_MODEL=str(tiny_model), LEAFDOC_NB_DATA=str(leaves), LEAFDOC_NB_SPLIT="train"
    )
    assert "**warning**: " in text and "photos the model was trained on, by its split.json" in text
