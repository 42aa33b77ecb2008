"""What the Diagnose tab's handlers return under a refusal (ui/diagnose_tab.py), with the API faked: no heat map (it
was of a label the refusal does not give: a daisy refused as not a leaf showed corn common rust's), no Yes or No (a
"yes" under a poor photo was stored as correct), and what /app asks instead: what it is, if the grower knows, except
under a photo refused as unusable."""

from __future__ import annotations

import base64
import io
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("gradio")

from leafdoc.ui import diagnose_tab  # noqa: E402

LABELS = ["Corn_(maize)___Common_rust_", "Corn_(maize)___healthy"]


def overlay() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 0, 0)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


class FakeApi:
    def __init__(self, answer: dict):
        self.answer, self.sent = answer, []

    def explain(self, *a, **kw):
        return self.answer

    def advice_for(self, answer):
        return None

    asked_for_models = 0

    def model(self, version):
        FakeApi.asked_for_models += 1
        return {"labels": LABELS}

    def feedback(self, prediction_id, correct, label):
        self.sent.append((prediction_id, correct, label))


class FakeFiles:
    def __init__(self, path: Path):
        self.path = path

    def open(self, photo):
        return self.path, self.path.name


def answer(**kw) -> dict:
    base = {
        "prediction_id": "p1",
        "model_version": 1,
        "label": LABELS[0],
        "confidence": 0.9,
        "top_k": [{"label": LABELS[0], "probability": 0.9}, {"label": LABELS[1], "probability": 0.1}],
        "abstained": False,
        "reason": None,
        "message": None,
        "candidates": [],
        "overlay_png": overlay(),
        "language": "en",
    }
    return {**base, **kw}


def refused(reason: str) -> dict:
    return answer(label=None, abstained=True, reason=reason, message="Not a leaf.", candidates=[])


@pytest.fixture
def run(monkeypatch, tmp_path):
    photo = tmp_path / "daisy.jpg"
    Image.new("RGB", (32, 32), (250, 250, 250)).save(photo)
    monkeypatch.setattr(diagnose_tab, "page_language", lambda request: "en")
    monkeypatch.setattr(diagnose_tab, "_LABELS", {})  # each test's fake model versions

    def go(given: dict):
        api = FakeApi(given)

        @contextmanager
        def client(settings, request):
            yield api

        monkeypatch.setattr(diagnose_tab, "api_client", client)
        out = diagnose_tab.diagnose_handler(None, FakeFiles(photo))({"path": str(photo)}, "", None)
        names = ["verdict", "scores", "heat", "heat_note", "shown", "box", "question", "up", "down", "send", "actual"]
        return dict(zip(names, out, strict=False)), api

    return go


def visible(update) -> bool | None:
    return update.get("visible") if isinstance(update, dict) else None


def test_an_answer_shows_its_heat_map_and_asks_was_this_right(run):
    out, _ = run(answer())
    assert out["heat"]["value"] is not None and visible(out["heat"]) and visible(out["heat_note"])
    assert visible(out["box"]) and "Was this right?" in out["question"]
    assert visible(out["up"]) and visible(out["down"]) and visible(out["send"]) is False


@pytest.mark.parametrize("reason", ["not_a_leaf", "unsure", "unlike_training", "unknown_leaf"])
def test_a_refusal_shows_no_heat_map_and_no_yes_or_no_only_what_it_is(run, reason):
    out, _ = run(refused(reason))
    assert out["heat"]["value"] is None and visible(out["heat"]) is False and visible(out["heat_note"]) is False
    assert visible(out["box"]) and "What is it?" in out["question"] and "Was this right" not in out["question"]
    assert visible(out["up"]) is False and visible(out["down"]) is False and visible(out["send"]) is True
    assert [value for _, value in out["actual"]["choices"]] == LABELS  # every label: none was given


def test_a_poor_photo_asks_nothing(run):
    out, _ = run(refused("poor_photo"))
    assert out["heat"]["value"] is None and visible(out["heat"]) is False
    assert visible(out["box"]) is False


