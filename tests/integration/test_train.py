"""Training, export and serving agree: tiny real runs (32 px, 1 epoch)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from tests.conftest import PLANTVILLAGE, TINY_CLASSES


def _real_images(n_per_class=2):
    return [p for c in TINY_CLASSES for p in sorted((PLANTVILLAGE / c).iterdir())[-n_per_class:]]


def _own_weights(tmp_path):
    """A no-top MobileNetV2 weights file of our own (32 px, alpha 0.35), as a user would pass with --weights PATH."""
    from leafdoc.train.backbones import build_backbone

    path = tmp_path / "own.weights.h5"
    build_backbone("mobilenet_v2", "none", 32, 0.35).save_weights(str(path))
    return path


def _split_accuracy(model_dir, part: str) -> float:
    """The model's accuracy on the photos of its split.json's `part` (by sha256, among the training folder
    beside the model), scored here with ONNX Runtime."""
    import hashlib

    from leafdoc.inference.predictor import Predictor

    wanted = set(json.loads((model_dir / "split.json").read_text())[part])
    photos = [p for p in sorted((model_dir.parent / "leaves").rglob("*")) if p.is_file()]
    photos = [p for p in photos if hashlib.sha256(p.read_bytes()).hexdigest() in wanted]
    assert len(photos) == len(wanted)
    predictor = Predictor(model_dir)
    probs = predictor.predict_arrays(np.stack([predictor.preprocess(p) for p in photos]))["probabilities"]
    return float(np.mean([predictor.labels[i] == p.parent.name for i, p in zip(probs.argmax(1), photos, strict=True)]))


def _prepared(settings, folder, name, cfg):
    """The folder ingested as dataset `name` and prepared for cfg (split, cached arrays)."""
    from leafdoc.data.catalog import Catalog
    from leafdoc.data.ingest import ingest
    from leafdoc.data.store import open_store
    from leafdoc.train.train_data import prepare_data

    catalog, store = Catalog(settings.catalog_url), open_store(settings.store_location)
    ingest(folder, catalog, store, name)
    return prepare_data(catalog, store, settings.cache_dir, name, cfg)


def test_model_folder_has_the_contract_files(tiny_model):
    for name in ("model.keras", "model.onnx", "labels.json", "card.json"):
        assert (tiny_model / name).is_file(), name
    card = json.loads((tiny_model / "card.json").read_text())
    labels = json.loads((tiny_model / "labels.json").read_text())
    assert labels == sorted(TINY_CLASSES)
    assert card["input"]["size"] == 32
    assert card["backbone"] == "efficientnet_lite0" and card["weights"] == "imagenet"
    assert card["pretrained"]["sha256"] and card["pretrained"]["licence"] == "Apache-2.0"
    assert card["dataset"]["name"] == "tiny" and card["dataset"]["version"] == 1
    split = card["dataset"]["split"]
    assert split["train"] + split["val"] + split["test"] == 18 and split["test"] >= 3
    # The card's test figure is the model's answers on the photos split.json holds out, scored again here
    # (whether it learns is test_train_learns.py's).
    assert card["metrics"]["test"]["accuracy"] == pytest.approx(_split_accuracy(tiny_model, "test"))
    assert 0.0 < card["abstain"]["min_confidence"] <= 0.95
    assert card["history"] and card["history"][0]["epoch"] == 1


def test_keras_and_onnx_agree_on_real_images(tiny_model):
    from leafdoc.inference.predictor import Predictor
    from leafdoc.train.export import load_keras, serving_model

    predictor = Predictor(tiny_model)
    x = np.stack([predictor.preprocess(p) for p in _real_images()])
    onnx_out = predictor.predict_arrays(x)
    keras_out = serving_model(load_keras(tiny_model))({"image": x.astype(np.float32)}, training=False)
    for name in ("probabilities", "logits", "features", "cam"):
        diff = np.abs(np.asarray(keras_out[name]) - onnx_out[name]).max()
        assert diff < 1e-4, f"{name}: max abs difference {diff}"
    assert np.allclose(onnx_out["probabilities"].sum(axis=1), 1.0, atol=1e-5)


def test_cam_is_the_dense_head_applied_per_cell(tiny_model):
    """Averaging the CAM over cells gives back the logits (pooling and dense commute)."""
    from leafdoc.inference.predictor import Predictor

    predictor = Predictor(tiny_model)
    x = np.stack([predictor.preprocess(p) for p in _real_images(1)])
    out = predictor.predict_arrays(x)
    assert out["cam"].shape[0] == len(x) and out["cam"].shape[-1] == len(predictor.labels)
    assert np.allclose(out["cam"].mean(axis=(1, 2)), out["logits"], atol=1e-4)


def test_training_repeats_with_the_same_seed(tmp_path, settings, leaf_folder):
    from leafdoc.train.config import TrainConfig
    from leafdoc.train.trainer import build_model, fit

    cfg = TrainConfig(weights="none", image_size=16, epochs=1, batch_size=8, backbone="baseline_cnn")
    data = _prepared(settings, leaf_folder, "seeded", cfg)
    runs = []
    for _ in range(2):
        from leafdoc.train.trainer import _seed_everything

        _seed_everything(cfg.seed)
        model = build_model(cfg, len(data.classes))
        result = fit(model, cfg, data)
        runs.append(result["history"][0]["loss"])
    assert runs[0] == pytest.approx(runs[1], rel=1e-4)


def test_a_training_seed_changes_the_training_and_keeps_the_split(tmp_path, settings, leaf_folder):
    """`--train-seed`: runs on one split that differ by chance alone (the starter's run-to-run noise). Unset, the
    training is --seed's, as before; set, the same split and another training."""
    from leafdoc.data.catalog import Catalog
    from leafdoc.data.store import open_store
    from leafdoc.train.config import TrainConfig
    from leafdoc.train.train_data import prepare_data
    from leafdoc.train.trainer import _seed_everything, build_model, fit

    base = TrainConfig(weights="none", image_size=16, epochs=1, batch_size=8, backbone="baseline_cnn")
    data = _prepared(settings, leaf_folder, "trainseed", base)
    catalog, store = Catalog(settings.catalog_url), open_store(settings.store_location)
    runs = {}
    for train_seed in (None, 0, 1):
        cfg = base.model_copy(update={"train_seed": train_seed})
        again = prepare_data(catalog, store, settings.cache_dir, "trainseed", cfg)
        assert again.split_record(cfg.seed) == data.split_record(base.seed)  # the split is --seed's alone
        _seed_everything(cfg.training_seed)
        model = build_model(cfg, len(data.classes))
        runs[train_seed] = (fit(model, cfg, again)["history"][0]["loss"], model.get_weights()[0].copy())
    assert runs[None][0] == pytest.approx(runs[0][0], rel=1e-4)  # unset: the training --seed gives
    assert np.array_equal(runs[None][1], runs[0][1])
    assert not np.allclose(runs[0][1], runs[1][1])  # another training seed: other initial weights, other training
    assert runs[0][0] != pytest.approx(runs[1][0], rel=1e-4)


def test_a_model_trained_with_the_sheet_white_balance_is_served_the_pixels_it_learnt_from(
    tmp_path, settings, leaf_folder
):
    """`white_balance: sheet` (leafcut.balance_to_sheet): the training cache holds the photos white-balanced, the card
    says so, and the serving path gives the model the very same pixels, photo for photo."""
    from leafdoc.data.store import open_store
    from leafdoc.imaging.leafcut import balance_to_sheet
    from leafdoc.inference.predictor import Predictor
    from leafdoc.lifecycle.training import train_model
    from leafdoc.modelfolder import read_card
    from leafdoc.train.config import TrainConfig

    cfg = TrainConfig(weights="none", image_size=64, epochs=1, batch_size=8, backbone="baseline_cnn")
    plain = _prepared(settings, leaf_folder, "leaves", cfg)
    cfg = cfg.model_copy(update={"white_balance": "sheet"})
    data = _prepared(settings, leaf_folder, "leaves", cfg)  # the same photos, a cache of their own
    assert data.shas == plain.shas
    for x, balanced in zip(plain.images, data.images, strict=True):
        assert np.array_equal(balanced, balance_to_sheet(x))
    assert sum(not np.array_equal(a, b) for a, b in zip(plain.images, data.images, strict=True)) >= len(data.shas) // 2
    out = tmp_path / "model"
    train_model(cfg, data, out)
    assert read_card(out).input.white_balance == "sheet"
    predictor, store = Predictor(out), open_store(settings.store_location)
    for sha, learnt in zip(data.shas, data.images, strict=True):
        photo = store.get(sha)
        assert np.array_equal(predictor.load(photo, "leaf.jpg").x, learnt)
        assert np.array_equal(predictor.preprocess(photo), learnt)


def test_a_model_trained_with_the_light_range_knows_its_training_lights_and_is_served_its_pixels(
    tmp_path, settings, monkeypatch
):
    """`white_balance: light-range` (leafcut.balance_to_range): the lights are measured on the training split only,
    the card keeps them, the cache holds each photo as balance_to_range makes it (photos lit within them
    unchanged), serving gives the model the same pixels, and a warm photo is served as a typical training light."""
    from tests.conftest import make_leaf_folder

    import leafdoc.imaging.leafcut
    from leafdoc.data.store import open_store
    from leafdoc.imaging.leafcut import balance_to_range, light_of, light_range
    from leafdoc.inference.predictor import Predictor
    from leafdoc.lifecycle.training import train_model
    from leafdoc.modelfolder import read_card
    from leafdoc.train.config import TrainConfig

    folder = make_leaf_folder(tmp_path / "leaves", per_class=10)
    cfg = TrainConfig(weights="none", image_size=64, epochs=1, batch_size=8, backbone="baseline_cnn")
    plain = _prepared(settings, folder, "lights", cfg)
    measured = []  # the photos whose light was read
    monkeypatch.setattr(leafdoc.imaging.leafcut, "light_of", lambda x: measured.append(x.copy()) or light_of(x))
    cfg = cfg.model_copy(update={"white_balance": "light-range"})
    data = _prepared(settings, folder, "lights", cfg)
    monkeypatch.undo()
    assert data.shas == plain.shas and list(data.split) == list(plain.split)
    train = [x for x, part in zip(plain.images, plain.split, strict=True) if part == "train"]
    # the training photos, as the model sees them before any balance, and no others (then each photo once, as the
    # cache is built, to balance it)
    assert len(measured) == len(train) + len(data.shas)
    assert sorted(x.tobytes() for x in measured[: len(train)]) == sorted(x.tobytes() for x in train)
    lights = light_range([light_of(x) for x in train])
    assert data.preparation.light_range == lights
    changed = 0
    for x, served in zip(plain.images, data.images, strict=True):
        assert np.array_equal(served, balance_to_range(x, lights))
        changed += not np.array_equal(served, x)
    assert 0 < changed < len(data.shas) / 2  # a few lit beyond the training lights; the others are untouched
    out = tmp_path / "model"
    train_model(cfg, data, out)
    card = read_card(out)
    assert card.input.white_balance == "light-range" and card.input.light_range == list(lights)
    predictor, store = Predictor(out), open_store(settings.store_location)
    for sha, learnt in zip(data.shas, data.images, strict=True):
        assert np.array_equal(predictor.load(store.get(sha), "leaf.jpg").x, learnt)
    apple = next(x for x in plain.images if light_of(x) is not None)
    warm = np.clip(apple * np.array([1.10, 1.0, 0.85], np.float32), 0, 255).astype(np.uint8)
    assert light_of(warm) > lights[3] + 0.05  # warmer than nearly all training photos ...
    assert light_of(predictor.prep.finish(warm)) == pytest.approx(lights[2], abs=0.015)  # ... served as a typical one


def test_last_keeps_every_epoch_and_the_last_ones_weights(tmp_path, settings, leaf_folder):
    """`restore_best: last` (the default: a lab's dozen validation photos pick an epoch by chance): no early
    stopping, even with patience 1, and the model keeps the last epoch's weights."""
    from leafdoc.train.config import TrainConfig
    from leafdoc.train.trainer import build_model, fit

    cfg = TrainConfig(weights="none", image_size=16, epochs=4, patience=1, batch_size=8, backbone="baseline_cnn")
    assert cfg.restore_best == "last"
    data = _prepared(settings, leaf_folder, "last", cfg)
    model = build_model(cfg, len(data.classes))
    result = fit(model, cfg, data)
    assert [h["epoch"] for h in result["history"]] == [1, 2, 3, 4] and result["best_epoch"] == 4
    va = data.indices("val")
    kept = model.evaluate(data.images[va].astype("float32"), data.y[va], verbose=0, return_dict=True)
    assert kept["loss"] == pytest.approx(result["history"][-1]["val_loss"], rel=1e-3, abs=1e-4)


@pytest.mark.parametrize("key", ["val_loss", "val_accuracy"])
def test_the_restored_epoch_is_the_best_by_the_chosen_figure(tmp_path, settings, leaf_folder, key):
    """`restore_best` picks the epoch restored at the end: the lowest validation loss or the highest
    validation accuracy (the first such epoch on ties), and the restored weights are that epoch's."""
    from leafdoc.train.config import TrainConfig
    from leafdoc.train.trainer import build_model, fit

    cfg = TrainConfig(
        weights="none", image_size=16, epochs=4, patience=4, batch_size=8, backbone="baseline_cnn", restore_best=key
    )
    data = _prepared(settings, leaf_folder, "restore", cfg)
    model = build_model(cfg, len(data.classes))
    result = fit(model, cfg, data)
    values = [h[key] for h in result["history"]]
    pick = (min if key == "val_loss" else max)(values)
    assert result["best_epoch"] == values.index(pick) + 1
    assert result["best_val"][key] == pick
    va = data.indices("val")
    restored = model.evaluate(data.images[va].astype("float32"), data.y[va], verbose=0, return_dict=True)
    assert restored["loss"] == pytest.approx(result["best_val"]["val_loss"], rel=1e-3, abs=1e-4)


def test_weights_file_is_loaded_into_the_backbone(tmp_path):
    from leafdoc.train.backbones import build_backbone
    from leafdoc.train.config import TrainConfig
    from leafdoc.train.trainer import build_model

    source = build_backbone("mobilenet_v2", "none", 32, 0.35)
    path = tmp_path / "backbone.weights.h5"
    source.save_weights(str(path))
    cfg = TrainConfig(backbone="mobilenet_v2", weights=str(path), image_size=32, alpha=0.35)
    model = build_model(cfg, 3)
    for a, b in zip(model.get_layer("backbone").get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_wrong_weights_file_names_the_file(tmp_path):
    from leafdoc.core.errors import ConfigError
    from leafdoc.train.backbones import build_backbone, weights_provenance

    with pytest.raises(ConfigError, match="does not exist"):
        build_backbone("mobilenet_v2", str(tmp_path / "missing.weights.h5"), 32, 0.35)
    with pytest.raises(ConfigError, match="missing.weights.h5 does not exist"):  # the card's record of it, made first
        weights_provenance("mobilenet_v2", str(tmp_path / "missing.weights.h5"))
    other = build_backbone("baseline_cnn", "none", 32)
    path = tmp_path / "cnn.weights.h5"
    other.save_weights(str(path))
    with pytest.raises(ConfigError, match="cnn.weights.h5") as err:
        build_backbone("mobilenet_v2", str(path), 32, 0.35)
    assert "same backbone" in err.value.hint


def test_imagenet_offline_says_what_to_pass(monkeypatch):
    """No ImageNet weights can be downloaded here: the error says to pass --weights none or a file."""
    import keras

    from leafdoc.core.errors import ConfigError
    from leafdoc.train.backbones import build_backbone

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3]")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    monkeypatch.setattr("keras.src.utils.file_utils.get_file", offline, raising=False)
    with pytest.raises(ConfigError) as err:
        build_backbone("mobilenet_v2", "imagenet", 96, 0.35)
    assert "--weights none" in err.value.hint and "--weights PATH" in err.value.hint


def test_warm_start_copies_all_weights_when_labels_match(tiny_model):
    from tests.conftest import LEARNS

    from leafdoc.train.config import TrainConfig
    from leafdoc.train.export import load_keras
    from leafdoc.train.trainer import build_model, warm_start

    labels = json.loads((tiny_model / "labels.json").read_text())
    cfg = TrainConfig(**{**LEARNS, "weights": "none"})  # the tiny model's network, its weights from the parent
    model = build_model(cfg, len(labels))
    assert warm_start(model, tiny_model, labels) == "all"
    parent = load_keras(tiny_model)
    for a, b in zip(model.get_weights(), parent.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    model4 = build_model(cfg, 4)
    assert warm_start(model4, tiny_model, [*labels, "New___class"]) == "backbone"


def test_export_tflite_and_onnx_again(tmp_path, tiny_model):
    import shutil

    from leafdoc.inference.predictor import Predictor
    from leafdoc.train.export import export

    model_dir = tmp_path / "m"
    shutil.copytree(tiny_model, model_dir)
    before = Predictor(model_dir)
    x = np.stack([before.preprocess(p) for p in _real_images(1)])
    p_before = before.predict_arrays(x)["probabilities"]
    (model_dir / "model.onnx").unlink()
    export(model_dir, "onnx")
    p_after = Predictor(model_dir).predict_arrays(x)["probabilities"]
    assert np.abs(p_before - p_after).max() < 1e-5
    tfl = export(model_dir, "tflite")
    check_tflite_answers_as_onnx(tfl, x)


def check_tflite_answers_as_onnx(tfl, x):
    """The .tflite a grower puts on a phone answers as model.onnx does on the same photos (all four outputs,
    probabilities within 1e-4), under the signature and tensor names model.onnx has, with all its weights."""
    import warnings

    import tensorflow as tf

    from leafdoc.inference.predictor import Predictor

    onnx = Predictor(tfl.parent).predict_arrays(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(tfl))
    names = ["probabilities", "logits", "features", "cam"]
    assert interpreter.get_signature_list() == {"serving_default": {"inputs": ["image"], "outputs": sorted(names)}}
    interpreter.allocate_tensors()
    assert sorted(d["name"] for d in interpreter.get_output_details()) == sorted(names)
    assert [d["name"] for d in interpreter.get_input_details()] == ["image"]
    runner = interpreter.get_signature_runner("serving_default")
    for i in range(len(x)):
        out = runner(image=x[i : i + 1].astype(np.float32))
        for name in names:
            assert np.isfinite(out[name]).all(), name
            tol = 1e-4 if name == "probabilities" else 1e-3 * max(1.0, float(np.abs(onnx[name][i]).max()))
            np.testing.assert_allclose(out[name][0], onnx[name][i], atol=tol, rtol=0, err_msg=name)
    # the float32 weights are in the file, as in model.onnx (the broken export wrote 191 KB beside 5.6 MB)
    assert tfl.stat().st_size >= 0.8 * (tfl.parent / "model.onnx").stat().st_size
    via_predictor = Predictor(tfl).predict_arrays(x)  # `leafdoc predict MODEL/model.tflite` runs this
    assert np.abs(via_predictor["probabilities"] - onnx["probabilities"]).max() < 1e-4


def test_export_collecting_garbage_per_pass_gives_the_same_model(tmp_path, tiny_model, monkeypatch):
    """Large models are exported with a garbage collection after every optimizer pass (the path ResNet50
    takes); forced here on the tiny model, it writes a model that answers as the usual export does."""
    import gc
    import shutil

    from leafdoc.inference.predictor import Predictor
    from leafdoc.train import export as export_mod

    model_dir = tmp_path / "m"
    shutil.copytree(tiny_model, model_dir)
    (model_dir / "model.onnx").unlink()
    collections = []

    def full_collection(phase, info):
        if phase == "stop" and info["generation"] == 2:
            collections.append(gc.get_freeze_count())

    gc.callbacks.append(full_collection)
    monkeypatch.setattr(export_mod, "BIG_WEIGHTS", 0)
    try:
        model = export_mod.load_keras(tiny_model)
        export_mod.export_onnx(model, model_dir / "model.onnx", 32)
    finally:
        gc.callbacks.pop()
    assert len(collections) > 12  # one per optimizer pass (12 passes per round), more than the two it always does
    # During the passes the heap that was there before is frozen (each collection scans only what they made),
    # and it is given back to the collector afterwards.
    assert sum(n > 0 for n in collections) >= 12 and gc.get_freeze_count() == 0
    usual = Predictor(tiny_model)
    x = np.stack([usual.preprocess(p) for p in _real_images(1)])
    collected = Predictor(model_dir).predict_arrays(x)
    for name, value in usual.predict_arrays(x).items():
        assert np.abs(value - collected[name]).max() < 1e-5, name


def test_pretrained_recipe_trains_head_then_fine_tunes(tmp_path, settings, leaf_folder, monkeypatch):
    """With a weights file: the head trains on a frozen backbone, then the top is fine-tuned with BatchNorm frozen;
    each phase traces its training step once (epochs.build_training_state: Keras alone traced it twice, about
    2.3 s a phase for EfficientNet-Lite0)."""
    import keras
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    from leafdoc.train.config import TrainConfig
    from leafdoc.train.trainer import build_model, fit

    path = _own_weights(tmp_path)
    cfg = TrainConfig(
        backbone="mobilenet_v2",
        weights=str(path),
        image_size=32,
        alpha=0.35,
        epochs=1,
        fine_tune_epochs=1,
        batch_size=8,
        head_on_features=False,  # both phases through model.fit: the step traced once in each
    )
    data = _prepared(settings, leaf_folder, "pre", cfg)
    model = build_model(cfg, len(data.classes))
    bn_before = [
        w.copy()
        for layer in model.get_layer("backbone").layers
        if isinstance(layer, keras.layers.BatchNormalization)
        for w in layer.get_weights()
    ]
    traced = []
    step = TensorFlowTrainer.train_step
    monkeypatch.setattr(TensorFlowTrainer, "train_step", lambda self, d: traced.append(1) or step(self, d))
    result = fit(model, cfg, data)
    assert len(traced) == 2, f"the training step was traced {len(traced)} times in 2 phases"
    assert [h["phase"] for h in result["history"]] == ["head", "fine_tune"]
    assert [h["epoch"] for h in result["history"]] == [1, 2]
    bn_after = [
        w
        for layer in model.get_layer("backbone").layers
        if isinstance(layer, keras.layers.BatchNormalization)
        for w in layer.get_weights()
    ]
    for a, b in zip(bn_before, bn_after, strict=True):
        np.testing.assert_array_equal(a, b)  # BatchNorm frozen in both phases (statistics included)


def _interrupted_fit(cfg, data, folder, stop_after_epoch: int):
    """fit() with a checkpoint, stopped (as by Ctrl-C) during the epoch after `stop_after_epoch`."""
    from leafdoc.train.checkpoint import Checkpoint, fingerprint
    from leafdoc.train.events import Batch, Epoch
    from leafdoc.train.trainer import build_model, fit

    epochs = []

    def on_event(e):
        if isinstance(e, Epoch):
            epochs.append(e.epoch)
        if isinstance(e, Batch) and len(epochs) == stop_after_epoch:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        checkpoint = Checkpoint(folder, fingerprint(cfg, data), cfg, data)
        fit(build_model(cfg, len(data.classes)), cfg, data, on_event, checkpoint)
    return epochs


def _resumed_fit(cfg, data, folder):
    from leafdoc.train.checkpoint import Checkpoint, fingerprint
    from leafdoc.train.trainer import build_model, fit

    events = []
    result = fit(
        build_model(cfg, len(data.classes)),
        cfg,
        data,
        lambda e: events.append(e.to_dict()),  # the records a job's row and an experiment's stream keep
        Checkpoint(folder, fingerprint(cfg, data), cfg, data),  # as trainer.train makes it
    )
    return result, [e for e in events if e["event"] in ("epoch", "resume", "restart")]


def test_stopped_training_continues_from_its_checkpoint(tmp_path, settings, leaf_folder, monkeypatch):
    """From scratch: stopped in epoch 3 of 4, the run continues at epoch 3 with the optimizer's step count
    (the cosine schedule's position) and the best epoch so far, its photos in a new order; other settings start
    over."""
    from leafdoc.train import pipeline
    from leafdoc.train.checkpoint import Checkpoint, fingerprint
    from leafdoc.train.config import TrainConfig

    cfg = TrainConfig(weights="none", backbone="baseline_cnn", image_size=16, epochs=4, batch_size=4, patience=10)
    data = _prepared(settings, leaf_folder, "ck", cfg)
    folder = tmp_path / "ck"
    orders = []  # the order of the training photos in each process's first epoch, read through the real pipeline
    made = pipeline.make_dataset

    def recording(images, indices, labels, batch_size, **kw):
        if kw.get("shuffle"):
            probe = made(images, indices, np.arange(len(indices)), batch_size, shuffle=True, seed=kw.get("seed", 0))
            orders.append(np.concatenate([y for _, y in probe.as_numpy_iterator()]).tolist())
        return made(images, indices, labels, batch_size, **kw)

    monkeypatch.setattr(pipeline, "make_dataset", recording)
    assert _interrupted_fit(cfg, data, folder, stop_after_epoch=2) == [1, 2]
    shutil.copytree(folder, tmp_path / "ck-again")
    saved = Checkpoint(folder, fingerprint(cfg, data))
    steps = int(np.ceil(data.counts()["train"] / cfg.batch_size))
    assert saved.state["epoch"] == 2 and saved.state["phase"] == "scratch" and not saved.state["finished"]
    assert [h["epoch"] for h in saved.state["history"]] == [1, 2] and saved.arrays("best") is not None
    assert int(saved.arrays("optimizer")[0]) == 2 * steps  # Adam's iteration count, first of its variables

    result, events = _resumed_fit(cfg, data, folder)
    assert events[0] == {"event": "resume", "phase": "scratch", "epoch": 2}
    assert [e["epoch"] for e in events[1:]] == [3, 4]  # epochs 1-2 not trained again
    # A resumed process starts its generators anew: epoch 3 must not replay epoch 1's order (it did, with the run's
    # own seed), yet the same checkpoint resumed twice trains the same way.
    assert sorted(orders[0]) == sorted(orders[1]) and orders[1] != orders[0]
    _resumed_fit(cfg, data, tmp_path / "ck-again")
    assert orders[2] == orders[1]
    assert [h["epoch"] for h in result["history"]] == [1, 2, 3, 4]
    assert 1 <= result["best_epoch"] <= 4
    assert Checkpoint(folder, fingerprint(cfg, data)).state["finished"]

    other = cfg.model_copy(update={"learning_rate": cfg.base_learning_rate / 2})
    assert Checkpoint(folder, fingerprint(other, data)).state is None  # other settings: not continued
    _, events = _resumed_fit(other, data, folder)
    said = f"{folder} was saved with other settings (learning_rate: {cfg.learning_rate!r} -> {other.learning_rate!r})"
    assert events[0] == {"event": "restart", "reason": said}  # which setting, so a mistyped flag is seen
    assert [e["epoch"] for e in events[1:]] == [1, 2, 3, 4]
    (folder / "state.json").write_text("{not json")  # a damaged checkpoint: said, then replaced
    _, events = _resumed_fit(other, data, folder)
    assert events[0]["event"] == "restart" and "not readable JSON" in events[0]["reason"]
    assert Checkpoint(folder, fingerprint(other, data)).state["finished"]


def test_checkpoint_after_the_head_phase_goes_on_with_fine_tuning(tmp_path, settings, leaf_folder):
    """With a weights file: stopped during fine-tuning, the head phase is not run again."""
    from leafdoc.train.config import TrainConfig

    cfg = TrainConfig(
        backbone="mobilenet_v2",
        weights=str(_own_weights(tmp_path)),
        image_size=32,
        alpha=0.35,
        epochs=1,
        fine_tune_epochs=2,
        batch_size=8,
        head_on_features=False,  # a head phase checkpointed epoch by epoch, as fine-tuning's
    )
    data = _prepared(settings, leaf_folder, "ck2", cfg)
    folder = tmp_path / "ck"
    assert _interrupted_fit(cfg, data, folder, stop_after_epoch=2) == [1, 2]  # head 1, fine-tune 2
    result, events = _resumed_fit(cfg, data, folder)
    assert events[0] == {"event": "resume", "phase": "fine_tune", "epoch": 2}
    assert [(e["phase"], e["epoch"]) for e in events[1:]] == [("fine_tune", 3)]
    assert [(h["phase"], h["epoch"]) for h in result["history"]] == [("head", 1), ("fine_tune", 2), ("fine_tune", 3)]
    # Stopped between the phases: the finished head phase is skipped, fine-tuning starts at epoch 2.
    between = tmp_path / "between"
    assert _interrupted_fit(cfg, data, between, stop_after_epoch=1) == [1]
    result, events = _resumed_fit(cfg, data, between)
    assert events[0] == {"event": "resume", "phase": "head", "epoch": 1}
    assert [(e["phase"], e["epoch"]) for e in events[1:]] == [("fine_tune", 2), ("fine_tune", 3)]


def test_a_stopped_run_is_finished_from_its_best_checkpointed_epoch(tmp_path, settings, leaf_folder):
    """`finish`: a run stopped in epoch 3 of 4 is ended now: the model folder holds the best checkpointed epoch's
    weights (its ONNX answers as that epoch's Keras weights do), the card's history has the 2 epochs trained and says
    it finished early; without a checkpoint it is refused with the folder named."""
    import keras

    from leafdoc.core.errors import ModelError
    from leafdoc.train.checkpoint import Checkpoint, fingerprint
    from leafdoc.train.config import TrainConfig
    from leafdoc.train.trainer import build_model, train

    cfg = TrainConfig(weights="none", backbone="baseline_cnn", image_size=16, epochs=4, batch_size=4, patience=10)
    data = _prepared(settings, leaf_folder, "fin", cfg)
    folder = tmp_path / "ck"
    assert _interrupted_fit(cfg, data, folder, stop_after_epoch=2) == [1, 2]
    best = Checkpoint(folder, fingerprint(cfg, data)).arrays("best")
    (tmp_path / "model").mkdir()
    card = train(cfg, data, tmp_path / "model", checkpoint_dir=folder, finish=True).card
    assert [h["epoch"] for h in card.history] == [1, 2]
    assert card.training["finished_early"] == {"phase": "scratch", "epoch": 2}
    model = build_model(cfg, len(data.classes))
    model.set_weights(best)
    written = keras.saving.load_model(tmp_path / "model" / "model.keras", compile=False)
    for a, b in zip(model.get_weights(), written.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ModelError, match="no checkpoint of this run"):
        train(cfg, data, tmp_path / "model", checkpoint_dir=tmp_path / "none", finish=True)


def test_the_card_says_what_the_run_knows_of_its_data_and_nothing_fixed_about_lab_photos(tiny_model):
    """Without --provenance the card said only "trained on the dataset version named in `dataset`" and its
    limitations always "Trained on lab photos": now they say where the photos came from (the folder's name, never
    where it was), how many a class and in each split, that no provenance was given, and what the test split showed."""
    import hashlib
    import re

    from leafdoc.inference.predictor import Predictor
    from leafdoc.train.card_text import LOW_RECALL

    card = json.loads((tiny_model / "card.json").read_text())
    said, limits = card["provenance"], card["limitations"]
    assert card["dataset"]["sources"] == ["leaves"]  # the folder tiny_model was ingested from, by name
    assert card["dataset"]["photos_per_class"] == dict.fromkeys(sorted(TINY_CLASSES), 6)
    assert said.startswith("Provenance not given: pass --provenance FILE")
    assert (
        "dataset `tiny` v1, ingested from a folder (zip, file) named `leaves`: 18 photos of 3 classes, 6 a class"
        in said
    )
    split = card["dataset"]["split"]
    assert f"train {split['train']}, validation {split['val']}, test {split['test']}" in said
    assert "starter" not in said  # it started from ImageNet's weights (LEARNS)
    assert not re.search(r"(^|\s)/\w", said + limits), "a server path in the card's words"
    assert str(tiny_model.parent) not in json.dumps(card)
    assert "lab photos" not in limits
    assert f"Knows only these 3 classes: {', '.join(sorted(TINY_CLASSES))}." in limits
    assert "Every class has fewer than 100 photos (" + ", ".join(f"{c}: 6" for c in sorted(TINY_CLASSES)) in limits
    # The classes named as found least often are the ones the model finds under LOW_RECALL of on its test photos.
    wanted = set(json.loads((tiny_model / "split.json").read_text())["test"])
    photos = [p for p in sorted((tiny_model.parent / "leaves").rglob("*")) if p.is_file()]
    photos = [p for p in photos if hashlib.sha256(p.read_bytes()).hexdigest() in wanted]
    predictor = Predictor(tiny_model)
    probs = predictor.predict_arrays(np.stack([predictor.preprocess(p) for p in photos]))["probabilities"]
    right: dict[str, list[bool]] = {}
    for i, p in zip(probs.argmax(1), photos, strict=True):
        right.setdefault(p.parent.name, []).append(predictor.labels[i] == p.parent.name)
    low = {c: r for c, r in right.items() if np.mean(r) < LOW_RECALL}
    if low:
        named = re.search(r"Found least often on its test split \((\d+) photos\), recall under 90%: ([^.]+)\.", limits)
        assert named and int(named[1]) == len(photos)
        assert sorted(named[2].split(", ")) == sorted(f"{c} {sum(r)} of {len(r)}" for c, r in low.items())
    else:
        assert f"Every class's recall on its test split ({len(photos)} photos" in limits
