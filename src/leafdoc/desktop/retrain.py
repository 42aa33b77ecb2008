"""Retrain tab: add labelled photos, retrain, and choose which model version serves.

1. Upload a folder of class folders (zipped on the fly) or a zip of one, with a progress bar; the
   answer lists how many photos were accepted, and which were duplicates or rejected, and why.
2. Start a retraining job and follow it (state, epoch of epochs, metrics) by polling the server;
   cancel it while it is queued or running.
3. See every model version with its test metrics; promote one or roll back to the previous one.

All of it needs the admin token: the built-in server's own, or one asked once and kept.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from leafdoc.desktop import dialogs
from leafdoc.desktop.prefs import get_str
from leafdoc.jobwords import phase_words, serving_copy_words, split_words, version_status_words

POLL_MS = 1500
MODEL_COLUMNS = ["Version", "Status", "Created", "Trained on", "Test accuracy", "Macro F1", "Notes"]
FINISHED = ("succeeded", "failed", "cancelled")


def upload(client, path: Path, dataset: str | None, progress) -> dict:
    return client.upload(path, dataset=dataset or None, on_progress=progress)


def _pct(value) -> str:
    return f"{float(value):.1%}" if isinstance(value, (int, float)) else "—"


def metrics_text(last: dict | None) -> str:
    """One epoch's figures for a person: 'loss 0.53 · accuracy 81.0% · validation accuracy 77.0%'."""
    if not last:
        return ""
    names = {
        "loss": "loss",
        "accuracy": "accuracy",
        "val_loss": "validation loss",
        "val_accuracy": "validation accuracy",
    }
    parts = []
    for key, name in names.items():
        value = last.get(key)
        if isinstance(value, (int, float)):
            parts.append(f"{name} {value:.1%}" if "accuracy" in key else f"{name} {value:.3f}")
    return " · ".join(parts)


def job_progress(job: dict) -> tuple[int, str]:
    """(percent, words) for a training job."""
    state, epochs, epoch = job.get("state"), int(job.get("epochs") or 0), int(job.get("epoch") or 0)
    progress = job.get("progress") or {}
    if state == "queued":
        return 0, "waiting in the queue"
    if state == "succeeded":
        return 100, "finished"
    if state == "failed":
        return 0, "failed"
    if state == "cancelled":
        return 0, "cancelled"
    if job.get("cancel_requested"):
        return round(100 * epoch / epochs) if epochs else 0, "cancelling: the training is being stopped"
    fraction = epoch / epochs if epochs else 0.0
    if epochs and progress.get("steps") and epoch < epochs:
        fraction = (epoch + progress.get("batch", 0) / progress["steps"]) / epochs
    words = phase_words(progress.get("phase")) or "running"
    if epochs:
        words += f" — {epoch} of {epochs} epochs done"
    return round(min(1.0, fraction) * 100), words


