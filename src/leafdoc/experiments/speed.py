"""Input pipeline speed, side by side: leafdoc's cached pipeline (decode once, memmap, tf.data) against
`train.pipeline.directory_dataset` (decode every JPEG every epoch), same model, same images, same batch
size and augmentation. One model serves both, so the training step is traced once: one warm-up epoch
per pipeline (tracing, first reads) is not counted. Then the two alternate (cached, plain, cached,
plain) so drift in the machine's load hits both alike."""

from __future__ import annotations

import contextlib
import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from leafdoc.train.config import TrainConfig
from leafdoc.train.train_data import TrainData


def _epoch_seconds(model, ds, epochs: int, on_epoch: Callable[[str, float], None] | None, name: str) -> list[float]:
    out = []
    for _ in range(epochs):
        t = time.perf_counter()
        model.fit(ds, epochs=1, shuffle=False, verbose=0)  # ds shuffles itself
        out.append(time.perf_counter() - t)
        if on_epoch:
            on_epoch(name, out[-1])
    return out


def pipeline_speed(
    cfg: TrainConfig,
    data: TrainData,
    folder: Path,
    epochs: int,
    on_epoch: Callable[[str, float], None] | None = None,
) -> dict:
    """Seconds per epoch of both pipelines over all of `data`'s images (`folder` holds the same images as
    class folders), `epochs` per pipeline in each of two rounds. Returns per-epoch lists, medians and the
    speed-up (plain / cached)."""
    import keras

    from leafdoc.train.pipeline import augmenter, directory_dataset, make_dataset
    from leafdoc.train.trainer import _seed_everything, build_model

    idx = list(range(len(data.shas)))
    aug = augmenter(cfg.seed, cfg.zoom_in) if cfg.augment else None
    cached = make_dataset(data.images, idx, data.y, cfg.batch_size, shuffle=True, seed=cfg.seed, augment=aug)
    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints "Found N files" to stdout (--json)
        plain = directory_dataset(folder, cfg.image_size, cfg.batch_size, seed=cfg.seed, augment=aug)

    _seed_everything(cfg.seed)
    model = build_model(cfg, len(data.classes))
    model.compile(optimizer=keras.optimizers.Adam(cfg.base_learning_rate), loss="sparse_categorical_crossentropy")
    pipelines = (("cached", cached), ("plain", plain))
    for name, ds in pipelines:  # warm-up, not counted: traces the step, first reads of the files
        _epoch_seconds(model, ds, 1, on_epoch, f"{name} (warm-up)")
    seconds: dict[str, list[float]] = {"cached": [], "plain": []}
    for name, ds in pipelines * 2:
        seconds[name] += _epoch_seconds(model, ds, epochs, on_epoch, name)
    cached_s, plain_s = statistics.median(seconds["cached"]), statistics.median(seconds["plain"])
    return {
        "n_images": len(idx),
        "image_size": cfg.image_size,
        "batch_size": cfg.batch_size,
        "backbone": cfg.backbone,
        "epochs_per_round": epochs,
        "cached_seconds": seconds["cached"],
        "plain_seconds": seconds["plain"],
        "cached_median": cached_s,
        "plain_median": plain_s,
        "speedup": plain_s / cached_s if cached_s > 0 else None,
    }
