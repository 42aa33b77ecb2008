"""The backbone registry (leafdoc/train/registry.py) is the one list of backbones: TrainConfig, the API's
training options, `leafdoc train --backbone`'s help, recipes and the model card read it, so a backbone is
added with one entry there."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import get_args

import pytest

from leafdoc.experiments.recipe import parse_recipe
from leafdoc.service.schemas import TrainOptions
from leafdoc.train import backbone_registry
from leafdoc.train.config import TrainConfig

pytestmark = pytest.mark.unit

SRC = Path(__file__).resolve().parents[2] / "src" / "leafdoc"


def test_every_face_offers_exactly_the_registrys_backbones():
    names = set(backbone_registry.BACKBONES)
    assert set(get_args(TrainConfig.model_fields["backbone"].annotation)) == names
    schema = TrainOptions.model_json_schema()["properties"]["backbone"]
    offered = {v for option in schema["anyOf"] for v in option.get("enum", [])}
    assert offered == names  # what the API accepts for a job's backbone
    assert all(name in backbone_registry.help_text() for name in names)  # `leafdoc train --help`


def test_no_module_but_the_registry_spells_a_backbone_name():
    """A name in quotes outside train/backbone_registry.py is a second list to forget when a backbone is added
    (TrainConfig's default is the one choice made elsewhere)."""
    quoted = re.compile("|".join(rf"[\"'`]{re.escape(n)}[\"'`]" for n in backbone_registry.BACKBONES))
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "train" / "backbone_registry.py":
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if quoted.search(line) and "backbone: Backbone = " not in line:
                found.append(f"{path.relative_to(SRC)}:{i}: {line.strip()}")
    assert found == []


def test_recipes_and_the_card_read_what_a_backbone_has_from_its_entry(monkeypatch):
    """A backbone without ImageNet weights is trained from scratch by a recipe (its scratch settings, weights
    none); the card keeps `alpha` only for a backbone that takes it. Both come from the entry, not the name."""
    recipe = parse_recipe(
        {
            "name": "r",
            "data": {"path": "x"},
            "scratch": {"epochs": 7},
            "runs": [{"name": "m", "backbone": "mobilenet_v2", "epochs": 2}],
        }
    )
    run = recipe.runs[0]
    cfg = recipe.config(run, quick=False, weights="imagenet")
    assert (cfg.weights, cfg.epochs) == ("imagenet", 2)
    spec = backbone_registry.BACKBONES["mobilenet_v2"]
    monkeypatch.setitem(
        backbone_registry.BACKBONES,
        "mobilenet_v2",
        dataclasses.replace(spec, pretrained=backbone_registry.Pretrained("none")),
    )
    cfg = recipe.config(run, quick=False, weights="imagenet")
    assert (cfg.weights, cfg.epochs) == ("none", 7)
    assert [n for n, s in backbone_registry.BACKBONES.items() if s.takes_alpha] == ["mobilenet_v2"]
