"""`leafdoc predict` on an HEIC photo (iPhones' default format) gives the answer the same photo gets as a JPEG."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image
from tests.conftest import REPO
from typer.testing import CliRunner

from leafdoc.cli.main import app

pillow_heif = pytest.importorskip("pillow_heif", reason="the [heic] extra (pillow-heif) is not installed")


def test_predict_reads_an_heic_photo_like_the_jpeg_it_was_made_from(tmp_path):
    jpeg = REPO / "examples" / "tomato_early_blight.jpg"
    buf = io.BytesIO()
    pillow_heif.from_pillow(Image.open(jpeg).convert("RGB")).save(buf, quality=92)
    photo = tmp_path / "IMG_0420.HEIC"
    photo.write_bytes(buf.getvalue())
    result = CliRunner().invoke(app, ["predict", str(REPO / "models" / "starter"), str(jpeg), str(photo), "--json"])
    assert result.exit_code == 0, result.output
    answers = json.loads(result.output)
    answers = answers if isinstance(answers, list) else answers["results"]
    as_jpeg, as_heic = ({a["top_k"][0]["label"]: a["top_k"][0]["probability"]} for a in answers)
    assert as_heic.keys() == as_jpeg.keys() == {"Tomato___Early_blight"}
    assert abs(as_heic["Tomato___Early_blight"] - as_jpeg["Tomato___Early_blight"]) < 0.05
