"""Training learns, and its options change what is trained.

A model that learns nothing must fail here: a tiny task with a clear visual signal (three classes of
distinct colour under pixel noise) is trained for real and scored on fresh held-out photos through the
serving path. `--morphology`, `--no-augment` and `--no-class-weights` are checked by what reaches the
network: the cached pixels, the batches `fit` trains on, the class weights it passes to Keras."""

from __future__ import annotations

import numpy as np
import pytest
from tests.conftest import COLOURS
from tests.conftest import colour_folder as _colour_folder


def _prepared(settings, folder, name, cfg):
    from leafdoc.data.catalog import Catalog
    from leafdoc.data.ingest import ingest
    from leafdoc.data.store import open_store
    from leafdoc.train.train_data import prepare_data

    catalog, store = Catalog(settings.catalog_url), open_store(settings.store_location)
    ingest(folder, catalog, store, name)
    return prepare_data(catalog, store, settings.cache_dir, name, cfg), store


class _FitSpy:
    """Stands in for `model.fit`: records what `leafdoc.train.trainer.fit` hands to Keras, trains nothing."""

    def __init__(self):
        self.calls = []

    def __call__(self, x, **kwargs):
        self.calls.append({"x": x, **kwargs})

        class History:
            history = {"loss": [0.0]}

        return History()


def _spied_fit(cfg, data):
    from leafdoc.train.trainer import build_model, fit

    model = build_model(cfg, len(data.classes))
    spy = _FitSpy()
    model.fit = spy
    fit(model, cfg, data)
    assert len(spy.calls) == 1
    return spy.calls[0]


def _batches(ds):
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in ds), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def test_training_learns_a_visually_separable_task(tmp_path, settings):
    """Three colours under noise, 32 px, 12 short epochs from scratch (~5 s): the model folder's own test figure and
    fresh photos it never saw (scored with ONNX Runtime, as served) are far above chance (1/3)."""
    from leafdoc.inference.predictor import Predictor
    from leafdoc.lifecycle.training import train_model
    from leafdoc.train.config import TrainConfig

    cfg = TrainConfig(backbone="baseline_cnn", weights="none", image_size=32, epochs=12, batch_size=8, patience=12)
    data, _ = _prepared(settings, _colour_folder(tmp_path / "colours", 14), "colours", cfg)
    assert data.counts()["test"] >= 6  # the split kept images of every class apart (no near-duplicate groups)
    card = train_model(cfg, data, tmp_path / "model").card
    assert card.metrics.test["accuracy"] >= 0.9, card.metrics.test
    fresh = _colour_folder(tmp_path / "fresh", 10, seed0=500)
    predictor = Predictor(tmp_path / "model")
    truth = [name for name in COLOURS for _ in range(10)]
    x = np.stack([predictor.preprocess(fresh / name / f"{name}{i}.png") for name in COLOURS for i in range(10)])
    probs = predictor.predict_arrays(x)["probabilities"]
    predicted = [predictor.labels[i] for i in probs.argmax(axis=1)]
    accuracy = np.mean([p == t for p, t in zip(predicted, truth, strict=True)])
    assert accuracy >= 0.9, list(zip(truth, predicted, strict=True))


def test_the_shared_tiny_model_learns(tiny_model):
    """The model ~50 tests serve and compare answers with: on 60 PlantVillage photos of its three classes that
    it never saw it must be right far above chance (1/3), or those tests could not tell a right answer from a
    wrong one. Measured 0.82 (0.73-0.82 over seeds)."""
    from tests.conftest import fresh_accuracy

    assert fresh_accuracy(tiny_model) >= 0.6


