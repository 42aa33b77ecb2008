"""The web page and the desktop app word a training job's phase the same way (leafdoc/jobwords.py)."""

from __future__ import annotations

import pytest

from leafdoc.jobwords import PHASES
from leafdoc.ui.text import job_summary

pytestmark = pytest.mark.unit

RUNNING = {"id": "0123456789abcdef", "state": "running", "dataset": "pv", "epoch": 1, "epochs": 4}


@pytest.mark.parametrize(
    ("phase", "words"),
    [
        *PHASES.items(),
        ("fine_tune", "fine-tuning the backbone"),
        ("evaluating on the test split", "evaluating on the test split"),  # the service's own words, as they are
        ("some_new_phase", "some new phase"),
    ],
)
def test_the_page_and_the_app_say_the_same_words_for_a_phase(phase, words):
    pytest.importorskip("PySide6")
    from leafdoc.desktop.retrain import job_progress

    job = {**RUNNING, "progress": {"phase": phase}}
    assert f"Epoch **1 / 4** · {words}" in job_summary(job)
    assert job_progress(job) == (25, f"{words} — 1 of 4 epochs done")
