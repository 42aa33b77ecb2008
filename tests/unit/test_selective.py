"""Selective prediction figures and the order of the abstention checks."""

from __future__ import annotations

import numpy as np

from leafdoc.evaluate.metrics import risk_coverage, selective_metrics
from leafdoc.imaging.quality import PhotoProblem
from leafdoc.inference.abstain import decide
from leafdoc.modelfolder import ModelCard


def test_risk_coverage_by_hand():
    # confidences 0.9 (right), 0.8 (wrong), 0.7 (right), 0.6 (wrong)
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    y = np.array([0, 0, 0, 0])
    rc = risk_coverage(y, probs)
    assert rc["curve"]["coverage"] == [0.25, 0.5, 0.75, 1.0]
    assert rc["curve"]["risk"] == [0.0, 0.5, 0.3333, 0.5]
    assert rc["aurc"] == round((0 + 0.5 + 1 / 3 + 0.5) / 4, 4)
    assert rc["accuracy_at"] == {"50%": 0.5, "80%": 0.5, "100%": 0.5}


def test_selective_metrics_counts_reasons():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    y = np.array([0, 0, 0, 1])
    s = selective_metrics(y, probs, [None, "unsure", None, "not_a_leaf"])
    assert s["coverage"] == 0.5 and s["answered"] == 2
    assert s["abstained_by_reason"] == {"unsure": 1, "not_a_leaf": 1}
    assert s["accuracy_answered"] == 1.0 and s["accuracy_all"] == 0.75


CARD = ModelCard(abstain={"min_confidence": 0.5}, ood={"threshold": 2.0})
LABELS = ["a", "b", "c"]


def test_checks_in_order():
    sure = np.array([0.9, 0.05, 0.05])
    unsure = np.array([0.4, 0.35, 0.25])
    blurred = (PhotoProblem("blurred", "the photo is blurred"),)
    assert decide(sure, LABELS, CARD, blurred, ood_score=9.0).reason == "poor_photo"
    d = decide(sure, LABELS, CARD, (), ood_score=2.5)
    assert d.reason == "not_a_leaf" and d.abstained and "leaf" in d.message
    d = decide(unsure, LABELS, CARD, (), ood_score=1.0)
    assert d.reason == "unsure" and d.candidates[:2] == ("a", "b")
    assert not decide(sure, LABELS, CARD, (), ood_score=1.0).abstained


def test_card_without_ood_uses_the_softmax_alone():
    old = ModelCard(abstain={"min_confidence": 0.5})
    assert not decide(np.array([0.9, 0.05, 0.05]), LABELS, old, (), ood_score=99.0).abstained
    assert decide(np.array([0.4, 0.35, 0.25]), LABELS, old, (), ood_score=None).reason == "unsure"
