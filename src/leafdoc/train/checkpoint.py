"""Training state saved after every epoch, so that a run stopped part-way (Ctrl-C, a killed worker, the
end of a session) continues from its last finished epoch instead of its first.

A checkpoint folder holds the model's weights, the optimizer's slots and step count (a learning-rate
schedule goes on from where it was), the best epoch so far with its weights, the history, and early
stopping's count; state.json says which phase and epoch it was saved after and what it was trained
on. It is used only by a run with the same settings and the same split (its `key`); anything else
starts over, told which settings differ. Settings a later leafdoc added do not count as different while they are
at their defaults: a run is not lost to an upgrade between its stop and its resume (state.json keeps the settings).
The folder is replaced whole after each epoch (core.atomic.atomic_dir), so a kill while it is written leaves the
previous epoch's. A resumed run is not bit-identical to an uninterrupted one: the shuffling order starts again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from leafdoc.core.atomic import atomic_dir, atomic_write_json

VERSION = 1
STATE = "state.json"


def beside(out: Path) -> Path:
    """The checkpoint folder of a training run that writes the model folder `out`."""
    return Path(out).parent / f".{Path(out).name}.checkpoint"


def _hash_split(h, data):
    h.update(json.dumps(data.classes).encode())
    for part in ("train", "val"):
        idx = data.indices(part)
        h.update(part.encode())
        h.update(np.asarray([data.shas[i] for i in idx]).astype("S64").tobytes())
        h.update(np.asarray(data.y[idx], dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def fingerprint(cfg, data) -> str:
    """Settings and split: a checkpoint of other settings or other images must not be continued."""
    return _hash_split(hashlib.sha256(json.dumps(cfg.model_dump(mode="json"), sort_keys=True).encode()), data)


def split_key(data) -> str:
    """The classes and the training and validation photos alone (fingerprint without the settings)."""
    return _hash_split(hashlib.sha256(b"split"), data)


def defaults_of(cfg) -> dict:
    """Each setting's default, as model_dump(mode="json") writes it (a setting without one is left out)."""
    out = {}
    for name, field in type(cfg).model_fields.items():
        if not field.is_required():
            out[name] = field.get_default(call_default_factory=True)
    return type(cfg).model_construct(**out).model_dump(mode="json", include=set(out))


def differences(saved: dict, now: dict, defaults: dict) -> list[str]:
    """The settings a checkpoint saved with `saved` differs in from a run with `now`, as `name: saved -> now`.
    A setting `saved` lacks (a later leafdoc added it) differs only when it is not at its default."""
    out = []
    for name in sorted(set(saved) | set(now)):
        if name not in saved:
            if name in defaults and now[name] == defaults[name]:
                continue
            out.append(f"{name}: (none) -> {now[name]!r}")
        elif name not in now:
            out.append(f"{name}: {saved[name]!r} -> (no such setting now)")
        elif saved[name] != now[name]:
            out.append(f"{name}: {saved[name]!r} -> {now[name]!r}")
    return out


def clear(folder: Path) -> None:
    """Delete a checkpoint folder, and what a kill in the middle of a save left beside it (core.atomic.atomic_dir's
    names): once its model folder is written whole, a run's checkpoint has served."""
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    for left in folder.parent.glob(f".{folder.name}.*"):
        shutil.rmtree(left, ignore_errors=True)


class Checkpoint:
    def __init__(self, folder: Path, key: str, cfg=None, data=None):
        """`key`: fingerprint(cfg, data). With `cfg` and `data` the state also keeps the settings and the split's own
        key, so that a checkpoint whose key differs only by settings added since at their defaults is continued,
        and one that truly differs says which settings."""
        self.folder, self.key, self.cfg = Path(folder), key, cfg
        self.settings = cfg.model_dump(mode="json") if cfg is not None else None
        self.split = split_key(data) if data is not None else None
        self.ignored: str | None = None  # why a checkpoint found in the folder is not continued
        self.state = self._load()

    def _load(self) -> dict | None:
        path = self.folder / STATE
        if not path.is_file():
            return None
        try:
            state = json.loads(path.read_text())
        except ValueError:
            self.ignored = f"{path} is not readable JSON"
            return None
        if state.get("version") != VERSION:
            self.ignored = f"{self.folder} was written by another version of leafdoc"
        elif state.get("key") != self.key:
            self.ignored = self._why_not(state)
        return None if self.ignored else state

    def _why_not(self, state: dict) -> str | None:
        """Why a checkpoint of another key is not continued, or None when it differs only by settings added since
        at their defaults."""
        saved, split = state.get("settings"), state.get("split")
        if not isinstance(saved, dict) or split is None or self.settings is None:
            return f"{self.folder} was saved with other settings or another split"
        if split != self.split:
            return f"{self.folder} was saved on another split (other classes or photos)"
        changed = differences(saved, self.settings, defaults_of(self.cfg))
        if not changed:
            return None
        shown = "; ".join(changed[:4]) + (f"; and {len(changed) - 4} more" if len(changed) > 4 else "")
        return f"{self.folder} was saved with other settings ({shown})"

    def save(
        self,
        model,
        *,
        phase: str,
        phase_start: int,
        epoch: int,
        finished: bool,
        best: dict,
        stop,
        train_seconds: float,
        optimizer=None,
    ) -> None:
        """`optimizer`: the one training (default: the model's); another for a phase that trains part of the model
        on cached activations (trainer.fit's `fine_tune_cached`)."""
        state = {
            "version": VERSION,
            "key": self.key,
            "phase": phase,
            "phase_start": phase_start,
            "epoch": epoch,
            "finished": finished,
            "best": {"value": best["value"], "epoch": best["epoch"], "logs": best["logs"]},
            "history": best["history"],
            "stop": {"wait": int(stop.wait), "best": None if stop.best is None else float(stop.best)},
            "train_seconds": round(train_seconds, 3),  # so far, over every process that trained it
        }
        if self.settings is not None:
            state.update(settings=self.settings, split=self.split)
        with atomic_dir(self.folder) as tmp:
            np.savez(tmp / "weights.npz", *model.get_weights())
            np.savez(tmp / "optimizer.npz", *[np.asarray(v) for v in (optimizer or model.optimizer).variables])
            if best["weights"] is not None:
                np.savez(tmp / "best.npz", *best["weights"])
            atomic_write_json(tmp / STATE, state)
        self.state = state

    def arrays(self, name: str) -> list[np.ndarray] | None:
        path = self.folder / f"{name}.npz"
        if not path.is_file():
            return None
        with np.load(path) as z:
            return [z[f"arr_{i}"] for i in range(len(z.files))]

    def restore(self, model, trainee=None) -> bool:
        """Put the saved weights into `model` and the optimizer slots into the compiled model that trains (`trainee`:
        `model` itself, or a part of it trained on cached activations); False if they do not fit."""
        weights, slots = self.arrays("weights"), self.arrays("optimizer")
        if weights is None or slots is None or len(weights) != len(model.get_weights()):
            return False
        trainee = trainee or model
        opt = trainee.optimizer
        opt.build(trainee.trainable_variables)
        if len(slots) != len(opt.variables) or any(
            tuple(v.shape) != a.shape for v, a in zip(opt.variables, slots, strict=True)
        ):
            return False
        model.set_weights(weights)
        for v, a in zip(opt.variables, slots, strict=True):
            v.assign(a)
        return True

    def clear(self) -> None:
        clear(self.folder)
