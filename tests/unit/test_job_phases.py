"""The web page and the desktop app word a training job's phase the same way (leafdoc/jobwords.py)."""

from __future__ import annotations

import html
import os
from types import SimpleNamespace

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # the desktop jobs view, shown without a screen

import pytest  # noqa: E402

from leafdoc.ui.text import job_summary  # noqa: E402
from leafdoc.words.job_phases import PHASES  # noqa: E402

pytestmark = pytest.mark.unit

RUNNING = {"id": "0123456789abcdef", "state": "running", "dataset": "pv", "epoch": 1, "epochs": 4}


@pytest.mark.parametrize(
    ("phase", "words"),
    [
        *PHASES.items(),
        ("fine_tune", "fine-tuning the backbone"),
        ("evaluating on the test split", "evaluating on the test split"),  # the service's own words, as they are
        ("some_new_phase", "some new phase"),
    ],
)
def test_the_page_and_the_app_say_the_same_words_for_a_phase(phase, words):
    pytest.importorskip("PySide6")
    from leafdoc.desktop.jobs import job_progress

    job = {**RUNNING, "progress": {"phase": phase}}
    assert f"Epoch **1 / 4** · {words}" in job_summary(job)
    assert job_progress(job) == (25, f"{words} — 1 of 4 epochs done")


MADE = {
    "variant": "int8",
    "made": True,
    "file": "model.int8.onnx",
    "seconds": 3.2,
    "validation_vs_fp32": {"n": 663, "top1_agreement": 0.991, "max_abs_prob_diff": 0.3512, "mean_abs_prob_diff": 0.002},
}
NOT_MADE = {
    "variant": "int8",
    "made": False,
    "file": None,
    "seconds": 0.4,
    "warning": "the int8 copy could not be made (x)",
}


@pytest.mark.parametrize(
    ("copy", "said", "in_table"),
    [
        (
            MADE,
            "Served as model.int8.onnx: same top-1 as model.onnx on 99.1% of 663 validation photos, "
            "probabilities within 0.3512.",
            "int8 copy: same top-1 as model.onnx on 99.1% of 663 validation photos.",
        ),
        (NOT_MADE, "Warning: the int8 copy could not be made (x).", "No int8 copy: served with model.onnx."),
    ],
)
def test_the_page_and_the_app_say_how_the_served_copy_agrees_or_why_there_is_none(copy, said, in_table):
    """Before an admin promotes: the job's detail and the models table say it (the desktop app uses the same words)."""
    from leafdoc.words.job_phases import serving_copy_words
    from leafdoc.words.serving_change import promotion_details

    promotion = {"promote": False, "promoted": False, "reason": "candidate accuracy 0.5 is worse", "serving_copy": copy}
    job = {**RUNNING, "state": "succeeded", "candidate_version": 2, "promotion": promotion}
    assert serving_copy_words(promotion) == said
    assert said in job_summary(job).replace("\\", "")
    details = promotion_details({"version": 2, "status": "candidate", "promotion": promotion})
    assert said in details.replace("\\", "")  # under the models table, for the chosen version
    assert serving_copy_words(promotion, short=True) == in_table  # the desktop app's table
    assert serving_copy_words({"reason": "no copy asked (fp32)"}) is None


def test_a_finished_job_still_says_how_its_photos_were_split():
    from leafdoc.words.job_phases import split_words

    split = {"train": 1240, "val": 215, "test": 214}
    done = {**RUNNING, "state": "succeeded", "progress": {"phase": "done", "split": split}}
    said = "Photos: 1,240 for training, 215 for validation, 214 for test"
    assert split_words(done["progress"]) == said and said in job_summary(done)
    assert split_words({"phase": "preparing data"}) is None and "Photos:" not in job_summary(RUNNING)


