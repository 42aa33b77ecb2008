"""The heading over a refusal ("not sure"), said alike by the web page (`ui/text.py`) and the desktop app
(`desktop/diagnose.py`): one for each reason that needs another kind of photo rather than a better one, and one for
the others (the message under it says which). A sharp photo of a rose (`not_a_leaf`) once got the desktop's "please
take a clearer photo"."""

from __future__ import annotations

from leafdoc.core.i18n import N_, gettext

REASON_HEADLINES = {
    # The message under it says which: a crop known only from lab photos, or a close-up past the leaf's edges.
    "unlike_training": N_("Not sure: this photo is not like the ones this model learnt this crop from"),
    # A lab's own model (an `other_leaves` check): the leaf looks like another crop or condition than its own. A
    # better photo will not help; the message says to check which crops and conditions the model knows.
    "unknown_leaf": N_("Not sure: this leaf is not one this model was taught"),
    # A photo too dark, blurred or small to read: not the model's doubt ("Not sure: no diagnosis" read oddly above it).
    "poor_photo": N_("Take another photo: this one cannot be read"),
}
NOT_SURE = N_("Not sure: no diagnosis for this photo")


def refusal_headline(reason: str | None, lang: str = "en") -> str:
    """The heading over a refusal for `reason` (the API's `reason`), in `lang`."""
    return gettext(lang, REASON_HEADLINES.get(reason or "", NOT_SURE))
