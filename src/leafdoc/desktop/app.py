"""`leafdoc desktop`: make the Qt application, show the window, run until it is closed."""

from __future__ import annotations

import gc
import os
import signal
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from leafdoc.core.errors import LeafdocError
from leafdoc.desktop.window import MainWindow


def check_display() -> None:
    """On Linux without a display Qt aborts the process; say what to do instead."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise LeafdocError(
            "No display: the desktop app needs a graphical session.",
            hint="Run it on your desktop, or use the web page (`leafdoc serve`, then open /ui in a browser).",
        )


def freeze_startup_objects() -> None:
    """Leave the ~120,000 objects made at start (Qt's wrappers, the modules, the window) out of Python's garbage
    collections: each full collection walked them all, ~50-110 ms on the UI thread, a stutter every few dozen result
    cards. Collected once first, so no garbage is kept; objects made later are collected as before."""
    gc.collect()
    gc.freeze()


def run(server: str | None = None, settings_path: str | Path | None = None) -> int:
    check_display()
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "leafdoc"])
    app.setApplicationName("leafdoc")
    app.setOrganizationName("leafdoc")
    window = MainWindow(server, settings_path)
    window.show()
    local = window.session.local
    if local is not None and local.proc is not None:
        note = f"started a built-in server at {local.base} (pid {local.proc.pid}; log {local.log_path})"
    else:
        note = f"connecting to {window.session.server_url}"
    print(f"leafdoc desktop: {note}", file=sys.stderr, flush=True)
    # Ctrl-C or SIGTERM close the window like its close button (which stops the built-in server).
    # Python runs signal handlers only between bytecodes, so wake it up regularly.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: window.close())
    tick = QTimer()
    tick.timeout.connect(lambda: None)
    tick.start(250)
    QTimer.singleShot(0, freeze_startup_objects)  # once the window is drawn
    return app.exec()