def test_a_finished_job_says_whether_its_new_version_refuses_field_photos():
    """A retrain keeps the unlike-training check (refitted with the photos the serving model carries), or drops it
    when told the uploads teach field photos: the job says which, with what the check was fitted on."""
    from leafdoc.modelfolder import ModelCard
    from leafdoc.service.training import field_check_summary
    from leafdoc.words.job_phases import field_check_words

    carried = "94 field photos carried by the model folder it started from (field_photos.zip)"
    card = ModelCard.from_dict({"field": {"sources": [carried], "field_refused": 0.97, "field_refused_cv": 0.9894}})
    kept = {"phase": "done", "field_check": field_check_summary(card)}
    said = field_check_words(kept)
    assert said.startswith("Field photos (leaves on the plant): the new version refuses them")
    assert carried in said and said.endswith("99% of them refused.")
    assert said in job_summary({**RUNNING, "state": "succeeded", "progress": kept}).replace("\\", "")
    learnt = {"phase": "done", "field_check": field_check_summary(ModelCard.from_dict({}))}
    assert field_check_words(learnt) == (
        "Field photos (leaves on the plant): the new version answers them; it has no unlike-training check."
    )
    assert field_check_words({"phase": "training"}) is None and "Field photos" not in job_summary(RUNNING)


def test_a_version_the_rule_kept_out_reads_not_promoted_on_page_and_desktop():
    from leafdoc.words.job_phases import version_status_words

    assert version_status_words({"status": "rejected", "serving": False}) == "not promoted"
    assert version_status_words({"status": "serving", "serving": True}) == "serving"
    assert version_status_words({"status": "archived", "serving": False}) == "archived"


# A card's `other_leaves` section (inference/otherleaves.py fit), fitted; and one of a model it does not apply to.
FITTED = {
    "format": 1,
    "fitted": True,
    "bank": "plantvillage-lite0-224",
    "bank_source": "PlantVillage (30 photos of each of 30 classes)",
    "bank_classes": 30,
    "bank_photos": 900,
    "left_out": {f"Tomato___{c}": "named like your class" for c in ("Early_blight", "Late_blight", "healthy")},
    "rule": "refuse a photo whose P(other leaf) is above the threshold",
    "threshold": 0.8734,
    "own_answered_out_of_fold": 0.95,
    "bank_refused_out_of_fold": 0.812,
    "bias": -1.0,
    "weights": [0.0] * 1280,
}
NOT_FITTED = {"format": 1, "fitted": False, "why_not": "the model's features are not the bank's"}


def test_a_finished_jobs_progress_carries_its_other_leaves_check_without_the_weights():
    """`progress.other_leaves` of a finished job (service/training.py): the card's section less its 1,280 weights,
    bias and rule, the left-out bank classes by name; said as `leafdoc train` says the card's section, on the page;
    a card without the section: no `other_leaves` in the progress, nothing said."""
    from leafdoc.modelfolder import ModelCard
    from leafdoc.service.training import done_progress, other_leaves_summary
    from leafdoc.words.job_phases import other_leaves_words

    split = {"train": 30, "val": 6, "test": 6}
    card = ModelCard.from_dict({"other_leaves": FITTED})
    summary = other_leaves_summary(card)
    assert summary == {
        "fitted": True,
        "bank": "plantvillage-lite0-224",
        "bank_classes": 30,
        "left_out": ["Tomato___Early_blight", "Tomato___Late_blight", "Tomato___healthy"],
        "threshold": 0.8734,
        "own_answered_out_of_fold": 0.95,
        "bank_refused_out_of_fold": 0.812,
    }
    assert "weights" not in summary and "bias" not in summary and len(repr(summary)) < 400
    progress = done_progress(card, split)
    assert progress == {"phase": "done", "split": split, "field_check": {"refuses": False}, "other_leaves": summary}
    said = other_leaves_words(summary)
    assert said == other_leaves_words(FITTED)  # the job says what `leafdoc train` printed for the card
    assert "3 left out as this model's own (Tomato___Early_blight, Tomato___Late_blight, Tomato___healthy)" in said
    assert said in job_summary({**RUNNING, "state": "succeeded", "progress": progress}).replace("\\", "")

    refused = other_leaves_summary(ModelCard.from_dict({"other_leaves": NOT_FITTED}))
    assert refused == {"fitted": False, "why_not": "the model's features are not the bank's"}
    none = other_leaves_words(refused)
    assert none == other_leaves_words(NOT_FITTED) and none.startswith("Other leaves: no check (the model's features")
    page = job_summary({**RUNNING, "state": "succeeded", "progress": {"phase": "done", "other_leaves": refused}})
    assert none in page.replace("\\", "")
    too_few = {**NOT_FITTED, "why_not": "27 of the bank's 30 classes are its own", "left_out": FITTED["left_out"]}
    assert other_leaves_summary(ModelCard.from_dict({"other_leaves": too_few}))["left_out"] == summary["left_out"]

    plain = ModelCard.from_dict({})  # the starter, a model from before the check, --no-other-leaves
    assert other_leaves_summary(plain) is None and "other_leaves" not in done_progress(plain, split)
    assert "Other leaves" not in job_summary({**RUNNING, "state": "succeeded", "progress": done_progress(plain, split)})
    assert "Other leaves" not in job_summary(RUNNING)


