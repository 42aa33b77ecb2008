"""The page's own words in English, Spanish, French and Hindi, through Gradio's i18n: one message catalog per
language (ui/locales/<lang>.json, the JSON catalogs Gradio's front end reads), and the browser picks the language
from its own (navigator.language, which follows the language the visitor set, and so Accept-Language).

What is translated so far: the Diagnose tab's fixed words (labels, buttons, tips). What is not yet: the answers
and the advice, which come from the API in English (docs/web-page.md says what is left).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import gradio as gr

LOCALES = Path(__file__).parent / "locales"
LANGUAGES = ("en", "es", "fr", "hi")


@lru_cache(maxsize=1)
def catalogs() -> dict[str, dict[str, str]]:
    return {lang: json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8")) for lang in LANGUAGES}


@lru_cache(maxsize=1)
def page_i18n() -> gr.I18n:
    return gr.I18n(**catalogs())


def t(key: str):
    """A word of the page, translated in the browser; a key the English catalog lacks is a bug found at build."""
    if key not in catalogs()["en"]:
        raise KeyError(f"ui/locales/en.json has no message {key!r}")
    return page_i18n()(key)
