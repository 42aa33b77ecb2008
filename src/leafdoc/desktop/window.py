"""The main window: five tabs (Diagnose, Dataset insights, Retrain, Review, Monitor), a Server menu and a status
bar."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QInputDialog, QLabel, QMainWindow, QMessageBox, QTabWidget, QWidget

from leafdoc.desktop import dialogs
from leafdoc.desktop.dataset import DatasetTab
from leafdoc.desktop.diagnose import DiagnoseTab
from leafdoc.desktop.monitor import MonitorTab
from leafdoc.desktop.prefs import get_int, get_str, open_settings
from leafdoc.desktop.retrain import RetrainTab
from leafdoc.desktop.review import ReviewTab
from leafdoc.desktop.session import Session
from leafdoc.desktop.tasks import Tasks

TITLE = "leafdoc — plant disease diagnosis"
DEFAULT_SIZE = (1100, 780)
FRAME = (16, 48)  # room left around the window for its title bar and frame (the window system's, not in size())


class MainWindow(QMainWindow):
    """`server`: a leafdoc server's URL; None starts the app's own server (stopped when the window closes)."""

    def __init__(self, server: str | None = None, settings_path: str | Path | None = None):
        super().__init__()
        self.setWindowTitle(TITLE)
        self.settings = open_settings(settings_path)
        self.tasks = Tasks(self)
        self.tasks.default_error = lambda exc: dialogs.show_error(self, "Something went wrong", exc)
        self.session = Session(self.settings, self.tasks, self)
        self._closed = False

        self.tabs = QTabWidget()
        self.diagnose = DiagnoseTab(self)
        self.dataset = DatasetTab(self)
        self.retrain = RetrainTab(self)
        self.review = ReviewTab(self)
        self.monitor = MonitorTab(self)
        self.tabs.addTab(self.diagnose, "Diagnose")
        self.tabs.addTab(self.dataset, "Dataset insights")
        self.tabs.addTab(self.retrain, "Retrain")
        self.tabs.addTab(self.review, "Review")
        self.tabs.addTab(self.monitor, "Monitor")
        self._stale: set[QWidget] = set()
        self.tabs.currentChanged.connect(self._tab_shown)
        self.setCentralWidget(self.tabs)

        self.connection_label = QLabel("Not connected")
        self.connection_label.setTextFormat(Qt.TextFormat.PlainText)  # it shows what a server says of itself
        self.connection_label.setObjectName("connectionStatus")
        self.statusBar().addPermanentWidget(self.connection_label, 1)
        self._menus()

        self.session.connecting.connect(self._connecting)
        self.session.connected.connect(self._connected)
        self.session.connection_failed.connect(self._connection_failed)

        self.resize(*DEFAULT_SIZE)
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        self.fit_screen()
        self.tabs.setCurrentIndex(min(max(get_int(self.settings, "window/tab", 0), 0), self.tabs.count() - 1))

        if server:
            self.session.connect_to(server)
        else:
            self.session.start_builtin()

    def fit_screen(self) -> None:
        """The window no larger than the screen's room (less the task bar and the window's frame): at 1100x780 on a
        1366x768 or 1024x600 screen its status bar and bottom buttons were off the screen."""
        screen = self.screen()
        if screen is None:
            return
        room = screen.availableGeometry()
        width = min(self.width(), room.width() - FRAME[0])
        height = min(self.height(), room.height() - FRAME[1])
        if (width, height) != (self.width(), self.height()):
            self.resize(width, height)
        if not room.contains(self.frameGeometry()):  # a position saved on a larger screen
            self.move(
                max(room.left(), min(self.x(), room.right() - width - FRAME[0])),
                max(room.top(), min(self.y(), room.bottom() - height - FRAME[1])),
            )

    def _menus(self) -> None:
        menu = self.menuBar().addMenu("&Server")
        connect = QAction("Connect to a server…", self)
        connect.triggered.connect(self.ask_server)
        builtin = QAction("Use the built-in server", self)
        builtin.triggered.connect(self.session.start_builtin)
        retry = QAction("Reconnect", self)
        retry.setShortcut(QKeySequence.StandardKey.Refresh)
        retry.triggered.connect(self.session.retry)
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        for action in (connect, builtin, retry):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(quit_action)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("About leafdoc", self)
        about.triggered.connect(self._about)
        help_menu.addAction(about)

    # ---- connection --------------------------------------------------------------------------

    def ask_server(self) -> None:
        current = get_str(self.settings, "server/url", "http://127.0.0.1:8000")
        url, ok = QInputDialog.getText(self, "Connect to a server", "Address of the leafdoc server:", text=current)
        if ok and url.strip():
            self.session.connect_to(url)

    def _connecting(self, message: str) -> None:
        self.connection_label.setText(message)
        self.retrain.update_token_status()
        # the server left behind: its versions are not shown as if they were the new one's (were after a failed connect)
        self.retrain.versions.forget(self.session.server_url)
        self.diagnose.forget_model()  # nor what its model knows, nor its crops

    def _connected(self, ready: dict) -> None:
        self.connection_label.setText(self._status_text(ready))
        self.retrain.update_token_status()
        self._stale = {self.diagnose, self.dataset, self.retrain, self.monitor}
        self._tab_shown(self.tabs.currentIndex())

    def _status_text(self, ready: dict) -> str:
        where = f"the built-in server ({self.session.server_url})" if self.session.builtin else self.session.server_url
        if not ready.get("ready"):
            problems = "; ".join(f"{k}: {v}" for k, v in (ready.get("checks") or {}).items() if v != "ok")
            return f"Connected to {where}, but it is not ready ({problems or 'starting'})"
        return f"Connected to {where} · serving model version {ready.get('model_version')}"

    def _connection_failed(self, exc: BaseException) -> None:
        self.connection_label.setText("Not connected — use the Server menu to reconnect or pick another server")
        dialogs.show_error(self, "Cannot connect", exc)

    def model_changed(self) -> None:
        """The serving model may have changed: update the status bar, and what the Diagnose tab says it knows and
        cannot do."""
        client = self.session.client
        if client is None:
            return
        self.diagnose.show_what_the_model_knows()

        def done(ready: dict) -> None:
            if client is self.session.client:
                self.connection_label.setText(self._status_text(ready))

        self.tasks.run(client.ready, on_done=done, on_error=lambda exc: None)

    def dataset_changed(self) -> None:
        """The catalog changed (an upload): the Dataset tab reloads when it is next shown."""
        self._stale.add(self.dataset)
        if self.tabs.currentWidget() is self.dataset:
            self._tab_shown(self.tabs.currentIndex())

    def _tab_shown(self, index: int) -> None:
        tab = self.tabs.widget(index)
        if tab in self._stale and self.session.is_connected:
            self._stale.discard(tab)
            if hasattr(tab, "refresh"):
                tab.refresh()

    def flash(self, message: str) -> None:
        self.statusBar().showMessage(message, 10_000)

    def _about(self) -> None:
        QMessageBox.about(
            self,
            "About leafdoc",
            "leafdoc diagnoses plant diseases from leaf photos.\n\n"
            "The diagnoses come from the leafdoc server this app is connected to: "
            f"{self.session.server_url or 'none yet'}.",
        )

    # ---- closing -----------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        if not self._closed:
            self._closed = True
            self.settings.setValue("window/geometry", self.saveGeometry())
            self.settings.setValue("window/tab", self.tabs.currentIndex())
            self.settings.sync()
            self.retrain.training.poll_timer.stop()
            self.hide()
            self.tasks.closed = True  # from now on nothing calls back, so no dialog from a closed window
            self.session.close()  # stops the built-in server (blocks until it is gone)
            self.tasks.shutdown(5000)
        event.accept()
