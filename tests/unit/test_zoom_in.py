"""Training's zoom into a photo (train/pipeline.py augmenter, `zoom_in`): with 0.35 some training photos show only
the middle of the leaf's frame, as a photo taken closer does; by default (0.15) none loses the frame's outer tenth."""

from __future__ import annotations

import numpy as np
from keras import layers

from leafdoc.train.config import TrainConfig
from leafdoc.train.pipeline import augmenter


def framed_batch(n: int = 300) -> np.ndarray:
    """White photos with a black border a tenth of the side wide."""
    batch = np.zeros((n, 100, 100, 3), dtype=np.float32)
    batch[:, 10:90, 10:90] = 255.0
    return batch


def share_without_the_border(zoom_in: float) -> float:
    [zoom] = [layer for layer in augmenter(0, zoom_in).layers if isinstance(layer, layers.RandomZoom)]
    out = np.asarray(zoom(framed_batch(), training=True))
    return float(np.mean(out.min(axis=(1, 2, 3)) > 128))


def test_a_stronger_zoom_in_takes_some_photos_closer_than_the_default_ever_does():
    assert TrainConfig(backbone="efficientnet_lite0").zoom_in == 0.15
    assert share_without_the_border(0.15) == 0.0  # at most the middle 85%: the border always shows
    # 0.35: a zoom drawn from [-0.35, 0.15], the border gone past 0.2, about 0.15 / 0.5 of the photos
    assert 0.18 <= share_without_the_border(0.35) <= 0.42
