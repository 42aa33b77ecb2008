"""Review tab (admin token): answers users said were wrong, then abstentions and other feedback, the most
informative first (GET /v1/review); the admin looks at a kept photo and labels it (it joins a new dataset
version, as an upload would) or dismisses it. The same queue and actions as the web page's Review tab."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
)

from leafdoc.desktop import dialogs
from leafdoc.desktop.combo import ComboBox
from leafdoc.desktop.widgets import ImageView, Tab, decode_image, read_only_table
from leafdoc.ui import feedback_text
from leafdoc.words.labels import pretty_label

QUEUE_LIMIT = 50


def fetch_queue(client) -> tuple[dict, list[str]]:
    queue = client.review(limit=QUEUE_LIMIT)
    serving = next((m for m in client.models().get("models", []) if m.get("serving")), {})
    return queue, serving.get("labels", [])


class ReviewTab(Tab):
    def __init__(self, window):
        super().__init__(window)
        self.items: list[dict] = []
        self.keep_photos = True  # the server's, from its queue
        self._said = ""  # what the last action did, shown above the reloaded queue
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.load_button = QPushButton("Load the queue")
        self.load_button.clicked.connect(lambda: self.session.with_admin(self, self._load))
        top.addWidget(self.load_button)
        self.status = QLabel("Answers to check: wrong ones first, then abstentions. Needs the admin token.")
        self.status.setWordWrap(True)
        top.addWidget(self.status, 1)
        layout.addLayout(top)
        self.table = read_only_table(feedback_text.REVIEW_COLUMNS, stretch=1, single=True)
        self.table.itemSelectionChanged.connect(self._selected)
        layout.addWidget(self.table, 1)
        bottom = QHBoxLayout()
        self.photo = ImageView("Pick an answer", QSize(220, 220))
        self.photo.setFixedSize(240, 240)
        bottom.addWidget(self.photo)
        form = QVBoxLayout()
        form.addWidget(QLabel("What it shows (a class of the model, or type a new one)"))
        self.label = ComboBox(chars=30)
        self.label.setEditable(True)
        form.addWidget(self.label)
        self.add_button = QPushButton("Add to the dataset")
        self.add_button.clicked.connect(lambda: self.session.with_admin(self, self._add))
        self.dismiss_button = QPushButton("Nothing to learn: dismiss")
        self.dismiss_button.clicked.connect(lambda: self.session.with_admin(self, self._dismiss))
        form.addWidget(self.add_button)
        form.addWidget(self.dismiss_button)
        form.addStretch(1)
        bottom.addLayout(form, 1)
        layout.addLayout(bottom)

    def current(self) -> dict | None:
        rows = self.table.selectionModel().selectedRows()
        return self.items[rows[0].row()] if rows and rows[0].row() < len(self.items) else None

    def _load(self) -> None:
        self.tasks.run(fetch_queue, self.session.client, on_done=self._show, on_error=self._failed)

    def _show(self, result) -> None:
        queue, labels = result
        self.items = queue["items"]
        self.keep_photos = bool(queue["keep_photos"])
        rows = feedback_text.review_rows(self.items)
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.label.clear()
        for x in labels:
            self.label.addItem(pretty_label(x), x)
        shown = f"the first {len(rows)}" if len(rows) >= QUEUE_LIMIT else str(len(rows))
        kept = "" if queue["keep_photos"] else " Photos are not kept."
        self.status.setText(f"{self._said}\n{shown} answer(s) to review.{kept}".strip())
        self._said = ""
        if rows:
            self.table.selectRow(0)
        else:
            self._can_add(None)

    def _can_add(self, item: dict | None) -> None:
        """Only a kept photo can join a dataset: *Add to the dataset* is off otherwise, and its tip says why (it was
        on, and answered with a dialog saying to set LEAFDOC_KEEP_PHOTOS, which this app cannot)."""
        why = feedback_text.cannot_add(item, self.keep_photos)
        self.add_button.setEnabled(why is None)
        self.add_button.setToolTip(why or "")

    def _selected(self) -> None:
        item = self.current()
        self._can_add(item)
        if item is None:
            return
        # What a user said, never the model's own guess: one click must not file a rose under a disease.
        guess = item["feedback_label"] or (item["label"] if item["feedback_correct"] else None)
        index = self.label.findData(guess) if guess else -1
        self.label.setCurrentIndex(index)
        if index < 0:
            self.label.setEditText("")
        if not item["has_photo"]:
            self.photo.set_message("Photo not kept")
            return
        client, pid = self.session.client, item["prediction_id"]
        self.tasks.run(
            lambda: decode_image(client.review_photo(pid)),
            on_done=lambda image: self.photo.set_image(image, placeholder="No preview"),
            on_error=lambda exc: self.photo.set_message("Photo not available"),
        )

    def _chosen_label(self) -> str:
        data = self.label.currentData()
        text = self.label.currentText().strip()
        return data if data and pretty_label(data) == text else text

    def _add(self) -> None:
        item, label = self.current(), self._chosen_label()
        if item is None or not label:
            dialogs.show_error(self, "Nothing labelled", "Pick an answer and what it shows first.")
            return
        self.tasks.run(
            self.session.client.review_label, item["prediction_id"], label, on_done=self._done, on_error=self._failed
        )

    def _dismiss(self) -> None:
        item = self.current()
        if item is None:
            return
        self.tasks.run(
            self.session.client.review_dismiss, item["prediction_id"], on_done=self._done, on_error=self._failed
        )

    def _done(self, answer: dict) -> None:
        if "upload" in answer:
            self._said = feedback_text.reviewed(answer).replace("**", "")
        else:
            self._said = f"Dismissed {answer['prediction_id'][:10]}: it enters no dataset."
        self._load()

    def _failed(self, exc: BaseException) -> None:
        self.session.admin_error(self, exc, "Review")
