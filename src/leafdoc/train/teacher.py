"""Distillation: a training photo's target blended with a teacher's probabilities for it (TrainConfig.teacher).

The teacher file is an .npz of `shas` (the photos' sha256), `probs` (one row of probabilities a photo) and `labels`
(the classes, in the rows' order): benchmarks/starter_ensemble.py --teacher-out writes one from the served
probabilities of one or more models (an ensemble's average, softened by a temperature). A photo's target is then
(1 - teacher_weight) x its one-hot label + teacher_weight x the teacher's row; photos the file has no row for keep
their one-hot label. Only the training photos are taught: validation keeps the labels, so its loss stays comparable
with runs without a teacher. The phases on cached features and activations (train/cached.py) read it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from leafdoc.core.errors import ConfigError


def read_teacher(path: str | Path, classes: list[str]) -> dict[str, np.ndarray]:
    """sha256 -> probability row, in `classes`' order. A file that is not a teacher file, or whose classes are not
    the training data's, is refused with what to do."""
    path = Path(path)
    hint = "Write it with benchmarks/starter_ensemble.py --teacher-out FILE from models of the same classes."
    try:
        with np.load(path, allow_pickle=False) as z:
            shas, probs, labels = z["shas"], z["probs"], [str(x) for x in z["labels"]]
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(f"{path.name}: not a teacher file (.npz of shas, probs, labels): {e}", hint=hint) from None
    if probs.ndim != 2 or len(shas) != len(probs) or probs.shape[1] != len(labels):
        raise ConfigError(f"{path.name}: {len(shas)} photos but probabilities of shape {probs.shape}", hint=hint)
    if sorted(labels) != sorted(classes):
        raise ConfigError(
            f"{path.name}: the teacher's classes are not this training's ({len(labels)} against {len(classes)}; "
            f"e.g. {sorted(set(labels) ^ set(classes))[:3]})",
            hint=hint,
        )
    if not np.all(np.isfinite(probs)) or np.any(probs < 0) or not np.allclose(probs.sum(1), 1, atol=1e-3):
        raise ConfigError(f"{path.name}: rows that are not probabilities (negative, NaN, sum not 1)", hint=hint)
    order = [labels.index(c) for c in classes]
    rows = probs[:, order].astype(np.float32)
    return {str(s): rows[i] for i, s in enumerate(shas)}


def taught(rows: dict[str, np.ndarray], weight: float, shas: list[str], indices: np.ndarray, y: np.ndarray):
    """One-hot rows `y` (for the photos `indices` of `shas`) blended with the teacher's rows where it has one."""
    out = np.array(y, dtype=np.float32, copy=True)
    for k, i in enumerate(indices):
        row = rows.get(shas[i])
        if row is not None:
            out[k] = (1 - weight) * out[k] + weight * row
    return out


def teacher_targets(cfg, data):
    """A function (indices, one-hot rows) -> the training targets for cfg.teacher, or None without one."""
    if not cfg.teacher:
        return None
    rows = read_teacher(cfg.teacher, list(data.classes))
    return lambda indices, y: taught(rows, cfg.teacher_weight, data.shas, indices, y)
