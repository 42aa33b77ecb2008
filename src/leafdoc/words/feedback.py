"""The words of "Was this right?" and of the thanks for saying: one wording for the web page (ui/feedback_text.py), the
offline page (offline/texts.py, which sends the feedback once there is a connection) and the desktop app
(desktop/feedback.py). Under a diagnosis: the question, Yes and No; under a refusal (no answer to be right or wrong
about): only "What is it?" and Send."""

from __future__ import annotations

from leafdoc.core.i18n import N_, gettext

WAS_IT_RIGHT = N_("Was this right?")
YES = N_("✓ Yes")
NO = N_("✗ No")
WHAT_IS_IT = N_("What is it? (if you know)")
SEND = N_("Send")


def asks_feedback(answer: dict) -> bool:
    """Whether an answer asks anything of the grower: not under a photo refused as unusable (take another)."""
    return not (answer.get("abstained") and answer.get("reason") == "poor_photo")


THANKS_RIGHT = N_("✓ Thank you: recorded as right.")
THANKS_WRONG = N_(
    "✓ Thank you: recorded as wrong{said}. An admin reviews it; nothing enters training without an admin's label."
)
ACTUALLY = N_(" (it is actually {label})")
# under a refusal there was no answer to be wrong: what the grower said the leaf is, recorded (the desktop review of
# session 74: it said "recorded as wrong")
THANKS_TOLD = N_(
    "✓ Thank you: recorded that it is {label}. An admin reviews it; nothing enters training without an admin's label."
)


def thanks_words(lang: str, correct: bool, named: str | None, refused: bool) -> str:
    """The thanks once the server has what the grower said, in `lang`: right; what the leaf is, under a refusal; or
    wrong, with what it actually is. `named`: the label they picked, in the words their menu named it (None: none)."""
    if correct:
        return gettext(lang, THANKS_RIGHT)
    if refused and named:  # no answer was given to be wrong: what the leaf is, said
        return gettext(lang, THANKS_TOLD).format(label=named)
    return gettext(lang, THANKS_WRONG).format(said=gettext(lang, ACTUALLY).format(label=named) if named else "")
