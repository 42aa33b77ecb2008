"""Heat maps of where the model looked, without TensorFlow.

With a global-average-pooling + dense head, Grad-CAM reduces to the class activation map: the dense
weights of a class applied at every cell of the last feature map. The ONNX export computes exactly
that as its `cam` output (B, h, w, n_classes), so here we only pick the class, keep the positive
evidence (ReLU), scale it to 0..1, upsample it to the photo and colour it.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from leafdoc.imaging.photos import resize_square
from leafdoc.inference.predictor import Photo, Predictor

DISPLAY_SIZE = 224  # overlays are drawn at least this big, whatever the model's input size
OVERLAY_ALPHA = 0.45


@dataclass
class Explanation:
    probabilities: np.ndarray  # (n_classes,)
    class_index: int
    heatmap: np.ndarray  # (h, w) float32 in 0..1 at the feature-map resolution
    scale: float  # the ReLU'd map's maximum before scaling: raw = heatmap * scale
    overlay_png: bytes
    photo: Photo  # the model-ready array the prediction was made on, and the quality checks' findings
    outputs: dict[str, np.ndarray]  # this photo's row of every output asked for (for the decision)

    def overlay_base64(self) -> str:
        return base64.b64encode(self.overlay_png).decode("ascii")


def class_activation_map(cam: np.ndarray, class_index: int) -> tuple[np.ndarray, float]:
    """(h, w, n_classes) -> the class's map, ReLU'd and scaled to 0..1, and the scale used."""
    m = np.maximum(np.asarray(cam, dtype=np.float32)[..., class_index], 0.0)
    peak = float(m.max()) if m.size else 0.0
    return (m / peak if peak > 0 else np.zeros_like(m)), peak


def jet(x: np.ndarray) -> np.ndarray:
    """0..1 -> RGB uint8, the familiar blue-cyan-yellow-red ramp."""
    x = np.clip(x, 0.0, 1.0)[..., None]
    rgb = np.clip(1.5 - np.abs(4.0 * x - np.array([3.0, 2.0, 1.0])), 0.0, 1.0)
    return (rgb * 255.0 + 0.5).astype(np.uint8)


def overlay(photo: np.ndarray, heatmap: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """Upsample the heat map to the photo (bilinear) and blend its colours over it."""
    h, w = photo.shape[:2]
    up = Image.fromarray(heatmap.astype(np.float32), mode="F").resize((w, h), Image.Resampling.BILINEAR)
    colours = jet(np.asarray(up)).astype(np.float32)
    return np.clip((1 - alpha) * photo.astype(np.float32) + alpha * colours + 0.5, 0, 255).astype(np.uint8)


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def explain_bytes(
    predictor: Predictor,
    data: bytes,
    name: str = "image",
    class_index: int | None = None,
    among: np.ndarray | None = None,
) -> Explanation:
    """Predict one photo and explain the top class (or `class_index`; the top one of the label indices `among`: a
    crop the grower gave)."""
    photo = predictor.load(data, name)
    x = photo.x
    out = predictor.predict_arrays(x[None], [*predictor.decision_outputs, "cam"])
    if "cam" not in out:
        from leafdoc.core.errors import ModelError

        raise ModelError(
            f"{predictor.model_dir}: model.onnx has no `cam` output, so it cannot explain.",
            hint="Re-export it with `leafdoc export MODEL_DIR --format onnx`.",
        )
    probs = out["probabilities"][0]
    if class_index is not None:
        k = int(class_index)
    elif among is not None:
        k = int(among[np.argmax(probs[among])])
    else:
        k = int(np.argmax(probs))
    heat, scale = class_activation_map(out["cam"][0], k)
    # the photo's own square at DISPLAY_SIZE at least, framed as the model's but without its light correction: the
    # grower sees their photo's colours (the offline page draws the same: static/prepare.js displaySquare)
    shown = resize_square(photo.image, max(predictor.size, DISPLAY_SIZE), photo.frame, photo.region)
    row = {n: v[0] for n, v in out.items() if n != "cam"}
    return Explanation(probs, k, heat, scale, png_bytes(overlay(shown, heat)), photo, row)
