"""The promotion rule: should a freshly trained candidate replace the serving model?

Both are scored on the same labelled images with the serving path, on `settings.promote_metric` with
`settings.promote_margin`; the decision, with both figures and the rule in words, is kept in the candidate's
registry row. The images are the candidate's test split less every photo the serving model trained on or was
validated on (its split.json, by sha256): after an upload the new dataset version's split is drawn again, so its
test photos include some the serving model learnt, and it scores near 1.0 on those (training accuracy), which
would keep a better candidate out. When that leaves fewer than MIN_FAIR_IMAGES photos, the figures are too noisy
to replace a model automatically, unless the candidate is plainly better on them: right on more of the photos the
two models disagree on than chance allows (McNemar's exact test, p < CLEAR_P). Otherwise the candidate is kept
back and an admin can promote it by hand. Every decision records that paired count. A serving model
without split.json (older folders, `--weights` imports) is compared on the whole test split, and the decision
says so.

Besides `reason` (the rule in words, as people read it), a decision says why the candidate is kept back as codes, for
whatever says it shorter (words/serving_change.promotion_verdict, the models tables): `held_back`, a list of the codes
of words/serving_change.HELD_BACK in the order the reason says them ([] when promoted), and with "forgets"
`lost_classes` of the serving model's `known_classes`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from leafdoc.core.errors import ModelError
from leafdoc.evaluate.score import Scores, score
from leafdoc.evaluate.significance import mcnemar
from leafdoc.imaging.photos import sha256_bytes
from leafdoc.inference.predictor import Predictor
from leafdoc.model_versions import LOWER_IS_BETTER, check_promote_metric
from leafdoc.modelfolder import SPLIT_FILE, read_labels, read_split
from leafdoc.words.serving_change import (
    FORGETS,
    LOST_CLASSES,
    MIN_FAIR_IMAGES,
    NO_TEST_PHOTOS,
    TOO_FEW,
    WORSE,
    some_named,
)

# MIN_FAIR_IMAGES: test photos left (the serving model's own left out) to promote automatically; in words/ so that the
# desktop app's "too few to tell two models apart" says the same number.
CLEAR_P = 0.05  # ... or fewer, when McNemar's test on them says the candidate is better beyond chance


def _probs_in(labels: list[str], probs: np.ndarray, union: list[str]) -> np.ndarray:
    out = np.zeros((len(probs), len(union)), dtype=np.float64)
    index = {lab: i for i, lab in enumerate(union)}
    for j, lab in enumerate(labels):
        out[:, index[lab]] = probs[:, j]
    return out


def score_models(model_dirs: list[Path], images: list[bytes], labels: list[str], max_pixels: int) -> list[Scores]:
    """Evaluate each model folder on the same labelled images with the serving path (ONNX Runtime), one
    pass each, with every model's probabilities over the union of the labels (a label a model does not know
    counts as wrong for it)."""
    predictors = [Predictor(d, max_pixels=max_pixels) for d in model_dirs]
    union = sorted(set(labels).union(*(p.labels for p in predictors)))
    index = {lab: i for i, lab in enumerate(union)}
    y = np.array([index[lab] for lab in labels], dtype=np.int64)
    out = []
    for p in predictors:
        x = np.stack([p.preprocess(b, f"test image {i}") for i, b in enumerate(images)])
        own = score(p, x, np.zeros(len(x), dtype=np.int64))  # the pass; its labels mapped into the union below
        out.append(Scores(union, y, _probs_in(p.labels, own.probs, union)))
    return out


def trained_on(model_dir: Path) -> frozenset[str] | None:
    """The sha256s of the photos a model folder's split.json puts in train or val (an experiment's training-only
    extras are listed under train: prepare_data assigns them there); None when the split is unknown (no
    split.json, or one that cannot be read)."""
    if not (Path(model_dir) / SPLIT_FILE).is_file():
        return None
    try:
        split = read_split(model_dir)
    except ModelError:
        return None
    return frozenset(split.get("train", [])) | frozenset(split.get("val", []))


def promotion_decision(
    candidate_dir: Path,
    serving_dir: Path | None,
    serving_version: int | None,
    images: list[bytes],
    labels: list[str],
    *,
    metric: str,
    margin: float,
    max_pixels: int,
    candidate: Scores | None = None,
) -> dict:
    """Should the candidate replace the serving model? Both are scored on the same images: `images` (the
    candidate's test split) less those the serving model trained on. `candidate`: the pass that scored the
    candidate on `images` (in that order) after training; its rows for the images kept give its figures, and
    only the serving model predicts here (the figures are the same either way: a label only the serving model
    knows is one the candidate never predicts)."""
    check_promote_metric(metric)
    lower = metric in LOWER_IS_BETTER
    rule = f"candidate {metric} {'<=' if lower else '>='} serving {metric} {'+' if lower else '-'} {margin}"
    base = {
        "metric": metric,
        "margin": margin,
        "rule": rule,
        "n_images": len(labels),
        "serving_version": serving_version,
    }
    if serving_dir is None:
        cand = candidate.summary() if candidate is not None else {}
        if candidate is None and labels:
            cand = score_models([candidate_dir], images, labels, max_pixels)[0].summary()
        return {
            **base,
            "candidate": cand.get(metric),
            "serving": None,
            "promote": True,
            "held_back": [],
            "reason": "no model was serving",
        }

    seen = trained_on(serving_dir)
    keep = [i for i, b in enumerate(images) if seen is None or sha256_bytes(b) not in seen]
    left_out = None if seen is None else len(images) - len(keep)
    base.update(n_images=len(keep), n_test_images=len(labels), n_left_out=left_out)
    if seen is None:
        where = f"on all {len(keep)} test images (the serving model's split is unknown: none left out)"
    elif left_out:
        where = f"on {len(keep)} test images ({left_out} left out: the serving model trained on them)"
    else:
        where = f"on {len(keep)} test images (none left out: the serving model trained on none of them)"
    if not keep:
        why = "no evaluation images"
        if labels:
            why = (
                f"no test image is left to compare on: the serving model trained on all {left_out}; "
                "an admin can promote it by hand"
            )
        return {
            **base,
            "candidate": None,
            "serving": None,
            "promote": False,
            "held_back": [NO_TEST_PHOTOS],
            "reason": why,
        }

    kept_images, kept_labels = [images[i] for i in keep], [labels[i] for i in keep]
    if candidate is not None:
        rows = np.asarray(keep, dtype=np.int64)
        cand_scores = Scores(candidate.labels, candidate.y[rows], candidate.probs[rows])
        (serv_scores,) = score_models([serving_dir], kept_images, kept_labels, max_pixels)
    else:
        cand_scores, serv_scores = score_models([candidate_dir, serving_dir], kept_images, kept_labels, max_pixels)
    c, sv = float(cand_scores.summary()[metric]), float(serv_scores.summary()[metric])
    paired = paired_outcomes(cand_scores.correct, serv_scores.correct)
    ok = c <= sv + margin if lower else c >= sv - margin
    verdict = "at least as good as" if ok else "worse than"
    reason = (
        f"candidate {metric} {c:.4f} is {verdict} serving v{serving_version} {sv:.4f} (margin {margin}) {where}; "
        f"{paired_text(paired)}"
    )
    clearly_better = paired["candidate_only"] > paired["serving_only"] and paired["p"] < CLEAR_P
    too_few = bool(left_out) and len(keep) < MIN_FAIR_IMAGES
    held_back = [] if ok else [WORSE]
    if ok and too_few and clearly_better:
        reason += f"; fewer than {MIN_FAIR_IMAGES} test images are left, but the candidate is better beyond chance"
    elif ok and too_few:
        reason += (
            f"; fewer than {MIN_FAIR_IMAGES} test images are left and they do not show the candidate better beyond "
            "chance: too few to replace the serving model automatically, an admin can promote it by hand"
        )
        held_back.append(TOO_FEW)
    lost, known = classes_lost(candidate_dir, serving_dir)
    counts = {}
    if lost:
        reason += f"; {forgotten_words(lost, known)}"
        held_back.append(FORGETS)
        counts = {"lost_classes": len(lost), "known_classes": known}
    return {
        **base,
        "candidate": c,
        "serving": sv,
        "paired": paired,
        "promote": not held_back,
        "held_back": held_back,
        **counts,
        "reason": reason,
    }


def classes_lost(candidate_dir: Path, serving_dir: Path) -> tuple[list[str], int]:
    """The serving model's classes the candidate does not know, in the serving model's order, and how many classes
    the serving model knows."""
    theirs, ours = read_labels(serving_dir), set(read_labels(candidate_dir))
    return [label for label in theirs if label not in ours], len(theirs)


def forgotten_words(lost: list[str], known: int) -> str:
    """The reason's words for a candidate that does not know `lost`, of the serving model's `known` classes."""
    return (
        f"it {LOST_CLASSES.format(lost=len(lost), known=known)} ({some_named(lost)}): served, it "
        "would answer those leaves as something else, so it is not promoted automatically; an admin can promote it by "
        "hand"
    )


def forgotten(candidate_dir: Path, serving_dir: Path) -> str | None:
    """Why the candidate must not replace the serving model unasked when it does not know every class the serving
    model knows, else None: a potato model trained from the page replaced a tomato one automatically ("at least as
    good ... on 6 test images", all of them potato), and tomato leaves were then answered as potato."""
    lost, known = classes_lost(candidate_dir, serving_dir)
    return forgotten_words(lost, known) if lost else None


def paired_outcomes(candidate_right: np.ndarray, serving_right: np.ndarray) -> dict:
    """The photos only one of the two models names rightly (top-1), and McNemar's exact two-sided p of that
    split under "equally good"."""
    test = mcnemar(
        "".join("1" if r else "0" for r in candidate_right), "".join("1" if r else "0" for r in serving_right)
    )
    return {"candidate_only": test["only_a"], "serving_only": test["only_b"], "p": round(test["p"], 6)}


def paired_text(paired: dict) -> str:
    return (
        f"on the same photos the candidate alone is right on {paired['candidate_only']}, the serving model alone on "
        f"{paired['serving_only']} (McNemar p = {paired['p']:.2g})"
    )
