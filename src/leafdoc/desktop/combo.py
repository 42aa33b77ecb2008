"""The app's combo box (every drop-down of its tabs and cards): one a scrolling wheel leaves alone, sized to fit."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QComboBox, QWidget


class ComboBox(QComboBox):
    """A QComboBox that a wheel turned over it leaves alone unless it has the keyboard focus (clicked or tabbed to):
    a plain one takes the wheel meant for the list it sits in, and the diagnosis cards' "It is actually…" then sent
    a label nobody picked. The wheel goes on to the scroll area instead.

    `chars`: as wide as that many characters whatever its items (a box of 34 labels sized itself to the longest
    and pushed the cards wider than the window); its list opens as wide as its longest item all the same (up to
    the screen's width). Without it the box follows its items, also those added or translated after it was first
    shown (a version box "v1 (latest): 12 photo", a French "Je ne sais pa" were cut)."""

    def __init__(self, chars: int = 0, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        if chars:
            self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            self.setMinimumContentsLength(chars)
        else:
            self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt's name
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()  # Qt hands it on to the parents: the scroll area scrolls

    def showPopup(self) -> None:  # noqa: N802 - Qt's name
        view = self.view()
        longest = view.sizeHintForColumn(0) + view.verticalScrollBar().sizeHint().width() + 2 * view.frameWidth() + 8
        screen = self.screen().availableGeometry().width() if self.screen() is not None else longest
        view.setMinimumWidth(max(self.width(), min(longest, screen - 20)))
        super().showPopup()