def test_a_yes_under_a_refusal_is_never_stored_as_correct(monkeypatch):
    """Even a click left from before the refusal came (a Yes still on the screen) sends nothing."""
    api = FakeApi({})

    @contextmanager
    def client(settings, request):
        yield api

    monkeypatch.setattr(diagnose_tab, "api_client", client)
    monkeypatch.setattr(diagnose_tab, "page_language", lambda request: "en")
    yes, no = diagnose_tab.feedback_handler(None, True), diagnose_tab.feedback_handler(None, False)
    for reason in ("poor_photo", "not_a_leaf", "unsure"):
        shown = {"prediction_id": "p1", "label": None, "abstained": True, "reason": reason}
        yes(shown, None, None)
        said = no(shown, None, None)  # Send with nothing picked
        assert reason == "poor_photo" or said == "Pick what it is first."
    assert api.sent == []
    no({"prediction_id": "p2", "label": None, "abstained": True, "reason": "not_a_leaf"}, LABELS[1], None)
    assert api.sent == [("p2", False, LABELS[1])]  # what it is, as /app sends it
    yes({"prediction_id": "p3", "label": LABELS[0], "abstained": False, "reason": None}, None, None)
    assert api.sent[-1] == ("p3", True, None)


def test_the_list_of_what_it_is_names_every_label_in_the_pages_words(run, monkeypatch):
    """The page named only the answer's top three in words: the rest of the list read as PlantVillage's labels, in
    English on every page ("Orange — Haunglongbing (Citrus greening)"). Every label now reads as the desktop app and
    /app name it, in the page's language; a name the answer gives (the server's advice folder) comes first."""
    labels = [
        "Corn_(maize)___Common_rust_",
        "Orange___Haunglongbing_(Citrus_greening)",
        "Tomato___Spider_mites Two-spotted_spider_mite",
        "Tomato___healthy",
    ]
    monkeypatch.setattr(FakeApi, "model", lambda self, version: {"labels": labels})
    expected = {
        "en": ["Orange (citrus) — Huanglongbing (citrus greening)", "Tomato — Two-spotted spider mite"],
        "es": [
            "Naranjo (cítricos) — Huanglongbing (enverdecimiento de los cítricos)",
            "Tomate — Araña roja de dos manchas",
        ],
    }
    for lang, names in expected.items():
        monkeypatch.setattr(diagnose_tab, "page_language", lambda request, lang=lang: lang)
        top = [{"label": labels[0], "probability": 0.9, "name": "Maíz — Roya común (from the answer)"}]
        out, _ = run(answer(label=labels[3], top_k=top, language=lang))  # the answer itself is not offered
        given = [("Maíz — Roya común (from the answer)", labels[0]), *zip(names, labels[1:3], strict=True)]
        assert out["actual"]["choices"] == given


def test_a_versions_labels_are_fetched_once_not_with_every_diagnosis(run):
    """Every diagnosis on the page fetched GET /v1/models/{version} (35 KB, the whole card) for its labels alone."""
    FakeApi.asked_for_models = 0
    for _ in range(3):
        out, _ = run(answer())
        assert [value for _, value in out["actual"]["choices"]] == LABELS[1:]
    assert FakeApi.asked_for_models == 1


def test_a_photo_is_diagnosed_once_though_gradio_says_it_changed_twice(monkeypatch, tmp_path):
    """Gradio's Image fires `change` twice when a photo replaces another, with the same file: each photo after the
    first was sent to /v1/explain twice (the review queue had it twice, monitoring counted two answers). The second
    is skipped; another crop, another photo, or the Diagnose button ask again."""
    photo = tmp_path / "leaf.jpg"
    Image.new("RGB", (32, 32), (40, 120, 30)).save(photo)
    monkeypatch.setattr(diagnose_tab, "page_language", lambda request: "en")
    monkeypatch.setattr(diagnose_tab, "_LABELS", {})
    calls = []

    class Counting(FakeApi):
        def explain(self, *a, **kw):
            calls.append(kw.get("crop"))
            return super().explain(*a, **kw)

    api = Counting(answer())

    @contextmanager
    def client(settings, request):
        yield api

    monkeypatch.setattr(diagnose_tab, "api_client", client)
    on_change = diagnose_tab.diagnose_handler(None, FakeFiles(photo))
    first = on_change({"path": str(photo)}, "", None)
    second = on_change({"path": str(photo)}, "", None)  # Gradio's second `change` for the same photo
    assert len(calls) == 1 and "Corn" in str(first[0])
    assert all(isinstance(x, dict) and x.get("__type__") == "update" and len(x) == 1 for x in second), second
    on_change({"path": str(photo)}, "corn", None)  # another crop: answered again
    button = diagnose_tab.diagnose_handler(None, FakeFiles(photo), asked=True)
    button({"path": str(photo)}, "corn", None)  # the Diagnose button: answered again
    assert calls == [None, "corn", "corn"]
