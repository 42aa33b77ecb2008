"""The desktop app (`leafdoc desktop`) as a person uses it, against real `leafdoc serve` processes.

Qt runs offscreen. Dialogs are real QMessageBoxes, read from the screen's top-level windows; only the
blocking ones (file pickers, the token prompt, yes/no questions) are answered by monkeypatching.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Never read or write the real keyring of whoever runs the tests: with no backend the app falls back
# to its settings file, which is what a headless machine does anyway.
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"

import csv  # noqa: E402
import html  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import keyring.backend  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402
from tests.conftest import PLANTVILLAGE, TINY_CLASSES, alive, children_of, make_leaf_folder  # noqa: E402
from tests.live_server import answering_copy, free_port  # noqa: E402

pytest.importorskip("PySide6.QtWidgets")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPoint, Qt, QTimer, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QLabel, QMessageBox  # noqa: E402

from leafdoc.advice import shipped_knowledge  # noqa: E402
from leafdoc.advice.render import label_name  # noqa: E402
from leafdoc.api_client import LeafdocClient  # noqa: E402
from leafdoc.desktop import dialogs  # noqa: E402
from leafdoc.desktop import session as session_module  # noqa: E402
from leafdoc.desktop.prefs import KEYRING_SERVICE, TokenStore, open_settings  # noqa: E402
from leafdoc.desktop.window import MainWindow  # noqa: E402
from leafdoc.words.labels import pretty_label  # noqa: E402
from leafdoc.words.model_card import SCORE_IT_APP, SCORE_IT_CLI  # noqa: E402
from leafdoc.words.percent import percent_words  # noqa: E402

SLOW = 60_000  # ms: two shared cores, other engineers' tests beside ours


# ---- helpers -------------------------------------------------------------------------------------


def open_window(qtbot, server: str | None, settings: Path, wait: bool = True) -> MainWindow:
    window = MainWindow(server, settings_path=settings)
    qtbot.addWidget(window)
    window.show()
    if wait:
        qtbot.waitUntil(lambda: window.session.is_connected, timeout=SLOW * 2)
    return window


def error_dialogs(window: MainWindow) -> list[QMessageBox]:
    """The message boxes on screen that this window opened."""

    def opened_by_window(box: QMessageBox) -> bool:
        parent = box.parentWidget()
        while parent is not None and parent is not window:
            parent = parent.parentWidget()
        return parent is window

    boxes = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
    return [b for b in boxes if opened_by_window(b)]


def next_error(qtbot, window: MainWindow, timeout: int = SLOW) -> tuple[str, str, str]:
    """Wait for the window's next error dialog; returns (title, text, what to do) and closes it."""
    qtbot.waitUntil(lambda: bool(error_dialogs(window)), timeout=timeout)
    box = error_dialogs(window)[0]
    seen = (box.windowTitle(), box.text(), box.informativeText())
    box.close()
    qtbot.waitUntil(lambda: box not in error_dialogs(window), timeout=5000)
    return seen


