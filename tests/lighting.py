"""Real leaf photos under other lights, for the white balance tests (test_white_balance, test_light_range): the
repository's examples at the starter's size, framed as it frames them, and the casts benchmarks/phone_conditions.py
uses for warm light (and its opposite)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from leafdoc.imaging.photos import load_array
from tests.conftest import REPO

EXAMPLES = REPO / "examples"
ON_SHEETS = ("apple_cedar_rust", "potato_healthy", "tomato_early_blight")  # a leaf on PlantVillage's sheet
CLOSE_UP = "corn_common_rust"  # the leaf fills the frame: no sheet in the border
WARM, COOL = (1.10, 1.0, 0.85), (0.90, 1.0, 1.15)


def photo(name: str) -> np.ndarray:
    return load_array(EXAMPLES / f"{name}.jpg", 160, framing="leaf")


def lit(x: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    """`x` (uint8 RGB) under a light that scales its channels by `gains`."""
    return np.clip(x.astype(np.float32) * np.array(gains, np.float32), 0, 255).astype(np.uint8)


def lit_jpeg(path: Path, gains: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> bytes:
    """The photo at `path` under that light, as the JPEG (quality 92) a phone would send."""
    buf = io.BytesIO()
    Image.fromarray(lit(np.asarray(Image.open(path).convert("RGB")), gains)).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def off(a: np.ndarray, b: np.ndarray) -> float:
    """How far apart two photos are: the mean absolute difference, in levels."""
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())
