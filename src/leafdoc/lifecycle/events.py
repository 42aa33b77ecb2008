"""The named, typed events of a training run, from its first batch to its card: what `leafdoc train`'s progress
bar, a service job's row and an experiment's stream are made from.

The trainer's own (train/events.py: Batch, Epoch, Checkpointed, Resumed, Restarted) are defined beside it,
since train/ imports nothing above it; the run's later steps (Evaluating, Calibrating) are lifecycle.training's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from leafdoc.train.events import Batch, Checkpointed, Epoch, Restarted, Resumed, TrainEvent

__all__ = [
    "Batch",
    "Calibrating",
    "Checkpointed",
    "Epoch",
    "Evaluating",
    "OnEvent",
    "Restarted",
    "Resumed",
    "TrainEvent",
]


@dataclass(frozen=True)
class Evaluating(TrainEvent):
    """Training is done; the `n` test images are being scored with the exported model."""

    kind: ClassVar[str] = "evaluate"
    n: int


@dataclass(frozen=True)
class Calibrating(TrainEvent):
    """The not-a-leaf check is being fitted (with these folders of non-leaf photos), and the unlike-training
    check with these folders of field photos, if any."""

    kind: ClassVar[str] = "calibrate"
    nonleaf_dirs: list[str]
    field_dirs: list[str] = field(default_factory=list)


OnEvent = Callable[[TrainEvent], None]
