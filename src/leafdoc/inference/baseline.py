"""The training baseline monitoring compares served answers with (inference/drift.py): the model's own
answers on its validation photos — how often it abstained and why, the not-a-leaf score's histogram, the
mix of labels it gave. Kept in the model card as `baseline`, so it travels with the model.

`leafdoc calibrate` writes it, and so does every training run (lifecycle/training.py: `leafdoc train`, the
service's retraining jobs, experiments) from the validation pass it already made (baseline_of_pass), with
the photo-quality checks run on the originals where the run has the store. For a model folder
calibrated before it existed: `python -m leafdoc.inference.add_baseline MODEL_DIR DATA_DIR` (the folder of
class folders it was trained on; split.json names the validation photos).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from leafdoc.core.atomic import atomic_write_json
from leafdoc.core.errors import LeafdocError, ModelError
from leafdoc.inference.drift import SCORE_BIN_WIDTH, SCORE_BINS, score_bin
from leafdoc.inference.predictor import Photo, Predictor

BATCH = 64


def ood_threshold(card) -> float | None:
    """The not-a-leaf threshold of a card (a ModelCard, or the card's JSON as a dict)."""
    ood = card.get("ood") if isinstance(card, dict) else card.ood
    t = (ood or {}).get("threshold")
    return float(t) if t else None


def card_baseline(card) -> dict | None:
    """The card's `baseline` section (kept by ModelCard as an extra key), or None."""
    if isinstance(card, dict):
        return card.get("baseline")
    return (card.model_extra or {}).get("baseline")


def baseline_of(predictor: Predictor, paths: list[Path]) -> dict:
    """Answer every photo as the API would and summarise: answers, abstentions by reason, score bins, labels."""
    answers = []
    for start in range(0, len(paths), BATCH):
        photos = []
        for path in paths[start : start + BATCH]:
            try:
                photos.append(predictor.load(path))
            except LeafdocError:
                continue
        if not photos:
            continue
        out = predictor.predict_arrays(np.stack([p.x for p in photos]), predictor.decision_outputs)
        answers += [
            (predictor.decide({k: v[i] for k, v in out.items()}, p), out["probabilities"][i])
            for i, p in enumerate(photos)
        ]
    return summarise(predictor, answers)


def baseline_of_pass(
    predictor: Predictor,
    probs: np.ndarray,
    features: np.ndarray | None,
    images: np.ndarray,
    problems: Sequence[tuple] | None = None,
) -> dict:
    """The same summary from a validation pass already made (a training run's: its probabilities and features
    of `images`), without predicting again; `problems` are the photo-quality findings on each original."""
    answers = []
    for i in range(len(probs)):
        outputs = {"probabilities": probs[i]} | ({"features": features[i]} if features is not None else {})
        photo = Photo(np.asarray(images[i]), tuple(problems[i]) if problems else ())
        answers.append((predictor.decide(outputs, photo), probs[i]))
    return summarise(predictor, answers)


def summarise(predictor: Predictor, answers: list) -> dict:
    """(decision, probabilities) per photo -> the card's `baseline`."""
    threshold = ood_threshold(predictor.card)
    abstentions: Counter = Counter()
    labels: Counter = Counter()
    bins = np.zeros(SCORE_BINS, dtype=int)
    for d, probs in answers:
        if d.abstained:
            abstentions[d.reason or "unknown"] += 1
        else:
            labels[predictor.labels[int(np.argmax(probs))]] += 1
        b = score_bin(d.ood_score, threshold)
        if b is not None:
            bins[b] += 1
    if not answers:
        raise ModelError("no validation photo could be read, so there is no baseline.")
    return {
        "source": "the model's answers on its validation photos",
        "answers": len(answers),
        "abstentions": dict(sorted(abstentions.items())),
        "score_bins": bins.tolist(),
        "score_bin_width": SCORE_BIN_WIDTH,
        "score_threshold": threshold,
        "labels": dict(sorted(labels.items())),
    }


def write_baseline(model_dir: Path, val_paths: list[Path], max_pixels: int | None = None) -> dict:
    model_dir = Path(model_dir)
    predictor = Predictor(model_dir, **({"max_pixels": max_pixels} if max_pixels else {}))
    baseline = baseline_of(predictor, val_paths)
    card = json.loads((model_dir / "card.json").read_text())
    card["baseline"] = baseline
    atomic_write_json(model_dir / "card.json", card)
    return baseline
