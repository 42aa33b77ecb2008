"""The answers' and the advice's message catalogs (leafdoc/locales, leafdoc/core/i18n.py): every message the code marks
with N_ and every knowledge text an answer carries has a translation in Spanish, French and Hindi, with the same
placeholders, not left in English; and the catalogs are what the answers read."""

from __future__ import annotations

import re

import pytest

from leafdoc.advice import shipped_knowledge
from leafdoc.cli.i18n_catalogs import TEMPLATES, answers_template, read
from leafdoc.core.i18n import LANGUAGES, SOURCE, UNREVIEWED_FLAG, accepted, catalog, negotiate, placeholders

OTHERS = [lang for lang in LANGUAGES if lang != SOURCE]
# Messages that may read the same in a language: templates of placeholders only, and words French or Spanish share.
SAME_OK = {"{crop} — {condition}", "{names}; {last}", "Sources", "✗ No", "Photo"}


def _template(domain: str):
    return TEMPLATES[domain]()


@pytest.mark.parametrize("domain", sorted(TEMPLATES))
@pytest.mark.parametrize("lang", OTHERS)
def test_every_message_has_a_translation_with_the_same_placeholders(lang, domain):
    cat = read(lang, domain)
    missing, fuzzy, wrong, english = [], [], [], []
    for m in _template(domain):
        if not m.id:
            continue
        found = cat.get(m.id, context=m.context)
        where = f"{m.context or ''} {m.id[:70]!r}".strip()
        if found is None or not (found.string or "").strip():
            missing.append(where)
            continue
        if found.fuzzy:
            fuzzy.append(where)
        if placeholders(found.string) != placeholders(m.id):
            wrong.append(f"{where}: {sorted(placeholders(found.string))} for {sorted(placeholders(m.id))}")
        # a cause's Latin name is the same in every language (only the words around some are translated)
        latin = (m.context or "").endswith(" pathogen")
        if found.string == m.id and m.id not in SAME_OK and not latin:
            english.append(where)
    assert not missing, (
        f"locales/{lang}/LC_MESSAGES/{domain}.po lacks {len(missing)} (run `python -m leafdoc.cli.i18n_catalogs`, then "
        f"write each one's msgstr; docs/phone.md): {missing[:10]}"
    )
    assert not fuzzy, f"{lang} {domain}: fuzzy (not used) {fuzzy[:10]}"
    assert not wrong, f"{lang} {domain}: placeholders differ {wrong[:10]}"
    assert not english, f"{lang} {domain}: still in English {english[:10]}"


@pytest.mark.parametrize("domain", sorted(TEMPLATES))
@pytest.mark.parametrize("lang", OTHERS)
def test_a_translation_keeps_every_number_of_its_english(lang, domain):
    """Doses, intervals, temperatures, FRAC codes and counts: the same numbers as the English, none lost or changed."""
    changed = [
        f"{m.context or ''} {m.id[:60]!r}"
        for m in read(lang, domain)
        if m.id and m.string and sorted(re.findall(r"\d+", m.id)) != sorted(re.findall(r"\d+", m.string))
    ]
    assert not changed, f"{lang} {domain}: numbers differ from the English in {changed[:10]}"


@pytest.mark.parametrize("lang", OTHERS)
def test_every_shipped_entry_is_served_whole_in_each_language(lang):
    """GET /v1/advice/{label}?lang= of every shipped entry: no field left in English, every text flagged unreviewed."""
    from leafdoc.advice.knowledge import translated_entry

    for label, entry in shipped_knowledge().entries.items():
        served = translated_entry(entry, lang)
        assert served["untranslated"] == [], f"{label} in {lang}, untranslated: {served['untranslated']} (advice.po)"
        assert served["translation"] == "unreviewed" and served["symptoms"] != " ".join(entry.symptoms.split())


@pytest.mark.parametrize("lang", OTHERS)
def test_every_advice_translation_is_marked_unreviewed_until_someone_reviews_it(lang):
    # Nobody who knows plant pathology has read these yet: each stays flagged until one does (docs/phone.md).
    cat = read(lang, "advice")
    unflagged = [m.context for m in cat if m.id and UNREVIEWED_FLAG not in m.flags]
    assert not unflagged, f"{lang}: advice marked reviewed: {unflagged[:5]}"
    assert all(not t.reviewed for t in catalog(lang, "advice").values())


def test_the_template_holds_the_code_messages_an_answer_says():
    ids = {m.id for m in answers_template() if m.id}
    # a refusal, a photo problem, the urgent look-alike warning and a crop's name: extracted from the code, not listed
    assert "Not sure which disease this is. {could_be} {photo_advice}" in ids
    assert "the photo is blurred: hold the camera still and focus on the leaf" in ids
    assert any(i.startswith("Check that it is not {other}") for i in ids)
    assert {"tomato", "bell pepper", "corn"} <= ids


