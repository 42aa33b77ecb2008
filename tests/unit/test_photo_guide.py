"""The photo guide's entries (leafdoc.words.photo_guide), shown by the web page and the desktop app: every picture is
there, small, credited, every way the server can refuse is shown, and no caption shows a grower a reason's code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest
from PIL import Image

from leafdoc.core.i18n import LANGUAGES, gettext
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


def test_each_bad_entry_is_a_real_refusal_and_the_guide_shows_every_kind():
    assert {"poor_photo", "not_a_leaf", "unlike_training", "unknown_leaf", "unsure"} == REASONS
    seen = set()
    for entry in photo_guide.ENTRIES:
        assert entry.photo and entry.answer
        if entry.good:
            assert entry.caption.startswith("✓") and "diagnosed" in entry.caption
        else:
            assert entry.reason in REASONS and not entry.caption.startswith("✓")
            seen.add(entry.reason)
    assert seen == REASONS  # the guide shows every way leafdoc can say "not sure"
    assert sum(e.good for e in photo_guide.ENTRIES) == 1


CODE = re.compile("|".join(sorted(REASONS)))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_caption_or_answer_shows_a_reason_code_in_any_language(lang):
    """The captions read "✗ not a leaf: not sure (not_a_leaf)": a code is for the API's clients, not a grower (the
    answers themselves say it in words), on the web page and in the desktop app alike."""
    from leafdoc.ui.diagnose_tab import guide_words

    for entry in photo_guide.ENTRIES:
        for words in (entry.caption, entry.photo, entry.answer):
            said = gettext(lang, words)
            assert not CODE.search(said), f"{lang}: {said!r}"
            assert lang == "en" or said != words, f"no {lang} translation of {words!r}"
    shown = [w for w in guide_words(lang) if isinstance(w, str)]  # what the web page's guide shows
    assert len(shown) == len(photo_guide.ENTRIES) + 2 and not CODE.search("\n".join(shown)), shown


def test_the_guide_imports_neither_gradio_nor_qt():
    code = "import sys, leafdoc.words.photo_guide; print('gradio' in sys.modules, 'PySide6' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["False", "False"]
