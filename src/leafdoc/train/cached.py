"""The phases that train on what a frozen network computed once, not on the photos in every epoch.

- `head_on_features` (TrainConfig.head_on_features, the default with pretrained weights): the frozen backbone runs
  in inference mode, so every epoch would compute the same pooled features again; they are computed once (with
  `feature_views`, also for augmented copies) and the head trains on them: minutes on 2 cores instead of an hour an
  epoch on 24,000 photos. With `learns_val`, a second head then also learns the validation photos.
- `on_activations` (TrainConfig.fine_tune_cached): the backbone below its trainable top runs once and its
  activations are kept; fine-tuning then trains the backbone's top and the head on them (with `fine_tune_views`,
  on augmented copies too: `_drawn_views`).

Both train the model's own layers in place (`_head`), so trainer.fit goes on with the same model; what runs around
each epoch (loss, best epoch, early stopping) is epochs.py's, as for trainer.fit's phases on photos."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from leafdoc.core.errors import ConfigError
from leafdoc.train.config import TrainConfig
from leafdoc.train.epochs import better, early_stopping, loss, one_hot_classes, watched
from leafdoc.train.events import Batch, Checkpointed, Epoch
from leafdoc.train.stopping import fitting, stop_when_asked
from leafdoc.train.teacher import teacher_targets
from leafdoc.train.train_data import class_weights

# `feature_views` is for a lab's few photos: on more training photos than this, the views' extra passes through the
# backbone would cost more than the head phase saves (the starter's 24,000 photos: an hour each).
FEATURE_VIEWS_MAX_PHOTOS = 2000


def learns_val(cfg: TrainConfig) -> bool:
    """Whether the head kept learns from the validation photos too (TrainConfig.train_on_val): only when they choose
    nothing (restore_best `last`) and the head trains on cached features."""
    return cfg.train_on_val and cfg.restore_best == "last" and cfg.pretrained and cfg.head_on_features


class _Frozen(NamedTuple):
    """A network in inference mode as one tf.function for any number of photos, and the shape of one output."""

    run: Callable
    shape: tuple


def _frozen(net) -> _Frozen:
    """`net` traced once, for batches of any size. Keras' predict_on_batch on a new model for each pass (each
    augmented view) and on a last batch of another size traced it again every time, and TensorFlow printed its
    "triggered tf.function retracing" warning twice in a default `leafdoc train` (issue 54)."""
    import tensorflow as tf

    spec = tf.TensorSpec((None, *net.input.shape[1:]), tf.float32)
    return _Frozen(tf.function(lambda x: net(x, training=False), input_signature=[spec]), tuple(net.output.shape[1:]))


def _feature_net(model) -> _Frozen:
    """The model's pooled backbone features (inference mode), for `_features`."""
    import keras

    return _frozen(keras.Model(model.input, model.get_layer("pool").output))


def _features(net: _Frozen, images: np.ndarray, indices: np.ndarray, batch: int = 64, augment=None) -> np.ndarray:
    """The features (`_feature_net`) of `images[indices]`, a batch at a time (the cache is a memmap: the photos are
    read as they are needed, not all at once); with `augment` (pipeline.augmenter), of each batch as that
    augmentation draws it."""
    return _outputs(net, images, indices, batch, augment)


def _outputs(net: _Frozen, images, indices: np.ndarray, batch: int = 64, augment=None, dtype=np.float32) -> np.ndarray:
    """`net`'s outputs for `images[indices]`, a batch at a time, into one array of `dtype`."""
    out = np.empty((len(indices), *net.shape), dtype)
    for i in range(0, len(indices), batch):
        x = np.asarray(images[indices[i : i + batch]]).astype(np.float32)
        if augment is not None:
            x = np.asarray(augment(x, training=True), dtype=np.float32)
        out[i : i + batch] = np.asarray(net.run(x))
    return out


def _each_photo_once(compute, indices: np.ndarray) -> np.ndarray:
    """`compute(photos)` for each photo of `indices` once, as rows for `indices` (repeated photos keep their
    repeats: the starter's field photos are repeated in training)."""
    uniq = np.unique(indices)
    return compute(uniq)[np.searchsorted(uniq, indices)]


