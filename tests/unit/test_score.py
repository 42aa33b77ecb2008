"""evaluate.score: one prediction pass over labelled images, and every figure from that pass."""

from __future__ import annotations

import numpy as np
import pytest

from leafdoc.evaluate.score import score

pytestmark = pytest.mark.unit

LABELS = ["a", "b", "c"]


class FakeModel:
    """The two things score() needs of a Predictor; counts the images it is asked to predict."""

    labels = LABELS

    def __init__(self, probs: np.ndarray):
        self.probs, self.calls = probs, []

    def predict_arrays(self, x, outputs=None):
        self.calls.append(len(x))
        return {"probabilities": self.probs[: len(x)]}


def test_one_pass_gives_the_summary_the_full_figures_and_the_outcomes():
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.1, 0.2, 0.7]])
    y = np.array([0, 1, 1, 2])  # the third is wrong (a for b)
    model = FakeModel(probs)
    s = score(model, np.zeros((4, 8, 8, 3), np.uint8), y)
    assert model.calls == [4]  # one pass
    assert s.summary()["accuracy"] == 0.75 and s.summary()["n"] == 4 and s.summary()["top3_accuracy"] == 1.0
    f = s.figures()
    assert model.calls == [4]  # the figures predict nothing again
    assert f["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert f["per_class"]["b"]["recall"] == 0.5 and f["most_confused"] == [{"true": "b", "predicted": "a", "count": 1}]
    assert sum(b["n"] for b in f["reliability"]) == 4 and f["accuracy_ci95"][0] < 0.75 < f["accuracy_ci95"][1]
    # Outcomes are ordered by the images' hashes, so two runs on the same images pair up whatever their order.
    out = s.outcomes(["d", "c", "b", "a"])
    assert out["correct"] == "1011"  # a (4th image, right), b (3rd, wrong), c (2nd, right), d (1st, right)
    assert s.outcomes(["a", "b", "c", "d"])["images"] == out["images"]


def test_no_images_scores_nothing_and_asks_nothing():
    model = FakeModel(np.zeros((0, 3)))
    s = score(model, np.zeros((0, 8, 8, 3), np.uint8), np.zeros(0))
    assert model.calls == [] and s.n == 0 and s.summary()["n"] == 0
