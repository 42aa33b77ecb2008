"""fieldcrops.py: a field photo of a crop the model learnt from field photos is answered when the model is sure; a
field photo of a crop it knows only from lab photos is refused in words that say so; lab photos are unaffected."""

from __future__ import annotations

import numpy as np
import pytest

from leafdoc.inference.abstain import decide
from leafdoc.inference.fieldcrops import choose_threshold, crop_name, crop_of, crops_known, field_part
from leafdoc.modelfolder import ModelCard

LABELS = ["Apple___Apple_scab", "Corn_(maize)___Common_rust_", "Corn_(maize)___healthy", "Tomato___Late_blight"]


def card(learnt: dict | None) -> ModelCard:
    field = {"threshold": 0.0, **({"learnt": learnt} if learnt else {})}
    return ModelCard.model_construct(field=field, ood={"threshold": 9.0}, abstain={"min_confidence": 0.5})


def probs(top: int, p: float) -> np.ndarray:
    out = np.full(len(LABELS), (1 - p) / (len(LABELS) - 1))
    out[top] = p
    return out


LEARNT = {"crops": ["Corn_(maize)", "Tomato"], "min_confidence": 0.8}


def test_names_of_crops_read_as_a_sentence_says_them():
    assert crop_of("Corn_(maize)___Common_rust_") == "Corn_(maize)"
    assert crop_name("Corn_(maize)") == "corn" and crop_name("Pepper,_bell") == "bell pepper"
    assert field_part(b"x") in ("train", "val", "test")


def test_a_field_photo_of_a_learnt_crop_is_answered_only_above_its_own_threshold():
    sure = decide(probs(1, 0.9), LABELS, card(LEARNT), field_score=1.0, field_like=True)
    assert not sure.abstained and sure.threshold == 0.8
    # 0.7 would answer a lab photo (threshold 0.5) but not a field photo: unsure, between candidates
    doubt = decide(probs(1, 0.7), LABELS, card(LEARNT), field_score=1.0, field_like=True)
    assert doubt.abstained and doubt.reason == "unsure" and "Corn_(maize)___Common_rust_" in doubt.candidates
    lab = decide(probs(1, 0.7), LABELS, card(LEARNT), field_score=-1.0, field_like=False)
    assert not lab.abstained  # not a field photo: the lab threshold, as before


def test_a_field_photo_of_a_lab_only_crop_is_refused_in_those_words():
    d = decide(probs(0, 0.99), LABELS, card(LEARNT), field_score=1.0, field_like=True)
    assert d.abstained and d.reason == "unlike_training"
    assert "field photo of apple" in d.message and "apple only from lab photos" in d.message
    assert "corn and tomato" in d.message
    nonleaf = decide(probs(1, 0.99), LABELS, card(LEARNT), field_score=1.0, field_like=False)
    assert nonleaf.reason == "not_a_leaf"


def test_without_learnt_crops_every_field_photo_is_refused_as_before():
    d = decide(probs(1, 0.99), LABELS, card(None), field_score=1.0, field_like=True)
    assert d.abstained and d.reason == "unlike_training" and "only from lab photos" not in d.message


@pytest.mark.parametrize("precision", [0.8, 0.9])
def test_the_threshold_is_the_lowest_that_keeps_answers_right_often_enough(precision):
    rng = np.random.default_rng(0)
    top = rng.uniform(0.3, 1.0, 400)
    right = rng.uniform(0, 1, 400) < top  # surer answers are right more often
    flagged = np.ones(400, bool)
    t, fig = choose_threshold(top, right, flagged, np.zeros(400, bool), precision)
    answered = top >= t
    assert right[answered].mean() >= precision
    lower = top[top < t].max()  # the next lower candidate would fall short
    assert right[top >= lower].mean() < precision
    assert fig["val_answered"] == pytest.approx(answered.mean(), abs=1e-4)
    # photos the check does not call field photos are decided by the lab rules, whatever the threshold
    lab = np.zeros(400, bool)
    lab[:10] = True
    _, fig2 = choose_threshold(top, right, np.arange(400) >= 10, lab, precision)
    assert fig2["n_val"] == 400


