"""The named, typed events of a training run, from its first batch to its card: what `leafdoc train`'s progress
bar, a service job's row and an experiment's stream are made from. `Event` is the one base of every typed event
in leafdoc (an experiment's own stream, experiments/stream.py, derives from it too).

The trainer reports Batch, Epoch, Checkpointed, Resumed and Restarted; the run's later steps (Evaluating,
Calibrating) are lifecycle.training's. They all live here, beside the trainer, since train/ imports nothing above it.

Callers match on the class (`case Epoch(epoch=n)`), never on strings; `to_dict()` gives the flat record a
card's history, a job's row, MLflow and `--json` streams keep ({"event": kind, ...fields})."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import ClassVar


@dataclass(frozen=True)
class Event:
    """A typed event: its `kind` names it in the flat record, given where the class is defined
    (`class Batch(TrainEvent, kind="batch")`)."""

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, kind: str = "", **rest) -> None:
        super().__init_subclass__(**rest)
        if kind:
            cls.kind = kind

    def to_dict(self) -> dict:
        return {"event": self.kind, **asdict(self)}


@dataclass(frozen=True)
class TrainEvent(Event):
    """One of a training run's events (the classes below)."""


@dataclass(frozen=True)
class Batch(TrainEvent, kind="batch"):
    """A training batch finished: `batch` of `steps` in this epoch."""

    phase: str
    batch: int
    steps: int


@dataclass(frozen=True)
class Epoch(TrainEvent, kind="epoch"):
    """An epoch finished: its seconds and Keras' figures (loss, accuracy, val_loss, val_accuracy, ...)."""

    phase: str
    epoch: int
    seconds: float
    logs: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"event": self.kind, "phase": self.phase, "epoch": self.epoch, "seconds": self.seconds, **self.logs}


@dataclass(frozen=True)
class Checkpointed(TrainEvent, kind="checkpoint"):
    """The training state after `epoch` is saved in `folder` (a service job copies it to the shared store)."""

    phase: str
    epoch: int
    folder: str


@dataclass(frozen=True)
class Resumed(TrainEvent, kind="resume"):
    """Training continues from a checkpoint saved after `epoch` of `phase`."""

    phase: str
    epoch: int


@dataclass(frozen=True)
class Restarted(TrainEvent, kind="restart"):
    """A checkpoint was found but cannot be continued (`reason`): training starts from the first epoch."""

    reason: str


@dataclass(frozen=True)
class Evaluating(TrainEvent, kind="evaluate"):
    """Training is done; the `n` test images are being scored with the exported model."""

    n: int


@dataclass(frozen=True)
class Calibrating(TrainEvent, kind="calibrate"):
    """The not-a-leaf check is being fitted (with these folders of non-leaf photos), and the unlike-training
    check with these folders of field photos, if any."""

    nonleaf_dirs: list[str]
    field_dirs: list[str] = field(default_factory=list)


OnEvent = Callable[[TrainEvent], None]
