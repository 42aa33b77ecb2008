"""The page's own words in English, Spanish, French and Hindi, through Gradio's i18n: one message catalog per
language (ui/locales/<lang>.json, the JSON catalogs Gradio's front end reads), and the browser picks the language
from its own (navigator.language, which follows the language the visitor set, and so Accept-Language).

These catalogs hold the Diagnose tab's fixed words (labels, buttons, tips). The words the page writes itself (the
verdict, the advice, the notes) and the API's answers come from leafdoc's gettext catalogs (leafdoc/core/i18n.py), in
the page's language (`page_language`): the `?lang=` of the page's address (the language links at its top), else
the browser's Accept-Language. ui/language.py has the links and the script that makes Gradio take `?lang=` too.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import gradio as gr

LOCALES = Path(__file__).parent / "locales"
LANGUAGES = ("en", "es", "fr", "hi")  # the same as leafdoc.core.i18n.LANGUAGES (tests/unit/test_ui_i18n.py)


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


def said(key: str, lang: str) -> str:
    """A word of the page as plain text in `lang` (English where its catalog lacks it): for what the page sends
    back in an event's answer, which Gradio's API route writes as JSON (a `t()` there cut the answer off)."""
    return catalogs().get(lang, {}).get(key) or catalogs()["en"][key]