def test_morphology_changes_the_cached_pixels_and_serving_applies_it(tmp_path, settings, leaf_folder, tiny_model):
    """`--morphology tophat`: the cache the pipeline reads holds the top-hat of each photo, the card says so,
    and a model folder with that card preprocesses a photo into exactly the pixels training saw."""
    import json
    import shutil

    from leafdoc.data.catalog import Catalog
    from leafdoc.imaging.photos import apply_morphology
    from leafdoc.inference.predictor import Predictor
    from leafdoc.train.config import TrainConfig
    from leafdoc.train.train_data import prepare_data
    from leafdoc.train.trainer import make_card

    plain_cfg = TrainConfig(weights="none", image_size=32)
    morph_cfg = TrainConfig(weights="none", image_size=32, morphology="tophat", morph_kernel=5)
    plain, store = _prepared(settings, leaf_folder, "morph", plain_cfg)
    morph = prepare_data(Catalog(settings.catalog_url), store, settings.cache_dir, "morph", morph_cfg)
    assert morph.shas == plain.shas
    assert np.abs(morph.images.astype(int) - plain.images.astype(int)).mean() > 5  # a visible change
    for i in range(len(plain.shas)):
        np.testing.assert_array_equal(morph.images[i], apply_morphology(plain.images[i], "tophat", 5))

    card = make_card(morph_cfg, morph, {"history": [], "best_epoch": 1, "train_seconds": 0.0}, None, None, {})
    assert card.input.morphology == "tophat" and card.input.morph_kernel == 5
    served = tmp_path / "served"
    shutil.copytree(tiny_model, served)
    served_card = json.loads((served / "card.json").read_text())
    served_card["input"] = card.input.model_dump()
    (served / "card.json").write_text(json.dumps(served_card))
    plain_predictor, morph_predictor = Predictor(tiny_model), Predictor(served)
    for i in (0, 7, 13):
        photo = store.get(plain.shas[i])
        x = morph_predictor.preprocess(photo)
        np.testing.assert_array_equal(x, apply_morphology(plain_predictor.preprocess(photo), "tophat", 5))
        np.testing.assert_array_equal(x, morph.images[i])  # training and serving see the same pixels
        assert np.array_equal(morph_predictor.load(photo).x, x)  # the route's decode-once path too


def test_no_augment_trains_on_the_cached_images_and_augment_changes_them(settings, tmp_path):
    """`--no-augment`: every training batch is the cached images themselves (in shuffled order);
    with augmentation (the default) the batches are no longer the cached pixels."""
    from leafdoc.train.config import TrainConfig

    cfg = TrainConfig(backbone="baseline_cnn", weights="none", image_size=32, epochs=1, batch_size=4)
    data, _ = _prepared(settings, _colour_folder(tmp_path / "colours", 5), "aug", cfg)
    tr = data.indices("train")
    cached = {data.images[i].tobytes(): int(data.y[i]) for i in tr}

    plain = _spied_fit(cfg.model_copy(update={"augment": False}), data)
    for _ in range(2):  # two epochs: the same images each time, reshuffled
        x, y = _batches(plain["x"])
        assert len(x) == len(tr)
        got = {xi.astype(np.uint8).tobytes(): int(yi) for xi, yi in zip(x, y, strict=True)}
        assert np.array_equal(x, x.astype(np.uint8))
        assert got == cached

    augmented = _spied_fit(cfg, data)
    x, y = _batches(augmented["x"])
    assert len(x) == len(tr)
    changed = [xi.round().astype(np.uint8).tobytes() not in cached for xi in x]
    assert sum(changed) >= len(x) - 1, "augmentation left the training images as cached"


def test_class_weights_are_inverse_frequency_and_no_class_weights_passes_none(settings, tmp_path):
    """On an imbalanced dataset (12 / 6 / 4 photos) the loss weights are n / (classes x count) per class,
    so the rare class weighs most; `--no-class-weights` passes no weights to Keras (every image weighs 1)."""
    from leafdoc.train.config import TrainConfig

    cfg = TrainConfig(backbone="baseline_cnn", weights="none", image_size=32, epochs=1, batch_size=8)
    folder = _colour_folder(tmp_path / "colours", {"blue": 12, "green": 6, "red": 4})
    data, _ = _prepared(settings, folder, "imbalanced", cfg)
    counts = np.bincount(data.y[data.indices("train")], minlength=3)
    assert counts[0] > counts[1] > counts[2] > 0

    weighted = _spied_fit(cfg, data)["class_weight"]
    assert weighted == pytest.approx({i: counts.sum() / (3 * counts[i]) for i in range(3)})
    assert weighted[0] < 1 < weighted[2]
    assert sum(weighted[i] * counts[i] for i in range(3)) == pytest.approx(counts.sum())  # mean weight per image 1

    assert _spied_fit(cfg.model_copy(update={"class_weights": False}), data)["class_weight"] is None


