"""A model's label in words, the one way the web page, its history and the desktop app name it."""

from __future__ import annotations

from leafdoc.core.i18n import label_words


def pretty_label(label: str | None) -> str:
    """`Corn_(maize)___Common_rust_` -> `Corn (maize) — Common rust` (PlantVillage's plant___condition); no label,
    no words."""
    return label_words(label or "")


def answer_name(answer: dict, label: str | None) -> str:
    """A label in the answer's words: its `name` among the answer's top candidates (the API translates it into the
    answer's language), else the label's own words."""
    for item in answer.get("top_k") or []:
        if item.get("label") == label and item.get("name"):
            return item["name"]
    return pretty_label(label)
