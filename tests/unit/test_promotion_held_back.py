"""The promotion rule's decision says why a candidate is kept back as codes (`held_back`, with `lost_classes` of the
serving model's `known_classes` when it forgets some), beside the reason in words; the models tables' few words
(words/serving_change.promotion_verdict, on the page and in the desktop app) are read from those codes, and from the
reason's words only for decisions stored before the codes were written.

The decisions here are the rule's own (lifecycle/promotion.promotion_decision on model folders with labels.json and
split.json); only the scoring pass is stood in for, with which photos each model names rightly, so that each case
(worse, too few photos left, classes it does not know, none left to compare on, and the mixes) is made on purpose."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from leafdoc.evaluate.score import Scores
from leafdoc.imaging.photos import sha256_bytes
from leafdoc.lifecycle import promotion
from leafdoc.lifecycle.against_serving import worse
from leafdoc.lifecycle.promotion import MIN_FAIR_IMAGES, promotion_decision
from leafdoc.modelfolder import write_labels
from leafdoc.words.serving_change import promotion_details, promotion_verdict

pytestmark = pytest.mark.unit

CLASSES = ["Tomato___Early_blight", "Tomato___Late_blight", "Tomato___healthy", "Potato___Late_blight"]
FIELDS = ("held_back", "lost_classes", "known_classes")  # what decisions stored before this change do not have


def photos(n: int, start: int = 0) -> tuple[list[bytes], list[str]]:
    return [f"photo {i}".encode() for i in range(start, start + n)], [CLASSES[i % 3] for i in range(start, start + n)]


def model(tmp_path: Path, name: str, labels: list[str], trained_on: list[bytes] = ()) -> Path:
    """A model folder as the rule reads it: its labels, and the photos its split.json says it trained on."""
    folder = tmp_path / name
    folder.mkdir()
    write_labels(folder, labels)
    split = {"train": [sha256_bytes(b) for b in trained_on], "val": [], "test": []}
    (folder / "split.json").write_text(json.dumps(split))
    return folder


@pytest.fixture
def right_on(monkeypatch):
    """{model folder: the photos it names rightly}; the rule's scoring pass answers by it (a wrong answer is
    another class), over the union of the labels as score_models does."""
    right: dict = {}

    def score_models(model_dirs, images, labels, max_pixels):
        union = sorted(set(labels).union(CLASSES))
        y = np.array([union.index(label) for label in labels], dtype=np.int64)
        out = []
        for folder in model_dirs:
            probs = np.zeros((len(images), len(union)))
            for i, image in enumerate(images):
                probs[i, y[i] if image in right[folder] else (y[i] + 1) % len(union)] = 1.0
            out.append(Scores(union, y, probs))
        return out

    monkeypatch.setattr(promotion, "score_models", score_models)
    return right


def decide(candidate, serving, images, labels, margin: float = 0.0) -> dict:
    return promotion_decision(
        candidate, serving, 1 if serving else None, images, labels, metric="accuracy", margin=margin, max_pixels=10**8
    )


def stored_before(decision: dict) -> dict:
    """The same decision as registries on disk hold it from before `held_back`: the reason's words only."""
    return {k: v for k, v in decision.items() if k not in FIELDS}


def verdict(decision: dict) -> str:
    return promotion_verdict({"version": 2, "status": "rejected", "serving": False, "promotion": decision})


@pytest.fixture
def cases(tmp_path, right_on) -> dict[str, dict]:
    """One real decision per case, by name."""
    images, labels = photos(40)
    few, few_labels = photos(6, start=100)  # the serving model trained on `images`: only these are left
    everything = model(tmp_path, "everything", CLASSES)
    trained = model(tmp_path, "trained", CLASSES, trained_on=images)
    tomato = model(tmp_path, "tomato", CLASSES[:3])  # does not know Potato___Late_blight
    half = images[:30]
    right_on.update({everything: set(images) | set(few), trained: set(images) | set(few), tomato: set(half)})
    mixed = images + few
    weak = model(tmp_path, "weak", CLASSES)
    right_on[weak] = set(half)
    wrong = model(tmp_path, "wrong", CLASSES, trained_on=images)
    right_on[wrong] = set()
    tomato_few = model(tmp_path, "tomato_few", CLASSES[:3])
    right_on[tomato_few] = set(few)
    return {
        "better": decide(everything, weak, images, labels),
        "worse": decide(weak, everything, images, labels),
        "too_few": decide(everything, trained, mixed, labels + few_labels),
        "few_but_plainly_better": decide(everything, wrong, mixed, labels + few_labels),
        "forgets": decide(tomato, weak, images, labels),
        "worse_and_forgets": decide(tomato, everything, images, labels),
        "too_few_and_forgets": decide(tomato_few, trained, mixed, labels + few_labels),
        "none_left": decide(everything, trained, images, labels),
        "nothing_serves": decide(everything, None, images, labels),
    }


