"""train/teacher.py: a teacher's row packed beside a photo's one-hot label, rows put in the training's class order,
photos without a row taught by their label alone; the loss is Hinton's; files that are not teacher files refused with
their name; the option only where it runs (the cached phases) and never from a training job's client."""

from __future__ import annotations

import numpy as np
import pytest

from leafdoc.core.errors import ConfigError
from leafdoc.train.config import TrainConfig
from leafdoc.train.teacher import distillation_loss, packed, read_teacher

pytestmark = pytest.mark.unit


def test_targets_pack_the_label_beside_the_teachers_row_in_the_trainings_class_order(tmp_path):
    f = tmp_path / "t.npz"
    # The file's classes in another order than the training's: its row [0.9 b, 0.1 a] is [0.1, 0.9] for (a, b).
    np.savez(f, shas=np.array(["s1"]), probs=np.array([[0.9, 0.1]], np.float32), labels=np.array(["b", "a"]))
    rows = read_teacher(f, ["a", "b"])
    np.testing.assert_allclose(rows["s1"], [0.1, 0.9])
    y = np.eye(2, dtype=np.float32)[[0, 0]]  # both photos labelled a
    out = packed(rows, ["s1", "s2"], np.array([0, 1]), y)
    np.testing.assert_allclose(out, [[1, 0, 0.1, 0.9], [1, 0, 0, 0]])  # s2 has no row: zeros, its label alone
    np.testing.assert_allclose(y, [[1, 0], [1, 0]])  # the labels given are not changed in place


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def test_the_loss_is_hintons_on_the_students_probabilities():
    """weight x T^2 x KL(teacher at T || student at T) + (1 - weight) x CE(label), the student's softened
    probabilities taken from its probabilities (its logits up to a constant); computed apart in NumPy."""
    rng = np.random.default_rng(0)
    logits, teacher_logits = rng.normal(size=(5, 4)) * 3, rng.normal(size=(5, 4)) * 3
    probs, teacher = np.exp(_log_softmax(logits)), np.exp(_log_softmax(teacher_logits))
    labels = np.eye(4)[[0, 1, 2, 3, 0]]
    for weight, t in ((0.7, 4.0), (1.0, 2.0), (0.3, 1.0)):
        pt, log_ps = np.exp(_log_softmax(teacher_logits / t)), _log_softmax(logits / t)
        kl = (pt * (np.log(pt) - log_ps)).sum(1)
        expected = weight * t * t * kl + (1 - weight) * -(labels * _log_softmax(logits)).sum(1)
        got = distillation_loss(weight, t)(
            np.concatenate([labels, teacher], 1).astype(np.float32), probs.astype(np.float32)
        )
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-5)
    # A photo without a teacher's row (a field photo, a validation photo) has the label's cross-entropy alone, the
    # loss of a run without a teacher, whatever the weight and temperature.
    no_row = np.concatenate([labels, np.zeros_like(labels)], 1).astype(np.float32)
    got = distillation_loss(0.7, 4.0)(no_row, probs.astype(np.float32))
    np.testing.assert_allclose(np.asarray(got), -(labels * _log_softmax(logits)).sum(1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"probs": np.ones((1, 2)) / 2, "labels": np.array(["a", "b"])}, "not a teacher file"),
        ({"shas": np.array(["s"]), "probs": np.ones((1, 3)) / 3, "labels": np.array(["a", "b"])}, "shape"),
        ({"shas": np.array(["s"]), "probs": np.array([[0.7, 0.7]]), "labels": np.array(["a", "b"])}, "not probab"),
        ({"shas": np.array(["s"]), "probs": np.array([[np.nan, 1.0]]), "labels": np.array(["a", "b"])}, "not probab"),
        ({"shas": np.array(["s"]), "probs": np.ones((1, 2)) / 2, "labels": np.array(["a", "c"])}, "classes are not"),
    ],
)
def test_a_file_that_is_not_a_teacher_for_these_classes_is_refused_by_name(tmp_path, arrays, message):
    f = tmp_path / "bad-teacher.npz"
    np.savez(f, **arrays)
    with pytest.raises(ConfigError, match=message) as e:
        read_teacher(f, ["a", "b"])
    assert "bad-teacher.npz" in str(e.value) and str(tmp_path) not in str(e.value)
    (tmp_path / "text.npz").write_text("no")
    with pytest.raises(ConfigError, match="text.npz: not a teacher file"):
        read_teacher(tmp_path / "text.npz", ["a", "b"])


def test_the_teacher_only_with_the_cached_phases_and_never_from_a_job_client():
    from pydantic import ValidationError

    from leafdoc.service.schemas import TrainingJobCreate

    TrainConfig(teacher="t.npz", fine_tune_epochs=2, fine_tune_cached=True)
    with pytest.raises(ValidationError, match="cached features and activations only"):
        TrainConfig(teacher="t.npz", fine_tune_epochs=2)  # fine-tuning on the photos
    with pytest.raises(ValidationError, match="cached features and activations only"):
        TrainConfig(teacher="t.npz", head_on_features=False)
    with pytest.raises(ValidationError, match="teacher"):
        TrainingJobCreate.model_validate({"options": {"teacher": "/etc/passwd"}})
    TrainingJobCreate.model_validate({"options": {"epochs": 3}})


def test_a_run_reads_its_teacher_file_once_and_again_only_when_it_is_written_again(tmp_path, monkeypatch):
    """The head's phase and the fine-tuning's each ask for the targets: one read of the file (10 MB for the starter),
    and a file written again between two runs of one process is read again."""
    import os
    from types import SimpleNamespace

    from leafdoc.train import teacher

    f = tmp_path / "t.npz"
    np.savez(f, shas=np.array(["s1"]), probs=np.array([[0.9, 0.1]], np.float32), labels=np.array(["a", "b"]))
    reads = []
    monkeypatch.setattr(
        teacher, "read_teacher", lambda path, classes: reads.append(path) or {"s1": np.array([0.9, 0.1])}
    )
    teacher._read_once.cache_clear()
    cfg, data = SimpleNamespace(teacher=str(f)), SimpleNamespace(classes=["a", "b"], shas=["s1"])
    y = np.eye(2, dtype=np.float32)[[1]]
    first, second = teacher.teacher_targets(cfg, data), teacher.teacher_targets(cfg, data)
    np.testing.assert_allclose(first(np.array([0]), y, True), second(np.array([0]), y, True))
    assert len(reads) == 1
    np.savez(f, shas=np.array(["s1", "s2"]), probs=np.full((2, 2), 0.5, np.float32), labels=np.array(["a", "b"]))
    os.utime(f, ns=(1, 1))  # another mtime, as a file written later has
    teacher.teacher_targets(cfg, data)
    assert len(reads) == 2
    teacher._read_once.cache_clear()
