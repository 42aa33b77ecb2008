"""What the desktop app says, without a server: a refusal's heading as the web page's, a retraining job's bar and
line, one status word for a model version, figures of a few test photos, a batch's errors, counts, boxes that show
their words whole, and an upload of an empty or one-class folder."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"

import pytest  # noqa: E402

pytest.importorskip("PySide6.QtWidgets")
pytest.importorskip("pytestqt")


from tests.e2e.desktop_support import dialogs_shown, next_dialog, unreachable_window  # noqa: E402

from leafdoc.api_client import ApiError  # noqa: E402
from leafdoc.desktop.diagnose import ResultCard  # noqa: E402
from leafdoc.desktop.jobs import job_progress  # noqa: E402


@pytest.fixture
def window(qtbot, tmp_path):
    """The main window, its server unreachable (the "Cannot connect" dialog closed)."""
    return unreachable_window(qtbot, tmp_path)


# ---- 4. a refusal's heading ----------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_a_refusals_heading_is_the_web_pages(qtbot, tmp_path, lang):
    """A sharp photo of a rose (not_a_leaf) was told "Not sure — please take a clearer photo"; the web page says
    "Not sure: no diagnosis for this photo". Every reason's heading is now the page's, in the card's language."""
    from leafdoc.core.i18n import gettext
    from leafdoc.ui import text

    for reason, heading in [
        ("not_a_leaf", "Not sure: no diagnosis for this photo"),
        ("unsure", "Not sure: no diagnosis for this photo"),
        ("poor_photo", "Take another photo: this one cannot be read"),
        ("unlike_training", "Not sure: this photo is not like the ones this model learnt this crop from"),
        ("unknown_leaf", "Not sure: this leaf is not one this model was taught"),
    ]:
        card = ResultCard(tmp_path / "rose.jpg", lang)
        qtbot.addWidget(card)
        answer = {"abstained": True, "reason": reason, "message": "It does not look like a leaf.", "model_version": 1}
        card.show_answer(answer)
        said = card.title.text()
        assert said == gettext(lang, heading) and "clearer photo" not in said and "plus nette" not in said
        page = text.verdict({**answer, "language": lang})
        assert page.startswith(f"### {said}\n"), (reason, page)
    if lang == "fr":
        assert gettext("fr", "Not sure: no diagnosis for this photo") != "Not sure: no diagnosis for this photo"


# ---- 5 and 6. a retraining job's bar and line -------------------------------------------------------------


def test_a_job_still_running_never_shows_100_percent_nor_says_its_state_twice(qtbot, window):
    running = {
        "id": "1a2b3c4d5e",
        "dataset": "tiny",
        "state": "running",
        "epochs": 1,
        "epoch": 1,
        "progress": {"phase": "fitting the not-a-leaf and unlike-training checks"},
    }
    percent, words = job_progress(running)
    assert percent < 100 and words == "fitting the not-a-leaf and unlike-training checks — 1 of 1 epoch done"
    training = window.retrain.training
    training._show_job(running)
    assert training.job_bar.value() < 100 and training.job_bar.format() != "100%"
    bare = {"id": "1a2b3c4d5e", "dataset": "tiny", "state": "running", "epochs": 0, "epoch": 0, "progress": {}}
    training._show_job(bare)
    assert "running</b> — running" not in training.job_label.text()
    assert training.job_label.text().startswith("Job <b>1a2b3c4d</b> on <b>tiny</b>: <b>running</b>")
    for state in ("failed", "cancelled"):
        training._show_job({**bare, "state": state, "error": "stopped"})
        if state == "failed":
            assert next_dialog(qtbot)[0] == "Retraining failed"
        assert f"<b>{state}</b> — {state}" not in training.job_label.text()


# ---- 7. one status word for a version ---------------------------------------------------------------------


def test_the_job_box_the_card_and_the_table_say_one_status_and_follow_a_promotion(window):
    """After a retraining whose version was not promoted the table said "not promoted", the card "rejected" and the
    job box "kept as a candidate"; after serving it by hand the job box still said "not served"."""
    from leafdoc.desktop.versions import version_cells
    from leafdoc.words.model_card import card_text

    reason = "not better on the paired test photos: an admin can promote it by hand"
    job = {
        "id": "9f8e7d6c5b",
        "dataset": "tiny",
        "state": "succeeded",
        "epochs": 1,
        "epoch": 1,
        "candidate_version": 2,
        "promotion": {"promoted": False, "reason": reason},
        "metrics": {"test": {"accuracy": 0.9}},
        "progress": {},
    }
    rejected = {"version": 2, "status": "rejected", "serving": False, "labels": ["a", "b"], "card": {}}
    training = window.retrain.training
    training._show_job(job)
    said = training.job_label.text()
    assert "Version <b>2</b>: not promoted" in said and "candidate" not in said and "not served" not in said
    assert version_cells(rejected)[1] == "not promoted"
    assert card_text(rejected).startswith("Model version 2 · not promoted")

    # served by hand: the table is read again, and the job box follows it
    training.versions_loaded({"models": [{**rejected, "status": "serving", "serving": True}], "serving_version": 2})
    said = training.job_label.text()
    assert "Version <b>2</b> is now serving" in said and "not promoted" not in said and "not served" not in said
    assert f"Why, when the job ended: {reason}" in said


