"""Training: dataset version -> split -> cached arrays -> Keras model -> exported files (lifecycle/training.py
scores and calibrates them into a model folder).

Here: the model (`build_model`, `warm_start`), the distribution strategy, `fit` (the phases in order, with
checkpoints) and `train` (fit, then export and the card). Beside it: train_data.py (`prepare_data`: the split photos
as cached arrays, and the class weights), epochs.py (what runs around each epoch: loss, best epoch, early stopping,
the checkpoint after each epoch) and cached.py (the phases on features or activations computed once).

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

import time
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np

from leafdoc import __version__
from leafdoc.core.atomic import atomic_write_json
from leafdoc.core.errors import ConfigError, ModelError
from leafdoc.imaging.photos import RESIZE_RULE
from leafdoc.modelfolder import (
    KERAS_FILE,
    ONNX_FILE,
    SPLIT_FILE,
    ModelCard,
    learnt_by_start,
    read_card,
    read_labels,
    started_from_starter,
    write_card,
    write_labels,
)
from leafdoc.train import backbone_registry, card_text
from leafdoc.train.cached import head_on_features, on_activations
from leafdoc.train.config import TrainConfig
from leafdoc.train.epochs import build_training_state, early_stopping, epoch_callbacks, loss, one_hot_classes, saver
from leafdoc.train.events import OnEvent, Restarted, Resumed
from leafdoc.train.stopping import fitting, stop_when_asked
from leafdoc.train.train_data import TrainData, class_weights


def _seed_everything(seed: int) -> None:
    """Python's, NumPy's and TensorFlow's global generators (Keras' initialisers and dropout draw from them); the
    split, the shuffles and the augmentation have seeds of their own. Python's string hashes are not seeded (that
    is only possible before the interpreter starts) and need not be: nothing the training reads depends on the
    order of a set or dict of strings (tests/integration/test_train_repeats.py runs it under two hash seeds)."""
    import keras

    keras.utils.set_random_seed(seed)


def resumed_draws(cfg: TrainConfig, epoch: int) -> TrainConfig:
    """The settings the training's draws (photo order, augmentation, dropout) take after `epoch` epochs were
    checkpointed: `cfg` itself for a run from its start; for a resumed one, another training seed derived from the
    seed and the epoch (the same every time that checkpoint is resumed). A resumed process starts its generators
    anew, so with the run's own seed its next epoch showed the photos in the first epoch's order, with the first
    epoch's flips and crops. The photos trained on (split_for_replicas) keep the run's own seed."""
    if not epoch:
        return cfg
    import keras

    seed = int(np.random.SeedSequence([cfg.training_seed, epoch]).generate_state(1)[0] >> 1)
    keras.utils.set_random_seed(seed)  # dropout and Keras' other draws, as _seed_everything set them at the start
    return cfg.model_copy(update={"train_seed": seed})


@contextmanager
def op_determinism(on: bool):
    """TensorFlow's deterministic ops (TrainConfig.deterministic_ops) while the block runs, as they were after it:
    the switch is the process's, and a service worker goes on to other jobs."""
    if not on:
        yield
        return
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config

    was = tf_config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if not was:
            tf_config.disable_op_determinism()


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

    from leafdoc.train.backbones import build_backbone, inference_mode, preprocessing_layer

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
        inference_mode(backbone)
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


