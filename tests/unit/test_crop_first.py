"""Crop first (inference/cropfirst.py): the crop a grower names is read as the API lists it or as the labels' prefix,
the probabilities are renormalised over that crop's labels, and the abstention rules apply to the renormalised ones;
a crop of one label is not made certain by renormalising."""

from __future__ import annotations

import numpy as np
import pytest

from leafdoc.core.errors import UnknownCrop
from leafdoc.inference.abstain import decide
from leafdoc.inference.cropfirst import (
    CROP_MISMATCH_SHARE,
    crop_indices,
    crop_share,
    crops_of,
    parse_crop,
    within_crop,
)
from leafdoc.modelfolder import ModelCard
from leafdoc.words.photo_guide import answer_notes

LABELS = [
    "Blueberry___healthy",
    "Corn_(maize)___Common_rust_",
    "Corn_(maize)___healthy",
    "Pepper,_bell___Bacterial_spot",
    "Pepper,_bell___healthy",
    "Tomato___Early_blight",
    "Tomato___Late_blight",
    "Tomato___healthy",
]
CARD = ModelCard.model_construct(abstain={"min_confidence": 0.6})


def probs(**given: float) -> np.ndarray:
    """Probabilities with `given` ones (label index -> probability, as `i5=0.3`), the rest shared evenly."""
    out = np.zeros(len(LABELS))
    for key, p in given.items():
        out[int(key[1:])] = p
    rest = [i for i in range(len(LABELS)) if f"i{i}" not in given]
    out[rest] = (1 - out.sum()) / len(rest)
    return out


@pytest.mark.parametrize(
    "text, crop",
    [
        ("tomato", "Tomato"),
        ("  TOMATO ", "Tomato"),
        ("corn", "Corn_(maize)"),
        ("Corn_(maize)", "Corn_(maize)"),
        ("corn (maize)", "Corn_(maize)"),
        ("bell pepper", "Pepper,_bell"),
        ("pepper, bell", "Pepper,_bell"),
        ("Pepper,_bell", "Pepper,_bell"),
        ("PEPPER,  BELL", "Pepper,_bell"),
    ],
)
def test_a_crop_is_read_as_the_api_lists_it_or_as_the_labels_prefix_in_any_case(text, crop):
    assert parse_crop(text, LABELS) == crop


@pytest.mark.parametrize("text", [None, "", "   "])
def test_no_crop_means_every_label(text):
    assert parse_crop(text, LABELS) is None


@pytest.mark.parametrize("text", ["potato", "pepper", "Tomato___Late_blight", "tomatoes"])
def test_an_unknown_crop_is_refused_with_the_crops_the_model_knows(text):
    with pytest.raises(UnknownCrop) as e:
        parse_crop(text, LABELS)
    assert e.value.status == 422 and e.value.code == "unknown_crop"
    assert repr(text) in e.value.message
    for name in ("'blueberry'", "'corn'", "'bell pepper'", "'tomato'"):
        assert name in e.value.message


def test_renormalised_over_the_crop_the_ratios_stay_and_the_rest_is_zero():
    p = probs(i5=0.1, i6=0.05, i7=0.05, i1=0.7)
    among = crop_indices(LABELS, "Tomato")
    assert list(among) == [5, 6, 7] and crops_of(LABELS) == ["Blueberry", "Corn_(maize)", "Pepper,_bell", "Tomato"]
    r = within_crop(p, among)
    assert r.sum() == pytest.approx(1.0) and np.all(r[[0, 1, 2, 3, 4]] == 0)
    assert r[5] == pytest.approx(0.5) and r[6] == pytest.approx(0.25) and r[7] == pytest.approx(0.25)
    assert crop_share(p, among) == pytest.approx(0.2)
    # all but certain of another crop, so that float32 gave the crop nothing: every label of the crop alike
    zero = np.zeros(len(LABELS), dtype=np.float32)
    zero[1] = 1.0
    assert np.allclose(within_crop(zero, among)[among], 1 / 3)


def test_with_the_crop_given_the_answer_is_that_crops_most_likely_label_even_when_another_crop_leads():
    p = probs(i1=0.7, i6=0.2, i5=0.05)  # corn rust leads; among tomato, late blight (0.2 / 0.27 = 0.74 > 0.6)
    assert not decide(p, LABELS, CARD).abstained  # without the crop: corn rust, answered
    d = decide(p, LABELS, CARD, crop="Tomato")
    assert not d.abstained and d.threshold == 0.6