def _head(model, cfg: TrainConfig, x):
    """The model's own head layers (after pooling) applied to `x`: a phase that trains on cached features or
    activations trains the model's layers in place."""
    for i in range(len(cfg.head_units)):
        x = model.get_layer(f"head_dropout{i}")(model.get_layer(f"head_dense{i}")(x))
    return model.get_layer("probabilities")(model.get_layer("logits")(model.get_layer("dropout")(x)))


def _cut_index(backbone, first_trainable: int) -> int:
    """Where to cache the activations for fine-tuning from layer `first_trainable` up: a layer before it whose output
    is all the layers after it read (no skip connection crosses it): the latest whose output is at most twice the
    smallest such output (few frozen layers run again each epoch, and a cache of a stage's output, not of the 6x wider
    inside of a block). -1 when there is none."""
    index = {id(layer): i for i, layer in enumerate(backbone.layers)}
    reads = [
        [index[id(t._keras_history.operation)] for node in layer._inbound_nodes for t in node.input_tensors]
        for layer in backbone.layers
    ]
    cuts = [
        cut
        for cut in range(1, min(first_trainable, len(backbone.layers)))
        if all(i >= cut for later in reads[cut + 1 :] for i in later)
    ]
    if not cuts:
        return -1
    size = {cut: int(np.prod(backbone.layers[cut].output.shape[1:])) for cut in cuts}
    return max(cut for cut in cuts if size[cut] <= 2 * min(size.values()))


def on_activations(model, cfg: TrainConfig, data, tr, va, first_trainable: int, train_batch: int, val_batch: int):
    """`fine_tune_cached`: the backbone below its trainable top runs once over the training and validation photos
    (inference mode, no augmentation) and its activations are kept (float16); the fine-tuning phase then fits the
    top and the head (the model's own layers, trained in place) on them, each epoch a fraction of one through the
    whole backbone. Returns that part as a model, and its training and validation datasets."""
    import keras
    import tensorflow as tf

    from leafdoc.train.backbones import inference_mode

    backbone = model.get_layer("backbone")
    cut = _cut_index(backbone, first_trainable)
    if cut < 1:
        raise ConfigError(
            f"fine-tuning on cached activations needs a frozen part of the backbone below its trainable top; "
            f"--fine-tune-fraction {cfg.fine_tune_fraction} leaves none in {cfg.backbone}.",
            hint="Pass a --fine-tune-fraction under 1 (0.35: the last two stages of EfficientNet-Lite0), or fine-tune "
            "without --fine-tune-cached.",
        )
    cut_out = backbone.layers[cut].output
    image = keras.Input((cfg.image_size, cfg.image_size, 3))
    pre = next((layer for layer in model.layers if layer.name == "preprocess"), None)
    below = keras.Model(backbone.input, cut_out)
    bottom = keras.Model(image, below(pre(image) if pre is not None else image, training=False))
    upper = keras.Model(cut_out, backbone.output, name="backbone_top")  # the backbone's own layers, shared
    inference_mode(upper)
    acts_in = keras.Input(tuple(cut_out.shape[1:]), name="activations")
    net = keras.Model(acts_in, _head(model, cfg, model.get_layer("pool")(upper(acts_in, training=False))))
    frozen_bottom = _frozen(bottom)

    def activations(indices: np.ndarray, augment=None) -> np.ndarray:
        return _each_photo_once(
            lambda photos: _outputs(frozen_bottom, data.images, photos, augment=augment, dtype=np.float16), indices
        )

    one_hot = one_hot_classes(cfg, len(data.classes))

    teach = teacher_targets(cfg, data)

    def labels(indices, training: bool = False):
        y = data.y[indices]
        y = np.eye(one_hot, dtype=np.float32)[y] if one_hot else y
        return teach(indices, y, training) if teach else y

    def dataset(indices, batch: int, training: bool):
        """The training photos (`training`: shuffled, taught by the teacher too) or the validation photos."""
        ds = tf.data.Dataset.from_tensor_slices((activations(indices), labels(indices, training=training)))
        if training:
            ds = ds.shuffle(len(indices), seed=cfg.training_seed, reshuffle_each_iteration=True)
        return ds.batch(batch).map(lambda a, t: (tf.cast(a, tf.float32), t)).prefetch(2)

    views = cfg.fine_tune_views if cfg.augment else 0
    train = dataset(tr, train_batch, True) if not views else _drawn_views(cfg, activations, labels, tr, train_batch)
    return net, train, dataset(va, val_batch, False)


