"""A training run through lifecycle.training predicts each held-out split once: the card's figures, the
abstention threshold, the not-a-leaf check's calibration and (in a retraining job) the promotion decision all
come from that one pass."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pytest
from service_support import Clients, job_run_here, service_settings

from leafdoc.inference.predictor import Predictor
from leafdoc.words.model_card import card_sections

TINY = {"epochs": 1, "batch_size": 8, "image_size": 32, "alpha": 0.35, "weights": "none"}

pytestmark = pytest.mark.integration


def _row(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x, dtype=np.uint8).tobytes()).hexdigest()


@dataclass
class Passes:
    """Image rows that went through a model, as (model folder name, pixels' hash): `probs` for their
    probabilities, `every` for any output (probabilities, features for the not-a-leaf check, ...). The made-up photo
    a worker answers with a model it has just loaded (service/serving.py, warm_up) is counted apart, in `warm_ups`:
    it is no photo of a split."""

    probs: Counter = field(default_factory=Counter)
    every: Counter = field(default_factory=Counter)
    warm_ups: Counter = field(default_factory=Counter)

    def of(self, row: str) -> int:
        return sum(n for (_, h), n in self.every.items() if h == row)


@pytest.fixture
def passes(monkeypatch):
    from leafdoc.service import serving

    seen, warming = Passes(), threading.local()
    real, real_warm_up = Predictor.predict_arrays, serving.warm_up

    def counting(self, x, outputs=None, **kw):
        rows = [(self.model_dir.name, _row(row)) for row in x]
        if getattr(warming, "now", False):
            seen.warm_ups.update(rows)
            return real(self, x, outputs, **kw)
        seen.every.update(rows)
        if outputs is None or "probabilities" in outputs:
            seen.probs.update(rows)
        return real(self, x, outputs, **kw)

    def warm_up(loaded):
        warming.now = True
        try:
            return real_warm_up(loaded)
        finally:
            warming.now = False

    monkeypatch.setattr(Predictor, "predict_arrays", counting)
    monkeypatch.setattr(serving, "warm_up", warm_up)
    return seen


def test_training_scores_each_test_image_once_and_every_figure_comes_from_that_pass(
    tmp_path, settings, leaf_folder, passes
):
    from leafdoc.data.ingest import ingest
    from leafdoc.lifecycle.training import prepare, train_model
    from leafdoc.lifecycle.workspace import Workspace
    from leafdoc.train.config import TrainConfig

    with Workspace.open(settings) as ws:
        ingest(leaf_folder, ws.catalog, ws.store, "tiny")
        cfg = TrainConfig(**TINY)
        data = prepare(ws, "tiny", cfg)
        trained = train_model(cfg, data, tmp_path / "model")
    te, va = data.indices("test"), data.indices("val")
    test_rows, val_rows = [_row(data.images[i]) for i in te], [_row(data.images[i]) for i in va]
    assert len(set(test_rows)) == len(te) >= 3 and len(set(val_rows)) == len(va) >= 3
    per_image = {r: passes.of(r) for r in test_rows}
    assert set(per_image.values()) == {1}, per_image  # each test image predicted exactly once
    # Each validation image too: its probabilities (abstention) and its features (the not-a-leaf check's
    # calibration) come from one pass.
    per_image = {r: passes.of(r) for r in val_rows}
    assert set(per_image.values()) == {1}, per_image
    assert trained.card.ood and (tmp_path / "model" / "ood.npz").is_file()  # the check was fitted
    # The card's figures and the run's Scores are the same pass; a fresh pass gives the same probabilities.
    assert trained.card.metrics.test == trained.test.card_test() and trained.test.n == len(te)
    # and each class's recall on those photos, for the card's words (its weakest classes), as evaluation counts it
    per_class = trained.card.metrics.test["per_class"]
    right = trained.test.probs.argmax(1) == trained.test.y
    for label, c in per_class.items():
        mine = trained.test.y == data.classes.index(label)
        assert c == {"recall": round(float(right[mine].mean()), 6), "support": int(mine.sum())}, label
    assert sum(c["support"] for c in per_class.values()) == len(te)
    said = " ".join(" ".join(s.lines) for s in card_sections({"labels": data.classes, "card": trained.card.to_dict()}))
    perfect = all(c["recall"] == 1.0 for c in per_class.values())
    assert ("Every class's test photos were all found" if perfect else "Weakest classes (recall on") in said, said
    again = Predictor(tmp_path / "model").predict_arrays(data.images[te], ["probabilities"])["probabilities"]
    np.testing.assert_allclose(trained.test.probs, again, atol=1e-5)
    figures = trained.test.figures()
    assert figures["n"] == len(te) and sum(map(sum, figures["confusion_matrix"])) == len(te)
    assert trained.card.abstain["val_accuracy"] == round(float(trained.val.correct.mean()), 4)


def test_a_retraining_job_learns_and_predicts_the_candidates_test_split_once(tmp_path, tiny_model, leaf_folder, passes):
    """The job compares its candidate with the serving model on the test split: the serving model predicts it,
    the candidate's figures are those of its training's pass (was: the candidate predicted it a second time).
    And the candidate a job trains (with a configuration that learns) answers photos it never saw far above
    chance: a job whose training learned nothing would otherwise pass."""
    from tests.conftest import LEARNS, fresh_accuracy

    from leafdoc.data.store import open_store
    from leafdoc.model_versions import Registry

    settings = service_settings(tmp_path / "home", tiny_model)
    clients = Clients()
    try:
        done, catalog = job_run_here(clients(settings), settings, leaf_folder, LEARNS)
        registry = Registry(settings, catalog, open_store(settings.store_location))
        card = registry.get(done["candidate_version"]).card
        n_test, n_val = card["dataset"]["split"]["test"], card["dataset"]["split"]["val"]
        serving = {"1"}  # the tiny model, served as version 1, is scored in its own folder
        candidate = sum(n for (folder, _), n in passes.probs.items() if folder not in serving)
        assert candidate == n_test + n_val  # its test split once, its validation split once
        assert sum(n for (folder, _), n in passes.probs.items() if folder in serving) == n_test
        assert sum(n for (folder, _), n in passes.warm_ups.items() if folder in serving) >= 1  # the app loaded it
        promotion = registry.get(done["candidate_version"]).promotion
        assert promotion["candidate"] == card["metrics"]["test"][promotion["metric"]]
        assert card["training"]["backbone"] == "efficientnet_lite0"  # the job's options were used
        assert fresh_accuracy(registry.local_dir(done["candidate_version"])) >= 0.6  # chance: 1/3
        catalog.dispose()
    finally:
        clients.close()
