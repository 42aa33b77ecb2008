"""What a trained model's card says of its data (`provenance`) and of what it cannot do (`limitations`), from what the
run knows: the dataset version's classes and photos, where they came from by name, the split, the network it started
from and the test split's own figures. Nothing here is a fixed sentence about photos the run never looked at.

Only the names of the folders the photos were ingested from go in (never where they were on the machine): the card
is served as it is by GET /v1/models/{version}.
"""

from __future__ import annotations

import numpy as np

# A class with fewer photos than this (all splits) is named in the limitations: the guide's "at least 100 a class
# gives a model you can lean on" (docs/guide-train-your-own.md), and the learning curve is still climbing below it.
FEW_PHOTOS = 100
# A class whose recall on the test split is under this is named in the limitations, with its photos right of its own.
LOW_RECALL = 0.9
NO_PROVENANCE = (
    "Provenance not given: pass --provenance FILE (a text file naming the photos' sources and licences) to "
    "`leafdoc train`."
)


def photos_per_class(classes: list[str], y: np.ndarray) -> dict[str, int]:
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=len(classes))
    return {c: int(n) for c, n in zip(classes, counts, strict=True)}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _class_counts(per_class: dict[str, int]) -> str:
    """ "180 photos of 3 classes, 60 a class" or "... from 12 (A) to 140 (B) a class"."""
    total, k = sum(per_class.values()), len(per_class)
    lo = min(per_class, key=lambda c: (per_class[c], c))
    hi = max(per_class, key=lambda c: (per_class[c], c))
    spread = (
        f"{per_class[lo]} a class"
        if per_class[lo] == per_class[hi]
        else f"from {per_class[lo]} ({lo}, the smallest) to {per_class[hi]} ({hi}, the largest) a class"
    )
    return f"{_plural(total, 'photo')} of {k} class{'' if k == 1 else 'es'}, {spread}"


def data_provenance(
    *,
    dataset: str,
    version: int,
    sources: list[str] | None,
    per_class: dict[str, int],
    split: dict[str, int],
    started_from: str,
    test_learnt: int,
    given: str | None = None,
) -> str:
    """The card's `provenance`: the text given (--provenance) if any, else a line saying it was not given; then what
    leafdoc itself knows of the data. `started_from`: "starter", "parent" (a warm start from another model), or
    anything else (ImageNet's weights, a file, none)."""
    where = (
        f"ingested from {'a folder (zip, file) named' if len(sources) == 1 else 'folders (zips, files) named'} "
        + ", ".join(f"`{s}`" for s in sources)
        if sources
        else "ingested from a source leafdoc did not record"
    )
    facts = [
        f"Photos: dataset `{dataset}` v{version}, {where}: {_class_counts(per_class)}.",
        f"Split by class, near-duplicates together: train {split.get('train', 0)}, validation {split.get('val', 0)}, "
        f"test {split.get('test', 0)}.",
    ]
    if started_from == "starter":
        learnt = (
            f"{test_learnt} of its {split.get('test', 0)} test photos are among the photos the starter learnt or was "
            "chosen on (dataset.test_learnt_by_start)"
            if test_learnt
            else "none of its test photos is among the photos the starter learnt"
        )
        facts.append(
            "Network: started from leafdoc's starter model (ImageNet's weights taught PlantVillage's leaf diseases); "
            f"{learnt}."
        )
    elif started_from == "parent":
        learnt = (
            f"; {test_learnt} of its {split.get('test', 0)} test photos are among the photos leafdoc's starter learnt"
            if test_learnt
            else ""
        )
        facts.append(f"Network: warm-started from another model (parent_version, warm_start){learnt}.")
    head = given.strip() if given and given.strip() else NO_PROVENANCE
    return head + "\n\nAs leafdoc recorded it: " + " ".join(facts)


def data_limitations(
    per_class: dict[str, int],
    test_per_class: dict[str, dict] | None = None,
    test_learnt: int = 0,
    n_test: int = 0,
) -> str:
    """The card's `limitations`, from the data and the test split's figures (`test_per_class`: compute_metrics'
    per_class, with recall and support): the classes it knows, the classes with few photos, the classes it found
    least often on its test split, what its test figures are worth."""
    k = len(per_class)
    parts = [
        f"Knows only these {k} classes: {', '.join(per_class)}. A photo of anything else (another crop, another "
        "disease) is forced into one of them unless leafdoc abstains."
    ]
    few = {c: n for c, n in per_class.items() if n < FEW_PHOTOS}
    if few:
        parts.append(
            f"{'Every class has' if len(few) == k else f'{len(few)} of the {k} classes have'} fewer than {FEW_PHOTOS} "
            "photos (" + ", ".join(f"{c}: {n}" for c, n in sorted(few.items(), key=lambda kv: (kv[1], kv[0]))) + "): "
            "figures on so few photos are rough, and more photos would likely give a better model."
        )
    if test_per_class and n_test:
        low = {
            c: m
            for c, m in test_per_class.items()
            if c in per_class and m.get("support") and m.get("recall", 0.0) < LOW_RECALL
        }
        if low:
            parts.append(
                f"Found least often on its test split ({n_test} photos), recall under {LOW_RECALL:.0%}: "
                + ", ".join(
                    f"{c} {round(m['recall'] * m['support'])} of {m['support']}"
                    for c, m in sorted(low.items(), key=lambda kv: (kv[1]["recall"], kv[0]))
                )
                + "."
            )
        else:
            parts.append(
                f"Every class's recall on its test split ({n_test} photos, "
                f"{min(m['support'] for m in test_per_class.values() if m.get('support'))} or more a class) "
                f"was {LOW_RECALL:.0%} or more."
            )
    if test_learnt:
        parts.append(
            f"{test_learnt} of its {n_test} test photos were learnt by the network it started from: its test figures "
            "overstate it."
        )
    parts.append(
        "Measured only on photos from the same folders as its training photos: photos taken another way (another "
        "camera, light or background; leaves on the plant where it learnt picked ones, or the other way round) may "
        "do worse. Score it on such photos with `leafdoc evaluate MODEL --data FOLDER` before relying on it."
    )
    return " ".join(parts)