def test_the_decision_says_why_the_candidate_is_kept_back_as_codes(cases, right_on):
    held = {name: d["held_back"] for name, d in cases.items()}
    assert held == {
        "better": [],
        "worse": ["worse"],
        "too_few": ["too_few"],
        "few_but_plainly_better": [],
        "forgets": ["forgets"],
        "worse_and_forgets": ["worse", "forgets"],
        "too_few_and_forgets": ["too_few", "forgets"],
        "none_left": ["no_test_photos"],
        "nothing_serves": [],
    }
    for name, d in cases.items():  # promoted exactly when nothing holds it back
        assert d["promote"] is (not d["held_back"]), name
        counted = "forgets" in d["held_back"]
        assert ("lost_classes" in d, "known_classes" in d) == (counted, counted), name
    for name in ("forgets", "worse_and_forgets", "too_few_and_forgets"):
        assert (cases[name]["lost_classes"], cases[name]["known_classes"]) == (1, 4)
        assert type(cases[name]["lost_classes"]) is int and type(cases[name]["known_classes"]) is int
    assert cases["too_few"]["n_images"] == 6 < MIN_FAIR_IMAGES and cases["too_few"]["n_left_out"] == 40
    assert cases["worse"]["candidate"] == 0.75 and cases["worse"]["serving"] == 1.0
    json.dumps(cases)  # as the registry keeps it and GET /v1/models returns it


def test_the_reason_reads_as_before(cases):
    """The codes are beside the reason; the sentence a person reads is the same."""
    assert cases["worse"]["reason"] == (
        "candidate accuracy 0.7500 is worse than serving v1 1.0000 (margin 0.0) on 40 test images (none left out: the "
        "serving model trained on none of them); on the same photos the candidate alone is right on 0, the serving "
        "model alone on 10 (McNemar p = 0.002)"
    )
    assert cases["worse_and_forgets"]["reason"] == (
        cases["worse"]["reason"] + "; it does not know 1 of the serving model's 4 classes (Potato___Late_blight): "
        "served, it would answer those leaves as something else, so it is not promoted automatically; an admin can "
        "promote it by hand"
    )
    assert cases["too_few"]["reason"].endswith(
        f"; fewer than {MIN_FAIR_IMAGES} test images are left and they do not show the candidate better beyond "
        "chance: too few to replace the serving model automatically, an admin can promote it by hand"
    )
    assert cases["none_left"]["reason"] == (
        "no test image is left to compare on: the serving model trained on all 40; an admin can promote it by hand"
    )
    assert cases["nothing_serves"]["reason"] == "no model was serving"


VERDICTS = {
    "better": "promoted automatically",
    "worse": "kept as candidate: worse on 40 test photos",
    "too_few": "kept as candidate: 6 test photos are too few to tell",
    "few_but_plainly_better": "promoted automatically",
    "forgets": "kept as candidate: does not know 1 of v1's 4 classes",
    "worse_and_forgets": "kept as candidate: does not know 1 of v1's 4 classes",  # what matters most
    "too_few_and_forgets": "kept as candidate: does not know 1 of v1's 4 classes",
    "none_left": "kept as candidate: no test photos left to compare on",
    "nothing_serves": "promoted automatically",
}


@pytest.mark.parametrize("name", VERDICTS)
def test_the_models_table_says_each_decision_in_a_few_words(cases, name):
    assert verdict(cases[name]) == VERDICTS[name]
    assert promotion_details({"version": 2, "promotion": cases[name]}).startswith(f"**Version 2: {VERDICTS[name]}.**")


@pytest.mark.parametrize("name", VERDICTS)
def test_a_decision_stored_before_the_codes_reads_the_same(cases, name):
    """Registries on disk hold decisions with the reason's words only: the table says them as before."""
    old = stored_before(cases[name])
    assert "held_back" not in old
    assert verdict(old) == VERDICTS[name]


@pytest.mark.parametrize("name", [n for n in VERDICTS if VERDICTS[n] != "promoted automatically"])
def test_the_verdict_is_read_from_the_codes_not_the_words(cases, name):
    """The reason's words changed (another wording, another language): the codes still give the same verdict."""
    reworded = {**cases[name], "reason": "le candidat est moins bon que le modèle servi (too few, worse than)"}
    assert verdict(reworded) == VERDICTS[name]
    assert verdict({**cases[name], "reason": ""}) == VERDICTS[name]


def test_the_codes_win_over_the_words_and_the_counts_are_the_fields(cases):
    worse_words = cases["worse"]
    assert verdict({**worse_words, "held_back": ["too_few"]}) == "kept as candidate: 40 test photos are too few to tell"
    forgets = {**cases["forgets"], "lost_classes": 31, "known_classes": 34}
    assert verdict(forgets) == "kept as candidate: does not know 31 of v1's 34 classes"
    assert verdict({**cases["forgets"], "held_back": []}) == "kept as candidate"


def test_models_add_and_promote_refuse_only_a_worse_model(cases):
    """`leafdoc models add/promote` refuse (unless --force) when the rule's decision says "worse", not when it keeps
    the model back for too few photos or classes it does not know (lifecycle/against_serving.worse)."""
    refused = {name for name, d in cases.items() if worse(d)}
    assert refused == {"worse", "worse_and_forgets"}
    assert not worse(None)
