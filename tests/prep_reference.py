"""The photo preparation as it was before issue 57 (main at 4acb14a), kept as the reference the faster one is
compared with (tests/unit/test_prep_same.py, tests/integration/test_prep_same_answers.py) and timed beside
(benchmarks/prep_speed.py). Not used by leafdoc itself: only the functions that changed are copied here, word for
word; what did not change (decoding, the resize to the model's input, the leaf's cleaning) is imported. One check came
after issue 57, `no_colour`: it is written here in its plain form, to be compared the same way."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from leafdoc.imaging.leafcut import (
    GAIN_RANGE,
    LIGHT_AXIS,
    MAX_FRAMED_BORDER,
    MAX_LEAF,
    MAX_SPLIT,
    MIN_FRAMED_LEAF,
    MIN_SHEET_BORDER,
    MIN_SPLIT,
    MIN_UNCLIPPED_BORDER,
    clean_cut,
    largest_filled,
    scale_channels,
)
from leafdoc.imaging.photos import (
    FRAME_BELOW,
    FRAME_CUT_PX,
    FRAME_FILL,
    min_side_for,
    open_photo,
    read_source,
    resize_square,
)
from leafdoc.imaging.quality import (
    BLUR_LAPLACIAN_VAR,
    BRIGHT_MEAN,
    COLOUR_SATURATION,
    COLOUR_SPREAD,
    DARK_P95,
    MEASURE_PX,
    MIN_SIDE,
    NO_COLOUR_SHARE,
    ONE_COLOUR_SHARE,
    PhotoProblem,
)


def check_photo(img, model_size=None, own_size=None):
    w, h = own_size or img.size
    if w == 0 or h == 0:
        return [PhotoProblem("too_small", "the image has no pixels")]
    problems = []
    min_side = min(MIN_SIDE, model_size) if model_size else MIN_SIDE
    if min(w, h) < min_side:
        problems.append(
            PhotoProblem(
                "too_small",
                f"the photo is too small ({w}x{h} pixels): send one at least {min_side} pixels on its short side",
            )
        )
    small = img.copy()
    small.thumbnail((MEASURE_PX, MEASURE_PX))
    rgb = np.asarray(small.convert("RGB"))
    grey = np.asarray(small.convert("L"), dtype=np.float32)
    mean = float(grey.mean())
    if float(np.percentile(grey, 95)) < DARK_P95:
        problems.append(PhotoProblem("too_dark", "the photo is too dark: take it in daylight, or uncover the lens"))
    elif mean > BRIGHT_MEAN:
        problems.append(
            PhotoProblem("too_bright", "the photo is over-exposed (almost white): avoid direct sun or flash")
        )
    codes = (rgb // 32).astype(np.int32)
    flat = codes[..., 0] * 64 + codes[..., 1] * 8 + codes[..., 2]
    one_colour = np.bincount(flat.ravel(), minlength=512).max() / flat.size >= ONE_COLOUR_SHARE
    if one_colour and not any(p.code in ("too_dark", "too_bright") for p in problems):
        problems.append(PhotoProblem("one_colour", "the photo is almost all one colour, with no leaf to see"))
    elif not any(p.code in ("too_dark", "too_bright") for p in problems):
        spread = rgb.max(axis=2).astype(int) - rgb.min(axis=2)
        coloured = (spread >= COLOUR_SPREAD) & (spread * 100 >= COLOUR_SATURATION * rgb.max(axis=2).astype(int))
        if coloured.mean() < NO_COLOUR_SHARE:
            problems.append(
                PhotoProblem(
                    "no_colour",
                    "the photo is black and white: send a colour photo, as the colours of the spots tell diseases "
                    "apart",
                )
            )
    if not one_colour and float(cv2.Laplacian(grey, cv2.CV_32F).var()) < BLUR_LAPLACIAN_VAR:
        problems.append(PhotoProblem("blurred", "the photo is blurred: hold the camera still and focus on the leaf"))
    return problems


def sheet_distance(rgb):
    ab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)[..., 1:].astype(np.float32)
    border = ab[border_ring(*rgb.shape[:2])]
    bg = np.median(border[border[:, 1] <= np.percentile(border[:, 1], 40)], axis=0)
    dist = np.hypot(ab[..., 0] - bg[0], ab[..., 1] - bg[1])
    otsu, _ = cv2.threshold(np.clip(dist * 4, 0, 255).astype(np.uint8), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return dist, float(np.clip(otsu / 4, MIN_SPLIT, MAX_SPLIT))


def border_ring(h, w):
    ring = np.ones((h, w), bool)
    bw = max(2, min(h, w) // 16)
    ring[bw:-bw, bw:-bw] = False
    return ring


def leaf_box(rgb, max_share=MAX_LEAF, max_border=MAX_FRAMED_BORDER):
    dist, split = sheet_distance(rgb)
    rough = dist > split
    if rough.mean() > max_share + 0.1:
        return None
    if rough[border_ring(*rough.shape)].mean() > max_border:
        return None
    mask = largest_filled(rough)
    if not clean_cut(mask, MIN_FRAMED_LEAF, max_share):
        return None
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def sheet_colour(rgb):
    dist, split = sheet_distance(rgb)
    ring = border_ring(*rgb.shape[:2])
    sheet = rgb[ring & (dist <= split)]
    if len(sheet) < MIN_SHEET_BORDER * ring.sum():
        return None
    sheet = sheet[(sheet.max(axis=1) < 250) & (sheet.min(axis=1) > 5)]
    if len(sheet) < MIN_UNCLIPPED_BORDER * ring.sum():
        return None
    return np.median(sheet.astype(np.float32), axis=0)


def light_of(rgb):
    colour = sheet_colour(rgb)
    if colour is None:
        return None
    g = max(float(colour[1]), 1.0)
    chroma = np.log(np.maximum(colour[[0, 2]], 1.0) / g)
    return float(chroma @ LIGHT_AXIS)


def range_correction(rgb, lights):
    light = light_of(rgb)
    seen_lo, typical_lo, typical_hi, seen_hi = lights
    if light is None or seen_lo <= light <= seen_hi:
        return rgb, None
    move = float(np.clip(light, typical_lo, typical_hi)) - light
    log_gains = np.array([move * LIGHT_AXIS[0], 0.0, move * LIGHT_AXIS[1]])
    gains = np.clip(np.exp(log_gains - log_gains.mean()), *GAIN_RANGE)
    return scale_channels(rgb, gains), ("warm" if move < 0 else "cool")


def balance_to_sheet(rgb):
    colour = sheet_colour(rgb)
    if colour is None:
        return rgb
    gains = np.clip(colour.mean() / np.maximum(colour, 1.0), *GAIN_RANGE)
    return scale_channels(rgb, gains)


def leaf_region(img):
    small = np.asarray(img.resize((FRAME_CUT_PX, FRAME_CUT_PX), Image.Resampling.BILINEAR))
    aspect = max(img.size) / min(img.size)
    box = leaf_box(small, max_share=FRAME_BELOW**2 / aspect)
    if box is None:
        return None
    sx, sy = img.width / FRAME_CUT_PX, img.height / FRAME_CUT_PX
    x0, y0, x1, y1 = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
    shorter = min(img.size)
    span = max(x1 - x0, y1 - y0)
    if span >= FRAME_BELOW * shorter:
        return None
    side = min(shorter, span / FRAME_FILL)
    left = min(max((x0 + x1 - side) / 2, 0.0), img.width - side)
    top = min(max((y0 + y1 - side) / 2, 0.0), img.height - side)
    return left, top, left + side, top + side


def white_balance(prep, arr):
    """Preparation.finish_noting's white balance as it was (then its morphology, unchanged)."""
    from leafdoc.imaging.photos import apply_morphology

    if prep.white_balance == "sheet":
        arr, light = balance_to_sheet(arr), None
    elif prep.white_balance == "light-range":
        arr, light = range_correction(arr, prep.light_range)
    else:
        light = None
    return apply_morphology(arr, prep.morphology, prep.morph_kernel), light


def load(predictor, source, name=None):
    """Predictor.load as it was: (model input, quality problems, decoded image, frame, region, light corrected)."""
    data, name = read_source(source, name)
    img, frame = open_photo(data, name, predictor.max_pixels, min_side=min_side_for(predictor.size))
    region = leaf_region(img) if predictor.framing == "leaf" else None
    x, light = white_balance(predictor.prep, resize_square(img, predictor.size, frame, region))
    return x, tuple(check_photo(img, predictor.size, frame.size)), img, frame, region, light
