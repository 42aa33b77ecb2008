"""The advice on a diagnosis card: the summary under the diagnosis, and the full entry (symptoms, look-alikes,
what to do, when to call, sources) folded behind one button. Nothing at all for an abstention."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QToolButton, QVBoxLayout, QWidget

from leafdoc.advice.render import details_markdown, summary_markdown
from leafdoc.core.i18n import N_, gettext

MORE = N_("Symptoms, look-alikes, what to do, sources")
SHOW, HIDE = "▸", "▾"


class AdvicePanel(QWidget):
    def __init__(self, lang: str = "en", parent: QWidget | None = None):
        super().__init__(parent)
        self.more = gettext(lang, MORE)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.setSpacing(4)
        self.summary = QLabel()
        self.summary.setObjectName("adviceSummary")
        self.summary.setTextFormat(Qt.TextFormat.MarkdownText)
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet(
            "QLabel { background: #f3f8f3; border: 1px solid #b9d3b9; border-radius: 4px; padding: 6px; }"
        )
        self.toggle = QToolButton()
        self.toggle.setObjectName("adviceToggle")
        self.toggle.setText(f"{self.more} {SHOW}")
        self.toggle.setCheckable(True)
        self.toggle.setAutoRaise(True)
        self.toggle.toggled.connect(self._fold)
        self.details = QLabel()
        self.details.setObjectName("adviceDetails")
        self.details.setTextFormat(Qt.TextFormat.MarkdownText)
        self.details.setWordWrap(True)
        self.details.setOpenExternalLinks(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        layout.addWidget(self.summary)
        layout.addWidget(self.toggle)
        layout.addWidget(self.details)
        self.setVisible(False)
        self.toggle.setVisible(False)
        self.details.setVisible(False)

    def show_advice(self, answer: dict) -> None:
        """`answer` is the API's answer; `advice_entry` (the full entry, fetched with it) may be missing."""
        text = summary_markdown(None if answer.get("abstained") else answer.get("advice"))
        self.setVisible(bool(text))
        if not text:
            return
        self.summary.setText(text)
        entry = answer.get("advice_entry")
        self.toggle.setVisible(bool(entry))
        self.details.setText(details_markdown(entry) if entry else "")

    def _fold(self, shown: bool) -> None:
        self.toggle.setText(f"{self.more} {HIDE if shown else SHOW}")
        self.details.setVisible(shown)
