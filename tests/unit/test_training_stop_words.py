"""What a stopped `leafdoc train` says `--resume` will keep: the default head phase (on features computed once) is
saved only when it ends, every other phase after every epoch (docs/training.md, "Stopping and resuming")."""

from __future__ import annotations

from rich.progress import Progress

from leafdoc.cli.printing import TrainingLog, resume_words
from leafdoc.train import events


def log_of(*happened) -> TrainingLog:
    bar = Progress(disable=True)
    log = TrainingLog(bar, bar.add_task("training", total=None, info=""))
    for e in happened:
        log(e)
    return log


def test_stopped_in_the_default_head_phase_says_resume_starts_it_over():
    log = log_of(events.Batch("head", 3, 3), events.Epoch("head", 1, 0.5, {"loss": 1.0}), events.Batch("head", 3, 3))
    assert log.running == "head" and log.saved is None
    said = resume_words(log.running, log.saved, head_on_features=True)
    assert "saved only when it ends" in said and "`--resume` starts it over" in said
    assert "cached arrays are kept" in said


def test_stopped_after_a_saved_epoch_says_where_resume_goes_on():
    log = log_of(
        events.Batch("head", 3, 3),
        events.Checkpointed("head", 5, "/m/.model.checkpoint"),
        events.Batch("fine_tune", 1, 8),
        events.Checkpointed("fine_tune", 6, "/m/.model.checkpoint"),
        events.Batch("fine_tune", 2, 8),
    )
    assert log.saved == ("fine_tune", 6)
    said = resume_words(log.running, log.saved, head_on_features=True)
    assert "`--resume` goes on from the checkpoint after fine_tune epoch 6" in said
    head_only = resume_words("fine_tune", ("head", 5), head_on_features=True)
    assert "head phase was saved whole (5 epochs): `--resume` keeps it" in head_only
    scratch = resume_words("scratch", None, head_on_features=False)
    assert "no epoch was saved yet" in scratch and "from the first epoch" in scratch
    assert "before its first epoch" in resume_words(None, None, head_on_features=True)
