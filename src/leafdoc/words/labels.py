"""A model's label in words, the one way the web page, its history and the desktop app name it."""

from __future__ import annotations

from leafdoc.core.i18n import gettext, label_words


def pretty_label(label: str | None) -> str:
    """`Corn_(maize)___Common_rust_` -> `Corn (maize) — Common rust` (PlantVillage's plant___condition); no label,
    no words."""
    return label_words(label or "")


def crop_name(crop: str, lang: str = "en") -> str:
    """A crop as the API names it (`bell pepper`) in `lang`, with a capital, as the crop menus show it (the web page's
    and the desktop app's); the crops' names are in the answers catalog."""
    name = gettext(lang, crop)
    return name[:1].upper() + name[1:]


def names_crop(label: str) -> bool:
    """Whether `label` names its crop (`Tomato___Late_blight`, PlantVillage's crop___condition): a lab's class
    folder named `late blight` or `healthy` names none, so it is never listed as a crop nor counted in one (the
    offline page's app.js `namesCrop`)."""
    return "___" in label


def is_healthy(label: str | None) -> bool:
    """Whether `label` is a healthy leaf (`Tomato___healthy`, a lab's `healthy` folder): the page's colour for a
    sure answer, its headline, and "not sure what this is" rather than "which disease" (the offline page's words.js
    `refusal`)."""
    return "healthy" in (label or "").lower()


def answer_name(answer: dict, label: str | None) -> str:
    """A label in the answer's words: its `name` among the answer's top candidates (the API translates it into the
    answer's language), else the label's own words."""
    for item in answer.get("top_k") or []:
        if item.get("label") == label and item.get("name"):
            return item["name"]
    return pretty_label(label)
