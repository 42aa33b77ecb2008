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

from leafdoc.core.errors import ModelError
from leafdoc.imaging.photos import resize_square
from leafdoc.inference.explain import DISPLAY_SIZE, explain_bytes, overlay, png_bytes
from leafdoc.inference.predictor import Predictor

pytestmark = pytest.mark.integration

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from phone_conditions import border_colour, farther  # noqa: E402
from service_support import Clients, service_settings  # noqa: E402


def lab_leaf() -> Path:
    """A PlantVillage photo of one leaf filling the frame (skips without the shared photos)."""
    if not PLANTVILLAGE.is_dir():
        pytest.skip(f"shared PlantVillage photos not found at {PLANTVILLAGE}")
    return sorted((PLANTVILLAGE / "Tomato___Early_blight").glob("*.jpg"))[0]


def far_leaf_jpeg() -> bytes:
    leaf = Image.open(lab_leaf()).convert("RGB")
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


def far_leaf_photo(size=(2400, 1800), at=(1300, 450), leaf_px=800) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """A phone-sized photo of one PlantVillage leaf taken from farther than the lab's, not in the middle: the lab
    photo scaled to `leaf_px` and put at `at` on a sheet of its own border colour. Returns it and the pasted box."""
    leaf = Image.open(lab_leaf()).convert("RGB")
    canvas = Image.new("RGB", size, border_colour(leaf))
    canvas.paste(leaf.resize((leaf_px, leaf_px), Image.Resampling.LANCZOS), at)
    return canvas, (at[0], at[1], at[0] + leaf_px, at[1] + leaf_px)


def jpeg(img: Image.Image, orientation: int = 1) -> bytes:
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(buf, "JPEG", quality=92, exif=exif.tobytes())
    return buf.getvalue()


def test_the_answer_gives_the_framed_square_in_the_photos_own_pixels(tmp_path, tiny_model):
    """`framed_box` is where the model looked, in pixels of the photo as sent (upright): around the leaf, decoded
    at reduced scale or whole, stored sideways with an EXIF rotation or not; null for a photo the model saw whole."""
    from leafdoc.imaging.photos import leaf_region, open_photo, region_in_photo

    photo, pasted = far_leaf_photo()
    upright = jpeg(photo)
    # The same photo stored sideways (turned a quarter anticlockwise) with orientation 6, which turns it back.
    sideways = jpeg(photo.transpose(Image.Transpose.ROTATE_90), orientation=6)
    p = Predictor(tiny_model)
    whole, frame = open_photo(upright)  # decoded whole: the reference box, from the full-size pixels
    reference = region_in_photo(leaf_region(whole), frame)
    assert p.load(upright).frame.factor >= 4  # the served model decodes this photo at a quarter or less
    boxes = []
    for data in (upright, sideways):
        path = tmp_path / f"photo{len(boxes)}.jpg"
        path.write_bytes(data)
        (pred,) = p.predict_files([path])
        boxes.append(pred.framed_box)
    for box in boxes:
        left, top, right, bottom = box
        assert right - left == pytest.approx(bottom - top, abs=2)  # a square
        assert np.abs(np.subtract(box, reference)).max() <= 0.03 * (right - left), (box, reference)
        # around the leaf: centred inside the lab photo pasted, about its size (the leaf and a margin)
        cx, cy = (left + right) / 2, (top + bottom) / 2
        assert pasted[0] < cx < pasted[2] and pasted[1] < cy < pasted[3]
        assert 0.6 < (right - left) / (pasted[2] - pasted[0]) < 1.3
    # The API answers the same box (one answer shape: inference/answer.py).
    with Clients() as clients:
        api = clients(service_settings(tmp_path / "home", tiny_model))
        r = api.post("/v1/predict", files={"file": ("far.jpg", sideways, "image/jpeg")})
        assert r.status_code == 200 and r.json()["framed_box"] == boxes[1], r.text
    # A leaf that fills the photo is seen whole: no box.
    (pred,) = p.predict_files([lab_leaf()])
    assert pred.framed_box is None