def drop_files(widget, paths: list[Path]) -> None:
    """What the window system delivers when photos are dragged from a file manager and dropped."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(
        QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    widget.dropEvent(event)
    assert event.isAccepted()


def save_as(monkeypatch, path: Path) -> None:
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(path), "")))


def answer_token(monkeypatch, token: str | None) -> list[str]:
    asked: list[str] = []

    def fake(parent, title, label, *args, **kwargs):
        asked.append(label)
        return (token or "", token is not None)

    monkeypatch.setattr(QInputDialog, "getText", staticmethod(fake))
    return asked


def upload_folder(tmp_path: Path, per_class: int = 2, offset: int = 30) -> Path:
    """A small folder of class folders with photos the `tiny` dataset does not have, plus one non-photo."""
    folder = tmp_path / "new-photos"
    for cls in TINY_CLASSES[:2]:
        (folder / cls).mkdir(parents=True)
        for f in sorted((PLANTVILLAGE / cls).iterdir())[offset : offset + per_class]:
            (folder / cls / f.name).write_bytes(f.read_bytes())
    (folder / TINY_CLASSES[0] / "notes.txt").write_text("not a photo")
    return folder


@pytest.fixture
def settings_file(tmp_path) -> Path:
    return tmp_path / "desktop.ini"


# ---- Diagnose ------------------------------------------------------------------------------------


def test_diagnose_dropped_photos_heat_map_abstention_and_history_csv(
    qtbot, live_server, tiny_model, settings_file, tmp_path, monkeypatch
):
    window = open_window(qtbot, live_server.base, settings_file)
    assert "model version" in window.connection_label.text()
    tab = window.diagnose
    # What the serving model knows (the tiny one: apple and corn, no field photos), from GET /v1/models
    qtbot.waitUntil(lambda: tab.knows.isVisible(), timeout=SLOW)
    assert "This model knows 3 kinds of leaf of 2 crops" in tab.knows.text()
    assert "plain background (photograph them that way): apple and corn" in tab.knows.text()
    # and, folded under a title, its card's limitations (as the web page shows them), in the card's words
    qtbot.waitUntil(lambda: tab.limits_button.isVisible(), timeout=SLOW)
    assert tab.limits_button.text() == "What this model cannot do" and not tab.limits.isVisible()
    tab.limits_button.click()
    card_limits = json.loads((tiny_model / "card.json").read_text())["limitations"]
    assert tab.limits.isVisible() and card_limits.split(".")[0] in html.unescape(tab.limits.text())
    tab.top_k.setValue(2)
    leaf = sorted((PLANTVILLAGE / TINY_CLASSES[0]).iterdir())[10]
    dark = tmp_path / "in-the-dark.jpg"
    Image.new("RGB", (200, 200), (3, 4, 3)).save(dark)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"this is not a photo")

    drop_files(tab, [leaf, dark, broken])
    qtbot.waitUntil(lambda: len(tab.cards) == 3 and all(c.answer or c.error for c in tab.cards), timeout=SLOW)
    cards = {c.path.name: c for c in tab.cards}

    good = cards[leaf.name]
    # The card shows the model's own answer for this photo (the server serves a copy of the tiny model):
    # its label, its two most likely labels with their probabilities.
    from leafdoc.inference.predictor import Predictor

    [own] = Predictor(tiny_model).predict_files([leaf], k=2)
    top = own.top_k[0]
    assert good.answer["label"] == top.label and not good.answer["abstained"]
    assert good.title.text() == pretty_label(top.label)
    assert [b.label for b in good.bars] == [t.label for t in own.top_k]
    assert good.bars[0].bar.value() == round(top.probability * 1000)
    assert good.bars[0].bar.text() == percent_words(top.probability)  # ">99%", never "100.0%"
    assert good.photo.has_image() and good.heatmap.has_image()
    assert good.heatmap.source_pixmap().width() >= 100  # the server's overlay, not a placeholder
    # What to do: the summary under the diagnosis, the full entry one click away.
    entry = shipped_knowledge().get(good.answer["label"])
    assert good.advice.isVisible() and good.advice.summary.isVisible()
    assert " ".join(entry.summary.split()) in " ".join(good.advice.summary.text().split())
    assert good.advice.toggle.isVisible() and not good.advice.details.isVisible()
    good.advice.toggle.click()
    assert good.advice.details.isVisible()
    details = " ".join(good.advice.details.text().split())
    assert " ".join(entry.symptoms.split()) in details and entry.sources[0].title in details

    unsure = cards[dark.name]
    assert unsure.answer["abstained"] and unsure.answer["reason"] == "poor_photo"
    assert unsure.title.text() == "Take another photo: this one cannot be read"  # the page's heading, not "Not sure"
    assert unsure.notice.isVisible() and unsure.notice.text() == unsure.answer["message"]
    assert unsure.answer["advice"] is None and not unsure.advice.isVisible()  # no diagnosis, no advice
    assert unsure.feedback is None and not unsure.heatmap.isVisible()  # nothing asked: take another photo
    assert good.heatmap.isVisible() and good.feedback is not None

    bad = cards[broken.name]
    assert bad.error and "broken.jpg" in bad.error
    title, text, _ = next_error(qtbot, window)  # one dialog for the batch
    assert title == "Could not diagnose a photo" and "broken.jpg" in text

    assert tab.table.rowCount() == 2  # the answered ones
    shown = {tab.table.item(r, 1).text(): [tab.table.item(r, c).text() for c in range(5)] for r in range(2)}
    assert shown[dark.name][3:] == ["—", "not sure: photo not usable"]  # no confidence for a refused answer
    assert shown[leaf.name][2:5] == [pretty_label(top.label), percent_words(top.probability), "diagnosed"]

    other = sorted((PLANTVILLAGE / TINY_CLASSES[2]).iterdir())[10]  # the same through "Choose photos…"
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: ([str(other)], "")))
    tab.drop_zone.pick.click()
    qtbot.waitUntil(lambda: tab.table.rowCount() == 3, timeout=SLOW)
    assert tab.cards[-1].path == other and tab.cards[-1].heatmap.has_image()
    save_as(monkeypatch, tmp_path / "out" / "history")
    tab.save_csv_button.click()
    saved = tmp_path / "out" / "history.csv"
    qtbot.waitUntil(saved.exists, timeout=10_000)
    rows = {r["file"]: r for r in csv.DictReader(io.StringIO(saved.read_text()))}
    assert rows[leaf.name]["diagnosis"] == good.answer["label"] and rows[leaf.name]["abstained"] == "no"
    assert rows[dark.name]["abstained"] == "yes" and rows[dark.name]["reason"] == "poor_photo"
    assert rows[leaf.name]["model_version"] == str(good.answer["model_version"])
    assert rows[other.name]["diagnosis"] in TINY_CLASSES and len(rows) == 3

    # Settings persist: top-k, the photo folder and the window geometry are there on the next start.
    window.resize(760, 650)  # within the offscreen screen (800 px wide): Qt fits a restored window to the screen
    size = window.size()
    window.close()
    settings = open_settings(settings_file)
    assert settings.value("diagnose/top_k") in (2, "2")
    assert settings.value("folders/photos") == str(other.parent)  # the last folder photos came from
    again = open_window(qtbot, live_server.base, settings_file, wait=False)
    assert again.diagnose.top_k.value() == 2 and again.size() == size


def test_an_heic_photo_is_shown_and_diagnosed_like_the_jpeg_it_was_made_from(
    qtbot, live_server, settings_file, tmp_path
):
    """An iPhone photo (HEIC): the card shows it (decoded by Pillow, not Qt), with the answer the
    same photo gets as a JPEG (upload_size.shrink_for_upload converts it)."""
    pillow_heif = pytest.importorskip("pillow_heif", reason="the [heic] extra (pillow-heif) is not installed")
    leaf = sorted((PLANTVILLAGE / TINY_CLASSES[0]).iterdir())[10]
    heic = tmp_path / "IMG_0001.HEIC"
    buf = io.BytesIO()
    pillow_heif.from_pillow(Image.open(leaf).convert("RGB")).save(buf, quality=92)
    heic.write_bytes(buf.getvalue())
    window = open_window(qtbot, live_server.base, settings_file)
    tab = window.diagnose
    drop_files(tab, [leaf, heic])
    qtbot.waitUntil(lambda: len(tab.cards) == 2 and all(c.answer or c.error for c in tab.cards), timeout=SLOW)
    as_jpeg, as_heic = tab.cards
    assert as_heic.error is None and as_heic.photo.has_image() and as_heic.heatmap.has_image()
    assert as_heic.answer["label"] == as_jpeg.answer["label"]
    assert abs(as_heic.answer["confidence"] - as_jpeg.answer["confidence"]) < 0.05


def test_feedback_from_a_diagnosis_card_reaches_the_review_queue(
    qtbot, live_server, settings_file, tmp_path, monkeypatch
):
    """✗ No with "It is actually…" on a card: the server records it, and an admin sees it in the review queue."""
    import httpx
    from tests.live_server import ADMIN, TOKEN

    window = open_window(qtbot, live_server.base, settings_file)
    tab = window.diagnose
    leaf = sorted((PLANTVILLAGE / TINY_CLASSES[0]).iterdir())[11]
    drop_files(tab, [leaf])
    qtbot.waitUntil(lambda: bool(tab.cards) and tab.cards[-1].feedback is not None, timeout=SLOW)
    card = tab.cards[-1]
    bar = card.feedback
    actually = next(x for x in TINY_CLASSES if x != card.answer["label"])
    bar.actual.setCurrentIndex(bar.actual.findData(actually))
    bar.no.click()
    qtbot.waitUntil(lambda: "recorded as wrong" in bar.status.text(), timeout=SLOW)
    assert label_name(actually, "en") in bar.status.text()  # as the answers name it (the knowledge file's words)
    card.grab().save(str(tmp_path / "desktop-feedback.png"))
    queue = httpx.get(f"{live_server.base}/v1/review", headers=ADMIN, timeout=30).json()["items"]
    mine = next(i for i in queue if i["prediction_id"] == card.answer["prediction_id"])
    assert mine["feedback_correct"] is False and mine["feedback_label"] == actually

    # The Monitor tab counts it, once given the admin token: without one it says why it shows nothing and how to
    # give it (the figures are a business's volumes; LEAFDOC_MONITORING_OPEN would show them to anyone).
    monitor = window.monitor
    window.tabs.setCurrentWidget(monitor)
    qtbot.waitUntil(lambda: "The figures need the admin token" in monitor.summary.text(), timeout=SLOW)
    assert "Enter the admin token" in monitor.summary.text() and "LEAFDOC_MONITORING_OPEN" in monitor.summary.text()
    assert monitor.token_button.isVisible() and monitor.report is None
    assert not any(view.has_image() for view in monitor.pictures) and not error_dialogs(window)
    qtbot.wait(300)  # laid out again around the message
    monitor.grab().save(str(tmp_path / "desktop-monitor-locked.png"))
    asked = answer_token(monkeypatch, TOKEN)
    monitor.token_button.click()  # asked once, checked, kept; then the figures (the server is shared: at least)
    qtbot.waitUntil(lambda: window.monitor.report is not None, timeout=SLOW)
    assert len(asked) == 1 and not monitor.token_button.isVisible()
    window_figures = window.monitor.report["drift_window"]
    assert window_figures["answers"] >= 1 and window_figures["feedback"] >= 1
    assert "answers" in window.monitor.summary.text()
    assert all(view.has_image() for view in window.monitor.pictures)
    window.monitor.grab().save(str(tmp_path / "desktop-monitor.png"))


def test_review_tab_labels_a_kept_photo_into_a_new_dataset_version(
    qtbot, tiny_model, settings_file, tmp_path, monkeypatch
):
    """On a server that keeps photos: a ✗ No with "It is actually…", then the Review tab (admin token asked
    once) shows it first with its photo and the user's label; Add to the dataset makes a new version."""
    import httpx
    from tests.live_server import TOKEN, start_server

    server = start_server(
        tmp_path / "keeping",
        answering_copy(tiny_model, tmp_path / "model"),
        dataset=make_leaf_folder(tmp_path / "leaves"),
        LEAFDOC_KEEP_PHOTOS="true",
    )
    try:
        before = httpx.get(f"{server.base}/v1/datasets", timeout=30).json()["datasets"][0]["latest"]
        window = open_window(qtbot, server.base, settings_file)
        tab = window.diagnose
        drop_files(tab, [sorted((PLANTVILLAGE / TINY_CLASSES[0]).iterdir())[12]])
        qtbot.waitUntil(lambda: bool(tab.cards) and tab.cards[-1].feedback is not None, timeout=SLOW)
        bar = tab.cards[-1].feedback
        actually = next(x for x in TINY_CLASSES if x != tab.cards[-1].answer["label"])
        bar.actual.setCurrentIndex(bar.actual.findData(actually))
        bar.no.click()
        qtbot.waitUntil(lambda: "recorded as wrong" in bar.status.text(), timeout=SLOW)

        asked = answer_token(monkeypatch, TOKEN)
        review = window.review
        window.tabs.setCurrentWidget(review)
        review.load_button.click()
        qtbot.waitUntil(lambda: review.table.rowCount() == 1 and review.photo.has_image(), timeout=SLOW)
        assert len(asked) == 1
        assert review.label.currentData() == actually  # prefilled with what the user said
        review.grab().save(str(tmp_path / "desktop-review.png"))
        assert review.add_button.isEnabled()  # a kept photo can join a dataset
        review._can_add({**review.current(), "has_photo": False})  # one without its photo cannot: off, and why
        assert not review.add_button.isEnabled() and "cannot join a dataset" in review.add_button.toolTip()
        review._selected()
        review.add_button.click()
        qtbot.waitUntil(lambda: "the photo is in" in review.status.text(), timeout=SLOW)
        assert f"tiny v{before + 1}" in review.status.text()
        qtbot.waitUntil(lambda: review.table.rowCount() == 0, timeout=SLOW)
        after = httpx.get(f"{server.base}/v1/datasets", timeout=30).json()["datasets"][0]["latest"]
        assert after == before + 1
        window.close()
    finally:
        server.stop()


