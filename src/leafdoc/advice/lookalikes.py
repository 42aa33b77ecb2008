"""What an answer says about look-alikes, from the knowledge base's `confused_with` (either way round):

- `could_be`, `tell_apart`: for "not sure", which conditions the photo could show and how to tell them apart on
  the leaf. No confidence figure: a grower reads "Late blight 51%" as an answer, which a refusal is not.
- `urgent_lookalike`: for an answer about a milder disease, an urgent look-alike (an entry with `urgent`, such as
  late blight) among its top candidates, and how to check for it. Early and late blight look alike; only one
  of them can take a crop within days.

Pure functions of labels and the knowledge base, shared by the API's answer (inference/answer.py), and so the CLI,
the web page and the desktop app.
"""

from __future__ import annotations

from leafdoc.advice.knowledge import Knowledge, label_resolver
from leafdoc.core.i18n import N_, SOURCE, Advice, Label, Msg, msg, one_of, render

# An urgent look-alike is named when it is among the answer's 3 most likely labels with at least this
# probability. On the previous starter's (30 classes) 663 held-out photos (docs/web-page.md) this warned on 3 of the
# 4 late blight leaves answered as a milder look-alike (the fourth had late blight outside its top 3), and on 8 of the
# 127 right answers of those look-alikes. At 1% it would have missed late_blight_782.jpg, "Early blight" with late
# blight at 0.5%. The starter of 34 classes warns on 33 of its 147 right early blight answers among the shared photos.
URGENT_TOP = 3
URGENT_FLOOR = 0.005


def how_to_tell_words(knowledge: Knowledge, a: str, b: str) -> Advice | None:
    """How to tell `a` from `b` on the leaf, from either entry's `confused_with` (a text of the advice catalog)."""
    for one, other in ((a, b), (b, a)):
        entry = knowledge.get(one)
        for c in entry.confused_with if entry else ():
            if c.label == other:
                return Advice(one, f"how_to_tell {other}", " ".join(c.how_to_tell.split()))
    return None


def how_to_tell(knowledge: Knowledge, a: str, b: str) -> str | None:
    words = how_to_tell_words(knowledge, a, b)
    return None if words is None else words.text


COULD_BE = N_("It could be {names}.")
TELL_APART = N_("To tell {a} from {b}: {how}")
URGENT = N_(
    "Check that it is not {other}: the model does not rule it out, and it is urgent. {urgent} How to tell: {how} If "
    "you are not sure, ask a local extension service today."
)


def could_be_words(candidates: list[str]) -> Msg | None:
    return msg(COULD_BE, names=one_of([Label(c) for c in candidates])) if candidates else None


def could_be(candidates: list[str]) -> str:
    """'It could be A or B.' for the labels a "not sure" hesitates between; empty for none."""
    words = could_be_words(candidates)
    return "" if words is None else str(words)


def tell_apart_words(knowledge: Knowledge, candidates: list[str]) -> list[Msg]:
    """'To tell A from B: ...' for each pair of `candidates` the knowledge base says how to tell apart."""
    parts = []
    for i, a in enumerate(candidates):
        for b in candidates[i + 1 :]:
            if how := how_to_tell_words(knowledge, a, b):
                parts.append(msg(TELL_APART, a=Label(a), b=Label(b), how=how))
    return parts


def tell_apart(knowledge: Knowledge, candidates: list[str]) -> str:
    return " ".join(render(m, SOURCE, label_resolver(knowledge)) for m in tell_apart_words(knowledge, candidates))


def urgent_lookalike_words(knowledge: Knowledge, label: str | None, top_k: list[dict]) -> tuple[str, Msg] | None:
    """(the look-alike's label, the warning) when an urgent look-alike of the answer's `label` is among its top
    candidates; None otherwise (and for an answer that is itself urgent, or no answer)."""
    entry = knowledge.get(label) if label else None
    if entry is None or entry.urgent:
        return None
    for item in top_k[:URGENT_TOP]:
        other = knowledge.get(item["label"])
        if item["label"] == label or other is None or not other.urgent or item["probability"] < URGENT_FLOOR:
            continue
        how = how_to_tell_words(knowledge, label, other.label)
        if how is None:  # not a look-alike of this answer
            continue
        urgent = Advice(other.label, "urgent", " ".join(other.urgent.split()))
        return other.label, msg(URGENT, other=Label(other.label), urgent=urgent, how=how)
    return None


def urgent_lookalike(knowledge: Knowledge, label: str | None, top_k: list[dict]) -> dict | None:
    """{label, message} (in English) when an urgent look-alike of the answer's `label` is among its top candidates."""
    found = urgent_lookalike_words(knowledge, label, top_k)
    if found is None:
        return None
    return {"label": found[0], "message": render(found[1], SOURCE, label_resolver(knowledge))}
