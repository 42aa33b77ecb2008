"""A probability as a grower reads it, in whole percent: the one rule of the web page, its history and the offline
page (`static/words.js` `shareWords` is its copy; tests/unit/test_ui_text.py holds the two together in Node).

Rounded to the nearest whole percent, a probability of 0.995-0.99999 read "100%", and a grower takes "100% sure" for
certainty; one of 0.001 read "0%", as if the model had ruled it out. So "100%" only for 1 exactly and "0%" only for 0:
0.995 <= p < 1 is ">99%", 0 < p < 0.005 is "<1%", the rest rounded half up (as JavaScript's Math.round, so the page and
the offline page agree on 0.125). The API's numbers are not touched: this is for the words shown.
"""

from __future__ import annotations

import math

# French sets a (no-break) space before the sign, as its catalog's "sûr à {percent} %" does; the others none.
SPACE_BEFORE_SIGN = {"fr": "\u00a0"}


def share_words(p: float) -> str:
    """The figure without its sign: "100" (1 exactly), ">99", "87", "<1", "0" (0 exactly)."""
    p = float(p)
    if p >= 1:
        return "100"
    if p <= 0 or math.isnan(p):
        return "0"
    if p >= 0.995:
        return ">99"
    if p < 0.005:
        return "<1"
    return str(math.floor(100 * p + 0.5))


def percent_words(p: float | None, lang: str = "en") -> str:
    """`p` as a percentage in `lang`: ">99%", "87%", "<1%"; in French "87 %" (a no-break space); "–" for none."""
    if p is None:
        return "–"
    return f"{share_words(p)}{SPACE_BEFORE_SIGN.get(lang, '')}%"
