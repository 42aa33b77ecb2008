"""Synthetic field-like photos for benchmarks/field_composites.py: a PlantVillage leaf cut from its plain
background and pasted on a crop of a real field photo (or on a sheet-of-paper-like background, the control).

Pure NumPy/OpenCV/Pillow, no model: the benchmark scores what these functions make.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps

from leafdoc.imaging.leafcut import largest_filled, sheet_distance

# A pixel is leaf when its colour is far enough from the background's in Lab's (a, b) plane (the training
# augmentation's own measure, leafdoc.imaging.leafcut.sheet_distance): PlantVillage's grey/white backgrounds
# (and the leaf's own shadow on them) are nearly colourless, a leaf is green, yellow or brown.
FEATHER_SIGMA = 1.2  # px at the composite's size: a soft edge, as a lens gives, not a scissor cut


def segment_leaf(rgb: np.ndarray) -> np.ndarray:
    """Boolean mask of the leaf in a lab photo (H x W x 3 uint8 RGB, one leaf on a plain background).

    Colour distance from the background seeds GrabCut (sure leaf / probably leaf / probably background), which
    cleans the edges; then the largest connected part, holes filled (lesions and glare inside the leaf)."""
    h, w = rgb.shape[:2]
    dist, split = sheet_distance(rgb)
    seed = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    seed[dist > split] = cv2.GC_PR_FGD
    seed[dist > 2 * split] = cv2.GC_FGD
    seed[dist < split / 2] = cv2.GC_BGD  # (shadows too: they are the background's colour, darker)
    if (seed == cv2.GC_FGD).sum() + (seed == cv2.GC_PR_FGD).sum() < 50:
        return np.zeros((h, w), bool)
    # GrabCut needs both leaf and background in the seed; when it refuses, the seed alone is the mask.
    with contextlib.suppress(cv2.error):
        cv2.grabCut(rgb[..., ::-1].copy(), seed, None, np.zeros((1, 65)), np.zeros((1, 65)), 3, cv2.GC_INIT_WITH_MASK)
    return largest_filled(np.isin(seed, (cv2.GC_FGD, cv2.GC_PR_FGD)))


def usable(mask: np.ndarray, min_share: float = 0.1, max_share: float = 0.85, max_edge: float = 0.08) -> bool:
    """A mask worth pasting: a plausible leaf area, and a leaf that the photo's frame does not cut off (it
    touches the outermost pixels on at most `max_edge` of them), so no straight cut edge shows in the field."""
    edge = np.r_[mask[0], mask[-1], mask[:, 0], mask[:, -1]]
    return min_share <= float(mask.mean()) <= max_share and float(edge.mean()) <= max_edge


@dataclass(frozen=True)
class Placed:
    """A leaf scaled, rotated and placed in a square frame: its pixels and its (feathered) opacity there."""

    layer: np.ndarray  # S x S x 3 uint8: the leaf's pixels where `alpha` > 0
    alpha: np.ndarray  # S x S float32 0-1
    share: float  # the share of the frame the leaf's mask covers


def place_leaf(
    rgb: np.ndarray,
    mask: np.ndarray,
    size: int,
    share: float,
    rng: np.random.Generator,
    rotate: bool = True,
) -> Placed:
    """Scale the masked leaf so its mask covers `share` of a size x size frame (less when the leaf would not
    fit whole: it is never cut by the frame's edge), rotate it by a random angle, put it at a random position."""
    m = mask.astype(np.uint8) * 255
    angle = float(rng.uniform(0, 360)) if rotate else 0.0
    if angle:
        h, w = m.shape
        rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        cos, sin = abs(rot[0, 0]), abs(rot[0, 1])
        nw, nh = int(np.ceil(h * sin + w * cos)), int(np.ceil(h * cos + w * sin))
        rot[0, 2] += nw / 2 - w / 2
        rot[1, 2] += nh / 2 - h / 2
        rgb = cv2.warpAffine(rgb, rot, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        m = cv2.warpAffine(m, rot, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=0)
    ys, xs = np.nonzero(m > 127)
    if len(ys) == 0:
        raise ValueError("empty leaf mask")
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    rgb, m = rgb[y0:y1, x0:x1], m[y0:y1, x0:x1]
    area = float((m > 127).sum())
    scale = min(np.sqrt(share * size * size / area), (size - 2) / max(m.shape))
    lw, lh = max(1, round(m.shape[1] * scale)), max(1, round(m.shape[0] * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    leaf = cv2.resize(rgb, (lw, lh), interpolation=interp)
    hard = cv2.resize(m, (lw, lh), interpolation=cv2.INTER_LINEAR) > 127
    px, py = int(rng.integers(0, size - lw + 1)), int(rng.integers(0, size - lh + 1))
    layer = np.zeros((size, size, 3), np.uint8)
    inside = np.zeros((size, size), np.float32)
    layer[py : py + lh, px : px + lw] = leaf
    inside[py : py + lh, px : px + lw] = hard
    return _feathered(layer, inside)


def in_place(rgb: np.ndarray, mask: np.ndarray) -> Placed:
    """The leaf where it is in its own photo, same size: to put another background behind it and nothing else."""
    layer = np.where(mask[..., None], rgb, 0).astype(np.uint8)
    return _feathered(layer, mask.astype(np.float32))


def _feathered(layer: np.ndarray, inside: np.ndarray) -> Placed:
    # Feather outwards only: blur, then keep full opacity on the mask itself, so every masked pixel is the leaf's.
    alpha = np.maximum(cv2.GaussianBlur(inside, (0, 0), FEATHER_SIGMA), inside)
    alpha[inside == 0] *= 0.6  # the ring outside the mask fades to the background
    edge = (alpha > 0) & (inside == 0)
    if edge.any():  # pixels of the soft ring take the nearby leaf colour, not the black of the empty layer
        sigma = 2 * FEATHER_SIGMA
        weight = cv2.GaussianBlur(inside, (0, 0), sigma)[..., None]
        near = cv2.GaussianBlur(layer.astype(np.float32) * inside[..., None], (0, 0), sigma) / np.maximum(weight, 1e-6)
        layer[edge] = np.clip(near[edge], 0, 255).astype(np.uint8)
    return Placed(layer, alpha, float(inside.mean()))


def paste(background: np.ndarray, placed: Placed) -> np.ndarray:
    a = placed.alpha[..., None]
    out = background.astype(np.float32) * (1 - a) + placed.layer.astype(np.float32) * a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def field_crop(photo: Image.Image, size: int, rng: np.random.Generator, min_px: int = 300) -> np.ndarray:
    """A random square region of a field photo (35-100% of its shorter side, and at least `min_px` px where
    the photo has them, so small photos are not blown up from a few pixels), scaled to size x size, maybe
    mirrored."""
    w, h = photo.size
    short = min(w, h)
    side = min(short, max(int(short * rng.uniform(0.35, 1.0)), min_px))
    x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    crop = np.asarray(photo.crop((x, y, x + side, y + side)).resize((size, size), Image.Resampling.LANCZOS))
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop)


def sheet(
    size: int | tuple[int, int], rng: np.random.Generator, placed: Placed | None = None, colour=None
) -> np.ndarray:
    """A plain sheet under a lamp: near-white paper (or `colour`, RGB), a slight tint, light falling off to one
    side, sensor noise, and (given the placed leaf) the leaf's soft shadow."""
    base = np.asarray(colour, np.float64) if colour is not None else np.full(3, rng.uniform(228, 248))
    tint = base + rng.uniform(-4, 4, 3)
    h, w = (size, size) if isinstance(size, int) else size
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    theta = rng.uniform(0, 2 * np.pi)
    ramp = 1 - rng.uniform(0.04, 0.12) * ((np.cos(theta) * (xx - 0.5) + np.sin(theta) * (yy - 0.5)) + 0.5)
    img = tint[None, None, :] * ramp[..., None]
    if placed is not None:
        dx, dy = (int(v) for v in rng.integers(max(h, w) // 80, max(h, w) // 30, 2))
        shadow = np.roll(np.roll(placed.alpha, dy, axis=0), dx, axis=1)
        shadow = cv2.GaussianBlur(shadow, (0, 0), max(h, w) / 120)
        img *= 1 - rng.uniform(0.15, 0.3) * shadow[..., None]
    img += rng.normal(0, 2.0, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def background_colour(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The median RGB of a lab photo's background, away from the leaf and its shadow."""
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15))
    far = cv2.dilate(mask.astype(np.uint8), k, iterations=2) == 0
    return np.median(rgb[far], axis=0) if far.sum() > 100 else np.median(rgb.reshape(-1, 3), axis=0)


def jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def open_rgb(path_or_bytes, max_side: int | None = None) -> Image.Image:
    """Decode upright RGB; large JPEGs are decoded reduced (draft) to about `max_side`."""
    img = Image.open(path_or_bytes if not isinstance(path_or_bytes, bytes) else io.BytesIO(path_or_bytes))
    if max_side:
        img.draft("RGB", (max_side, max_side))
    img = ImageOps.exif_transpose(img).convert("RGB")
    if max_side and max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return img
