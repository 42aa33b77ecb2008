"""The app's combo box (every drop-down of its tabs and cards): one a scrolling wheel leaves alone, sized to fit."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QFocusEvent, QWheelEvent
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
        self._later: Callable[[], list[tuple[str, object]]] | None = None

    def fill_later(self, items: Callable[[], list[tuple[str, object]]]) -> None:
        """Add `items()` ((text, data) pairs) after the items already in the box, but only when it is first needed:
        opened, given the keyboard focus, or searched (`findData`). A batch of 150 photos built 150 cards' boxes of 34
        labels each, which froze the window; most of them are never opened."""
        self._later = items

    def fill_now(self) -> None:
        if self._later is not None:
            items, self._later = self._later, None
            for text, data in items():
                self.addItem(text, data)

    def findData(self, *args, **kwargs) -> int:  # noqa: N802 - Qt's name
        self.fill_now()
        return super().findData(*args, **kwargs)

    def focusInEvent(self, event: QFocusEvent) -> None:  # noqa: N802 - Qt's name
        self.fill_now()  # the arrow keys then go through every item
        super().focusInEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt's name
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()  # Qt hands it on to the parents: the scroll area scrolls

    def showPopup(self) -> None:  # noqa: N802 - Qt's name
        self.fill_now()
        view = self.view()
        longest = view.sizeHintForColumn(0) + view.verticalScrollBar().sizeHint().width() + 2 * view.frameWidth() + 8
        screen = self.screen().availableGeometry().width() if self.screen() is not None else longest
        view.setMinimumWidth(max(self.width(), min(longest, screen - 20)))
        super().showPopup()
