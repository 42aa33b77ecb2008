"""The named, typed events of `leafdoc experiment`'s stream: a run starts, a step makes progress, a message
for the person watching, and each run's training events (train/events.py) with the run's name.

Callers match on the class (`case InRun(run=name, event=Epoch(epoch=n))`), never on strings; `to_dict()` gives
the flat record ({"event": kind, ...fields}; a run's training event keeps its own kind, with "run" added)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from leafdoc.train.events import Event, TrainEvent


@dataclass(frozen=True)
class ExperimentEvent(Event):
    """One of an experiment's own events (the classes below)."""


@dataclass(frozen=True)
class RunStarted(ExperimentEvent, kind="run"):
    """Run `run` (number `index` of `total`: a recipe's run, an Optuna trial, the pipeline timing) starts."""

    run: str
    index: int
    total: int
    note: str | None = None


@dataclass(frozen=True)
class Progress(ExperimentEvent, kind="progress"):
    """A step that is not a training run (ingesting, caching at a size) has done `done` of `total`."""

    what: str
    done: int
    total: int


@dataclass(frozen=True)
class Message(ExperimentEvent, kind="message"):
    """A line for the person watching: a run reused, trained again and why, a trial pruned, ..."""

    text: str


@dataclass(frozen=True)
class InRun(ExperimentEvent):
    """One of run `run`'s training events (Batch, Epoch, Evaluating, ...)."""

    run: str
    event: TrainEvent

    def to_dict(self) -> dict:
        return {**self.event.to_dict(), "run": self.run}


OnExperimentEvent = Callable[[ExperimentEvent], None]
