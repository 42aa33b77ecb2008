"""A knowledge entry (as the API serves it: a dict) in Markdown, for the CLI, the web page and the desktop app.

`summary_markdown` is what goes right under a diagnosis; `details_markdown` is the rest, which the page and the
app fold away behind one click. Text is HTML-escaped: entries can come from a folder of the deployer's own.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

KINDS = {"fungal complex": "a complex of fungi"}


def _e(text: object) -> str:
    return html.escape(" ".join(str(text).split()), quote=False)


def _bullets(items: Iterable[str]) -> list[str]:
    return [f"- {_e(i)}" for i in items]


def pretty(label: str) -> str:
    return " — ".join(p.replace("_", " ").strip() for p in label.split("___") if p.strip()) or label


def source_line(s: dict) -> str:
    parts = [s.get("author"), f"*{_e(s['title'])}*", s.get("publisher"), s.get("year")]
    text = ", ".join(_e(p) if not str(p).startswith("*") else str(p) for p in parts if p)
    return f"{text}. {_e(s['url'])}" if s.get("url") else f"{text}."


def details_markdown(entry: dict) -> str:
    """Symptoms, look-alikes, spread, what to do, when to call, sources: the full entry after its summary."""
    out: list[str] = []
    pathogen = entry.get("pathogen")
    if pathogen:
        kind = KINDS.get(pathogen["kind"], f"a {pathogen['kind']}")
        out.append(f"**Cause:** *{_e(pathogen['name'])}* ({_e(kind)})")
    out += ["**What it looks like**", _e(entry["symptoms"])]
    if entry.get("confused_with"):
        out.append("**Often confused with**")
        lines = []
        for c in entry["confused_with"]:
            line = f"- **{_e(pretty(c['label']))}**: {_e(c['how_to_tell'])}"
            if c.get("measured"):
                line += f" *({_e(c['measured'])})*"
            lines.append(line)
        out.append("\n".join(lines))
    if entry.get("spread"):
        out += ["**How it spreads**", _e(entry["spread"])]
    if entry.get("keep_doing"):
        out += ["**Keep doing**", "\n".join(_bullets(entry["keep_doing"]))]
    actions = entry.get("actions")
    if actions:
        out.append("**What to do** (cultural practices first)")
        out.append("\n".join(_bullets(actions["cultural"])))
        if actions.get("biological"):
            out += ["*Biological options*", "\n".join(_bullets(actions["biological"]))]
        if actions.get("chemical"):
            out += ["*Chemical options, by active-ingredient group*", "\n".join(_bullets(actions["chemical"]))]
    out += ["**When to call an extension service or agronomist**", _e(entry["when_to_call"])]
    out += ["**Sources**", "\n".join(f"- {source_line(s)}" for s in entry["sources"])]
    return "\n\n".join(out)


def summary_markdown(advice: dict | None) -> str:
    """An answer's `advice` (summary, route, sources) in a few lines; empty for an abstention."""
    if not advice:
        return ""
    if not advice.get("available"):
        return f"*{_e(advice.get('message') or 'No advice for this label.')}*"
    return f"**What to do:** {_e(advice['summary'])}"