def test_background_swap_reaches_the_training_batches_and_nothing_else(settings, leaf_folder):
    """`--background-swap 1`: every training photo whose leaf is found arrives on a new sheet, its leaf as cached;
    validation photos are never swapped (they pick the epoch, as serving would see them)."""
    from leafdoc.imaging import leafcut
    from leafdoc.train.config import TrainConfig
    from leafdoc.train.pipeline import make_dataset

    cfg = TrainConfig(backbone="baseline_cnn", weights="none", image_size=64, epochs=1, batch_size=4, augment=False)
    data, _ = _prepared(settings, leaf_folder, "swap", cfg)
    tr = data.indices("train")
    cached = {data.images[i].tobytes(): i for i in tr}
    swappable = {i for i in tr if leafcut.clean_cut(leafcut.leaf_mask(data.images[i]))}
    assert len(swappable) >= len(tr) // 2

    call = _spied_fit(cfg.model_copy(update={"background_swap": 1.0}), data)
    x, _ = _batches(call["x"])
    x = x.astype(np.uint8)
    unchanged = [cached[xi.tobytes()] for xi in x if xi.tobytes() in cached]
    assert len(x) == len(tr) and set(unchanged) == set(tr) - swappable
    val_x, _ = _batches(call["validation_data"])
    val = {data.images[i].tobytes() for i in data.indices("val")}
    assert {xi.astype(np.uint8).tobytes() for xi in val_x} == val
    # The same seed gives the same batches; the default (0) leaves every photo as cached.
    assert np.array_equal(x, _batches(_spied_fit(cfg.model_copy(update={"background_swap": 1.0}), data)["x"])[0])
    plain = make_dataset(data.images, tr, data.y[tr], 4, shuffle=False)
    assert {xi.astype(np.uint8).tobytes() for xi in _batches(plain)[0]} == set(cached)


def test_mixup_blends_training_photos_and_their_labels_alike_and_still_learns(tmp_path, settings):
    """`--mixup 0.4`: every training photo is a blend of two cached photos of the batch, and its label row gives
    each photo's class the blend's weight; validation photos and labels are as cached (one-hot rows). A real
    fit with mixup on the colour task still learns it (its test figure through the serving path)."""
    from leafdoc.lifecycle.training import train_model
    from leafdoc.train.config import TrainConfig

    cfg = TrainConfig(
        backbone="baseline_cnn", weights="none", image_size=32, epochs=12, batch_size=8, patience=12, augment=False
    )
    data, _ = _prepared(settings, _colour_folder(tmp_path / "colours", 14), "mix", cfg)
    mixed = cfg.model_copy(update={"mixup": 0.4})
    call = _spied_fit(mixed, data)
    x, y = _batches(call["x"])
    tr = data.indices("train")
    cached = data.images[tr].astype(np.float32)
    assert y.shape == (len(tr), len(data.classes)) and np.allclose(y.sum(axis=1), 1)
    labels = data.y[tr]
    two_classes = 0
    for xi, yi in zip(x, y, strict=True):
        classes = np.flatnonzero(yi > 1e-6)
        if len(classes) == 1:  # paired with a photo of its own class: the label stays one-hot
            assert yi[classes[0]] == pytest.approx(1.0)
            continue
        two_classes += 1
        (c1, c2), w = classes, yi[classes[0]]
        assert yi[c2] == pytest.approx(1 - w, abs=1e-6)
        # the pixels are that blend of a photo of each class, to within rounding
        gap = min(
            np.abs(xi - np.rint(w * cached[a] + (1 - w) * cached[b])).max()
            for a in np.flatnonzero(labels == c1)
            for b in np.flatnonzero(labels == c2)
        )
        assert gap <= 1.0, gap
    assert two_classes >= len(tr) * 0.4  # 3 balanced classes: about 2 of 3 pairs mix two of them
    val_x, val_y = _batches(call["validation_data"])
    va = data.indices("val")
    assert np.array_equal(val_x.astype(np.uint8), data.images[va])
    assert np.array_equal(val_y, np.eye(len(data.classes), dtype=np.float32)[data.y[va]])
    card = train_model(mixed, data, tmp_path / "model").card
    assert card.metrics.test["accuracy"] >= 0.9, card.metrics.test


