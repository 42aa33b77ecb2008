"""What the desktop app says, without a server: a refusal's heading as the web page's, a retraining job's bar and
line (its epochs counted over the whole job, as the web page counts them), one status word for a model version,
figures of a few test photos, a batch's errors, counts, boxes that show their words whole, an upload of an empty or
one-class folder, and what to do about a server's error in the app's actions, not in `leafdoc` commands or API
routes."""

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
        assert page.startswith(f"## {said}\n"), (reason, page)
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


def test_a_jobs_epochs_are_counted_over_the_whole_job_through_its_phases():
    """The server counts a job's epochs over the whole job (train/trainer.py: the fine-tuning continues from the head
    phase's last epoch; job["epochs"] is both phases'): a job of 3 head and 2 fine-tuning epochs, as a live one
    reported them, reads 3 of 5 then 4 and 5 of 5, never 1 again, its phase named as the web page names it
    (words/job_phases.py); the web page says "Epoch 3 / 5 · training the new head"."""
    from leafdoc.words.job_phases import phase_words

    job = {"id": "52af826e1", "dataset": "tiny", "state": "running", "epochs": 5}
    seen = [
        {**job, "epoch": 0, "progress": {"phase": "training"}},
        {**job, "epoch": 3, "progress": {"phase": "head", "epoch": 3}},
        {**job, "epoch": 3, "progress": {"phase": "fine_tune", "batch": 1, "steps": 2}},
        {**job, "epoch": 4, "progress": {"phase": "fine_tune", "epoch": 4}},
        {**job, "epoch": 5, "progress": {"phase": "fine_tune", "epoch": 5}},
    ]
    said = [job_progress(j) for j in seen]
    assert [words for _, words in said] == [
        "training — 0 of 5 epochs done",
        f"{phase_words('head')} — 3 of 5 epochs done",
        f"{phase_words('fine_tune')} — 3 of 5 epochs done",
        f"{phase_words('fine_tune')} — 4 of 5 epochs done",
        f"{phase_words('fine_tune')} — 5 of 5 epochs done",
    ]
    percents = [percent for percent, _ in said]
    assert percents == sorted(percents) and percents[-1] < 100


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
    tab._batch_errors = [  # as their cards said them
        ("readme_renamed.jpg", "readme_renamed.jpg: not a photo (the file is text).", ""),
        ("broken.png", "The photo could not be decoded.", ""),
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


# ---- what to do about a server's error: the app's actions, not `leafdoc` commands ---------------------------------

NO_MODEL = ApiError(
    "no model is serving yet.",
    "Set LEAFDOC_MODEL_DIR to a model folder before starting, or promote a registered version: `leafdoc models "
    "promote VERSION`, or POST /v1/models/{version}/promote.",
    503,
    "no_model",
)
FOR_PROGRAMMERS = ("`", "/v1/", "leafdoc models", "leafdoc serve", "LEAFDOC_MODEL_DIR")


class NoModelClient:
    """A server that has no model serving (the registry holds versions, none promoted)."""

    base_url = "http://no-model"
    admin_token = None

    def explain(self, *args, **kwargs):
        raise NO_MODEL

    def models(self):
        return {"models": [], "serving_version": None}

    def close(self):
        pass


def test_a_photo_sent_while_no_model_serves_says_what_to_do_in_the_app(qtbot, window, tmp_path):
    """The card and the dialog said "Set LEAFDOC_MODEL_DIR ... `leafdoc models promote VERSION`, or POST
    /v1/models/{version}/promote": a grower is told which tab and button instead."""
    from PIL import Image

    photo = tmp_path / "leaf.png"
    Image.new("RGB", (64, 64), (40, 140, 60)).save(photo)
    window.session.client, window.session.is_connected = NoModelClient(), True
    tab = window.diagnose
    tab._diagnose_all([photo])
    title, text, hint = next_dialog(qtbot)
    card = tab.cards[0]
    assert title == "Could not diagnose a photo" and text == "No model is serving yet."
    assert "Retrain tab" in hint and "“Serve the selected version”" in hint
    said = card.notice.text()
    assert said.startswith("No model is serving yet.") and "Retrain tab" in said
    assert not [words for words in FOR_PROGRAMMERS if words in hint + said]


def test_every_hint_the_server_writes_for_programmers_is_said_in_the_apps_actions():
    """Hints naming `leafdoc` commands, API routes or fields: in the app's words where the app has some, else left out;
    a hint written for people (no command in it) stays as the server wrote it."""
    from leafdoc.desktop.dialogs import APP_HINTS, describe

    assert not [hint for _, _, hint in APP_HINTS if any(words in hint for words in FOR_PROGRAMMERS)]
    cases = {
        NO_MODEL: "Serve the selected version",
        ApiError(
            "Cannot reach the leafdoc server at http://127.0.0.1:9 (ConnectError).",
            "Check that it is running (`leafdoc serve`) and that the address is right.",
        ): "Server menu",
        ApiError(
            "crop 'rice' is not one this model knows; it knows 'tomato'.",
            "Name one of those (the API's `crop`, `leafdoc predict --crop`; GET /v1/models lists them under `crops`).",
            422,
            "unknown_crop",
        ): "Crop box",
        ApiError(
            "language 'hi' is not one leafdoc answers in; it answers in en, es.",
            "Ask for one of those (the API's `lang`, `leafdoc predict --lang`), or leave it out.",
            422,
            "unknown_language",
        ): "Language box",
        ApiError(
            "the serving model (version 1) refuses field photos (leaves on the plant) as `unlike_training`, ...",
            'say so: `learn_field` on an upload, or the option `"field_dirs": []`.',
            422,
            "invalid_request",
        ): "tick “The photos include field photos",
        ApiError("training job 'x' does not exist.", "GET /v1/training-jobs lists them.", 404, "not_found"): "",
    }
    for error, words in cases.items():
        text, hint = describe(error)
        assert error.message[1:30] in text  # what went wrong, as the server said it
        assert (words in hint) if words else hint == "", (error.message, hint)
        assert not [w for w in FOR_PROGRAMMERS if w in hint], hint
    people = ApiError("the server is busy.", "It may be busy (training?); try again in a moment.", 503, "busy")
    assert describe(people)[1] == "It may be busy (training?); try again in a moment."


def test_the_versions_table_says_each_promotion_in_a_few_words_and_the_card_says_it_whole():
    """The Notes column held the promotion rule's whole paragraph (the web page's table had the same trouble): now
    the page's few words, and the whole reason above the chosen version's card."""
    from tests.unit.test_ui_admin_words import WORSE

    from leafdoc.desktop.versions import version_cells
    from leafdoc.words.serving_change import promotion_details

    kept = {"version": 2, "status": "rejected", "serving": False, "labels": ["a"], "card": {}, "promotion": WORSE}
    assert version_cells(kept)[-1] == "kept as candidate: worse on 12 test photos"
    assert "McNemar" in promotion_details(kept) and "McNemar" not in version_cells(kept)[-1]
