""" "Was this right?" under each diagnosis card: Yes, No, and "It is actually…" (one of the model's labels),
sent to POST /v1/predictions/{id}/feedback from a worker thread, as the web page does."""

from __future__ import annotations

import html
from collections.abc import Callable

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from leafdoc.advice.render import label_name
from leafdoc.core.i18n import N_, gettext
from leafdoc.desktop import dialogs
from leafdoc.words.feedback import ACTUALLY, THANKS_RIGHT, THANKS_WRONG

WAS_IT_RIGHT = N_("Was this right?")
YES = N_("✓ Yes")
NO = N_("✗ No")
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
        say = self.say
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel(f"<b>{html.escape(say(WAS_IT_RIGHT))}</b>"))
        self.yes = QPushButton(say(YES))
        self.no = QPushButton(say(NO))
        self.actual = QComboBox()
        self.actual.addItem(say(ACTUALLY_PICK), None)
        for label in labels:
            if label != answer.get("label"):
                self.actual.addItem(label_name(label, lang), label)
        self.actual.setToolTip(say(ACTUALLY_TIP))
        row.addWidget(self.yes)
        row.addWidget(self.no)
        row.addWidget(self.actual, 1)
        layout.addLayout(row)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #555;")
        layout.addWidget(self.status)
        self.yes.clicked.connect(lambda: self._send(True))
        self.no.clicked.connect(lambda: self._send(False))

    def say(self, text: str) -> str:
        return gettext(self.lang, text)

    def _send(self, correct: bool) -> None:
        label = None if correct else self.actual.currentData()
        self.yes.setEnabled(False)
        self.no.setEnabled(False)
        self.status.setText(self.say(SENDING))
        self.send(correct, label, lambda _: self._sent(correct, label), self._failed)

    def _sent(self, correct: bool, label: str | None) -> None:
        self.yes.setEnabled(True)
        self.no.setEnabled(True)
        if correct:
            self.status.setText(self.say(THANKS_RIGHT))
        else:
            said = self.say(ACTUALLY).format(label=label_name(label, self.lang)) if label else ""
            self.status.setText(self.say(THANKS_WRONG).format(said=said))

    def _failed(self, exc: BaseException) -> None:
        self.yes.setEnabled(True)
        self.no.setEnabled(True)
        text, hint = dialogs.describe(exc)
        self.status.setText(self.say(NOT_SENT).format(error=text) + (f" {hint}" if hint else ""))
