"""docs/model-folder.md, "Running model.onnx yourself": its code, run as written, gives leafdoc's own pixels and
`leafdoc predict`'s probabilities (found by the repro review of 2026-12-01: the docs named the input size and range
but not the input's name, the reduced JPEG decode or where the crop is reckoned, and a plain Pillow pipeline moved a
field photo's probability by 0.07)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image
from tests.conftest import REPO, SHARED, fresh_photos

DOC = REPO / "docs" / "model-folder.md"


def doc_code() -> dict:
    text = DOC.read_text()
    section = text[text.index("## Running `model.onnx` yourself") :]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2, "the section's two code blocks: with leafdoc, and with Pillow alone"
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
    return namespace


def field_photos(n: int = 4) -> list:
    """Field JPEGs big enough to be decoded reduced, of odd sizes first (where a crop reckoned on the reduced decode
    is a pixel off)."""
    folder = SHARED / "field-corn"
    if not folder.is_dir():
        pytest.skip(f"shared field photos not found at {folder}")
    big = [p for p in sorted(folder.rglob("*.jpg")) if min(Image.open(p).size) >= 600]
    return sorted(big, key=lambda p: Image.open(p).size[0] % 2 == 0)[:n]


def test_the_docs_code_gives_leafdocs_pixels_and_probabilities(tiny_model):
    from leafdoc.inference.predictor import Predictor

    code = doc_code()
    predictor = Predictor(tiny_model)
    size = predictor.card.input.size
    photos = [p for p, _ in fresh_photos(n=2)] + field_photos()
    answers = predictor.predict_files(photos, k=len(predictor.labels))

    exact = [code["leafdoc_input"](p, tiny_model) for p in photos]
    for photo, arr in zip(photos, exact, strict=True):
        assert np.array_equal(arr, predictor.preprocess(photo)), photo
    probs = code["probabilities"](tiny_model, exact)
    plain_compared = 0
    for photo, answer, row, arr in zip(photos, answers, probs, exact, strict=True):
        shown = {t.label: t.probability for t in answer.top_k}
        assert {label: round(float(p), 6) for label, p in zip(predictor.labels, row, strict=True)} == pytest.approx(
            shown, abs=2e-6
        ), photo
        if answer.framed_box is None and answer.light_corrected is None:  # what Pillow alone reproduces
            plain = code["plain_input"](photo, size)
            assert np.abs(plain.astype(int) - arr.astype(int)).max() <= 1, photo
            plain_compared += 1
    assert plain_compared >= 4, "enough photos leafdoc did not frame to check the Pillow recipe on"


@pytest.mark.parametrize("size", [128, 224])
def test_pillow_alone_gives_leafdocs_pixels_at_the_sizes_models_use(size):
    """At 32 px the resize averages away what the decode does; at a real model's size it does not."""
    from leafdoc.imaging.photos import preprocess

    plain_input = doc_code()["plain_input"]
    for photo in field_photos(6) + [p for p, _ in fresh_photos(n=1)]:
        leafdoc = preprocess(photo, size).astype(int)  # no framing, light or morphology: what the recipe covers
        assert np.abs(plain_input(photo, size).astype(int) - leafdoc).max() <= 1, photo
