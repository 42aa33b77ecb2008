"""The history of diagnoses a visitor's browser keeps (localStorage, never the server): where it is kept, how many
entries, and an answer in a few words. One store and one wording for the web page (ui/history.py, which shows it and
exports it as CSV) and the offline page (offline/texts.py: a diagnosis made with no connection is added to the same
store, so the web page's history shows it too)."""

from __future__ import annotations

from leafdoc.core.i18n import N_, SOURCE, gettext

KEY = "leafdoc.history.v1"  # the localStorage key (both pages are on the server's origin: one store)
KEEP = 200  # entries kept: about 4 KB each, well inside a browser's 5 MB for a site
THUMB_PX = 96
COLUMNS = ("date", "photo", "answer", "label", "caution")  # an entry's fields, and the CSV's columns

NOT_SURE = N_("Not sure")
NOT_SURE_BETWEEN = N_("Not sure: {names}")
SURE = N_("{label} ({percent} sure)")


def not_sure_between(lang: str) -> str:
    """ "Not sure: {names}" in `lang`; in English "Not sure: it could be {names}"."""
    return "Not sure: it could be {names}" if lang == SOURCE else gettext(lang, NOT_SURE_BETWEEN)


def templates(lang: str) -> dict[str, str]:
    """The few words of an entry, as templates the offline page fills in."""
    return {
        "not_sure": gettext(lang, NOT_SURE),
        "not_sure_between": not_sure_between(lang),
        "sure": gettext(lang, SURE),
    }
