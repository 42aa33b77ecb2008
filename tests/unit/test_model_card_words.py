"""A model version's card in words (words/model_card.py): the one rendering of `leafdoc models show`, the web page's
models table and the desktop app's Retrain tab, on the shipped starter's own card."""

from __future__ import annotations

import json

from leafdoc.core.i18n import label_words
from leafdoc.modelfolder import starter_model_dir
from leafdoc.words.model_card import card_markdown, card_sections, card_text, limits_note


def starter(**kw) -> dict:
    """The starter as GET /v1/models/{version} gives it (version 2, serving)."""
    folder = starter_model_dir()
    card = json.loads((folder / "card.json").read_text())
    labels = json.loads((folder / "labels.json").read_text())
    return {
        "version": 2,
        "status": "serving",
        "serving": True,
        "source": "seed:starter",
        "labels": labels,
        "card": card,
        **kw,
    }


def flat(text: str) -> str:
    return " ".join(text.split())


def test_the_starters_card_reads_at_80_columns_with_its_own_sentences_and_figures():
    model = starter()
    card = model["card"]
    text = card_text(model)
    assert all(len(line) <= 80 for line in text.splitlines()), max(text.splitlines(), key=len)
    said = flat(text)
    assert said.startswith("Model version 2 · serving")
    # what it learnt from, with the data's licences, and its limitations: the card's own sentences, whole
    assert flat(card["provenance"].split("\n")[0]) in said and "Image licence: CC BY-SA 3.0" in said
    assert flat(card["limitations"]) in said
    # the test accuracy with the photos it was measured on, the answered share on validation, never "100.0%"
    assert "Test accuracy 99.1% of 5,221 test photos" in said
    assert (
        "it answered 5,118 of 5,198 (98.5%) and was not sure of the rest, right on 5,111 of the 5,118 it answered "
        "(99.9%)" in said
    )
    assert "100.0%" not in said and ">99.9%" in said
    # the classes, counted and grouped by crop
    assert "The classes it knows: 34 of 11 crops" in said
    assert "Tomato (10): Bacterial spot; Early blight;" in said and "Apple (4): Apple scab" in said
    # the faces name a class as an answer does (the advice's title), not by PlantVillage's folder name
    from leafdoc.advice.render import english_label

    named = flat(card_text(model, name=english_label))
    assert "Orange (citrus) (1): Huanglongbing (citrus greening)" in named and "Haunglongbing" not in named
    assert "Corn (maize) (4): Gray leaf spot (Cercospora leaf spot); Common rust; Northern corn leaf blight" in named
    titles = [s.title for s in card_sections(model)]
    assert titles[1:] == ["What it learnt from", "The classes it knows: 34 of 11 crops", "Test figures", "Limitations"]


def test_the_weakest_classes_recall_is_given_when_the_card_keeps_per_class_figures():
    model = starter()
    model["card"]["metrics"]["test"]["per_class"] = {
        "Corn_(maize)___Cercospora_leaf_spot Gray_leaf_spot": {"recall": 0.74, "support": 73},
        "Tomato___Early_blight": {"recall": 0.96, "support": 100},
        "Apple___healthy": {"recall": 1.0, "support": 250},
        "Grape___healthy": {"recall": 0.99, "support": 80},
    }
    said = flat(card_text(model))
    assert (
        "Weakest classes (recall on the test photos): Corn (maize) — Cercospora leaf spot Gray leaf spot 74.0%, 54 of "
        "73; Tomato — Early blight 96.0%, 96 of 100; Grape — healthy 99.0%, 79 of 80." in said
    )
    assert "keeps no per-class figures" not in said


def test_a_card_without_figures_or_limitations_says_so_and_markdown_escapes_labels():
    model = {"version": 5, "status": "candidate", "labels": ["rose*rust", "rose_healthy"], "card": {}}
    said = flat(card_text(model))
    assert "Model version 5 · candidate" in said and "No test figures in this card." in said
    # labels that name no crop (`Crop___condition`) are classes, not crops: "2 of 2 crops" was said of them
    assert "The card states none." in said and "The classes it knows: 2 ─" in said and "crop" not in said
    md = card_markdown(model)
    assert "rose\\*rust" in md and "#### Limitations" in md
    assert limits_note(model) is None


def test_a_grower_reads_the_serving_models_limitations_under_a_title_in_their_language():
    model = starter()
    note = limits_note(model)
    assert note.startswith("<details><summary>What this model cannot do</summary>")
    assert "Knows only these 34 classes of 11 crops" in note and "In English" not in note
    # The starter's card has them in each of the page's languages: a grower reads them so, marked unreviewed.
    spanish = limits_note(model, "es")
    assert "<summary>Lo que este modelo no sabe hacer</summary>" in spanish and "sin revisar" in spanish
    assert "Solo conoce estas 34 clases de 11 cultivos" in spanish and "Knows only" not in spanish
    hindi = limits_note(model, "hi")
    assert "केवल 11 फ़सलों की ये 34 श्रेणियाँ जानता है" in hindi and "Knows only" not in hindi
    # A card without them (or without the page's language) shows its English, said to be English.
    del model["card"]["limitations_translated"]["fr"]
    french = limits_note(model, "fr")
    assert "en anglais" in french and "Knows only these 34 classes of 11 crops" in french
    model["card"]["limitations"] = ""  # no limitations: no translation shown either
    assert limits_note(model, "es") is None


