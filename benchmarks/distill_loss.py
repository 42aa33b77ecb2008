"""The knowledge-distillation loss of benchmarks/distill.py (Hinton et al., 2015), on its own so a unit test can
check it without training anything.

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(label, student)

The T^2 keeps the soft term's gradients the same size whatever T is (they shrink as 1/T^2). alpha = 0 is plain
cross-entropy on the hard labels, so both arms of the benchmark train with this one function.

Keras' losses take (y_true, y_pred); here y_true packs each photo's label and the teacher's logits for it:
column 0 the class index, columns 1..C the teacher's pre-softmax scores; y_pred is the student's logits.
"""

from __future__ import annotations

import numpy as np

TEMPERATURE = 4.0  # the usual values (Hinton et al.; Keras' distillation example), fixed before any run
ALPHA = 0.7


def pack_targets(labels: np.ndarray, teacher_logits: np.ndarray) -> np.ndarray:
    """(N,) class indices and (N, C) teacher logits -> the (N, 1 + C) float32 y_true the loss reads."""
    labels = np.asarray(labels).reshape(-1, 1)
    return np.concatenate([labels, teacher_logits], axis=1).astype(np.float32)


def distillation_loss(alpha: float = ALPHA, temperature: float = TEMPERATURE):
    """A Keras loss function (per-photo losses) for targets made by `pack_targets` and the student's logits."""
    from keras import ops

    def loss(y_true, student_logits):
        label = ops.cast(y_true[:, 0], "int32")
        teacher = y_true[:, 1:]
        log_p = ops.log_softmax(student_logits, axis=-1)
        hard = -ops.sum(ops.one_hot(label, ops.shape(student_logits)[-1]) * log_p, axis=-1)
        log_pt = ops.log_softmax(teacher / temperature, axis=-1)
        log_ps = ops.log_softmax(student_logits / temperature, axis=-1)
        soft = ops.sum(ops.exp(log_pt) * (log_pt - log_ps), axis=-1)
        return alpha * temperature**2 * soft + (1.0 - alpha) * hard

    loss.__name__ = f"distill_a{alpha:g}_t{temperature:g}"
    return loss
