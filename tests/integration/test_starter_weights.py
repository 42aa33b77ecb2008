"""`--weights starter`: a new model starts from the backbone of leafdoc's starter model (ImageNet's EfficientNet-Lite0
weights, then taught PlantVillage's leaf diseases), `leafdoc train`'s default for that backbone where models/starter
is (a lab's look-alike classes: 90.2% of unseen photos against 81.8% from ImageNet's weights, docs/training.md), and
ImageNet's where it is not. The backbone alone: not the starter's head, nor its checks."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from leafdoc.core.errors import ConfigError
from leafdoc.modelfolder import starter_model_dir
from leafdoc.train.backbones import build_backbone, weights_provenance
from leafdoc.train.config import TrainConfig

pytestmark = pytest.mark.integration


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_starter_weights_are_the_starters_backbone_exactly(tmp_path):
    import keras

    starter = keras.saving.load_model(starter_model_dir() / "model.keras", compile=False).get_layer("backbone")
    built = build_backbone("efficientnet_lite0", "starter", 64)  # any size: the starter was trained at 160 px
    assert _same(built.get_weights(), starter.get_weights())
    imagenet = build_backbone("efficientnet_lite0", "imagenet", 64, cache_dir=tmp_path)
    assert not _same(imagenet.get_weights(), starter.get_weights())  # what it learnt is in them
    provenance = weights_provenance("efficientnet_lite0", "starter")
    file_sha = hashlib.sha256((starter_model_dir() / "model.keras").read_bytes()).hexdigest()
    assert provenance["sha256"] == file_sha and "CC BY-SA 3.0" in provenance["licence"]


def test_the_default_is_the_starters_backbone_where_it_is_and_imagenets_where_not(monkeypatch, tmp_path):
    assert TrainConfig().weights == "starter"
    assert TrainConfig(weights="imagenet").weights == "imagenet"  # named, it is kept
    assert TrainConfig(backbone="mobilenet_v2").weights == "imagenet"  # not the starter's backbone
    monkeypatch.setattr("leafdoc.train.config.starter_model_dir", lambda: tmp_path / "no-starter")
    assert TrainConfig().weights == "imagenet"  # an installed leafdoc without models/


def test_starter_weights_say_what_to_do_when_they_cannot_be_had(monkeypatch, tmp_path):
    with pytest.raises(ConfigError) as err:
        build_backbone("efficientnet_lite1", "starter", 32)
    assert "efficientnet_lite0" in str(err.value) and "--weights imagenet" in err.value.hint
    monkeypatch.setattr("leafdoc.modelfolder.starter_model_dir", lambda: tmp_path / "no-starter")
    with pytest.raises(ConfigError) as err:
        build_backbone("efficientnet_lite0", "starter", 32)
    assert "no-starter" in str(err.value) and "starter model is not there" in str(err.value)
    assert "--weights imagenet" in err.value.hint


def test_a_retrain_of_a_model_from_the_starters_backbone_runs_where_the_starter_is_not(monkeypatch, tmp_path):
    """The service retrains with the serving model's options; a lab's model trained with the default (`weights:
    starter`), served where models/starter is not (the worker image), is retrained from ImageNet's weights, not
    refused."""
    import json
    from types import SimpleNamespace

    from leafdoc.service.training import resolve_config

    card = json.loads((starter_model_dir() / "card.json").read_text())
    card["training"] = {**card["training"], "weights": "starter"}
    serving = SimpleNamespace(serving=lambda: SimpleNamespace(version=2), get=lambda v: SimpleNamespace(card=card))
    assert resolve_config(serving, None).weights == "starter"
    monkeypatch.setattr("leafdoc.train.config.starter_model_dir", lambda: tmp_path / "no-starter")
    assert resolve_config(serving, None).weights == "imagenet"
    assert resolve_config(serving, {"weights": "none"}).weights == "none"  # the request's word still wins
