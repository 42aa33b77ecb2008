"""The Retrain tab's model versions, without a server (a fake client): serving a version says what changes, as
`leafdoc models promote` does; roll back is offered only when there is a version to go back to and never answers in
`leafdoc` commands or API routes; the model card speaks of the app, not of `leafdoc train`'s options; and a failed
"Connect to a server…" leaves none of the old server's versions on show."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"

import pytest  # noqa: E402
from tests.live_server import free_port  # noqa: E402

pytest.importorskip("PySide6.QtWidgets")
pytest.importorskip("pytestqt")


from tests.e2e.desktop_support import close_dialogs, next_dialog, unreachable_window  # noqa: E402

from leafdoc.api_client import ApiError  # noqa: E402
from leafdoc.desktop import dialogs  # noqa: E402
from leafdoc.desktop.window import MainWindow  # noqa: E402

LAB = ["Tomato___Early_blight", "Tomato___Late_blight", "Tomato___healthy"]
STARTER = LAB + [f"Crop{i}___Condition" for i in range(31)]  # 34 classes
NO_PROVENANCE = (
    "Provenance not given: pass --provenance FILE (a text file naming the photos' sources and licences) to "
    "`leafdoc train`."
)


def version(v: int, labels: list[str], accuracy: float, n: int, serving: bool, **more) -> dict:
    return {
        "version": v,
        "status": "serving" if serving else "candidate",
        "serving": serving,
        "created": "2026-12-01T10:00:00+00:00",
        "labels": labels,
        "metrics": {"test": {"accuracy": accuracy, "n": n}},
        "promotion": None,
        **more,
    }


class FakeClient:
    base_url = "http://fake:8000"
    admin_token = "token"

    def __init__(self, models: dict, rollback_error: ApiError | None = None):
        self.answer, self.rollback_error, self.calls = models, rollback_error, []

    def models(self) -> dict:
        return self.answer

    def model(self, v: int) -> dict:
        m = next(m for m in self.answer["models"] if m["version"] == v)
        return {**m, "card": {"provenance": NO_PROVENANCE}}

    def rollback(self, reason=None, to_version=None):
        self.calls.append(("rollback", to_version))
        raise self.rollback_error

    def promote(self, v, reason=None):
        self.calls.append(("promote", v))
        return {"serving_version": v}

    def ready(self):
        return {"ready": True, "model_version": 1}

    def close(self):
        pass


@pytest.fixture
def window(qtbot, tmp_path):
    yield unreachable_window(qtbot, tmp_path)
    close_dialogs()


def shown(qtbot, w: MainWindow, models: dict, **kw) -> FakeClient:
    client = FakeClient(models, **kw)
    w.session.client, w.session.is_connected = client, True
    box = w.retrain.versions
    box.load(client)
    qtbot.waitUntil(lambda: box.table.rowCount() == len(models["models"]), timeout=10_000)
    return client


ONE_SERVED = {
    "serving_version": 1,
    "models": [version(1, STARTER, 0.97, 5221, True), version(2, LAB, 23 / 24, 12, False)],
    "history": [{"version": 1, "previous_version": None, "action": "promote"}],
}


def test_serving_a_version_says_what_changes(qtbot, window, monkeypatch):
    """A lab's 3-class model, 95.8% on 12 photos, was served after "Serve model version 2 from now on?" alone."""
    box = window.retrain.versions
    shown(qtbot, window, ONE_SERVED)
    asked: list[str] = []
    monkeypatch.setattr(dialogs, "confirm", lambda parent, title, text: asked.append(text) or False)
    box.table.selectRow(next(r for r in range(2) if box.table.item(r, 0).text() == "2"))
    box.promote_button.click()
    said = asked[0]
    assert said.startswith("Serve model version 2 from now on?")
    assert "95.8% of 12 photos for version 2, against 97.0% of 5,221 photos for version 1" in said
    assert "12 photos are too few to tell two models apart" in said
    assert "It knows 3 classes where version 1 knew 34: photos of the 31 it does not know" in said
    assert "Crop0 — Condition, Crop1 — Condition, Crop2 — Condition and 28 more" in said