# ---- Dataset insights ----------------------------------------------------------------------------


def test_dataset_tab_shows_plots_and_saves_png(qtbot, live_server, settings_file, tmp_path, monkeypatch):
    window = open_window(qtbot, live_server.base, settings_file)
    tab = window.dataset
    window.tabs.setCurrentWidget(tab)  # loads the catalog when first shown
    qtbot.waitUntil(lambda: tab.dataset_box.findData("tiny") >= 0, timeout=SLOW)
    tab.dataset_box.setCurrentIndex(tab.dataset_box.findData("tiny"))
    tab.sample.setCurrentIndex(tab.sample.findData(20))
    tab._sample_changed()
    qtbot.waitUntil(lambda: tab.plot.has_image() and "3 classes" in tab.summary.text(), timeout=SLOW)
    assert "tiny v1" in tab.summary.text()

    assert tab.kinds.count() == 5  # balance, sizes, colour, sharpness, samples: three of them here
    shown = {}
    for row in (0, 1, 4):
        tab.kinds.setCurrentRow(row)
        qtbot.waitUntil(lambda: tab.plot.has_image() and tab.save_button.isEnabled(), timeout=SLOW)
        shown[tab.selected_kind()] = tab.plot.source_pixmap().size().toTuple()
    assert set(shown) == {"class_distribution", "sizes", "samples"}
    assert all(w > 200 and h > 100 for w, h in shown.values())

    tab.kinds.setCurrentRow(0)
    qtbot.waitUntil(tab.save_button.isEnabled, timeout=SLOW)
    save_as(monkeypatch, tmp_path / "balance.png")
    tab.save_button.click()
    qtbot.waitUntil((tmp_path / "balance.png").exists, timeout=10_000)
    img = Image.open(tmp_path / "balance.png")
    assert img.format == "PNG" and img.width > 200


# ---- Retrain: token, upload, versions -------------------------------------------------------------


