"""The review queue's rows (the page's Review tab and the desktop app's, ui/feedback_text.review_rows): an answer
says what the model gave, and the crop the grower named with the photo (crop first), which an admin needs to judge
an answer chosen among that crop's conditions only."""

from __future__ import annotations

import pytest

from leafdoc.ui.feedback_text import REVIEW_COLUMNS, review_rows

pytestmark = pytest.mark.unit


def item(**kw) -> dict:
    base = {
        "prediction_id": "abcdefghijklmnop",
        "created": "2026-11-27T20:41:00",
        "label": "Tomato___Early_blight",
        "top_label": "Tomato___Early_blight",
        "confidence": 0.91,
        "abstained": False,
        "reason": None,
        "crop_given": None,
        "feedback_correct": False,
        "feedback_label": "Tomato___Late_blight",
        "has_photo": True,
    }
    return {**base, **kw}


def test_a_row_names_the_answer_and_the_crop_the_grower_gave():
    [given, none] = review_rows([item(crop_given="tomato"), item()])
    assert len(given) == len(REVIEW_COLUMNS)
    assert given[1] == "Tomato — Early blight (crop given: tomato)"
    assert none[1] == "Tomato — Early blight"
    assert given[3] == "✗ wrong: Tomato — Late blight"
    [abstained] = review_rows([item(abstained=True, label=None, reason="unsure", crop_given="potato")])
    assert abstained[1] == "abstained (unsure); best guess Tomato — Early blight (crop given: potato)"
    assert abstained[3] == "said it is Tomato — Late blight"  # a refusal gave no answer to be wrong about
