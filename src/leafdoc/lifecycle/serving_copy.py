"""The copy of a freshly trained model that the service is set to serve (LEAFDOC_ONNX_VARIANT int8 or fp16),
made by a retraining job before its candidate is registered, with the code `leafdoc export --format onnx-int8`
runs (inference/quantize.py: make_variant). int8 is calibrated on the run's own training photos (the arrays
training read, spread over the classes as the export spreads them) and checked against model.onnx on its
validation photos.

A copy that cannot be made does not fail the job: the candidate is registered without it, the record says
why, and serving falls back to its model.onnx (service/serving.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from leafdoc.inference.quantize import CALIBRATION_PHOTOS, make_variant, spread
from leafdoc.modelfolder import VARIANT_FILES, read_card

if TYPE_CHECKING:  # lifecycle.training imports the trainer (TensorFlow); this module needs none
    from leafdoc.lifecycle.training import TrainedModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServingCopy:
    variant: str
    file: str | None  # None: not made
    seconds: float
    validation_vs_fp32: dict | None = None  # quantize.agreement on the validation photos
    warning: str | None = None  # why it was not made

    def to_dict(self) -> dict:
        out = {"variant": self.variant, "made": self.file is not None, "file": self.file}
        out["seconds"] = round(self.seconds, 1)
        if self.validation_vs_fp32 is not None:
            out["validation_vs_fp32"] = self.validation_vs_fp32
        if self.warning is not None:
            out["warning"] = self.warning
        return out


def make_serving_copy(
    trained: TrainedModel, variant: str, n_calibration: int = CALIBRATION_PHOTOS
) -> ServingCopy | None:
    """The `variant` copy written into `trained.folder` and listed in its card.json; None for fp32 (model.onnx
    is what is served). Never raises for a copy that cannot be made: the ServingCopy's `warning` says why."""
    if variant in ("fp32", "", None):
        return None
    data, folder = trained.data, trained.folder
    t0 = time.perf_counter()
    train = [(int(i), int(data.y[i])) for i in data.indices("train")]
    picked = np.array([i for i, _ in spread(train, n_calibration)], dtype=int)
    try:
        path = make_variant(folder, variant, data.images[picked], data.images[data.indices("val")])
        checked = (read_card(folder).onnx_variants or {})[variant]["validation_vs_fp32"]
    except Exception as exc:  # noqa: BLE001 - a quantiser's error of any kind must not fail the training
        (folder / VARIANT_FILES.get(variant, f"model.{variant}.onnx")).unlink(missing_ok=True)
        reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        warning = f"the {variant} copy could not be made ({reason}); this version is served with its model.onnx"
        log.warning(warning)
        return ServingCopy(variant, None, time.perf_counter() - t0, warning=warning)
    return ServingCopy(variant, path.name, time.perf_counter() - t0, validation_vs_fp32=checked)
