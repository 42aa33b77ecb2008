"""The crop a language link carries into the page in another language (ui/carry.py): only a crop the serving model
has, named as the menu showed it in the language left."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from leafdoc.ui.carry import carried_crop
from leafdoc.ui.diagnose_tab import crop_choices

CROPS = ["apple", "bell pepper", "tomato"]


def asked(**params) -> SimpleNamespace:
    return SimpleNamespace(query_params=params)


@pytest.mark.parametrize(
    ("params", "value"),
    [
        ({"crop": "Tomato", "crop_lang": "en"}, "tomato"),
        ({"crop": "Tomate", "crop_lang": "es"}, "tomato"),  # shown in Spanish, carried to another language
        ({"crop": "Pimiento", "crop_lang": "es"}, "bell pepper"),
        ({"crop": "Tomate", "crop_lang": "en"}, ""),  # not its name in the language said
        ({"crop": "Grape", "crop_lang": "en"}, ""),  # a crop the serving model does not have
        ({"crop": "Tomato", "crop_lang": "xx"}, ""),  # a language leafdoc does not speak
        ({"crop": "", "crop_lang": "en"}, ""),
        ({}, ""),
    ],
)
def test_a_carried_crop_is_one_of_the_serving_models_named_as_the_menu_showed_it(params, value):
    assert carried_crop(asked(**params), CROPS, crop_choices) == value


def test_no_crop_is_carried_to_a_model_that_knows_none():
    assert carried_crop(asked(crop="Tomato", crop_lang="en"), [], crop_choices) == ""
    assert carried_crop(None, CROPS, crop_choices) == ""
