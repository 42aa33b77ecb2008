"""tf.data over the decoded-once cache: shuffle indices, gather uint8 batches from the memmap,
augment on the batch with Keras layers (training only), prefetch. The model never sees an
augmentation layer, so nothing training-only ends up in the export."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from leafdoc.train.backgrounds import swap_backgrounds


def augmenter(seed: int, zoom_in: float = 0.15) -> keras.Sequential:
    """Flips, rotation, zoom, brightness, contrast: leaves have no canonical orientation. `zoom_in`: the most a photo
    is zoomed into (Keras: a negative factor zooms in), as TrainConfig.zoom_in says."""
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal_and_vertical", seed=seed),
            layers.RandomRotation(0.15, fill_mode="reflect", seed=seed + 1),
            layers.RandomZoom((-zoom_in, 0.15), fill_mode="reflect", seed=seed + 2),
            layers.RandomBrightness(0.15, value_range=(0.0, 255.0), seed=seed + 3),
            layers.RandomContrast(0.15, seed=seed + 4),
        ],
        name="augment",
    )


def make_dataset(
    images: np.ndarray,
    indices: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    augment: keras.Sequential | None = None,
    background_swap: float = 0.0,
    colour_cast: float = 0.0,
    one_hot: int | None = None,
    mixup: float = 0.0,
) -> tf.data.Dataset:
    """`background_swap`: the share of photos put on a new plain background (train/backgrounds.py), drawn
    per batch from a generator seeded by `seed` and the batch's positions, so a seeded run repeats.
    `one_hot`: the number of classes, to give labels as one-hot rows (float) instead of class numbers (for a loss
    with label smoothing, and for mixup, which needs them). `mixup`: each photo blended with another of its batch,
    weight w ~ Beta(mixup, mixup) for the first photo and 1 - w for the other, and their labels blended alike
    (Zhang et al. 2018)."""
    if mixup > 0 and not one_hot:
        raise ValueError("mixup blends labels: give one_hot, the number of classes")
    size = images.shape[1]
    indices = np.asarray(indices, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int32)

    def gather(pos: np.ndarray):
        idx = indices[pos]
        order = np.argsort(idx)  # read the memmap in file order, then restore the batch order
        batch = np.empty((len(idx), size, size, 3), dtype=np.uint8)
        batch[order] = images[idx[order]]
        rng = np.random.default_rng([seed, *pos[:8].tolist()])
        if background_swap > 0:
            batch = swap_backgrounds(batch, background_swap, rng)
        if colour_cast > 0:
            batch = cast_colours(batch, colour_cast, rng)
        if not one_hot:
            return batch, labels[pos]
        y = np.eye(one_hot, dtype=np.float32)[labels[pos]]
        if mixup > 0:
            batch, y = mix(batch, y, mixup, rng)
        return batch, y

    ds = tf.data.Dataset.range(len(indices))
    if shuffle:
        ds = ds.shuffle(len(indices), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)

    def load(pos):
        x, y = tf.numpy_function(gather, [pos], [tf.uint8, tf.float32 if one_hot else tf.int32])
        x = tf.cast(tf.ensure_shape(x, (None, size, size, 3)), tf.float32)
        return x, tf.ensure_shape(y, (None, one_hot) if one_hot else (None,))

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if augment is not None:
        # Sequential on purpose: the augmentation layers draw from one seeded generator, and a parallel
        # map would hand out the draws in a different order each run, so a seeded run would not repeat.
        # It is cheap on a batch and prefetch still overlaps it with the training step.
        ds = ds.map(lambda x, y: (augment(x, training=True), y))
    return ds.prefetch(tf.data.AUTOTUNE)


def cast_colours(batch: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """A white-balance error on each photo of a uint8 batch, as a camera makes under a light warmer or cooler than
    daylight: red scaled by 1 + s*t and blue by 1 - s*t (t uniform in [-1, 1]: tungsten or shade), green by
    1 + s*g/3 (g uniform in [-1, 1]: the green-magenta tint of fluorescent light). Rounded back to uint8."""
    t = rng.uniform(-1.0, 1.0, size=len(batch))
    g = rng.uniform(-1.0, 1.0, size=len(batch))
    gains = np.stack([1 + strength * t, 1 + strength * g / 3, 1 - strength * t], axis=1).astype(np.float32)
    cast = batch.astype(np.float32) * gains[:, None, None, :]
    return np.clip(np.rint(cast), 0, 255).astype(np.uint8)


def mix(batch: np.ndarray, y: np.ndarray, alpha: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Mixup on one uint8 batch and its one-hot labels: photo i becomes w_i * photo i + (1 - w_i) * photo p(i),
    p a random pairing within the batch, w_i ~ Beta(alpha, alpha); labels alike. Rounded back to uint8."""
    w = rng.beta(alpha, alpha, size=len(batch)).astype(np.float32)
    other = rng.permutation(len(batch))
    blended = w[:, None, None, None] * batch + (1 - w[:, None, None, None]) * batch[other]
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8), w[:, None] * y + (1 - w[:, None]) * y[other]


def directory_dataset(folder, size: int, batch_size: int, seed: int = 0, augment=None) -> tf.data.Dataset:
    """The plain pipeline of the seed notebooks, for the benchmark: decode every JPEG every epoch."""
    ds = keras.utils.image_dataset_from_directory(
        folder,
        image_size=(size, size),
        batch_size=batch_size,
        seed=seed,
        shuffle=True,
        label_mode="int",
    )
    if augment is not None:
        ds = ds.map(lambda x, y: (augment(x, training=True), y))
    return ds
