"""A model card's `input.framing` decides what the served model sees (tests/unit/test_framing.py has the framing
itself): `leaf`, what training writes, frames a leaf taken from too far, in the diagnosis and in the heat map alike;
`none`, a model from before framing, keeps the centre crop; anything else is refused with the card named."""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.conftest import PLANTVILLAGE

from leafdoc.errors import ModelError
from leafdoc.images import resize_square
from leafdoc.inference.explain import DISPLAY_SIZE, explain_bytes, overlay, png_bytes
from leafdoc.inference.predictor import Predictor

pytestmark = pytest.mark.integration

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from phone_conditions import farther  # noqa: E402


def far_leaf_jpeg() -> bytes:
    if not PLANTVILLAGE.is_dir():
        pytest.skip(f"shared PlantVillage photos not found at {PLANTVILLAGE}")
    leaf = Image.open(sorted((PLANTVILLAGE / "Tomato___Early_blight").glob("*.jpg"))[0]).convert("RGB")
    buf = io.BytesIO()
    farther(leaf, 0.5).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def with_framing(model: Path, dest: Path, framing: str | None) -> Path:
    shutil.copytree(model, dest)
    card = json.loads((dest / "card.json").read_text())
    if framing is None:
        card["input"].pop("framing")
    else:
        card["input"]["framing"] = framing
    (dest / "card.json").write_text(json.dumps(card))
    return dest


def test_training_writes_framing_and_the_served_model_frames_a_far_leaf(tmp_path, tiny_model):
    assert json.loads((tiny_model / "card.json").read_text())["input"]["framing"] == "leaf"
    data = far_leaf_jpeg()
    p = Predictor(tiny_model)
    photo = p.load(data)
    assert photo.region is not None
    assert np.array_equal(photo.x, resize_square(photo.image, p.size, photo.frame, photo.region))
    centre = resize_square(photo.image, p.size, photo.frame)
    assert np.abs(photo.x.astype(float) - centre).mean() > 10  # the framed input is not the centre crop
    # The heat map is drawn over what the model saw: the same square, at display size, not the centre crop.
    e = explain_bytes(p, data)
    display = max(p.size, DISPLAY_SIZE)
    framed = resize_square(photo.image, display, photo.frame, photo.region)
    assert e.overlay_png == png_bytes(overlay(framed, e.heatmap))
    assert e.overlay_png != png_bytes(overlay(resize_square(photo.image, display, photo.frame), e.heatmap))


def test_a_card_from_before_framing_keeps_the_centre_crop(tmp_path, tiny_model):
    old = Predictor(with_framing(tiny_model, tmp_path / "old", None))
    assert old.framing == "none"
    photo = old.load(far_leaf_jpeg())
    assert photo.region is None
    assert np.array_equal(photo.x, resize_square(photo.image, old.size, photo.frame))


def test_an_unknown_framing_is_refused_naming_the_card(tmp_path, tiny_model):
    with pytest.raises(ModelError, match=r"card.json: input.framing 'tight' is not one of none, leaf"):
        Predictor(with_framing(tiny_model, tmp_path / "new", "tight"))
