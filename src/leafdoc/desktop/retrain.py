"""Retrain tab: add labelled photos, retrain, and choose which model version serves.

1. Upload a folder of class folders (zipped on the fly) or a zip of one, with a progress bar; the
   answer lists how many photos were accepted, and which were duplicates or rejected, and why. (Here.)
2. Start a retraining job and follow it; cancel it while it is queued or running (`jobs.TrainingBox`).
3. See every model version with its test metrics; promote one or roll back (`versions.VersionsBox`).

This module builds the tab from the three boxes, shows the admin token's state, and reloads what the boxes
show. All of it needs the admin token: the built-in server's own, or one asked once and kept.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from leafdoc.api_client import ApiError
from leafdoc.desktop.combo import ComboBox
from leafdoc.desktop.jobs import TrainingBox
from leafdoc.desktop.prefs import get_str
from leafdoc.desktop.versions import VersionsBox
from leafdoc.desktop.widgets import Tab, read_only_table
from leafdoc.imaging.photos import is_image_name
from leafdoc.words.counts import counted

CLASSES_NEEDED = 2  # a model tells classes apart: retraining needs at least two
INTERNAL = re.compile(r"^upload [0-9a-f-]{8,}: (?:[^:]*?\.zip(?:, [^:]*?)?: )?", re.IGNORECASE)


class EmptyFolder(ApiError):
    """A folder with no photo in any class folder: said before anything is sent."""


def upload(client, path: Path, dataset: str | None, progress) -> dict:
    if path.is_dir() and not any(f.is_file() and is_image_name(f) for f in path.rglob("*")):
        raise EmptyFolder(
            f"The folder “{path.name}” has no photos.",
            hint="Choose a folder with one subfolder per disease, each holding photos of it.",
        )
    return client.upload(path, dataset=dataset or None, on_progress=progress)


def in_users_words(exc: BaseException, source: Path | None) -> BaseException:
    """The server's "upload 1a2b3c…: empty.zip: no files found." said of what the user chose: "The folder “empty”:
    no files found." (the upload's id and the zip made of a folder are not theirs)."""
    if not isinstance(exc, ApiError) or source is None or not INTERNAL.match(exc.message):
        return exc
    kind = "folder" if source.is_dir() else "zip"
    said = INTERNAL.sub("", exc.message, count=1)
    return ApiError(f"The {kind} “{source.name}”: {said}", hint=exc.hint, status=exc.status, code=exc.code)


