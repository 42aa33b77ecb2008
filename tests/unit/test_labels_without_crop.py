"""A label without PlantVillage's three underscores (`Crop___Condition`) names no crop: a lab that names its class
folders `early blight`, `healthy`, `late blight` (as docs/guide-train-your-own.md allows) gets a model that knows no
crops, not one whose every condition is a crop of its own. GET /v1/models lists none (fieldcrops.crops_known), the API's
`crop` and `leafdoc predict --crop` take none (cropfirst.parse_crop: saying to leave the crop out), the page's crop
dropdown offers none, and what the model knows is said without a count of crops. A model with some labels of each
kind lists only the crops its labels name, and a crop's labels never include one that names no crop."""

from __future__ import annotations

import numpy as np
import pytest

from leafdoc.core.errors import UnknownCrop
from leafdoc.core.i18n import LANGUAGES
from leafdoc.inference.abstain import decide
from leafdoc.inference.cropfirst import crop_indices, crops_of, parse_crop
from leafdoc.inference.fieldcrops import crops_known, label_crops
from leafdoc.modelfolder import ModelCard
from leafdoc.words.labels import names_crop
from leafdoc.words.photo_guide import knows_note, knows_sentences, serving_crops

LAB = ["early blight", "healthy", "late blight"]
# some labels name their crop, some do not (a `Tomato` class too: it is no crop of tomato's labels)
MIXED = ["Tomato___Early_blight", "Tomato___Late_blight", "healthy", "Tomato", "Potato___Late_blight"]
CARD = ModelCard.model_construct(abstain={"min_confidence": 0.6})


def test_a_label_names_a_crop_only_with_the_three_underscores():
    assert names_crop("Tomato___Late_blight") and names_crop("Corn_(maize)___healthy")
    assert not any(names_crop(label) for label in [*LAB, "Tomato", "Septoria leaf spot", "leaf__mold"])


def test_labels_that_name_no_crop_give_a_model_of_no_crops():
    assert label_crops(LAB) == crops_of(LAB) == []
    assert crops_known(LAB, None) == {"field": [], "lab_only": []}
    # a `field.learnt` from field photos of such classes names no crop either
    assert crops_known(LAB, {"learnt": {"crops": LAB, "min_confidence": 0.8}}) == {"field": [], "lab_only": []}
    assert all(len(crop_indices(LAB, c)) == 0 for c in ["healthy", "early blight"])


@pytest.mark.parametrize("text", ["healthy", "late blight", "tomato", "Tomato___Late_blight"])
def test_a_crop_named_to_a_model_of_no_crops_is_refused_saying_to_leave_it_out(text):
    with pytest.raises(UnknownCrop) as e:
        parse_crop(text, LAB)
    assert e.value.status == 422 and e.value.code == "unknown_crop"
    assert repr(text) in e.value.message
    assert "knows no crops" in e.value.message and "name none (`Crop___Condition`" in e.value.message
    assert e.value.hint.startswith("Leave the crop out")
    assert parse_crop("", LAB) is None and parse_crop(None, LAB) is None  # no crop: every label, as before


def test_with_some_labels_of_no_crop_only_the_crops_named_are_listed_and_taken():
    assert crops_of(MIXED) == ["Potato", "Tomato"]
    assert crops_known(MIXED, None) == {"field": [], "lab_only": ["potato", "tomato"]}
    assert parse_crop("tomato", MIXED) == "Tomato" and parse_crop("POTATO", MIXED) == "Potato"
    with pytest.raises(UnknownCrop) as e:
        parse_crop("healthy", MIXED)
    assert "'potato' and 'tomato'" in e.value.message  # the crops it knows, not "no crops"
    # tomato's labels are its `Tomato___` ones: neither `healthy` nor the class named `Tomato`
    assert crop_indices(MIXED, "Tomato").tolist() == [0, 1]
    assert crop_indices(MIXED, "Potato").tolist() == [4]


def test_crop_first_answers_among_the_crops_labels_only_never_one_that_names_no_crop():
    p = np.array([0.1, 0.15, 0.3, 0.4, 0.05])  # the class named `Tomato` leads, then `healthy`
    d = decide(p, MIXED, CARD, crop="Tomato")
    # among Tomato___Early_blight and Tomato___Late_blight only: late blight, 0.15 / 0.25 = 0.6
    assert not d.abstained and d.threshold == 0.6
    unsure = decide(np.array([0.12, 0.13, 0.3, 0.4, 0.05]), MIXED, CARD, crop="Tomato")
    assert unsure.abstained and set(unsure.candidates) <= {"Tomato___Early_blight", "Tomato___Late_blight"}


def test_a_model_of_no_crops_says_how_many_kinds_of_leaf_it_knows_and_no_crops():
    en = knows_sentences(LAB, crops_known(LAB, None), "en")
    assert en[0] == "**This model knows 3 kinds of leaf.**"
    assert not any("crop 0" in s or "0 crops" in s or "plain background" in s for s in en[:-1])
    es = knows_sentences(LAB, crops_known(LAB, None), "es")
    assert es[0] == "**Este modelo conoce 3 tipos de hoja.**"
    for lang in LANGUAGES:  # translated, the kinds filled in
        said = knows_sentences(LAB, crops_known(LAB, None), lang)[0]
        assert "3" in said and "{" not in said and (lang == "en" or "knows" not in said), lang


