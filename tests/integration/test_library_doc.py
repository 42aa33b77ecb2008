"""docs/library.md's examples run as written and print what the page says they do: each ```python block in a fresh
interpreter, from a folder laid out as the repository's root (models/starter, examples/, and my-photos for the
training example), on the shipped starter model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import PLANTVILLAGE, REPO, make_leaf_folder

PAGE = REPO / "docs" / "library.md"
STARTER = REPO / "models" / "starter"


def blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", PAGE.read_text(encoding="utf-8"), flags=re.M | re.S)


@pytest.fixture
def root(tmp_path) -> Path:
    if not (STARTER / "model.onnx").is_file():
        pytest.skip("models/starter is not here")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "starter").symlink_to(STARTER)
    (tmp_path / "examples").symlink_to(REPO / "examples")
    make_leaf_folder(tmp_path / "my-photos", per_class=6)
    return tmp_path


def run(code: str, root: Path) -> str:
    code = code.replace("../shared/datasets/plantvillage", str(PLANTVILLAGE))
    env = {**os.environ, "LEAFDOC_HOME": str(root / "home"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    r = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"{code}\n{r.stderr}"
    return r.stdout


def test_the_page_has_one_example_per_entry_point():
    code = "\n".join(blocks())
    for name in (
        "predict_files(",
        ".answer(",
        ".preprocess(",
        ".predict_arrays(",
        "evaluate_folder(",
        "prepare(",
        "train_model(",
    ):
        assert name in code, name


def test_every_example_runs_as_written(root):
    predict, answer, arrays, refused, evaluate, train = (run(code, root) for code in blocks())
    assert "tomato_early_blight.jpg Tomato___Early_blight" in predict
    assert "corn_common_rust.jpg Corn_(maize)___Common_rust_" in predict and "top 3:" in predict
    assert answer.startswith("Apple___Cedar_apple_rust ")
    assert "(2, 160, 160, 3)" in arrays and "examples/potato_healthy.jpg Potato___healthy" in arrays
    assert "within 0-1" in refused and "Predictor.preprocess(path)" in refused
    # The starter's 139 test photos of the folder's 4,500 (docs/cli.md), at most 2 a class; none of them learnt.
    assert re.search(
        r"photos scored: \d+ \(at most 2 per class, seed 0, of 139\); the model's test photos: 139 of", evaluate
    )
    assert "warning: none (no photo scored is one the model learnt)" in evaluate
    assert "0 files rejected" in train and "'train':" in train
    assert (root / "models" / "my-photos" / "model.onnx").is_file() and "accuracy" in train
