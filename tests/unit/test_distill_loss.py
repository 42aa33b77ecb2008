"""The distillation loss of benchmarks/distill.py: with alpha = 0 it is the cross-entropy the hard-label arm is
meant to train with; with alpha = 1 it is smallest, with zero gradient, where the student's logits equal the
teacher's; and it matches the formula computed independently in NumPy."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.unit

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from distill_loss import distillation_loss, pack_targets  # noqa: E402


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _numpy_loss(labels, teacher, student, alpha, t):
    hard = -_log_softmax(student)[np.arange(len(labels)), labels]
    pt = np.exp(_log_softmax(teacher / t))
    kl = (pt * (np.log(pt) - _log_softmax(student / t))).sum(axis=1)
    return alpha * t * t * kl + (1 - alpha) * hard


@pytest.fixture
def example():
    rng = np.random.default_rng(0)
    labels = np.array([0, 3, 1, 4, 2])
    teacher = rng.normal(0, 3, (5, 5))
    student = rng.normal(0, 3, (5, 5))
    return labels, teacher, student


def _loss(alpha, t, labels, teacher, student) -> np.ndarray:
    fn = distillation_loss(alpha, t)
    return np.asarray(fn(pack_targets(labels, teacher), student.astype(np.float32)))


def test_alpha_zero_is_the_cross_entropy(example):
    import keras

    labels, teacher, student = example
    ce = keras.losses.sparse_categorical_crossentropy(labels, student.astype(np.float32), from_logits=True)
    got = _loss(0.0, 4.0, labels, teacher, student)
    np.testing.assert_allclose(got, np.asarray(ce), rtol=1e-5)
    # and the teacher's logits do not enter it
    np.testing.assert_allclose(_loss(0.0, 4.0, labels, teacher * 0 + 7, student), got, rtol=1e-5)


def test_alpha_one_is_zero_with_zero_gradient_at_the_teachers_logits(example):
    import tensorflow as tf

    labels, teacher, _ = example
    fn = distillation_loss(1.0, 4.0)
    y = tf.constant(pack_targets(labels, teacher))
    z = tf.Variable(teacher.astype(np.float32))
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(fn(y, z))
    grad = tape.gradient(value, z).numpy()
    assert abs(float(value)) < 1e-5
    assert np.abs(grad).max() < 1e-5
    # Anywhere else it is larger: the teacher's logits are the minimum the soft term pulls the student to.
    rng = np.random.default_rng(1)
    for _ in range(5):
        moved = teacher + rng.normal(0, 0.5, teacher.shape)
        assert (_loss(1.0, 4.0, labels, teacher, moved) > 1e-4).all()


@pytest.mark.parametrize("alpha,t", [(0.7, 4.0), (0.5, 2.0), (1.0, 1.0)])
def test_matches_numpy(example, alpha, t):
    labels, teacher, student = example
    np.testing.assert_allclose(
        _loss(alpha, t, labels, teacher, student), _numpy_loss(labels, teacher, student, alpha, t), rtol=1e-4
    )