def test_a_model_with_labels_of_no_crop_does_not_count_its_kinds_of_leaf_as_of_its_crops():
    said = knows_sentences(MIXED, crops_known(MIXED, None), "en")
    assert said[0] == "**This model knows 5 kinds of leaf.**"
    assert said[1] == "Learnt only from one leaf on a plain background (photograph them that way): potato and tomato."
    # every label of a crop: counted as before
    starter_like = ["Tomato___Early_blight", "Tomato___healthy", "Potato___healthy"]
    assert knows_sentences(starter_like, crops_known(starter_like, None))[0] == (
        "**This model knows 3 kinds of leaf of 2 crops.**"
    )
    assert knows_sentences(starter_like[:2], crops_known(starter_like[:2], None))[0] == (
        "**This model knows 2 kinds of leaf of 1 crop.**"
    )


def test_the_page_and_the_app_get_no_crops_for_their_dropdown_from_such_a_model():
    row = {"version": 3, "labels": LAB, "crops": crops_known(LAB, None)}
    models = {"serving_version": 3, "models": [row]}
    assert serving_crops(models) == []
    assert knows_note(models).startswith("**This model knows 3 kinds of leaf.** A leaf of another crop")
    mixed = {"serving_version": 1, "models": [{"version": 1, "labels": MIXED, "crops": crops_known(MIXED, None)}]}
    assert serving_crops(mixed) == ["potato", "tomato"]


def test_the_offline_page_gets_no_crops_and_says_what_the_model_knows_without_them():
    from leafdoc.advice import shipped_knowledge
    from leafdoc.offline.texts import all_texts

    texts = all_texts(LAB, shipped_knowledge(), None, {})
    for lang in LANGUAGES:
        assert texts[lang]["crops"] == {} and texts[lang]["single_label"] == {}, lang
    assert texts["en"]["knows"][0] == "This model knows 3 kinds of leaf."
    assert texts["es"]["knows"][0] == "Este modelo conoce 3 tipos de hoja."
    mixed = all_texts(MIXED, shipped_knowledge(), None, {})["en"]
    assert mixed["crops"] == {"Potato": "potato", "Tomato": "tomato"}
    assert list(mixed["single_label"]) == ["Potato"]  # tomato has two labels: `Tomato` is not one of them


def test_the_app_hides_its_crop_box_for_a_model_of_no_crops():
    pytest.importorskip("PySide6.QtWidgets")
    from unittest.mock import MagicMock

    from leafdoc.desktop.diagnose import DiagnoseTab

    tab = MagicMock()
    tab.crop.findData.return_value = -1
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("leafdoc.desktop.diagnose.get_str", lambda *_a: "tomato")
        DiagnoseTab.fill_crops(tab, [])
        tab.crop.setVisible.assert_called_with(False)
        tab.crop_title.setVisible.assert_called_with(False)
        tab.crop.setCurrentIndex.assert_called_with(0)  # the crop picked last, for another model: not sent
        DiagnoseTab.fill_crops(tab, ["potato", "tomato"])
        tab.crop.setVisible.assert_called_with(True)
        tab.crop_title.setVisible.assert_called_with(True)


@pytest.mark.parametrize(
    "labels, shown, choices",
    [(LAB, False, [""]), (MIXED, True, ["", "potato", "tomato"])],
)
def test_the_web_page_hides_its_crop_dropdown_for_a_model_of_no_crops(monkeypatch, labels, shown, choices):
    pytest.importorskip("gradio")
    from contextlib import contextmanager

    from leafdoc.ui import diagnose_tab

    class FakeApi:
        def ready(self):
            return {"keep_photos": False}

        def models(self):
            row = {"version": 1, "labels": labels, "crops": crops_known(labels, None)}
            return {"serving_version": 1, "models": [row]}

        def model(self, version):
            return {"card": {}}

    @contextmanager
    def fake_client(settings, request):
        yield FakeApi()

    monkeypatch.setattr(diagnose_tab, "api_client", fake_client)
    out = diagnose_tab.notes_handler(None, [])(None)
    crop = out[2]
    assert crop["visible"] is shown and [value for _name, value in crop["choices"]] == choices
    # and if the API did not answer, the dropdown stays as it was ("I don't know", shown)

    @contextmanager
    def broken(settings, request):
        raise OSError("no server")
        yield

    monkeypatch.setattr(diagnose_tab, "api_client", broken)
    assert diagnose_tab.notes_handler(None, [])(None)[2]["visible"] is True


@pytest.mark.parametrize(
    ("shares", "opening", "names_the_crop"),
    [
        ({"Tomato___Late_blight": 0.5, "Tomato___Early_blight": 0.45}, "Not sure which disease this is.", False),
        ({"Tomato___Late_blight": 0.5, "Tomato___healthy": 0.45}, "Not sure what this is.", False),
        ({"Tomato___Late_blight": 0.5, "Strawberry___Leaf_scorch": 0.45}, "Not sure which disease this is.", True),
        ({"Tomato___healthy": 0.5, "Strawberry___Leaf_scorch": 0.45}, "Not sure what this is.", True),
        ({"late blight": 0.5, "healthy": 0.45}, "Not sure what this is.", False),  # a lab's folders: no crop named
    ],
)
def test_not_sure_says_what_the_candidates_allow(shares, opening, names_the_crop):
    """A healthy leaf among the candidates: "which disease" read as if the leaf were surely sick; candidates of
    several crops: naming the crop is what narrows the answer (the review of session 71, a healthy tomato leaf "could
    be Tomato — Late blight or Strawberry — Leaf scorch")."""
    labels = [*shares, *(f"Other___c{i}" for i in range(3))]
    probs = np.array([*shares.values(), *[(1 - sum(shares.values())) / 3] * 3])
    decision = decide(probs, labels, CARD)  # sure at 0.6: none of these is
    assert decision.reason == "unsure" and decision.message.startswith(opening), decision.message
    assert ("if you know which crop this is" in decision.message) == names_the_crop, decision.message