def test_a_model_says_which_crops_it_learnt_in_the_field_and_which_only_in_the_lab():
    from leafdoc.inference.fieldcrops import crops_known

    assert crops_known(LABELS, {"learnt": LEARNT}) == {"field": ["corn", "tomato"], "lab_only": ["apple"]}
    assert crops_known(LABELS, None) == {"field": [], "lab_only": ["apple", "corn", "tomato"]}


def test_the_page_and_the_app_say_what_the_serving_model_knows_from_which_photos():
    from leafdoc.inference.fieldcrops import crops_known
    from leafdoc.words.photo_guide import knows_note

    def models(field) -> dict:
        row = {"version": 2, "labels": LABELS, "crops": crops_known(LABELS, field)}
        return {"serving_version": 2, "models": [{"version": 1, "labels": ["a", "b"], "crops": {}}, row]}

    said = knows_note(models({"learnt": LEARNT}))
    assert said.startswith("**This model knows 4 kinds of leaf of 3 crops.**")
    assert "Learnt from photos taken on the plant too: corn and tomato." in said
    assert "Learnt only from one leaf on a plain background (photograph them that way): apple." in said
    lab = knows_note(models(None))
    assert "on the plant" not in lab and "plain background (photograph them that way): apple, corn and tomato" in lab
    # and that a leaf of something else is not refused for sure (a lab's 3-class model refused a quarter of them)
    assert lab.endswith("A leaf of another crop, or with another condition, may get one of these answers.")
    assert knows_note({"serving_version": None, "models": []}) is None  # nothing serves: nothing to say


def test_the_offline_page_says_what_the_model_knows_and_cannot_do_as_the_web_page_does():
    """The offline page (/app) said neither what its model knows nor its limitations: a grower in a field with no
    connection did not read that apple is known only from one leaf on a plain background. model.json now carries them
    in every language, in the web page's words (its bold taken off: the page makes the first sentence bold)."""
    import json

    from tests.conftest import REPO

    from leafdoc.advice import shipped_knowledge
    from leafdoc.core.i18n import LANGUAGES, gettext
    from leafdoc.offline.texts import all_texts
    from leafdoc.words.model_card import LIMITS_TITLE, limits_words
    from leafdoc.words.photo_guide import knows_note

    starter = REPO / "models" / "starter"
    card = json.loads((starter / "card.json").read_text(encoding="utf-8"))
    labels = json.loads((starter / "labels.json").read_text())
    texts = all_texts(labels, shipped_knowledge(), card["field"], card)
    row = {"version": 1, "labels": labels, "crops": crops_known(labels, card["field"])}
    served = {"serving_version": 1, "models": [row]}
    for lang in LANGUAGES:
        t = texts[lang]
        assert " ".join(t["knows"]) == knows_note(served, lang).replace("**", ""), lang
        lead = lang != "en"  # another language: a line saying whose words and in what language, first
        assert t["limits"] == limits_words({"card": card}, lang) and len(t["limits"]) == 1 + lead, lang
        assert t["limits_title"] == gettext(lang, LIMITS_TITLE)
    assert "apple" in texts["en"]["knows"][2] and "plain background" in texts["en"]["knows"][2]
    assert texts["hi"]["limits"][1].startswith("केवल 11 फ़सलों की ये 34 श्रेणियाँ जानता है")
    # a card with no limitations: nothing to fold
    assert all_texts(labels, shipped_knowledge(), card["field"], {})["fr"]["limits"] == []


def test_a_hand_edited_cards_limitations_name_no_server_folder_on_the_offline_page():
    """A lab that wrote its card's limitations by hand may name where its photos live; GET /v1/models answered them
    with the folders taken off, but /app/model.json passed them as written, to anyone who opens the page."""
    from leafdoc.offline.routes import limits_of

    edited = ModelCard.model_construct(
        limitations="Trained on /srv/lab/photos/2026/tomato only; see /srv/lab/notes.txt.",
        limitations_translated={"es": "Entrenado con /srv/lab/photos/2026/tomato solamente."},
    )
    out = limits_of(edited)
    assert out == {
        "limitations": "Trained on tomato only; see notes.txt.",
        "limitations_translated": {"es": "Entrenado con tomato solamente."},
    }
