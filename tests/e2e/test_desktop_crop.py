"""The desktop app's crop box (Qt offscreen, a real `leafdoc serve` of the starter model): it lists "I don't know" and
the serving model's crops, the crop picked reaches the answer (a held-out photo the model takes for another crop is
answered within it, and the card says so), it goes into the history's CSV, and the app remembers it like top-k."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"

import csv  # noqa: E402
import io  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import httpx  # noqa: E402
import pytest  # noqa: E402
from tests.conftest import PLANTVILLAGE, REPO  # noqa: E402
from tests.crop_photos import other_crop_photo_or_skip, words  # noqa: E402

pytest.importorskip("PySide6.QtWidgets")
pytest.importorskip("pytestqt")

from tests.e2e.desktop_support import next_dialog  # noqa: E402
from tests.e2e.test_desktop import SLOW, drop_files, open_window  # noqa: E402

from leafdoc.desktop.prefs import open_settings  # noqa: E402
from leafdoc.inference.fieldcrops import crop_of  # noqa: E402
from leafdoc.words.labels import pretty_label  # noqa: E402
from leafdoc.words.photo_guide import serving_crops  # noqa: E402

STARTER = REPO / "models" / "starter"


@pytest.fixture(scope="module")
def found():
    return other_crop_photo_or_skip(STARTER, PLANTVILLAGE)


@pytest.fixture(scope="module")
def starter_server(tmp_path_factory, found) -> Iterator:
    from tests.live_server import start_server

    live = start_server(tmp_path_factory.mktemp("crop-desktop"), STARTER)
    yield live
    live.stop()


def test_the_crop_picked_in_the_app_reaches_the_answer_and_is_remembered(qtbot, starter_server, found, tmp_path):
    photo, truth, unaided = found
    crop = words(truth)
    settings_file = tmp_path / "desktop.ini"
    window = open_window(qtbot, starter_server.base, settings_file)
    tab = window.diagnose
    listed = serving_crops(httpx.get(f"{starter_server.base}/v1/models", timeout=60).json())
    qtbot.waitUntil(lambda: tab.crop.count() == len(listed) + 1, timeout=SLOW)
    assert tab.crop.itemText(0) == "I don't know" and tab.crop.currentIndex() == 0
    assert [tab.crop.itemData(i) for i in range(1, tab.crop.count())] == listed

    drop_files(tab, [photo])  # unaided: the other crop's condition
    qtbot.waitUntil(lambda: len(tab.cards) == 1 and tab.cards[0].answer is not None, timeout=SLOW)
    assert tab.cards[0].answer["top_k"][0]["label"] == unaided and tab.cards[0].answer["crop_given"] is None

    index = tab.crop.findData(crop)
    tab.crop.setCurrentIndex(index)
    tab.crop.activated.emit(index)  # as a person's pick does
    drop_files(tab, [photo])
    qtbot.waitUntil(lambda: len(tab.cards) == 2 and tab.cards[-1].answer is not None, timeout=SLOW)
    card = tab.cards[-1]
    answer = card.answer
    assert answer["crop_given"] == crop
    assert all(crop_of(t["label"]) == crop_of(truth) for t in answer["top_k"])
    if not answer["abstained"]:
        assert card.title.text() == pretty_label(answer["label"]) and crop_of(answer["label"]) == crop_of(truth)
        assert all(crop_of(b.label) == crop_of(truth) for b in card.bars)
    assert card.framed.isVisible() and f"You said this is {crop}" in card.framed.text()
    assert "another crop than" in card.framed.text()  # unaided, the model leaned to another crop

    rows = list(csv.DictReader(io.StringIO(tab.history_csv().decode())))
    assert [r["crop_given"] for r in rows] == ["", crop]

    window.close()
    assert open_settings(settings_file).value("diagnose/crop") == crop
    again = open_window(qtbot, starter_server.base, settings_file)
    qtbot.waitUntil(lambda: again.diagnose.crop.count() == len(listed) + 1, timeout=SLOW)
    assert again.diagnose.crop.currentData() == crop


def pick_language(tab, code: str) -> None:
    index = tab.lang.findData(code)
    tab.lang.setCurrentIndex(index)
    tab.lang.activated.emit(index)  # as a person's pick does


def test_the_answers_and_the_tab_come_in_the_language_picked_and_it_is_remembered(qtbot, starter_server, tmp_path):
    from PySide6.QtWidgets import QLabel

    from leafdoc.core.i18n import msg, render
    from leafdoc.inference.abstain import NOT_A_LEAF

    settings_file = tmp_path / "desktop.ini"
    window = open_window(qtbot, starter_server.base, settings_file)
    tab = window.diagnose
    assert tab.lang.currentData() == "en" and tab.lang.count() == 4
    english = (tab.drop_zone.pick.text(), tab.lang_title.text(), tab.table.horizontalHeaderItem(2).text())
    assert english == ("Choose photos…", "Language", "Diagnosis")
    pick_language(tab, "es")
    # the tab's own words at once, in Spanish
    said = (tab.drop_zone.pick.text(), tab.lang_title.text(), tab.table.horizontalHeaderItem(2).text())
    assert said == ("Elegir fotos…", "Idioma", "Diagnóstico"), said
    assert tab.crop.itemText(0) == "No lo sé" and tab.history_box.title() == "Historial de esta sesión"
    # the crops in Spanish too, as the page names them (they stayed "Tomato", "Bell pepper": the desktop review of
    # session 74)
    qtbot.waitUntil(lambda: tab.crop.count() > 1, timeout=SLOW)
    crops = {tab.crop.itemData(i): tab.crop.itemText(i) for i in range(1, tab.crop.count())}
    assert crops["tomato"] == "Tomate" and crops["bell pepper"].startswith("Pimiento"), crops
    qtbot.waitUntil(lambda: tab.knows.isVisible(), timeout=SLOW)
    assert "Este modelo conoce" in tab.knows.text(), tab.knows.text()
    # under it, folded, what the model cannot do: the starter card's limitations in Spanish, marked unreviewed
    qtbot.waitUntil(lambda: tab.limits_button.isVisible(), timeout=SLOW)
    assert tab.limits_button.text() == "Lo que este modelo no sabe hacer" and not tab.limits.isVisible()
    tab.limits_button.click()
    assert tab.limits.isVisible() and "aún sin revisar" in tab.limits.text()
    assert "Solo conoce estas 34 clases de 11 cultivos" in tab.limits.text() and "Knows only" not in tab.limits.text()
    drop_files(tab, [REPO / "examples" / "guide" / "not_a_leaf.jpg", REPO / "examples" / "tomato_early_blight.jpg"])
    qtbot.waitUntil(lambda: len(tab.cards) == 2 and all(c.answer is not None for c in tab.cards), timeout=SLOW)
    refused, answered = sorted(tab.cards, key=lambda c: c.path.name)
    assert refused.answer["reason"] == "not_a_leaf" and refused.notice.text() == render(msg(NOT_A_LEAF), "es")
    assert refused.title.text() == "No es seguro: no hay diagnóstico para esta foto"  # the web page's heading
    assert refused.heat_caption.text() == "Dónde miró el modelo"  # a refusal names no disease under its heat map
    assert answered.answer["language"] == "es" and answered.answer["label"] == "Tomato___Early_blight"
    spanish = answered.answer["advice"]["summary"]
    assert spanish.startswith("Tizón temprano") and spanish in " ".join(
        w.text() for w in answered.advice.findChildren(type(answered.notice))
    )
    # the card: the diagnosis and its bars in the server's Spanish names, its own words in Spanish
    name = answered.answer["top_k"][0]["name"]
    assert name != pretty_label("Tomato___Early_blight") and "Tizón temprano" in name, name
    assert answered.title.text() == name and answered.bars[0].name.text() == name
    captions = {w.text() for w in answered.findChildren(QLabel)}
    assert {"Su foto", "Qué tan seguro está el modelo:", f"Dónde miró el modelo para «{name}»"} <= captions, captions
    assert answered.advice.toggle.text().startswith("Síntomas")
    assert (answered.feedback.yes.text(), answered.feedback.no.text()) == ("✓ Sí", "✗ No")
    assert answered.feedback.actual.itemText(0) == "En realidad es… (opcional)"
    answered.feedback.yes.click()
    qtbot.waitUntil(lambda: answered.feedback.status.text().startswith("✓ Gracias"), timeout=SLOW)
    rows = {tab.table.item(r, 1).text(): tab.table.item(r, 4).text() for r in range(tab.table.rowCount())}
    assert rows == {
        "not_a_leaf.jpg": "no es seguro: no es una hoja que conozca",
        "tomato_early_blight.jpg": "diagnosticada",
    }
    # a file that is no photo: said in Spanish, on its card and in the box (the server's words are English)
    text_file = tmp_path / "notaphoto.jpg"
    text_file.write_text("these are words, not a photo")
    drop_files(tab, [text_file])
    qtbot.waitUntil(lambda: len(tab.cards) == 3 and any(c.error for c in tab.cards), timeout=SLOW)
    [bad] = [c for c in tab.cards if c.error]
    assert bad.error.startswith("notaphoto.jpg: este archivo no se puede leer como foto"), bad.error
    _, said_in_box, what_to_do = next_dialog(qtbot)
    assert said_in_box == bad.error.split("\n")[0] and "JPEG" in what_to_do and "not a photo" not in said_in_box
    # the photo guide in Spanish too
    tab.show_guide()
    assert tab.guide_dialog.windowTitle().startswith("Guía de fotos")
    from PySide6.QtWidgets import QDialogButtonBox

    [box] = tab.guide_dialog.findChildren(QDialogButtonBox)
    assert box.button(QDialogButtonBox.StandardButton.Close).text() == "Cerrar"  # Qt's own said "Close"
    # then French: the tab speaks French at once, the cards keep the language of their answers
    pick_language(tab, "fr")
    assert tab.drop_zone.pick.text() == "Choisir des photos…" and tab.guide_dialog is None
    assert answered.title.text() == name and tab.knows.text().startswith("**Ce modèle connaît")
    assert tab.limits_button.text() == "Ce que ce modèle ne sait pas faire" and tab.limits.isVisible()
    assert "Ne connaît que ces 34 classes de 11 cultures" in tab.limits.text()
    tab.limits_button.click()  # folded again
    assert not tab.limits.isVisible()
    window.close()
    assert open_settings(settings_file).value("diagnose/lang") == "fr"
    again = open_window(qtbot, starter_server.base, settings_file)
    assert again.diagnose.lang.currentData() == "fr" and again.diagnose.lang_title.text() == "Langue"


def test_a_leaf_unlike_the_crop_named_is_not_said_to_hesitate_between_diseases(qtbot, starter_server, tmp_path):
    """The desktop review of session 74: an apple leaf sent as tomato was refused, rightly, "looks like apple scab,
    not like tomato", but its history row said "not sure: between diseases", naming none."""
    window = open_window(qtbot, starter_server.base, tmp_path / "desktop.ini")
    tab = window.diagnose
    qtbot.waitUntil(lambda: tab.crop.findData("tomato") > 0, timeout=SLOW)
    index = tab.crop.findData("tomato")
    tab.crop.setCurrentIndex(index)
    tab.crop.activated.emit(index)
    drop_files(tab, [REPO / "examples" / "apple_cedar_rust.jpg"])
    qtbot.waitUntil(lambda: len(tab.cards) == 1 and tab.cards[0].answer is not None, timeout=SLOW)
    answer = tab.cards[0].answer
    assert answer["abstained"] and answer["reason"] == "unsure" and not answer["candidates"], answer
    assert "not like tomato" in answer["message"], answer["message"]
    assert tab.table.item(0, 4).text() == "not sure: not like the crop named"
    pick_language(tab, "es")
    drop_files(tab, [REPO / "examples" / "apple_cedar_rust.jpg"])
    qtbot.waitUntil(lambda: len(tab.cards) == 2 and tab.cards[-1].answer is not None, timeout=SLOW)
    assert tab.table.item(1, 4).text() == "no es seguro: no se parece al cultivo indicado"
