"""`leafdoc train`'s bar showed "evaluating on the test split 27/27 photos 0:01:29" for a 3-class model at 128 px: the
clock had run since the first epoch (the task was updated, not restarted), and the 27 photos took under a second."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress, TextColumn, TimeElapsedColumn

from leafdoc.cli import printing
from leafdoc.train import events


def test_the_evaluation_shows_its_own_time_and_the_checks_are_a_phase_of_their_own(monkeypatch):
    now = [0.0]
    said = io.StringIO()
    monkeypatch.setattr(printing, "console", Console(file=said, width=100))
    bar = Progress(TextColumn("{task.description}"), TimeElapsedColumn(), get_time=lambda: now[0], disable=True)
    log = printing.TrainingLog(bar, bar.add_task("training", total=None, info=""), {"head": 2})
    log(events.Epoch("head", 1, 40.0, {"loss": 1.0}))
    now[0] = 88.5  # caching the features and the epochs
    log(events.Epoch("head", 2, 40.0, {"loss": 0.5}))
    log(events.Evaluating(27))
    now[0] = 89.0
    [task] = bar.tasks
    assert task.description == "evaluating on the test split" and task.elapsed == 0.5  # not 89 s
    log(events.Calibrating([], []))
    assert "scored the 27 test photos in 0.5s" in said.getvalue()
    now[0] = 95.0
    [task] = [t for t in bar.tasks if t.visible]
    assert task.description.startswith("fitting the checks") and task.elapsed == 6.0
    assert str(printing.Count().render(task)) == ""  # not "0/27" nor "27/27": the checks count nothing
