"""train/teacher.py: a teacher's row blended into a photo's one-hot target by its weight, rows put in the training's
class order, photos without a row left as labelled; files that are not teacher files refused with their name; the
option only where it runs (the cached phases) and never from a training job's client."""

from __future__ import annotations

import numpy as np
import pytest

from leafdoc.core.errors import ConfigError
from leafdoc.train.config import TrainConfig
from leafdoc.train.teacher import read_teacher, taught

pytestmark = pytest.mark.unit


def test_targets_blend_the_label_with_the_teachers_row_in_the_trainings_class_order(tmp_path):
    f = tmp_path / "t.npz"
    # The file's classes in another order than the training's: its row [0.9 b, 0.1 a] is [0.1, 0.9] for (a, b).
    np.savez(f, shas=np.array(["s1"]), probs=np.array([[0.9, 0.1]], np.float32), labels=np.array(["b", "a"]))
    rows = read_teacher(f, ["a", "b"])
    np.testing.assert_allclose(rows["s1"], [0.1, 0.9])
    y = np.eye(2, dtype=np.float32)[[0, 0]]  # both photos labelled a
    out = taught(rows, 0.5, ["s1", "s2"], np.array([0, 1]), y)
    np.testing.assert_allclose(out, [[0.55, 0.45], [1.0, 0.0]])  # s2 has no row: its label as it is
    np.testing.assert_allclose(y, [[1, 0], [1, 0]])  # the labels given are not changed in place


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
