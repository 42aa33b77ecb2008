"""Diagnose tab: drop or pick leaf photos; each gets its diagnosis, confidence bars, heat map and a
"was this right?" bar (desktop/feedback.py).

The tab speaks the language picked in it (English, Spanish, French, Hindi: leafdoc's gettext catalogs, the server's
and the web page's words), as do the answers and their advice; the app's other tabs, for a lab and an admin, are in
English.

Every photo is sent to the server's /v1/explain (diagnosis + heat map in one answer) from a worker
thread. When the model abstains, the card says so in the server's own words and asks for a clearer
photo. Each answer also goes into this session's history, which can be saved as CSV.
"""

from __future__ import annotations

import base64
import html
from collections import deque
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from leafdoc.api_client import ApiError, LeafdocClient
from leafdoc.core.i18n import LANGUAGES, N_, gettext
from leafdoc.core.i18n import NAMES as LANGUAGE_NAMES
from leafdoc.desktop import dialogs
from leafdoc.desktop.advice import AdvicePanel
from leafdoc.desktop.combo import ComboBox
from leafdoc.desktop.feedback import FeedbackBar
from leafdoc.desktop.guide import PhotoGuideDialog
from leafdoc.desktop.prefs import get_int, get_str
from leafdoc.desktop.widgets import ConfidenceBar, ImageView, Tab, decode_image, read_only_table
from leafdoc.imaging.photos import IMAGE_SUFFIXES, is_image_name
from leafdoc.imaging.upload_size import shrink_for_upload
from leafdoc.words.answer_table import answer_row, table_csv
from leafdoc.words.feedback import asks_feedback
from leafdoc.words.labels import answer_name, crop_name
from leafdoc.words.model_card import LIMITS_TITLE, limits_words
from leafdoc.words.percent import percent_words
from leafdoc.words.photo_errors import photo_error_words
from leafdoc.words.photo_guide import answer_notes, knows_note, serving_crops
from leafdoc.words.refusals import refusal_headline

PHOTO_FILTER = "Photos (" + " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)) + ");;All files (*)"
THUMB = 480  # pixels: photos are scaled down in the worker, the UI thread only shows them
IN_FLIGHT = 3  # photos of a batch diagnosed at once: the thread pool (4) keeps a thread for the other tabs' calls
HISTORY_COLUMNS = [N_("Time"), N_("Photo"), N_("Diagnosis"), N_("Confidence"), N_("Answer"), N_("Model")]
CROP_UNKNOWN = N_("I don't know")
REASON_WORDS = {
    "poor_photo": N_("photo not usable"),
    "not_a_leaf": N_("not a leaf it knows"),
    "unlike_training": N_("field photo or too close: one whole leaf on plain paper, please"),
    "unknown_leaf": N_("a crop or condition this model was not taught"),
    "unsure": N_("between diseases"),
}
NOT_SURE_ROW = N_("not sure: {reason}")
NOT_THE_CROP = N_("not like the crop named")  # unsure, a crop given, no candidates (the card says more)
DIAGNOSED = N_("diagnosed")
# a card
LOADING_PHOTO = N_("Loading the photo…")
HEAT_MAP_HERE = N_("The heat map appears here")
HEAT_MAP_TIP = N_("Where the model looked: red areas weighed most in its diagnosis.")
YOUR_PHOTO = N_("Your photo")
LOOKED = N_("Where the model looked")
LOOKED_FOR = N_("Where the model looked for “{label}”")
DIAGNOSING = N_("Diagnosing…")
NO_PREVIEW_TYPE = N_("No preview for this file type")
NO_PREVIEW = N_("No preview")
NO_HEAT_MAP = N_("No heat map")
NOT_SURE_MESSAGE = N_("The model is not sure about this photo.")
MODEL_VERSION = N_("model version {version}")
HOW_SURE = N_("How sure the model is:")
COULD_NOT = N_("Could not diagnose this photo")
# the tab
DROP_HERE = N_("Drop leaf photos here")
OR_A_FOLDER = N_("(or a folder of them)")
ONE_LEAF = N_("One leaf per photo, in daylight, filling most of the picture.")
CHOOSE = N_("Choose photos…")
CHOOSE_TITLE = N_("Choose leaf photos")
GUIDE = N_("Photo guide")
GUIDE_TIP = N_("How to take a photo leafdoc can read, with examples of what it answers.")
ANSWERS_TO_SHOW = N_("Answers to show")
TOP_K_TIP = N_("How many possible diagnoses to list for each photo, most likely first.")
CROP = N_("Crop")
CROP_TIP = N_("Which crop the leaves are of, if you know it: leafdoc then chooses only among that crop's conditions.")
LANGUAGE = N_("Language")
LANGUAGE_TIP = N_(
    "The language of this tab, of the diagnoses and of their advice (the app's other tabs are in English). "
    "Translations not yet reviewed by a plant pathologist are marked so."
)
EMPTY = N_("Your diagnoses will appear here, newest first.")
PROGRESS = N_("{done} of {total} photos diagnosed…")
HISTORY = N_("History of this session")
SAVE_CSV = N_("Save history as CSV…")
CLEAR = N_("Clear")
# its messages
NOT_CONNECTED = N_("Not connected")
NOT_CONNECTED_TEXT = N_("The app is not connected to a leafdoc server yet.")
NOT_CONNECTED_HINT = N_("Wait until the status bar says it is connected, or pick a server in the Server menu.")
NO_PHOTOS = N_("No photos")
NO_PHOTOS_TEXT = N_("There are no photos in what you picked.")
FAILED_ONE = N_("Could not diagnose a photo")
FAILED_SOME = N_("Could not diagnose some photos")
FAILED_COUNT = N_("{n} of {total} photos could not be diagnosed:")
FAILED_HINT = N_("Check that each file is a photo (JPEG or PNG) and try again.")
NOTHING_TO_SAVE = N_("Nothing to save")
NOTHING_TO_SAVE_TEXT = N_("There is no diagnosis in this session's history yet.")
SAVE_TITLE = N_("Save the history as CSV")
SAVED = N_("Saved {n} diagnoses to {path}")
NOT_SAVED = N_("Could not save the history")


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given; folders become the photos inside them (sorted). Runs in a worker."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and is_image_name(f)))
        else:
            out.append(p)
    return out


