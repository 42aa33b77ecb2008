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


def render_bar(width: int) -> str:
    """The training bar in the middle of an epoch on a terminal `width` columns wide, after an epoch's figures."""
    said = io.StringIO()
    console = Console(file=said, width=width)
    bar = printing.training_bar(disable=False)
    bar.live.console = console
    log = printing.TrainingLog(bar, bar.add_task("training", total=None, info=""), {"fine_tune": 20})
    figures = {"loss": 0.1234, "accuracy": 0.9871, "val_loss": 0.4561, "val_accuracy": 0.9123}
    log(events.Epoch("fine_tune", 12, 40.0, figures))
    log(events.Batch("fine_tune", 123, 456))
    console.print(bar.make_tasks_table(bar.tasks))
    return said.getvalue()


def test_the_training_bar_fits_an_80_column_terminal_whole():
    """At 80 columns the bar's fixed 40 columns squeezed its count into "123…" over two lines and the elapsed time
    into "0:0…"; now the bar takes what the rest leaves, and a narrow terminal shows the validation accuracy alone."""
    for width in (60, 80, 100):
        [line] = render_bar(width).splitlines()
        assert "fine_tune epoch" in line and "123/456 batches" in line and "0:00:" in line, (width, line)
        assert line.rstrip().endswith("val acc 0.912") and "…" not in line, (width, line)
    [wide] = render_bar(140).splitlines()
    assert "loss 0.123 acc 0.987, val loss 0.456 acc 0.912" in wide and "123/456 batches" in wide
