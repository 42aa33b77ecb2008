"""How a training job's phase is said to people: one wording, shown by the web page (ui/text.py) and the
desktop app (desktop/jobs.py, desktop/versions.py), so both say the same; nothing here imports Gradio or Qt.

A job's `progress.phase` (service/training.py) is either the trainer's name for a phase (below) or already
words ("preparing data", "evaluating on the test split", "queued again after attempt 1 of 3, ...")."""

from __future__ import annotations

# The choice a retraining makes when the serving model refuses field photos (service/training.py
# `keeps_field_check`): ticked, the job's `field_dirs` is [] and the new version learns to answer them.
LEARN_FIELD_LABEL = "The photos include field photos: learn to answer them"
LEARN_FIELD_INFO = (
    "Photos of leaves on the plant. Ticked, the new version answers such photos instead of asking for a leaf on "
    "a plain sheet. Unticked, it keeps refusing them, refitting that check with the field photos the serving model "
    "carries (or LEAFDOC_FIELD_DIRS)."
)

# The retraining's epoch boxes left empty (service/training.base_options): the serving model's recipe, or for photos
# lacking some of its classes, a lab's first model's (`leafdoc train`'s defaults).
AUTO_EPOCHS = "automatic"
AUTO_EPOCHS_RULE = (
    "as the serving model was trained; for photos that lack some of its classes (a lab's own), as a lab's first "
    "model is trained: 200 head epochs, no fine-tuning, so that it learns to refuse other crops' leaves"
)

# The trainer's phases (train/trainer.py), in words.
PHASES = {"scratch": "training", "head": "training the new head", "fine_tune": "fine-tuning the backbone"}


def phase_words(phase: str | None) -> str | None:
    """The words for a job's `progress.phase`; None when the job reports none."""
    if not phase:
        return None
    return PHASES.get(phase, phase.replace("_", " "))


def serving_copy_words(promotion: dict | None, short: bool = False) -> str | None:
    """What a job's `promotion.serving_copy` (service/training.py) says of the int8/fp16 copy the service will
    serve: its agreement with model.onnx on the validation photos, or why it was not made; None without one.
    `short`: for a table cell."""
    copy = (promotion or {}).get("serving_copy")
    if not copy:
        return None
    variant = copy.get("variant") or "the"
    if not copy.get("made"):
        if short:
            return f"No {variant} copy: served with model.onnx."
        return f"Warning: {copy.get('warning') or 'no copy was made for serving'}."
    check = copy.get("validation_vs_fp32") or {}
    agree, n = f"{check.get('top1_agreement', 0):.1%}", check.get("n", 0)
    if short:
        return f"{variant} copy: same top-1 as model.onnx on {agree} of {n} validation photos."
    return (
        f"Served as {copy['file']}: same top-1 as model.onnx on {agree} of {n} validation photos, "
        f"probabilities within {check.get('max_abs_prob_diff', 0):.4f}."
    )


def split_words(progress: dict | None) -> str | None:
    """How many of the job's photos went to training, validation and test (`progress.split`, kept from the
    moment the data is split to the end of the job); None before then."""
    split = (progress or {}).get("split")
    if not split:
        return None
    parts = (("train", "training"), ("val", "validation"), ("test", "test"))
    return "Photos: " + ", ".join(f"{split.get(k, 0):,} for {name}" for k, name in parts)


def field_check_words(progress: dict | None) -> str | None:
    """What a finished job's new version does with field photos (`progress.field_check`, service/training.py):
    refuses them as `unlike_training`, fitted with what, or answers them; None before the job ends."""
    check = (progress or {}).get("field_check")
    if not check:
        return None
    if not check.get("refuses"):
        return "Field photos (leaves on the plant): the new version answers them; it has no unlike-training check."
    sources = "; ".join(check.get("sources") or []) or "field photos"
    refused = check.get("refused")
    share = f", {refused:.0%} of them refused" if isinstance(refused, int | float) else ""
    return f"Field photos (leaves on the plant): the new version refuses them, its check fitted with {sources}{share}."


def other_leaves_words(section: dict | None) -> str | None:
    """What a model's other-leaves check (the card's `other_leaves`, inference/otherleaves.py) does, in a sentence:
    which bank of other leaves it was fitted against, how many of the bank's classes were left out as the lab's own
    (and which), its threshold and what it answers and refuses out of fold; or why the model has none. None for a
    card without the section (the starter, a model from before the check).

    `section`: the card's section (`leafdoc train`, `leafdoc calibrate`), whose `left_out` maps each bank class to
    why, or a finished job's `progress.other_leaves` (service/training.py other_leaves_summary: the same fields
    without the weights, `left_out` as the names alone); both are said the same."""
    if not section:
        return None
    if not section.get("fitted"):
        why = section.get("why_not") or "not fitted"
        return (
            f"Other leaves: no check ({why}), so a leaf of another crop or condition may get one of this model's "
            "answers."
        )
    left_out = section.get("left_out") or ()  # {bank class: why} on the card, [bank class] in a job's progress
    total = section.get("bank_classes")
    bank = f"leafdoc's bank of other leaves ({section.get('bank') or 'unnamed'}"
    if isinstance(total, int):
        bank += f": {total - len(left_out)} of its {total} classes"
    bank += ")"
    if left_out:
        names = sorted(left_out)
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        own = f"{len(left_out)} left out as this model's own ({shown})"
    else:
        own = "none of its classes left out as this model's own"
    said = (
        f"Other leaves: refuses a leaf more like {bank} than like this model's classes as unknown_leaf (P(other "
        f"leaf) above {float(section['threshold']):.3f}); {own}"
    )
    answered, refused = section.get("own_answered_out_of_fold"), section.get("bank_refused_out_of_fold")
    if isinstance(answered, int | float) and isinstance(refused, int | float):
        said += (
            f"; out of fold it answers {answered:.1%} of this model's own photos and refuses {refused:.1%} of the "
            "bank's"
        )
    return said + "."


# The registry's "rejected" is a candidate the promotion rule did not promote: an admin can still promote it.
STATUS_WORDS = {"rejected": "not promoted"}


def version_status_words(m: dict) -> str:
    """A model version's status as the page and the desktop app show it."""
    return "serving" if m.get("serving") else STATUS_WORDS.get(m.get("status", ""), m.get("status", ""))