def test_label_smoothing_trains_on_one_hot_rows_and_still_learns(tmp_path, settings):
    """`--label-smoothing 0.1`: the pipeline hands Keras one-hot rows of each photo's own class (training and
    validation; the loss spreads them), and a real fit still learns the colour task."""
    from leafdoc.lifecycle.training import train_model
    from leafdoc.train.config import TrainConfig

    cfg = TrainConfig(
        backbone="baseline_cnn", weights="none", image_size=32, epochs=12, batch_size=8, patience=12,
        augment=False, label_smoothing=0.1,
    )  # fmt: skip
    data, _ = _prepared(settings, _colour_folder(tmp_path / "colours", 14), "smooth", cfg)
    call = _spied_fit(cfg, data)
    eye = np.eye(len(data.classes), dtype=np.float32)
    x, y = _batches(call["x"])
    rows = {xi.astype(np.uint8).tobytes(): yi for xi, yi in zip(x, y, strict=True)}
    tr = data.indices("train")
    assert len(rows) == len(tr)
    for i in tr:
        assert np.array_equal(rows[data.images[i].tobytes()], eye[data.y[i]])
    _, val_y = _batches(call["validation_data"])
    assert np.array_equal(val_y, eye[data.y[data.indices("val")]])
    card = train_model(cfg, data, tmp_path / "model").card
    assert card.metrics.test["accuracy"] >= 0.9, card.metrics.test


def test_the_head_on_features_computed_once_learns_and_leaves_the_backbone_as_it_was(tmp_path, settings, leaf_folder):
    """`head_on_features`: the frozen backbone's features are computed once (not in every epoch), the head trains on
    them, and the model it writes answers photos it never saw far above chance (1/3) through the serving path; the
    backbone's weights are ImageNet's, untouched, and the checkpoint after that phase lets a stopped run go on with
    fine-tuning without computing the features again."""
    import keras
    from tests.conftest import LEARNS, fresh_accuracy

    from leafdoc.lifecycle.training import train_model
    from leafdoc.train import cached, trainer
    from leafdoc.train.checkpoint import Checkpoint, fingerprint
    from leafdoc.train.config import TrainConfig

    cfg = TrainConfig(**{**LEARNS, "head_on_features": True, "feature_views": 2})
    data, _ = _prepared(settings, leaf_folder, "feat", cfg)
    computed = []
    real = cached._features
    cached._features = lambda model, images, idx, **kw: computed.append(len(idx)) or real(model, images, idx, **kw)
    fits = []
    real_fit = keras.Model.fit
    keras.Model.fit = lambda self, x, *a, **kw: fits.append(getattr(x, "shape", None)) or real_fit(self, x, *a, **kw)
    try:
        out = tmp_path / "model"
        card = train_model(cfg, data, out, checkpoint_dir=tmp_path / "ck").card
    finally:
        cached._features, keras.Model.fit = real, real_fit
    counts = data.counts()
    # Once each, not once an epoch; then the training photos twice more, augmented (feature_views: 2).
    assert computed == [counts["train"], counts["val"], counts["train"], counts["train"]]
    assert len(fits) == 1 and fits[0] == (3 * counts["train"], 1280)  # the head fitted on features, not on photos
    assert [h["phase"] for h in card.history] == ["head"] * len(card.history) and len(card.history) >= 3
    assert fresh_accuracy(out) >= 0.6

    loaded = keras.saving.load_model(out / "model.keras", compile=False).get_layer("backbone").get_weights()
    fresh = trainer.build_model(cfg, len(data.classes), settings.cache_dir / "weights").get_layer("backbone")
    for a, b in zip(fresh.get_weights(), loaded, strict=True):
        np.testing.assert_array_equal(a, b)

    # A checkpoint saved after the phase (what a stopped run finds): fine-tuning goes on, the features are not
    # computed again, and the head's weights are the ones the phase learnt.
    ft = cfg.model_copy(update={"fine_tune_epochs": 1})
    folder = tmp_path / "ck2"
    model = trainer.build_model(ft, len(data.classes), settings.cache_dir / "weights")
    head_only = ft.model_copy(update={"fine_tune_epochs": 0})
    trainer.fit(model, head_only, data, None, Checkpoint(folder, fingerprint(ft, data)))
    learnt = model.get_layer("logits").get_weights()[0].copy()
    computed.clear()
    cached._features = lambda model, images, idx, **kw: computed.append(len(idx)) or real(model, images, idx, **kw)
    try:
        again = trainer.build_model(ft, len(data.classes), settings.cache_dir / "weights")
        events = []
        result = trainer.fit(
            again, ft, data, lambda e: events.append(e.to_dict()), Checkpoint(folder, fingerprint(ft, data))
        )
    finally:
        cached._features = real
    assert computed == []
    assert [h["phase"] for h in result["history"]][-1] == "fine_tune"
    assert not np.allclose(learnt, 0) and any(e["event"] == "epoch" and e["phase"] == "fine_tune" for e in events)


