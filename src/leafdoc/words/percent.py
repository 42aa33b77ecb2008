"""A probability as a grower reads it, in whole percent: the one rule of the web page, its history and the offline
page (`static/words.js` `shareWords` is its copy; tests/unit/test_ui_text.py holds the two together in Node).

Rounded to the nearest whole percent, a probability of 0.995-0.99999 read "100%", and a grower takes "100% sure" for
certainty; one of 0.001 read "0%", as if the model had ruled it out. A model's probability is never a certainty, even
where float32 rounds it to 1.0 or 0.0 exactly (a leaf it is all but sure of). So never "100%" nor "0%": p >= 0.995 is
">99%", p < 0.005 is "<1%", the rest rounded half up (as JavaScript's Math.round, so the page and the offline page
agree on 0.125). The API's numbers are not touched: this is for the words shown.
"""

from __future__ import annotations

import math

# French sets a (no-break) space before the sign, as its catalog's "sûr à {percent} %" does; the others none.
SPACE_BEFORE_SIGN = {"fr": "\u00a0"}


def share_words(p: float) -> str:
    """The figure without its sign: ">99", "87", "<1"."""
    p = float(p)
    if p >= 0.995:
        return ">99"
    if not p >= 0.005:  # NaN too
        return "<1"
    return str(math.floor(100 * p + 0.5))


def percent_words(p: float | None, lang: str = "en") -> str:
    """`p` as a percentage in `lang`: ">99%", "87%", "<1%"; in French "87 %" (a no-break space); "–" for none."""
    if p is None:
        return "–"
    return f"{share_words(p)}{SPACE_BEFORE_SIGN.get(lang, '')}%"


def precise_percent(p: float, decimals: int = 2) -> str:
    """`p` to `decimals` places for `leafdoc predict`'s figures, by the same rule: never "100.00%" nor "0.00%" for a
    probability, but ">99.99%" and "<0.01%" where rounding would say so."""
    step = 10.0 ** -(decimals + 2)  # 0.0001: one unit of the last place shown
    if p >= 1 - step / 2:
        return f">{100 - 100 * step:.{decimals}f}%"
    if not p >= step / 2:  # NaN too
        return f"<{100 * step:.{decimals}f}%"
    return f"{p:.{decimals}%}"


def measured_share(test: dict | None, key: str = "accuracy") -> str:
    """A model version's test figure with the photos it was measured on, "99.1% of 5,221" (`test`: the card's
    `metrics.test`), which tells a lab's first model's 91.7% of 12 from a figure to trust; "–" for none. The one
    wording of `leafdoc models list`, the web page's and the desktop app's tables of versions."""
    value, n = (test or {}).get(key), (test or {}).get("n")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "–"
    return f"{100 * value:.1f}%" + (f" of {n:,}" if isinstance(n, int) and n > 0 else "")