def diagnose_file(
    client: LeafdocClient, path: Path, top_k: int, progress, crop: str | None = None, lang: str | None = None
) -> dict:
    """Worker: read the photo, show it (progress), ask the server (`crop`: the crop the grower picked, if any; `lang`:
    the language of the answer's words and advice); returns the answer + overlay QImage."""
    data = path.read_bytes()
    thumbnail = decode_image(data, THUMB)  # in this worker thread: Pillow, never Qt (widgets.decode_image)
    progress("photo", thumbnail)
    # a phone photo is sent at 1024 px (imaging/upload_size.py says why)
    upload, name = shrink_for_upload(data, path.name)
    if thumbnail.isNull() and upload is not data:  # unreadable here: show the JPEG that is sent
        progress("photo", decode_image(upload, THUMB))
    answer = client.explain(upload, name, top_k=top_k, crop=crop, lang=lang)
    answer["advice_entry"] = client.advice_for(answer)
    answer["model_labels"] = client.model(answer["model_version"]).get("labels", [])  # for "it is actually…"
    overlay = decode_image(base64.b64decode(answer.pop("overlay_png", "") or b""))
    answer.pop("heatmap", None)
    answer["overlay"] = overlay
    return answer


class ResultCard(QFrame):
    """One photo: the photo, the heat map, and the answer, in `lang` (the answer's own words are the server's, asked
    for in the same language)."""

    def __init__(self, path: Path, lang: str = "en", parent: QWidget | None = None):
        super().__init__(parent)
        self.path, self.lang = path, lang
        say = self.say
        self.answer: dict | None = None
        self.error: str | None = None
        self.setObjectName("resultCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("#resultCard { background: white; border: 1px solid #d0d7d0; border-radius: 6px; }")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 10)
        layout.setSpacing(12)
        self.photo = ImageView(say(LOADING_PHOTO), QSize(180, 180))
        self.photo.setFixedSize(200, 200)
        self.heatmap = ImageView(say(HEAT_MAP_HERE), QSize(180, 180))
        self.heatmap.setFixedSize(200, 200)
        self.heatmap.setToolTip(say(HEAT_MAP_TIP))
        photo_box, heat_box = QVBoxLayout(), QVBoxLayout()
        photo_box.addWidget(self.photo)
        photo_box.addWidget(_caption(say(YOUR_PHOTO)))
        heat_box.addWidget(self.heatmap)
        self.heat_caption = _caption(say(LOOKED))
        heat_box.addWidget(self.heat_caption)
        photo_box.addStretch(1)  # the photos stay at the top of a card the advice makes tall
        heat_box.addStretch(1)
        layout.addLayout(photo_box)
        layout.addLayout(heat_box)

        right = QVBoxLayout()
        right.setSpacing(6)
        self.title = QLabel(say(DIAGNOSING))
        self.title.setObjectName("diagnosis")
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-size: 16pt; font-weight: bold; color: #1d5e33;")
        self.subtitle = QLabel(path.name)
        self.subtitle.setStyleSheet("color: #555;")
        self.subtitle.setWordWrap(True)
        self.notice = QLabel()
        self.notice.setObjectName("notice")
        self.notice.setWordWrap(True)
        self.notice.setVisible(False)
        self.framed = QLabel()  # said when the model framed a small leaf, or corrected the light (answer_notes)
        self.framed.setObjectName("framed")
        self.framed.setWordWrap(True)
        self.framed.setStyleSheet("color: #555; font-style: italic;")
        self.framed.setVisible(False)
        self.bars_title = QLabel()
        self.bars_title.setStyleSheet("color: #555;")
        self.bars_title.setVisible(False)
        self.bars_box = QVBoxLayout()
        self.bars_box.setSpacing(4)
        self.bars: list[ConfidenceBar] = []
        right.addWidget(self.title)
        right.addWidget(self.subtitle)
        right.addWidget(self.notice)
        right.addWidget(self.framed)
        right.addWidget(self.bars_title)
        right.addLayout(self.bars_box)
        self.advice = AdvicePanel(lang)
        right.addWidget(self.advice)
        self.feedback: FeedbackBar | None = None
        self.feedback_box = QVBoxLayout()
        right.addLayout(self.feedback_box)
        right.addStretch(1)
        layout.addLayout(right, 1)

    def say(self, text: str) -> str:
        return gettext(self.lang, text)

    def show_photo(self, image: QImage) -> None:
        self.photo.set_image(image, placeholder=self.say(NO_PREVIEW_TYPE))

    def show_answer(self, answer: dict) -> None:
        self.answer = answer
        abstained = bool(answer.get("abstained"))
        if abstained:
            # the web page's heading (words/refusals.py): "Not sure: no diagnosis for this photo", or the reason's own
            self.title.setText(refusal_headline(answer.get("reason"), self.lang))
            self.title.setStyleSheet("font-size: 16pt; font-weight: bold; color: #9a5b00;")
            message = answer.get("message") or self.say(NOT_SURE_MESSAGE)
            self._notice(message, "#fff4e0", "#e0a040")
        else:
            self.title.setText(answer_name(answer, answer.get("label")))
            self.title.setToolTip(answer.get("label") or "")
            if answer.get("caution"):  # an urgent look-alike among the top candidates (advice/lookalikes.py)
                self._notice("⚠ " + answer["caution"]["message"], "#fdecec", "#c94a4a")
        version = answer.get("model_version")
        self.subtitle.setText(f"{self.path.name} · {self.say(MODEL_VERSION).format(version=version)}")
        # A refusal shows no percentage (a grower reads one as an answer): its message names the candidates.
        top = [] if abstained else answer.get("top_k") or []
        self.bars_title.setText(self.say(HOW_SURE))
        self.bars_title.setVisible(bool(top))
        for i, item in enumerate(top):
            bar = ConfidenceBar(item["label"], float(item["probability"]), highlight=(i == 0), name=item.get("name"))
            self.bars.append(bar)
            self.bars_box.addWidget(bar)
        self.advice.show_advice(answer)
        # A refusal shows no heat map, as the web page (it maps a label the answer does not give).
        self.heatmap.setVisible(not abstained)
        self.heat_caption.setVisible(not abstained)
        self.heatmap.set_image(None if abstained else answer.get("overlay"), placeholder=self.say(NO_HEAT_MAP))
        explained = answer.get("explained_label")
        if explained and not abstained:
            self.heat_caption.setText(self.say(LOOKED_FOR).format(label=answer_name(answer, explained)))
            self.heat_caption.setToolTip(explained)
        notes = answer_notes(answer, self.lang)
        self.framed.setText("\n\n".join(notes))
        self.framed.setVisible(bool(notes))

    def add_feedback(self, bar: FeedbackBar) -> None:
        self.feedback = bar
        self.feedback_box.addWidget(bar)

    def show_error(self, text: str) -> None:
        self.error = text
        self.title.setText(self.say(COULD_NOT))
        self.title.setStyleSheet("font-size: 16pt; font-weight: bold; color: #a02020;")
        self._notice(text, "#fde8e8", "#d07070")
        self.heatmap.set_message("")
        if not self.photo.has_image():
            self.photo.set_message(self.say(NO_PREVIEW))

    def _notice(self, text: str, background: str, border: str) -> None:
        self.notice.setText(text)
        self.notice.setStyleSheet(
            f"QLabel {{ background: {background}; border: 1px solid {border}; border-radius: 4px; padding: 6px; }}"
        )
        self.notice.setVisible(True)


class CardList(QWidget):
    """The column of cards, newest first. Its size hint is as wide as the column is, with the height the cards take at
    that width. Qt's is as wide as the widest card would like, and the scroll area asks for it whenever a card is
    added or changes; a card's layout keeps its height for one width only, so every card's words were laid out again
    at both widths each time: about 0.1-0.15 ms a card, 15-20 ms for each card added or answered with 150 on show."""

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        width = self.width()
        height = self.heightForWidth(width) if width > 0 else -1
        return QSize(width, height) if height >= 0 else super().sizeHint()


def _named(name: str, said: str) -> str:
    """'photo.jpg: what went wrong', the file named once (the server's message may name it already)."""
    return said if said.startswith(f"{name}:") or said.startswith(f"{name} ") else f"{name}: {said}"


def _caption(text: str) -> QLabel:
    label = QLabel(text)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    label.setMaximumWidth(200)
    label.setStyleSheet("color: #555; font-size: 9pt;")
    return label


class DropZone(QFrame):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("dropZone")
        self._style(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 14)
        self.text = QLabel()
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.pick = QPushButton()
        self.pick.setMinimumHeight(34)
        self.guide = QPushButton()
        self.guide.setMinimumHeight(34)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.guide)
        layout.addWidget(self.pick)
        self.speak("en")

    def speak(self, lang: str) -> None:
        def say(text: str) -> str:
            return html.escape(gettext(lang, text))

        self.text.setText(
            f"<b>{say(DROP_HERE)}</b> {say(OR_A_FOLDER)}<br><span style='color:#555'>{say(ONE_LEAF)}</span>"
        )
        self.pick.setText(gettext(lang, CHOOSE))
        self.guide.setText(gettext(lang, GUIDE))
        self.guide.setToolTip(gettext(lang, GUIDE_TIP))

    def highlight(self, on: bool) -> None:
        self._style(on)

    def _style(self, on: bool) -> None:
        colour = "#3a9d5d" if on else "#9bbfa6"
        background = "#e6f4ea" if on else "#f4faf5"
        self.setStyleSheet(
            f"#dropZone {{ border: 2px dashed {colour}; border-radius: 8px; background: {background}; }}"
        )