@pytest.mark.parametrize("on", [True, False])
def test_with_last_the_head_kept_also_learns_the_validation_photos_and_the_card_says_so(
    tmp_path, settings, leaf_folder, on
):
    """`train_on_val` (the default) with `restore_best: last` and the head on cached features: a first head learns
    the training photos (the history is its own, its validation figures on photos it did not learn) and answers the
    validation photos, which the abstention threshold is calibrated on; then a fresh head learns the training and
    validation photos (and views of both) and is the model written; the card and the command say so. Off, or with
    a `restore_best` that lets validation choose, the validation photos are not trained on."""
    import keras
    from tests.conftest import LEARNS

    from leafdoc.lifecycle.training import train_model
    from leafdoc.train import cached, trainer
    from leafdoc.train.config import TrainConfig

    cfg = TrainConfig(
        **{**LEARNS, "head_on_features": True, "feature_views": 1, "restore_best": "last", "train_on_val": on}
    )
    assert cached.learns_val(cfg) is on
    assert not cached.learns_val(cfg.model_copy(update={"restore_best": "val_loss"}))
    assert not cached.learns_val(cfg.model_copy(update={"head_on_features": False}))
    data, _ = _prepared(settings, leaf_folder, f"val{on}", cfg)
    fits = []
    real_fit = keras.Model.fit

    def spy(self, x, y=None, *a, **kw):
        fits.append((x.shape, y.copy(), "validation_data" in kw))
        return real_fit(self, x, y, *a, **kw)

    keras.Model.fit = spy
    try:
        card = train_model(cfg, data, tmp_path / "model").card
    finally:
        keras.Model.fit = real_fit
    counts = data.counts()
    assert fits[0][0] == (2 * counts["train"], 1280) and fits[0][2]  # the first head: training photos and a view
    assert [h["phase"] for h in card.history] == ["head"] * cfg.epochs and "val_loss" in card.history[-1]
    if not on:
        assert len(fits) == 1 and trainer.val_learnt(card) == 0 and "val_learnt_note" not in card.to_dict()["dataset"]
        assert "before it learnt them" not in card.abstain["rule"]
        return
    assert len(fits) == 2
    shape, y, validated = fits[1]
    assert shape == (2 * (counts["train"] + counts["val"]), 1280) and not validated  # train + val, each with a view
    val_y = data.y[data.indices("val")]
    assert sorted(y.tolist()) == sorted(np.tile(np.concatenate([data.y[data.indices("train")], val_y]), 2).tolist())
    assert trainer.val_learnt(card) == counts["val"]
    assert "validation photos" in card.to_dict()["dataset"]["val_learnt_note"]
    # The threshold from the first head's answers on the validation photos, not from the kept model's on them.
    assert "before it learnt them" in card.abstain["rule"]
    assert card.test_metrics["n"] == counts["test"]  # the test photos stay held out and scored


