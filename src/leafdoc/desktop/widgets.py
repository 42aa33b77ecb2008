"""What the tabs share: their base (`Tab`: the window's session, tasks and settings, saving a file), a picture that
scales to its box, confidence bars, labels (and, in combo.py, a combo box a scrolling wheel leaves alone)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QTableWidget,
    QWidget,
)

from leafdoc.core.atomic import atomic_write_bytes
from leafdoc.desktop import dialogs
from leafdoc.words.labels import pretty_label
from leafdoc.words.percent import percent_words


class Tab(QWidget):
    """One of the window's tabs: it keeps the window (`window_`: QWidget.window() is Qt's) and its session, tasks
    and settings."""

    def __init__(self, window):
        super().__init__()
        self.window_ = window
        self.session, self.tasks, self.settings = window.session, window.tasks, window.settings

    def save_file(
        self,
        title: str,
        file_name: str,
        kind: str,
        data: Callable[[], bytes],
        saved: Callable[[Path], str],
        failed: str,
    ) -> None:
        """Ask where to save (dialogs.ask_save_path), then write `data()` there off the UI thread: the status bar
        then shows `saved(path)`, or an error dialog titled `failed` says why it could not be written."""
        path = dialogs.ask_save_path(self, self.settings, title, file_name, kind)
        if path is None:
            return
        self.tasks.run(
            atomic_write_bytes,
            path,
            data(),
            on_done=lambda _: self.window_.flash(saved(path)),
            on_error=lambda exc: dialogs.show_error(self, failed, exc),
        )


def percent_text(value) -> str:
    """0.812 -> '81.2%'; anything not a number (a figure the server did not send) -> '—'."""
    return f"{float(value):.1%}" if isinstance(value, (int, float)) else "—"


# The rows a table's columns are sized to: those in view, then those nearest them. Qt measures 1,000 by default, so
# each row added to the Diagnose tab's history measured every row again (about 0.15 ms a row: 20 ms at 150 rows).
ROWS_MEASURED = 50


def read_only_table(columns: list[str], stretch: int, single: bool = False) -> QTableWidget:
    """A table people read and pick whole rows from (one row only if `single`), never edit: no row numbers,
    columns as wide as their contents (in the ROWS_MEASURED rows in and around the view) and column `stretch` taking
    the rest."""
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    if single:
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    header.setResizeContentsPrecision(ROWS_MEASURED)
    return table


def decode_image(data: bytes, max_side: int | None = None) -> QImage:
    """Photo or picture bytes -> a QImage (EXIF orientation applied; at most `max_side` a side, scaled smoothly), safe
    in a worker thread (tasks.py): Pillow decodes, never Qt's image plugins. Qt, asked to read bytes in a worker
    that holds Python's lock, probes its plugins; the SVG plugin's probe connects a Qt signal, which waits for Qt's
    connection lock; the UI thread, disconnecting a signal from a Python object being freed, held that lock and
    waited for Python's: the app hung (the suite once, 2026-11-29). A null QImage when Pillow cannot read it."""
    from PIL import Image, ImageOps

    from leafdoc.imaging.photos import heif_support, is_heif

    if is_heif(data):
        heif_support()
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if max_side and opened.format == "JPEG":
                opened.draft("RGB", (max_side, max_side))  # a phone photo decoded at 1/2-1/8 scale
            img = ImageOps.exif_transpose(opened).convert("RGBA")
        if max_side:
            img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    except Exception:  # noqa: BLE001 - unreadable, corrupt or too large: shown as "no picture"
        return QImage()
    w, h = img.size
    return QImage(img.tobytes(), w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()  # owns its pixels


class ImageView(QLabel):
    """Shows an image scaled to fit, keeping its aspect ratio; text when there is none."""

    def __init__(self, placeholder: str = "", min_size: QSize = QSize(120, 120), parent: QWidget | None = None):
        super().__init__(parent)
        self._pixmap = QPixmap()
        self._placeholder = placeholder
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(min_size)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setWordWrap(True)
        self.setStyleSheet("QLabel { color: #666; }")
        self.setText(placeholder)

    def set_image(self, image: QImage | QPixmap | None, placeholder: str | None = None) -> None:
        if image is None or image.isNull():
            self._pixmap = QPixmap()
            self.clear()
            self.setText(self._placeholder if placeholder is None else placeholder)
            return
        self._pixmap = image if isinstance(image, QPixmap) else QPixmap.fromImage(image)
        self._rescale()

    def set_message(self, text: str) -> None:
        self._pixmap = QPixmap()
        self.clear()
        self.setText(text)

    def source_pixmap(self) -> QPixmap:
        return self._pixmap

    def has_image(self) -> bool:
        return not self._pixmap.isNull()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap.isNull():
            return
        size = self.contentsRect().size()
        if size.width() < 2 or size.height() < 2:
            return
        scaled = self._pixmap.scaled(
            size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
        self.setPixmap(scaled)


class ConfidenceBar(QWidget):
    """A label (in `name`'s words if given: the answer's, in its language) and how sure the model is of it, as a bar
    with the percentage."""

    def __init__(
        self,
        label: str,
        probability: float,
        highlight: bool = False,
        muted: bool = False,
        name: str | None = None,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.label, self.probability = label, probability
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.name = QLabel(name or pretty_label(label))
        self.name.setToolTip(label)
        self.name.setMinimumWidth(220)
        self.name.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        if highlight and not muted:
            self.name.setStyleSheet("font-weight: bold;")
        elif muted:
            self.name.setStyleSheet("color: #777;")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setValue(round(max(0.0, min(1.0, probability)) * 1000))
        self.bar.setFormat(percent_words(probability))  # never "100.0%": the page's rule (words/percent.py)
        self.bar.setTextVisible(True)
        self.bar.setFixedWidth(200)
        colour = "#c8c8c8" if muted else "#3a9d5d" if highlight else "#8fb9a0"
        self.bar.setStyleSheet(
            "QProgressBar { border: 1px solid #bbb; border-radius: 3px; background: #f4f4f4; text-align: center; }"
            f"QProgressBar::chunk {{ background: {colour}; }}"
        )
        layout.addWidget(self.name, 1)
        layout.addWidget(self.bar)
