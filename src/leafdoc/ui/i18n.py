"""The page's own words in English, Spanish, French and Hindi, through Gradio's i18n: one message catalog per
language (ui/locales/<lang>.json, the JSON catalogs Gradio's front end reads), and the browser picks the language
from its own (navigator.language, which follows the language the visitor set, and so Accept-Language).

These catalogs hold the Diagnose tab's fixed words (labels, buttons, tips). The words the page writes itself (the
verdict, the advice, the notes) and the API's answers come from leafdoc's gettext catalogs (leafdoc/i18n.py), in
the page's language (`page_language`): the `?lang=` of the page's address (the language links at its top), else
the browser's Accept-Language. A head script (SWITCH_HEAD) makes Gradio's front end take that `?lang=` too.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import gradio as gr

from leafdoc.i18n import NAMES, UnknownLanguage, negotiate

LOCALES = Path(__file__).parent / "locales"
LANGUAGES = ("en", "es", "fr", "hi")  # the same as leafdoc.i18n.LANGUAGES (tests/unit/test_ui_i18n.py)


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


def page_language(request: gr.Request | None) -> str:
    """The language the visitor asked for: the page address's `?lang=` (an unknown one is ignored), else the best
    of their browser's Accept-Language, else English."""
    if request is None:
        return "en"
    params = getattr(request, "query_params", None) or {}
    headers = getattr(request, "headers", None) or {}
    try:
        return negotiate(params.get("lang"), headers.get("accept-language"))
    except UnknownLanguage:
        return negotiate(None, headers.get("accept-language"))


def switch_html() -> str:
    """Links to the page in each language (`?lang=`), each named in its own language."""
    links = " · ".join(
        f'<a href="?lang={code}" lang="{code}" hreflang="{code}">{name}</a>' for code, name in NAMES.items()
    )
    return f'<nav id="language-switch" aria-label="Language">{links}</nav>'


# Gradio's front end reads the browser's language (navigator.language) for the catalogs above: with `?lang=` in the
# address, this makes it read that one instead, before Gradio's own scripts run (head scripts run first).
SWITCH_HEAD = """
<script>
(function () {
  var lang = new URLSearchParams(window.location.search).get("lang");
  if (!lang || !/^(en|es|fr|hi)([-_][A-Za-z0-9]+)?$/.test(lang)) return;
  var code = lang.slice(0, 2);
  try {
    var own = function (value) { return { get: function () { return value; }, configurable: true }; };
    Object.defineProperty(Navigator.prototype, "language", own(code));
    Object.defineProperty(Navigator.prototype, "languages", own([code]));
  } catch (e) {}
  document.documentElement.setAttribute("lang", code);
})();
</script>
"""

SWITCH_CSS = """
#language-switch { text-align: right; font-size: 0.95em; margin: 0 0 0.3em 0; }
#language-switch a { text-decoration: none; padding: 0 0.2em; }
"""
