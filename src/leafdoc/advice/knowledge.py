"""The knowledge base: every knowledge file read and checked once, then looked up by label.

The shipped files live in `knowledge/` beside this module (package data, so an installed wheel has them).
A folder named by LEAFDOC_ADVICE_DIR adds entries for new labels, or replaces shipped ones label by label.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from pydantic import ValidationError

from leafdoc.advice.schema import Entry
from leafdoc.core.errors import LeafdocError
from leafdoc.core.i18n import N_, SOURCE, Advice, Msg, Rendering, advice_text, msg, render

SHIPPED = Path(__file__).parent / "knowledge"
ROUTE = "/v1/advice/"


class KnowledgeError(LeafdocError):
    """A knowledge file that cannot be read or does not follow the schema (a deployment problem)."""

    status = 500
    code = "bad_knowledge"


def advice_route(label: str) -> str:
    """The API route of a label's full entry (labels hold spaces, commas and brackets: quoted)."""
    return ROUTE + quote(label, safe="")


def _field(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "(the whole file)"


def read_entry(path: Path) -> Entry:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise KnowledgeError(
            f"{path}: cannot be read as TOML ({exc}).", hint="Fix the file's syntax (see knowledge/README.md)."
        ) from None
    try:
        return Entry.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_field(e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False))
        raise KnowledgeError(
            f"{path}: {problems}.", hint="Fix these fields (the schema is leafdoc/advice/schema.py)."
        ) from None


@dataclass(frozen=True)
class Knowledge:
    entries: dict[str, Entry]
    files: dict[str, Path]  # label -> the file it came from

    @classmethod
    def load(cls, *folders: Path | None) -> Knowledge:
        """Read every *.toml of each folder in turn; a later folder's entry replaces an earlier one's."""
        entries: dict[str, Entry] = {}
        files: dict[str, Path] = {}
        for folder in folders:
            if folder is None:
                continue
            folder = Path(folder)
            if not folder.is_dir():
                raise KnowledgeError(
                    f"{folder}: no such folder of knowledge files.", hint="Set LEAFDOC_ADVICE_DIR to a folder."
                )
            seen: dict[str, Path] = {}
            for path in sorted(folder.glob("*.toml")):
                entry = read_entry(path)
                if entry.label in seen:
                    raise KnowledgeError(
                        f"{path}: label {entry.label!r} is already the label of {seen[entry.label].name}.",
                        hint="Keep one file per label.",
                    )
                seen[entry.label] = path
                entries[entry.label] = entry
                files[entry.label] = path
        for label, entry in entries.items():
            for c in entry.confused_with:
                if c.label not in entries:
                    raise KnowledgeError(
                        f"{files[label]}: confused_with names {c.label!r}, which has no knowledge file.",
                        hint="Use the exact label of an existing entry, or add an entry for it.",
                    )
        return cls(entries, files)

    def get(self, label: str) -> Entry | None:
        return self.entries.get(label)

    def reference(self, label: str, lang: str = SOURCE) -> dict:
        """What an answer carries for its label: the title, the summary, the full entry's route and its sources, in
        `lang` (`translation`: "unreviewed" when a translated text of it is not yet reviewed, "reviewed", or None in
        English); or, for a label with no entry, a plain note that there is none."""
        entry = self.entries.get(label)
        if entry is None:
            return {
                "label": label,
                "available": False,
                "title": None,
                "summary": None,
                "route": None,
                "sources": [],
                "message": render(msg(NO_ADVICE, label=repr(label)), lang),
                "language": lang,
                "translation": None,
            }
        say = Rendering(lang)
        title = say(title_words(entry))
        summary = say(Advice(label, "summary", entry.summary))
        return {
            "label": label,
            "available": True,
            "title": title,
            "summary": summary,
            "route": advice_route(label),
            "sources": [s.model_dump(mode="json", exclude_none=True) for s in entry.sources],
            "message": None,
            "language": lang,
            "translation": None if lang == SOURCE else ("unreviewed" if say.unreviewed else "reviewed"),
        }

    def resolve(self, label: str, part: str) -> Msg | Advice | None:
        """A label in the knowledge base's words (i18n.Label): its title or its condition; None without an entry."""
        entry = self.entries.get(label)
        if entry is None:
            return None
        return title_words(entry) if part == "title" else Advice(label, "condition", entry.condition)


