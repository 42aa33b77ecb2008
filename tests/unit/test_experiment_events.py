"""`leafdoc experiment`'s stream is typed (experiments/stream.py) and the CLI decodes it in one place
(printing.experiment_events): the bars follow runs, steps and batches, epochs and messages are logged."""

from __future__ import annotations

import pytest
from rich.console import Console

from leafdoc.cli import printing
from leafdoc.experiments.stream import InRun, Message, Progress, RunStarted
from leafdoc.train.events import Batch, Epoch, Evaluating

pytestmark = pytest.mark.unit


def test_the_cli_shows_each_kind_of_experiment_event(monkeypatch):
    console = Console(record=True, width=200)
    monkeypatch.setattr(printing, "console", console)
    bar = printing.training_bar(disable=True)
    on_event = printing.experiment_events(bar)
    runs, steps = bar.task_ids
    task = {t.id: t for t in bar.tasks}

    on_event(RunStarted("base", 1, 3, "from scratch"))
    assert (task[runs].description, task[runs].completed, task[runs].total) == ("run base", 1, 3)
    on_event(Progress("caching 32px/none3", 5, 10))
    assert (task[steps].description, task[steps].completed, task[steps].total) == ("caching 32px/none3", 5, 10)
    on_event(InRun("base", Batch("scratch", 2, 4)))
    assert (task[steps].description, task[steps].completed, task[steps].total) == ("base: scratch epoch", 2, 4)
    on_event(InRun("base", Epoch("scratch", 2, 3.0, {"loss": 0.5, "val_accuracy": 0.75})))
    on_event(InRun("base", Evaluating(12)))
    assert task[steps].description == "base: evaluating"
    on_event(Message("longer: reusing the run finished earlier (test accuracy 80.0%)"))
    logged = console.export_text()
    assert "base scratch epoch 2: loss=0.500 val_accuracy=0.750 (3s)" in logged
    assert "longer: reusing the run finished earlier (test accuracy 80.0%)" in logged


def test_a_runs_training_event_keeps_its_flat_record_with_the_run_name():
    assert InRun("base", Epoch("head", 1, 2.0, {"loss": 1.0})).to_dict() == {
        "event": "epoch",
        "phase": "head",
        "epoch": 1,
        "seconds": 2.0,
        "loss": 1.0,
        "run": "base",
    }
    assert Message("hi").to_dict() == {"event": "message", "text": "hi"}