def _drawn_views(cfg: TrainConfig, activations, labels, tr: np.ndarray, batch: int):
    """`fine_tune_views`: the training photos' activations as they are and through `fine_tune_views` draws of the
    training augmentation, computed once; each epoch shows every photo once, as one of its copies drawn at random
    (seeded), in a new order. The copies stay in NumPy (a copy of 24,000 photos' activations is 0.5 GB: too big
    to hand TensorFlow as a constant); the batches are gathered from them."""
    import tensorflow as tf

    from leafdoc.train.pipeline import augmenter

    aug = augmenter(cfg.training_seed, cfg.zoom_in)
    plain = activations(tr)
    copies = np.empty((1 + cfg.fine_tune_views, *plain.shape), plain.dtype)  # filled in place: no second copy of all
    copies[0] = plain
    del plain
    for view in range(1, len(copies)):
        copies[view] = activations(tr, aug)
    y = labels(tr, training=True)
    rng = np.random.default_rng(cfg.training_seed)

    def batches():
        order = rng.permutation(len(tr))
        drawn = rng.integers(0, len(copies), len(tr))
        for i in range(0, len(tr), batch):
            at = order[i : i + batch]
            yield copies[drawn[at], at].astype(np.float32), y[at]

    spec = (
        tf.TensorSpec((None, *copies.shape[2:]), tf.float32),
        tf.TensorSpec((None, *y.shape[1:]), tf.as_dtype(y.dtype)),
    )
    steps = int(np.ceil(len(tr) / batch))  # told to Keras: it would otherwise find out by running out in epoch 1
    ds = tf.data.Dataset.from_generator(batches, output_signature=spec)
    return ds.apply(tf.data.experimental.assert_cardinality(steps)).prefetch(2)


