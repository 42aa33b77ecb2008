"""The answers' and the advice's words in English, Spanish, French and Hindi: gettext message catalogs read with
Babel, one folder per language (locales/<lang>/LC_MESSAGES/), two domains:

- `answers`: the words leafdoc's code says (why it refused, the photo's problems, the look-alike warnings, the crop
  notes), marked in the code with `N_` (English, with `{named}` placeholders) and extracted by Babel;
- `advice`: the words of the knowledge files (crop and condition, summary, how to tell look-alikes apart, why an
  urgent disease cannot wait, and the full entry's symptoms, spread, actions, things to keep doing, when to call and
  what the starter model measured), with the label and the field as the message's context.

An advice message keeps the flag `unreviewed` until someone who knows plant pathology has read it in that language;
an answer that carries one says so (`Answer.unreviewed`, "translated, not yet reviewed"). English is the source and
needs no catalog. `python -m leafdoc.cli.i18n_catalogs` writes the template and adds new messages to each catalog;
tests/unit/test_i18n_catalogs.py fails when any message lacks a translation or its placeholders.

The language of a request: `?lang=` if given (an unknown one is refused), else the best of Accept-Language, else
English (`negotiate`).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po

from leafdoc.core.errors import UnknownLanguage

LOCALES = Path(__file__).resolve().parents[1] / "locales"  # src/leafdoc/locales
LANGUAGES = ("en", "es", "fr", "hi")
SOURCE = "en"
NAMES = {"en": "English", "es": "Español", "fr": "Français", "hi": "हिन्दी"}
DOMAINS = ("answers", "advice")
UNREVIEWED_FLAG = "unreviewed"


def N_(text: str) -> str:  # noqa: N802 (gettext's name for "mark for translation, translate later")
    """Marks `text` as a message of the `answers` catalog (Babel extracts every N_ call); returns it unchanged."""
    return text


UNREVIEWED_NOTE = N_("translated, not yet reviewed")


@dataclass(frozen=True)
class Translation:
    text: str
    reviewed: bool
    translated: bool = True  # False: the catalog has none, `text` is the English


@lru_cache(maxsize=16)
def catalog(lang: str, domain: str) -> dict[tuple[str | None, str], Translation]:
    """{(context, English text): its translation} from locales/<lang>/LC_MESSAGES/<domain>.po; empty for English.
    Fuzzy and empty translations are left out (the English is shown, and the catalog test fails)."""
    path = LOCALES / lang / "LC_MESSAGES" / f"{domain}.po"
    if lang == SOURCE or not path.is_file():
        return {}
    with path.open("rb") as f:
        po = read_po(f, locale=lang, domain=domain)
    return {
        (m.context, m.id): Translation(m.string, UNREVIEWED_FLAG not in m.flags)
        for m in po
        if m.id and isinstance(m.string, str) and m.string and not m.fuzzy
    }


def lookup(lang: str, text: str, domain: str = "answers", context: str | None = None) -> Translation:
    """`text` in `lang`; the English if untranslated. The advice catalog holds its texts with their whitespace
    folded (the knowledge files wrap their lines), the answers catalog the code's own strings."""
    key = " ".join(text.split()) if domain == "advice" else text
    if lang == SOURCE:
        return Translation(key, True)
    return catalog(lang, domain).get((context, key)) or Translation(key, True, translated=False)


def gettext(lang: str, text: str) -> str:
    return lookup(lang, text).text if lang != SOURCE else text


def placeholders(text: str) -> set[str]:
    """The `{named}` fields of a message (what a translation must keep)."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


# ---- words with their parameters, rendered in any language -------------------------------------------------------


@dataclass(frozen=True)
class Msg:
    """A message of the `answers` catalog and its parameters: str and int stay as they are, a Msg is rendered in the
    same language, a tuple is a list said as a sentence ("A, B or C"; `joiner` says which word joins its last two)."""

    text: str
    params: tuple[tuple[str, object], ...] = ()
    joiner: str = ""

    def __str__(self) -> str:
        return render(self, SOURCE)


def msg(text: str, **params: object) -> Msg:
    return Msg(text, tuple(params.items()))


OR = N_("{names} or {last}")
AND = N_("{names} and {last}")


def one_of(items: list[object] | tuple[object, ...], joiner: str = OR) -> Msg:
    """ "A, B or C" (joiner OR) or "A, B and C" (AND), each item rendered in the language."""
    return Msg("", (("items", tuple(items)),), joiner)


@dataclass(frozen=True)
class Advice:
    """A text of a knowledge entry: its label and field are the catalog message's context."""

    label: str
    field: str
    text: str

    @property
    def context(self) -> str:
        return f"{self.label} {self.field}"


