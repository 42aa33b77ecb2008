"""Training: dataset version -> split -> cached arrays -> Keras model -> exported files (lifecycle/training.py
scores and calibrates them into a model folder).

Recipes, as the field does them:
- pretrained weights (imagenet or a file): phase 1 trains the head on a frozen backbone called with
  training=False; phase 2 unfreezes the top of the backbone at a 10x lower learning rate (cosine decay), with
  BatchNorm kept frozen (inference mode), so the fine-tuning does not wreck its statistics.
- from scratch (`--weights none`): one phase, Adam with cosine decay, and BatchNorm momentum lowered
  from Keras applications' 0.999 to 0.9. At 0.999 the moving statistics need thousands of steps to
  follow the weights; on a few thousand images they lag so far behind that inference-mode accuracy
  stays near chance while training accuracy climbs (README, "BatchNorm momentum", has the figures).
- class weights (inverse frequency, normalised to mean 1) in the loss by default: every image is
  still seen once per epoch, which an oversampler would not give us, and the cached pipeline stays
  a plain index shuffle.
- early stopping on validation loss in inference mode; the best epoch's weights are restored.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np

from leafdoc import __version__
from leafdoc.core.atomic import atomic_write_json
from leafdoc.core.errors import ConfigError, ModelError
from leafdoc.data.cache import build_cache, cache_key
from leafdoc.data.catalog import Catalog
from leafdoc.data.datasets import get_version, version_items
from leafdoc.data.splits import split_items
from leafdoc.data.store import BlobStore
from leafdoc.imaging.photos import RESIZE_RULE, Preparation
from leafdoc.modelfolder import (
    KERAS_FILE,
    ONNX_FILE,
    SPLIT_FILE,
    ModelCard,
    read_card,
    read_labels,
    write_card,
    write_labels,
)
from leafdoc.train import backbone_registry
from leafdoc.train.config import TrainConfig
from leafdoc.train.events import Batch, Checkpointed, Epoch, OnEvent, Restarted, Resumed
from leafdoc.train.stopping import fitting, stop_when_asked

# `feature_views` is for a lab's few photos: on more training photos than this, the views' extra passes through the
# backbone would cost more than the head phase saves (the starter's 24,000 photos: an hour each).
FEATURE_VIEWS_MAX_PHOTOS = 2000

PROVENANCE_NOTE = (
    "Trained on the images of the dataset version named in `dataset`. See leafdoc's "
    "docs/data-and-licences.md for sources and licences of the shared datasets."
)


@dataclass
class TrainData:
    images: np.ndarray  # (N, S, S, 3) uint8, memmap over the cache
    shas: list[str]
    classes: list[str]
    y: np.ndarray  # class index per image
    split: np.ndarray  # 'train' | 'val' | 'test' per image
    dataset: str
    version: int
    cache_dir: Path | None = None  # the data home's cache: converted pretrained weights are kept under it
    preparation: Preparation | None = None  # what was done to the images (cfg's, with the lights it measured)
    # Times each image is seen per training epoch (None: once). A few field photos beside thousands of lab
    # photos are repeated so that the model sees them often enough to learn what the field looks like.
    repeat: np.ndarray | None = None

    def training_indices(self) -> np.ndarray:
        tr = self.indices("train")
        return tr if self.repeat is None else np.repeat(tr, self.repeat[tr])

    def indices(self, part: str) -> np.ndarray:
        return np.nonzero(self.split == part)[0]

    def split_record(self, seed: int) -> dict:
        """Which images were train/val/test: evaluation can prove it never scores a training image."""
        out = {"dataset": self.dataset, "version": self.version, "seed": seed}
        for part in ("train", "val", "test"):
            out[part] = sorted(self.shas[i] for i in self.indices(part))
        return out

    def counts(self) -> dict[str, int]:
        return {p: int((self.split == p).sum()) for p in ("train", "val", "test")}


def prepare_data(
    catalog: Catalog,
    store: BlobStore,
    cache_dir: Path,
    dataset: str,
    cfg: TrainConfig,
    version: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    train_only: frozenset[str] = frozenset(),
    seen: frozenset[str] = frozenset(),
) -> TrainData:
    """`train_only`: sha256s that always go to the training split and take no part in splitting the others,
    so adding them leaves the other images' train/val/test exactly as they were (an experiment's extra source).
    `seen`: photos the model warm-started from learnt from: they and their near-duplicates go to training
    (data/splits.py), so its figures stay on photos no training saw."""
    row = get_version(catalog, dataset, version)
    items = version_items(catalog, row)
    rest = [it for it in items if it[0] not in train_only]
    assignment = split_items(
        rest,
        seed=cfg.seed,
        val=cfg.val_fraction,
        test=cfg.test_fraction,
        seen=seen,
        where=f"dataset {dataset!r} v{row.version}",
    )
    assignment.update({sha: "train" for sha, _, _ in items if sha in train_only})
    shas = [sha for sha, _, _ in items]
    classes = sorted({label for _, label, _ in items})
    index = {c: i for i, c in enumerate(classes)}
    prep = cfg.preparation
    if prep.white_balance == "light-range":  # the lights of this split's training photos
        train_shas = [sha for sha in shas if assignment[sha] == "train"]
        try:
            prep = prep.with_lights(train_shas, read=store.get, what=f"the {len(train_shas)} training photos")
        except ValueError as exc:
            raise ConfigError(
                f"{dataset}: {exc}.", hint="Train with --white-balance none: its photos show no sheet to read."
            ) from None
    images = build_cache(cache_dir / cache_key(dataset, row.version, prep), shas, store, prep, progress=progress)
    return TrainData(
        images=images,
        shas=shas,
        classes=classes,
        y=np.array([index[label] for _, label, _ in items], dtype=np.int32),
        split=np.array([assignment[sha] for sha in shas]),
        dataset=dataset,
        version=row.version,
        cache_dir=Path(cache_dir),
        preparation=prep,
    )


def class_weights(y: np.ndarray, n_classes: int) -> dict[int, float]:
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / (n_classes * np.maximum(counts, 1)), 0.0)
    return {i: float(v) for i, v in enumerate(w)}


def _seed_everything(seed: int) -> None:
    import keras

    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    keras.utils.set_random_seed(seed)


def make_strategy(mode: str):
    """The tf.distribute strategy for TrainConfig.distribute. `auto` mirrors only when more than one GPU is
    visible: on one device, MirroredStrategy adds per-step overhead and nothing else."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if mode == "none" or (mode == "auto" and len(gpus) < 2):
        return tf.distribute.get_strategy()  # the default strategy: one device, no mirroring
    if mode not in ("auto", "mirrored"):
        raise ConfigError(f"distribute={mode!r} is not one of auto, mirrored, none.")
    # Every GPU; without one, every CPU device (one, unless the CPU was split into logical devices).
    devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=devices)