def advice_texts(entry: Entry) -> list[tuple[str, str]]:
    """(field, English text) of every text of an entry that is translated in the `advice` catalog, the field being
    the catalog message's context after the label: what an answer carries (crop, condition, summary, how to tell
    each look-alike apart, urgent) and the rest of the full entry (symptoms, spread, each action, each thing to keep
    doing, when to call, what the starter model measured against each look-alike, the cause's name)."""
    texts = [("crop", entry.crop), ("condition", entry.condition), ("summary", entry.summary)]
    texts += [(f"how_to_tell {c.label}", c.how_to_tell) for c in entry.confused_with]
    texts += [("urgent", entry.urgent)] if entry.urgent else []
    texts += [("symptoms", entry.symptoms)]
    texts += [("spread", entry.spread)] if entry.spread else []
    if entry.actions:
        for kind in ("cultural", "biological", "chemical"):
            texts += [(f"actions.{kind}", a) for a in getattr(entry.actions, kind)]
    texts += [("keep_doing", k) for k in entry.keep_doing]
    texts += [("when_to_call", entry.when_to_call)]
    texts += [(f"measured {c.label}", c.measured) for c in entry.confused_with if c.measured]
    # the cause's name: Latin, but with words around it ("and", "a complex of...", "genus")
    texts += [("pathogen", entry.pathogen.name)] if entry.pathogen else []
    return texts


def translated_entry(entry: Entry, lang: str) -> dict:
    """The entry as GET /v1/advice/{label}?lang= gives it, every text of `advice_texts` in `lang`; a field with a
    text the catalog lacks stays in English and is named in `untranslated` (symptoms, spread, actions, keep_doing,
    when_to_call, confused_with.measured). `translation` as in `reference`."""
    data = entry.model_dump(mode="json", exclude_none=True)
    say = Rendering(lang)
    label = entry.label
    english: set[str] = set()

    def tr(field: str, text: str, shown: str | None = None) -> str:
        if lang != SOURCE and not advice_text(lang, label, field, text).translated:
            english.add(shown or field)
        return say(Advice(label, field, text))

    data["crop"] = tr("crop", entry.crop)
    data["condition"] = tr("condition", entry.condition)
    data.pop("title", None)  # computed from crop and condition, as every catalog's "{crop} — {condition}" says it
    data["summary"] = tr("summary", entry.summary)
    data["symptoms"] = tr("symptoms", entry.symptoms)
    if entry.spread:
        data["spread"] = tr("spread", entry.spread)
    for c in data.get("confused_with", []):
        c["how_to_tell"] = tr(f"how_to_tell {c['label']}", c["how_to_tell"], "confused_with.how_to_tell")
        if c.get("measured"):
            c["measured"] = tr(f"measured {c['label']}", c["measured"], "confused_with.measured")
    if entry.urgent:
        data["urgent"] = tr("urgent", entry.urgent)
    if entry.actions:
        for kind in ("cultural", "biological", "chemical"):
            data["actions"][kind] = [tr(f"actions.{kind}", a, "actions") for a in getattr(entry.actions, kind)]
    if entry.keep_doing:
        data["keep_doing"] = [tr("keep_doing", k) for k in entry.keep_doing]
    data["when_to_call"] = tr("when_to_call", entry.when_to_call)
    if entry.pathogen:
        data["pathogen"]["name"] = tr("pathogen", entry.pathogen.name)
    data["language"] = lang
    data["translation"] = None if lang == SOURCE else ("unreviewed" if say.unreviewed else "reviewed")
    order = ("crop", "condition", "summary", "symptoms", "confused_with.how_to_tell", "spread", "actions")
    order += ("keep_doing", "when_to_call", "urgent", "confused_with.measured", "pathogen")
    data["untranslated"] = [f for f in order if f in english]
    return data


NO_ADVICE = N_("leafdoc has no advice for {label} yet: ask a local extension service or agronomist.")
TITLE = N_("{crop} — {condition}")


def title_words(entry: Entry) -> Msg:
    return msg(
        TITLE, crop=Advice(entry.label, "crop", entry.crop), condition=Advice(entry.label, "condition", entry.condition)
    )


def label_resolver(knowledge: Knowledge) -> Callable[[str, str], Msg | Advice | None]:
    return knowledge.resolve


@lru_cache(maxsize=4)
def shipped_knowledge(extra: Path | None = None) -> Knowledge:
    """The shipped entries, and those of `extra` (LEAFDOC_ADVICE_DIR) over them; read once per process."""
    return Knowledge.load(SHIPPED, extra)
