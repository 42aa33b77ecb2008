"""The page's message catalogs (ui/locales/*.json): every message the page uses has a translation in every
language, and a translation keeps the message's Markdown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from leafdoc.ui import i18n

UI = Path(i18n.__file__).parent


def used_keys() -> set[str]:
    return {k for f in UI.glob("*.py") for k in re.findall(r"\bt\(\"([a-z_]+)\"\)", f.read_text(encoding="utf-8"))}


def test_every_message_the_page_uses_is_in_the_english_catalog():
    used = used_keys()
    assert len(used) >= 10  # the Diagnose tab's words are looked up through t()
    assert used <= set(i18n.catalogs()["en"]), used - set(i18n.catalogs()["en"])


@pytest.mark.parametrize("lang", [x for x in i18n.LANGUAGES if x != "en"])
def test_every_message_has_a_translation(lang):
    english, other = i18n.catalogs()["en"], i18n.catalogs()[lang]
    missing = sorted(k for k in english if not (other.get(k) or "").strip())
    assert not missing, f"ui/locales/{lang}.json lacks {missing}"
    assert set(other) == set(english), (
        f"ui/locales/{lang}.json has messages English has not: {set(other) - set(english)}"
    )
    for key, text in english.items():
        assert text.count("**") == other[key].count("**"), f"{lang}: {key} lost its bold"
        if key not in ("no",):  # "No" is "No" in Spanish too
            assert other[key] != text, f"{lang}: {key} is still in English"


def test_a_message_missing_from_the_catalog_fails_at_build():
    with pytest.raises(KeyError, match="no_such_message"):
        i18n.t("no_such_message")