def fit(model, cfg: TrainConfig, data: TrainData, on_event: OnEvent | None = None, checkpoint=None) -> dict:
    """Train in place; restore the best epoch's weights. Returns {'history', 'best_epoch', ...}.

    With a Checkpoint, the state is saved after every epoch, and a checkpoint of the same settings and
    split is continued: finished phases are skipped and the current one goes on from its next epoch."""
    import keras

    from leafdoc.train.pipeline import augmenter, make_dataset

    tr, train_batch = split_for_replicas(data.training_indices(), cfg.batch_size, "training", cfg.training_seed)
    va, val_batch = split_for_replicas(data.indices("val"), cfg.batch_size, "validation", cfg.seed)  # the split's
    one_hot = one_hot_classes(cfg, len(data.classes))  # validation's labels too: one loss scores both
    saved = checkpoint.state if checkpoint else None
    draws = resumed_draws(cfg, saved["epoch"] if saved else 0)
    aug = augmenter(draws.training_seed, cfg.zoom_in) if cfg.augment else None
    train_ds = make_dataset(
        data.images,
        tr,
        data.y[tr],
        train_batch,
        shuffle=True,
        seed=draws.training_seed,
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
        """Fit `net` (the model, or a part of it sharing its layers: `on_activations`) on `train` for the phase."""
        nonlocal saved
        net = net or model
        end = initial_epoch + epochs
        net.compile(optimizer=keras.optimizers.Adam(lr), loss=loss(cfg), metrics=metrics)
        stop = early_stopping(cfg.restore_best, cfg.patience)
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
        callbacks = [*epoch_callbacks(on_event, phase, steps, best, model), stop]
        if checkpoint:
            callbacks.append(saver(checkpoint, phase, initial_epoch, end, best, stop, trained, on_event, model))
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

    learnt_val: dict = {}  # `train_on_val`: what cached.head_on_features says of the validation photos it learnt
    backbone = model.get_layer("backbone")
    if cfg.pretrained:
        backbone.trainable = False
        if saved and saved["phase"] == "fine_tune":  # the head phase ended before the checkpoint
            done = saved["phase_start"]
        elif cfg.head_on_features:
            done, learnt_val = head_on_features(
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
                net, on_tr, on_va = on_activations(model, draws, data, tr, va, n_frozen, train_batch, val_batch)
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
    with strategy.scope(), op_determinism(cfg.deterministic_ops):  # the variables live on every replica
        cache = data.cache_dir / "weights" if data.cache_dir else None
        model = build_model(cfg, len(data.classes), cache, start_weights=init_from is None)
        warm = warm_start(model, init_from, data.classes) if init_from else None
        checkpoint = Checkpoint(checkpoint_dir, fingerprint(cfg, data), cfg, data) if checkpoint_dir else None
        train_now = finished_from_checkpoint if finish else partial(fit, cfg=cfg, data=data, on_event=on_event)
        result = train_now(model, checkpoint=checkpoint)
    result["strategy"] = describe_strategy(strategy, cfg.distribute)

    folder = Path(folder)
    save_keras(model, folder / KERAS_FILE)
    export_onnx(model, folder / ONNX_FILE, cfg.image_size)
    write_labels(folder, data.classes)
    atomic_write_json(folder / SPLIT_FILE, data.split_record(cfg.seed))
    card = make_card(cfg, data, result, warm, parent_version, pretrained, provenance)
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


TEST_LEARNT_NOTE = (
    "{n} of the {of} test photos are among the photos the network this model started from (leafdoc's starter) "
    "learnt or was chosen on, by its split.json: the test figures overstate how the model does on photos it never "
    "saw. Score it on photos of your own (`leafdoc evaluate --data`), not on the public ones the starter learnt "
    "(PlantVillage's, and the field photos its card names)."
)


def _dataset_count(card: ModelCard, key: str) -> int:
    """A count the card keeps under `dataset` beside its declared fields; 0 when it keeps none."""
    return int(((card.dataset.model_extra or {}) if card.dataset else {}).get(key) or 0)


def test_learnt(card: ModelCard) -> int:
    """How many test photos the network the model started from learnt (`learnt_by_start`); 0 when none."""
    return _dataset_count(card, "test_learnt_by_start")


def val_learnt(card: ModelCard) -> int:
    """How many validation photos the model learnt from (TrainConfig.train_on_val); 0 for a model that did not."""
    return _dataset_count(card, "val_learnt")


def started_from(cfg: TrainConfig, init_from: Path | None) -> dict:
    """Where the backbone's weights first came from, for the card's `pretrained`: for a warm start, what the parent's
    card says (its backbone is the one carried over), else `cfg.weights`' source, file sha256 and licence."""
    from leafdoc.train.backbones import weights_provenance

    if init_from is None:
        return weights_provenance(cfg.backbone, cfg.weights)
    parent = read_card(Path(init_from))
    return parent.pretrained or {"backbone": cfg.backbone, "source": "not recorded by the parent model's card"}


def make_card(
    cfg: TrainConfig,
    data: TrainData,
    result: dict,
    warm: str | None,
    parent: str | None,
    pretrained: dict,
    provenance: str | None = None,
) -> ModelCard:
    """The card without figures. `provenance`: the text given (--provenance), before what the run knows of the data
    (card_text.data_provenance). No limitations yet: lifecycle/training.py writes them once it has scored the test split
    as served (card_text.data_limitations, the data's and the test split's in one place)."""
    learnt = int(result.get("val_photos_learnt") or 0)
    learnt_val = {"val_learnt": learnt, "val_learnt_note": VAL_LEARNT_NOTE.format(n=learnt)} if learnt else {}
    test = {data.shas[i] for i in data.indices("test")}
    if seen := len(test & learnt_by_start(pretrained)):
        learnt_val |= {"test_learnt_by_start": seen, "test_learnt_note": TEST_LEARNT_NOTE.format(n=seen, of=len(test))}
    per_class = card_text.photos_per_class(data.classes, data.y)
    sources = {"sources": data.sources} if data.sources else {}  # folder names only: the card is served as it is
    origin = "parent" if warm else "starter" if started_from_starter(pretrained) else "other"
    said = card_text.data_provenance(
        dataset=data.dataset,
        version=data.version,
        sources=data.sources,
        per_class=per_class,
        split=data.counts(),
        started_from=origin,
        test_learnt=seen,
        given=provenance,
    )
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
                **sources,
                "photos_per_class": per_class,
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
            "provenance": said,
        }
    )
