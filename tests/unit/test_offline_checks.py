"""The offline page's not-a-leaf and unlike-training checks (src/leafdoc/offline/static/checks.js), run in Node against
the server's (inference/ood.py, field.py) on the starter's own numbers (checks.bin, as /app sends it): OpenCV's HSV,
area resize and Canny to the pixel, the photo measures, the two scores and the refused photo's kind. Photos: the
shared lab, field and flower photos, and drawn ones. Skipped without node (the browser test covers the page)."""

from __future__ import annotations

import base64

import cv2
import numpy as np
import pytest
from tests.conftest import REPO, SHARED
from tests.unit.node_support import needs_node, run_node

from leafdoc.inference.field import photo_features
from leafdoc.inference.ood import colour_features
from leafdoc.offline import checks
from leafdoc.offline.routes import STATIC

pytestmark = needs_node
RING = 96 * 96 - 72 * 72  # pixels of the border ring the busy and clutter measures read

SCRIPT = r"""
const m = await import(process.argv[1]);
const fs = await import("fs");
const bin = fs.readFileSync(process.argv[2]);
const checks = m.readChecks(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length));
let text = "";
for await (const chunk of process.stdin) text += chunk;
const out = [];
for (const c of JSON.parse(text)) {
  const img = { w: c.w, h: c.w, data: new Uint8Array(Buffer.from(c.data, "base64")) };
  const small = m.resizeArea(img, 96);
  const r = m.readPhoto(checks, Float32Array.from(c.features), c.probs, img);
  out.push({ hsv: Buffer.from(m.hsv(img)).toString("base64"), small: Buffer.from(small.data).toString("base64"),
             canny: Buffer.from(m.canny(small, 50, 150)).toString("base64"), colour: Array.from(m.colourFeatures(img)),
             photo: m.photoFeatures(img), score: r.notALeafScore, field: r.fieldScore, fieldLike: r.fieldLike });
}
console.log(JSON.stringify(out));
"""


@pytest.fixture(scope="module")
def starter():
    from leafdoc.inference.predictor import Predictor

    return Predictor(REPO / "models" / "starter")


def drawn(seed: int) -> np.ndarray:
    """Photos the shared sets lack: noise, stripes (strong edges in one channel), flat colour, a leaf on a sheet."""
    rng = np.random.default_rng(seed)
    kind = seed % 4
    if kind == 0:
        return rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)
    if kind == 1:
        x = np.zeros((160, 160, 3), np.uint8)
        x[:, ::7, rng.integers(3)] = 255
        return x
    if kind == 2:
        return np.full((160, 160, 3), rng.integers(0, 256, 3), np.uint8)
    x = np.full((160, 160, 3), (228, 226, 220), np.uint8)
    cv2.ellipse(x, (80, 80), (60, 35), int(rng.integers(180)), 0, 360, (60, 130, 50), -1)
    return np.clip(x + rng.normal(0, 4, x.shape), 0, 255).astype(np.uint8)


