"""A lab's model made from the starter's backbone (`leafdoc train --init-from models/starter`, its defaults otherwise)
gets the other-leaves check from the bank of that backbone (src/leafdoc/inference/leaf_bank_starter.npz): the
shipped bank's probe is the shipped starter's. Fails when the starter is retrained and the bank not made again
(scripts/build_leaf_bank.py says how), and when the check would be fitted against the ImageNet bank instead."""

from __future__ import annotations

import numpy as np
import pytest

from leafdoc.inference import otherleaves
from leafdoc.model_versions import starter_model_dir
from leafdoc.train.cached import _feature_net, _features
from leafdoc.train.config import TrainConfig
from leafdoc.train.trainer import build_model, warm_start

pytestmark = pytest.mark.integration


def _probe(model, size: int) -> np.ndarray:
    x = otherleaves.probe_image(size)[None].astype(np.float32)
    return _features(_feature_net(model), x, np.arange(1))[0]


def test_a_model_of_the_starters_backbone_is_fitted_against_the_starters_bank(tmp_path):
    cfg = TrainConfig(weights="none")  # the lab's defaults (224 px, frozen backbone); the backbone's weights copied
    prep = {"size": cfg.image_size, "framing": cfg.framing, "white_balance": cfg.white_balance}
    prep |= {"morphology": cfg.morphology, "morph_kernel": cfg.morph_kernel}
    labels = ["mine_a", "mine_b", "mine_c"]
    model = build_model(cfg, 3, tmp_path / "weights")
    assert warm_start(model, starter_model_dir(), labels) == "backbone"
    bank, refused = otherleaves.gate(labels, prep, _probe(model, cfg.image_size))
    assert refused is None, refused
    assert np.array_equal(bank.probe, otherleaves.Bank.load(otherleaves.STARTER_BANK_FILE).probe)
    assert "starter" in bank.source and len(bank.classes) >= 30
    # A backbone of neither bank (these random weights) gets no check, and the card would say why.
    bank, refused = otherleaves.gate(labels, prep, _probe(build_model(cfg, 3, tmp_path / "weights"), cfg.image_size))
    assert bank is None and "not the bank's" in refused["why_not"]
