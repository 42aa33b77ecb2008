"""The starter serves with `input.white_balance: light-range` (tests/unit/test_light_range.py has the correction
itself): a photo under a warmer or cooler light than nearly all its training photos is answered with
`light_corrected` saying which, by `leafdoc predict` and the API alike, and the model sees it corrected; a photo lit as
they were, or with no sheet to read the light from (a close-up), is answered as taken with `light_corrected` null."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import REPO
from tests.lighting import CLOSE_UP, COOL, EXAMPLES, ON_SHEETS, WARM, lit_jpeg

from leafdoc.imaging.leafcut import light_of
from leafdoc.imaging.photos import resize_square
from leafdoc.inference.predictor import Predictor

pytestmark = pytest.mark.integration

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service_support import Clients, service_settings  # noqa: E402

STARTER = REPO / "models" / "starter"


def jpeg(name: str, light=(1.0, 1.0, 1.0)) -> bytes:
    return lit_jpeg(EXAMPLES / f"{name}.jpg", light)


def test_a_photo_under_a_light_the_model_was_not_trained_under_is_corrected_and_the_answer_says_so(tmp_path):
    p = Predictor(STARTER)
    assert p.prep.white_balance == "light-range" and len(p.prep.light_range) == 4
    seen_lo, typical_lo, typical_hi, seen_hi = p.prep.light_range
    said = {}
    for name in ON_SHEETS:
        for light, expected in (((1.0, 1.0, 1.0), None), (WARM, "warm"), (COOL, "cool")):
            data = jpeg(name, light)
            photo = p.load(data, "leaf.jpg")
            as_taken = resize_square(photo.image, p.size, photo.frame, photo.region)
            assert photo.light_corrected == expected, (name, light, light_of(as_taken))
            if expected is None:  # lit as the training photos were: the model sees the photo as taken
                assert seen_lo <= light_of(as_taken) <= seen_hi and np.array_equal(photo.x, as_taken)
            else:  # ... else a typical training light: the nearer end of their middle half
                end = typical_hi if expected == "warm" else typical_lo
                assert light_of(photo.x) == pytest.approx(end, abs=0.015)
            path = tmp_path / f"{name}-{expected}.jpg"
            path.write_bytes(data)
            (pred,) = p.predict_files([path])
            said[path.name] = pred.light_corrected
            assert said[path.name] == expected
    close_up = tmp_path / "close-up-warm.jpg"  # no sheet in the frame: nothing to read the light from
    close_up.write_bytes(jpeg(CLOSE_UP, WARM))
    (pred,) = p.predict_files([close_up])
    assert pred.light_corrected is None
    # The API answers the same (one answer shape: inference/answer.py).
    with Clients() as clients:
        api = clients(service_settings(tmp_path / "home", STARTER))
        for name in ON_SHEETS[:1]:
            for light, expected in (((1.0, 1.0, 1.0), None), (WARM, "warm")):
                r = api.post("/v1/predict", files={"file": ("leaf.jpg", jpeg(name, light), "image/jpeg")})
                assert r.status_code == 200 and r.json()["light_corrected"] == expected, r.text
