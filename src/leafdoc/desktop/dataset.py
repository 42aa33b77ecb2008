"""Dataset insights tab: pick a dataset of the catalog and look at it.

The pictures are the server's own PNGs (the same as `leafdoc stats`): class balance, image sizes,
colour and brightness, sharpness, and sample photos per class; the summary line comes from the
statistics JSON. Any picture can be saved as a PNG file.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
)

from leafdoc.desktop import dialogs
from leafdoc.desktop.combo import ComboBox
from leafdoc.desktop.prefs import get_int, get_str
from leafdoc.desktop.widgets import ImageView, Tab, decode_image
from leafdoc.words.counts import counted
from leafdoc.words.labels import pretty_label

PLOTS = [
    ("class_distribution", "Class balance", "How many photos each class has: a model learns rare classes poorly."),
    ("sizes", "Image sizes", "Widths, heights and shapes of the photos."),
    ("colour", "Colour and brightness", "Average colour and brightness per class: lighting differences show here."),
    ("sharpness", "Sharpness", "How sharp the photos are: blurry photos teach the model little."),
    ("samples", "Sample photos", "A few photos of each class, to check the labels by eye."),
]


def fetch_plot(client, name: str, kind: str, version: int | None, sample: int | None) -> tuple[bytes, QImage]:
    """Worker: the PNG bytes (kept for saving) and the decoded image (for showing)."""
    png = client.dataset_plot(name, kind, version=version, sample=sample)
    return png, decode_image(png)


def summary_text(stats: dict) -> str:
    counts = stats.get("class_counts") or {}
    photos, classes = counted(stats.get("n_images", 0), "photo"), counted(len(counts), "class")
    parts = [f"<b>{stats.get('source', '')}</b>: {photos} in {classes}"]
    if counts:
        most = max(counts, key=counts.get)
        least = min(counts, key=counts.get)
        if counts[most] == counts[least]:
            parts.append(f"every class has {counted(counts[most], 'photo')}")
        else:
            parts.append(
                f"most photos: {pretty_label(most)} ({counts[most]:,}), "
                f"fewest: {pretty_label(least)} ({counts[least]:,})"
            )
    overall = stats.get("overall") or {}
    details = []
    if overall.get("width") and overall.get("height"):
        details.append(f"typical size {overall['width']['p50']:.0f} × {overall['height']['p50']:.0f} px")
    if overall.get("brightness"):
        details.append(f"median brightness {overall['brightness']['p50']:.0f} of 255")
    if overall.get("sharpness"):
        details.append(f"median sharpness {overall['sharpness']['p50']:.0f}")
    if details:
        details.append(f"measured on {counted(stats.get('n_measured', 0), 'photo')}")
        parts.append(", ".join(details))
    return "<br>".join(parts)


class DatasetTab(Tab):
    def __init__(self, window):
        super().__init__(window)
        self.datasets: list[dict] = []
        self._plots: dict[tuple, tuple[bytes, QImage]] = {}
        self.current_png: bytes | None = None
        self._want: tuple | None = None  # the plot the user asked for last; older answers are ignored
        self._stats_key: tuple | None = None
        self.stats: dict = {}

        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Dataset"))
        self.dataset_box = ComboBox()
        self.dataset_box.setMinimumWidth(160)
        self.dataset_box.currentIndexChanged.connect(self._dataset_changed)
        row.addWidget(self.dataset_box)
        row.addWidget(QLabel("Version"))
        self.version_box = ComboBox()
        self.version_box.setMinimumWidth(150)
        self.version_box.currentIndexChanged.connect(lambda _: self.show_dataset())
        row.addWidget(self.version_box)
        row.addWidget(QLabel("Measure"))
        self.sample = ComboBox()  # the sizes the service measures (service/datasets.py STATS_SAMPLES)
        for size in (20, 50, 200):
            self.sample.addItem(f"{size} a class", size)
        self.sample.addItem("every photo", 0)
        saved = self.sample.findData(get_int(self.settings, "dataset/sample", 20))
        self.sample.setCurrentIndex(max(saved, 0))
        self.sample.setToolTip("Statistics of big datasets are measured on a sample of each class, for speed.")
        self.sample.activated.connect(lambda _: self._sample_changed())
        row.addWidget(self.sample)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        row.addWidget(self.refresh_button)
        row.addStretch(1)
        layout.addLayout(row)

        self.summary = QLabel("Connect to a server to see its datasets.")
        self.summary.setObjectName("datasetSummary")
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("QLabel { background: #f4faf5; border: 1px solid #cfe3d5; padding: 8px; }")
        layout.addWidget(self.summary)

        body = QHBoxLayout()
        self.kinds = QListWidget()
        self.kinds.setFixedWidth(210)
        for kind, title, tip in PLOTS:
            item = QListWidgetItem(title)
            item.setData(Qt.ItemDataRole.UserRole, kind)
            item.setToolTip(tip)
            item.setSizeHint(QSize(200, 34))
            self.kinds.addItem(item)
        self.kinds.setCurrentRow(0)
        self.kinds.currentRowChanged.connect(lambda _: self.show_plot())
        body.addWidget(self.kinds)
        right = QVBoxLayout()
        self.caption = QLabel(PLOTS[0][2])
        self.caption.setStyleSheet("color: #555;")
        self.caption.setWordWrap(True)
        right.addWidget(self.caption)
        self.plot = ImageView("Pick a dataset to see its pictures.", QSize(400, 300))
        self.plot.setObjectName("plot")
        self.plot.setStyleSheet("QLabel { background: white; border: 1px solid #ddd; color: #666; }")
        right.addWidget(self.plot, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.save_button = QPushButton("Save picture as PNG…")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self.save_png)
        buttons.addWidget(self.save_button)
        right.addLayout(buttons)
        body.addLayout(right, 1)
        layout.addLayout(body, 1)

    # ---- loading -----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the catalog's datasets (keeps the current choice when it still exists)."""
        client = self.session.client
        if client is None or not self.session.is_connected:
            return
        self._plots.clear()
        self.tasks.run(
            client.datasets,
            on_done=lambda ds: self._got_datasets(client, ds),
            on_error=lambda exc: dialogs.show_error(self, "Could not list the datasets", exc),
        )

    def _got_datasets(self, client, datasets: list[dict]) -> None:
        if client is not self.session.client:
            return
        self.datasets = datasets
        wanted = self.selected_name() or get_str(self.settings, "dataset/name")
        self.dataset_box.blockSignals(True)
        self.dataset_box.clear()
        for d in datasets:
            latest = next((v for v in d["versions"] if v["version"] == d["latest"]), None)
            n = f", {counted(latest['n_images'], 'photo')}" if latest else ""
            self.dataset_box.addItem(f"{d['name']} (v{d['latest']}{n})", d["name"])
        index = self.dataset_box.findData(wanted) if wanted else -1
        self.dataset_box.setCurrentIndex(index if index >= 0 else (0 if datasets else -1))
        self.dataset_box.blockSignals(False)
        if not datasets:
            self.summary.setText("This server has no dataset yet: upload photos in the Retrain tab.")
            self.plot.set_image(None, "No dataset to show.")
            self.save_button.setEnabled(False)
            return
        self._dataset_changed()

    def selected_name(self) -> str | None:
        return self.dataset_box.currentData()

    def selected_version(self) -> int | None:
        return self.version_box.currentData()

    def selected_kind(self) -> str:
        item = self.kinds.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else PLOTS[0][0]

    def _dataset_changed(self, _=None) -> None:
        name = self.selected_name()
        dataset = next((d for d in self.datasets if d["name"] == name), None)
        self.version_box.blockSignals(True)
        self.version_box.clear()
        if dataset:
            self.settings.setValue("dataset/name", name)
            for v in sorted(dataset["versions"], key=lambda v: -v["version"]):
                latest = " (latest)" if v["version"] == dataset["latest"] else ""
                self.version_box.addItem(f"v{v['version']}{latest}: {counted(v['n_images'], 'photo')}", v["version"])
        self.version_box.blockSignals(False)
        self.show_dataset()

    def _sample_changed(self) -> None:
        self.settings.setValue("dataset/sample", self.sample.currentData())
        self.show_dataset()

    def show_dataset(self) -> None:
        """The summary and the current picture of the chosen dataset version."""
        client, name = self.session.client, self.selected_name()
        if client is None or not name:
            return
        version, sample = self.selected_version(), self.sample.currentData() or None
        self.summary.setText(f"Measuring <b>{name}</b>… (the first time takes a while for big datasets)")
        key = (name, version, sample)
        self._stats_key = key
        self.tasks.run(
            client.dataset_stats,
            name,
            version=version,
            sample=sample,
            on_done=lambda stats: self._got_stats(key, stats),
            on_error=lambda exc: self._stats_failed(key, exc),
        )
        # The picture waits for the statistics: the server measures the photos once, for both.
        self.current_png = None
        self.save_button.setEnabled(False)
        self.plot.set_image(None, "Measuring the photos…")

    def _got_stats(self, key: tuple, stats: dict) -> None:
        if key == self._stats_key:
            self.stats = stats
            self.summary.setText(summary_text(stats))
            self.show_plot()

    def _stats_failed(self, key: tuple, exc: BaseException) -> None:
        if key == self._stats_key:
            self.summary.setText(f"Could not measure this dataset: {dialogs.describe(exc)[0]}")
            self.show_plot()  # its error dialog says why

    def show_plot(self) -> None:
        client, name = self.session.client, self.selected_name()
        kind = self.selected_kind()
        self.caption.setText(next(tip for k, _, tip in PLOTS if k == kind))
        if client is None or not name:
            return
        key = (name, self.selected_version(), self.sample.currentData() or None, kind)
        self._want = key
        if key in self._plots:
            self._show(key, self._plots[key])
            return
        self.current_png = None
        self.save_button.setEnabled(False)
        self.plot.set_image(None, "Drawing…")
        self.tasks.run(
            fetch_plot,
            client,
            name,
            kind,
            key[1],
            key[2],
            on_done=lambda result: self._got_plot(key, result),
            on_error=lambda exc: self._plot_failed(key, exc),
        )

    def _got_plot(self, key: tuple, result: tuple[bytes, QImage]) -> None:
        self._plots[key] = result
        if key == self._want:
            self._show(key, result)

    def _show(self, key: tuple, result: tuple[bytes, QImage]) -> None:
        png, image = result
        self.current_png = png
        self.plot.set_image(image, "This picture could not be shown.")
        self.plot.setToolTip(f"{key[0]} v{key[1] or 'latest'}: {key[3]}")
        self.save_button.setEnabled(True)

    def _plot_failed(self, key: tuple, exc: BaseException) -> None:
        if key != self._want:
            return
        self.plot.set_image(None, "No picture.")
        dialogs.show_error(self, "Could not draw the picture", exc)

    # ---- saving ------------------------------------------------------------------------------

    def save_png(self) -> None:
        if not self.current_png:
            return
        png = self.current_png
        file_name = f"{self.selected_name()}-v{self.selected_version() or 'latest'}-{self.selected_kind()}.png"
        self.save_file(
            "Save the picture",
            file_name,
            "PNG images",
            lambda: png,
            saved=lambda path: f"Saved {path}",
            failed="Could not save the picture",
        )