def head_on_features(model, cfg, data, tr, va, cw, best, on_event, checkpoint, saved, trained) -> tuple[int, dict]:
    """The head phase on features computed once: the backbone is frozen and in inference mode, so every epoch
    would compute the same features again; on 24,000 photos that is an hour an epoch on two cores, against
    seconds on the cached features. The head's layers are the model's own, so the model is trained in place.
    Augmentation in this phase only through `feature_views` (augmented copies whose features are computed once
    too); the fine-tuning phase has it on every batch. Returns the phase's last epoch, and what it says of the
    validation photos for trainer.fit's result (empty unless they were learnt).

    With `learns_val(cfg)`, once that head has trained, its probabilities on the validation photos are kept
    (`val_probs`, `val_y`: the abstention threshold is calibrated on them, photos that head never saw), and a fresh
    head (the same initial weights) trains as long on the training and validation photos (and views of both); it
    is the one kept (`val_photos_learnt`). The history stays the first head's: its validation figures are on photos
    it did not learn."""
    import keras

    if saved and saved["phase"] == "head" and saved["finished"]:
        model.set_weights(checkpoint.arrays("weights"))
        # The first head's answers are gone: the abstention is calibrated as before.
        learnt = learns_val(cfg) and saved["epoch"] == cfg.epochs
        return saved["epoch"], ({"val_photos_learnt": len(va)} if learnt else {})
    pooled = _feature_net(model)  # traced once for every pass below
    f_tr = _each_photo_once(lambda photos: _features(pooled, data.images, photos), tr)
    f_va = _features(pooled, data.images, va)
    y_tr = data.y[tr]
    views = cfg.feature_views if cfg.augment and len(tr) <= FEATURE_VIEWS_MAX_PHOTOS else 0
    aug = None
    if views:
        # Augmentation at the level of features: each view is the training photos through the training
        # augmentation (flips, rotation, zoom, light), then the frozen backbone, once; the head sees them all in
        # every epoch. With 63 photos the head otherwise learns their exact features (issue 54).
        from leafdoc.train.pipeline import augmenter

        aug = augmenter(cfg.training_seed, cfg.zoom_in)
        f_views = [_features(pooled, data.images, tr, augment=aug) for _ in range(views)]
        f_tr, y_tr = np.concatenate([f_tr, *f_views]), np.tile(y_tr, views + 1)
    inp = keras.Input((f_tr.shape[1],), name="features")
    head = keras.Model(inp, _head(model, cfg, inp), name="head")
    initial = head.get_weights()
    one_hot = one_hot_classes(cfg, len(data.classes))
    y_va = data.y[va]
    y_tr_labels = y_tr
    teach = teacher_targets(cfg, data)
    if one_hot:
        y_tr, y_va = np.eye(one_hot, dtype=np.float32)[y_tr], np.eye(one_hot, dtype=np.float32)[y_va]
    if teach:
        y_tr, y_va = teach(np.tile(tr, views + 1), y_tr, True), teach(va, y_va, False)
    stop = early_stopping(cfg.restore_best, cfg.patience)
    steps = int(np.ceil(len(f_tr) / cfg.batch_size))

    class Events(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = {k: float(v) for k, v in (logs or {}).items()}
            value = watched(best["key"], epoch, logs)
            usable = value is not None and value == value  # not missing, not NaN
            if usable and (best["epoch"] == 0 or better(best["key"], value, best["value"])):
                best.update(value=value, epoch=epoch + 1, weights=model.get_weights(), logs=logs)
            event = Epoch("head", epoch + 1, time.perf_counter() - self._t, logs)
            best["history"].append(event.to_dict())
            if on_event:
                on_event(Batch("head", steps, steps))
                on_event(event)

    rng = np.random.default_rng(cfg.training_seed)

    def fit_head(x, y, weights, callbacks, validation=None):
        """The head from its initial weights on (x, y), shuffled once first (Keras shuffles every epoch; a first
        shuffle spreads the repeats): the same for the head on the training photos and the one that also learns
        the validation photos."""
        head.set_weights(initial)
        head.compile(optimizer=keras.optimizers.Adam(cfg.base_learning_rate), loss=loss(cfg), metrics=["accuracy"])
        order = rng.permutation(len(x))
        more = {"validation_data": validation} if validation is not None else {}
        with fitting():
            return head.fit(
                x[order],
                y[order],
                **more,
                epochs=cfg.epochs,
                batch_size=cfg.batch_size,
                class_weight=weights,
                callbacks=callbacks,
                verbose=0,
            )

    hist = fit_head(f_tr, y_tr, cw, [Events(), stop, stop_when_asked()], validation=(f_va, y_va))
    done = len(hist.history.get("loss", []))
    learnt: dict = {}
    if learns_val(cfg) and done == cfg.epochs:  # not when stopped part-way (a signal)
        learnt.update(val_probs=np.asarray(head.predict(f_va, verbose=0)), val_y=data.y[va].copy())
        f_va_views = [_features(pooled, data.images, va, augment=aug) for _ in range(views)]
        x_all = np.concatenate([f_tr, f_va, *f_va_views])
        labels = np.concatenate([y_tr_labels, np.tile(data.y[va], views + 1)])
        y_all = np.eye(one_hot, dtype=np.float32)[labels] if one_hot else labels
        if teach:  # the validation photos, learnt here, are taught by their labels: the teacher's file has no rows
            y_all = teach(np.concatenate([np.tile(tr, views + 1), np.tile(va, views + 1)]), y_all, True)
        cw_all = class_weights(labels, len(data.classes)) if cw is not None else None
        fit_head(x_all, y_all, cw_all, [stop_when_asked()])
        best["weights"] = model.get_weights()  # the head kept: this one (`last`: its last epoch)
        learnt["val_photos_learnt"] = len(va)
    if checkpoint:
        model.compile(optimizer=keras.optimizers.Adam(cfg.base_learning_rate), loss=loss(cfg))
        model.optimizer.build(model.trainable_variables)
        checkpoint.save(
            model, phase="head", phase_start=0, epoch=done, finished=True, best=best, stop=stop, train_seconds=trained()
        )
        if on_event:
            on_event(Checkpointed("head", done, str(checkpoint.folder)))
    return done, learnt
