"""`--weights starter`: a new model starts from the backbone of leafdoc's starter model (ImageNet's EfficientNet-Lite0
weights, then taught PlantVillage's leaf diseases), `leafdoc train`'s default for that backbone where models/starter
is (a lab's look-alike classes: 90.2% of unseen photos against 81.8% from ImageNet's weights, docs/training.md), and
ImageNet's where it is not. The backbone alone: not the starter's head, nor its checks."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from tests.conftest import make_leaf_folder

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


def test_a_warm_start_loads_no_starting_weights_and_keeps_where_the_backbone_began(monkeypatch, tmp_path):
    """`leafdoc train --init-from` takes the backbone from the parent model and loads nothing before it: a lab's
    model made from the starter's backbone (the default) is retrained where models/starter is not (an installed
    leafdoc, the worker image), and the new card says where the backbone began (the parent's `pretrained`)."""
    import json

    import keras
    from typer.testing import CliRunner

    from leafdoc.cli.main import app

    starter = keras.saving.load_model(starter_model_dir() / "model.keras", compile=False).get_layer("backbone")
    args = ["train", "--data", str(make_leaf_folder(tmp_path / "leaves", per_class=5)), "--image-size", "48"]
    args += ["--epochs", "1", "--fine-tune-epochs", "0", "--batch-size", "8"]
    env = {"LEAFDOC_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    made = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "parent")], env=env)
    assert made.exit_code == 0, made.output
    parent = json.loads((tmp_path / "parent" / "card.json").read_text())
    assert parent["weights"] == "starter" and parent["pretrained"]["file"] == "models/starter/model.keras"

    monkeypatch.setattr("leafdoc.modelfolder.starter_model_dir", lambda: tmp_path / "no-starter")
    monkeypatch.setattr("leafdoc.train.config.starter_model_dir", lambda: tmp_path / "no-starter")
    child_args = [*args, "--out", str(tmp_path / "child"), "--init-from", str(tmp_path / "parent")]
    retrained = CliRunner().invoke(app, child_args, env=env)
    assert retrained.exit_code == 0, retrained.output
    assert "Starting from the backbone of leafdoc's starter model" not in retrained.output  # from the parent's
    child = json.loads((tmp_path / "child" / "card.json").read_text())
    assert child["warm_start"] == "all" and child["weights"] == "starter"
    assert child["pretrained"] == parent["pretrained"]
    backbone = keras.saving.load_model(tmp_path / "child" / "model.keras", compile=False).get_layer("backbone")
    assert _same(backbone.get_weights(), starter.get_weights())  # the parent's, frozen: the starter's exactly
    # Without models/starter, a fresh start of such a model has nothing to begin from: there, ImageNet's. It says so
    # before it ingests and caches the photos (minutes on a big folder), not after.
    fresh_env = {**env, "LEAFDOC_HOME": str(tmp_path / "fresh-home")}
    failed = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "fresh"), "--weights", "starter"], env=fresh_env)
    assert isinstance(failed.exception, ConfigError) and "no-starter" in str(failed.exception)
    assert "--weights imagenet" in failed.exception.hint
    stored = tmp_path / "fresh-home" / "store", tmp_path / "fresh-home" / "cache"
    assert not any(any(d.rglob("*")) for d in stored if d.exists()), "photos stored and cached before the check"


def test_a_service_retrain_keeps_the_starters_weights_word_and_a_fresh_start_falls_back(monkeypatch, tmp_path):
    """The service retrains with the serving model's options. Warm-started (the default), a lab's model trained with
    `weights: starter` keeps that word: nothing is loaded. A fresh start (`warm_start: false`) where models/starter is
    not (the worker image) starts from ImageNet's weights instead of being refused."""
    import json
    from types import SimpleNamespace

    from leafdoc.service.training import resolve_config

    card = json.loads((starter_model_dir() / "card.json").read_text())
    card["training"] = {**card["training"], "weights": "starter"}
    serving = SimpleNamespace(serving=lambda: SimpleNamespace(version=2), get=lambda v: SimpleNamespace(card=card))
    assert resolve_config(serving, None).weights == "starter"
    monkeypatch.setattr("leafdoc.train.config.starter_model_dir", lambda: tmp_path / "no-starter")
    assert resolve_config(serving, None).weights == "starter"
    assert resolve_config(serving, None, warm_start=False).weights == "imagenet"
    assert resolve_config(serving, {"weights": "none"}, warm_start=False).weights == "none"  # the request's word wins
