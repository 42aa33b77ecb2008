"""A recipe run's `train_share`: each class keeps that share of its training photos, nested across shares
(a learning curve only ever adds photos), with validation and test untouched."""

from __future__ import annotations

import numpy as np

from leafdoc.experiments.recipe import RunSpec
from leafdoc.experiments.tracked import thinned
from leafdoc.train.train_data import TrainData


def _data(per_class: list[int]) -> TrainData:
    y, split = [], []
    for k, n in enumerate(per_class):  # n training photos, then 3 validation and 3 test photos per class
        y += [k] * (n + 6)
        split += ["train"] * n + ["val"] * 3 + ["test"] * 3
    shas = [f"{i:064x}" for i in range(len(y))]
    return TrainData(
        images=None,
        shas=shas,
        classes=[f"c{k}" for k in range(len(per_class))],
        y=np.array(y, dtype=np.int32),
        split=np.array(split),
        dataset="d",
        version=1,
    )


def _kept(data: TrainData, share: float | None) -> TrainData:
    return thinned(data, RunSpec(name="r", train_share=share), seed=0)


def test_each_class_keeps_its_share_and_validation_and_test_stay_as_they_were():
    data = _data([106, 40, 3, 1])
    half = _kept(data, 0.5)
    for k, n in enumerate([106, 40, 3, 1]):
        in_class = half.y == k
        assert ((half.split == "train") & in_class).sum() == max(1, round(n * 0.5))
        assert ((half.split == "unused") & in_class).sum() == n - max(1, round(n * 0.5))
    for part in ("val", "test"):
        assert list(half.indices(part)) == list(data.indices(part))
    assert (data.split == "unused").sum() == 0  # the original is not changed in place
    assert _kept(data, None).split.tolist() == data.split.tolist() == _kept(data, 1.0).split.tolist()


def test_a_smaller_share_keeps_photos_a_larger_one_keeps_too():
    data = _data([106, 50, 20])
    kept = [set(_kept(data, s).indices("train")) for s in (0.25, 0.5, 0.75, 1.0)]
    assert all(a < b for a, b in zip(kept, kept[1:], strict=False))  # strictly nested
    # Which photos is drawn by the seed, not taken in the folder's order.
    assert kept[0] != set(np.nonzero(data.split == "train")[0][: len(kept[0])])
    assert thinned(data, RunSpec(name="r", train_share=0.5), seed=1).split.tolist() != _kept(data, 0.5).split.tolist()


def test_a_share_and_an_imbalance_thin_one_after_the_other():
    data = _data([100, 100, 100])
    both = thinned(data, RunSpec(name="r", train_share=0.5, train_imbalance=4), seed=0)
    counts = [int(((both.split == "train") & (both.y == k)).sum()) for k in range(3)]
    assert counts == [50, 25, 12]  # half of each, then 4^(-k/2) of that: 1, 1/2, 1/4 (12.5 rounds to 12)
