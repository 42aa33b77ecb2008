"""Look-alikes in the answer, on real photos and the starter model: "not sure" names what it could be and how to
tell them apart with no confidence figure (API, CLI), and an answer about a milder disease warns when an urgent
look-alike (late blight) is among its top candidates."""

from __future__ import annotations

import re

import pytest
from tests.conftest import PLANTVILLAGE, REPO

from leafdoc.advice import shipped_knowledge
from leafdoc.advice.lookalikes import URGENT_FLOOR, urgent_lookalike
from leafdoc.cli.printing import print_answers
from leafdoc.inference.predictor import Predictor

STARTER = REPO / "models" / "starter"
LATE = PLANTVILLAGE / "Tomato___Late_blight"
EARLY = PLANTVILLAGE / "Tomato___Early_blight"
FIGURE = re.compile(r"\d+(\.\d+)?\s*%")


@pytest.fixture(scope="module")
def starter():
    if not PLANTVILLAGE.is_dir():
        pytest.skip(f"shared datasets not found at {PLANTVILLAGE}")
    return Predictor(STARTER)


def answers(starter, *paths) -> list[dict]:
    return [p.model_dump() for p in starter.predict_files(list(paths), k=5)]


def test_an_early_blight_answer_that_does_not_rule_out_late_blight_says_to_check_for_it(starter):
    # An early blight leaf of the starter's test split (never seen in training): answered "Early blight" (99%), with
    # late blight second (1.1%).
    for a in answers(starter, EARLY / "early_blight_764.jpg"):
        assert a["label"] == "Tomato___Early_blight" and not a["abstained"]
        caution = a["caution"]
        assert caution and caution["label"] == "Tomato___Late_blight", a["file"]
        assert "Check that it is not Tomato — Late blight" in caution["message"]
        assert "kill a crop within days" in caution["message"]  # why it is urgent (the advice's `urgent`)
        assert "white downy growth underneath" in caution["message"]  # how to tell (the advice's look-alikes)


def test_a_plain_early_blight_leaf_gets_no_late_blight_warning(starter):
    [a] = answers(starter, EARLY / "early_blight_874.jpg")  # the test split: 98% early blight, late blight 0.1%
    assert a["label"] == "Tomato___Early_blight"
    late = next((t["probability"] for t in a["top_k"] if t["label"] == "Tomato___Late_blight"), 0.0)
    assert late < URGENT_FLOOR and a["caution"] is None


def test_the_warning_needs_an_urgent_look_alike_among_the_top_candidates():
    k = shipped_knowledge()
    early, late = "Tomato___Early_blight", "Tomato___Late_blight"

    def top(*pairs):
        return [{"label": label, "probability": p} for label, p in pairs]

    assert urgent_lookalike(k, early, top((early, 0.9), (late, 0.05)))["label"] == late
    assert urgent_lookalike(k, early, top((early, 0.99), (late, URGENT_FLOOR / 2))) is None  # ruled out
    four_down = top((early, 0.7), ("Tomato___Target_Spot", 0.1), ("Tomato___Septoria_leaf_spot", 0.1), (late, 0.1))
    assert urgent_lookalike(k, early, four_down) is None  # not among the 3 most likely
    assert urgent_lookalike(k, late, top((late, 0.6), (early, 0.4))) is None  # the answer is the urgent one
    # late blight is no look-alike of apple scab: no warning whatever its share
    assert urgent_lookalike(k, "Apple___Apple_scab", top(("Apple___Apple_scab", 0.6), (late, 0.4))) is None
    assert urgent_lookalike(k, None, top((late, 0.4))) is None  # no answer


def test_not_sure_names_the_candidates_and_how_to_tell_them_apart_without_a_figure(starter, capsys):
    # The starter model hesitates on this leaf (its test split: never trained on) between tomato late blight, tomato
    # early blight and tomato bacterial spot.
    [a] = answers(starter, LATE / "late_blight_766.jpg")
    assert a["abstained"] and a["reason"] == "unsure"
    message = a["message"]
    assert "It could be Tomato — Late blight, Tomato — Early blight or Tomato — Bacterial spot." in message
    assert "To tell Tomato — Late blight from Tomato — Early blight: " in message
    assert "concentric rings" in message or "ringed" in message  # the knowledge base's own words
    assert not FIGURE.search(message), message
    print_answers([a])  # the CLI: the refusal and no percentage under it
    said = capsys.readouterr().out
    assert "not sure (unsure)" in said and "It could be" in said
    assert not FIGURE.search(said), said


def test_a_dark_photo_is_refused_with_no_figure(starter, tmp_path, capsys):
    from PIL import Image

    dark = tmp_path / "dark.jpg"
    Image.open(LATE / "late_blight_782.jpg").point(lambda v: v // 12).save(dark)
    [a] = answers(starter, dark)
    assert a["abstained"] and a["reason"] == "poor_photo" and "too dark" in a["message"]
    print_answers([a])
    said = capsys.readouterr().out
    assert "too dark" in said and not FIGURE.search(said), said
