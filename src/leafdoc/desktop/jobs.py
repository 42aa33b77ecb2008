"""The Retrain tab's training box: start a retraining job, follow it, cancel it.

The job is followed by polling the server every POLL_MS (state, epoch of epochs, the last epoch's figures,
how its photos were split); when it ends the box says whether the new version serves and why. A job still
queued or running when the app opens is picked up (`pick_up`). Starting and cancelling need the admin token.
The box asks the tab for the dataset to train on, and emits `succeeded` when a job registered a new version.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QCheckBox, QGridLayout, QGroupBox, QLabel, QProgressBar, QPushButton, QSpinBox

from leafdoc.desktop import dialogs
from leafdoc.desktop.widgets import percent_text
from leafdoc.words.job_phases import (
    AUTO_EPOCHS,
    AUTO_EPOCHS_RULE,
    LEARN_FIELD_INFO,
    LEARN_FIELD_LABEL,
    field_check_words,
    other_leaves_words,
    phase_words,
    serving_copy_words,
    split_words,
    version_status_words,
)

POLL_MS = 1500
RUNNING_MAX = 99  # % the bar shows at most while the job runs
FINISHED = ("succeeded", "failed", "cancelled")


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
        done = round(100 * epoch / epochs) if epochs else 0
        return min(RUNNING_MAX, done), "cancelling: the training is being stopped"
    fraction = epoch / epochs if epochs else 0.0
    if epochs and progress.get("steps") and epoch < epochs:
        fraction = (epoch + progress.get("batch", 0) / progress["steps"]) / epochs
    words = phase_words(progress.get("phase")) or ""
    if epochs:
        words += f"{' — ' if words else ''}{epoch} of {epochs} epoch{'s' if epochs != 1 else ''} done"
    # The epochs are not the whole job: scoring, calibrating and the checks come after them (40 s and more), so a
    # job still running never shows 100%.
    return min(RUNNING_MAX, round(min(1.0, fraction) * 100)), words


def job_headline(job: dict, words: str) -> str:
    """'Job 1a2b3c4d on tiny: running — training the new head — 1 of 3 epochs done' (HTML); the state said once
    ("failed — failed", "running — running" were)."""
    said = f"Job <b>{job['id'][:8]}</b> on <b>{html.escape(str(job['dataset']))}</b>: <b>{job['state']}</b>"
    return said + (f" — {words}" if words and words != job["state"] else "")


def verdict_words(job: dict, now: dict | None = None) -> str:
    """What became of a succeeded job's version, in the versions table's words (words/job_phases.py
    `version_status_words`): `now` is that version as GET /v1/models lists it now, None before it was read; a version
    promoted or rolled back since the job ended is said as it is now, not as the job left it."""
    version, promotion = job.get("candidate_version"), job.get("promotion") or {}
    at_end = "serving" if promotion.get("promoted") else version_status_words({"status": "rejected"})
    status = version_status_words(now) if now is not None else at_end
    if status == "serving":
        said = f"Version <b>{version}</b> is now serving"
        return said + (" (served by hand after the job ended)." if at_end != "serving" else ".")
    if at_end == "serving":
        return f"Version <b>{version}</b> served when the job ended; it is no longer serving ({status})."
    return f"Version <b>{version}</b>: {status}; the serving model is unchanged."


class TrainingBox(QGroupBox):
    succeeded = Signal()  # a job finished and registered a new version

    def __init__(self, window, dataset: Callable[[], str | None]):
        super().__init__("2. Retrain the model")
        self.window_ = window
        self.session, self.tasks = window.session, window.tasks
        self.dataset = dataset  # the dataset to train on, as the tab's upload box names it (None: the default)
        self.job: dict | None = None
        self.finished: dict | None = None  # the last job followed to success, said again as its version changes
        self._finished_lines: list[str] = []
        self._polling = False
        self.poll_timer = QTimer(self)
        self.poll_timer.setInterval(POLL_MS)
        self.poll_timer.timeout.connect(self._poll)

        grid = QGridLayout(self)
        grid.addWidget(QLabel("Head epochs"), 0, 0)
        self.epochs = QSpinBox()
        self.epochs.setRange(0, 500)
        self.epochs.setSpecialValueText(AUTO_EPOCHS)
        self.epochs.setToolTip(
            "Training the head on the frozen backbone (from scratch: every epoch). "
            f"Left {AUTO_EPOCHS}: {AUTO_EPOCHS_RULE}."
        )
        self.epochs.setMinimumWidth(170)
        grid.addWidget(self.epochs, 0, 1)
        grid.addWidget(QLabel("Fine-tuning epochs"), 1, 0)
        self.fine_tune = QSpinBox()
        self.fine_tune.setRange(-1, 500)  # -1 shows AUTO_EPOCHS; 0 is no fine-tuning
        self.fine_tune.setSpecialValueText(AUTO_EPOCHS)
        self.fine_tune.setValue(-1)
        self.fine_tune.setToolTip(
            "Then the backbone, at a lower rate (0: none; pretrained models only). "
            f"Left {AUTO_EPOCHS}: {AUTO_EPOCHS_RULE}."
        )
        grid.addWidget(self.fine_tune, 1, 1)
        self.learn_field = QCheckBox(LEARN_FIELD_LABEL)
        self.learn_field.setToolTip(LEARN_FIELD_INFO)
        grid.addWidget(self.learn_field, 2, 0, 1, 5)
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
        grid.addWidget(self.job_label, 3, 0, 1, 5)  # under the two epoch rows and the field-photo choice
        grid.setColumnStretch(4, 1)

    def pick_up(self) -> None:
        """Follow a job still queued or running on the server (one started before the app was opened)."""
        client = self.session.client
        if client is not None and self.session.is_connected and client.admin_token and self.job is None:
            self.tasks.run(client.jobs, 5, on_done=lambda jobs: self._got_jobs(client, jobs), on_error=lambda e: None)

    def _got_jobs(self, client, jobs: list[dict]) -> None:
        if client is not self.session.client or self.job is not None:
            return
        active = [j for j in jobs if j["state"] not in FINISHED]
        if active:
            self._follow(active[0])

    def start_training(self) -> None:
        self.session.with_admin(self, self._start_training)

    def _start_training(self) -> None:
        client = self.session.client
        if client is None:
            return
        options = {"epochs": self.epochs.value()} if self.epochs.value() else {}
        if self.fine_tune.value() >= 0:
            options["fine_tune_epochs"] = self.fine_tune.value()
        if self.learn_field.isChecked():
            options["field_dirs"] = []  # the new version learns field photos: no unlike-training check
        self.train_button.setEnabled(False)
        self.job_label.setText("Starting…")
        self.tasks.run(
            client.start_training,
            self.dataset(),
            options=options,
            on_done=self._follow,
            on_error=self._start_failed,
        )

    def _start_failed(self, exc: BaseException) -> None:
        self.train_button.setEnabled(True)
        self.job_label.setText("Retraining did not start.")
        self.session.admin_error(self, exc, "Could not start retraining")

    def _follow(self, job: dict) -> None:
        self.job, self.finished = job, None
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
        lines = [job_headline(job, words)]
        lines += filter(None, [split_words(job.get("progress"))])
        metrics = job.get("metrics") or {}
        if metrics.get("last"):
            lines.append("Last epoch: " + metrics_text(metrics["last"]))
        self.cancel_button.setEnabled(job["state"] not in FINISHED and not job.get("cancel_requested"))
        if job["state"] in FINISHED:
            self.poll_timer.stop()
            self.train_button.setEnabled(True)
        if job["state"] == "succeeded":
            promotion = job.get("promotion") or {}
            why = f"Why, when the job ended: {promotion['reason']}" if promotion.get("reason") else None
            said = [
                why,
                serving_copy_words(promotion),
                field_check_words(job.get("progress")),
                other_leaves_words((job.get("progress") or {}).get("other_leaves")),
            ]
            extra = [f"<span style='color:#555'>{html.escape(text, quote=False)}</span>" for text in said if text]
            self.finished, self._finished_lines = job, [*lines, "{verdict}", *extra]
            lines = [*lines, self._verdict(job, None), *extra]
            self.job = None
            self.succeeded.emit()
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

    def _verdict(self, job: dict, now: dict | None) -> str:
        test = (job.get("metrics") or {}).get("test") or {}
        return f"{verdict_words(job, now)} Test accuracy {percent_text(test.get('accuracy'))}."

    def versions_loaded(self, models: dict) -> None:
        """The versions as the table now shows them: the last finished job's version said as it is now (promoted by
        hand, rolled back), never as the job left it beside a table that says otherwise."""
        job = self.finished
        if job is None or self.job is not None:
            return
        now = next((m for m in models.get("models", []) if m.get("version") == job.get("candidate_version")), None)
        verdict = self._verdict(job, now)
        self.job_label.setText("<br>".join(verdict if line == "{verdict}" else line for line in self._finished_lines))
