"""The backbone as `leafdoc train` builds it, and its pooled features as the head on features computes them
(train/cached.py `_features`): the one way the probes here build their feature extractor (field_curve.py,
lab_heads.py, lab_resample.py). Not a benchmark itself."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

WEIGHTS = Path(tempfile.gettempdir()) / "leafdoc-bench-weights"  # the pretrained weights, unpacked once


def model_and_preparation(**options):
    """The network `leafdoc train` builds with these TrainConfig options (3 outputs: only its features are read),
    the config, and the photo preparation that feeds it (the config's size and framing)."""
    from leafdoc.imaging.photos import Preparation
    from leafdoc.train.config import TrainConfig
    from leafdoc.train.trainer import build_model

    cfg = TrainConfig(**options)
    return build_model(cfg, 3, WEIGHTS), cfg, Preparation(cfg.image_size, framing=cfg.framing)


def features(model, arrays: np.ndarray, augment=None, pool=None) -> np.ndarray:
    """Pooled features (N, D) of prepared photos (N, H, W, 3), in inference mode; with `augment`
    (pipeline.augmenter), of each batch as the augmentation draws it. `pool` (a map (N, H, W, C) -> (N, D)) pools the
    backbone's last map in place of the model's own average pooling."""
    import keras

    from leafdoc.train.cached import _feature_net, _features, _frozen, _outputs

    if pool is None:
        return _features(_feature_net(model), arrays, np.arange(len(arrays)), augment=augment)
    net = _frozen(keras.Model(model.input, model.get_layer("pool").input))  # the map the model's pooling reads
    return pool(_outputs(net, arrays, np.arange(len(arrays)), augment=augment))


def file_features(model, prep, files: list[Path], chunk: int = 512) -> np.ndarray:
    """Pooled features of photo files, prepared `chunk` at a time (thousands of photos at 224 px do not fit in
    memory at once), with progress on stderr."""
    from leafdoc.train.cached import _feature_net, _outputs

    pooled = _feature_net(model)  # one network for every chunk
    out = []
    for i in range(0, len(files), chunk):
        arrays = np.stack([prep(f) for f in files[i : i + chunk]])
        out.append(_outputs(pooled, arrays, np.arange(len(arrays))))
        print(f"\r  features {min(i + chunk, len(files))}/{len(files)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return np.concatenate(out)