# ---- 8. figures of a few test photos ------------------------------------------------------------------


def test_the_card_counts_a_small_test_set_instead_of_saying_more_than_99_9_percent():
    from leafdoc.words.model_card import card_text

    test = {"accuracy": 23 / 24, "top3_accuracy": 1.0, "n": 24}
    model = {"version": 3, "status": "candidate", "labels": list("abcdef"), "card": {"metrics": {"test": test}}}
    said = " ".join(card_text(model, width=1000).split())
    assert "(the right answer among the top three for 24 of 24)." in said and ">99.9%" not in said


# ---- 6. a batch's errors, counts, boxes shown whole --------------------------------------------------------


def test_a_batch_error_names_each_file_once(qtbot, window):
    tab = window.diagnose
    tab._pending, tab._batch_size = 1, 3
    tab._batch_errors = [
        ("readme_renamed.jpg", ApiError("readme_renamed.jpg: not a photo (the file is text).")),
        ("broken.png", ApiError("the photo could not be decoded.")),
    ]
    tab._one_done()
    title, text, _ = next_dialog(qtbot)
    assert "• readme_renamed.jpg: not a photo" in text and text.count("readme_renamed.jpg") == 1
    assert "• broken.png: The photo could not be decoded." in text


def test_counts_are_pluralised():
    """ "12 photos in 1 classes". (The boxes cut at "v1 (latest): 12 photo" and "Je ne sais pa" on a real screen now
    resize to their text; offscreen, their layout gave them room either way, so no test here could tell.)"""
    from leafdoc.desktop.dataset import summary_text

    assert "12 photos in 1 class" in summary_text({"source": "mine", "n_images": 12, "class_counts": {"a": 12}})
    assert "12 photos in 2 classes" in summary_text(
        {"source": "mine", "n_images": 12, "class_counts": {"a": 6, "b": 6}}
    )


# ---- 9. uploading an empty or a one-class folder -----------------------------------------------------------


def test_an_empty_folder_is_named_and_a_one_class_upload_warned(qtbot, window, tmp_path):
    from leafdoc.desktop.retrain import in_users_words, upload

    empty = tmp_path / "empty"
    (empty / "Tomato___healthy").mkdir(parents=True)
    with pytest.raises(ApiError) as raised:  # said before anything is sent
        upload(None, empty, None, lambda sent, total: None)
    assert "“empty”" in raised.value.message and "no photos" in raised.value.message

    server_said = ApiError("Upload faf5e27c-1b2a-4c3d-9e8f-0a1b2c3d4e5f: empty.zip: no files found.", status=422)
    said = in_users_words(server_said, empty).message
    assert said == "The folder “empty”: no files found." and "faf5e27c" not in said and ".zip" not in said
    mine = tmp_path / "mine.zip"
    mine.write_bytes(b"")
    assert in_users_words(server_said, mine).message == "The zip “mine.zip”: no files found."

    tab = window.retrain
    tab.source = empty
    tab._upload_failed(server_said)
    title, text, _ = next_dialog(qtbot)
    assert title == "Upload failed" and "The folder “empty”" in text and "faf5e27c" not in text

    answer = {
        "added": 12,
        "created_version": True,
        "version": 1,
        "dataset": "mine",
        "n_images": 12,
        "n_classes": 1,
        "duplicates": [],
        "near_duplicates": [],
        "rejected": [],
    }
    tab._uploaded(answer)
    shown = tab.upload_result.text()
    assert "12 photos in 1 class." in shown and "1 classes" not in shown
    assert "Retraining needs at least 2 classes" in shown
    tab._uploaded({**answer, "n_classes": 2, "n_images": 24})
    assert "needs at least" not in tab.upload_result.text()


@pytest.fixture(autouse=True)
def _no_dialog_left(qtbot):
    yield
    for box in dialogs_shown():
        box.close()
