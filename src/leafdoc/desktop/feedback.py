""" "Was this right?" under each diagnosis card: Yes, No, and "It is actually…" (one of the model's labels),
sent to POST /v1/predictions/{id}/feedback from a worker thread, as the web page does."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from leafdoc.desktop import dialogs
from leafdoc.desktop.widgets import pretty_label

# send(correct, label, on_done, on_error): runs the request off the UI thread
Send = Callable[[bool, str | None, Callable[[object], None], Callable[[BaseException], None]], None]


class FeedbackBar(QWidget):
    def __init__(self, answer: dict, labels: list[str], send: Send, parent: QWidget | None = None):
        super().__init__(parent)
        self.answer, self.send = answer, send
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("<b>Was this right?</b>"))
        self.yes = QPushButton("✓ Yes")
        self.no = QPushButton("✗ No")
        self.actual = QComboBox()
        self.actual.addItem("It is actually… (optional)", None)
        for label in labels:
            if label != answer.get("label"):
                self.actual.addItem(pretty_label(label), label)
        self.actual.setToolTip("Pick what the leaf actually has, then press ✗ No.")
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

    def _send(self, correct: bool) -> None:
        label = None if correct else self.actual.currentData()
        self.yes.setEnabled(False)
        self.no.setEnabled(False)
        self.status.setText("Sending…")
        self.send(correct, label, lambda _: self._sent(correct, label), self._failed)

    def _sent(self, correct: bool, label: str | None) -> None:
        self.yes.setEnabled(True)
        self.no.setEnabled(True)
        if correct:
            self.status.setText("✓ Thank you: recorded as right.")
        else:
            said = f" (it is actually {pretty_label(label)})" if label else ""
            self.status.setText(
                f"✓ Thank you: recorded as wrong{said}. An admin reviews it; nothing enters training without an "
                "admin's label."
            )

    def _failed(self, exc: BaseException) -> None:
        self.yes.setEnabled(True)
        self.no.setEnabled(True)
        text, hint = dialogs.describe(exc)
        self.status.setText(f"Feedback not sent: {text}" + (f" {hint}" if hint else ""))
