"""What a training run should tell a small lab about the model it just made: too few photos a class (and the
accuracy leafdoc's own learning curve suggests at that count), or a model no better than chance on its test split.

The learning curve is the recipe `plantvillage-learning-curve` (docs/results.md, "Would more photos close the
gap?"): EfficientNet-Lite0 from ImageNet weights on PlantVillage's 30 classes, 90.2% right on held-out photos with
26 training photos a class and 94.4% with 106; its fit, test error = 0.372 * n^-0.42, puts 98% at about 1,100."""

from __future__ import annotations

from math import exp, floor, fsum, lgamma, log, log1p

CURVE_A, CURVE_B = 0.372, 0.42  # test error = A * n^-B, n = training photos per class
CURVE_TEXT = "90.2% right with 26 training photos a class, 94.4% with 106, on PlantVillage's 30 classes"
FEW_PHOTOS = 100  # fewer training photos than this in a class: the curve is still climbing steeply
CHANCE_P = 0.05  # one-sided binomial test: above chance only when p < CHANCE_P
# A test split too small to tell a model from chance: one that cannot tell even a model halfway from chance to every
# photo right (75% between 2 classes) from guessing. On such a split a share right above chance is not called
# "no better than chance" (4 of 4 right between 2 classes was), but too few test photos to tell.


def curve_accuracy(photos_per_class: int) -> float:
    """The accuracy the learning curve's fit gives at that many training photos a class (0 photos: 0)."""
    if photos_per_class < 1:
        return 0.0
    return max(0.0, 1.0 - CURVE_A * photos_per_class**-CURVE_B)


def few_photos(train_counts: dict[str, int], shown: int = 6) -> str | None:
    """A warning naming every class with fewer than FEW_PHOTOS training photos (the first `shown`, fewest first),
    with the accuracy the curve suggests at the fewest, else None. Naming only the smallest class read as if the
    others had enough."""
    short = sorted((n, cls) for cls, n in train_counts.items() if n < FEW_PHOTOS)
    if not short:
        return None
    n = short[0][0]
    if len(short) == len(train_counts) and len({k for k, _ in short}) == 1:
        which = f"every class has {n}"
    else:
        listed = ", ".join(f"{cls} has {k}" for k, cls in short[:shown])
        more = f" and {len(short) - shown} more classes under {FEW_PHOTOS}" if len(short) > shown else ""
        which = ("every class is short: " if len(short) == len(train_counts) else "") + listed + more
    return (
        f"few photos: {which} training photos. At {n} a class, leafdoc's learning curve ({CURVE_TEXT}) suggests "
        f"about {curve_accuracy(n):.0%} right on photos like these; fewer classes do better, look-alike classes and "
        f"field photos worse. Add photos (at least {FEW_PHOTOS} a class; about 1,100 a class for 98%) and train again."
    )


def empty_held_out(counts: dict[str, dict[str, int]]) -> str | None:
    """A warning naming the classes with no validation or no test photo ({class: {part: photos}}), else None. Copies of
    one leaf stay in one split (data/splits.py), so a small class of few leaves can leave a part empty: its figures
    then say nothing of that class."""
    parts = {"val": "validation", "test": "test"}
    missing = [
        f"{cls} has no {' and no '.join(word for part, word in parts.items() if not n.get(part))} photo"
        for cls, n in sorted(counts.items())
        if not (n.get("val") and n.get("test"))
    ]
    if not missing:
        return None
    return (
        f"{'; '.join(missing)}: the figures on those splits say nothing of {'it' if len(missing) == 1 else 'them'}. "
        "Add photos of other leaves (copies of one leaf, turned or flipped, are kept together in one split)."
    )


def binomial_p_at_least(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): how often guessing would be right at least k times in n. Each term is
    summed from its logarithm: a test split of a thousand photos or more makes comb(n, i) too large for a float."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = log(p), log1p(-p)
    terms = [lgamma(n + 1) - lgamma(i + 1) - lgamma(n - i + 1) + i * log_p + (n - i) * log_q for i in range(k, n + 1)]
    return min(1.0, fsum(exp(t) for t in terms))


def _told_from_chance(right: int, n: int, chance: float) -> bool:
    return binomial_p_at_least(right, n, chance) < CHANCE_P


