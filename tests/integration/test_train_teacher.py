"""Distillation (TrainConfig.teacher, train/teacher.py): the training photos' targets come from the teacher file
in both phases on cached features and activations, so a teacher that names another class for every photo is what
the model learns; the validation photos keep their labels; a teacher file of other classes is refused."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.integration


def _teacher_file(path, data, names):
    """A teacher that gives each training photo the class `names` maps its label to, with certainty."""
    tr = data.indices("train")
    probs = np.zeros((len(tr), len(data.classes)), np.float32)
    labels = list(names.values())
    for k, i in enumerate(tr):
        probs[k, labels.index(names[data.classes[data.y[i]]])] = 1
    np.savez(path, shas=np.array([data.shas[i] for i in tr]), probs=probs, labels=np.array(labels))
    return path


def test_a_teacher_naming_other_classes_is_what_the_model_learns(tmp_path, settings, leaf_folder):
    from tests.conftest import LEARNS, TINY_CLASSES, fresh_accuracy
    from tests.integration.test_train_learns import _prepared

    from leafdoc.core.errors import ConfigError
    from leafdoc.lifecycle.training import train_model
    from leafdoc.train.config import TrainConfig

    cfg = TrainConfig(
        **{
            **LEARNS,
            "epochs": 6,
            "head_on_features": True,
            "fine_tune_epochs": 1,
            "fine_tune_fraction": 0.35,
            "fine_tune_cached": True,
            "restore_best": "last",
            "feature_views": 1,
            "learning_rate": 3e-3,
        }
    )
    data, _ = _prepared(settings, leaf_folder, "taught", cfg)
    # Each class's photos taught as the next class: the teacher's labels are a rotation of the true ones.
    rotated = dict(zip(TINY_CLASSES, TINY_CLASSES[1:] + TINY_CLASSES[:1], strict=True))
    teacher = _teacher_file(tmp_path / "teacher.npz", data, rotated)
    out = tmp_path / "model"
    # All of the loss the teacher's, at T = 1 (the temperature's arithmetic is test_teacher.py's).
    update = {"teacher": str(teacher), "teacher_weight": 1.0, "teacher_temperature": 1.0}
    card = train_model(cfg.model_copy(update=update), data, out).card
    assert [h["phase"] for h in card.history][-1] == "fine_tune"
    # Unseen photos of each class are answered as the teacher taught that class, not as their folder says ...
    assert fresh_accuracy(out, classes=TINY_CLASSES) <= 0.3
    from tests.conftest import fresh_photos

    from leafdoc.inference.predictor import Predictor

    predictor = Predictor(out)
    photos = fresh_photos(TINY_CLASSES, 20)
    x = np.stack([predictor.preprocess(f) for f, _ in photos])
    predicted = predictor.predict_arrays(x, ["probabilities"])["probabilities"].argmax(axis=1)
    as_taught = np.mean([predictor.labels[p] == rotated[c] for p, (_, c) in zip(predicted, photos, strict=True)])
    assert as_taught >= 0.6, as_taught
    # ... while validation is scored against the labels: the taught model is wrong on it.
    assert card.history[-1]["val_accuracy"] <= 0.34

    wrong = tmp_path / "other-classes.npz"
    np.savez(wrong, shas=np.array(["x"]), probs=np.array([[0.5, 0.5]], np.float32), labels=np.array(["a", "b"]))
    with pytest.raises(ConfigError, match="other-classes.npz: the teacher's classes are not this training's"):
        train_model(cfg.model_copy(update={"teacher": str(wrong)}), data, tmp_path / "m2")
    assert not (tmp_path / "m2").exists()