def test_test_figures_on_photos_the_starting_network_learnt_are_not_called_unseen():
    """A lab's model started from the starter and tested on PlantVillage photos the starter learnt: its card counts
    them (dataset.test_learnt_by_start), and the card's words must not call its test photos ones no training saw."""
    model = starter()
    assert "of 5,221 test photos, photos no training saw" in flat(card_text(model))  # the starter's own: unseen
    model["card"]["dataset"]["test_learnt_by_start"] = 25
    said = flat(card_text(model))
    assert "test photos, photos no training saw" not in said
    assert "test photos, 25 of which the network it started from learnt: the figure overstates it" in said


def test_the_starters_card_names_its_weakest_classes_with_figures_that_add_up_to_its_accuracy():
    """The starter's card kept no per-class figures, so a lab reading it could not see that tomato early blight is the
    class it finds least often. Its `per_class` must account for every test photo and give the card's accuracy."""
    model = starter()
    test = model["card"]["metrics"]["test"]
    per_class = test["per_class"]
    assert set(per_class) <= set(model["labels"]) and sum(c["support"] for c in per_class.values()) == test["n"]
    right = sum(round(c["recall"] * c["support"]) for c in per_class.values())
    assert right == round(test["accuracy"] * test["n"])
    lowest = min(per_class, key=lambda label: per_class[label]["recall"])
    c = per_class[lowest]
    said = flat(card_text(model))
    assert f"Weakest classes (recall on the test photos): {label_words(lowest)} {100 * c['recall']:.1f}%" in said
    assert f"{round(c['recall'] * c['support'])} of {c['support']}" in said
    assert "keeps no per-class figures" not in said


def test_a_card_whose_classes_were_all_found_says_so_and_names_no_weakest():
    model = starter()
    test = model["card"]["metrics"]["test"]
    for c in test["per_class"].values():
        c["recall"] = 1.0
    said = flat(card_text(model))
    assert f"Every class's test photos were all found ({len(test['per_class'])} classes: recall 100% each)." in said
    assert "Weakest" not in said
    # one class below: only the classes not all found are named
    test["per_class"]["Tomato___Early_blight"]["recall"] = 0.5
    said = flat(card_text(model))
    assert "Weakest classes (recall on the test photos): Tomato — Early blight 50.0%, 76 of 152." in said


def test_a_labs_small_model_counts_its_validation_photos_and_says_it_learnt_them():
    """A lab's model of 38 validation photos read "answered >99.9% ..., right on 86.8% of those answered", then
    "Validation accuracy 100.0% of 38": no share of 38 photos is over 99.9% and under 100%, and the 100% is of
    photos the model then learnt (train_on_val), which the card did not say."""
    model = {
        "version": 3,
        "status": "candidate",
        "labels": ["early blight", "healthy"],
        "card": {
            "abstain": {"val_coverage": 1.0, "val_selective_accuracy": 0.8684, "min_confidence": 0.5},
            "metrics": {"val": {"accuracy": 1.0, "n": 38}, "test": {"accuracy": 0.9, "n": 40}},
            "dataset": {"val_learnt": 38},
        },
    }
    said = flat(card_text(model))
    assert "On its 38 validation photos it answered all, right on 33 of them (86.8%)" in said
    assert (
        "Validation accuracy 100.0% of 38 validation photos, which it then learnt from: not photos it never saw" in said
    )
    assert ">99.9%" not in said
    # among the top three of three classes or fewer, the right answer always is: not a figure to give
    model["card"]["metrics"]["test"]["top3_accuracy"] = 1.0
    assert "top three" not in flat(card_text(model))
    model["card"]["abstain"]["val_coverage"] = 0.9474  # 36 of 38
    said = flat(card_text(model))
    assert "it answered 36 of 38 (94.7%) and was not sure of the rest, right on 31 of the 36 it answered" in said
    del model["card"]["dataset"]
    assert "Validation accuracy 100.0% of 38 validation photos." in flat(card_text(model))


def test_a_labs_card_tells_an_apps_reader_what_to_do_without_a_command_line():
    """A card `leafdoc train` wrote says to score the model with `leafdoc evaluate MODEL --data FOLDER`: the page and
    the desktop app (face "app") say it in words their readers can act on; `leafdoc models show` keeps the command."""
    from leafdoc.train.card_text import data_limitations

    written = data_limitations({"a": 20, "b": 20}, n_test=6)
    model = starter(card={**starter()["card"], "limitations": written})
    app = flat(card_markdown(model, face="app"))
    assert "leafdoc evaluate" not in app and "Try it on a few such photos whose diagnosis you know" in app
    assert "photos taken another way" in app  # the rest of the card's sentence stays
    assert "`leafdoc evaluate MODEL --data FOLDER`" in flat(card_text(model))
