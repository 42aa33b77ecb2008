"""What the offline page needs to run the server's not-a-leaf, unlike-training and other-leaves checks in the browser
(static/checks.js): the fitted arrays of ood.npz and the card's weights and thresholds, in one small binary file.
The other-leaves check (a lab's own model: one of its classes, or some other leaf; the card's `other_leaves`) is a
logistic regression on the model's features: its weights go as the array `other_leaves_weights`, its bias and
threshold in the header's `card.other_leaves`.

Layout of checks.bin: b"LDCK", the header's length (little-endian u32), the header (JSON: `card`, the card's numbers
the page reads; `arrays`, each array's dtype, shape and offset), then the arrays, little-endian, each at a multiple of
4 bytes. The big whitening matrix stays in half precision when ood.npz holds it so (3.3 MB for the starter's 1,280
features); the rest is float32.
"""

from __future__ import annotations

import json

import numpy as np

from leafdoc.inference.fieldcrops import learnt_crops
from leafdoc.inference.otherleaves import OtherLeavesCheck
from leafdoc.modelfolder import OOD_FILE

MAGIC = b"LDCK"
ARRAYS = ("feat_mean", "feat_whiten", "class_means_w", "colour_mean", "colour_whiten", "centre", "spread")


def available(predictor) -> bool:
    """Whether the page can run the serving model's checks: it has a not-a-leaf check, and its model gives features."""
    return predictor.ood is not None and "features" in predictor.output_names


def card_numbers(predictor) -> dict:
    """The card's weights and thresholds the page applies (the `field` section only in a format the server applies)."""
    card = predictor.card
    out = {"ood": {"weights": [float(w) for w in card.ood["weights"]], "threshold": float(card.ood["threshold"])}}
    if predictor.field is not None:
        f = card.field
        field = {
            "weights": [float(w) for w in f["weights"]],
            "centre": [float(c) for c in f["centre"]],
            "spread": [float(s) for s in f["spread"]],
            "threshold": float(f["threshold"]),
            "leafy_share": float(predictor.field.leafy_share),
            "reason": None,
            "learnt": None,
        }
        if predictor.field.reason_weights is not None:
            field["reason"] = {"weights": predictor.field.reason_weights.tolist(), "bias": predictor.field.reason_bias}
        if predictor.field.scene is not None:
            field["scene_bias"] = float(predictor.field.scene["bias"])
        learnt = f.get("learnt") or {}
        if learnt_crops(f) and learnt.get("min_confidence") is not None:
            field["learnt"] = {"crops": learnt_crops(f), "min_confidence": float(learnt["min_confidence"])}
        out["field"] = field
    # A fitted section in the format the server applies (as it reads it), else none: the page then decides as the
    # server does without it (a section of `fitted: false` says only why the model has no check).
    if (other := OtherLeavesCheck.from_card(card)) is not None:
        out["other_leaves"] = {"bias": other.bias, "threshold": other.threshold, "no_leaf_from": other.no_leaf_from}
    return out


def build(predictor) -> bytes:
    """checks.bin for the serving model (`available(predictor)` must hold)."""
    with np.load(predictor.model_dir / OOD_FILE) as z:
        arrays = {name: z[name] for name in ARRAYS}
    if predictor.field is not None and predictor.field.scene is not None:
        arrays["scene_weights"] = predictor.field.scene["weights"]
    if (other := OtherLeavesCheck.from_card(predictor.card)) is not None:
        weights = other.weights.astype(np.float32)
        if weights.shape != (arrays["feat_mean"].size,):
            raise ValueError(
                f"card.json other_leaves: {weights.size} weights for the model's {arrays['feat_mean'].size} features"
            )
        arrays["other_leaves_weights"] = weights
    header, chunks, offset = {}, [], 0
    for name, a in arrays.items():
        a = np.ascontiguousarray(a, dtype="<f2" if a.dtype == np.float16 else "<f4")
        data = a.tobytes()
        data += b"\0" * (-len(data) % 4)
        header[name] = {
            "dtype": "float16" if a.dtype == np.float16 else "float32",
            "shape": list(a.shape),
            "offset": offset,
        }
        chunks.append(data)
        offset += len(data)
    head = json.dumps({"card": card_numbers(predictor), "arrays": header}).encode()
    head += b" " * (-(len(head) + 8) % 4)
    return MAGIC + len(head).to_bytes(4, "little") + head + b"".join(chunks)
