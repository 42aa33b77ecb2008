"""The photo guide's entries (leafdoc.words.photo_guide), shown by the web page and the desktop app: every picture is
there, small, credited, and every caption names a reason code the server really sends."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import get_args

from PIL import Image

from leafdoc.inference.answer import Answer
from leafdoc.words import photo_guide

# The reason codes the API can send: the Literal inside `Literal[...] | None`.
REASONS = {r for arg in get_args(Answer.model_fields["reason"].annotation) for r in get_args(arg)}
EXAMPLES_README = Path(photo_guide.GUIDE_DIR).parent / "README.md"


def test_every_picture_is_there_small_and_credited():
    pictured = [e for e in photo_guide.ENTRIES if e.file]
    assert len(pictured) == 4 and photo_guide.pictured() == tuple(pictured)
    readme = EXAMPLES_README.read_text()
    for entry in pictured:
        assert entry.path.is_file(), entry.path
        assert entry.path.stat().st_size <= 60 * 1024
        with Image.open(entry.path) as image:
            assert max(image.size) <= 260 and min(image.size) >= 64  # a thumbnail, yet not "too small"
        assert entry.credit and f"guide/{entry.file}" in readme  # source and licence recorded
    assert "CC BY" in photo_guide.credits() and "PlantVillage" in photo_guide.credits()


def test_each_caption_names_a_real_reason_code_or_says_diagnosed():
    assert {"poor_photo", "not_a_leaf", "unlike_training", "unknown_leaf", "unsure"} == REASONS
    seen = set()
    for entry in photo_guide.ENTRIES:
        assert entry.photo and entry.answer
        if entry.good:
            assert entry.caption.startswith("✓") and "diagnosed" in entry.caption
        else:
            assert entry.reason in REASONS and f"({entry.reason})" in entry.caption
            assert not entry.caption.startswith("✓")
            seen.add(entry.reason)
    assert seen == REASONS  # the guide shows every way leafdoc can say "not sure"
    assert sum(e.good for e in photo_guide.ENTRIES) == 1


def test_the_guide_imports_neither_gradio_nor_qt():
    code = "import sys, leafdoc.words.photo_guide; print('gradio' in sys.modules, 'PySide6' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["False", "False"]
