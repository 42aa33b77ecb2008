"""The words that thank a grower for saying whether an answer was right: one wording for the web page
(ui/feedback_text.py) and the offline page (offline/texts.py, which sends the feedback once there is a connection)."""

from __future__ import annotations

from leafdoc.core.i18n import N_

THANKS_RIGHT = N_("✓ Thank you: recorded as right.")
THANKS_WRONG = N_(
    "✓ Thank you: recorded as wrong{said}. An admin reviews it; nothing enters training without an admin's label."
)
ACTUALLY = N_(" (it is actually {label})")