class RetrainTab(Tab):
    def __init__(self, window):
        super().__init__(window)
        self.source: Path | None = None
        self.last_upload: dict | None = None

        # The three boxes scroll on a small screen (on a 1024x600 one they made the window taller than it).
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        body = QWidget()
        self.scroll.setWidget(body)
        outer.addWidget(self.scroll)
        layout = QVBoxLayout(body)
        token_row = QHBoxLayout()
        self.token_label = QLabel()
        self.token_label.setObjectName("tokenStatus")
        self.token_label.setStyleSheet("color: #555;")
        self.token_button = QPushButton("Change admin token…")
        self.token_button.clicked.connect(lambda: self.session.change_token(self))
        token_row.addWidget(self.token_label, 1)
        token_row.addWidget(self.token_button)
        layout.addLayout(token_row)
        self.session.token_changed.connect(self._token_changed)

        upload_box = self._upload_box()  # built first: keyboard focus goes through the boxes top to bottom
        self.training = TrainingBox(window, dataset=lambda: self.dataset_box.currentText().strip() or None)
        self.training.succeeded.connect(self.refresh)
        self.versions = VersionsBox(window)
        self.versions.refresh_button.clicked.connect(self.refresh)
        self.versions.serving_changed.connect(self.refresh)
        self.versions.loaded.connect(self.training.versions_loaded)  # the job box says what the table says
        layout.addWidget(upload_box)
        layout.addWidget(self.training)
        layout.addWidget(self.versions, 1)
        self.update_token_status()

        # The boxes' widgets under the names they had when the tab was one class (the desktop tests use them).
        training, versions = self.training, self.versions
        self.epochs, self.fine_tune = training.epochs, training.fine_tune
        self.train_button, self.cancel_button = training.train_button, training.cancel_button
        self.job_bar, self.job_label, self.poll_timer = training.job_bar, training.job_label, training.poll_timer
        self.serving_label, self.table = versions.serving_label, versions.table
        self.promote_button, self.rollback_button = versions.promote_button, versions.rollback_button

    @property
    def models(self) -> dict:
        """GET /v1/models as last shown."""
        return self.versions.models

    # ---- layout ------------------------------------------------------------------------------

    def _upload_box(self) -> QGroupBox:
        box = QGroupBox("1. Add labelled photos")
        layout = QVBoxLayout(box)
        explain = QLabel(
            "A folder with one subfolder per disease, each named by its label (for example "
            "<i>Tomato___Early_blight</i>), or a .zip of such a folder."
        )
        explain.setWordWrap(True)
        layout.addWidget(explain)
        row = QHBoxLayout()
        self.folder_button = QPushButton("Choose folder…")
        self.folder_button.clicked.connect(self.pick_folder)
        self.zip_button = QPushButton("Choose zip…")
        self.zip_button.clicked.connect(self.pick_zip)
        self.source_label = QLabel("Nothing chosen yet.")
        self.source_label.setStyleSheet("color: #555;")
        row.addWidget(self.folder_button)
        row.addWidget(self.zip_button)
        row.addWidget(self.source_label, 1)
        layout.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Into dataset"))
        self.dataset_box = ComboBox()
        self.dataset_box.setEditable(True)
        self.dataset_box.setMinimumWidth(240)
        self.dataset_box.lineEdit().setPlaceholderText("the server's default dataset")
        self.dataset_box.setToolTip("A dataset of the catalog, or a new name. Empty: the server's default dataset.")
        row.addWidget(self.dataset_box)
        self.upload_button = QPushButton("Upload")
        self.upload_button.setEnabled(False)
        self.upload_button.clicked.connect(self.start_upload)
        row.addWidget(self.upload_button)
        self.upload_bar = QProgressBar()
        self.upload_bar.setRange(0, 100)
        self.upload_bar.setValue(0)
        row.addWidget(self.upload_bar, 1)
        layout.addLayout(row)
        self.upload_result = QLabel()
        self.upload_result.setObjectName("uploadResult")
        self.upload_result.setWordWrap(True)
        self.upload_result.setTextFormat(Qt.TextFormat.RichText)
        self.upload_result.setVisible(False)
        layout.addWidget(self.upload_result)
        self.problems = read_only_table(["File", "What happened"], stretch=1)
        self.problems.setVisible(False)
        layout.addWidget(self.problems)
        return box

    def update_token_status(self) -> None:
        self.token_label.setText(f"Admin token: {self.session.token_status()}")
        self.token_button.setVisible(not self.session.builtin and self.session.client is not None)
        self.token_button.setEnabled(not self.session.token_loading)

    def _token_changed(self) -> None:
        self.update_token_status()
        self.training.pick_up()  # the token may have just come from the keyring, after the first refresh

    # ---- connecting --------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the model versions and the dataset names; pick up a job still running."""
        client = self.session.client
        if client is None or not self.session.is_connected:
            return
        self.update_token_status()
        self.versions.load(client)
        self.tasks.run(client.datasets, on_done=lambda ds: self._got_datasets(client, ds), on_error=lambda exc: None)
        self.training.pick_up()

    def _got_datasets(self, client, datasets: list[dict]) -> None:
        if client is not self.session.client:
            return
        current = self.dataset_box.currentText() or get_str(self.settings, "retrain/dataset")
        self.dataset_box.clear()
        for d in datasets:
            self.dataset_box.addItem(d["name"])
        self.dataset_box.setEditText(current)

    # ---- 1. upload ---------------------------------------------------------------------------

    def pick_folder(self) -> None:
        start = get_str(self.settings, "folders/upload", str(Path.home()))
        name = QFileDialog.getExistingDirectory(self, "Choose a folder of class folders", start)
        if name:
            self.set_source(Path(name))

    def pick_zip(self) -> None:
        start = get_str(self.settings, "folders/upload", str(Path.home()))
        name, _ = QFileDialog.getOpenFileName(self, "Choose a zip of class folders", start, "Zip files (*.zip)")
        if name:
            self.set_source(Path(name))

    def set_source(self, path: Path) -> None:
        self.source = path
        self.settings.setValue("folders/upload", str(path.parent))
        kind = "folder" if path.is_dir() else "zip"
        self.source_label.setText(f"{kind}: {path}")
        self.source_label.setToolTip(str(path))
        self.upload_button.setEnabled(True)
        self.upload_bar.setValue(0)

    def start_upload(self) -> None:
        if self.source is None:
            return
        self.session.with_admin(self, self._upload)

    def _upload(self) -> None:
        client, source = self.session.client, self.source
        if client is None or source is None:
            return
        dataset = self.dataset_box.currentText().strip()
        self.settings.setValue("retrain/dataset", dataset)
        self.upload_button.setEnabled(False)
        self.upload_bar.setValue(0)
        self.upload_result.setText(f"Packing and sending {source.name}…")
        self.upload_result.setVisible(True)
        self.problems.setVisible(False)
        self.tasks.run(
            upload,
            client,
            source,
            dataset,
            on_progress=self._upload_progress,
            on_done=self._uploaded,
            on_error=self._upload_failed,
            on_finally=lambda: self.upload_button.setEnabled(self.source is not None),
        )

    def _upload_progress(self, sent: int, total: int) -> None:
        self.upload_bar.setValue(round(100 * sent / total) if total else 0)
        if total and sent >= total:
            self.upload_result.setText("Sent. The server is checking every photo…")

    def _uploaded(self, answer: dict) -> None:
        self.last_upload = answer
        self.upload_bar.setValue(100)
        dups, near, rejected = answer.get("duplicates", []), answer.get("near_duplicates", []), answer["rejected"]
        version = f"version {answer['version']}" if answer.get("version") else "no version yet"
        if answer.get("created_version"):
            added = counted(answer["added"], "new photo")
            head = f"<b>{added} accepted</b> into <b>{answer['dataset']}</b> ({version})."
        else:
            head = f"<b>No new photos</b>: <b>{answer['dataset']}</b> is unchanged ({version})."
        counts = (
            f"{len(dups)} duplicate{'s' if len(dups) != 1 else ''} (already there), "
            f"{len(rejected)} rejected, {len(near)} near-duplicate{'s' if len(near) != 1 else ''} noted. "
            f"The dataset now has {counted(answer['n_images'], 'photo')} in {counted(answer['n_classes'], 'class')}."
        )
        warning = ""
        if answer.get("n_classes", CLASSES_NEEDED) < CLASSES_NEEDED:  # retraining would only fail, later
            warning = (
                f"<br><span style='color:#a02020'><b>Retraining needs at least {CLASSES_NEEDED} classes</b>: "
                f"{html.escape(str(answer['dataset']))} has {counted(answer.get('n_classes', 0), 'class')}. Add "
                "a folder of photos of another disease (or of healthy leaves) before starting retraining.</span>"
            )
        self.upload_result.setText(f"{head} {counts}{warning}")
        rows = [(r["file"], f"rejected: {r['reason']}") for r in rejected]
        rows += [(d["file"], f"duplicate of {d.get('of', 'a photo already in the dataset')}") for d in dups]
        rows += [(d["file"], f"accepted, but looks like {d.get('similar_to', 'another photo')}") for d in near]
        self.problems.setRowCount(0)
        for file, what in rows:
            r = self.problems.rowCount()
            self.problems.insertRow(r)
            self.problems.setItem(r, 0, QTableWidgetItem(file))
            item = QTableWidgetItem(what)
            item.setToolTip(what)
            self.problems.setItem(r, 1, item)
        # As tall as its rows (up to five), so the versions below keep their room.
        shown = min(len(rows), 5)
        height = self.problems.horizontalHeader().height() + 2 * self.problems.frameWidth()
        self.problems.setFixedHeight(height + sum(self.problems.rowHeight(r) for r in range(shown)))
        self.problems.setVisible(bool(rows))
        if answer.get("dataset") and self.dataset_box.findText(answer["dataset"]) < 0:
            self.dataset_box.addItem(answer["dataset"])
        self.window_.dataset_changed()

    def _upload_failed(self, exc: BaseException) -> None:
        self.upload_bar.setValue(0)
        self.upload_result.setText("The upload did not go through.")
        self.session.admin_error(self, in_users_words(exc, self.source), "Upload failed")