class RetrainTab(QWidget):
    def __init__(self, window):
        super().__init__()
        self.window_ = window
        self.session, self.tasks, self.settings = window.session, window.tasks, window.settings
        self.source: Path | None = None
        self.last_upload: dict | None = None
        self.job: dict | None = None
        self.models: dict = {}
        self._polling = False
        self.poll_timer = QTimer(self)
        self.poll_timer.setInterval(POLL_MS)
        self.poll_timer.timeout.connect(self._poll)

        layout = QVBoxLayout(self)
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

        layout.addWidget(self._upload_box())
        layout.addWidget(self._train_box())
        layout.addWidget(self._models_box(), 1)
        self.update_token_status()

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
        self.dataset_box = QComboBox()
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
        self.problems = QTableWidget(0, 2)
        self.problems.setHorizontalHeaderLabels(["File", "What happened"])
        self.problems.verticalHeader().setVisible(False)
        self.problems.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.problems.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.problems.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.problems.setVisible(False)
        layout.addWidget(self.problems)
        return box

    def _train_box(self) -> QGroupBox:
        box = QGroupBox("2. Retrain the model")
        grid = QGridLayout(box)
        grid.addWidget(QLabel("Head epochs"), 0, 0)
        self.epochs = QSpinBox()
        self.epochs.setRange(0, 500)
        self.epochs.setSpecialValueText("as the serving model")
        self.epochs.setToolTip("Training the head on the frozen backbone (from scratch: every epoch).")
        self.epochs.setMinimumWidth(170)
        grid.addWidget(self.epochs, 0, 1)
        grid.addWidget(QLabel("Fine-tuning epochs"), 1, 0)
        self.fine_tune = QSpinBox()
        self.fine_tune.setRange(-1, 500)  # -1 shows "as the serving model"; 0 is no fine-tuning
        self.fine_tune.setSpecialValueText("as the serving model")
        self.fine_tune.setValue(-1)
        self.fine_tune.setToolTip("Then the backbone, at a lower rate (0: none; pretrained models only).")
        grid.addWidget(self.fine_tune, 1, 1)
        self.train_button = QPushButton("Start retraining")
        self.train_button.clicked.connect(self.start_training)
        grid.addWidget(self.train_button, 0, 2)
        self.cancel_button = QPushButton("Cancel job")
        self.cancel_button.setToolTip("Stop the job shown: nothing it trained is kept.")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_job)
        grid.addWidget(self.cancel_button, 0, 3)
        self.job_bar = QProgressBar()
        self.job_bar.setRange(0, 100)
        self.job_bar.setValue(0)
        self.job_bar.setFormat("no retraining running")
        grid.addWidget(self.job_bar, 0, 4)
        self.job_label = QLabel(
            "Retraining starts from the serving model and uses the latest version of the dataset. The new "
            "version replaces the serving one only if it scores at least as well on the test photos."
        )
        self.job_label.setObjectName("jobStatus")
        self.job_label.setWordWrap(True)
        self.job_label.setTextFormat(Qt.TextFormat.RichText)
        grid.addWidget(self.job_label, 2, 0, 1, 5)  # under the two epoch rows
        grid.setColumnStretch(4, 1)
        return box

    def _models_box(self) -> QGroupBox:
        box = QGroupBox("3. Model versions")
        layout = QVBoxLayout(box)
        self.serving_label = QLabel()
        self.serving_label.setObjectName("servingLabel")
        layout.addWidget(self.serving_label)
        self.table = QTableWidget(0, len(MODEL_COLUMNS))
        self.table.setHorizontalHeaderLabels(MODEL_COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(MODEL_COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        layout.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.promote_button = QPushButton("Serve the selected version")
        self.promote_button.setEnabled(False)
        self.promote_button.clicked.connect(self.promote_selected)
        self.rollback_button = QPushButton("Roll back to the previous version")
        self.rollback_button.clicked.connect(self.rollback)
        buttons.addWidget(self.refresh_button)
        buttons.addStretch(1)
        buttons.addWidget(self.promote_button)
        buttons.addWidget(self.rollback_button)
        layout.addLayout(buttons)
        return box

    def update_token_status(self) -> None:
        self.token_label.setText(f"Admin token: {self.session.token_status()}")
        self.token_button.setVisible(not self.session.builtin and self.session.client is not None)
        self.token_button.setEnabled(not self.session.token_loading)

    def _token_changed(self) -> None:
        self.update_token_status()
        self._pick_up_job()  # the token may have just come from the keyring, after the first refresh

    # ---- connecting --------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the model versions and the dataset names; pick up a job still running."""
        client = self.session.client
        if client is None or not self.session.is_connected:
            return
        self.update_token_status()
        self.tasks.run(
            client.models,
            on_done=lambda models: self._got_models(client, models),
            on_error=lambda exc: dialogs.show_error(self, "Could not list the model versions", exc),
        )
        self.tasks.run(client.datasets, on_done=lambda ds: self._got_datasets(client, ds), on_error=lambda exc: None)
        self._pick_up_job()

    def _pick_up_job(self) -> None:
        """Follow a job still queued or running on the server (one started before the app was opened)."""
        client = self.session.client
        if client is not None and self.session.is_connected and client.admin_token and self.job is None:
            self.tasks.run(client.jobs, 5, on_done=lambda jobs: self._got_jobs(client, jobs), on_error=lambda e: None)

    def _got_datasets(self, client, datasets: list[dict]) -> None:
        if client is not self.session.client:
            return
        current = self.dataset_box.currentText() or get_str(self.settings, "retrain/dataset")
        self.dataset_box.clear()
        for d in datasets:
            self.dataset_box.addItem(d["name"])
        self.dataset_box.setEditText(current)

    def _got_jobs(self, client, jobs: list[dict]) -> None:
        if client is not self.session.client or self.job is not None:
            return
        active = [j for j in jobs if j["state"] not in FINISHED]
        if active:
            self._follow(active[0])

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
            head = f"<b>{answer['added']} new photos accepted</b> into <b>{answer['dataset']}</b> ({version})."
        else:
            head = f"<b>No new photos</b>: <b>{answer['dataset']}</b> is unchanged ({version})."
        counts = (
            f"{len(dups)} duplicate{'s' if len(dups) != 1 else ''} (already there), "
            f"{len(rejected)} rejected, {len(near)} near-duplicate{'s' if len(near) != 1 else ''} noted. "
            f"The dataset now has {answer['n_images']:,} photos in {answer['n_classes']} classes."
        )
        self.upload_result.setText(f"{head} {counts}")
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
        self.session.admin_error(self, exc, "Upload failed")

    # ---- 2. training -------------------------------------------------------------------------

    def start_training(self) -> None:
        self.session.with_admin(self, self._start_training)

    def _start_training(self) -> None:
        client = self.session.client
        if client is None:
            return
        dataset = self.dataset_box.currentText().strip() or None
        options = {"epochs": self.epochs.value()} if self.epochs.value() else {}
        if self.fine_tune.value() >= 0:
            options["fine_tune_epochs"] = self.fine_tune.value()
        self.train_button.setEnabled(False)
        self.job_label.setText("Starting…")
        self.tasks.run(
            client.start_training,
            dataset,
            options=options,
            on_done=self._follow,
            on_error=self._start_failed,
        )

    def _start_failed(self, exc: BaseException) -> None:
        self.train_button.setEnabled(True)
        self.job_label.setText("Retraining did not start.")
        self.session.admin_error(self, exc, "Could not start retraining")

    def _follow(self, job: dict) -> None:
        self.job = job
        self.train_button.setEnabled(False)
        self._show_job(job)
        if job["state"] not in FINISHED:
            self.poll_timer.start()

    def _poll(self) -> None:
        client = self.session.client
        if self._polling or self.job is None or client is None:
            return
        self._polling = True

        def done(job: dict) -> None:
            if self.job is not None and job["id"] == self.job["id"]:
                self.job = job
                self._show_job(job)

        def failed(exc: BaseException) -> None:
            self.job_label.setText(f"Lost touch with the job: {dialogs.describe(exc)[0]} (trying again)")

        def always() -> None:
            self._polling = False

        self.tasks.run(client.job, self.job["id"], on_done=done, on_error=failed, on_finally=always)

    def cancel_job(self) -> None:
        job = self.job
        if job is None or job["state"] in FINISHED:
            return
        if not dialogs.confirm(
            self,
            "Cancel this job?",
            f"Stop the training job {job['id'][:8]}? What it has trained so far is not kept.",
        ):
            return
        self.session.with_admin(self, lambda: self._cancel(job["id"]))

    def _cancel(self, job_id: str) -> None:
        client = self.session.client
        if client is None:
            return
        self.cancel_button.setEnabled(False)

        def done(job: dict) -> None:
            if self.job is not None and job["id"] == self.job["id"]:
                self._follow(job)

        def failed(exc: BaseException) -> None:
            self.cancel_button.setEnabled(self.job is not None and self.job["state"] not in FINISHED)
            self.session.admin_error(self, exc, "Could not cancel the job")

        self.tasks.run(client.cancel_job, job_id, on_done=done, on_error=failed)

    def _show_job(self, job: dict) -> None:
        percent, words = job_progress(job)
        self.job_bar.setValue(percent)
        self.job_bar.setFormat(f"{percent}%")
        lines = [f"Job <b>{job['id'][:8]}</b> on <b>{job['dataset']}</b>: <b>{job['state']}</b> — {words}"]
        lines += filter(None, [split_words(job.get("progress"))])
        metrics = job.get("metrics") or {}
        if metrics.get("last"):
            lines.append("Last epoch: " + metrics_text(metrics["last"]))
        self.cancel_button.setEnabled(job["state"] not in FINISHED and not job.get("cancel_requested"))
        if job["state"] in FINISHED:
            self.poll_timer.stop()
            self.train_button.setEnabled(True)
        if job["state"] == "succeeded":
            test = metrics.get("test") or {}
            version = job.get("candidate_version")
            promotion = job.get("promotion") or {}
            verdict = "is now serving" if promotion.get("promoted") else "was kept as a candidate, not served"
            lines.append(f"Version <b>{version}</b> {verdict}. Test accuracy {_pct(test.get('accuracy'))}.")
            said = [f"Why: {promotion['reason']}" if promotion.get("reason") else None, serving_copy_words(promotion)]
            lines += [f"<span style='color:#555'>{html.escape(text, quote=False)}</span>" for text in said if text]
            self.job = None
            self.refresh()
            self.window_.model_changed()
        elif job["state"] == "cancelled":
            self.job = None
            why = job.get("error") or "Cancelled."
            lines.append(f"<span style='color:#555'>{why} The serving model is unchanged.</span>")
        elif job["state"] == "failed":
            self.job = None
            lines.append(f"<span style='color:#a02020'>{job.get('error') or 'The job failed.'}</span>")
            dialogs.show_error(
                self,
                "Retraining failed",
                f"The training job {job['id'][:8]} failed: {job.get('error') or 'no reason given'}",
                hint="The serving model is unchanged. Check the dataset and try again.",
            )
        self.job_label.setText("<br>".join(lines))

    # ---- 3. model versions -------------------------------------------------------------------

    def _got_models(self, client, models: dict) -> None:
        if client is not self.session.client:
            return
        self.models = models
        serving = models.get("serving_version")
        self.serving_label.setText(
            f"Serving now: <b>version {serving}</b>" if serving else "No model version is serving."
        )
        selected = self.selected_version()
        self.table.setRowCount(0)
        rows = sorted(models.get("models", []), key=lambda m: -m["version"])
        for m in rows:
            r = self.table.rowCount()
            self.table.insertRow(r)
            test = (m.get("metrics") or {}).get("test") or {}
            trained_on = f"{m['dataset']} v{m['dataset_version']}" if m.get("dataset") else "—"
            promo = m.get("promotion") or {}
            notes = ". ".join(filter(None, [promo.get("reason") or m.get("source"), serving_copy_words(promo, True)]))
            cells = [
                str(m["version"]),
                version_status_words(m) + (" ✔" if m.get("serving") else ""),
                str(m.get("created") or "")[:16].replace("T", " "),
                trained_on,
                _pct(test.get("accuracy")),
                _pct(test.get("macro_f1")),
                notes,
            ]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, m["version"])
                if c == len(cells) - 1:
                    item.setToolTip(text)
                if m.get("serving"):
                    font = QFont(item.font())
                    font.setBold(True)
                    item.setFont(font)
                    item.setBackground(QBrush(QColor("#e6f4ea")))
                self.table.setItem(r, c, item)
            if m["version"] == selected:
                self.table.selectRow(r)
        self._selection_changed()

    def selected_version(self) -> int | None:
        items = self.table.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def _selection_changed(self) -> None:
        version = self.selected_version()
        self.promote_button.setEnabled(version is not None and version != self.models.get("serving_version"))

    def promote_selected(self) -> None:
        version = self.selected_version()
        if version is None:
            return
        if not dialogs.confirm(self, "Serve this version?", f"Serve model version {version} from now on?"):
            return
        self.session.with_admin(self, lambda: self._pointer_change("promote", version))

    def rollback(self) -> None:
        if not dialogs.confirm(
            self, "Roll back?", "Go back to the model version that was serving before the current one?"
        ):
            return
        self.session.with_admin(self, lambda: self._pointer_change("rollback", None))

    def _pointer_change(self, action: str, version: int | None) -> None:
        client = self.session.client
        if client is None:
            return
        if action == "promote":
            call, args, title = client.promote, (version, "promoted from the desktop app"), "Could not promote"
        else:
            call, args, title = client.rollback, ("rolled back from the desktop app",), "Could not roll back"

        def done(answer: dict) -> None:
            self.window_.flash(f"Model version {answer['serving_version']} is now serving.")
            self.refresh()
            self.window_.model_changed()

        self.tasks.run(call, *args, on_done=done, on_error=lambda exc: self.session.admin_error(self, exc, title))
