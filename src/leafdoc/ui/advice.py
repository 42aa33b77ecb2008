"""The advice under a diagnosis on the web page: the summary first, the full entry folded away.

Kept apart from page.py so the diagnose tab needs two lines for it. The full entry comes from the API
(GET /v1/advice/{label}, `LeafdocClient.advice_for`), like everything else the page shows.
"""

from __future__ import annotations

from leafdoc.advice.render import details_markdown, summary_markdown
from leafdoc.core.i18n import N_, gettext
from leafdoc.ui.text import LABEL, esc, unreviewed_line

DETAILS_TITLE = N_("Symptoms, look-alikes, what to do, sources")


def advice_markdown(answer: dict, entry: dict | None) -> str:
    """Markdown to put under the verdict: nothing for an abstention, a note for a label without an entry; in the
    answer's language, translated advice marked "translated, not yet reviewed" (the API's `unreviewed`)."""
    lang = answer.get("language") or "en"
    summary = summary_markdown(None if answer.get("abstained") else answer.get("advice"), lang)
    if not summary:
        return ""
    parts = ["", summary, *unreviewed_line(answer, "advice")]
    if entry:
        parts.append(
            f'<details class="advice-details"><summary>{gettext(lang, DETAILS_TITLE)}</summary>\n\n'
            + details_markdown(entry, lang)
            + f"\n\n<small>{gettext(lang, LABEL).format(label=esc(answer.get('label') or ''))}</small>"
            + "\n\n</details>"
        )
    return "\n\n".join(parts)
