"""The photo guide window (Diagnose tab ▸ *Photo guide*): how to take a photo leafdoc can read, with good and
bad example photos and what leafdoc answers for each. The words and pictures are leafdoc/guide.py's, the
same as the web page's."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLayout,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from leafdoc.core.i18n import N_, gettext
from leafdoc.words import photo_guide

WINDOW_TITLE = N_("Photo guide — {title}")

PHOTO_HEIGHT = 150
CARD_WIDTH = 220
SPACING = 10
COLOURS = {True: ("#eef8ee", "#4f9d4f"), False: ("#fdf1f1", "#c94a4a")}  # (background, border): good, bad


def _words(text: str, rich: bool = False, width: int | None = None) -> QLabel:
    label = QLabel(text)
    if width:  # a fixed width gives wrapped text its real height (Qt lays out wrapped labels poorly otherwise)
        label.setFixedWidth(width)
    label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    return label


CLOSE = N_("Close")


class GuideCard(QFrame):
    """One example: the picture, the caption, what the photo is and what leafdoc answers."""

    def __init__(self, entry: photo_guide.GuideEntry, lang: str = "en", parent: QWidget | None = None):
        super().__init__(parent)
        self.entry = entry

        def say(text: str) -> str:
            return gettext(lang, text)

        self.setObjectName("guideEntry")
        background, border = COLOURS[entry.good]
        self.setStyleSheet(
            f"#guideEntry {{ background: {background}; border: 1px solid {border}; border-top: 4px solid {border};"
            " border-radius: 6px; }"
        )
        self.setFixedWidth(CARD_WIDTH)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        self.photo = QLabel()
        self.photo.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.photo.setFixedHeight(PHOTO_HEIGHT)
        pixmap = QPixmap(str(entry.path)) if entry.path else QPixmap()
        if not pixmap.isNull():
            pixmap = pixmap.scaled(
                CARD_WIDTH - 20,
                PHOTO_HEIGHT,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        self.photo.setPixmap(pixmap)
        layout.addWidget(self.photo)
        self.caption = _words(f"<b>{html.escape(say(entry.caption))}</b>", rich=True, width=CARD_WIDTH - 16)
        layout.addWidget(self.caption)
        words = _words(f"{say(entry.photo)} {say(entry.answer)}", width=CARD_WIDTH - 16)
        words.setStyleSheet("color: #333; font-size: 9pt;")
        layout.addWidget(words)
        layout.addStretch(1)


class PhotoGuideDialog(QDialog):
    """Tips, then a row of example cards, then the entries without a picture and the photos' credits. Every
    wrapped text has a fixed width (that of the row of cards), so its height is known and the window is as
    tall as its words: Qt's height-for-width layout otherwise squeezes wrapped words under the next row. Those
    words scroll (`scroll`), the Close button under them, in a window no taller than the screen's room (in French
    it was 814 px tall, its Close button off a 768 px screen)."""

    def __init__(self, parent: QWidget | None = None, lang: str = "en"):
        super().__init__(parent)
        self.lang = lang

        def say(text: str) -> str:
            return gettext(lang, text)

        self.setWindowTitle(say(WINDOW_TITLE).format(title=say(photo_guide.TITLE)))
        shown = photo_guide.pictured()
        self.cards = [GuideCard(entry, lang) for entry in shown]
        width = max(len(self.cards), 3) * (CARD_WIDTH + SPACING) - SPACING

        self.body = QWidget()
        layout = QVBoxLayout(self.body)
        layout.setSizeConstraint(QLayout.SizeConstraint.SetFixedSize)
        layout.addWidget(_words(f"<h3>{html.escape(say(photo_guide.TITLE))}</h3>", rich=True, width=width))
        tips = _words("\n".join(f"- {say(tip)}" for tip in photo_guide.TIPS), width=width)
        tips.setTextFormat(Qt.TextFormat.MarkdownText)
        layout.addWidget(tips)

        row = QHBoxLayout()
        row.setSpacing(SPACING)
        height = max((card.sizeHint().height() for card in self.cards), default=0)  # one height: the wordiest's
        for card in self.cards:
            card.setFixedHeight(height)
            row.addWidget(card)
        layout.addLayout(row)
        for entry in photo_guide.ENTRIES:
            if entry not in shown:
                said = html.escape(f"{say(entry.photo)} {say(entry.answer)}")
                words = f"<b>{html.escape(say(entry.caption))}</b>: {said}"
                layout.addWidget(_words(words, rich=True, width=width))
        if shown:
            credits = _words(photo_guide.credits(lang), width=width)
            credits.setStyleSheet("color: #666; font-size: 8pt;")
            layout.addWidget(credits)
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.body)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        outer = QVBoxLayout(self)
        outer.addWidget(self.scroll, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.button(QDialogButtonBox.StandardButton.Close).setText(gettext(lang, CLOSE))  # Qt's own said "Close"
        buttons.rejected.connect(self.close)
        outer.addWidget(buttons)
        self.fit_screen(buttons.sizeHint().height())

    def fit_screen(self, buttons: int) -> None:
        """As large as its words, but no larger than the screen's room (less the window's frame): they scroll."""
        body = self.body.sizeHint()
        bar = self.scroll.verticalScrollBar().sizeHint().width()
        margins = self.layout().contentsMargins()
        width = body.width() + bar + margins.left() + margins.right()
        height = body.height() + buttons + self.layout().spacing() + margins.top() + margins.bottom()
        screen = self.screen() if self.parentWidget() is None else self.parentWidget().screen()
        if screen is not None:
            room = screen.availableGeometry()
            width, height = min(width, room.width() - 16), min(height, room.height() - 48)
        self.resize(width, height)
