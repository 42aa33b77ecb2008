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
from leafdoc.evaluate.significance import mcnemar
from leafdoc.inference.predictor import Predictor
from leafdoc.lifecycle.promotion import CLEAR_P, MIN_FAIR_IMAGES, promotion_decision

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
        assert d["promote"] is True and d["held_back"] == [], d["reason"]
        assert (
            f"on {len(fresh)} test images ({len(trained)} left out: the serving model trained on them)" in d["reason"]
        )


def test_too_few_photos_left_and_none_left_keep_the_candidate_back(tiny_model, photos, tmp_path):
    trained, fresh = photos
    few = trained + fresh[:5]
    images, labels = [b for b, _ in few], [c for _, c in few]
    d = promotion_decision(tiny_model, tiny_model, 1, images, labels, margin=1.0, **RULE)  # any figure passes
    assert (d["n_images"], d["n_left_out"]) == (5, len(trained))
    assert d["promote"] is False and d["candidate"] is not None and d["held_back"] == ["too_few"]
    assert d["paired"] == {"candidate_only": 0, "serving_only": 0, "p": 1.0}  # the same model: no photo differs
    assert f"fewer than {MIN_FAIR_IMAGES} test images are left" in d["reason"] and "by hand" in d["reason"]
    # Nothing to compare on at all: no figures, not promoted, and the reason says why.
    none = promotion_decision(
        tiny_model, tiny_model, 1, images[: len(trained)], labels[: len(trained)], margin=1.0, **RULE
    )
    assert none["promote"] is False and none["candidate"] is None and none["serving"] is None
    assert none["n_images"] == 0 and "no test image is left" in none["reason"]
    assert none["held_back"] == ["no_test_photos"]
    # A small test split the serving model never trained on is compared whole, as before.
    small = promotion_decision(
        tiny_model, tiny_model, 1, images[len(trained) :], labels[len(trained) :], margin=1.0, **RULE
    )
    assert small["promote"] is True and small["n_left_out"] == 0 and small["n_images"] == 5
    assert small["held_back"] == []


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


def deranged_copy(model_dir, dest):
    """The same network with every label moved one place on: it names a wrong class wherever the original
    names the right one."""
    copy = model_copy(model_dir, dest)
    labels = json.loads((copy / "labels.json").read_text())
    (copy / "labels.json").write_text(json.dumps(labels[1:] + labels[:1]))
    return copy


def test_a_candidate_plainly_better_on_few_photos_is_promoted_and_one_plainly_worse_is_not(
    tiny_model, photos, tmp_path
):
    """Under MIN_FAIR_IMAGES photos left, McNemar's test on the photos the models disagree on decides: the tiny
    model against a copy that is wrong wherever it is right, on the fresh photos the tiny model gets right."""
    trained, fresh = photos
    tiny = Predictor(tiny_model)
    good = [p for p, ok in zip(fresh, right(tiny, fresh), strict=True) if ok][: MIN_FAIR_IMAGES - 1]
    assert len(good) >= 6, "the tiny model must get at least 6 fresh photos right for this test"
    wrong = deranged_copy(tiny_model, tmp_path / "wrong")  # keeps the tiny model's split.json: same left out
    images, labels = [b for b, _ in trained + good], [c for _, c in trained + good]
    # Independently: the copy is right on none of them, and McNemar's p for n against 0 is 2 / 2^n.
    assert not right(Predictor(wrong), good).any()
    expected_p = mcnemar("1" * len(good), "0" * len(good))["p"]
    assert expected_p == pytest.approx(2 / 2 ** len(good)) and expected_p < CLEAR_P

    up = promotion_decision(tiny_model, wrong, 1, images, labels, margin=0.0, **RULE)
    assert (up["n_images"], up["n_left_out"]) == (len(good), len(trained)) and len(good) < MIN_FAIR_IMAGES
    assert (up["candidate"], up["serving"]) == (1.0, 0.0)
    assert up["paired"] == {"candidate_only": len(good), "serving_only": 0, "p": pytest.approx(expected_p, abs=1e-6)}
    assert up["promote"] is True and up["held_back"] == [], up["reason"]
    assert "better beyond chance" in up["reason"] and f"alone is right on {len(good)}," in up["reason"]

    down = promotion_decision(wrong, tiny_model, 1, images, labels, margin=1.0, **RULE)  # the margin lets any figure
    assert down["paired"]["serving_only"] == len(good) and down["paired"]["candidate_only"] == 0
    assert down["promote"] is False and "by hand" in down["reason"] and down["held_back"] == ["too_few"]

    # Too few disagreements for the test to tell: kept back, although the candidate's figure is higher.
    few = promotion_decision(
        tiny_model, wrong, 1, images[: len(trained) + 4], labels[: len(trained) + 4], margin=0.0, **RULE
    )
    assert few["candidate"] > few["serving"] and few["paired"]["p"] >= CLEAR_P
    assert few["promote"] is False and "do not show the candidate better beyond chance" in few["reason"]
    assert few["held_back"] == ["too_few"]


def test_a_candidate_that_does_not_know_the_serving_models_classes_is_never_promoted_unasked(
    tiny_model, photos, tmp_path
):
    """A potato model trained from the page replaced the lab's tomato model automatically ("at least as good ... on
    6 test images", all potato ones), and tomato leaves were then answered as potato. Here the serving model knows
    three other classes (its labels renamed): on the candidate's own photos it is wrong on every one, so the
    candidate is far better there, and still not promoted; the reason names what it would forget."""
    _, fresh = photos
    other = model_copy(tiny_model, tmp_path / "other")
    theirs = ["Grape___Black_rot", "Grape___healthy", "Grape___Esca_(Black_Measles)"]
    (other / "labels.json").write_text(json.dumps(theirs))
    images, labels = [b for b, _ in fresh], [c for _, c in fresh]
    d = promotion_decision(tiny_model, other, 1, images, labels, margin=0.0, **RULE)
    assert d["candidate"] > d["serving"] == 0.0 and d["n_images"] >= MIN_FAIR_IMAGES
    assert d["promote"] is False, d["reason"]
    assert d["held_back"] == ["forgets"] and (d["lost_classes"], d["known_classes"]) == (3, 3)
    assert (
        "it does not know 3 of the serving model's 3 classes (Grape___Black_rot, Grape___healthy and Grape___Esca_("
        in (d["reason"])
    )
    assert "not promoted automatically; an admin can promote it by hand" in d["reason"]
    # the same classes, or more: promoted on its figures as before
    assert promotion_decision(tiny_model, tiny_model, 1, images, labels, margin=0.0, **RULE)["promote"] is True