def photos(starter) -> list[tuple[str, np.ndarray]]:
    shared = []
    for folder, step in (("plantvillage", 300), ("field-mixed", 25), ("field-corn", 15), ("flowers", 60)):
        shared += sorted(p for p in (SHARED / folder).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[
            ::step
        ]
    if len(shared) < 30:
        pytest.skip(f"shared datasets not found at {SHARED}")
    return [(f.name, starter.load(f).x) for f in shared] + [(f"drawn {i}", drawn(i)) for i in range(8)]


def test_the_page_reads_each_photo_as_the_server_does(starter, tmp_path):
    bin_path = tmp_path / "checks.bin"
    bin_path.write_bytes(checks.build(starter))
    cases, expected = [], []
    for name, x in photos(starter):
        out = {k: v[0] for k, v in starter.predict_arrays(x[None], ["probabilities", "features"]).items()}
        score, field, like = starter.field_reading(out, type("Photo", (), {"x": x})())
        small = cv2.resize(x, (96, 96), interpolation=cv2.INTER_AREA)
        cases.append(
            {
                "w": x.shape[1],
                "data": base64.b64encode(x.tobytes()).decode(),
                "features": out["features"].tolist(),
                "probs": out["probabilities"].tolist(),
            }
        )
        expected.append((name, x, small, score, field, like))
    results = run_node(SCRIPT, "checks.js", cases, str(bin_path))
    kinds = {"refused, a field photo": 0, "refused, no leaf": 0, "passed": 0}
    for (name, x, small, score, field, like), r in zip(expected, results, strict=True):
        js_hsv = np.frombuffer(base64.b64decode(r["hsv"]), np.uint8).reshape(x.shape)
        assert np.array_equal(js_hsv, cv2.cvtColor(x, cv2.COLOR_RGB2HSV)), name
        js_small = np.frombuffer(base64.b64decode(r["small"]), np.uint8).reshape(small.shape)
        assert np.array_equal(js_small, small), (name, np.abs(js_small.astype(int) - small).max())
        js_edges = np.frombuffer(base64.b64decode(r["canny"]), np.uint8).reshape(96, 96)
        assert np.array_equal(js_edges > 0, cv2.Canny(small, 50, 150) > 0), name
        assert np.allclose(r["colour"], colour_features(x[None])[0], atol=1e-6), name
        # OpenCV's float box blur sums in another order: a pixel's "smooth" can flip at the threshold (1/4032 each)
        assert np.allclose(r["photo"], photo_features(x[None])[0], atol=1.5 / RING), (name, r["photo"])
        assert r["score"] == pytest.approx(score, abs=1e-3), name
        assert r["field"] == pytest.approx(field, abs=5e-3), name
        assert r["fieldLike"] == like, name
        refused = field > starter.field.threshold
        kinds["passed" if not refused else "refused, a field photo" if like else "refused, no leaf"] += 1
    # the photos reach every branch of the decision, so each is compared where it matters
    assert min(kinds.values()) >= 3, kinds


def test_a_file_that_is_not_checks_bin_is_refused(tmp_path):
    done = run_node(SCRIPT, "checks.js", [], str(STATIC / "icon-192.png"), check=False)
    assert done.returncode != 0 and "not a leafdoc checks file" in done.stderr


OTHER_LEAVES = r"""
const m = await import(process.argv[1]);
const fs = await import("fs");
const read = (path) => {
  const bin = fs.readFileSync(path);
  return m.readChecks(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length));
};
const [withCheck, without] = [read(process.argv[2]), read(process.argv[3])];
let text = "";
for await (const chunk of process.stdin) text += chunk;
const { features, photo } = JSON.parse(text);
const img = { w: photo.w, h: photo.w, data: new Uint8Array(Buffer.from(photo.data, "base64")) };
console.log(JSON.stringify({
  header: withCheck.other_leaves,
  scores: features.map((f) => m.otherLeafScore(withCheck, Float32Array.from(f))),
  without: features.map((f) => m.otherLeafScore(without, Float32Array.from(f))),
  read: [m.readPhoto(withCheck, Float32Array.from(features[0]), photo.probs, img).otherLeafScore,
         m.readPhoto(without, Float32Array.from(features[0]), photo.probs, img).otherLeafScore],
}));
"""


def with_other_leaves(predictor, section: dict):
    """The predictor as checks.build reads it, its card with an `other_leaves` section."""
    from types import SimpleNamespace

    from leafdoc.modelfolder import ModelCard

    card = ModelCard.from_dict({**predictor.card.to_dict(), "other_leaves": section})
    return SimpleNamespace(card=card, field=predictor.field, model_dir=predictor.model_dir)


def test_the_page_scores_other_leaves_as_sigmoid_of_the_features_and_the_cards_weights(starter, tmp_path):
    """A made-up `other_leaves` section (a lab's model: one of its classes, or some other leaf): checks.bin carries
    its weights, bias and threshold, and checks.js's score is numpy's sigmoid(features . weights + bias), on the
    starter's features of a photo and on drawn feature vectors from both ends of the sigmoid; a card without the
    section (or in a format the page does not know) gives no score, so the page decides as before."""
    rng = np.random.default_rng(7)
    x = drawn(3)
    out = {k: v[0] for k, v in starter.predict_arrays(x[None], ["probabilities", "features"]).items()}
    dim = out["features"].size
    weights = rng.normal(0, 0.05, dim)
    section = {
        "format": 1,
        "fitted": True,
        "bank": "plantvillage-lite0",
        "threshold": 0.62,
        "bias": -0.8,
        "weights": weights.tolist(),
    }
    features = [out["features"], *(rng.gamma(1.0, 0.3, dim) for _ in range(4)), np.full(dim, 2.0), np.zeros(dim)]
    features[-2] *= np.sign(weights)  # a large positive sum: the sigmoid near 1
    features[-1][: dim // 2] = -50 * np.sign(weights[: dim // 2])  # a large negative one: near 0, no overflow
    paths = []
    for name, card_section in (("with", section), ("without", None), ("later", {**section, "format": 2})):
        shown = with_other_leaves(starter, card_section) if card_section else starter
        paths.append(tmp_path / f"{name}.bin")
        paths[-1].write_bytes(checks.build(shown))
    header = checks.card_numbers(with_other_leaves(starter, section))
    assert header["other_leaves"] == {"bias": -0.8, "threshold": 0.62, "no_leaf_from": None}
    assert "other_leaves" not in checks.card_numbers(starter)
    assert "other_leaves" not in checks.card_numbers(with_other_leaves(starter, {**section, "format": 2}))
    not_fitted = {"format": 1, "fitted": False, "why_not": "the model's features are not the bank's"}
    assert "other_leaves" not in checks.card_numbers(with_other_leaves(starter, not_fitted))
    photo = {"w": x.shape[1], "data": base64.b64encode(x.tobytes()).decode(), "probs": out["probabilities"].tolist()}
    given = {"features": [f.tolist() for f in features], "photo": photo}
    r = run_node(OTHER_LEAVES, "checks.js", given, str(paths[0]), str(paths[1]))
    w32 = weights.astype(np.float32).astype(np.float64)  # checks.bin carries float32 weights
    z = [np.asarray(f, np.float32).astype(np.float64) @ w32 - 0.8 for f in features]
    expected = [float(np.exp(-np.logaddexp(0, -v))) for v in z]  # sigmoid(v), without overflow
    assert r["header"] == {"bias": -0.8, "threshold": 0.62, "no_leaf_from": None}
    assert np.allclose(r["scores"], expected, rtol=1e-6, atol=1e-9), (r["scores"], expected)
    assert expected[-2] > 0.999 and expected[-1] < 1e-6 and min(expected[:5]) < 0.62 < max(expected)
    assert r["read"][0] == pytest.approx(expected[0], rel=1e-6) and r["read"][1] is None
    assert r["without"] == [None] * len(features)
    later = run_node(OTHER_LEAVES, "checks.js", given, str(paths[2]), str(paths[1]))
    assert later.get("header") is None and later["scores"] == [None] * len(features)


def test_other_leaves_weights_for_another_number_of_features_are_refused(starter):
    section = {"format": 1, "fitted": True, "bank": "pv", "threshold": 0.5, "bias": 0.0, "weights": [0.1] * 7}
    with pytest.raises(ValueError, match="7 weights for the model's 1280 features"):
        checks.build(with_other_leaves(starter, section))


LEAF_REFUSAL = r"""
const m = await import(process.argv[1]);
let text = "";
for await (const chunk of process.stdin) text += chunk;
const cases = JSON.parse(text);
console.log(JSON.stringify(cases.map(([checks, reading, threshold]) => m.leafRefusal(checks, reading, threshold))));
"""


def test_the_page_words_a_photo_both_checks_refuse_as_the_server_does():
    """checks.js's leafRefusal against abstain.leaf_refusal, on scores either side of each threshold and of
    `no_leaf_from`, with the other-leaves check, without it, and with a section from before `no_leaf_from`."""
    from leafdoc.inference.abstain import leaf_refusal
    from leafdoc.modelfolder import ModelCard

    other = {"format": 1, "fitted": True, "threshold": 0.6, "bias": 0.0, "weights": [0.0]}
    sections = [None, other, {**other, "no_leaf_from": 15.0}]
    cases, expected = [], []
    for section in sections:
        card = ModelCard.from_dict({"ood": {"threshold": 10.0}, **({"other_leaves": section} if section else {})})
        page = {"ood": {"threshold": 10.0}}
        if section:  # as checks.card_numbers sends it
            page["other_leaves"] = {"bias": 0.0, "threshold": 0.6, "no_leaf_from": section.get("no_leaf_from")}
        for ood in (8.0, 12.0, 16.0):
            for score in (0.3, 0.9):
                shown = score if section else None  # the page reads no score without the section
                for threshold in (10.0, None):  # None: the unlike-training check read the not-a-leaf score
                    cases.append([page, {"notALeafScore": ood, "otherLeafScore": shown}, threshold])
                    expected.append(leaf_refusal(card, ood, threshold, score if section else None))
    assert run_node(LEAF_REFUSAL, "checks.js", cases) == expected
    assert expected.count("unknown_leaf") == 3 + 6 and expected.count("not_a_leaf") == 11  # every branch taken