def titled(row, widget) -> QLabel:
    """`widget` under a title, as one column of `row` (the Diagnose tab's settings beside the drop zone): the title."""
    column = QVBoxLayout()
    title = QLabel()
    column.addWidget(title)
    column.addWidget(widget)
    row.addLayout(column)
    return title


def note_label(name: str, text_format: Qt.TextFormat, padding: str) -> QLabel:
    """A hidden, word-wrapped grey note under the drop zone (what the model knows, what it cannot do)."""
    label = QLabel("")
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setTextFormat(text_format)
    label.setStyleSheet(f"color: #444; padding: {padding};")
    label.setVisible(False)
    return label


class DiagnoseTab(Tab):
    def __init__(self, window):
        super().__init__(window)
        self.cards: list[ResultCard] = []
        self.history: list[dict] = []
        self._pending = 0
        self._batch_errors: list[tuple[str, str, str]] = []  # (file, what went wrong, what to do), as its card said
        self._batch_size = 0
        self._batch_done = 0
        self._waiting: deque[tuple[Path, dict]] = deque()  # photos of a batch not sent yet, with what to ask
        self._in_flight = 0
        self.setAcceptDrops(True)

        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.drop_zone = DropZone()
        self.drop_zone.pick.clicked.connect(self.pick_photos)
        self.drop_zone.guide.clicked.connect(self.show_guide)
        self.guide_dialog: PhotoGuideDialog | None = None
        top.addWidget(self.drop_zone, 1)
        self.top_k = QSpinBox()
        self.top_k.setRange(1, 10)
        self.top_k.setValue(get_int(self.settings, "diagnose/top_k", 3))
        self.top_k.valueChanged.connect(lambda v: self.settings.setValue("diagnose/top_k", v))
        self.top_k_title = titled(top, self.top_k)
        self.crop = ComboBox()
        self.crop.setObjectName("cropChoice")
        self.crop.addItem(CROP_UNKNOWN, "")
        remembered = get_str(self.settings, "diagnose/crop", "")
        if remembered:  # shown at once; checked against the serving model's crops once connected
            self.crop.addItem(crop_name(remembered), remembered)  # in the tab's language once it speaks
            self.crop.setCurrentIndex(1)
        self.crop.activated.connect(lambda _i: self.settings.setValue("diagnose/crop", self.crop.currentData() or ""))
        self.crop_title = titled(top, self.crop)
        self.lang = ComboBox()
        self.lang.setObjectName("langChoice")
        for code in LANGUAGES:
            self.lang.addItem(LANGUAGE_NAMES[code], code)
        self.lang.setCurrentIndex(max(0, self.lang.findData(get_str(self.settings, "diagnose/lang", "en"))))
        self.lang.activated.connect(lambda _i: self.language_picked())
        self.lang_title = titled(top, self.lang)
        layout.addLayout(top)
        # What the serving model knows (which crops, which of them from photos taken on the plant), once connected.
        self.knows = note_label("modelKnows", Qt.TextFormat.MarkdownText, "2px 4px")
        layout.addWidget(self.knows)
        # Under it, folded: what the serving model cannot do (its card's limitations, as the web page shows them).
        self.limits_button = QToolButton()
        self.limits_button.setObjectName("modelLimitsButton")
        self.limits_button.setCheckable(True)
        self.limits_button.setArrowType(Qt.ArrowType.RightArrow)
        self.limits_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.limits_button.setAutoRaise(True)
        self.limits_button.toggled.connect(self.unfold_limits)
        self.limits_button.setVisible(False)
        layout.addWidget(self.limits_button)
        self.limits = note_label("modelLimits", Qt.TextFormat.RichText, "2px 4px 2px 22px")
        layout.addWidget(self.limits)
        self.models: dict | None = None  # what the serving model knows, as /v1/models said it
        self.serving_model: dict | None = None  # its version with its card, as /v1/models/{version} said it
        self.session.connected.connect(lambda _ready: self.show_what_the_model_knows())

        self.progress = note_label("batchProgress", Qt.TextFormat.PlainText, "2px 4px")
        layout.addWidget(self.progress)

        splitter = QSplitter(Qt.Orientation.Vertical)
        self.cards_widget = CardList()
        self.cards_layout = QVBoxLayout(self.cards_widget)
        self.cards_layout.setSpacing(10)
        self.empty_hint = QLabel()
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setStyleSheet("color: #777; font-size: 11pt; padding: 30px;")
        self.cards_layout.addWidget(self.empty_hint)
        self.cards_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.cards_widget)
        splitter.addWidget(scroll)

        self.history_box = history_box = QGroupBox()
        hl = QVBoxLayout(history_box)
        self.table = read_only_table(HISTORY_COLUMNS, stretch=2)
        hl.addWidget(self.table)
        buttons = QHBoxLayout()
        self.save_csv_button = QPushButton()
        self.save_csv_button.clicked.connect(self.save_history)
        self.clear_button = QPushButton()
        self.clear_button.clicked.connect(self.clear)
        buttons.addStretch(1)
        buttons.addWidget(self.clear_button)
        buttons.addWidget(self.save_csv_button)
        hl.addLayout(buttons)
        splitter.addWidget(history_box)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([520, 240])  # most of the room for the photos; the history below
        layout.addWidget(splitter, 1)
        self.speak()

    @property
    def language(self) -> str:
        return self.lang.currentData() or "en"

    def say(self, text: str) -> str:
        return gettext(self.language, text)

    def language_picked(self) -> None:
        self.settings.setValue("diagnose/lang", self.language)
        self.speak()

    def speak(self) -> None:
        """The tab's own words in the language picked (the cards already shown keep theirs, as their answers do)."""
        say = self.say
        self.drop_zone.speak(self.language)
        self.top_k_title.setText(say(ANSWERS_TO_SHOW))
        self.top_k.setToolTip(say(TOP_K_TIP))
        self.crop_title.setText(say(CROP))
        self.crop.setToolTip(say(CROP_TIP))
        self.crop.setItemText(0, say(CROP_UNKNOWN))
        for i in range(1, self.crop.count()):  # the crops too, in the language picked now
            self.crop.setItemText(i, crop_name(self.crop.itemData(i), self.language))
        self.lang_title.setText(say(LANGUAGE))
        self.lang.setToolTip(say(LANGUAGE_TIP))
        self.empty_hint.setText(say(EMPTY))
        self.history_box.setTitle(say(HISTORY))
        self.table.setHorizontalHeaderLabels([say(c) for c in HISTORY_COLUMNS])
        self.save_csv_button.setText(say(SAVE_CSV))
        self.clear_button.setText(say(CLEAR))
        self._show_progress()
        if self.models is not None:
            self.show_knows()
        if self.guide_dialog is not None and self.guide_dialog.lang != self.language:
            self.guide_dialog.close()
            self.guide_dialog = None  # drawn again in the new language when asked for

    def show_guide(self) -> None:
        """The photo guide, in a window of its own beside this one (opened once, then raised)."""
        if self.guide_dialog is None:
            self.guide_dialog = PhotoGuideDialog(self, self.language)
        self.guide_dialog.show()
        self.guide_dialog.raise_()
        self.guide_dialog.activateWindow()

    # ---- adding photos -----------------------------------------------------------------------

    def show_what_the_model_knows(self) -> None:
        client = self.session.client
        if client is None:
            return

        def shown(models: dict) -> None:
            self.models = models
            self.show_knows()
            self.fill_crops(serving_crops(models))
            if models.get("serving_version") is not None:
                self.tasks.run(client.model, models["serving_version"], on_done=card_shown, on_error=lambda _e: None)

        def card_shown(model: dict) -> None:
            self.serving_model = model
            self.show_knows()

        self.tasks.run(client.models, on_done=shown, on_error=lambda _exc: self.knows.setVisible(False))

    def forget_model(self) -> None:
        """Another server is being connected to: what the old one's model knows (and its crops) is not said of the
        new one (after a failed "Connect to a server…" the tab still said "This model knows 34 kinds of leaf…")."""
        self.models, self.serving_model = None, None
        self.show_knows()
        self.fill_crops([])

    def show_knows(self) -> None:
        note = knows_note(self.models or {}, self.language)
        self.knows.setText(note or "")
        self.knows.setVisible(bool(note))
        paragraphs = limits_words(self.serving_model, self.language) if note else None
        self.limits.setText("".join(f"<p>{html.escape(p)}</p>" for p in paragraphs or []))
        self.limits_button.setText(self.say(LIMITS_TITLE))
        self.limits_button.setVisible(bool(paragraphs))
        self.unfold_limits(self.limits_button.isChecked())

    def unfold_limits(self, unfolded: bool) -> None:
        """The serving model's limitations shown under their title, or folded away (as the web page's <details>)."""
        self.limits_button.setArrowType(Qt.ArrowType.DownArrow if unfolded else Qt.ArrowType.RightArrow)
        self.limits.setVisible(unfolded and self.limits_button.isVisible())

    def fill_crops(self, crops: list[str]) -> None:
        """The serving model's crops in the crop box, the one picked last selected if this model knows it. None
        (a model whose labels name no crop, a lab's "late blight" and "healthy"; or no model serving): the box and its
        title hidden, "I don't know" alone being no choice."""
        wanted = get_str(self.settings, "diagnose/crop", "")
        self.crop.clear()
        self.crop.addItem(self.say(CROP_UNKNOWN), "")
        for c in crops:
            self.crop.addItem(crop_name(c, self.language), c)
        self.crop.setCurrentIndex(max(0, self.crop.findData(wanted)) if wanted else 0)
        self.crop.setVisible(bool(crops))
        self.crop_title.setVisible(bool(crops))

    def pick_photos(self) -> None:
        start = get_str(self.settings, "folders/photos", str(Path.home()))
        names, _ = QFileDialog.getOpenFileNames(self, self.say(CHOOSE_TITLE), start, PHOTO_FILTER)
        if names:
            self.add_paths([Path(n) for n in names])

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt's name
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
            self.drop_zone.highlight(True)

    def dragLeaveEvent(self, event) -> None:  # noqa: N802
        self.drop_zone.highlight(False)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        self.drop_zone.highlight(False)
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)

    def add_paths(self, paths: list[Path]) -> None:
        """Diagnose these photos (folders: the photos inside them)."""
        if self.session.client is None or not self.session.is_connected:
            dialogs.show_error(
                self,
                self.say(NOT_CONNECTED),
                self.say(NOT_CONNECTED_TEXT),
                hint=self.say(NOT_CONNECTED_HINT),
            )
            return
        self.settings.setValue("folders/photos", str(paths[0] if paths[0].is_dir() else paths[0].parent))
        self.tasks.run(expand_paths, list(paths), on_done=self._diagnose_all)

    def _diagnose_all(self, files: list[Path]) -> None:
        """Queue the photos; they are sent IN_FLIGHT at a time, each getting its card when it is sent. A folder of 150
        photos once had its 150 cards built and 150 requests queued in one turn of the event loop: the window froze
        for about 20 s, and the top card (the last photo, answered last) said "Diagnosing…" while the history
        filled."""
        if not files:
            dialogs.show_error(self, self.say(NO_PHOTOS), self.say(NO_PHOTOS_TEXT))
            return
        client, top_k, crop = self.session.client, self.top_k.value(), self.crop.currentData() or None
        if client is None:
            return
        if self._pending == 0:
            self._batch_errors, self._batch_size, self._batch_done = [], 0, 0
        self.empty_hint.setVisible(False)
        asked = {"client": client, "top_k": top_k, "crop": crop, "lang": self.language}
        self._waiting.extend((path, asked) for path in files)
        self._pending += len(files)
        self._batch_size += len(files)
        self._show_progress()
        self._send_more()

    def _send_more(self) -> None:
        """Send waiting photos while fewer than IN_FLIGHT are being diagnosed: one card built for each, at the top."""
        while self._waiting and self._in_flight < IN_FLIGHT:
            path, asked = self._waiting.popleft()
            card = ResultCard(path, asked["lang"])
            self.cards.append(card)
            self.cards_layout.insertWidget(0, card)
            self._in_flight += 1
            self.tasks.run(
                diagnose_file,
                asked["client"],
                path,
                asked["top_k"],
                crop=asked["crop"],
                lang=asked["lang"],
                on_progress=lambda what, image, card=card: card.show_photo(image),
                on_done=lambda answer, card=card: self._answered(card, answer),
                on_error=lambda exc, card=card: self._failed(card, exc),
                on_finally=self._sent_one_done,
            )

    def _sent_one_done(self) -> None:
        self._in_flight -= 1
        self._batch_done += 1
        self._one_done()
        self._show_progress()
        # the next photo is sent from the next turn of the event loop, so answers and clicks come in between
        QTimer.singleShot(0, self, self._send_more)

    def _show_progress(self) -> None:
        """ "12 of 150 photos diagnosed" over the cards while a batch of more than one photo runs."""
        running = self._pending > 0 and self._batch_size > 1
        if running:
            self.progress.setText(self.say(PROGRESS).format(done=self._batch_done, total=self._batch_size))
        self.progress.setVisible(running)

    def _answered(self, card: ResultCard, answer: dict) -> None:
        if card not in self.cards:  # cleared while it was being diagnosed
            return
        card.show_answer(answer)
        if answer.get("prediction_id") and self.session.client is not None and asks_feedback(answer):
            labels, send = answer.get("model_labels", []), self._feedback_sender(answer)
            card.add_feedback(FeedbackBar(answer, labels, send, card.lang))
        row = answer_row(answer, card.path)
        self.history.append(row)
        self._add_history_row(row, answer, card.lang)

    def _feedback_sender(self, answer: dict):
        client = self.session.client

        def send(correct: bool, label: str | None, on_done, on_error) -> None:
            self.tasks.run(client.feedback, answer["prediction_id"], correct, label, on_done=on_done, on_error=on_error)

        return send

    def _add_history_row(self, row: dict, answer: dict, lang: str = "en") -> None:
        """A row of the history table, in the words of its card (the CSV keeps the labels and reasons as they are)."""
        r = self.table.rowCount()
        self.table.insertRow(r)
        unsure = row["abstained"] == "yes"
        reason = gettext(lang, REASON_WORDS[row["reason"]]) if row["reason"] in REASON_WORDS else row["reason"]
        if row["reason"] == "unsure" and answer.get("crop_given") and not answer.get("candidates"):
            reason = gettext(lang, NOT_THE_CROP)  # not "between diseases": it named none (the leaf is another crop's)
        said = gettext(lang, NOT_SURE_ROW).format(reason=reason) if unsure else gettext(lang, DIAGNOSED)
        guess = answer_name(answer, row["diagnosis"]) if row["diagnosis"] else ""
        cells = [
            row["time"].replace("T", " "),
            row["file"],
            (f"({guess}?)" if unsure else guess) if guess else "—",  # a refused answer's label is only a guess
            "—" if unsure else percent_words(float(row["confidence"]), lang),
            said,
            str(row["model_version"]),
        ]
        for c, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if c == 2:
                item.setToolTip(row["diagnosis"])
            if c == 4 and row["message"]:
                item.setToolTip(row["message"])
            self.table.setItem(r, c, item)
        self.table.scrollToBottom()

    def _failed(self, card: ResultCard, exc: BaseException) -> None:
        if card not in self.cards:
            return
        # a photo the server cannot read, said in the card's language (the server's message is English), as the page
        code = exc.code if isinstance(exc, ApiError) else None
        text, hint = photo_error_words(code, card.path.name, card.lang) or dialogs.describe(exc, card.lang)
        card.show_error(text + (f"\n{hint}" if hint else ""))
        self._batch_errors.append((card.path.name, text, hint))

    def _one_done(self) -> None:
        self._pending -= 1
        if self._pending > 0 or not self._batch_errors:
            return
        errors, total = self._batch_errors, self._batch_size
        self._batch_errors = []
        if len(errors) == 1:
            _, text, hint = errors[0]
            dialogs.show_error(self, self.say(FAILED_ONE), text, hint=hint, lang=self.language)
            return
        lines = "\n".join(f"• {_named(name, text)}" for name, text, _ in errors)
        dialogs.show_error(
            self,
            self.say(FAILED_SOME),
            self.say(FAILED_COUNT).format(n=len(errors), total=total) + "\n" + lines,
            hint=self.say(FAILED_HINT),
        )

    def clear(self) -> None:
        """Every card and the history gone; photos of a batch not sent yet are not sent."""
        self._pending -= len(self._waiting)
        self._batch_size -= len(self._waiting)
        self._waiting.clear()
        self._show_progress()
        for card in self.cards:
            card.setParent(None)
            card.deleteLater()
        self.cards.clear()
        self.history.clear()
        self.table.setRowCount(0)
        self.empty_hint.setVisible(True)

    # ---- saving the history ------------------------------------------------------------------

    def history_csv(self) -> bytes:
        return table_csv(self.history).encode("utf-8")  # cells a spreadsheet would run as formulas made text

    def save_history(self) -> None:
        if not self.history:
            dialogs.show_error(self, self.say(NOTHING_TO_SAVE), self.say(NOTHING_TO_SAVE_TEXT))
            return
        file_name = f"leafdoc-diagnoses-{datetime.now():%Y%m%d-%H%M}.csv"
        self.save_file(
            self.say(SAVE_TITLE),
            file_name,
            "CSV files",
            self.history_csv,
            saved=lambda path: self.say(SAVED).format(n=len(self.history), path=path),
            failed=self.say(NOT_SAVED),
        )
