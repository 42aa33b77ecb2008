"""A training run, from a dataset version to a scored model folder: train -> export -> score -> calibrate -> card.

`leafdoc train` (cli/main.py), the service's training job (service/training.py) and the experiment runner
(experiments/runner.py) all call these two functions; what differs between them is only how they report
progress and what they do with the folder afterwards.

    prepare(workspace, dataset, cfg)      the version's photos, split and cached as arrays (train/train_data.py)
    train_model(cfg, data, out)           train and export (train/trainer.py), then, with ONNX Runtime:
        score the test and validation splits ONCE each (evaluate/score.py),
        the abstention threshold from the validation pass's probabilities (inference/abstain.py),
        the not-a-leaf check (inference/ood.py) calibrated on the same pass's features,
        with `field_dirs` (unset: the field photos the warm start carries), the unlike-training check
        (inference/field.py, as `leafdoc calibrate --field`),
        the card's figures from those passes,
        the monitoring baseline (inference/baseline.py: the answers on the validation photos),
        and the folder written atomically: it exists whole or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from leafdoc.core.atomic import atomic_dir, check_replaceable
from leafdoc.core.errors import ConfigError, LeafdocError, ModelError
from leafdoc.evaluate.score import Scores, score
from leafdoc.inference import otherleaves
from leafdoc.inference.abstain import calibrate_min_confidence
from leafdoc.inference.baseline import baseline_of_pass
from leafdoc.inference.calibrate import fit_field
from leafdoc.inference.ood import fit_model_dir, nonleaf_photos
from leafdoc.inference.predictor import Predictor
from leafdoc.lifecycle.caveats import test_chance_caveat
from leafdoc.lifecycle.workspace import Workspace
from leafdoc.modelfolder import (
    CARD_FILE,
    FIELD_PHOTOS_FILE,
    CardMetrics,
    ModelCard,
    carries_field_photos,
    read_card,
    write_card,
)
from leafdoc.train import card_text
from leafdoc.train.checkpoint import clear as clear_checkpoint
from leafdoc.train.config import TrainConfig
from leafdoc.train.events import Calibrating, Evaluating, OnEvent
from leafdoc.train.train_data import TrainData, prepare_data
from leafdoc.train.trainer import test_learnt
from leafdoc.train.trainer import train as train_and_export


@dataclass
class TrainedModel:
    """A model folder just written, its card, and the one scoring pass over each held-out split."""

    folder: Path
    card: ModelCard
    test: Scores
    val: Scores
    data: TrainData

    @property
    def test_shas(self) -> list[str]:
        return [self.data.shas[i] for i in self.data.indices("test")]


def prepare(
    ws: Workspace,
    dataset: str,
    cfg: TrainConfig,
    version: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    train_only: frozenset[str] = frozenset(),
    seen: frozenset[str] = frozenset(),
) -> TrainData:
    """The dataset version's photos split by class (near-duplicates together) and decoded once into the cache;
    `train_only` sha256s go to training whole (see prepare_data)."""
    return prepare_data(
        ws.catalog, ws.store, ws.cache_dir, dataset, cfg, version, progress=progress, train_only=train_only, seen=seen
    )


def train_model(
    cfg: TrainConfig,
    data: TrainData,
    out: Path,
    *,
    on_event: OnEvent | None = None,
    init_from: Path | None = None,
    parent_version: str | None = None,
    provenance: str | None = None,
    checkpoint_dir: Path | None = None,
    originals: Callable[[str], bytes] | None = None,
    finish: bool = False,
) -> TrainedModel:
    """Train, export, score, calibrate; write the model folder `out` atomically (it replaces an older one only
    once complete). With `checkpoint_dir` a run stopped part-way continues from its last epoch; the
    checkpoint is deleted once the folder is written. `originals` (a store's `get`) gives a photo's bytes by
    sha256: the monitoring baseline then counts the photo-quality abstentions of the validation photos as sent
    (without it, none)."""
    out = Path(out)
    check_replaceable(out, CARD_FILE)  # a lab's photo folder given as --out is refused, not replaced by the model
    for folder in cfg.field_dirs or []:  # before training, not after it
        if not Path(folder).is_dir():
            raise ConfigError(
                f"{folder}: no such folder of field photos for the unlike-training check.",
                hint="Pass folders that exist, or none (field_dirs: []) for a model without that check.",
            )
    field = field_sources(cfg, init_from)
    with atomic_dir(out) as tmp:
        # unseen_val (train_on_val): the validation photos as answered before the model learnt them
        card, unseen_val = train_and_export(
            cfg,
            data,
            tmp,
            on_event=on_event,
            init_from=init_from,
            parent_version=parent_version,
            provenance=provenance,
            checkpoint_dir=checkpoint_dir,
            finish=finish,
        )
        te, va, tr = data.indices("test"), data.indices("val"), data.indices("train")
        if on_event:
            on_event(Evaluating(len(te)))
        # With the serving path (ONNX Runtime), on images training never saw: one pass per split.
        predictor = Predictor(tmp)
        test = score(predictor, data.images[te], data.y[te], data.classes)
        # Validation's probabilities (abstention) and features (the not-a-leaf check) from the same pass.
        val = score(predictor, data.images[va], data.y[va], data.classes, features=True)
        card.metrics = CardMetrics(test=test.card_test(), val=val.summary())
        # The limitations as the data and the test split show them (the classes found least often on it).
        card.limitations = card_text.data_limitations(
            card_text.photos_per_class(data.classes, data.y),
            test.metrics["per_class"],
            test_learnt=test_learnt(card),
            n_test=len(te),
        )
        # What `leafdoc train` warns of a test split too small to tell the model from chance, or a model no better
        # than chance, first: the card is what `models show`, the page and the desktop app read, long after the run.
        if chance := test_chance_caveat(card.test_metrics, len(data.classes), cfg.test_fraction):
            card.limitations = chance[:1].upper() + chance[1:] + "\n" + card.limitations
        # A model that learnt the validation photos (train_on_val) is too sure of them: the threshold comes from the
        # answers of the head trained before it learnt them.
        probs, y = unseen_val if unseen_val is not None else (val.probs, val.y)
        card.abstain = calibrate_min_confidence(probs, y, cfg.abstain_target_coverage)
        if unseen_val is not None:
            card.abstain["rule"] += (
                " (as answered by the head trained on the training photos alone, before it learnt them)"
            )
        # The not-a-leaf check: fitted on the training split, calibrated on validation (+ non-leaf photos).
        if on_event:
            on_event(Calibrating(list(cfg.nonleaf_dirs), field))
        nonleaf = nonleaf_photos(cfg.nonleaf_dirs, predictor)
        # The training photos' features, once: the not-a-leaf check and the other-leaves check both learn from them.
        train_features = None
        if "features" in predictor.output_names:
            train_features = predictor.predict_arrays(data.images[tr], ["features"])["features"]
        ood = fit_model_dir(
            tmp,
            predictor,
            (data.images[tr], data.y[tr]),
            data.images[va],
            nonleaf,
            cfg.ood_target,
            val_features=val.features,
            train_features=train_features,
        )
        if ood:
            card.ood = ood
        # The card stays in memory until the end; the one predictor (one ONNX Runtime session for the run) takes up
        # each check as it is added, under the card as it will read back from card.json.
        predictor = predictor.with_card(as_written(card))
        # The photo-quality findings on each original validation photo, as when serving (without originals: none).
        problems = [quality_problems(predictor, originals, data.shas[i]) for i in va] if originals else None
        if ood and field:  # the unlike-training check, as `leafdoc calibrate --field` fits it
            val_out = {"probabilities": val.probs, "features": val.features}
            poor = [bool(p) for p in problems] if problems else None
            train_x, val_x = data.images[tr], data.images[va]
            budget = field_budget(init_from)
            card.field = fit_field(tmp, predictor, train_x, val_x, field, nonleaf, poor, budget, val_out)
            predictor = predictor.with_card(as_written(card))
        if ood and cfg.other_leaves:  # "one of its classes or another leaf", from leafdoc's bank of other leaves
            card.other_leaves = fit_other_leaves(predictor, data, tr, va, train_features, val.features, cfg.seed)
            predictor = predictor.with_card(as_written(card))
        # What monitoring compares served answers with (card `baseline`): under the final checks.
        card.baseline = validation_baseline(predictor, data, va, val, problems)
        write_card(tmp, card)  # once, complete (train/trainer.py wrote the first one, before scoring)
    if checkpoint_dir:
        clear_checkpoint(checkpoint_dir)
    return TrainedModel(out, card, test, val, data)


OTHER_LEAVES_PER_CLASS = 300  # training photos a class the check learns from at most (a lab has a few dozen)


def fit_other_leaves(
    predictor: Predictor, data: TrainData, tr, va, train_features: np.ndarray, val_features: np.ndarray, seed: int
) -> dict:
    """The card's `other_leaves` section (inference/otherleaves.py): fitted on the features of the training photos
    (`train_features`, in the order of `tr`; at most OTHER_LEAVES_PER_CLASS a class) and of the validation photos,
    unless the bank does not apply to this model (then why not)."""
    bank, refused, prep, probe = otherleaves.model_bank(predictor)
    if refused is not None:
        return refused
    rng = np.random.default_rng(seed)
    train_y = data.y[np.asarray(tr)]
    picked = np.concatenate(
        [rng.permutation(np.flatnonzero(train_y == c))[:OTHER_LEAVES_PER_CLASS] for c in np.unique(train_y)]
    )
    features = np.r_[train_features[picked], val_features]
    y = np.r_[train_y[picked], data.y[np.asarray(va)]]
    ood_scores_of = predictor.ood.scores_of if predictor.ood is not None else None  # which word a refusal gets
    return otherleaves.fit(features, y, predictor.labels, prep, probe, bank, ood_scores_of)


def as_written(card: ModelCard) -> ModelCard:
    """The card as it reads back from card.json (write_card then read_card), without the disk."""
    return ModelCard.from_dict(json.loads(json.dumps(card.to_dict(), default=str)))


def field_sources(cfg: TrainConfig, init_from: Path | None) -> list[str]:
    """Where the unlike-training check's field photos come from: `field_dirs` when set ([]: no check); unset,
    the photos the model warm-started from carries (its field_photos.zip), if it has the check."""
    if cfg.field_dirs is not None:
        return list(cfg.field_dirs)
    if init_from is not None and carries_field_photos(init_from):
        return [str(Path(init_from) / FIELD_PHOTOS_FILE)]
    return []


def field_budget(init_from: Path | None) -> float | None:
    """The share of leaf photos the unlike-training check may refuse, as the model warm-started from had it (an
    admin's choice: `leafdoc calibrate --field-budget`); None (the default) when it has no such check."""
    if init_from is None:
        return None
    return (read_card(Path(init_from)).field or {}).get("budget")


def validation_baseline(
    predictor: Predictor, data: TrainData, va, val: Scores, problems: list[tuple] | None
) -> dict | None:
    """From the validation pass already made (no second one), under the card's final abstention threshold and
    checks (`predictor` read from the folder once they are in its card); `problems`: the photo-quality findings on
    each original photo, as when serving (None: none). None when it cannot be made: the model then serves without
    drift checks (monitoring says so), rather than the whole run failing over it."""
    try:
        return baseline_of_pass(predictor, val.probs, val.features, data.images[va], problems)
    except ModelError:
        return None


def quality_problems(predictor: Predictor, originals: Callable[[str], bytes], sha: str) -> tuple:
    try:
        return predictor.load(originals(sha)).problems  # decoded and checked only: not through the model
    except LeafdocError:
        return ()