def test_retrain_wrong_token_then_upload_with_progress_and_versions(
    qtbot, live_server, settings_file, tmp_path, monkeypatch
):
    window = open_window(qtbot, live_server.base, settings_file)
    tab = window.retrain
    window.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: tab.table.rowCount() >= 1, timeout=SLOW)
    versions = [tab.table.item(r, 0).text() for r in range(tab.table.rowCount())]
    assert "1" in versions and "version 1" in tab.serving_label.text()
    # The job's status text sits under the epoch boxes, not on top of them (it shared their row once).
    for widget in (tab.epochs, tab.fine_tune, tab.train_button):
        assert not tab.job_label.geometry().intersects(widget.geometry()), widget

    tab.set_source(upload_folder(tmp_path))
    tab.dataset_box.setEditText("desktop-upload")

    asked = answer_token(monkeypatch, "not-the-token")
    tab.upload_button.click()
    title, text, hint = next_error(qtbot, window)
    assert asked and title == "Admin token refused"
    assert "admin token is wrong" in text.lower() and "asked again" in hint
    assert window.session.client.admin_token is None and tab.last_upload is None

    percents = []
    tab.upload_bar.valueChanged.connect(percents.append)
    asked = answer_token(monkeypatch, live_server.token)
    tab.upload_button.click()
    qtbot.waitUntil(lambda: tab.last_upload is not None, timeout=SLOW)
    assert len(asked) == 1 and percents and percents[-1] == 100
    up = tab.last_upload
    assert up["added"] == 4 and up["dataset"] == "desktop-upload"
    assert "4 new photos accepted" in tab.upload_result.text() and "1 rejected" in tab.upload_result.text()
    assert tab.problems.isVisible() and tab.problems.rowCount() == 1
    assert tab.problems.item(0, 0).text().endswith("notes.txt")
    assert tab.problems.item(0, 1).text().startswith("rejected:")

    # The same folder again: nothing new, every photo a duplicate, and no second question for the token.
    tab.upload_button.click()
    qtbot.waitUntil(lambda: tab.last_upload is not up, timeout=SLOW)
    assert tab.last_upload["added"] == 0 and "4 duplicates" in tab.upload_result.text()
    assert len(asked) == 1

    # The token was kept (no keyring on this machine: in the settings file) and the next start uses it.
    window.close()
    assert TokenStore(open_settings(settings_file)).get(live_server.base) == live_server.token
    assert settings_file.stat().st_mode & 0o077 == 0  # a file holding a token is the user's alone
    again = open_window(qtbot, live_server.base, settings_file)
    assert again.session.client.admin_token == live_server.token
    assert "entered" in again.retrain.token_label.text()


def test_the_selected_versions_model_card_shows_under_the_table(qtbot, live_server, settings_file):
    """The Retrain tab: the serving version's card shows under the table until another is picked, as `leafdoc models
    show` and the web page say it (words/model_card.py): its limitations and what it learnt from in its card's words,
    its test accuracy with the photos it was measured on, and no server folder."""
    with LeafdocClient(live_server.base) as api:
        card = api.model(1)["card"]
    window = open_window(qtbot, live_server.base, settings_file)
    box = window.retrain.versions
    window.tabs.setCurrentWidget(window.retrain)
    qtbot.waitUntil(lambda: box.table.rowCount() >= 1, timeout=SLOW)
    # Before any click, the serving version's card.
    qtbot.waitUntil(lambda: "Limitations" in box.card.toPlainText(), timeout=SLOW)
    # how it came in, whole (the table says it in a few words), then its card
    assert box.card.toPlainText().startswith("Version 1: the first model, served from the start.")
    assert "\nModel version 1 · serving\n" in box.card.toPlainText()
    box.table.clearSelection()
    assert "Select a version" in box.card.toPlainText()
    row = next(r for r in range(box.table.rowCount()) if box.table.item(r, 0).text() == "1")
    box.table.selectRow(row)
    qtbot.waitUntil(lambda: "Limitations" in box.card.toPlainText(), timeout=SLOW)
    shown = " ".join(box.card.toPlainText().split())
    # the limitations in the app's words: "Try it on a few such photos…", not `leafdoc evaluate` (words/model_card.py)
    limitations = SCORE_IT_CLI.sub(SCORE_IT_APP, " ".join(card["limitations"].split()))
    assert "Model version 1 · serving" in shown and limitations in shown and "leafdoc evaluate" not in shown
    first = " ".join(card["provenance"].split("\n")[0].split())
    if first.startswith("Provenance not given:"):  # the app's words, not `leafdoc train --provenance`'s
        assert "did not name the photos' sources and licences" in shown and "--provenance" not in shown
    else:
        assert first in shown
    test = card["metrics"]["test"]
    assert f"Test accuracy {100 * test['accuracy']:.1f}% of {test['n']} test photos" in shown
    assert "/tmp/" not in shown and str(live_server.home.parent) not in shown
    assert box.card.isVisible() and box.card.height() > 80


class SlowKeyring(keyring.backend.KeyringBackend):
    """A keyring that takes its time, as a locked one waiting for its password does: every call waits
    until the test opens the gate (or 60 s), and notes whether it ran on the UI thread."""

    priority = 1

    def __init__(self):
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}
        self.gate = threading.Event()
        self.waiting: list[str] = []  # calls now waiting at the gate
        self.calls: list[tuple[str, bool]] = []  # (call, on the UI thread?)

    def _wait(self, name: str) -> None:
        self.calls.append((name, threading.current_thread() is threading.main_thread()))
        self.waiting.append(name)
        try:
            self.gate.wait(timeout=60)
        finally:
            self.waiting.remove(name)

    def get_password(self, service, username):
        self._wait("get")
        return self.passwords.get((service, username))

    def set_password(self, service, username, password):
        self._wait("set")
        self.passwords[(service, username)] = password

    def delete_password(self, service, username):
        self._wait("delete")
        self.passwords.pop((service, username), None)


@pytest.fixture
def slow_keyring():
    before = keyring.get_keyring()
    slow = SlowKeyring()
    keyring.set_keyring(slow)
    yield slow
    slow.gate.set()
    keyring.set_keyring(before)


def test_a_slow_keyring_never_freezes_the_window_and_its_token_is_used(
    qtbot, live_server, settings_file, tmp_path, monkeypatch, slow_keyring
):
    slow_keyring.passwords[(KEYRING_SERVICE, live_server.base)] = live_server.token
    asked = answer_token(monkeypatch, None)  # the keyring holds the token: the app must not ask for one
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()

    window = open_window(qtbot, live_server.base, settings_file, wait=False)
    tab = window.retrain
    window.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: slow_keyring.waiting == ["get"], timeout=SLOW)
    # The keyring is busy, and the window still paints, connects and answers clicks.
    qtbot.waitUntil(lambda: window.session.is_connected, timeout=SLOW)
    assert "reading it from the system keyring" in tab.token_label.text()
    assert not tab.token_button.isEnabled()
    tab.set_source(upload_folder(tmp_path, offset=40))
    tab.dataset_box.setEditText("desktop-keyring")
    tab.upload_button.click()  # before the token has arrived: it waits for it, it does not ask
    seen = len(ticks)
    qtbot.wait(500)
    assert len(ticks) - seen >= 5 and slow_keyring.waiting == ["get"] and tab.last_upload is None

    slow_keyring.gate.set()
    qtbot.waitUntil(lambda: tab.last_upload is not None, timeout=SLOW)
    assert asked == [] and tab.last_upload["dataset"] == "desktop-keyring"
    assert window.session.client.admin_token == live_server.token
    assert "kept in the system keyring" in tab.token_label.text() and tab.token_button.isEnabled()

    # Changing the token: forgetting and keeping the new one wait for the keyring too, in that order.
    slow_keyring.gate.clear()
    asked = answer_token(monkeypatch, live_server.token)
    tab.token_button.click()
    qtbot.waitUntil(lambda: "being saved" in tab.token_label.text(), timeout=SLOW)
    assert len(asked) == 1 and slow_keyring.waiting == ["delete"]
    seen = len(ticks)
    qtbot.wait(300)
    assert len(ticks) - seen >= 3
    slow_keyring.gate.set()
    qtbot.waitUntil(lambda: "kept in the system keyring" in tab.token_label.text(), timeout=SLOW)
    assert slow_keyring.passwords == {(KEYRING_SERVICE, live_server.base): live_server.token}
    assert TokenStore(open_settings(settings_file)).from_settings(live_server.base) is None
    assert [name for name, _ in slow_keyring.calls] == ["get", "delete", "set"]
    assert not any(on_ui_thread for _, on_ui_thread in slow_keyring.calls)
    timer.stop()


