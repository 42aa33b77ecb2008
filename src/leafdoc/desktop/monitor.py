"""Monitor tab: the model at work (GET /v1/monitoring) against its validation photos, with drift warnings;
the same words and pictures as the web page's Monitor tab (ui/feedback_text.py, ui/monitor_plots.py)."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

from leafdoc.desktop.widgets import ImageView, Tab, decode_image
from leafdoc.ui import feedback_text, monitor_plots

PICTURES = ("activity", "scores", "labels")


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
        self.period = QComboBox()
        self.period.addItem("per hour", "hour")
        self.period.addItem("per day", "day")
        self.period.currentIndexChanged.connect(lambda _: self.refresh())
        top.addWidget(self.period)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        top.addWidget(self.refresh_button)
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
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        layout.addWidget(scroll, 1)

    def refresh(self) -> None:
        client = self.session.client
        if client is None:
            return
        self.summary.setText("Loading…")
        self.tasks.run(fetch_monitoring, client, self.period.currentData(), on_done=self._show, on_error=self._failed)

    def _show(self, result) -> None:
        self.report, images = result
        self.summary.setText(feedback_text.drift_summary(self.report))
        for view, image in zip(self.pictures, images, strict=True):
            view.set_image(image)

    def _failed(self, exc: BaseException) -> None:
        from leafdoc.desktop import dialogs

        text, hint = dialogs.describe(exc)
        self.summary.setText(f"Could not load the figures: {text}" + (f" {hint}" if hint else ""))