def test_photos_needed(accuracy: float, chance: float, start: int = 1, most: int = 1_000_000) -> int | None:
    """The fewest test photos, from `start`, at which that share right (rounded down to whole photos) would be told
    from guessing, or None (at or below chance, or more than `most`)."""
    if accuracy <= chance:
        return None
    m = max(1, start)
    while m <= most:
        if binomial_p_at_least(floor(accuracy * m + 1e-9), m, chance) < CHANCE_P:
            return m
        m = m + 1 if m < 1000 else m + m // 100
    return None


def split_too_small(n: int, n_classes: int) -> bool:
    """Whether `n` test photos are too few to tell from guessing among `n_classes` even a model halfway from chance to
    every photo right (one-sided binomial test at CHANCE_P)."""
    chance = 1 / n_classes
    return binomial_p_at_least(floor((1 + chance) / 2 * n + 1e-9), n, chance) >= CHANCE_P


def _chance_test(right: int, n: int, n_classes: int) -> tuple[float, float] | None:
    """(chance, p) when guessing among `n_classes` does as well as `right` of `n` (p >= CHANCE_P), else None."""
    if n == 0 or n_classes < 2:
        return None
    chance = 1 / n_classes
    p = binomial_p_at_least(right, n, chance)
    return (chance, p) if p >= CHANCE_P else None


def _too_few_to_tell(right: int, n: int, n_classes: int) -> bool:
    return right / n > 1 / n_classes and split_too_small(n, n_classes)


def no_better_than_chance(right: int, n: int, n_classes: int) -> str | None:
    """A warning when `right` of `n` test photos cannot be told from guessing among `n_classes` (one-sided binomial
    test at CHANCE_P; guessing is right one time in n_classes) on a test split that could have told a good model
    (`split_too_small`), or are no more than guessing gets right. Else None (a share right above chance on a split
    too small to tell is `too_few_test_photos`'s)."""
    tested = _chance_test(right, n, n_classes)
    if tested is None or _too_few_to_tell(right, n, n_classes):
        return None
    chance, p = tested
    return (
        f"this model is no better than chance on its test split: {right} of {n} photos right ({right / n:.1%}), where "
        f"guessing among {n_classes} classes is right {chance:.1%} of the time (p = {p:.2f} that guessing does as "
        f"well). Do not serve it: add photos, or check that each class folder holds the right photos."
    )


def too_few_test_photos(right: int, n: int, n_classes: int, test_share: float = 0.15) -> str | None:
    """A warning when `right` of `n` test photos is more than guessing among `n_classes` gets right, but the test
    split is too small to tell it from guessing (`split_too_small`): 4 of 4 right between 2 classes, which guessing
    does one time in 16 (p = 0.06), was called "no better than chance". Says how many test photos would tell that
    share right (`test_share`: the share of each class's photos in the test split). None otherwise."""
    tested = _chance_test(right, n, n_classes)
    if tested is None or not _too_few_to_tell(right, n, n_classes):
        return None
    chance, p = tested
    need = test_photos_needed(right / n, chance, start=n + 1)
    perfect = chance**n  # how often guessing gets every one right: at or above CHANCE_P, no result could tell
    why = (
        f"guessing among {n_classes} classes gets all {n} right one time in {round(1 / perfect)}"
        if perfect >= CHANCE_P
        else f"guessing among {n_classes} classes ({chance:.1%} right) does as well with p = {p:.2f}"
    )
    return (
        f"too few test photos to tell it from chance: {right} of {n} right ({right / n:.1%}); {why}. Add photos: "
        f"at that share right, {need} test photos would tell (the test split is {test_share:.0%} of each class's "
        "photos). Until then its test figures cannot tell it from guessing: do not trust them."
    )


def test_chance_caveat(test: dict, n_classes: int, test_share: float = 0.15) -> str | None:
    """`no_better_than_chance` or else `too_few_test_photos` of a card's test figures (`metrics.test`: accuracy, n):
    what `leafdoc train` warns of, and the card's first limitation."""
    n = test.get("n") or 0
    if not n or not isinstance(test.get("accuracy"), int | float):
        return None
    right = round(test["accuracy"] * n)
    return no_better_than_chance(right, n, n_classes) or too_few_test_photos(right, n, n_classes, test_share)
