"""What the trainer reports while it trains: named, typed events (lifecycle/events.py adds the run's later steps).

Callers match on the class (`case Epoch(epoch=n)`), never on strings; `to_dict()` gives the flat record a
card's history, a job's row, MLflow and `--json` streams keep ({"event": kind, ...fields})."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import ClassVar


@dataclass(frozen=True)
class TrainEvent:
    kind: ClassVar[str] = ""

    def to_dict(self) -> dict:
        return {"event": self.kind, **asdict(self)}


@dataclass(frozen=True)
class Batch(TrainEvent):
    """A training batch finished: `batch` of `steps` in this epoch."""

    kind: ClassVar[str] = "batch"
    phase: str
    batch: int
    steps: int


@dataclass(frozen=True)
class Epoch(TrainEvent):
    """An epoch finished: its seconds and Keras' figures (loss, accuracy, val_loss, val_accuracy, ...)."""

    kind: ClassVar[str] = "epoch"
    phase: str
    epoch: int
    seconds: float
    logs: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"event": self.kind, "phase": self.phase, "epoch": self.epoch, "seconds": self.seconds, **self.logs}


@dataclass(frozen=True)
class Checkpointed(TrainEvent):
    """The training state after `epoch` is saved in `folder` (a service job copies it to the shared store)."""

    kind: ClassVar[str] = "checkpoint"
    phase: str
    epoch: int
    folder: str


@dataclass(frozen=True)
class Resumed(TrainEvent):
    """Training continues from a checkpoint saved after `epoch` of `phase`."""

    kind: ClassVar[str] = "resume"
    phase: str
    epoch: int


@dataclass(frozen=True)
class Restarted(TrainEvent):
    """A checkpoint was found but cannot be continued (`reason`): training starts from the first epoch."""

    kind: ClassVar[str] = "restart"
    reason: str