@dataclass(frozen=True)
class Label:
    """A model label said in words: `part` "title" (crop and condition) or "condition". Rendered through the
    `resolve` given to `render` (the knowledge base's words); without one, the label's own words."""

    label: str
    part: str = "title"


def label_words(label: str, part: str = "title") -> str:
    """`Tomato___Early_blight` -> `Tomato — Early blight` (title) or `Early blight` (condition)."""
    parts = [" ".join(p.replace("_", " ").split()) for p in label.split("___")]
    parts = [p for p in parts if p]
    if part == "condition":
        return parts[-1] if parts else label
    return " — ".join(parts) if parts else label


Resolve = Callable[[str, str], "Msg | Advice | str | None"]


class Rendering:
    """Renders messages in one language; `unreviewed` collects the advice messages it used whose translation is
    not yet reviewed (their contexts)."""

    def __init__(self, lang: str, resolve: Resolve | None = None):
        self.lang = lang
        self.resolve = resolve
        self.unreviewed: set[str] = set()

    def __call__(self, m: object) -> str:
        if isinstance(m, Msg):
            if m.joiner:
                items = [self(v) for v in dict(m.params)["items"]]
                if len(items) <= 1:
                    return "".join(items)
                return gettext(self.lang, m.joiner).format(names=", ".join(items[:-1]), last=items[-1])
            return gettext(self.lang, m.text).format(**{k: self(v) for k, v in m.params})
        if isinstance(m, Advice):
            t = advice_text(self.lang, m.label, m.field, m.text)
            if not t.reviewed:
                self.unreviewed.add(m.context)
            return t.text
        if isinstance(m, Label):
            found = self.resolve(m.label, m.part) if self.resolve else None
            return label_words(m.label, m.part) if found is None else self(found)
        return str(m)


def render(m: object, lang: str, resolve: Resolve | None = None) -> str:
    return Rendering(lang, resolve)(m)


def advice_text(lang: str, label: str, field: str, text: str) -> Translation:
    """A knowledge entry's text in `lang` (the `advice` catalog); the English, whitespace folded, if untranslated."""
    if lang == SOURCE:
        return Translation(" ".join(text.split()), True)
    return lookup(lang, text, "advice", f"{label} {field}")


# ---- which language a request wants ----------------------------------------------------------------------------

_TAG = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")


def accepted(header: str | None) -> list[str]:
    """Accept-Language's languages (their primary subtag, lower case), most wanted first; q=0 left out."""
    ranked = []
    for i, part in enumerate((header or "").split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or (tag != "*" and not _TAG.match(tag)):
            continue
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k.strip() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if q > 0:
            ranked.append((-q, i, tag.split("-")[0].lower()))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate(lang: str | None = None, accept_language: str | None = None) -> str:
    """`lang` if given (one of LANGUAGES, or a tag of one such as `es-MX`; UnknownLanguage otherwise), else the first
    of Accept-Language's languages leafdoc speaks, else English."""
    if lang is not None and lang.strip():
        wanted = lang.strip().split("-")[0].split("_")[0].lower()
        if wanted in LANGUAGES:
            return wanted
        shown = lang.strip()[:20]
        raise UnknownLanguage(
            f"language {shown!r} is not one leafdoc answers in; it answers in {', '.join(LANGUAGES)}.",
            hint="Ask for one of those (the API's `lang`, `leafdoc predict --lang`), or leave it out: the API then "
            "answers in the first of Accept-Language's languages it speaks, the CLI in English.",
        )
    for tag in accepted(accept_language):
        if tag in LANGUAGES:
            return tag
    return SOURCE
