"""What the desktop app's tests without a server share: the message boxes shown, the next one read and closed, and
the main window of a server that cannot be reached (its "Cannot connect" box closed). Import it after the test
module's own `pytest.importorskip("PySide6.QtWidgets")`."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QApplication, QMessageBox
from tests.live_server import free_port

from leafdoc.desktop.window import MainWindow


def dialogs_shown() -> list[QMessageBox]:
    return [b for b in QApplication.topLevelWidgets() if isinstance(b, QMessageBox) and b.isVisible()]


def next_dialog(qtbot) -> tuple[str, str, str]:
    """The next message box's title, text and informative text; closed once read."""
    qtbot.waitUntil(lambda: bool(dialogs_shown()), timeout=30_000)
    box = dialogs_shown()[0]
    seen = (box.windowTitle(), box.text(), box.informativeText())
    box.close()
    qtbot.waitUntil(lambda: box not in dialogs_shown(), timeout=5000)
    return seen


def unreachable_window(qtbot, tmp_path: Path, size: tuple[int, int] | None = None) -> MainWindow:
    """The main window, its server unreachable (the "Cannot connect" box it opens with, closed)."""
    w = MainWindow(f"http://127.0.0.1:{free_port()}", settings_path=tmp_path / "desktop.ini")
    qtbot.addWidget(w)
    if size:
        w.resize(*size)
    w.show()
    assert next_dialog(qtbot)[0] == "Cannot connect"
    return w


def close_dialogs() -> None:
    for box in dialogs_shown():
        box.close()
