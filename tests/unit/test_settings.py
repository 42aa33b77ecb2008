"""Settings come from LEAFDOC_* variables; a bad value is a clear error naming the variable, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from leafdoc.core.errors import ConfigError
from leafdoc.core.settings import Settings


def test_values_are_read_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LEAFDOC_HOME", str(tmp_path))
    monkeypatch.setenv("LEAFDOC_ONNX_VARIANT", "int8")
    monkeypatch.setenv("LEAFDOC_MAX_IMAGE_BYTES", "1234")
    s = Settings.load()
    assert (s.home, s.onnx_variant, s.max_image_bytes) == (tmp_path, "int8", 1234)


def test_a_bad_value_names_every_bad_variable(monkeypatch):
    monkeypatch.setenv("LEAFDOC_ONNX_VARIANT", "int9")
    monkeypatch.setenv("LEAFDOC_MAX_IMAGE_BYTES", "lots")
    with pytest.raises(ConfigError) as info:
        Settings.load()
    text = str(info.value)
    assert "LEAFDOC_ONNX_VARIANT='int9'" in text and "'fp32', 'int8' or 'fp16'" in text
    assert "LEAFDOC_MAX_IMAGE_BYTES='lots'" in text and "integer" in text
    assert "README" in info.value.hint


def test_the_cli_says_so_without_a_traceback(tmp_path):
    env = {"LEAFDOC_HOME": str(tmp_path), "LEAFDOC_ONNX_VARIANT": "int9", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", "from leafdoc.cli.main import main; main()", "advice", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "LEAFDOC_ONNX_VARIANT='int9'" in out
    assert "Traceback" not in out and "ValidationError" not in out
