"""A knowledge entry (as the API serves it: a dict) in Markdown, for the CLI, the web page and the desktop app.

`summary_markdown` is what goes right under a diagnosis; `details_markdown` is the rest, which the page and the
app fold away behind one click. Text is HTML-escaped: entries can come from a folder of the deployer's own.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from leafdoc.advice.knowledge import shipped_knowledge
from leafdoc.core.i18n import N_, Label, gettext, render

KINDS = {
    "fungus": N_("a fungus"),
    "oomycete": N_("an oomycete"),
    "bacterium": N_("a bacterium"),
    "virus": N_("a virus"),
    "mite": N_("a mite"),
    "insect": N_("an insect"),
    "fungal complex": N_("a complex of fungi"),
}


def _e(text: object) -> str:
    return html.escape(" ".join(str(text).split()), quote=False)


def _bullets(items: Iterable[str]) -> list[str]:
    return [f"- {_e(i)}" for i in items]


def label_name(label: str, lang: str) -> str:
    """A label in words, as an answer names it: the crop and condition of the shipped knowledge file, in `lang` as
    the advice catalog translates them (the label's own words if it has no entry). English too: the label's own
    words are PlantVillage's ("Orange — Haunglongbing (Citrus greening)", "Corn (maize) — Northern Leaf Blight"), where
    the answer, the entry's title and its measured look-alike line say "Orange (citrus) — Huanglongbing (citrus
    greening)" and "Corn (maize) — Northern corn leaf blight"."""
    return render(Label(label), lang, shipped_knowledge().resolve)


def english_label(label: str) -> str:
    """label_name in English: how the model card's class list names a label (the card's other words are English)."""
    return label_name(label, "en")


def source_line(s: dict) -> str:
    parts = [s.get("author"), f"*{_e(s['title'])}*", s.get("publisher"), s.get("year")]
    text = ", ".join(_e(p) if not str(p).startswith("*") else str(p) for p in parts if p)
    return f"{text}. {_e(s['url'])}" if s.get("url") else f"{text}."


CAUSE = N_("Cause:")
LOOKS = N_("What it looks like")
CONFUSED = N_("Often confused with")
SPREADS = N_("How it spreads")
KEEP_DOING = N_("Keep doing")
WHAT_TO_DO = N_("What to do")
CULTURAL_FIRST = N_("(cultural practices first)")
BIOLOGICAL = N_("Biological options")
CHEMICAL = N_("Chemical options, by active-ingredient group")
WHEN_TO_CALL = N_("When to call an extension service or agronomist")
SOURCES = N_("Sources")
WHAT_TO_DO_NOW = N_("What to do:")
NO_ADVICE_LABEL = N_("No advice for this label.")
UNTRANSLATED = N_("Not yet translated, in English: {fields}.")


def details_markdown(entry: dict, lang: str | None = None) -> str:
    """Symptoms, look-alikes, spread, what to do, when to call, sources: the full entry after its summary, its
    headings in `lang` (default: the entry's `language`), its texts as the API gave them."""
    lang = lang or entry.get("language") or "en"

    def _(text: str) -> str:
        return gettext(lang, text)

    out: list[str] = []
    pathogen = entry.get("pathogen")
    if pathogen:
        kind = _(KINDS[pathogen["kind"]]) if pathogen["kind"] in KINDS else f"a {pathogen['kind']}"
        out.append(f"**{_(CAUSE)}** *{_e(pathogen['name'])}* ({_e(kind)})")
    out += [f"**{_(LOOKS)}**", _e(entry["symptoms"])]
    if entry.get("confused_with"):
        out.append(f"**{_(CONFUSED)}**")
        lines = []
        for c in entry["confused_with"]:
            line = f"- **{_e(label_name(c['label'], lang))}**: {_e(c['how_to_tell'])}"
            if c.get("measured"):
                line += f" *({_e(c['measured'])})*"
            lines.append(line)
        out.append("\n".join(lines))
    if entry.get("spread"):
        out += [f"**{_(SPREADS)}**", _e(entry["spread"])]
    if entry.get("keep_doing"):
        out += [f"**{_(KEEP_DOING)}**", "\n".join(_bullets(entry["keep_doing"]))]
    actions = entry.get("actions")
    if actions:
        out.append(f"**{_(WHAT_TO_DO)}** {_(CULTURAL_FIRST)}")
        out.append("\n".join(_bullets(actions["cultural"])))
        if actions.get("biological"):
            out += [f"*{_(BIOLOGICAL)}*", "\n".join(_bullets(actions["biological"]))]
        if actions.get("chemical"):
            out += [f"*{_(CHEMICAL)}*", "\n".join(_bullets(actions["chemical"]))]
    out += [f"**{_(WHEN_TO_CALL)}**", _e(entry["when_to_call"])]
    out += [f"**{_(SOURCES)}**", "\n".join(f"- {source_line(s)}" for s in entry["sources"])]
    if entry.get("untranslated"):
        out.append(f"*{_e(_(UNTRANSLATED).format(fields=', '.join(entry['untranslated'])))}*")
    return "\n\n".join(out)


def summary_markdown(advice: dict | None, lang: str | None = None) -> str:
    """An answer's `advice` (summary, route, sources) in a few lines; empty for an abstention."""
    if not advice:
        return ""
    lang = lang or advice.get("language") or "en"
    if not advice.get("available"):
        return f"*{_e(advice.get('message') or gettext(lang, NO_ADVICE_LABEL))}*"
    return f"**{gettext(lang, WHAT_TO_DO_NOW)}** {_e(advice['summary'])}"
