"""The promotion rule compares the candidate and the serving model only on test photos neither trained on.

After an upload the new dataset version's split is drawn again, so the candidate's test split holds photos the
serving model trained on (its split.json lists them by sha256); it is right on most of those, which would keep a
better candidate out. Here the serving model is the tiny model with its real split.json, and the candidate's
"test split" is some of the tiny model's own training photos (those it gets right) mixed with fresh PlantVillage
photos it never saw: the rule must leave the former out, count them, and score both models on exactly the rest."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from service_support import model_copy
from tests.conftest import PLANTVILLAGE, TINY_CLASSES, fresh_photos

from leafdoc.evaluate.score import score
from leafdoc.inference.predictor import Predictor
from leafdoc.lifecycle.promotion import MIN_FAIR_IMAGES, promotion_decision

RULE = {"metric": "accuracy", "max_pixels": 10**8}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def right(predictor: Predictor, photos: list[tuple[bytes, str]]) -> np.ndarray:
    """Whether the model names each photo's class, through the serving path: the independent figure."""
    x = np.stack([predictor.preprocess(b) for b, _ in photos])
    top = predictor.predict_arrays(x, ["probabilities"])["probabilities"].argmax(axis=1)
    return np.array([predictor.labels[i] == label for i, (_, label) in zip(top, photos, strict=True)])


@pytest.fixture(scope="module")
def photos(tiny_model):
    """(trained, fresh): photos the tiny model trained on or was validated on (by its split.json) that it gets
    right, and 8 fresh photos per class it never saw; each as (bytes, label)."""
    if not PLANTVILLAGE.is_dir():
        pytest.skip(f"shared datasets not found at {PLANTVILLAGE}")
    split = json.loads((tiny_model / "split.json").read_text())
    seen = set(split["train"]) | set(split["val"])
    own = [(f.read_bytes(), c) for c in TINY_CLASSES for f in sorted((PLANTVILLAGE / c).iterdir())[:6]]
    trained = [p for p in own if sha(p[0]) in seen]
    trained = [p for p, ok in zip(trained, right(Predictor(tiny_model), trained), strict=True) if ok]
    fresh = [(f.read_bytes(), c) for f, c in fresh_photos(n=8)]
    assert len(trained) >= 6 and not {sha(b) for b, _ in fresh} & seen
    return trained, fresh


def test_the_serving_models_training_photos_are_left_out_counted_and_both_scored_on_the_rest(
    tiny_model, photos, tmp_path
):
    trained, fresh = photos
    mixed = [p for pair in zip(trained, fresh, strict=False) for p in pair] + fresh[len(trained) :]
    images, labels = [b for b, _ in mixed], [c for _, c in mixed]
    candidate = model_copy(tiny_model, tmp_path / "candidate")
    (candidate / "split.json").unlink()  # the candidate's own split plays no part
    serving = Predictor(tiny_model)
    # Independently: the serving model is right on every photo it trained on, not on every fresh one, so a
    # comparison that kept its training photos would give it a higher figure.
    on_fresh, on_all = right(serving, fresh).mean(), right(serving, mixed).mean()
    assert on_fresh < on_all

    # Both models scored here, and (as a training job does) the candidate's figures from its own pass.
    pred = Predictor(candidate)
    y = np.array([pred.labels.index(c) for c in labels])
    own_pass = score(pred, np.stack([pred.preprocess(b) for b in images]), y, pred.labels)
    for given in (None, own_pass):
        d = promotion_decision(candidate, tiny_model, 1, images, labels, margin=0.0, candidate=given, **RULE)
        assert d["n_left_out"] == len(trained) and d["n_test_images"] == len(mixed)
        assert d["n_images"] == len(fresh) >= MIN_FAIR_IMAGES
        assert d["serving"] == pytest.approx(on_fresh, abs=1e-6)
        assert d["candidate"] == pytest.approx(right(pred, fresh).mean(), abs=1e-6)
        assert d["promote"] is True, d["reason"]
        assert (
            f"on {len(fresh)} test images ({len(trained)} left out: the serving model trained on them)" in d["reason"]
        )


def test_too_few_photos_left_and_none_left_keep_the_candidate_back(tiny_model, photos, tmp_path):
    trained, fresh = photos
    few = trained + fresh[:5]
    images, labels = [b for b, _ in few], [c for _, c in few]
    d = promotion_decision(tiny_model, tiny_model, 1, images, labels, margin=1.0, **RULE)  # any figure passes
    assert (d["n_images"], d["n_left_out"]) == (5, len(trained))
    assert d["promote"] is False and d["candidate"] is not None
    assert f"fewer than {MIN_FAIR_IMAGES} test images are left" in d["reason"] and "by hand" in d["reason"]
    # Nothing to compare on at all: no figures, not promoted, and the reason says why.
    none = promotion_decision(
        tiny_model, tiny_model, 1, images[: len(trained)], labels[: len(trained)], margin=1.0, **RULE
    )
    assert none["promote"] is False and none["candidate"] is None and none["serving"] is None
    assert none["n_images"] == 0 and "no test image is left" in none["reason"]
    # A small test split the serving model never trained on is compared whole, as before.
    small = promotion_decision(
        tiny_model, tiny_model, 1, images[len(trained) :], labels[len(trained) :], margin=1.0, **RULE
    )
    assert small["promote"] is True and small["n_left_out"] == 0 and small["n_images"] == 5


def test_a_serving_model_without_split_json_is_compared_on_the_whole_test_split(tiny_model, photos, tmp_path):
    trained, fresh = photos
    mixed = trained + fresh
    images, labels = [b for b, _ in mixed], [c for _, c in mixed]
    imported = tmp_path / "imported"
    shutil.copytree(tiny_model, imported, ignore=shutil.ignore_patterns("split.json"))
    d = promotion_decision(tiny_model, imported, 1, images, labels, margin=0.0, **RULE)
    assert d["n_images"] == d["n_test_images"] == len(mixed) and d["n_left_out"] is None
    assert "the serving model's split is unknown" in d["reason"]
    assert d["serving"] == pytest.approx(right(Predictor(imported), mixed).mean(), abs=1e-6)
