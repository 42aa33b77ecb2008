"""What runs around each epoch of a training phase, shared by trainer.fit (phases on photos) and cached.py (phases
on cached features or activations): the loss and the label form it needs (`one_hot_classes`, `loss`), which epoch
is the best so far (`watched`, `better`, kept by `epoch_callbacks`, which also reports each batch and epoch),
early stopping whose count a checkpoint carries over (`early_stopping`), the checkpoint saved after every epoch
(`saver`), and the training state built before the first step (`build_training_state`)."""

from __future__ import annotations

import time

from leafdoc.train.config import TrainConfig
from leafdoc.train.events import Batch, Checkpointed, Epoch, OnEvent


def _mode(key: str) -> str:
    """Whether a validation figure is better higher (accuracy) or lower (loss), in Keras' words."""
    return "max" if key.endswith("accuracy") else "min"


def better(key: str, value: float, best: float) -> bool:
    if key == "last":  # every epoch is the best so far: the last one is kept
        return True
    return value > best if _mode(key) == "max" else value < best


def watched(key: str, epoch: int, logs: dict) -> float | None:
    """The figure `restore_best` picks an epoch by: the epoch's number for `last`, else its validation figure."""
    return float(epoch + 1) if key == "last" else logs.get(key)


def epoch_callbacks(on_event: OnEvent | None, phase: str, steps: int, best: dict, whole=None):
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
            value = watched(best["key"], epoch, logs)
            usable = value is not None and value == value  # not missing, not NaN
            if usable and (best["epoch"] == 0 or better(best["key"], value, best["value"])):
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


def early_stopping(key: str, patience: int):
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


def saver(
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


def one_hot_classes(cfg: TrainConfig, n_classes: int) -> int | None:
    """The number of classes when the loss needs one-hot label rows (label smoothing spreads them, mixup blends
    them), for the pipeline to give them so; None for class numbers."""
    return n_classes if cfg.mixup or cfg.label_smoothing or cfg.teacher else None


def loss(cfg: TrainConfig):
    import keras

    if cfg.teacher:  # the pipeline's one-hot rows beside the teacher's (train/teacher.py)
        from leafdoc.train.teacher import distillation_loss

        return distillation_loss(cfg.teacher_weight, cfg.teacher_temperature)
    if cfg.mixup or cfg.label_smoothing:  # the pipeline gives one-hot rows (one_hot_classes)
        return keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()
