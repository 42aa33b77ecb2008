"""A training run keeps its card and checks in memory and writes card.json once, with one Predictor (one ONNX
Runtime session) for all its scoring, and the folder it writes is the very folder it wrote when it wrote the card
after each step and read the model back from disk for the next one (before 2026-11-27)."""

from __future__ import annotations

import shutil

import pytest
from tests.conftest import LEARNS, SHARED, make_leaf_folder

from leafdoc.inference.predictor import Predictor
from leafdoc.lifecycle import training
from leafdoc.modelfolder import read_card, write_card
from leafdoc.train.config import TrainConfig
from leafdoc.train.trainer import Exported

# What train/trainer.py writes before scoring; the rest of the folder is the run's scoring and calibration.
EXPORTED = ("model.keras", "model.onnx", "labels.json", "split.json")
FIELD = SHARED / "field-corn"
NONLEAF = SHARED / "flowers" / "daisy"


def trained_like(tiny_model):
    """train/trainer.py's `train` standing in for a real one: it exports the session's tiny model into the folder
    with the card it had before scoring (so both runs below start from the same network)."""

    def fake_train(cfg, data, folder, **_):
        for name in EXPORTED:
            shutil.copy2(tiny_model / name, folder / name)
        card = read_card(tiny_model)
        for section in ("metrics", "abstain", "ood", "field", "baseline"):
            setattr(card, section, None)
        write_card(folder, card)
        return Exported(card)

    return fake_train


def test_a_training_run_writes_its_card_once_and_the_folder_it_always_wrote(tmp_path, tiny_model, monkeypatch):
    from leafdoc.core.settings import Settings
    from leafdoc.data.catalog import Catalog
    from leafdoc.data.ingest import ingest
    from leafdoc.data.store import open_store
    from leafdoc.train.train_data import prepare_data

    if not (FIELD.is_dir() and NONLEAF.is_dir()):
        pytest.skip(f"shared datasets not found at {SHARED}")
    s = Settings(home=tmp_path / "home")
    s.ensure_home()
    catalog, store = Catalog(s.catalog_url), open_store(s.store_location)
    ingest(make_leaf_folder(tmp_path / "leaves"), catalog, store, "tiny")
    # Every step of the run: the not-a-leaf check with non-leaf photos, the unlike-training check with field photos,
    # the photo checks on the originals.
    cfg = TrainConfig(**LEARNS, nonleaf_dirs=[str(NONLEAF)], field_dirs=[str(FIELD)])
    data = prepare_data(catalog, store, s.cache_dir, "tiny", cfg)
    monkeypatch.setattr(training, "train_and_export", trained_like(tiny_model))

    sessions, cards = [], []
    real_session, real_write = Predictor._onnx_session, training.write_card
    monkeypatch.setattr(Predictor, "_onnx_session", lambda self, t: sessions.append(1) or real_session(self, t))
    monkeypatch.setattr(training, "write_card", lambda folder, card: cards.append(1) or real_write(folder, card))
    now = training.train_model(cfg, data, tmp_path / "now", originals=store.get)
    assert (len(sessions), len(cards)) == (1, 1)  # one ONNX Runtime session, card.json written once by the run

    def from_disk(self, card):  # what the run did before: write the card, load the model again from the folder
        real_write(self.model_dir, card)
        return Predictor(self.model_dir)

    monkeypatch.setattr(Predictor, "with_card", from_disk)
    before = training.train_model(cfg, data, tmp_path / "before", originals=store.get)
    catalog.dispose()

    card = now.card
    assert card.ood and card.field and card.baseline and card.abstain  # every check was fitted
    assert card.field["carried_photos"] > 0 and card.ood["n_nonleaf"] > 0
    files = sorted(p.name for p in now.folder.iterdir())
    assert files == sorted(p.name for p in before.folder.iterdir())
    for name in files:
        assert (now.folder / name).read_bytes() == (before.folder / name).read_bytes(), name
    assert now.card == before.card and not list(tmp_path.glob(".*partial"))
