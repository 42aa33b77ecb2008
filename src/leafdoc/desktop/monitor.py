"""Monitor tab: the model at work (GET /v1/monitoring) against its validation photos, with drift warnings;
the same words and pictures as the web page's Monitor tab (ui/feedback_text.py, ui/monitor_plots.py). The figures
need the admin token (unless the server runs with LEAFDOC_MONITORING_OPEN=true): the app sends the one it holds for
the server (the keyring's, or the built-in server's own); without one the tab says so, with a button to enter it."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

from leafdoc.api_client import ApiError
from leafdoc.desktop.combo import ComboBox
from leafdoc.desktop.widgets import ImageView, Tab, decode_image
from leafdoc.ui import feedback_text, monitor_plots

PICTURES = ("activity", "scores", "labels")
ENTER = "Press **Enter the admin token** above."


def fetch_monitoring(client, period: str) -> tuple[dict, list[QImage]]:
    """The report and its pictures, drawn in the worker thread."""
    report = client.monitoring(period)
    draw = {"activity": monitor_plots.activity, "scores": monitor_plots.scores, "labels": monitor_plots.labels}
    return report, [decode_image(draw[k](report)) for k in PICTURES]


class MonitorTab(Tab):
    def __init__(self, window):
        super().__init__(window)
        self.report: dict | None = None
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("Figures"))
        self.period = ComboBox()
        self.period.addItem("per hour", "hour")
        self.period.addItem("per day", "day")
        self.period.currentIndexChanged.connect(lambda _: self.refresh())
        top.addWidget(self.period)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        top.addWidget(self.refresh_button)
        self.token_button = QPushButton("Enter the admin token")
        self.token_button.clicked.connect(lambda: self.session.with_admin(self, self.refresh))
        self.token_button.setVisible(False)  # shown once the server refused the figures for want of it
        top.addWidget(self.token_button)
        top.addStretch(1)
        layout.addLayout(top)
        self.summary = QLabel("Connect to a server to see how its model is doing.")
        self.summary.setTextFormat(Qt.TextFormat.MarkdownText)
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        inner = QWidget()
        pics = QVBoxLayout(inner)
        self.pictures = [ImageView("", QSize(700, 240)) for _ in PICTURES]
        for view in self.pictures:
            view.setMinimumHeight(260)
            pics.addWidget(view)
        # the activity picture's caption, under its dates, says which hours have no abstained % and why (a few
        # answers' hour: its count, "1 of 2"; monitor_plots.drawn_share): room to read it
        self.pictures[0].setMinimumHeight(330)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(inner)
        layout.addWidget(self.scroll, 1)
        self.filler = QWidget()  # takes the room of the pictures while there are none
        self.filler.setVisible(False)
        layout.addWidget(self.filler, 1)
        self._await_token = False  # refresh once the token is known (read from the keyring, or entered)
        self.session.token_changed.connect(self._token_changed)

    def refresh(self) -> None:
        client = self.session.client
        if client is None:
            return
        if self.session.token_loading:  # its answer would be a 401 the token on its way would have avoided
            self._await_token = True
            self.summary.setText("Reading the admin token…")
            return
        self.summary.setText("Loading…")
        sent = bool(client.admin_token)
        self.tasks.run(
            fetch_monitoring,
            client,
            self.period.currentData(),
            on_done=self._show,
            on_error=lambda exc: self._failed(exc, sent),
        )

    def _token_changed(self) -> None:
        client = self.session.client
        if self._await_token and client is not None and not self.session.token_loading:
            self._await_token = False
            if client.admin_token or self.report is None:
                self.refresh()

    def _show(self, result) -> None:
        self.report, images = result
        self.token_button.setVisible(False)
        self.scroll.setVisible(True)
        self.filler.setVisible(False)
        self.summary.setText(feedback_text.drift_summary(self.report))
        for view, image in zip(self.pictures, images, strict=True):
            view.set_image(image)

    def _failed(self, exc: BaseException, sent_token: bool) -> None:
        from leafdoc.desktop import dialogs

        refused = feedback_text.monitoring_refused(exc, ENTER, sent_token)
        if refused:
            self.report = None
            for view in self.pictures:
                view.set_message("")
            self.scroll.setVisible(False)
            self.filler.setVisible(True)
            self.token_button.setVisible(isinstance(exc, ApiError) and exc.status == 401 and not self.session.builtin)
            self.summary.setText(refused)
            if sent_token and exc.status == 401:
                self.session.admin_error(self, exc)  # a refused token is forgotten: the button asks again
            self._await_token = True  # a token entered in another tab shows the figures here
            return
        text, hint = dialogs.describe(exc)
        self.summary.setText(f"Could not load the figures: {text}" + (f" {hint}" if hint else ""))
