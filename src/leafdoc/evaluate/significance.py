"""How far an accuracy measured on a few hundred test images can be trusted, and whether two models
scored on the same images differ by more than chance: a Wilson interval and McNemar's exact test."""

from __future__ import annotations

import math


def wilson_interval(correct: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95% Wilson score interval of an accuracy of correct/n (sound near 0% and 100%, unlike ±1.96·SE)."""
    if n <= 0:
        raise ValueError("an interval needs at least one image")
    if not 0 <= correct <= n:
        raise ValueError(f"{correct} correct of {n} images")
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_interval(accuracy: float, n: int) -> tuple[float, float]:
    """The 95% Wilson interval of an accuracy measured on n images."""
    return wilson_interval(round(accuracy * n), n)


def accuracy_interval_text(accuracy: float, n: int) -> str:
    """ "84.4% (95% CI 75.6–90.5%)": an accuracy as people should read it when n is small."""
    lo, hi = accuracy_interval(accuracy, n)
    return f"{accuracy:.1%} (95% CI {lo:.1%}–{hi:.1%})"


def mcnemar(a: str, b: str) -> dict:
    """McNemar's exact test of two models' outcomes on the same images, each a string of '1' (right) and
    '0' (wrong) in one order. Only the images one model got right and the other wrong count: under
    "equally good" each is a fair coin, so p is the two-sided binomial tail of the smaller count."""
    if len(a) != len(b):
        raise ValueError(f"outcomes of {len(a)} and {len(b)} images cannot be paired")
    only_a = sum(x == "1" and y == "0" for x, y in zip(a, b, strict=True))
    only_b = sum(x == "0" and y == "1" for x, y in zip(a, b, strict=True))
    n = only_a + only_b
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2**n
    return {"only_a": only_a, "only_b": only_b, "p": min(1.0, 2 * tail)}