def test_a_crop_the_model_all_but_rules_out_is_not_made_a_sure_answer_of_another_condition():
    # A tomato late blight leaf said to be bell pepper: renormalised, "bell pepper, healthy" would be 2/3 sure; with
    # the bell pepper labels at 0.5% of the probability, the answer is "not sure", saying what the leaf looks like.
    p = probs(i6=0.97, i3=0.0015, i4=0.003)
    d = decide(p, LABELS, CARD, crop="Pepper,_bell")
    assert d.abstained and d.reason == "unsure" and not d.candidates
    assert "looks like Tomato — Late blight, not like bell pepper" in d.message and "Check that the crop" in d.message
    assert not decide(p, LABELS, CARD).abstained  # without the crop: late blight, answered
    # the same leaf said to be corn: corn healthy is its best label, another condition: not sure either
    assert decide(probs(i6=0.97, i1=0.001, i2=0.003), LABELS, CARD, crop="Corn_(maize)").abstained
    # the same condition in the crop named is what naming the crop is for: answered (tomato early blight taken for
    # another crop's early blight is written here as a corn leaf with rust: the condition names must match)
    same = probs(i1=0.97, i5=0.001, i6=0.0005, i7=0.0005)
    assert decide(same, LABELS, CARD, crop="Tomato").abstained  # early blight is not common rust
    labels = [*LABELS[:-1], "Tomato___Common_rust_"]  # a crop with the condition the model sees
    kept = decide(probs(i1=0.97, i7=0.004, i5=0.0005, i6=0.0005), labels, CARD, crop="Tomato")
    assert not kept.abstained
    # a share at CROP_MISMATCH_SHARE or more is renormalised as before, whatever its condition
    share = CROP_MISMATCH_SHARE + 0.001
    assert not decide(probs(i6=0.97 - share, i4=share), LABELS, CARD, crop="Pepper,_bell").abstained


def test_the_threshold_and_the_candidates_apply_to_the_renormalised_probabilities():
    # among tomato: early 0.2, late 0.18, healthy ~0.02: under the threshold, so not sure between early and late
    p = probs(i1=0.55, i5=0.2, i6=0.18)
    d = decide(p, LABELS, CARD, crop="Tomato")
    assert d.abstained and d.reason == "unsure"
    assert d.candidates == ("Tomato___Early_blight", "Tomato___Late_blight")
    assert "%" not in d.message
    # the same photo without the crop: corn rust at 0.55 is under the threshold too, and corn is a candidate
    assert "Corn_(maize)___Common_rust_" in decide(p, LABELS, CARD).candidates
    # renormalising can lift an answer over the threshold: 0.5 of everything, but 0.5 / 0.6 of the corn
    lifted = probs(i1=0.5, i2=0.1)
    assert decide(lifted, LABELS, CARD).abstained and not decide(lifted, LABELS, CARD, crop="Corn_(maize)").abstained


def test_the_photo_checks_are_unchanged_by_the_crop():
    from leafdoc.imaging.quality import PhotoProblem

    dark = PhotoProblem("too_dark", "it is too dark")
    d = decide(probs(i5=0.9), LABELS, CARD, problems=[dark], crop="Tomato")
    assert d.abstained and d.reason == "poor_photo"
    card = ModelCard.model_construct(abstain={"min_confidence": 0.6}, ood={"threshold": 1.0})
    assert decide(probs(i5=0.9), LABELS, card, ood_score=5.0, crop="Tomato").reason == "not_a_leaf"


def test_a_field_photo_is_of_the_crop_the_grower_gave_not_of_the_models_guess():
    field = {"threshold": 0.0, "learnt": {"crops": ["Tomato"], "min_confidence": 0.7}}
    card = ModelCard.model_construct(field=field, ood={"threshold": 9.0}, abstain={"min_confidence": 0.6})
    p = probs(i1=0.6, i5=0.35)  # the model guesses corn, known only from lab photos
    unaided = decide(p, LABELS, card, field_score=1.0, field_like=True)
    assert unaided.reason == "unlike_training" and "field photo of corn" in unaided.message
    given = decide(p, LABELS, card, field_score=1.0, field_like=True, crop="Tomato")
    assert not given.abstained and given.threshold == 0.7  # tomato is learnt from field photos: its threshold
    lab_only = decide(probs(i5=0.9), LABELS, card, field_score=1.0, field_like=True, crop="Pepper,_bell")
    assert lab_only.reason == "unlike_training" and "field photo of bell pepper" in lab_only.message


def test_a_crop_of_one_label_is_answered_only_when_the_model_names_that_label_unaided():
    named = decide(probs(i0=0.9), LABELS, CARD, crop="Blueberry")
    assert not named.abstained
    other = decide(probs(i6=0.9, i0=0.05), LABELS, CARD, crop="Blueberry")
    assert other.abstained and other.reason == "unsure" and other.candidates == ()
    assert "blueberry leaves in one condition only (healthy)" in other.message
    weak = decide(probs(i0=0.4, i6=0.3), LABELS, CARD, crop="Blueberry")  # top, but under the threshold
    assert weak.abstained and "one condition only" in weak.message


def test_the_page_and_the_app_say_which_crop_was_given_and_when_the_model_doubted_it():
    assert answer_notes({"crop_given": None}) == []
    said = answer_notes({"crop_given": "tomato", "crop_share": 0.97})
    assert len(said) == 1 and "You said this is tomato" in said[0]
    doubted = answer_notes({"crop_given": "potato", "crop_share": 0.0001})
    assert len(doubted) == 2 and "another crop than potato" in doubted[1]
    # a refusal between two of the crop's conditions says it too; one that says what is wrong instead does not
    # repeat it ("looks like tomato early blight, not like corn. Check that the crop is right" was followed by
    # "check that the crop is right, since the answer can only be a condition of corn", under no answer)
    between = {"crop_given": "potato", "crop_share": 0.3, "abstained": True, "reason": "unsure"}
    assert "another crop than potato" in answer_notes({**between, "candidates": ["a", "b"]})[1]
    for reason in ("unsure", "unlike_training", "unknown_leaf", "poor_photo", "not_a_leaf"):
        said = answer_notes({**between, "crop_share": 0.001, "reason": reason, "candidates": []})
        assert len(said) == 1 and "You said this is potato" in said[0], said
