"""Stable train/validation/test splits by class, with near-duplicates kept in one split.

PlantVillage redistributions contain flipped and rotated copies of the same leaf; if one copy lands
in train and another in test, test accuracy is overstated. Images whose flip/rotation-invariant
perceptual hashes are within a few bits are grouped (union-find), and whole groups are assigned.
The split depends only on the dataset's images and the seed, so it is the same on every machine.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from leafdoc.core.errors import DatasetError
from leafdoc.data.ingest import NEAR_DUPLICATE_BITS
from leafdoc.data.phash import near_duplicate_pairs

SPLITS = ("train", "val", "test")
MIN_PER_CLASS = 3
# A dataset's versions keep every photo ingested into them: a class folder deleted from disk is still in the next
# version, so "remove its folder" alone led back to the same refusal.
SMALL_CLASS_HINT = (
    "Add photos to those classes; or leave them out: a dataset keeps every photo ingested into it, so ingest the "
    "folder without them under a new name (`leafdoc train --data DIR --dataset NEWNAME`, or `leafdoc ingest DIR "
    "--dataset NEWNAME`)."
)


def near_duplicate_groups(hashes: list[int], max_bits: int = NEAR_DUPLICATE_BITS) -> list[int]:
    """Group id per item: items within `max_bits` of each other under some flip/rotation (transitively)
    share a group."""
    parent = list(range(len(hashes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in near_duplicate_pairs(hashes, max_bits):
        a, b = find(j), find(i)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return [find(i) for i in range(len(hashes))]


def check_classes(counts: dict[str, int], where: str = "the dataset") -> None:
    if len(counts) < 2:
        raise DatasetError(
            f"{where} has {len(counts)} class{'es' if len(counts) != 1 else ''} "
            f"({', '.join(counts) or 'none'}); a classifier needs at least 2.",
            hint="Add a folder of photos for each label.",
        )
    small = {k: v for k, v in counts.items() if v < MIN_PER_CLASS}
    if small:
        listing = ", ".join(f"{k!r} has {v}" for k, v in sorted(small.items()))
        raise DatasetError(
            f"{where}: too few images in some classes ({listing}); each class needs at least "
            f"{MIN_PER_CLASS} (one each for training, validation and test).",
            hint=SMALL_CLASS_HINT,
        )


def split_items(
    items: list[tuple[str, str, int]],
    seed: int = 0,
    val: float = 0.15,
    test: float = 0.15,
    seen: frozenset[str] = frozenset(),
    where: str = "the dataset",
) -> dict[str, str]:
    """items: (sha256, label, phash) -> {sha256: 'train'|'val'|'test'}; `where`: the dataset, as messages name it.

    `seen`: photos a model warm-started from was trained on. Each goes to training with its whole group of
    near-duplicates, so no copy of a photo the weights have already learnt lands in validation or test."""
    counts: dict[str, int] = defaultdict(int)
    for _, label, _ in items:
        counts[label] += 1
    check_classes(dict(counts), where)

    items = sorted(items)
    groups = near_duplicate_groups([ph for _, _, ph in items])
    # A group belongs to the class of its first member; it goes to one split whole.
    members: dict[int, list[int]] = defaultdict(list)
    for idx, g in enumerate(groups):
        members[g].append(idx)
    by_class: dict[str, list[int]] = defaultdict(list)
    for g, idxs in members.items():
        by_class[items[idxs[0]][1]].append(g)

    pinned = {g for g, idxs in members.items() if any(items[i][0] in seen for i in idxs)}
    rng = np.random.default_rng(seed)
    out: dict[str, str] = {}
    for g in pinned:
        for idx in members[g]:
            out[items[idx][0]] = "train"
    for label in sorted(by_class):
        gs = sorted(by_class[label], key=lambda g: items[members[g][0]][0])
        gs = [gs[i] for i in rng.permutation(len(gs))]
        n = sum(len(members[g]) for g in gs)  # the held-out shares are of the whole class, pinned photos included
        gs = [g for g in gs if g not in pinned]
        want = {"test": max(1, round(n * test)), "val": max(1, round(n * val))}
        got = {"test": 0, "val": 0}
        for g in gs:
            size = len(members[g])
            # Fill test, then val, never leaving train empty, and never past twice a share: in a class of five photos,
            # four copies of one leaf (turned and flipped) were its whole test split, and validation had none.
            left = n - got["test"] - got["val"] - size
            fits = {s: got[s] < want[s] and got[s] + size <= 2 * want[s] for s in ("test", "val")}
            target = next((s for s in ("test", "val") if fits[s] and left >= 1), "train")
            if target != "train":
                got[target] += size
            for idx in members[g]:
                out[items[idx][0]] = target
    return out