def test_fine_tuning_on_cached_activations_trains_the_top_in_place_and_goes_on_from_its_checkpoint(
    tmp_path, settings, leaf_folder
):
    """`fine_tune_cached`: the part trained on cached activations answers exactly as the whole model does (the cut
    sits where no skip connection crosses, the preprocessing is in the cached part, BatchNorm in inference mode);
    fine-tuning changes the backbone's top and nothing below it; the model it writes answers unseen photos far
    above chance through the serving path; stopped in its second epoch, the run goes on from the checkpoint."""
    import keras
    from tests.conftest import LEARNS, fresh_accuracy
    from tests.integration.test_train import _interrupted_fit, _resumed_fit

    from leafdoc.lifecycle.training import train_model
    from leafdoc.train import cached, trainer
    from leafdoc.train.config import TrainConfig

    cfg = TrainConfig(
        **{**LEARNS, "epochs": 6, "head_on_features": True, "fine_tune_epochs": 2, "fine_tune_fraction": 0.35}
    )  # the last epoch kept (restore_best): the model written is the fine-tuned one
    # 3e-3 (fine-tuning at 3e-4): at LEARNS' 1e-2, fine-tuning the top wrecks this tiny model, cached or not
    # (validation 1/3 after its first epoch either way).
    update = {"fine_tune_cached": True, "restore_best": "last", "feature_views": 1, "learning_rate": 3e-3}
    cfg = cfg.model_copy(update=update)
    data, _ = _prepared(settings, leaf_folder, "cached", cfg)
    model = trainer.build_model(cfg, len(data.classes), settings.cache_dir / "weights")
    backbone = model.get_layer("backbone")
    first = int(len(backbone.layers) * (1 - cfg.fine_tune_fraction))
    cut = cached._cut_index(backbone, first)
    assert backbone.layers[cut].name.endswith("_add") and cut < first  # a block's output, below the trainable top
    va = data.indices("val")
    net, _, on_va = cached.on_activations(model, cfg, data, data.indices("train"), va, first, 8, 8)
    whole = model.predict(np.asarray(data.images[va]), verbose=0)
    np.testing.assert_allclose(net.predict(on_va, verbose=0), whole, atol=2e-3)  # float16 activations

    out = tmp_path / "model"
    card = train_model(cfg, data, out, checkpoint_dir=tmp_path / "ck").card
    assert [h["phase"] for h in card.history][-2:] == ["fine_tune", "fine_tune"]
    assert fresh_accuracy(out) >= 0.6
    fresh = trainer.build_model(cfg, len(data.classes), settings.cache_dir / "weights").get_layer("backbone")
    trained = keras.saving.load_model(out / "model.keras", compile=False).get_layer("backbone")
    for i, (layer, learnt) in enumerate(zip(fresh.layers, trained.layers, strict=True)):
        before, after = layer.get_weights(), learnt.get_weights()
        same = all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
        below = i < first or isinstance(layer, keras.layers.BatchNormalization)
        assert same == below or not before, layer.name  # the top's convolutions learnt; the rest as ImageNet's

    folder = tmp_path / "ck-stopped"
    assert _interrupted_fit(cfg, data, folder, stop_after_epoch=7) == list(range(1, 8))  # head 1-6, fine-tune 7
    result, events = _resumed_fit(cfg, data, folder)
    assert events[0] == {"event": "resume", "phase": "fine_tune", "epoch": 7}
    assert [(e["phase"], e["epoch"]) for e in events[1:]] == [("fine_tune", 8)]