def test_a_decision_taken_against_the_serving_version_gives_the_paired_figures(qtbot, window, monkeypatch):
    models = {
        **ONE_SERVED,
        "models": [
            ONE_SERVED["models"][0],
            version(
                2,
                STARTER,
                0.99,
                400,
                False,
                promotion={
                    "metric": "accuracy",
                    "candidate": 0.99,
                    "serving": 0.97,
                    "n_images": 380,
                    "serving_version": 1,
                },
            ),
        ],
    }
    box = window.retrain.versions
    shown(qtbot, window, models)
    asked: list[str] = []
    monkeypatch.setattr(dialogs, "confirm", lambda parent, title, text: asked.append(text) or False)
    box.table.selectRow(0)
    box.promote_button.click()
    assert "On 380 photos of its test split: accuracy 99.0%, against 97.0% for version 1." in asked[0]
    assert "too few" not in asked[0] and "classes where version" not in asked[0]


def test_roll_back_is_offered_only_with_a_version_to_go_back_to_and_speaks_of_the_app(qtbot, window, monkeypatch):
    box = window.retrain.versions
    refused = ApiError(
        "there is no earlier serving version to roll back to.",
        "Promote a version instead: `leafdoc models promote VERSION`, or POST /v1/models/{version}/promote.",
        409,
        "conflict",
    )
    client = shown(qtbot, window, ONE_SERVED, rollback_error=refused)
    assert not box.rollback_button.isEnabled() and box.rollback_button.text() == "Roll back"
    assert "nothing to roll back to" in box.rollback_button.toolTip()
    assert "Serve the selected version" in box.rollback_button.toolTip()

    # served 1, then 2: back to 1 is offered
    twice = {
        **ONE_SERVED,
        "serving_version": 2,
        "history": [{"version": 1, "action": "promote"}, {"version": 2, "action": "promote"}],
    }
    box.load(client)
    client.answer = twice
    box.load(client)
    qtbot.waitUntil(lambda: box.rollback_button.isEnabled(), timeout=10_000)
    assert "(version 1)" in box.rollback_button.toolTip()
    assert box.rollback_button.text() == "Roll back to version 1"  # the version it would serve, as the page says

    # a server that refuses all the same (another admin rolled back meanwhile): the app's words, no command
    asked = []
    monkeypatch.setattr(dialogs, "confirm", lambda _parent, title, text: asked.append((title, text)) or True)
    box.rollback_button.click()
    # the question names the version and what serving it changes (the desktop review of session 74: it named none)
    assert asked[0][0] == "Roll back to version 1?", asked
    assert asked[0][1].startswith("Serve model version 1 again, the one that served before version 2?"), asked
    title, text, hint = next_dialog(qtbot)
    # the version its tip named is sent with it, so a server whose serving history changed refuses it
    assert client.calls == [("rollback", 1)] and title == "Could not roll back"
    assert "no earlier serving version" in text
    assert "Serve the selected version" in hint
    assert "leafdoc models" not in text + hint and "/v1/" not in text + hint


def test_the_card_speaks_of_the_app_and_leafdoc_models_show_keeps_its_command(qtbot, window):
    from leafdoc.words.model_card import card_text

    box = window.retrain.versions
    shown(qtbot, window, ONE_SERVED)
    qtbot.waitUntil(lambda: "Provenance not given" in box.card.toPlainText(), timeout=10_000)
    card = box.card.toPlainText()
    assert "--provenance" not in card and "leafdoc train" not in card
    assert "did not name the photos' sources and licences" in card
    # the command line keeps its instruction (a person there can pass --provenance)
    model = {**ONE_SERVED["models"][0], "card": {"provenance": NO_PROVENANCE}}
    assert "pass --provenance FILE" in " ".join(card_text(model, width=1000).split())


def test_a_failed_connect_leaves_none_of_the_old_servers_versions(qtbot, window, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    box = window.retrain.versions
    shown(qtbot, window, ONE_SERVED)
    assert "version 1" in box.serving_label.text()
    other = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: (other, True)))
    window.ask_server()
    assert next_dialog(qtbot)[0] == "Cannot connect"
    assert box.table.rowCount() == 0 and "Serving now" not in box.serving_label.text()
    assert other in box.serving_label.text()
    assert not box.promote_button.isEnabled() and not box.rollback_button.isEnabled()
    assert "Select a version" in box.card.toPlainText()
    # nor does the Diagnose tab say what the old server's model knows, nor offer its crops
    tab = window.diagnose
    assert not tab.knows.isVisible() and tab.knows.text() == "" and not tab.crop.isVisible() and tab.crop.count() == 1
