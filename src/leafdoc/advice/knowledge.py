"""The knowledge base: every knowledge file read and checked once, then looked up by label.

The shipped files live in `knowledge/` beside this module (package data, so an installed wheel has them).
A folder named by LEAFDOC_ADVICE_DIR adds entries for new labels, or replaces shipped ones label by label.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from pydantic import ValidationError

from leafdoc.advice.schema import Entry
from leafdoc.core.errors import LeafdocError

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

    def reference(self, label: str) -> dict:
        """What an answer carries for its label: the summary, the full entry's route and its sources; or,
        for a label with no entry, a plain note that there is none."""
        entry = self.entries.get(label)
        if entry is None:
            return {
                "label": label,
                "available": False,
                "title": None,
                "summary": None,
                "route": None,
                "sources": [],
                "message": f"leafdoc has no advice for {label!r} yet: ask a local extension service or agronomist.",
            }
        return {
            "label": label,
            "available": True,
            "title": entry.title,
            "summary": entry.summary,
            "route": advice_route(label),
            "sources": [s.model_dump(mode="json", exclude_none=True) for s in entry.sources],
            "message": None,
        }


@lru_cache(maxsize=4)
def shipped_knowledge(extra: Path | None = None) -> Knowledge:
    """The shipped entries, and those of `extra` (LEAFDOC_ADVICE_DIR) over them; read once per process."""
    return Knowledge.load(SHIPPED, extra)
