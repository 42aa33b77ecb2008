"""A trained model's card says what the run knew of its data (train/card_text.py), not fixed sentences."""

from __future__ import annotations

import numpy as np

from leafdoc.train import card_text

PER_CLASS = {"Tomato___Early_blight": 60, "Tomato___Late_blight": 42, "Tomato___healthy": 140}


def test_provenance_names_the_folders_the_counts_the_split_and_what_the_starter_learnt():
    said = card_text.data_provenance(
        dataset="mydata",
        version=2,
        sources=["mydata", "more leaves.zip"],
        per_class=PER_CLASS,
        split={"train": 170, "val": 36, "test": 36},
        started_from="starter",
        test_learnt=27,
    )
    assert said.startswith("Provenance not given: pass --provenance FILE (a text file naming the photos' sources")
    assert "dataset `mydata` v2, ingested from folders (zips, files) named `mydata`, `more leaves.zip`" in said
    assert "242 photos of 3 classes, from 42 (Tomato___Late_blight, the smallest) to 140 (Tomato___healthy" in said
    assert "train 170, validation 36, test 36" in said
    assert "started from leafdoc's starter model" in said and "27 of its 36 test photos are among the photos" in said


def test_provenance_given_comes_first_and_the_facts_stay():
    said = card_text.data_provenance(
        dataset="d",
        version=1,
        sources=None,
        per_class={"a": 5},
        split={"train": 3, "val": 1, "test": 1},
        started_from="imagenet",
        test_learnt=0,
        given="  Our greenhouse, 2026; CC BY 4.0.\n",
    )
    assert said.startswith("Our greenhouse, 2026; CC BY 4.0.\n\nAs leafdoc recorded it: ")
    assert "not given" not in said and "starter" not in said
    assert "5 photos of 1 class, 5 a class" in said


def test_limitations_come_from_the_data_and_the_test_split():
    test = {
        "Tomato___Early_blight": {"recall": 7 / 9, "support": 9},
        "Tomato___Late_blight": {"recall": 1.0, "support": 6},
        "Tomato___healthy": {"recall": 0.5, "support": 20},
    }
    said = card_text.data_limitations(PER_CLASS, test, test_learnt=0, n_test=35)
    assert "Knows only these 3 classes: Tomato___Early_blight, Tomato___Late_blight, Tomato___healthy." in said
    assert "2 of the 3 classes have fewer than 100 photos (Tomato___Late_blight: 42, Tomato___Early_blight: 60)" in said
    assert "recall under 90%: Tomato___healthy 10 of 20, Tomato___Early_blight 7 of 9." in said
    assert "lab photos" not in said and "learnt by the network" not in said
    good = {c: {"recall": 1.0, "support": 5} for c in PER_CLASS}
    said = card_text.data_limitations({c: 200 for c in PER_CLASS}, good, test_learnt=15, n_test=15)
    assert "fewer than" not in said and "Every class's recall on its test split (15 photos, 5 or more a class)" in said
    assert "15 of its 15 test photos were learnt by the network it started from" in said


def test_photos_per_class_counts_every_class_even_one_without_photos():
    assert card_text.photos_per_class(["a", "b", "c"], np.array([0, 0, 2])) == {"a": 2, "b": 0, "c": 1}