def test_a_message_left_untranslated_fails_the_catalog_test(tmp_path, monkeypatch):
    """The test above fails when a translation is removed: the check reads the catalog, not a copy of it."""
    from babel.messages.pofile import write_po

    from leafdoc.cli import i18n_catalogs

    cat = read("hi", "answers")
    cat["Not usable: {problems}."].string = ""
    cat["It could be {names}."].string = "यह {nams} हो सकता है।"
    folder = tmp_path / "hi" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with (folder / "answers.po").open("wb") as f:
        write_po(f, cat)
    monkeypatch.setattr(i18n_catalogs, "LOCALES", tmp_path)
    with pytest.raises(AssertionError, match="lacks 1"):
        test_every_message_has_a_translation_with_the_same_placeholders("hi", "answers")
    cat["Not usable: {problems}."].string = "काम की नहीं: {problems}।"
    with (folder / "answers.po").open("wb") as f:
        write_po(f, cat)
    with pytest.raises(AssertionError, match="placeholders differ"):
        test_every_message_has_a_translation_with_the_same_placeholders("hi", "answers")


def test_a_full_entry_text_left_untranslated_fails_the_catalog_test(tmp_path, monkeypatch):
    """A symptom, an action, a measured line or when to call of a translated entry without its translation fails
    the test."""
    from babel.messages.pofile import write_po

    from leafdoc.cli import i18n_catalogs

    folder = tmp_path / "fr" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    for field in ("symptoms", "actions.chemical", "measured Tomato___Early_blight", "when_to_call"):
        monkeypatch.undo()
        cat = read("fr", "advice")
        m = next(m for m in cat if m.context == f"Tomato___Late_blight {field}")
        m.string = ""
        with (folder / "advice.po").open("wb") as f:
            write_po(f, cat)
        monkeypatch.setattr(i18n_catalogs, "LOCALES", tmp_path)
        with pytest.raises(AssertionError, match="lacks 1"):
            test_every_message_has_a_translation_with_the_same_placeholders("fr", "advice")


def test_the_generator_run_twice_changes_nothing_and_a_new_message_changes_its_catalogs(tmp_path, monkeypatch):
    """`python -m leafdoc.cli.i18n_catalogs` run again, even a year later, leaves every file as it was (no date, no line
    number that goes stale with the next edit: a contributor's change drags no catalog noise into its diff); a new
    message is written to the template, with that day's date, and to each language's catalog, untranslated."""
    import datetime
    import shutil
    from pathlib import Path

    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po

    from leafdoc.cli import i18n_catalogs
    from leafdoc.core.i18n import LOCALES

    locales = shutil.copytree(LOCALES, tmp_path / "locales")
    monkeypatch.setattr(i18n_catalogs, "LOCALES", locales)
    extract, found = i18n_catalogs.extract_from_dir, []

    def extract_once(*args, **kwargs):  # the code is read once for the three runs below
        found.extend([] if found else extract(*args, **kwargs))
        return iter(found)

    monkeypatch.setattr(i18n_catalogs, "extract_from_dir", extract_once)

    def files() -> dict[Path, bytes]:
        return {p.relative_to(locales): p.read_bytes() for p in sorted(locales.rglob("*.po*"))}

    i18n_catalogs.main()
    first = files()
    assert len(first) == 2 * len(LANGUAGES), sorted(first)
    later = datetime.datetime(2031, 5, 6, 7, 8, tzinfo=datetime.UTC)

    class Later(Catalog):  # the templates as the generator makes them on a later day
        def __init__(self, *args, **kwargs):
            super().__init__(*args, creation_date=later, **kwargs)

    monkeypatch.setattr(i18n_catalogs, "Catalog", Later)
    i18n_catalogs.main()
    rewritten = [str(p) for p, data in files().items() if data != first[p]]
    assert not rewritten, f"a second run rewrote {rewritten}"
    assert not [p for p, data in first.items() if re.search(rb"^#: .*:\d+$", data, re.M)], "line numbers written"

    real = i18n_catalogs.answers_template

    def with_a_new_message():
        cat = real()
        cat.add("A new message about {label}", locations=[("new.py", 7)], flags=["python-brace-format"])
        return cat

    monkeypatch.setitem(i18n_catalogs.TEMPLATES, "answers", with_a_new_message)
    i18n_catalogs.main()
    changed = {str(p) for p, data in files().items() if data != first[p]}
    assert changed == {"answers.pot", *(f"{lang}/LC_MESSAGES/answers.po" for lang in OTHERS)}, changed
    with (locales / "answers.pot").open("rb") as f:
        assert read_po(f).creation_date == later
    assert b"#: new.py\n" in (locales / "answers.pot").read_bytes()
    for lang in OTHERS:
        assert read(lang, "answers").get("A new message about {label}").string == ""


def test_the_language_of_a_request():
    assert negotiate("es", "hi") == "es"  # ?lang= wins
    assert negotiate("es-MX") == "es" and negotiate("FR_ca") == "fr"
    assert negotiate(None, "hi-IN,hi;q=0.9,en-US;q=0.8,en;q=0.7") == "hi"
    assert negotiate(None, "de-DE, fr;q=0.4, es;q=0.6") == "es"  # the best leafdoc speaks, by q
    assert negotiate(None, "de, hi;q=0") == "en"  # q=0: not wanted
    assert negotiate(None, None) == negotiate(None, "") == negotiate(None, "*") == "en"
    assert accepted("garbage<script>, es") == ["es"]
    from leafdoc.core.errors import UnknownLanguage

    with pytest.raises(UnknownLanguage, match="en, es, fr, hi"):
        negotiate("de")
