"""The serving path never imports TensorFlow: a serving install does not have it."""

import subprocess
import sys

import pytest

SERVING_MODULES = [
    "leafdoc.inference.predictor",
    "leafdoc.inference.abstain",
    "leafdoc.evaluate.metrics",
    "leafdoc.imaging.photos",
    "leafdoc.data.ingest",
    "leafdoc.cli.main",
]


@pytest.mark.parametrize("module", SERVING_MODULES)
def test_module_does_not_import_tensorflow(module):
    code = f"import sys, {module}; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"], f"{module} pulled in TensorFlow/Keras"
