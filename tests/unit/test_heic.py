"""HEIC photos (iPhones' default format): read through pillow-heif (the [heic] extra) by the one decoding function,
upright, with the same pixels as the photo they were made from; without the extra, a message that says what to do.

The HEIC files are made here from real PlantVillage photos with pillow-heif's own encoder (x265), as an iPhone
would store them: the pixels as the sensor saw them, the rotation in the file's metadata."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from tests.conftest import PLANTVILLAGE, REPO

from leafdoc.core.errors import ImageError
from leafdoc.imaging import photos
from leafdoc.imaging.upload_size import shrink_for_upload

pillow_heif = pytest.importorskip("pillow_heif", reason="the [heic] extra (pillow-heif) is not installed")
LEAF = REPO / "examples" / "tomato_early_blight.jpg"
ORIENTATION = 0x0112


def heic(img: Image.Image, orientation: int = 1, quality: int = 92) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    buf = io.BytesIO()
    pillow_heif.from_pillow(img).save(buf, quality=quality, exif=exif.tobytes())
    return buf.getvalue()


def mean_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())


def test_heic_photo_decodes_to_the_pixels_it_was_made_from():
    src = Image.open(LEAF).convert("RGB")
    data = heic(src)
    assert photos.is_heif(data) and not photos.is_heif(LEAF.read_bytes())
    out = photos.decode(data, "leaf.heic")
    assert out.mode == "RGB" and out.size == src.size
    assert mean_diff(out, src) < 3.0  # lossy at quality 92: a few grey levels, not another picture
    assert mean_diff(out, np.roll(np.asarray(src), 16, axis=1)) > 3 * mean_diff(out, src)


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_a_rotated_heic_photo_comes_out_upright(orientation):
    """The stored pixels turned as a camera held sideways stores them, the rotation in the file: decoded upright
    once (libheif applies it and the EXIF tag is reset), never twice."""
    upright = Image.open(next(iter(sorted((PLANTVILLAGE / "Apple___Apple_scab").glob("*.jpg"))), LEAF)).convert("RGB")
    upright = upright.crop((0, 0, upright.width, upright.height * 3 // 4))  # not square: a wrong turn shows
    # What the sensor stored so that turning it by `orientation` shows `upright` (EXIF: 6 = turn 90 clockwise).
    stored = {
        1: upright,
        3: upright.rotate(180),
        6: upright.rotate(90, expand=True),
        8: upright.rotate(-90, expand=True),
    }
    data = heic(stored[orientation], orientation)
    out = photos.decode(data, "sideways.heic")
    assert out.size == upright.size, (orientation, out.size)
    assert mean_diff(out, upright) < 3.0, orientation
    x = photos.load_array(data, 64, "sideways.heic")
    assert mean_diff(x, photos.load_array(_png(upright), 64)) < 3.0


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_without_the_heic_extra_the_message_names_the_photo_and_what_to_do(monkeypatch):
    monkeypatch.setattr(photos, "heif_support", lambda: False)
    with pytest.raises(ImageError) as caught:
        photos.decode(heic(Image.open(LEAF).convert("RGB")), "IMG_0420.HEIC")
    said = f"{caught.value} {caught.value.hint}"
    assert "IMG_0420.HEIC" in said and "HEIC" in said and "JPEG" in said and "[heic]" in said


def test_the_desktop_sends_an_heic_photo_as_a_jpeg_of_the_same_picture():
    """Any server can read it, and Qt (which cannot read HEIC) can show it: even when it is small."""
    src = Image.open(LEAF).convert("RGB")
    data = heic(src)
    sent, name = shrink_for_upload(data, "IMG_0420.HEIC")
    assert name == "IMG_0420.jpg" and sent[:3] == b"\xff\xd8\xff"
    assert Image.open(io.BytesIO(sent)).size == src.size and mean_diff(photos.decode(sent), src) < 3.5
