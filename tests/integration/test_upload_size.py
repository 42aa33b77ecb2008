"""Downscaling a large photo before upload (upload_size.shrink_for_upload, what the desktop app does before it
sends a photo) changes neither leafdoc's decision nor its top label on real large photos: field-corn's camera
photos up to 5184 px, progressive JPEGs, and ones whose EXIF says to turn them (which must arrive upright)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from tests.conftest import REPO, SHARED

from leafdoc.imaging.photos import open_photo
from leafdoc.imaging.upload_size import LONG_SIDE, shrink_for_upload

FIELD = SHARED / "field-corn"
STARTER = REPO / "models" / "starter"
# Real photos over 1024 px: the largest (5184 px), three EXIF-rotated ones (orientation 6, 8, 6), a baseline
# (non-progressive) JPEG, and a 2761 px progressive one.
PHOTOS = [
    "Corn_(maize)___Northern_Leaf_Blight/Corn_Blight_87_deef0c60.jpg",
    "Corn_(maize)___Common_rust_/Corn_Common_Rust_1264_b9257f3a.jpg",
    "Corn_(maize)___Northern_Leaf_Blight/Corn_Blight_1119_477d85c5.jpg",
    "Corn_(maize)___Northern_Leaf_Blight/Corn_Blight_1102_6d3338d5.jpg",
    "Corn_(maize)___Common_rust_/Corn_Common_Rust_8_9f40468f.jpg",
    "Corn_(maize)___Common_rust_/Corn_Common_Rust_62_345d10f5.jpg",
]

pytestmark = pytest.mark.skipif(
    not FIELD.is_dir() or not (STARTER / "model.onnx").is_file(), reason="needs field-corn and models/starter"
)


def _answer(predictor, data: bytes, name: str) -> tuple[str, str]:
    photo = predictor.load(data, name=name)
    out = {k: v[0] for k, v in predictor.predict_arrays(photo.x[None], predictor.decision_outputs).items()}
    decision = predictor.decide(out, photo)
    return ("answered" if not decision.abstained else decision.reason), predictor.top_k(out["probabilities"], 1)[0][
        "label"
    ]


def test_large_real_photos_get_the_same_answer_downscaled():
    from leafdoc.inference.predictor import Predictor

    predictor = Predictor(STARTER)
    for rel in PHOTOS:
        path = FIELD / rel
        data = path.read_bytes()
        small, name = shrink_for_upload(data, path.name)
        assert name.endswith(".jpg") and len(small) < len(data) / 2, rel
        shrunk = Image.open(io.BytesIO(small))
        assert max(shrunk.size) == LONG_SIDE and shrunk.getexif().get(0x0112, 1) == 1, rel
        upright, _ = open_photo(data, path.name)  # the photo as the server turns it
        assert (shrunk.width > shrunk.height) == (upright.width > upright.height), rel  # turned by its EXIF
        # the same picture: compared at 64 px, the mean difference is small
        a = np.asarray(upright.resize((64, 64), Image.Resampling.BOX), dtype=np.float32)
        b = np.asarray(shrunk.convert("RGB").resize((64, 64), Image.Resampling.BOX), dtype=np.float32)
        assert np.abs(a - b).mean() < 3.0, rel
        assert _answer(predictor, small, name) == _answer(predictor, data, path.name), rel


def test_small_photos_and_non_images_are_sent_as_they_are(tmp_path):
    small = next((SHARED / "plantvillage").rglob("*.jpg")).read_bytes()  # 256 px
    assert shrink_for_upload(small, "leaf.jpg") == (small, "leaf.jpg")
    assert shrink_for_upload(b"not a photo", "x.jpg") == (b"not a photo", "x.jpg")


def test_desktop_app_sends_a_large_photo_downscaled():
    from leafdoc.desktop.diagnose import diagnose_file

    sent = []

    class Client:  # records what the app sends; answers like the service
        def explain(self, data, name, top_k=None, crop=None, lang=None):
            sent.append((data, name))
            return {"model_version": "v1", "overlay_png": ""}

        def advice_for(self, answer):
            return None

        def model(self, version):
            return {"labels": []}

    path = FIELD / PHOTOS[1]  # 4032 px, EXIF orientation 6
    diagnose_file(Client(), path, 3, lambda *a: None)
    ((data, name),) = sent
    assert name.endswith(".jpg") and Image.open(io.BytesIO(data)).size == (768, LONG_SIDE)  # upright, 1024 long


def test_a_48_megapixel_photo_and_a_24_megapixel_heic_are_sent_as_1024_px_jpegs():
    """The desktop app sent an 8000x6000 phone JPEG whole (its shrinking decoded under the service's pixel limit,
    and gave up), and the service refused it; a 24 MP HEIC (an iPhone 15's default) likewise, over the service's
    budget for HEIC. Both leave the grower's machine as a 1024 px JPEG the service answers."""
    from leafdoc.imaging.photos import heif_support

    leaf = Image.open(next((SHARED / "plantvillage" / "Tomato___Early_blight").glob("*.jpg"))).convert("RGB")
    big = io.BytesIO()
    leaf.resize((8000, 6000)).save(big, "JPEG", quality=85)
    photos = [(big.getvalue(), "phone.jpg", (LONG_SIDE, 768))]
    if heif_support():
        heic = io.BytesIO()
        leaf.resize((5712, 4284)).save(heic, "HEIF", quality=60)
        photos.append((heic.getvalue(), "iphone.heic", (LONG_SIDE, 768)))
    for data, name, size in photos:
        small, sent_as = shrink_for_upload(data, name)
        assert sent_as.endswith(".jpg") and Image.open(io.BytesIO(small)).size == size, name
        img, _ = open_photo(small, sent_as)  # within the service's own limits
        assert img.size == size
