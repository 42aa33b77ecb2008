"""How a training job's phase is said to people: one wording, shown by the web page (ui/text.py) and the
desktop app (desktop/retrain.py), so both say the same; nothing here imports Gradio or Qt.

A job's `progress.phase` (service/training.py) is either the trainer's name for a phase (below) or already
words ("preparing data", "evaluating on the test split", "queued again after attempt 1 of 3, ...")."""

from __future__ import annotations

# The trainer's phases (train/trainer.py), in words.
PHASES = {"scratch": "training", "head": "training the new head", "fine_tune": "fine-tuning the backbone"}


def phase_words(phase: str | None) -> str | None:
    """The words for a job's `progress.phase`; None when the job reports none."""
    if not phase:
        return None
    return PHASES.get(phase, phase.replace("_", " "))