def describe_strategy(strategy, requested: str) -> dict:
    """What the card records: the strategy that trained the model, its replicas and devices."""
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.MirroredStrategy):
        name, devices = type(strategy).__name__, list(strategy.extended.worker_devices)
    else:  # the default strategy places ops on the first GPU, else on the CPU
        name = "default"
        devices = [d.name for d in (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU"))[:1]]
    return {
        "requested": requested,
        "strategy": name,
        "replicas": int(strategy.num_replicas_in_sync),
        "devices": devices,
    }


def split_for_replicas(indices: np.ndarray, batch_size: int, part: str, seed: int) -> tuple[np.ndarray, int]:
    """Images and global batch size for one split under the current strategy (one replica: unchanged).

    With several replicas every batch must give each replica at least one image (an empty replica batch
    breaks BatchNorm), and the first batch must split evenly (Keras reduces it across replicas to build the
    model). So the batch becomes a multiple of the replica count and the split leaves out `len % replicas`
    of its images (fewer than the replicas; chosen with the seed, so a run repeats)."""
    import tensorflow as tf

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas == 1:
        return indices, batch_size
    if len(indices) < replicas:
        raise ConfigError(
            f"the {part} split has {len(indices)} images, fewer than the {replicas} replicas training in parallel.",
            hint="Add images to the dataset, or train with --distribute none.",
        )
    keep = len(indices) - len(indices) % replicas
    kept = np.sort(np.random.default_rng(seed).choice(indices, keep, replace=False))
    return kept, max(replicas, batch_size // replicas * replicas)


def build_model(cfg: TrainConfig, n_classes: int, weights_cache: Path | None = None, start_weights: bool = True):
    """The classifier: `cfg.backbone` starting from `cfg.weights`, pooled, the head. `start_weights=False` leaves
    the backbone's weights as built, not loaded: for a warm start, which overwrites them (`warm_start`); the model
    is made as `cfg.weights` says all the same (frozen as a pretrained backbone is)."""
    import keras
    from keras import layers

    from leafdoc.train.backbones import build_backbone, preprocessing_layer

    weights = cfg.weights if start_weights else backbone_registry.NO_WEIGHTS
    backbone = build_backbone(cfg.backbone, weights, cfg.image_size, cfg.alpha, cache_dir=weights_cache)
    if not cfg.pretrained and cfg.bn_momentum is not None:
        for layer in backbone.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = cfg.bn_momentum
    inputs = keras.Input((cfg.image_size, cfg.image_size, 3), name="image")
    pre = preprocessing_layer(cfg.backbone)
    x = pre(inputs) if pre is not None else inputs
    # Pretrained: the backbone always in inference mode (training=False), also while fine-tuning: BatchNorm
    # keeps its ImageNet statistics, dropout inside it (EfficientNetV2's stochastic depth) is off.
    if cfg.pretrained:
        _inference_mode(backbone)
    feats = backbone(x, training=False) if cfg.pretrained else backbone(x)
    pooled = layers.GlobalAveragePooling2D(name="pool")(feats)
    h = pooled
    for i, units in enumerate(cfg.head_units):
        h = layers.Dense(units, activation="relu", name=f"head_dense{i}")(h)
        h = layers.Dropout(cfg.dropout, name=f"head_dropout{i}")(h)
    h = layers.Dropout(cfg.dropout, name="dropout")(h)
    logits = layers.Dense(n_classes, name="logits")(h)
    probs = layers.Activation("softmax", name="probabilities", dtype="float32")(logits)
    return keras.Model(inputs, probs, name=f"leafdoc_{cfg.backbone}")


def _inference_mode(backbone) -> None:
    """Make `backbone(x, training=False)` inside a functional model mean it. Keras 3.15 overrides that
    argument with the outer call's (model.fit calls with training=True; keras-team/keras#23364 fixes it
    upstream), which ran the frozen backbone's dropout during training. A layer not taking part in the
    call context keeps the training=False it was called with, and passes it to every layer inside."""
    backbone._call_context_args = set(getattr(backbone, "_call_context_args", ())) - {"training"}


def warm_start(model, parent_dir: Path, classes: list[str]) -> str:
    """Copy weights from a parent model folder: all of them if the labels match, else the backbone."""
    import keras

    parent_dir = Path(parent_dir)
    try:
        parent = keras.saving.load_model(parent_dir / "model.keras", compile=False)
        parent_labels = read_labels(parent_dir)
    except Exception as exc:
        raise ModelError(f"{parent_dir}: cannot load the parent model to warm-start from ({exc}).") from None
    try:
        # Same labels and same head (e.g. a later stage of a recipe): every weight carries over. A
        # different head (extra dense layers) keeps only the backbone, like a change of labels.
        if parent_labels == classes and _same_shapes(model, parent):
            model.set_weights(parent.get_weights())
            return "all"
        model.get_layer("backbone").set_weights(parent.get_layer("backbone").get_weights())
        return "backbone"
    except ValueError as exc:
        raise ModelError(
            f"{parent_dir}: its architecture does not match this training run ({exc}).",
            hint="Use the parent's backbone, width and image size, or train without warm start.",
        ) from None


def _same_shapes(a, b) -> bool:
    wa, wb = a.get_weights(), b.get_weights()
    return len(wa) == len(wb) and all(x.shape == y.shape for x, y in zip(wa, wb, strict=True))


def _mode(key: str) -> str:
    """Whether a validation figure is better higher (accuracy) or lower (loss), in Keras' words."""
    return "max" if key.endswith("accuracy") else "min"


def _better(key: str, value: float, best: float) -> bool:
    if key == "last":  # every epoch is the best so far: the last one is kept
        return True
    return value > best if _mode(key) == "max" else value < best


def _watched(key: str, epoch: int, logs: dict) -> float | None:
    """The figure `restore_best` picks an epoch by: the epoch's number for `last`, else its validation figure."""
    return float(epoch + 1) if key == "last" else logs.get(key)


def _callbacks(on_event: OnEvent | None, phase: str, steps: int, best: dict, whole=None):
    """`whole`: the model whose weights the best epoch keeps, when the one fitted is a part of it."""
    import keras

    class Events(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if on_event:
                on_event(Batch(phase, batch + 1, steps))

        def on_epoch_end(self, epoch, logs=None):
            logs = {k: float(v) for k, v in (logs or {}).items()}
            value = _watched(best["key"], epoch, logs)
            usable = value is not None and value == value  # not missing, not NaN
            if usable and (best["epoch"] == 0 or _better(best["key"], value, best["value"])):
                best.update(value=value, epoch=epoch + 1, weights=(whole or self.model).get_weights(), logs=logs)
            event = Epoch(phase, epoch + 1, time.perf_counter() - self._t, logs)
            best["history"].append(event.to_dict())
            if on_event:
                on_event(event)

    return [Events()]


def build_training_state(model, dataset) -> None:
    """Create the compiled model's optimizer, loss and metric variables now, from the dataset's element spec.

    With no distribution strategy, Keras creates them inside the first traced training step, and a tf.function
    that creates variables is traced a second time: about 2.3 s per training phase for EfficientNet-Lite0 (a
    quick recipe's run has two; the quick PlantVillage recipe took 112 s against 140 s). Keras does this itself
    under a distribution strategy."""
    if getattr(model, "_distribute_strategy", None) is not None or not hasattr(model, "_symbolic_build"):
        return
    x, y = dataset.element_spec[:2]
    model._symbolic_build(data_batch=(x, y))


def fit(model, cfg: TrainConfig, data: TrainData, on_event: OnEvent | None = None, checkpoint=None) -> dict:
    """Train in place; restore the best epoch's weights. Returns {'history', 'best_epoch', ...}.

    With a Checkpoint, the state is saved after every epoch, and a checkpoint of the same settings and
    split is continued: finished phases are skipped and the current one goes on from its next epoch."""
    import keras

    from leafdoc.train.pipeline import augmenter, make_dataset

    tr, train_batch = split_for_replicas(data.training_indices(), cfg.batch_size, "training", cfg.training_seed)
    va, val_batch = split_for_replicas(data.indices("val"), cfg.batch_size, "validation", cfg.seed)  # the split's
    one_hot = _one_hot(cfg, len(data.classes))  # validation's labels too: one loss scores both
    aug = augmenter(cfg.training_seed, cfg.zoom_in) if cfg.augment else None
    train_ds = make_dataset(
        data.images,
        tr,
        data.y[tr],
        train_batch,
        shuffle=True,
        seed=cfg.training_seed,
        augment=aug,
        background_swap=cfg.background_swap,
        colour_cast=cfg.colour_cast,
        one_hot=one_hot,
        mixup=cfg.mixup,
    )
    val_ds = make_dataset(data.images, va, data.y[va], val_batch, shuffle=False, one_hot=one_hot)
    steps = int(np.ceil(len(tr) / train_batch))
    cw = class_weights(data.y[tr], len(data.classes)) if cfg.class_weights else None
    best = {"key": cfg.restore_best, "value": None, "epoch": 0, "weights": None, "history": [], "logs": {}}
    saved = checkpoint.state if checkpoint else None
    if checkpoint and checkpoint.ignored and on_event:
        on_event(Restarted(checkpoint.ignored))
    if saved:
        best.update(saved["best"], history=saved["history"], weights=checkpoint.arrays("best"))
        if on_event:
            on_event(Resumed(saved["phase"], saved["epoch"]))
    metrics = ["accuracy"]

    t0 = time.perf_counter()
    before = float((saved or {}).get("train_seconds") or 0.0)  # trained before the checkpoint, in other processes

    def trained() -> float:
        return before + time.perf_counter() - t0

    def run(phase: str, epochs: int, lr, initial_epoch: int = 0, net=None, train=train_ds, val=val_ds) -> int:
        """Fit `net` (the model, or a part of it sharing its layers: `_on_activations`) on `train` for the phase."""
        nonlocal saved
        net = net or model
        end = initial_epoch + epochs
        net.compile(optimizer=keras.optimizers.Adam(lr), loss=_loss(cfg), metrics=metrics)
        stop = _early_stopping(cfg.restore_best, cfg.patience)
        start, finished = initial_epoch, False
        if saved and saved["phase"] == phase:
            if not checkpoint.restore(model, net):
                raise ModelError(
                    f"{checkpoint.folder}: the checkpoint does not fit this model.",
                    hint="Delete the folder to train from the first epoch.",
                )
            start, finished, stop.saved = saved["epoch"], saved["finished"], saved["stop"]
        saved = None
        if finished or start >= end:  # the phase had ended (early stopping or its last epoch)
            return start
        callbacks = [*_callbacks(on_event, phase, steps, best, model), stop]
        if checkpoint:
            callbacks.append(_saver(checkpoint, phase, initial_epoch, end, best, stop, trained, on_event, model))
        callbacks.append(stop_when_asked())  # last: a signal stops the fit after the epoch's checkpoint
        build_training_state(net, train)
        with fitting():
            hist = net.fit(
                train,
                validation_data=val,
                epochs=end,
                initial_epoch=start,
                class_weight=cw,
                callbacks=callbacks,
                shuffle=False,  # the tf.data pipeline shuffles; Keras would only warn that it ignores this
                verbose=0,
            )
        return start + len(hist.history.get("loss", []))

    learnt_val: dict = {}  # `train_on_val`: what _head_on_features says of the validation photos it learnt
    backbone = model.get_layer("backbone")
    if cfg.pretrained:
        backbone.trainable = False
        if saved and saved["phase"] == "fine_tune":  # the head phase ended before the checkpoint
            done = saved["phase_start"]
        elif cfg.head_on_features:
            done, learnt_val = _head_on_features(
                model, cfg, data, tr, va, cw, best, on_event, checkpoint, saved, trained
            )
            saved = None
        else:
            done = run("head", cfg.epochs, cfg.base_learning_rate)
        if cfg.fine_tune_epochs:
            backbone.trainable = True
            n_frozen = int(len(backbone.layers) * (1 - cfg.fine_tune_fraction))
            for i, layer in enumerate(backbone.layers):
                layer.trainable = i >= n_frozen and not isinstance(layer, keras.layers.BatchNormalization)
            # Cosine decay to 1% of the fine-tuning rate: at a constant rate, fine-tuning the whole backbone made
            # validation accuracy swing between 0.87 and 0.97 from one epoch to the next (the old starter's run 2).
            ft = keras.optimizers.schedules.CosineDecay(
                cfg.base_learning_rate / 10, decay_steps=cfg.fine_tune_epochs * steps, alpha=0.01
            )
            if cfg.fine_tune_cached:
                net, on_tr, on_va = _on_activations(model, cfg, data, tr, va, n_frozen, train_batch, val_batch)
                run("fine_tune", cfg.fine_tune_epochs, ft, initial_epoch=done, net=net, train=on_tr, val=on_va)
            else:
                run("fine_tune", cfg.fine_tune_epochs, ft, initial_epoch=done)
    else:
        total = cfg.epochs * steps
        schedule = keras.optimizers.schedules.CosineDecay(cfg.base_learning_rate, decay_steps=total, alpha=0.01)
        run("scratch", cfg.epochs, schedule)
    if best["weights"] is not None:
        model.set_weights(best["weights"])
    return {
        "history": best["history"],
        "best_epoch": best["epoch"],
        "best_val": best["logs"],
        "train_seconds": trained(),  # with the part before a checkpoint this run continued from
        "train_seconds_before_resume": before,
        **learnt_val,
    }


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


def _on_activations(model, cfg: TrainConfig, data, tr, va, first_trainable: int, train_batch: int, val_batch: int):
    """`fine_tune_cached`: the backbone below its trainable top runs once over the training and validation photos
    (inference mode, no augmentation) and its activations are kept (float16); the fine-tuning phase then fits the
    top and the head (the model's own layers, trained in place) on them, each epoch a fraction of one through the
    whole backbone. Returns that part as a model, and its training and validation datasets."""
    import keras
    import tensorflow as tf

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
    _inference_mode(upper)
    acts_in = keras.Input(tuple(cut_out.shape[1:]), name="activations")
    net = keras.Model(acts_in, _head(model, cfg, model.get_layer("pool")(upper(acts_in, training=False))))
    frozen_bottom = _frozen(bottom)

    def activations(indices: np.ndarray, augment=None) -> np.ndarray:
        return _each_photo_once(
            lambda photos: _outputs(frozen_bottom, data.images, photos, augment=augment, dtype=np.float16), indices
        )

    one_hot = _one_hot(cfg, len(data.classes))

    def labels(indices):
        y = data.y[indices]
        return np.eye(one_hot, dtype=np.float32)[y] if one_hot else y

    def dataset(indices, batch: int, shuffle: bool):
        ds = tf.data.Dataset.from_tensor_slices((activations(indices), labels(indices)))
        if shuffle:
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
    y = labels(tr)
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


def _head_on_features(model, cfg, data, tr, va, cw, best, on_event, checkpoint, saved, trained) -> tuple[int, dict]:
    """The head phase on features computed once: the backbone is frozen and in inference mode, so every epoch
    would compute the same features again; on 24,000 photos that is an hour an epoch on two cores, against
    seconds on the cached features. The head's layers are the model's own, so the model is trained in place.
    Augmentation in this phase only through `feature_views` (augmented copies whose features are computed once
    too); the fine-tuning phase has it on every batch. Returns the phase's last epoch, and what it says of the
    validation photos for `fit`'s result (empty unless they were learnt).

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
    one_hot = _one_hot(cfg, len(data.classes))
    y_va = data.y[va]
    y_tr_labels = y_tr
    if one_hot:
        y_tr, y_va = np.eye(one_hot, dtype=np.float32)[y_tr], np.eye(one_hot, dtype=np.float32)[y_va]
    stop = _early_stopping(cfg.restore_best, cfg.patience)
    steps = int(np.ceil(len(f_tr) / cfg.batch_size))

    class Events(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = {k: float(v) for k, v in (logs or {}).items()}
            value = _watched(best["key"], epoch, logs)
            usable = value is not None and value == value  # not missing, not NaN
            if usable and (best["epoch"] == 0 or _better(best["key"], value, best["value"])):
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
        head.compile(optimizer=keras.optimizers.Adam(cfg.base_learning_rate), loss=_loss(cfg), metrics=["accuracy"])
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
        cw_all = class_weights(labels, len(data.classes)) if cw is not None else None
        fit_head(x_all, y_all, cw_all, [stop_when_asked()])
        best["weights"] = model.get_weights()  # the head kept: this one (`last`: its last epoch)
        learnt["val_photos_learnt"] = len(va)
    if checkpoint:
        model.compile(optimizer=keras.optimizers.Adam(cfg.base_learning_rate), loss=_loss(cfg))
        model.optimizer.build(model.trainable_variables)
        checkpoint.save(
            model, phase="head", phase_start=0, epoch=done, finished=True, best=best, stop=stop, train_seconds=trained()
        )
        if on_event:
            on_event(Checkpointed("head", done, str(checkpoint.folder)))
    return done, learnt


def finished_from_checkpoint(model, checkpoint) -> dict:
    """End a stopped run now (`finish`): the model takes the best epoch's weights its checkpoint holds, and the
    run's history and times are the checkpoint's. For a run that cannot go on to its last epoch (the machine is
    needed, the session ends): the card's history says how many epochs it had."""
    state = checkpoint.state if checkpoint else None
    best = checkpoint.arrays("best") if state else None
    if best is None:
        where = checkpoint.folder if checkpoint else "(no checkpoint folder)"
        why = f" ({checkpoint.ignored})" if checkpoint and checkpoint.ignored else ""
        raise ModelError(
            f"{where}: no checkpoint of this run to finish from{why}.",
            hint="Finish only a run stopped part-way, with the same settings and data.",
        )
    model.set_weights(best)
    return {
        "history": state["history"],
        "best_epoch": state["best"]["epoch"],
        "best_val": state["best"]["logs"],
        "train_seconds": state["train_seconds"],
        "train_seconds_before_resume": state["train_seconds"],
        "finished_early": {"phase": state["phase"], "epoch": state["epoch"]},
    }


def _early_stopping(key: str, patience: int):
    """Keras' early stopping, whose count can be carried over from a checkpoint (set `.saved`)."""
    import keras

    if key == "last":  # no early stopping: every epoch runs (the checkpoint still records a count)

        class NoStopping(keras.callbacks.Callback):
            saved: dict | None = None
            wait, best = 0, None

        return NoStopping()

    class EarlyStopping(keras.callbacks.EarlyStopping):
        saved: dict | None = None

        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            if self.saved:
                self.wait, self.best = self.saved["wait"], self.saved["best"]

    return EarlyStopping(monitor=key, mode=_mode(key), patience=patience)


def _saver(
    checkpoint,
    phase: str,
    phase_start: int,
    end: int,
    best: dict,
    stop,
    trained,
    on_event: OnEvent | None = None,
    whole=None,
):
    import keras

    class Saver(keras.callbacks.Callback):
        """Saves the checkpoint after each epoch, after early stopping has had its say; then a `checkpoint`
        event (a service job copies the folder to the shared store)."""

        def on_epoch_end(self, epoch, logs=None):
            finished = bool(self.model.stop_training) or epoch + 1 >= end
            checkpoint.save(
                whole or self.model,
                optimizer=self.model.optimizer,
                phase=phase,
                phase_start=phase_start,
                epoch=epoch + 1,
                finished=finished,
                best=best,
                stop=stop,
                train_seconds=trained(),
            )
            if on_event:
                on_event(Checkpointed(phase, epoch + 1, str(checkpoint.folder)))

    return Saver()


def _one_hot(cfg: TrainConfig, n_classes: int) -> int | None:
    """The number of classes when the loss needs one-hot label rows (label smoothing spreads them, mixup blends
    them), for the pipeline to give them so; None for class numbers."""
    return n_classes if cfg.mixup or cfg.label_smoothing else None


def _loss(cfg: TrainConfig):
    import keras

    if cfg.mixup or cfg.label_smoothing:  # the pipeline gives one-hot rows (_one_hot)
        return keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()


def train(
    cfg: TrainConfig,
    data: TrainData,
    folder: Path,
    *,
    on_event: OnEvent | None = None,
    init_from: Path | None = None,
    parent_version: str | None = None,
    provenance: str | None = None,
    checkpoint_dir: Path | None = None,
    finish: bool = False,
) -> Exported:
    """Train, then export into `folder`: model.keras, model.onnx, labels.json, split.json and a card without
    figures. Returns the card, and the validation photos' probabilities and classes from the head trained before it
    learnt them (`train_on_val`), if there was one: the abstention threshold is calibrated on those
    (lifecycle/training.py). Scoring, calibration and the atomic write of the whole folder are lifecycle.training's:
    `folder` is its temp folder.

    With `checkpoint_dir`, the training state is saved there after every epoch and a run stopped
    part-way continues from it (same settings and split only); the caller clears it (`checkpoint.clear`)
    once the model folder is complete."""
    from leafdoc.train.checkpoint import Checkpoint, fingerprint
    from leafdoc.train.export import export_onnx, save_keras

    counts = data.counts()
    if counts["train"] == 0 or counts["val"] == 0:
        raise ConfigError("the split left no training or validation images.", hint="Add images to the dataset.")
    pretrained = started_from(cfg, init_from)  # before training: a parent without its card stops here, not after
    _seed_everything(cfg.training_seed)
    strategy = make_strategy(cfg.distribute)
    with strategy.scope():  # the model's and the optimizer's variables live on every replica
        cache = data.cache_dir / "weights" if data.cache_dir else None
        model = build_model(cfg, len(data.classes), cache, start_weights=init_from is None)
        warm = warm_start(model, init_from, data.classes) if init_from else None
        checkpoint = Checkpoint(checkpoint_dir, fingerprint(cfg, data)) if checkpoint_dir else None
        train_now = finished_from_checkpoint if finish else partial(fit, cfg=cfg, data=data, on_event=on_event)
        result = train_now(model, checkpoint=checkpoint)
    result["strategy"] = describe_strategy(strategy, cfg.distribute)

    folder = Path(folder)
    save_keras(model, folder / KERAS_FILE)
    export_onnx(model, folder / ONNX_FILE, cfg.image_size)
    write_labels(folder, data.classes)
    atomic_write_json(folder / SPLIT_FILE, data.split_record(cfg.seed))
    card = make_card(cfg, data, result, warm, parent_version, pretrained)
    if provenance:
        card.provenance = provenance
    write_card(folder, card)
    unseen = (result["val_probs"], result["val_y"]) if result.get("val_probs") is not None else None
    return Exported(card, unseen)


class Exported(NamedTuple):
    """What `train` returns: the card it wrote, and, when the model kept learnt its validation photos
    (`train_on_val`), those photos' probabilities and classes as the head trained before it answered them."""

    card: ModelCard
    unseen_val: tuple[np.ndarray, np.ndarray] | None = None


VAL_LEARNT_NOTE = (
    "The model kept also learnt from the {n} validation photos (train_on_val): with restore_best `last` they choose "
    "nothing, and on a lab's few photos they are much more to learn from. The test photos stay held out: the test "
    "figures are on photos no training saw; the validation figures are on photos the model learnt from. The "
    "abstention threshold was calibrated on the validation photos as answered by the head trained before it learnt "
    "them."
)


def val_learnt(card: ModelCard) -> int:
    """How many validation photos the model learnt from (TrainConfig.train_on_val); 0 for a model that did not."""
    return int(((card.dataset.model_extra or {}) if card.dataset else {}).get("val_learnt") or 0)


def started_from(cfg: TrainConfig, init_from: Path | None) -> dict:
    """Where the backbone's weights first came from, for the card's `pretrained`: for a warm start, what the parent's
    card says (its backbone is the one carried over), else `cfg.weights`' source, file sha256 and licence."""
    from leafdoc.train.backbones import weights_provenance

    if init_from is None:
        return weights_provenance(cfg.backbone, cfg.weights)
    parent = read_card(Path(init_from))
    return parent.pretrained or {"backbone": cfg.backbone, "source": "not recorded by the parent model's card"}


def make_card(
    cfg: TrainConfig, data: TrainData, result: dict, warm: str | None, parent: str | None, pretrained: dict
) -> ModelCard:
    learnt = int(result.get("val_photos_learnt") or 0)
    learnt_val = {"val_learnt": learnt, "val_learnt_note": VAL_LEARNT_NOTE.format(n=learnt)} if learnt else {}
    return ModelCard.from_dict(
        {
            "format": 1,
            "leafdoc_version": __version__,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "backbone": cfg.backbone,
            "alpha": cfg.alpha if backbone_registry.get(cfg.backbone).takes_alpha else None,
            "weights": cfg.weights
            if cfg.weights in backbone_registry.NAMED_WEIGHTS
            else f"file:{Path(cfg.weights).name}",
            "pretrained": pretrained,  # source, file sha256, licence
            "input": {
                # size, framing, white_balance, morphology, morph_kernel (and light_range, when measured)
                **{k: v for k, v in asdict(data.preparation or cfg.preparation).items() if v is not None},
                "dtype": "float32",
                "layout": "NHWC",
                "range": "raw RGB 0-255 (normalisation is inside the model)",
                "resize": RESIZE_RULE,
            },
            "outputs": {
                "probabilities": "softmax over labels.json",
                "logits": "pre-softmax scores",
                "features": "global-average-pooled backbone features",
                "cam": (
                    "class activation maps: the dense head applied at every cell of the last feature map"
                    if not cfg.head_units
                    else "heat maps: the whole head (hidden ReLU layers, then logits) applied at every cell of the "
                    "last feature map; the head is not linear, so their mean over cells is not the logits"
                ),
            },
            "n_classes": len(data.classes),
            "dataset": {
                "name": data.dataset,
                "version": data.version,
                "split": data.counts(),
                "split_rule": f"by class, near-duplicates grouped, seed {cfg.seed}",
                **learnt_val,
            },
            "parent_version": parent,
            "warm_start": warm,
            "training": {
                **cfg.model_dump(),
                "strategy": result.get("strategy"),
                **({"finished_early": result["finished_early"]} if result.get("finished_early") else {}),
            },
            "best_epoch": result["best_epoch"],
            "train_seconds": round(result["train_seconds"], 1),
            "train_seconds_before_resume": round(result.get("train_seconds_before_resume", 0.0), 1),
            "history": result["history"],
            "provenance": PROVENANCE_NOTE,
            "limitations": (
                f"Knows only these {len(data.classes)} classes; any other photo is forced into one of them "
                "unless leafdoc abstains. Trained on lab photos (plain backgrounds): expect much lower accuracy "
                "on field photos."
            ),
        }
    )