def test_a_keyring_that_never_answers_is_not_waited_for(
    qtbot, live_server, settings_file, tmp_path, monkeypatch, slow_keyring
):
    """A locked keyring whose password prompt nobody sees never answers: after KEYRING_WAIT_MS the app asks
    for the token, the admin action goes ahead, and the token is kept in the settings file instead."""
    monkeypatch.setattr(session_module, "KEYRING_WAIT_MS", 1500)
    slow_keyring.passwords[(KEYRING_SERVICE, live_server.base)] = "in-the-keyring-but-never-read"
    asked = answer_token(monkeypatch, live_server.token)
    window = open_window(qtbot, live_server.base, settings_file, wait=False)
    tab = window.retrain
    window.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: window.session.is_connected and slow_keyring.waiting == ["get"], timeout=SLOW)
    tab.set_source(upload_folder(tmp_path, offset=60))
    tab.dataset_box.setEditText("desktop-silent-keyring")
    started = time.monotonic()
    tab.upload_button.click()  # waits for the keyring, then gives up on it and asks
    qtbot.waitUntil(lambda: tab.last_upload is not None, timeout=SLOW)
    assert time.monotonic() - started >= 1.0 and len(asked) == 1
    assert tab.last_upload["dataset"] == "desktop-silent-keyring"
    assert window.session.keyring_silent and slow_keyring.waiting == ["get"]  # still stuck; nothing queued
    assert "kept in the app's settings file" in tab.token_label.text()
    assert TokenStore(open_settings(settings_file)).from_settings(live_server.base) == live_server.token
    assert [name for name, _ in slow_keyring.calls] == ["get"]


