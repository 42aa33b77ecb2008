"""splits.py: train/val/test by class, the same on every machine for a seed, near-duplicates together,
and a plain DatasetError naming the class when a dataset cannot be split."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from leafdoc.core.errors import DatasetError
from leafdoc.data.phash import phash_orbits
from leafdoc.data.splits import check_classes, near_duplicate_groups, split_items


def random_hashes(n: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return [int(h) for h in rng.integers(0, 2**63 - 1, n, dtype=np.int64)]


def dataset(per_class: dict[str, int], seed: int = 0) -> list[tuple[str, str, int]]:
    hashes = iter(random_hashes(sum(per_class.values()), seed))
    rng = random.Random(seed)
    return [(f"{rng.getrandbits(256):064x}", label, next(hashes)) for label, n in per_class.items() for _ in range(n)]


def near_copy(h: int, which: int = 3, flip_bits: int = 2) -> int:
    """The hash of a flipped/rotated copy of the image that hashes to h, re-encoded (a few bits off)."""
    out = int(phash_orbits([h])[0, which])
    for bit in range(flip_bits):
        out ^= 1 << (7 * bit + 5)
    return out


def counts_by_class(items, assignment) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    for sha, label, _ in items:
        out.setdefault(label, Counter())[assignment[sha]] += 1
    return out


def test_one_class_is_not_a_classifier():
    with pytest.raises(DatasetError) as err:
        check_classes({"Apple___healthy": 30})
    assert "has 1 class (Apple___healthy); a classifier needs at least 2" in err.value.message
    assert err.value.hint
    with pytest.raises(DatasetError, match="has 0 classes"):
        split_items([])


def test_too_few_images_names_the_dataset():
    """The error said "the dataset:", whichever dataset it was."""
    items = dataset({"healthy": 20, "rust": 2})
    with pytest.raises(DatasetError) as err:
        split_items(items, where="dataset 'orchard' v3")
    assert err.value.message.startswith("dataset 'orchard' v3: too few images in some classes ('rust' has 2)")


def test_a_class_with_one_image_is_named():
    items = dataset({"healthy": 20, "rust": 20, "Tomato___mosaic": 1})
    with pytest.raises(DatasetError) as err:
        split_items(items)
    assert "'Tomato___mosaic' has 1" in err.value.message
    assert "'healthy'" not in err.value.message
    assert "Add photos to those classes" in err.value.hint


def test_roughly_70_15_15_in_every_class():
    items = dataset({"healthy": 40, "rust": 60, "scab": 20})
    got = counts_by_class(items, split_items(items, seed=0))
    for label, n in {"healthy": 40, "rust": 60, "scab": 20}.items():
        c = got[label]
        assert sum(c.values()) == n
        assert c["test"] == round(n * 0.15) and c["val"] == round(n * 0.15), (label, c)
        assert c["train"] == n - 2 * round(n * 0.15)


def test_smallest_classes_still_get_one_image_in_each_split():
    items = dataset({"a": 3, "b": 4})
    got = counts_by_class(items, split_items(items))
    assert all(c["train"] >= 1 and c["val"] == 1 and c["test"] == 1 for c in got.values())


def test_splits_are_deterministic_for_a_seed_and_ignore_input_order():
    items = dataset({"healthy": 30, "rust": 30})
    first = split_items(items, seed=7)
    shuffled = items[:]
    random.Random(1).shuffle(shuffled)
    assert split_items(shuffled, seed=7) == first
    assert split_items(items, seed=8) != first  # the seed matters...
    assert counts_by_class(items, split_items(items, seed=8)) == counts_by_class(items, first)  # ...not the sizes


def test_near_duplicates_always_land_in_the_same_split():
    items = dataset({"healthy": 30, "rust": 30})
    sha, label, h = items[4]
    copies = [(f"{i:064x}", label, near_copy(h, which=w)) for i, w in ((1, 1), (2, 5), (3, 6))]
    items = items + copies
    for seed in range(12):
        assignment = split_items(items, seed=seed)
        assert {assignment[s] for s, _, _ in copies} == {assignment[sha]}, seed
        assert sum(1 for v in assignment.values() if v == "test") >= 9


def test_near_duplicate_groups_are_transitive_and_leave_others_alone():
    base = random_hashes(6, 3)
    a = base[0]
    b = near_copy(a, which=2, flip_bits=3)
    c = near_copy(b, which=4, flip_bits=3)  # up to 6 bits from a, but chained through b
    groups = near_duplicate_groups([a, base[1], b, base[2], c])
    assert groups[0] == groups[2] == groups[4]
    assert len({groups[0], groups[1], groups[3]}) == 3


def test_photos_a_warm_start_learnt_from_and_their_near_duplicates_go_to_training():
    """`seen` (the photos of the model a run warm-starts from): each goes to training with its near-duplicates,
    so no copy of a photo the weights already learnt is scored as unseen; the others still give each class its
    held-out shares."""
    items = dataset({"healthy": 60, "rust": 60})
    seen = frozenset(sha for sha, _, _ in items[:20])
    sha, label, h = items[3]
    copy = (f"{7:064x}", label, near_copy(h, which=5))
    items = items + [copy]
    for seed in range(6):
        assignment = split_items(items, seed=seed, seen=seen)
        assert all(assignment[s] == "train" for s in seen)
        assert assignment[copy[0]] == "train"
        by = counts_by_class(items, assignment)
        assert by["healthy"]["test"] == 9 and by["rust"]["test"] == 9  # 15% of each whole class
    unpinned = split_items(items, seed=0)
    assert any(unpinned[s] != "train" for s in seen)  # without `seen` they would have been held out


def test_copies_of_one_leaf_never_fill_a_small_class_s_test_split():
    """A class of five photos, four of them one leaf turned and flipped: for every seed the four copies were its whole
    test split (its test recall "3 of 4" was one leaf) and validation got none. A group goes to test or validation only
    while it fits in twice their share, so the copies train and each held-out split gets a photo of its own leaf."""
    other = dataset({"Tomato___healthy": 20}, seed=1)
    (h,) = random_hashes(1, 9)
    leaf = [(f"{i:064x}", "Potato___healthy", near_copy(h, which=w)) for i, w in ((1, 0), (2, 1), (3, 2), (4, 5))]
    alone = [(f"{i:064x}", "Potato___healthy", x) for i, x in zip((5, 6), random_hashes(2, 11), strict=True)]
    assert len(set(near_duplicate_groups([x for _, _, x in leaf + alone]))) == 3  # one leaf's copies, and two leaves
    for seed in range(6):
        got = split_items(other + leaf + alone, seed=seed)
        assert {got[sha] for sha, _, _ in leaf} == {"train"}, seed
        assert sorted(got[sha] for sha, _, _ in alone) == ["test", "val"], seed