@pytest.mark.parametrize(
    ("section", "said"),
    [
        (FITTED, "Other leaves: refuses a leaf more like leafdoc's bank of other leaves (plantvillage-lite0-224: 27"),
        (NOT_FITTED, "Other leaves: no check (the model's features are not the bank's), so a leaf of another crop"),
        (None, None),
    ],
)
def test_the_desktop_jobs_view_says_a_finished_jobs_other_leaves_check_as_the_page_does(section, said):
    """The Retrain tab's job box (desktop/jobs.py) under a succeeded job: the same words as the page, from the
    job's `progress.other_leaves`, beside the field-photo sentence; none for a job without it."""
    pytest.importorskip("PySide6", reason="the [desktop] extra (PySide6) is not installed")
    from PySide6.QtWidgets import QApplication

    from leafdoc.desktop.jobs import TrainingBox
    from leafdoc.modelfolder import ModelCard
    from leafdoc.service.training import done_progress
    from leafdoc.words.job_phases import other_leaves_words

    app = QApplication.instance() or QApplication([])
    window = SimpleNamespace(session=None, tasks=None, model_changed=lambda: None)
    box = TrainingBox(window, dataset=lambda: None)
    card = ModelCard.from_dict({"other_leaves": section} if section else {})
    job = {
        **RUNNING,
        "state": "succeeded",
        "epoch": 4,
        "candidate_version": 2,
        "promotion": {"promoted": True, "reason": "candidate accuracy 0.95 >= serving 0.9"},
        "metrics": {"test": {"accuracy": 0.95}},
        "progress": done_progress(card, {"train": 30, "val": 6, "test": 6}),
    }
    box._show_job(job)
    text = box.job_label.text()
    assert "the new version answers them; it has no unlike-training check" in text
    words = other_leaves_words(job["progress"].get("other_leaves"))
    if said is None:
        assert words is None and "Other leaves" not in text
    else:
        assert words.startswith(said) and html.escape(words, quote=False) in text
    box.deleteLater()
    app.processEvents()


def test_a_models_other_leaves_check_is_said_with_its_bank_what_was_left_out_and_its_threshold():
    """The card's `other_leaves` (inference/otherleaves.py), as `leafdoc train` and `leafdoc calibrate` print it: the
    bank, how many of its classes were left out as the lab's own (named), the threshold and the out-of-fold shares;
    a section of `fitted: false` says why there is no check; no section, nothing."""
    from leafdoc.words.job_phases import other_leaves_words

    section = FITTED
    said = other_leaves_words(section)
    assert "plantvillage-lite0-224: 27 of its 30 classes" in said and "3 left out as this model's own" in said
    assert "Tomato___Late_blight" in said and "above 0.873" in said and "unknown_leaf" in said
    assert "answers 95.0% of this model's own photos and refuses 81.2% of the bank's" in said
    many = {**section, "left_out": {f"Apple___{i}": "looks like your classes" for i in range(6)}}
    assert "6 left out" in other_leaves_words(many) and "and 2 more" in other_leaves_words(many)
    none = other_leaves_words({"format": 1, "fitted": False, "why_not": "the model's features are not the bank's"})
    assert none.startswith("Other leaves: no check (the model's features are not the bank's)")
    assert other_leaves_words(None) is None and other_leaves_words({}) is None
