"""Background swap, a training augmentation: a lab photo's plain background replaced by another plain one.

PlantVillage photographed each leaf on a sheet, and the sheets, their shade and the leaves' shadows differ from one
session to the next, so from one class to another: a model can learn the sheet. leafdoc's advice asks users for one
leaf on a plain background such as a sheet of paper, which is not PlantVillage's sheet. With `background_swap` (a
share of the training photos), each of those photos has its leaf cut out (leafdoc/leafcut.py: colour distance from
the border's colour in Lab's (a, b) plane, Otsu's split, the largest part with its holes filled) and put on a new
plain background: paper white, grey, beige or dark, lit unevenly, with a little sensor noise. Photos whose leaf
cannot be found cleanly (under 8% or over 80% of the frame, or a ragged outline that usually means dark or dry parts
of the leaf were taken for background) are left as they are.

NumPy and OpenCV only, on uint8 batches, before the Keras augmentation layers (train/pipeline.py).
"""

from __future__ import annotations

import numpy as np

from leafdoc.imaging.leafcut import cut, paste, plain_background


def swap_backgrounds(batch: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """A copy of `batch` (N x H x W x 3 uint8) with about `share` of its photos on a new plain background."""
    if share <= 0:
        return batch
    out = batch.copy()
    h, w = batch.shape[1:3]
    for i in np.flatnonzero(rng.random(len(batch)) < share):
        alpha = cut(batch[i])
        if alpha is not None:
            out[i] = paste(batch[i], alpha, plain_background(rng, h, w))
    return out
