"""The message catalogs' templates and their upkeep: `python -m leafdoc.cli.i18n_catalogs` writes locales/<domain>.pot
from the code (every `N_(...)`, extracted by Babel) and the shipped knowledge files, and adds each new message to
every language's catalog, untranslated (and, in `advice`, flagged `unreviewed`), dropping messages no longer used.
tests/unit/test_i18n_catalogs.py then names each message still to translate. Adding a language: docs/phone.md.

Run on a clean tree it changes nothing: a message's location is its file without a line number (a line number went
stale with every edit above it), and a file whose messages are unchanged is not written again, so its header keeps
its dates. A file whose messages changed gets today's POT-Creation-Date.
"""

from __future__ import annotations

import sys
from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from leafdoc.advice import shipped_knowledge
from leafdoc.advice.knowledge import advice_texts
from leafdoc.core.atomic import atomic_write_bytes
from leafdoc.core.i18n import LANGUAGES, LOCALES, SOURCE, UNREVIEWED_FLAG
from leafdoc.inference.fieldcrops import crop_name, crop_of

PACKAGE = Path(__file__).resolve().parents[1]  # src/leafdoc


def _fold(text: str) -> str:
    return " ".join(text.split())


def answers_template() -> Catalog:
    """Every N_("...") of leafdoc's code, and the crops' names of the shipped knowledge files' labels."""
    cat = Catalog(domain="answers", project="leafdoc")
    found = extract_from_dir(PACKAGE, method_map=[("**.py", "python")], keywords={"N_": None}, comment_tags=())
    for filename, lineno, text, _comments, _context in found:
        if isinstance(text, str) and text:
            cat.add(text, locations=[(filename, lineno)], flags=["python-brace-format"])
    for label in sorted(shipped_knowledge().entries):
        cat.add(crop_name(crop_of(label)), locations=[("crop name of " + label, 0)])
    return cat


def advice_template() -> Catalog:
    """Every text of the shipped knowledge files (`advice_texts`: what an answer carries and the rest of the full
    entry), each with `<label> <field>` as its context."""
    cat = Catalog(domain="advice", project="leafdoc")
    for label, e in sorted(shipped_knowledge().entries.items()):
        for field, text in advice_texts(e):
            cat.add(_fold(text), context=f"{label} {field}")
    return cat


TEMPLATES = {"answers": answers_template, "advice": advice_template}


def po_path(lang: str, domain: str) -> Path:
    return LOCALES / lang / "LC_MESSAGES" / f"{domain}.po"


def read(lang: str, domain: str) -> Catalog:
    with po_path(lang, domain).open("rb") as f:
        return read_po(f, locale=lang, domain=domain)


def _body(po: bytes) -> bytes:
    """A catalog file without its header (the comment and the first entry, up to the first blank line)."""
    return po.split(b"\n\n", 1)[-1]


def write(path: Path, cat: Catalog) -> bool:
    """Writes `cat` to `path` (no line numbers, no wrapping) unless the file there holds the same messages already:
    then it is left as it is, dates and all. Returns whether it wrote."""
    buf = BytesIO()
    write_po(buf, cat, width=0, include_lineno=False)
    if path.is_file() and _body(path.read_bytes()) == _body(buf.getvalue()):
        return False
    atomic_write_bytes(path, buf.getvalue())
    return True


def update(lang: str, domain: str, template: Catalog) -> int:
    """Adds `template`'s new messages to the language's catalog (untranslated) and drops the unused ones; returns
    how many messages the catalog holds without a translation."""
    path = po_path(lang, domain)
    path.parent.mkdir(parents=True, exist_ok=True)
    cat = read(lang, domain) if path.is_file() else Catalog(locale=lang, domain=domain, project="leafdoc")
    known = {(m.context, m.id) for m in cat if m.id}
    cat.update(template, no_fuzzy_matching=True)
    cat.obsolete.clear()
    for m in cat:
        if m.id and (m.context, m.id) not in known and domain == "advice":
            m.flags.add(UNREVIEWED_FLAG)
    write(path, cat)
    return sum(1 for m in cat if m.id and not m.string)


def main() -> None:
    for domain, make in TEMPLATES.items():
        template = make()
        pot = LOCALES / f"{domain}.pot"
        if not write(pot, template):  # unchanged: the catalogs keep the template's date as well
            with pot.open("rb") as f:
                template.creation_date = read_po(f).creation_date
        for lang in LANGUAGES:
            if lang != SOURCE:
                missing = update(lang, domain, template)
                print(f"{lang} {domain}: {len(template)} messages, {missing} without a translation", file=sys.stderr)


if __name__ == "__main__":
    main()
