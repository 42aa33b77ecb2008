"""The Retrain tab's model versions box: every version with its test figures, and which one serves; under the table,
the selected version's model card (words/model_card.py, as `leafdoc models show` and the web page say it): the
serving version's until another is picked.

Promote the selected version or roll back to the previous one (both need the admin token). The box loads
the versions itself; its Refresh button and a change of the serving version reload the whole tab, which
connects `refresh_button` and `serving_changed`.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
)

from leafdoc.advice.render import english_label
from leafdoc.desktop import dialogs
from leafdoc.desktop.dialogs import NOTHING_TO_ROLL_BACK
from leafdoc.desktop.widgets import read_only_table
from leafdoc.words.job_phases import serving_copy_words, version_status_words
from leafdoc.words.model_card import card_markdown
from leafdoc.words.percent import measured_share
from leafdoc.words.serving_change import promotion_details, promotion_verdict, rollback_target, serving_change

CARD_HINT = (
    "Select a version to read its model card: what it learnt from, the classes it knows, its test figures and its "
    "limitations."
)
ROLLBACK_TIP = "Serve again the version that served before the current one."
ROLL_BACK = "Roll back"
MODEL_COLUMNS = ["Version", "Status", "Created", "Trained on", "Test accuracy", "Macro F1", "Notes"]


def version_cells(m: dict) -> list[str]:
    """One row of the table for one version of GET /v1/models."""
    test = (m.get("metrics") or {}).get("test") or {}
    trained_on = f"{m['dataset']} v{m['dataset_version']}" if m.get("dataset") else "—"
    promo = m.get("promotion") or {}
    notes = ". ".join(filter(None, [promotion_verdict(m), serving_copy_words(promo, True)]))
    return [
        str(m["version"]),
        version_status_words(m) + (" ✔" if m.get("serving") else ""),
        str(m.get("created") or "")[:16].replace("T", " "),
        trained_on,
        measured_share(test, "accuracy"),
        measured_share(test, "macro_f1"),
        notes,
    ]


class VersionsBox(QGroupBox):
    serving_changed = Signal()  # a promotion or a rollback went through
    loaded = Signal(dict)  # GET /v1/models, as the table now shows it

    def __init__(self, window):
        super().__init__("3. Model versions")
        self.window_ = window
        self.session, self.tasks = window.session, window.tasks
        self.models: dict = {}
        layout = QVBoxLayout(self)
        self.serving_label = QLabel()
        self.serving_label.setObjectName("servingLabel")
        layout.addWidget(self.serving_label)
        self.table = read_only_table(MODEL_COLUMNS, stretch=len(MODEL_COLUMNS) - 1, single=True)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        # The selected version's card, under the table (drag the line between them to give either more room).
        self.card = QTextBrowser()
        self.card.setObjectName("modelCard")
        self.card.setOpenLinks(False)
        self.card.setMarkdown(CARD_HINT)
        self.card_version: int | None = None  # the version whose card is shown (or asked for)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.card)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 2)
        layout.addWidget(split, 1)
        buttons = QHBoxLayout()
        self.refresh_button = QPushButton("Refresh")
        self.promote_button = QPushButton("Serve the selected version")
        self.promote_button.setEnabled(False)
        self.promote_button.clicked.connect(self.promote_selected)
        self.rollback_button = QPushButton(ROLL_BACK)
        self.rollback_button.setObjectName("rollbackButton")
        self.rollback_button.setEnabled(False)  # until the server's serving history says there is one to go back to
        self.rollback_button.clicked.connect(self.rollback)
        buttons.addWidget(self.refresh_button)
        buttons.addStretch(1)
        buttons.addWidget(self.promote_button)
        buttons.addWidget(self.rollback_button)
        layout.addLayout(buttons)

    def load(self, client) -> None:
        self.tasks.run(
            client.models,
            on_done=lambda models: self._got_models(client, models),
            on_error=lambda exc: dialogs.show_error(self, "Could not list the model versions", exc),
        )

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
        for m in sorted(models.get("models", []), key=lambda m: -m["version"]):
            r = self.table.rowCount()
            self.table.insertRow(r)
            cells = version_cells(m)
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
            # The version picked before a reload stays picked; with none, the serving one, so the card under the
            # table says what answers the growers before anyone clicks.
            if m["version"] == selected or (selected is None and m.get("serving")):
                self.table.selectRow(r)
        self._selection_changed()
        self._can_roll_back(rollback_target(models.get("history")))
        self.loaded.emit(models)

    def _can_roll_back(self, target: int | None) -> None:
        self.rollback_button.setEnabled(target is not None)
        # the version it would serve on the button itself, as on the web page's Retrain tab
        self.rollback_button.setText(ROLL_BACK if target is None else f"{ROLL_BACK} to version {target}")
        self.rollback_button.setToolTip(
            f"{ROLLBACK_TIP} (version {target})" if target is not None else NOTHING_TO_ROLL_BACK
        )

    def forget(self, server: str) -> None:
        """Another server is being connected to: nothing of the old one's versions stays on show (after a failed
        "Connect to a server…" the tab still said "Serving now: version 1", the old server's)."""
        self.models = {}
        self.table.setRowCount(0)
        self.serving_label.setText(
            f"Not connected: the model versions of {server or 'the new server'} show here once it answers."
        )
        self.promote_button.setEnabled(False)
        self.rollback_button.setEnabled(False)
        self.rollback_button.setText(ROLL_BACK)
        self.rollback_button.setToolTip("Not connected to a server.")
        self.card_version = None
        self.card.setMarkdown(CARD_HINT)

    def selected_version(self) -> int | None:
        items = self.table.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def _selection_changed(self) -> None:
        version = self.selected_version()
        self.promote_button.setEnabled(version is not None and version != self.models.get("serving_version"))
        self.show_card(version)

    def show_card(self, version: int | None) -> None:
        """The version's card (GET /v1/models/{version}), read in the background; the hint when none is selected."""
        client = self.session.client
        if version is None or client is None:
            self.card_version = None
            self.card.setMarkdown(CARD_HINT)
            return
        self.card_version = version

        def got(model: dict) -> None:
            if self.card_version == version:  # not another selection made since
                # how it came in, whole (the table says it in a few words), then its card
                said = promotion_details(model) + "\n\n" + card_markdown(model, name=english_label, face="app")
                self.card.setMarkdown(said)

        def failed(exc: BaseException) -> None:
            if self.card_version == version:
                said = " ".join(dialogs.describe(exc)).strip()  # its hint in the app's words (dialogs.in_app_words)
                self.card.setPlainText(f"Could not read the model card of version {version}: {said}")

        self.tasks.run(client.model, version, on_done=got, on_error=failed)

    def promote_selected(self) -> None:
        version = self.selected_version()
        if version is None:
            return
        chosen = next((m for m in self.models.get("models", []) if m.get("version") == version), {"version": version})
        notes = serving_change(chosen, self.models, name=english_label)
        question = "\n\n".join([f"Serve model version {version} from now on?", *notes])
        if not dialogs.confirm(self, "Serve this version?", question):
            return
        self.session.with_admin(self, lambda: self._pointer_change("promote", version))

    def rollback(self) -> None:
        target = rollback_target(self.models.get("history"))
        if target is None:
            return
        # which version, and what serving it changes (its classes against the serving one's), as "Serve" says
        back = next((m for m in self.models.get("models", []) if m.get("version") == target), {"version": target})
        notes = serving_change(back, self.models, name=english_label)
        serving = self.models.get("serving_version")
        question = f"Serve model version {target} again, the one that served before version {serving}?"
        if not dialogs.confirm(self, f"Roll back to version {target}?", "\n\n".join([question, *notes])):
            return
        self.session.with_admin(self, lambda: self._pointer_change("rollback", None))

    def _pointer_change(self, action: str, version: int | None) -> None:
        client = self.session.client
        if client is None:
            return
        if action == "promote":
            call, args, title = client.promote, (version, "promoted from the desktop app"), "Could not promote"
        else:
            # the version the button's tip named: refused (409) if another admin changed the serving one meanwhile
            target = rollback_target(self.models.get("history"))
            call, args, title = client.rollback, ("rolled back from the desktop app", target), "Could not roll back"

        def done(answer: dict) -> None:
            self.window_.flash(f"Model version {answer['serving_version']} is now serving.")
            self.serving_changed.emit()
            self.window_.model_changed()

        self.tasks.run(call, *args, on_done=done, on_error=lambda exc: self.session.admin_error(self, exc, title))