def test_server_down_is_a_readable_dialog(qtbot, settings_file, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    window = open_window(qtbot, url, settings_file, wait=False)
    title, text, hint = next_error(qtbot, window)
    assert title == "Cannot connect" and f"Cannot reach the leafdoc server at {url}" in text
    # what to do, in the app's menus (the API client's hint names `leafdoc serve`: dialogs.in_app_words)
    assert "Server menu ▸ Connect to a server…" in hint and "Use the built-in server" in hint
    assert "leafdoc serve" not in hint
    assert window.connection_label.text().startswith("Not connected")
    window.diagnose.add_paths([tmp_path / "leaf.jpg"])
    title, text, _ = next_error(qtbot, window)
    assert title == "Not connected" and "not connected" in text


def colour_model(root: Path) -> Path:
    """A small CNN that has learned the 3-colour task (32 px, ~10 s to train), as a serving model."""
    from tests.conftest import colour_folder

    from leafdoc.core.settings import Settings
    from leafdoc.data.catalog import Catalog
    from leafdoc.data.ingest import ingest
    from leafdoc.data.store import open_store
    from leafdoc.lifecycle.training import train_model
    from leafdoc.train.config import TrainConfig
    from leafdoc.train.train_data import prepare_data

    s = Settings(home=root / "train-home")
    s.ensure_home()
    catalog, store = Catalog(s.catalog_url), open_store(s.store_location)
    ingest(colour_folder(root / "colours", 14), catalog, store, "tiny")
    cfg = TrainConfig(backbone="baseline_cnn", weights="none", image_size=32, epochs=12, batch_size=8, patience=12)
    train_model(cfg, prepare_data(catalog, store, s.cache_dir, "tiny", cfg), root / "model")
    catalog.dispose()
    card = json.loads((root / "model" / "card.json").read_text())
    assert card["metrics"]["test"]["accuracy"] >= 0.9, card["metrics"]["test"]
    return answering_copy(root / "model", root / "serving")


def test_a_retraining_job_is_followed_to_its_end_with_its_test_figures_and_promotion(
    qtbot, settings_file, tmp_path, monkeypatch
):
    """Retrain from the app and wait: the tab shows the job queued or running, its epochs, then succeeded with
    the new version's test accuracy and whether it now serves (and why), as the server recorded them; the
    versions table and the serving line follow. The data is the 3-colour task, so the figure is far above
    chance (1/3) for a retraining that learns."""
    import httpx
    from tests.conftest import colour_folder
    from tests.live_server import ADMIN, start_server

    from leafdoc.desktop.jobs import FINISHED
    from leafdoc.words.job_phases import other_leaves_words, split_words

    model = colour_model(tmp_path)
    server = start_server(tmp_path / "server", model, dataset=colour_folder(tmp_path / "data", 14))
    try:
        answer_token(monkeypatch, server.token)
        window = open_window(qtbot, server.base, settings_file)
        tab = window.retrain
        window.tabs.setCurrentWidget(tab)
        qtbot.waitUntil(lambda: tab.table.rowCount() == 1, timeout=SLOW)
        shown: list[tuple[dict, str, int]] = []  # every job answer the tab showed: (job, its words, bar)
        real_show = tab.training._show_job

        def show(job):
            real_show(job)
            shown.append((job, tab.job_label.text(), tab.job_bar.value()))

        tab.training._show_job = show
        tab.dataset_box.setEditText("tiny")
        tab.epochs.setValue(3)
        assert tab.fine_tune.text() == "automatic"
        tab.fine_tune.setValue(0)  # the colour model trains from scratch: no fine-tuning phase either way
        tab.training.learn_field.setChecked(True)  # "the photos include field photos": no unlike-training check
        tab.train_button.click()
        qtbot.waitUntil(lambda: bool(shown) and shown[-1][0]["state"] in FINISHED, timeout=SLOW * 8)
        job, text, bar = shown[-1]
        truth = httpx.get(f"{server.base}/v1/training-jobs/{job['id']}", headers=ADMIN, timeout=30).json()
        assert truth["state"] == "succeeded", truth.get("error")
        assert (truth["options"]["epochs"], truth["options"]["fine_tune_epochs"]) == (3, 0)  # both boxes sent
        assert truth["options"]["field_dirs"] == []  # and the field-photo choice

        states = [j["state"] for j, _, _ in shown]
        assert "running" in states and states[-1] == "succeeded"
        assert states.index("running") < len(states) - 1 and set(states) <= {"queued", "running", "succeeded"}
        running = [(words, value) for j, words, value in shown if j["state"] == "running"]
        assert all("<b>running</b>" in words for words, _ in running)
        assert [value for _, value in running] == sorted(value for _, value in running)  # the bar never goes back
        assert bar == 100 and "<b>succeeded</b> — finished" in text and not tab.poll_timer.isActive()
        assert tab.train_button.isEnabled() and not tab.cancel_button.isEnabled()

        # The final figures and the promotion decision are the server's, in words.
        accuracy = truth["metrics"]["test"]["accuracy"]
        assert accuracy >= 0.9, truth["metrics"]["test"]
        version, promotion = truth["candidate_version"], truth["promotion"]
        # in the versions table's words ("not promoted", never "kept as a candidate" beside it)
        verdict = " is now serving." if promotion["promoted"] else ": not promoted; the serving model is unchanged."
        assert f"Version <b>{version}</b>{verdict} Test accuracy {accuracy:.1%}." in text
        assert f"Why, when the job ended: {promotion['reason']}" in text
        # How the job's photos were split, still there once it finished: the new version's split, in words.
        card = httpx.get(f"{server.base}/v1/models/{version}", timeout=30).json()["card"]
        assert truth["progress"]["split"] == card["dataset"]["split"] and sum(card["dataset"]["split"].values()) == 42
        assert split_words(truth["progress"]) in text
        assert truth["progress"]["field_check"] == {"refuses": False}  # it learns field photos: no such check
        assert "the new version answers them; it has no unlike-training check" in text
        other = truth["progress"]["other_leaves"]  # a CNN from scratch: not the bank's network, no such check
        assert other["fitted"] is False and "weights" not in other
        assert html.escape(other_leaves_words(other), quote=False) in text

        models = httpx.get(f"{server.base}/v1/models", timeout=30).json()
        qtbot.waitUntil(lambda: tab.table.rowCount() == 2, timeout=SLOW)
        row = next(r for r in range(2) if tab.table.item(r, 0).text() == str(version))
        n = truth["metrics"]["test"]["n"]  # as the web page and `leafdoc models list` say it
        assert tab.table.item(row, 4).text() == f"{100 * accuracy:.1f}% of {n:,}"
        assert tab.table.item(row, 1).text().endswith("✔") == promotion["promoted"]
        assert f"version {models['serving_version']}</b>" in tab.serving_label.text()
        assert (models["serving_version"] == version) == promotion["promoted"]
        assert not error_dialogs(window)
        window.close()
    finally:
        server.stop()


# ---- the built-in server: promote, roll back, upload, retrain, stop ------------------------------


def two_model_versions(home: Path, model: Path) -> None:
    """A data home whose registry has version 1 serving and version 2 as a candidate (no training needed)."""
    from leafdoc.core.settings import Settings
    from leafdoc.data.catalog import Catalog
    from leafdoc.data.store import open_store
    from leafdoc.model_versions import Registry

    settings = Settings(home=home, model_dir=model)
    settings.ensure_home()
    catalog = Catalog(settings.catalog_url)
    registry = Registry(settings, catalog, open_store(settings.store_location))
    registry.seed()
    registry.register(model, source="a second version, registered by the test")
    catalog.dispose()


def descendants(pid: int) -> list[int]:
    out = []
    for child in children_of(pid):
        out += [child, *descendants(child)]
    return out


def test_builtin_server_promotes_rolls_back_uploads_retrains_and_stops_on_close(
    qtbot, job_model, settings_file, tmp_path, monkeypatch
):
    model = answering_copy(job_model, tmp_path / "model")
    two_model_versions(tmp_path / "home", model)
    monkeypatch.setenv("LEAFDOC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LEAFDOC_MODEL_DIR", str(model))
    monkeypatch.setenv("LEAFDOC_WORKER_POLL_SECONDS", "0.2")
    monkeypatch.setenv("LEAFDOC_MODEL_CHECK_SECONDS", "0")
    asked = answer_token(monkeypatch, None)  # the built-in server's token is the app's own: never asked
    monkeypatch.setattr(dialogs, "confirm", lambda *a: True)

    window = open_window(qtbot, None, settings_file)
    local = window.session.local
    assert local is not None and local.base.startswith("http://127.0.0.1:")
    assert "built-in server" in window.connection_label.text()

    tab = window.retrain
    window.tabs.setCurrentWidget(tab)
    assert "built-in" in tab.token_label.text() and not tab.token_button.isVisible()
    qtbot.waitUntil(lambda: tab.table.rowCount() == 2, timeout=SLOW)
    assert tab.models["serving_version"] == 1
    tab.table.selectRow(next(r for r in range(2) if tab.table.item(r, 0).text() == "2"))
    assert tab.promote_button.isEnabled()
    tab.promote_button.click()
    qtbot.waitUntil(lambda: tab.models["serving_version"] == 2, timeout=SLOW)
    assert "version 2" in tab.serving_label.text()
    qtbot.waitUntil(lambda: "serving model version 2" in window.connection_label.text(), timeout=SLOW)
    # The Diagnose tab's "what this model knows" and its limitations are the new serving version's
    serving = lambda: (window.diagnose.serving_model or {}).get("version")  # noqa: E731
    qtbot.waitUntil(lambda: serving() == 2, timeout=SLOW)
    tab.rollback_button.click()
    qtbot.waitUntil(lambda: tab.models["serving_version"] == 1, timeout=SLOW)
    qtbot.waitUntil(lambda: "serving model version 1" in window.connection_label.text(), timeout=SLOW)
    qtbot.waitUntil(lambda: serving() == 1, timeout=SLOW)

    tab.set_source(make_leaf_folder(tmp_path / "mine"))
    tab.dataset_box.setEditText("mine")
    tab.upload_button.click()
    qtbot.waitUntil(lambda: tab.last_upload is not None, timeout=SLOW)
    assert tab.last_upload["added"] == 18 and tab.last_upload["n_classes"] == 3

    # A real job starts, is followed and cancelled while it runs: the button is there only while it can be.
    assert not tab.cancel_button.isEnabled()
    tab.epochs.setValue(1)
    tab.train_button.click()
    qtbot.waitUntil(lambda: "<b>running</b>" in tab.job_label.text(), timeout=SLOW)
    assert tab.cancel_button.isEnabled()
    tab.cancel_button.click()
    qtbot.waitUntil(lambda: "<b>cancelled</b>" in tab.job_label.text(), timeout=SLOW)
    assert "nothing was registered" in tab.job_label.text() and not error_dialogs(window)
    assert tab.train_button.isEnabled() and not tab.cancel_button.isEnabled() and not tab.poll_timer.isActive()

    # Finishing one takes minutes on two busy cores, so the test closes the app while the next one
    # runs: the server, its consumer and the training process must all stop.
    tab.train_button.click()
    qtbot.waitUntil(lambda: "<b>running</b>" in tab.job_label.text(), timeout=SLOW)
    assert "on <b>mine</b>" in tab.job_label.text() and not tab.train_button.isEnabled()
    assert tab.poll_timer.isActive() and tab.cancel_button.isEnabled()
    assert not asked and not error_dialogs(window)

    server_pid = local.proc.pid
    family = [server_pid, *descendants(server_pid)]
    assert len(family) >= 2  # the server and its training consumer (and maybe the job's process)
    window.close()
    assert local.proc.poll() is not None  # closing waits for the server to stop
    qtbot.wait(500)
    assert not error_dialogs(window)  # requests cut short by closing are not errors to show
    deadline = time.monotonic() + 30
    while any(alive(p) for p in family) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in family)


