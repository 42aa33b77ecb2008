"""Same command, same model (docs/training.md, "Same command, same model?"): a run of the default training (the head
on the frozen backbone's features, augmented views, then the head that also learns the validation photos) repeats
bit for bit with the same seeds (model.onnx byte for byte), in another process, under another Python hash seed, in a
fresh data home; another --train-seed gives other weights on the same split, so the check can fail."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
from tests.conftest import make_leaf_folder

# One process per `leafdoc train`: the data home, the arrays' cache and Python's string hashes are its own. What
# trainer.train does for `leafdoc train` (lifecycle/training.py then only scores the ONNX model); each further run
# of a process (another --train-seed) goes on in the same data home.
RUN = r"""
import json, sys
from pathlib import Path

from leafdoc.core.settings import Settings
from leafdoc.data.catalog import Catalog
from leafdoc.data.ingest import ingest
from leafdoc.data.store import open_store
from leafdoc.train.config import TrainConfig
from leafdoc.train.train_data import prepare_data
from leafdoc.train.trainer import train

home, photos, *runs = sys.argv[1:]
settings = Settings(home=Path(home))
settings.ensure_home()
catalog, store = Catalog(settings.catalog_url), open_store(settings.store_location)
ingest(Path(photos), catalog, store, "repeat")
for out, options in zip(runs[::2], runs[1::2]):
    cfg = TrainConfig(**json.loads(options))
    Path(out).mkdir()
    train(cfg, prepare_data(catalog, store, settings.cache_dir, "repeat", cfg), Path(out))
"""

# Tiny, as the defaults otherwise: the weights as `leafdoc train` picks them (the starter's backbone where
# models/starter is), 4 views, train_on_val, the last epoch kept.
OPTIONS = {"image_size": 32, "epochs": 6, "batch_size": 8}


def _start(tmp_path, photos, hash_seed: int, runs: dict[str, dict]) -> subprocess.Popen:
    """A process that trains each of `runs` (folder name: options) in turn, in a data home of its own."""
    env = {**os.environ, "PYTHONHASHSEED": str(hash_seed), "TF_CPP_MIN_LOG_LEVEL": "3"}
    args = [str(tmp_path / f"home-{hash_seed}"), str(photos)]
    for name, options in runs.items():
        args += [str(tmp_path / name), json.dumps({**OPTIONS, **options})]
    return subprocess.Popen([sys.executable, "-c", RUN, *args], env=env, stderr=subprocess.PIPE, text=True)


def _finished(process: subprocess.Popen) -> None:
    _, err = process.communicate()
    assert process.returncode == 0, err[-3000:]


def _read(out, photos) -> dict:
    return {
        "weights": _keras_weights(out / "model.keras"),
        "history": [{k: v for k, v in e.items() if k != "seconds"} for e in _card(out)["history"]],
        "split": json.loads((out / "split.json").read_text()),
        "onnx": _onnx_answers(out, photos),
    }


def _card(out) -> dict:
    return json.loads((out / "card.json").read_text())


def _keras_weights(path) -> dict[str, np.ndarray]:
    """Every array of a model.keras, by its path in the file."""
    import h5py

    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as z, h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return arrays


def _onnx_answers(model_dir, photos) -> np.ndarray:
    """model.onnx's probabilities for every photo of the folder, as served."""
    from leafdoc.inference.predictor import Predictor

    predictor = Predictor(model_dir)
    files = sorted(p for p in photos.rglob("*") if p.is_file())
    return predictor.predict_arrays(np.stack([predictor.preprocess(p) for p in files]))["probabilities"]


def test_the_same_seeds_give_the_same_model_and_another_train_seed_another(tmp_path):
    photos = make_leaf_folder(tmp_path / "leaves", per_class=10)
    # Side by side (each is mostly one core's work): the same run in two processes, under two hash seeds, in two
    # data homes; the second process then trains with another --train-seed.
    one = _start(tmp_path, photos, 1, {"first": {}})
    two = _start(tmp_path, photos, 2, {"again": {}, "other": {"train_seed": 1}})
    _finished(one)
    _finished(two)
    first, again, other = (_read(tmp_path / name, photos) for name in ("first", "again", "other"))

    assert first["split"] == again["split"]
    assert first["history"] == again["history"]  # every epoch's loss and accuracy, to the last bit
    assert first["weights"].keys() == again["weights"].keys()
    for name, array in first["weights"].items():
        assert np.array_equal(array, again["weights"][name]), name
    # The served model too, to the byte: tf2onnx names the constants it folds in an order Python's string hashes
    # set, and the export names them again by their place in the graph (train/export.py canonical_names).
    assert np.array_equal(first["onnx"], again["onnx"])
    assert (tmp_path / "first" / "model.onnx").read_bytes() == (tmp_path / "again" / "model.onnx").read_bytes()

    assert other["split"] == first["split"]  # --train-seed leaves the split --seed's
    assert other["weights"].keys() == first["weights"].keys()
    differ = [n for n, a in first["weights"].items() if not np.array_equal(a, other["weights"][n])]
    # The head's weights: the frozen backbone (saved as `layers/functional/...`) is the same
    assert differ and not any(n.startswith("layers/functional/") for n in differ), differ
    assert not np.allclose(first["onnx"], other["onnx"])


def test_deterministic_ops_are_the_runs_alone():
    """`--deterministic-ops` turns TensorFlow's switch on for its run only: it is the process's, and a service worker
    goes on to train other jobs (with their own setting) in the same process."""
    from tensorflow.python.framework import config as tf_config

    from leafdoc.train.trainer import op_determinism

    assert not tf_config.is_op_determinism_enabled()
    with op_determinism(False):
        assert not tf_config.is_op_determinism_enabled()
    with op_determinism(True):
        assert tf_config.is_op_determinism_enabled()
    assert not tf_config.is_op_determinism_enabled()
