"""Distillation (Hinton et al. 2015): a model learns from a teacher's probabilities for its training photos as well as
from their labels (TrainConfig.teacher).

The teacher file is an .npz of `shas` (the photos' sha256), `probs` (one row of probabilities a photo, as served) and
`labels` (the classes, in the rows' order): benchmarks/starter_ensemble.py --teacher-out writes one from one or more
models (an ensemble's average). Each training photo's loss is then

    teacher_weight x T^2 x KL(softmax(log teacher / T) || softmax(log student / T)) + (1 - teacher_weight) x CE(label)

with T = teacher_temperature: at T above 1 the runners-up the teacher sees (which look-alike a photo resembles) weigh
in; T^2 keeps that term's gradients the size of the label's. The student's own probabilities stay sharp: its log
probabilities divided by T are its logits divided by T, up to a constant the softmax takes away, so the model needs no
other output. Photos the file has no row for (the field photos), and the validation photos, are taught by their label
alone, by its cross-entropy: validation's loss is the same figure as in a run without a teacher. The phases on cached
features and activations (train/cached.py) read it."""

from __future__ import annotations

from functools import lru_cache
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


def packed(rows: dict[str, np.ndarray], shas: list[str], indices: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The targets the loss reads: each photo's one-hot label `y` beside the teacher's row for it (zeros where the
    teacher has none: that photo is taught by its label alone), as (N, 2C)."""
    teacher = np.zeros_like(np.asarray(y, dtype=np.float32))
    for k, i in enumerate(indices):
        row = rows.get(shas[i])
        if row is not None:
            teacher[k] = row
    return np.concatenate([np.asarray(y, np.float32), teacher], axis=1)


@lru_cache(maxsize=1)
def _read_once(path: str, stamp: tuple[int, int], classes: tuple[str, ...]) -> dict[str, np.ndarray]:
    """read_teacher, once per run: the head's phase and the fine-tuning's both ask (`stamp`: the file's mtime and size,
    so a file written again is read again)."""
    return read_teacher(path, list(classes))


def teacher_targets(cfg, data):
    """A function (indices, one-hot rows, training) -> the targets `distillation_loss` reads, or None without a
    teacher. Validation photos (training False) are taught by their label in both halves."""
    if not cfg.teacher:
        return None
    try:
        st = Path(cfg.teacher).stat()
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = (0, 0)  # read_teacher says what is wrong with it
    rows = _read_once(str(cfg.teacher), stamp, tuple(data.classes))
    return lambda indices, y, training: packed(rows if training else {}, data.shas, indices, y)


def distillation_loss(weight: float, temperature: float):
    """A Keras loss of packed targets (`packed`) and the model's probabilities (per photo)."""
    from keras import ops

    def loss(y_true, probs):
        n = ops.shape(probs)[-1]
        label, teacher = y_true[:, :n], y_true[:, n:]
        log_p = ops.log(ops.clip(probs, 1e-30, 1.0))
        hard = -ops.sum(label * log_p, axis=-1)
        log_pt = ops.log_softmax(ops.log(ops.clip(teacher, 1e-30, 1.0)) / temperature, axis=-1)
        log_ps = ops.log_softmax(log_p / temperature, axis=-1)
        soft = ops.sum(ops.exp(log_pt) * (log_pt - log_ps), axis=-1)
        taught = ops.cast(ops.sum(teacher, axis=-1) > 0.5, probs.dtype)  # a row of zeros: no teacher
        return taught * (weight * temperature**2 * soft + (1.0 - weight) * hard) + (1.0 - taught) * hard

    loss.__name__ = f"distill_w{weight:g}_t{temperature:g}"
    return loss
