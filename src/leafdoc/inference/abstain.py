"""Abstention: answer "not sure" instead of a wrong confident answer.

The softmax threshold is calibrated at training time on the validation split: the largest
threshold that still answers `target_coverage` of validation images. It is stored in card.json.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from leafdoc.advice.lookalikes import could_be_words
from leafdoc.core.i18n import N_, Msg, msg
from leafdoc.imaging.quality import PhotoProblem
from leafdoc.inference.cropfirst import (
    crop_indices,
    crop_mismatch,
    crop_mismatch_words,
    single_label_words,
    within_crop,
)
from leafdoc.inference.fieldcrops import crop_of, knows_in_field, lab_only_words, learnt_crops
from leafdoc.modelfolder import ModelCard
from leafdoc.words.labels import is_healthy, names_crop

DEFAULT_MIN_CONFIDENCE = 0.5  # for model folders whose card has no calibrated threshold


# The "not sure" threshold is never set above this: for a model sure of nearly every validation photo, more than the
# share asked for are then answered (the card's `val_coverage` says how many).
MAX_MIN_CONFIDENCE = 0.95


def calibrate_min_confidence(val_probs: np.ndarray, val_y: np.ndarray, target_coverage: float = 0.99) -> dict:
    conf = val_probs.max(axis=1)
    correct = val_probs.argmax(axis=1) == val_y
    # Abstain on at most (1 - target) of validation images: threshold at that quantile of confidence.
    t = float(np.quantile(conf, 1 - target_coverage, method="lower")) if len(conf) else DEFAULT_MIN_CONFIDENCE
    t = min(t, MAX_MIN_CONFIDENCE)
    answered = conf >= t
    return {
        # Round down: rounding up could lift the threshold above the images it was chosen to answer.
        "min_confidence": math.floor(t * 1e6) / 1e6,
        "rule": f"largest softmax threshold answering >= {target_coverage:.0%} of validation images",
        "val_coverage": round(float(answered.mean()), 4) if len(conf) else None,
        "val_selective_accuracy": round(float(correct[answered].mean()), 4) if answered.any() else None,
        "val_accuracy": round(float(correct.mean()), 4) if len(conf) else None,
    }


def min_confidence(card: ModelCard) -> float:
    return float((card.abstain or {}).get("min_confidence", DEFAULT_MIN_CONFIDENCE))


# ---- the decision at prediction time -----------------------------------------------------------
# One function, checks in order: the photo itself, then "is this a leaf like the training ones", then
# the softmax. Every abstention has a reason code and a message a grower understands.

PHOTO_ADVICE = N_("Take another photo of a single leaf, in daylight, filling most of the frame.")
NOT_A_LEAF = N_(
    "Not sure this is a leaf photo like the ones this model knows: it looks unlike every leaf it was "
    "trained on, so any diagnosis would be a guess. Photograph one leaf, close up, on a plain background."
)
UNLIKE_TRAINING = N_(
    "Not sure: this photo is not like the photos this model learned from, lab photos of one whole leaf on a plain "
    "background. It looks like a leaf photographed in the field (other leaves, soil, hands or sky around it), or "
    "from so close that the leaf runs past the edges, so any diagnosis would be a guess. Pick one leaf, lay it on "
    "a plain background such as a sheet of paper, and take the photo from above so the whole leaf fills most of "
    "the frame."
)

# A lab's own model (a few classes of its own) refuses a leaf that looks more like the other crops and conditions of
# leafdoc's bank of leaves than like its own classes (inference/otherleaves.py).
UNKNOWN_LEAF = N_(
    "Not sure: this leaf does not look like the leaves this model was trained on. It may be another crop, or a "
    "disease or pest this model was not taught, so any diagnosis would be a guess. Check which crops and "
    "conditions this model knows before trusting it on this leaf."
)

POOR_PHOTO = N_("Not usable: {problems}.")  # each problem says "the photo is ...": not "photo" twice
UNSURE = N_("Not sure which disease this is. {could_be} {photo_advice}")
# A healthy leaf among the candidates: "which disease" read as if the leaf were surely sick (the review of session 71:
# a healthy tomato leaf, "which disease... It could be Tomato — Late blight or Strawberry — Leaf scorch").
UNSURE_WHAT = N_("Not sure what this is. {could_be} {photo_advice}")
# Candidates of several crops, and no crop given: naming it narrows the answer to that crop's conditions.
PHOTO_ADVICE_OR_CROP = N_(
    "Take another photo of a single leaf, in daylight, filling most of the frame; or, if you know which crop this "
    "is, say so, and the answer chooses among that crop's conditions only."
)
SEMICOLONS = N_("{names}; {last}")  # the photo's problems: "too dark; blurred"


@dataclass(frozen=True)
class Decision:
    abstained: bool
    reason: str | None = None  # "poor_photo" | "not_a_leaf" | "unlike_training" | "unknown_leaf" | "unsure"
    message: str | None = None
    candidates: tuple[str, ...] = ()
    threshold: float = DEFAULT_MIN_CONFIDENCE
    problems: tuple[str, ...] = ()  # photo problem codes, for poor_photo
    ood_score: float | None = None
    # `message` as words any language can say (i18n.py): what Answer.build renders in the language asked for
    words: Msg | None = dataclasses.field(default=None, compare=False)

    @classmethod
    def refuse(cls, reason: str, words: Msg, threshold: float, **kw) -> Decision:
        return cls(True, reason, str(words), threshold=threshold, words=words, **kw)


def hesitation(probs: np.ndarray, labels: list[str], cover: float = 0.9) -> list[int]:
    """Indices of the 2-3 most likely labels: as many as it takes to cover `cover` of the probability."""
    order = np.argsort(-probs)
    picked, total = [], 0.0
    for i in order[:3]:
        picked.append(int(i))
        total += float(probs[i])
        if len(picked) >= 2 and total >= cover:
            break
    return picked[: max(1, min(3, len(labels)))]


def decide(
    probs: np.ndarray,
    labels: list[str],
    card: ModelCard,
    problems: Sequence[PhotoProblem] = (),
    ood_score: float | None = None,
    field_score: float | None = None,
    field_like: bool = False,
    crop: str | None = None,
    other_score: float | None = None,
) -> Decision:
    """Answer, or abstain with a reason: poor_photo (what to fix), not_a_leaf, unlike_training (a field photo
    to a model of lab photos: how to take one it can read), or unsure (between which).

    `crop` (a label prefix, inference/cropfirst.py): the grower said which crop the leaf is of. The photo checks
    are the same; a field photo is then of that crop, and the confidence rules apply to the probabilities
    renormalised over that crop's labels (a crop of one label: that label only when the model names it unaided; a
    crop the model all but rules out, with another condition: not sure, cropfirst.crop_mismatch).

    `other_score` (a lab's model with an `other_leaves` section, inference/otherleaves.py): P(some other leaf than
    the model's own classes); above the section's threshold the leaf is refused as `unknown_leaf`.

    With a `field` section in the card (inference/field.py), its score decides whether the photo is like
    the training photos, and `field_like` (FieldCheck.field_like) whether a refused one is a field photo or no
    leaf at all; without one, the not-a-leaf score alone does."""
    threshold = min_confidence(card)
    ood_score = None if ood_score is None else round(float(ood_score), 4)
    if problems:
        what = Msg("", (("items", tuple(p.words or p.message for p in problems)),), SEMICOLONS)
        codes = tuple(p.code for p in problems)
        words = msg(POOR_PHOTO, problems=what)
        return Decision.refuse("poor_photo", words, threshold, problems=codes, ood_score=ood_score)
    field = card.field if card.ood else None
    if field and field_score is not None and field_score > float(field["threshold"]):
        top_label = labels[int(np.argmax(probs))] if len(labels) else ""
        if crop is not None:  # the grower's word, not the model's guess, says which crop this field photo is of
            top_label = f"{crop}___"
        if not field_like:
            return Decision.refuse("not_a_leaf", msg(NOT_A_LEAF), threshold, ood_score=ood_score)
        if not knows_in_field(field, top_label):
            learnt = learnt_crops(field)
            words = lab_only_words(top_label, learnt) if learnt else msg(UNLIKE_TRAINING)
            return Decision.refuse("unlike_training", words, threshold, ood_score=ood_score)
        # A field photo of a crop the model learnt from field photos: held to that crop's own threshold.
        threshold = float(field["learnt"]["min_confidence"])
    ood_threshold = None if field and field_score is not None else (card.ood or {}).get("threshold")
    if reason := leaf_refusal(card, ood_score, ood_threshold, other_score):
        words = msg(NOT_A_LEAF) if reason == "not_a_leaf" else msg(UNKNOWN_LEAF)
        return Decision.refuse(reason, words, threshold, ood_score=ood_score)
    probs = np.asarray(probs, dtype=np.float64)
    if crop is not None:
        among = crop_indices(labels, crop)
        if len(among) == 1:  # renormalised, it would always be 100%: answered only if the model names it unaided
            named = int(np.argmax(probs)) == int(among[0]) and float(probs[among[0]]) >= threshold
            if named:
                return Decision(False, threshold=threshold, ood_score=ood_score)
            words = single_label_words(labels[among[0]])
            return Decision.refuse("unsure", words, threshold, ood_score=ood_score)
        if (seen := crop_mismatch(probs, labels, among)) is not None:  # the model all but rules the crop out
            words = crop_mismatch_words(labels[seen], crop)
            return Decision.refuse("unsure", words, threshold, ood_score=ood_score)
        probs = within_crop(probs, among)
    top = float(probs.max()) if probs.size else 0.0
    if top >= threshold:
        return Decision(False, threshold=threshold, ood_score=ood_score)
    names = [labels[i] for i in hesitation(probs, labels)]
    # No confidence figure: a grower reads "Late blight 51%" as an answer (the figures stay in `top_k`).
    return Decision.refuse("unsure", unsure_words(names), threshold, candidates=tuple(names), ood_score=ood_score)


def unsure_words(names: Sequence[str]) -> Msg:
    """ "Not sure" between `names`: "what this is" when one of them is a healthy leaf, "which disease" otherwise; and
    when they are of several crops, that naming the crop narrows the answer (the offline page's words.js `refusal`)."""
    crops = {crop_of(name) for name in names if names_crop(name)}
    advice = PHOTO_ADVICE_OR_CROP if len(crops) > 1 else PHOTO_ADVICE
    opening = UNSURE_WHAT if any(map(is_healthy, names)) else UNSURE
    return msg(opening, could_be=could_be_words(list(names)), photo_advice=msg(advice))


def leaf_refusal(
    card: ModelCard, ood_score: float | None, ood_threshold: float | None, other_score: float | None
) -> str | None:
    """`not_a_leaf`, `unknown_leaf` or None: the not-a-leaf check (above `ood_threshold`) and the other-leaves check
    (the card's `other_leaves`: above its threshold). A photo both refuse is a leaf of another kind when its not-a-leaf
    score is below the section's `no_leaf_from` (most of the bank's other leaves score below it), else no leaf; a card
    without `no_leaf_from` keeps the not-a-leaf check first. The offline page decides the same (checks.js
    leafRefusal)."""
    other = card.other_leaves or {}
    other_refused = other_score is not None and bool(other.get("fitted")) and other_score > float(other["threshold"])
    if ood_score is not None and ood_threshold is not None and ood_score > float(ood_threshold):
        below = other.get("no_leaf_from") is not None and ood_score < float(other["no_leaf_from"])
        return "unknown_leaf" if other_refused and below else "not_a_leaf"
    return "unknown_leaf" if other_refused else None
