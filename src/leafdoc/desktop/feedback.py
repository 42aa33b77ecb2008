""" "Was this right?" under each diagnosis card: Yes, No, and "It is actually…" (one of the model's labels),
sent to POST /v1/predictions/{id}/feedback from a worker thread, as the web page does. Under a refusal there is no
answer to be right or wrong about (a "Yes" there was stored as correct): only "What is it? (if you know)", the
labels and Send, which sends once one is picked; under a photo refused as unusable, no bar
(words.feedback.asks_feedback)."""

from __future__ import annotations

import html
from collections.abc import Callable

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from leafdoc.advice.render import label_name
from leafdoc.core.i18n import N_, gettext
from leafdoc.desktop import dialogs
from leafdoc.desktop.combo import ComboBox
from leafdoc.words.feedback import NO, SEND, WAS_IT_RIGHT, WHAT_IS_IT, YES, thanks_words

DONT_KNOW = N_("I don't know")
ACTUALLY_PICK = N_("It is actually… (optional)")
ACTUALLY_TIP = N_("Pick what the leaf actually has, then press ✗ No.")
SENDING = N_("Sending…")
NOT_SENT = N_("Feedback not sent: {error}")

# send(correct, label, on_done, on_error): runs the request off the UI thread
Send = Callable[[bool, str | None, Callable[[object], None], Callable[[BaseException], None]], None]


class FeedbackBar(QWidget):
    """In `lang`, as the card it is under."""

    def __init__(self, answer: dict, labels: list[str], send: Send, lang: str = "en", parent: QWidget | None = None):
        super().__init__(parent)
        self.answer, self.send, self.lang = answer, send, lang
        self.refused = bool(answer.get("abstained"))
        say = self.say
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        row = QHBoxLayout()
        self.question = QLabel(f"<b>{html.escape(say(WHAT_IS_IT if self.refused else WAS_IT_RIGHT))}</b>")
        row.addWidget(self.question)
        self.yes = QPushButton(say(YES))
        self.no = QPushButton(say(NO))
        self.send_button = QPushButton(say(SEND))
        self.actual = ComboBox(chars=14)  # not as wide as the longest of its labels
        self.actual.addItem(say(DONT_KNOW if self.refused else ACTUALLY_PICK), None)
        # the labels are added when the box is first opened (desktop/combo.py: a batch's cards stay light)
        self.actual.fill_later(lambda: [(label_name(x, lang), x) for x in labels if x != answer.get("label")])
        if self.refused:  # only what the leaf is says anything: Send once it is picked
            self.send_button.setEnabled(False)
            self.actual.currentIndexChanged.connect(lambda _: self.send_button.setEnabled(self._picked()))
            row.addWidget(self.actual, 1)
            row.addWidget(self.send_button)
        else:
            self.actual.setToolTip(say(ACTUALLY_TIP))
            row.addWidget(self.yes)
            row.addWidget(self.no)
            row.addWidget(self.actual, 1)
        self.yes.setVisible(not self.refused)
        self.no.setVisible(not self.refused)
        self.send_button.setVisible(self.refused)
        layout.addLayout(row)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #555;")
        layout.addWidget(self.status)
        self.yes.clicked.connect(lambda: self._send(True))
        self.no.clicked.connect(lambda: self._send(False))
        self.send_button.clicked.connect(lambda: self._send(False))

    def say(self, text: str) -> str:
        return gettext(self.lang, text)

    def _picked(self) -> bool:
        return self.actual.currentData() is not None

    def _enable(self, on: bool) -> None:
        self.yes.setEnabled(on)
        self.no.setEnabled(on)
        self.send_button.setEnabled(on and (not self.refused or self._picked()))

    def _send(self, correct: bool) -> None:
        label = None if correct else self.actual.currentData()
        if self.refused and (correct or label is None):
            return  # nothing said about a refusal until what the leaf is is picked
        self._enable(False)
        self.status.setText(self.say(SENDING))
        self.send(correct, label, lambda _: self._sent(correct, label), self._failed)

    def _sent(self, correct: bool, label: str | None) -> None:
        self._enable(True)
        named = label_name(label, self.lang) if label else None
        self.status.setText(thanks_words(self.lang, correct, named, self.refused))

    def _failed(self, exc: BaseException) -> None:
        self._enable(True)
        text, hint = dialogs.describe(exc, self.lang)
        self.status.setText(self.say(NOT_SENT).format(error=text) + (f" {hint}" if hint else ""))