def test_fine_tuning_views_show_each_photo_once_an_epoch_as_one_of_its_augmented_copies(
    tmp_path, settings, leaf_folder
):
    """`fine_tune_views`: with cached activations, the training photos are also cached through the augmentation;
    each epoch has every training photo once, as one of its copies (the plain one or a view), drawn anew each epoch,
    with its own label; a training with views fine-tunes and writes a model that answers unseen photos."""
    from tests.conftest import LEARNS, fresh_accuracy

    from leafdoc.lifecycle.training import train_model
    from leafdoc.train import trainer
    from leafdoc.train.cached import on_activations
    from leafdoc.train.config import TrainConfig

    cfg = TrainConfig(
        **{
            **LEARNS,
            "epochs": 6,
            "head_on_features": True,
            "fine_tune_epochs": 2,
            "fine_tune_fraction": 0.35,
            "fine_tune_cached": True,
            "fine_tune_views": 2,
            "restore_best": "last",
            "feature_views": 1,
            "learning_rate": 3e-3,
        }
    )  # as the test above, with views
    data, _ = _prepared(settings, leaf_folder, "views", cfg)
    tr, va = data.indices("train"), data.indices("val")

    def cached(config):  # a network each: the cached part's models are built on the backbone's layers once
        model = trainer.build_model(config, len(data.classes), settings.cache_dir / "weights")
        first = int(len(model.get_layer("backbone").layers) * (1 - config.fine_tune_fraction))
        return on_activations(model, config, data, tr, va, first, 8, 8)[1]

    on_tr, plain = cached(cfg), cached(cfg.model_copy(update={"fine_tune_views": 0}))

    def rows(ds):  # the activations as rows and their labels, in the dataset's order
        x, y = (np.concatenate(parts) for parts in zip(*((a.numpy(), t.numpy()) for a, t in ds), strict=True))
        return x.reshape(len(x), -1), y

    flat, flat_y = rows(plain)  # the plain copies, in some order (rows are matched by content)
    epochs = []
    for _ in range(2):
        x, y = rows(on_tr)
        assert len(x) == len(tr) and sorted(y.tolist()) == sorted(data.y[tr].tolist())  # every photo once an epoch
        # a drawn copy is the photo as it is (one of the plain activations, with that photo's label) or a view of
        # it (none of them)
        same = [np.flatnonzero(np.all(np.isclose(row, flat, atol=1e-2), axis=1)) for row in x]
        assert all(flat_y[j[0]] == label for j, label in zip(same, y, strict=True) if len(j))
        epochs.append((x, sum(len(j) > 0 for j in same)))
    assert all(0 < as_is < len(tr) for _, as_is in epochs), [as_is for _, as_is in epochs]  # about a third as is
    assert not np.array_equal(epochs[0][0], epochs[1][0])  # drawn anew

    out = tmp_path / "model"
    card = train_model(cfg, data, out).card
    assert [h["phase"] for h in card.history][-2:] == ["fine_tune", "fine_tune"]
    assert card.training["fine_tune_views"] == 2
    assert fresh_accuracy(out) >= 0.6


def test_repeated_photos_are_seen_that_many_times_an_epoch(tmp_path, settings, leaf_folder):
    """TrainData.repeat: a photo repeated 3 times is in the training batches 3 times an epoch (the starter's few
    field photos beside thousands of lab photos); the others once."""
    from leafdoc.train.config import TrainConfig

    cfg = TrainConfig(weights="none", backbone="baseline_cnn", image_size=16, epochs=1, augment=False)
    data, _ = _prepared(settings, leaf_folder, "rep", cfg)
    tr = data.indices("train")
    data.repeat = np.ones(len(data.shas), dtype=np.int64)
    data.repeat[tr[0]] = 3
    call = _spied_fit(cfg, data)
    x, _ = _batches(call["x"])
    seen = [int(np.sum(np.all(x.reshape(len(x), -1) == data.images[i].reshape(1, -1), axis=1))) for i in tr]
    assert seen[0] == 3 and seen[1:] == [1] * (len(tr) - 1)


def test_the_frozen_part_below_cached_fine_tuning_is_traced_once_for_every_pass(
    tmp_path, settings, leaf_folder, monkeypatch
):
    """`fine_tune_cached` with views: the backbone below the fine-tuned top runs over the training photos as they
    are and through each view, then over the validation photos (batches of other sizes), as one tf.function traced
    once; traced again for each, TensorFlow printed its "tf.function retracing" warning (issue 54)."""
    from tests.conftest import LEARNS

    from leafdoc.train import cached, trainer
    from leafdoc.train.config import TrainConfig

    cfg = TrainConfig(
        **{
            **LEARNS,
            "head_on_features": True,
            "fine_tune_epochs": 1,
            "fine_tune_fraction": 0.35,
            "fine_tune_cached": True,
            "fine_tune_views": 2,
            "feature_views": 1,
        }
    )
    data, _ = _prepared(settings, leaf_folder, "traced", cfg)
    made, frozen = [], cached._frozen
    monkeypatch.setattr(cached, "_frozen", lambda net: made.append(frozen(net)) or made[-1])
    model = trainer.build_model(cfg, len(data.classes), settings.cache_dir / "weights")
    first = int(len(model.get_layer("backbone").layers) * (1 - cfg.fine_tune_fraction))
    tr, va = data.indices("train"), data.indices("val")
    assert len(np.unique(tr)) != len(va)  # two batch sizes at least
    cached.on_activations(model, cfg, data, tr, va, first, 8, 8)
    assert [f.run.experimental_get_tracing_count() for f in made] == [1]