# ---- the command -----------------------------------------------------------------------------------


def test_leafdoc_desktop_command_runs_and_quits_on_sigterm(live_server, tmp_path):
    exe = Path(sys.executable).with_name("leafdoc")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "LEAFDOC_DESKTOP_SETTINGS": str(tmp_path / "d.ini")}
    proc = subprocess.Popen(
        [str(exe), "desktop", "--server", live_server.base], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        lines = [proc.stderr.readline() for _ in range(1)]
        while lines[-1] and "leafdoc desktop:" not in lines[-1]:  # Qt may warn first
            lines.append(proc.stderr.readline())
        assert f"leafdoc desktop: connecting to {live_server.base}" in lines[-1], lines
        time.sleep(1.0)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (tmp_path / "d.ini").exists()  # it saved its settings on the way out


def test_the_apps_startup_objects_are_left_out_of_garbage_collections(live_server, tmp_path):
    """Each full garbage collection walked the ~120,000 objects made at start, 50-110 ms on the UI thread (a stutter
    every few dozen result cards); the app now freezes them once its window is drawn."""
    code = (
        "import gc, sys, time\n"
        "from PySide6.QtCore import QTimer\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from leafdoc.desktop import app as desktop\n"
        "def report():\n"
        "    start = time.perf_counter(); gc.collect(); ms = (time.perf_counter() - start) * 1000\n"
        "    print(gc.get_freeze_count(), len(gc.get_objects()), round(ms, 1), flush=True)\n"
        "    QApplication.instance().quit()\n"
        "qt = QApplication(['leafdoc'])  # the app run() takes up, so that the timer below runs in its loop\n"
        "QTimer.singleShot(3000, report)\n"
        f"sys.exit(desktop.run({live_server.base!r}, {str(tmp_path / 'd.ini')!r}))\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=90)
    frozen, scanned, ms = r.stdout.split()
    # what a collection still walks is what was made after the start: a few thousand objects, not 120,000
    assert int(frozen) > 50_000 and int(scanned) < int(frozen) / 5, (frozen, scanned, ms, r.stderr[-2000:])


def test_without_pyside6_the_command_says_what_to_install():
    code = (
        "import sys; sys.modules['PySide6'] = None; sys.argv = ['leafdoc', 'desktop']\n"
        "from leafdoc.cli.main import main; main()"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "pip install 'leafdoc[desktop]'" in r.stderr and "Traceback" not in r.stderr


def test_without_a_display_the_command_says_so(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    exe = Path(sys.executable).with_name("leafdoc")
    r = subprocess.run([str(exe), "desktop"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "No display" in r.stderr and "Traceback" not in r.stderr


def test_desktop_package_never_imports_tensorflow():
    code = (
        "import sys, leafdoc.desktop.app, leafdoc.desktop.serve_child, leafdoc.api_client\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["False", "False"]


def refused_card(qtbot, photo: Path, reason: str, message: str, label: str, probability: float):
    """A ResultCard shown, answering `photo` with a refusal for `reason` (the server's `message`) over `label`."""
    from leafdoc.desktop.diagnose import ResultCard

    card = ResultCard(photo)
    qtbot.addWidget(card)
    card.show()
    top = [{"label": label, "probability": probability}]
    card.show_answer({"abstained": True, "reason": reason, "message": message, "top_k": top, "model_version": 1})
    return card


def test_a_field_photo_answer_gets_its_own_title_and_advice(qtbot, tmp_path):
    from leafdoc.desktop.diagnose import REASON_WORDS
    from leafdoc.inference.abstain import UNLIKE_TRAINING

    card = refused_card(
        qtbot, tmp_path / "field.jpg", "unlike_training", UNLIKE_TRAINING, "Corn_(maize)___Common_rust_", 0.6
    )
    # the web page's heading (words/refusals.py)
    assert card.title.text() == "Not sure: this photo is not like the ones this model learnt this crop from"
    assert card.notice.isVisible() and "sheet of paper" in card.notice.text()
    assert "field photo" in REASON_WORDS["unlike_training"]
    assert not card.framed.isVisible()


def test_a_leaf_a_labs_model_was_not_taught_gets_its_own_title_not_photo_advice(qtbot, tmp_path):
    """unknown_leaf (a lab's model's other-leaves check): the title says the model was not taught this leaf and to
    check what it knows, not to take a clearer photo; the server's message under it."""
    from leafdoc.desktop.diagnose import REASON_WORDS
    from leafdoc.inference.abstain import UNKNOWN_LEAF

    card = refused_card(qtbot, tmp_path / "other.jpg", "unknown_leaf", UNKNOWN_LEAF, "Tomato___Early_blight", 0.8)
    assert card.title.text() == "Not sure: this leaf is not one this model was taught"
    assert card.notice.isVisible() and "another crop" in card.notice.text()
    assert "not taught" in REASON_WORDS["unknown_leaf"]


def test_a_framed_photo_says_so_on_the_card_and_the_next_answer_does_not(qtbot, tmp_path):
    from leafdoc.desktop.diagnose import ResultCard
    from leafdoc.words.photo_guide import FRAMED

    card = ResultCard(tmp_path / "far.jpg")
    qtbot.addWidget(card)
    card.show()
    top = [{"label": "Tomato___Early_blight", "probability": 0.9}]
    card.show_answer({"abstained": False, "label": top[0]["label"], "top_k": top, "framed_box": [10, 20, 410, 420]})
    assert card.framed.isVisible() and card.framed.text() == FRAMED
    card.show_answer({"abstained": False, "label": top[0]["label"], "top_k": top, "framed_box": None})
    assert not card.framed.isVisible()
    # A light warmer than the training photos', corrected: said too, alone or beside the framing.
    card.show_answer({"abstained": False, "label": top[0]["label"], "top_k": top, "light_corrected": "warm"})
    assert card.framed.isVisible() and card.framed.text().startswith("The light in this photo was warmer")
    both = {"framed_box": [10, 20, 410, 420], "light_corrected": "cool"}
    card.show_answer({"abstained": False, "label": top[0]["label"], "top_k": top, **both})
    assert card.framed.text().startswith(FRAMED) and "was cooler" in card.framed.text()


def test_a_label_without_advice_says_so_on_the_card(qtbot, tmp_path):
    from leafdoc.desktop.diagnose import ResultCard

    card = ResultCard(tmp_path / "leaf.jpg")
    qtbot.addWidget(card)
    card.show()
    label = "Cassava___Mosaic"
    top = [{"label": label, "probability": 0.9}]
    advice = shipped_knowledge().reference(label)
    card.show_answer({"abstained": False, "label": label, "top_k": top, "model_version": 1, "advice": advice})
    assert card.advice.isVisible() and "no advice for 'Cassava___Mosaic' yet" in card.advice.summary.text()
    assert not card.advice.toggle.isVisible()  # nothing to unfold


def test_the_photo_guide_shows_the_example_photos_and_what_leafdoc_answers(qtbot, settings_file):
    """The same entries as the web page's photo_guide, from the Diagnose tab, even with no server to talk to."""
    from leafdoc.desktop.guide import PhotoGuideDialog
    from leafdoc.words import photo_guide

    window = open_window(qtbot, f"http://127.0.0.1:{free_port()}", settings_file, wait=False)
    next_error(qtbot, window)  # "Cannot connect": the guide needs no server
    window.diagnose.drop_zone.guide.click()
    dialog = window.diagnose.guide_dialog
    assert isinstance(dialog, PhotoGuideDialog)
    qtbot.waitUntil(dialog.isVisible, timeout=5000)

    pictured = photo_guide.pictured()
    assert [card.entry for card in dialog.cards] == list(pictured) and len(pictured) == 4
    for card in dialog.cards:
        assert card.isVisible() and not card.photo.pixmap().isNull()
        assert card.photo.pixmap().height() > 100  # a thumbnail one can see, not an icon
        assert card.entry.caption in card.caption.text()
        assert card.height() >= card.sizeHint().height()  # no caption squeezed under the next row
    shown = " ".join(label.text() for label in dialog.findChildren(type(dialog.cards[0].caption)))
    assert (
        "not sure" in shown
        and "(unsure)" not in shown
        and "not_a_leaf" not in shown
        and "sheet of paper" in shown
        and "Mitchell Haindfield" in shown
    )

    window.diagnose.drop_zone.guide.click()  # a second click shows the same window, not another
    assert window.diagnose.guide_dialog is dialog


def test_a_refusal_card_shows_no_figure_and_an_urgent_look_alike_is_said(qtbot, tmp_path):
    from leafdoc.desktop.diagnose import ResultCard

    card = ResultCard(tmp_path / "leaf.jpg")
    qtbot.addWidget(card)
    card.show()
    top = [
        {"label": "Tomato___Late_blight", "probability": 0.51},
        {"label": "Potato___Late_blight", "probability": 0.44},
    ]
    message = "Not sure which disease this is. It could be Tomato — Late blight or Potato — Late blight."
    from PySide6.QtGui import QImage

    overlay = QImage(200, 200, QImage.Format.Format_RGB32)
    overlay.fill(0x3366CC)
    refusal = {"abstained": True, "reason": "unsure", "message": message, "top_k": top, "model_version": 1}
    card.show_answer({**refusal, "overlay": overlay, "explained_label": "Tomato___Late_blight"})
    assert card.notice.isVisible() and "It could be Tomato — Late blight" in card.notice.text()
    assert not card.bars and not card.bars_title.isVisible()  # a grower reads a percentage as an answer
    shown = " ".join(w.text() for w in card.findChildren(QLabel) if w.isVisible())
    assert "%" not in shown and "51" not in shown, shown
    # no heat map: it maps a label the answer does not give (the server sends one all the same)
    assert not card.heatmap.isVisible() and not card.heatmap.has_image() and not card.heat_caption.isVisible()

    answered = ResultCard(tmp_path / "early.jpg")
    qtbot.addWidget(answered)
    answered.show()
    early = [
        {"label": "Tomato___Early_blight", "probability": 0.99},
        {"label": "Tomato___Late_blight", "probability": 0.01},
    ]
    caution = {"label": "Tomato___Late_blight", "message": "Check that it is not Tomato — Late blight: urgent."}
    answered.show_answer({"abstained": False, "label": early[0]["label"], "top_k": early, "caution": caution})
    assert answered.notice.isVisible() and answered.notice.text() == "⚠ " + caution["message"]
    assert len(answered.bars) == 2


def test_under_a_refusal_only_what_it_is_can_be_said(qtbot):
    """A refusal is no answer to be right or wrong about: its card had ✓ Yes and ✗ No, and a "Yes" was stored as
    correct. Now, as on the web page: "What is it? (if you know)", the labels and Send, which sends the label
    picked and nothing before; under a photo refused as unusable, nothing is asked (take another)."""
    from leafdoc.desktop.feedback import WHAT_IS_IT, FeedbackBar
    from leafdoc.words.feedback import asks_feedback

    sent = []
    labels = ["Tomato___Late_blight", "Potato___Late_blight", "Tomato___healthy"]
    refusal = {"abstained": True, "reason": "unsure", "label": None, "prediction_id": "p1"}
    bar = FeedbackBar(refusal, labels, lambda correct, label, done, failed: sent.append((correct, label)))
    qtbot.addWidget(bar)
    bar.show()
    assert WHAT_IS_IT in bar.question.text() and not bar.yes.isVisible() and not bar.no.isVisible()
    assert bar.send_button.isVisible() and not bar.send_button.isEnabled()
    bar._send(False)  # nothing picked: nothing sent
    bar._send(True)
    assert sent == []
    bar.actual.setCurrentIndex(bar.actual.findData("Potato___Late_blight"))
    assert bar.send_button.isEnabled()
    bar.send_button.click()
    assert sent == [(False, "Potato___Late_blight")]
    bar._sent(False, "Potato___Late_blight")  # the server took it: no answer was wrong, what the leaf is was said
    assert bar.status.text().startswith("✓ Thank you: recorded that it is Potato — Late blight."), bar.status.text()

    answer = {"abstained": False, "label": "Tomato___healthy", "prediction_id": "p2"}
    asked = FeedbackBar(answer, labels, lambda *a: None)
    qtbot.addWidget(asked)
    asked.show()
    assert "Was this right?" in asked.question.text() and asked.yes.isVisible() and asked.no.isVisible()
    assert not asked.send_button.isVisible() and asked.actual.findData("Tomato___healthy") == -1
    assert asks_feedback(answer) and asks_feedback(refusal)
    assert not asks_feedback({"abstained": True, "reason": "poor_photo"})
