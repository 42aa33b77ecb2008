"""Cut the leaf out of a lab photo (one leaf on a plain sheet), and make plain sheets to put it on.

Used by the background swap, a training augmentation (train/backgrounds.py), by the unlike-training check's
scene measure, which teaches itself with the same leaves on plain sheets and in field scenes
(inference/scenes.py), by the framing of a leaf photographed from too far (imaging/photos.py, `leaf_box`) and by the
white balance taken from the sheet (`balance_to_sheet`, and `balance_to_range`, which corrects only a light the
training photos were not taken under): all need it, so it sits below them. The cut: colour
distance from the border's colour in Lab's (a, b) plane, Otsu's split, the largest part with its holes filled.
NumPy and OpenCV only.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

MIN_LEAF, MAX_LEAF = 0.08, 0.8  # share of the frame a found leaf must cover for the swap to be trusted
MIN_FRAMED_LEAF = 0.03  # framing (leaf_box) is for small leaves: it trusts a cut down to this share
# ... and only on a plain sheet: a small leaf leaves the photo's border plain. More of the border than this unlike the
# sheet is a leaf filling the frame with no sheet (a close-up: the "sheet" found is leaf) or a sheet in a scene.
MAX_FRAMED_BORDER = 0.15
# A found leaf must also fill at least this share of its convex hull: a ragged mask is usually a leaf whose dark,
# dry or necrotic parts (as colourless as the sheet) were taken for background, and swapping would cut them off.
MIN_SOLIDITY = 0.8
MIN_SPLIT, MAX_SPLIT = 6.0, 30.0  # bounds on the (a, b) distance that splits leaf from background
# The white balance from the sheet: at least this share of the border must be sheet (not leaf, not scene) for its
# colour to be trusted as the light's, and a channel is scaled within these bounds.
MIN_SHEET_BORDER, MIN_UNCLIPPED_BORDER = 0.5, 0.25
GAIN_RANGE = (0.67, 1.5)
# The direction a light's colour moves the sheet's, in (log R/G, log B/G): from a black body at 6500 K to one at
# 3000 K as sRGB shows them (255, 249, 253 -> 255, 180, 107; M. Charity's black-body colour table), daylight to
# a tungsten bulb. Phones' own white balance leaves casts mostly along this line (warmer or cooler light).
LIGHT_AXIS = np.array([np.log(249 / 180), np.log(107 / 180) - np.log(253 / 249)])
LIGHT_AXIS /= np.linalg.norm(LIGHT_AXIS)
# The lights a model was trained under, as quantiles of its training photos' lights (`light_range`): a photo lit
# beyond the outer two (the 5% warmest or coolest) is taken back to the nearer of the inner two (the middle half).
LIGHT_QUANTILES = (0.05, 0.25, 0.75, 0.95)
MIN_LIGHT_PHOTOS = 8  # photos with a sheet needed to measure those lights
# Background colours (RGB) drawn from: white and off-white paper, grey and beige card, a dark table.
PALETTE = np.array(
    [
        [245, 245, 242],
        [232, 230, 222],
        [215, 215, 215],
        [170, 170, 168],
        [225, 210, 180],
        [200, 185, 160],
        [60, 58, 55],
    ],
    np.float32,
)


def sheet_distance(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """Each pixel's colour distance from the sheet in Lab's (a, b) plane, and the distance that splits leaf from
    sheet (Otsu's, within MIN_SPLIT-MAX_SPLIT). The sheet's colour: the border's least yellow part (a leaf, green
    to brown, is yellower than the sheet, and may cover much of the border). `rgb`: uint8."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    a, b = lab[..., 1], lab[..., 2]
    ring = border_ring(*rgb.shape[:2])
    ring_a, ring_b = a[ring], b[ring]
    # The median (a, b) of the border's 40% least yellow pixels. A uint8 photo's a and b are whole numbers 0-255, so
    # both figures are read off histograms: np.percentile's and np.median's own, without sorting (issue 57).
    hist_b = np.bincount(ring_b, minlength=256)
    least_yellow = math.floor(hist_quantile(hist_b, 0.4))
    hist_b[least_yellow + 1 :] = 0
    bg_a = hist_quantile(np.bincount(ring_a[ring_b <= least_yellow], minlength=256), 0.5)
    bg_b = hist_quantile(hist_b, 0.5)
    # Each level's distance along a and along b, looked up (one pass over the pixels instead of two), then hypot.
    offsets = np.arange(256, dtype=np.float32)[:, None] - np.array([0, bg_a, bg_b], np.float32)
    diff = cv2.LUT(lab, offsets[None])
    dist = np.hypot(diff[..., 1], diff[..., 2])
    otsu, _ = cv2.threshold(np.minimum(dist * 4, 255).astype(np.uint8), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return dist, float(np.clip(otsu / 4, MIN_SPLIT, MAX_SPLIT))


def hist_quantile(hist: np.ndarray, q: float) -> float:
    """The `q` quantile (np.quantile's default, linear between the two nearest values) of the whole numbers that
    `hist` counts (hist[v]: how many are v): the same figure, from the counts instead of sorting every value."""
    cum = np.cumsum(hist)
    n = int(cum[-1])
    k = q * (n - 1)
    lo = math.floor(k)
    # The lo-th and next smallest values: the first levels whose running counts pass lo and lo + 1.
    v_lo, v_hi = (int(v) for v in np.searchsorted(cum, (lo, min(lo + 1, n - 1)), side="right"))
    return v_lo + (k - lo) * (v_hi - v_lo)


@functools.lru_cache(maxsize=32)
def _ring(h: int, w: int) -> np.ndarray:
    ring = np.ones((h, w), bool)
    bw = max(2, min(h, w) // 16)
    ring[bw:-bw, bw:-bw] = False
    ring.setflags(write=False)  # one array shared by every call for this size
    return ring


@functools.lru_cache(maxsize=32)
def _ring_size(h: int, w: int) -> int:
    return int(_ring(h, w).sum())


def border_ring(h: int, w: int) -> np.ndarray:
    """The photo's outer 1/16 on each side (at least 2 px), where the sheet is looked for (read-only)."""
    return _ring(h, w)


def largest_filled(mask: np.ndarray) -> np.ndarray:
    """A rough 0/1 leaf mask cleaned (opened, closed), its largest part kept, holes filled (lesions and glare
    inside the leaf stay leaf)."""
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    mask = cv2.morphologyEx(cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, k), cv2.MORPH_CLOSE, k)
    n, parts, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return np.zeros(mask.shape, bool)
    largest = (parts == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    contours, _ = cv2.findContours(largest, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = np.zeros_like(largest)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool)


def leaf_mask(rgb: np.ndarray) -> np.ndarray:
    """Boolean mask of the leaf in a lab photo (H x W x 3 uint8 RGB: one leaf on a plain background)."""
    dist, split = sheet_distance(rgb)
    return largest_filled(dist > split)


def solidity(mask: np.ndarray) -> float:
    """The mask's area over its convex hull's (1 for a convex leaf)."""
    points = cv2.findNonZero(mask.astype(np.uint8))
    if points is None:
        return 0.0
    hull = cv2.contourArea(cv2.convexHull(points))
    return float(mask.sum()) / hull if hull > 0 else 0.0


def plain_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A plain sheet (float32 H x W x 3): a palette colour, tinted a little, lit by a gentle gradient, with noise."""
    colour = PALETTE[rng.integers(len(PALETTE))] + rng.normal(0, 8, 3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * (xx / w - 0.5) + np.sin(angle) * (yy / h - 0.5)) * rng.uniform(0, 0.35)
    sheet = colour * (1 + ramp)[..., None] + rng.normal(0, rng.uniform(1, 5), (h, w, 1))
    return np.clip(sheet, 0, 255)


def clean_cut(mask: np.ndarray, min_share: float = MIN_LEAF, max_share: float = MAX_LEAF) -> bool:
    """Whether a found leaf can be trusted: `min_share`-`max_share` of the frame, and solid (MIN_SOLIDITY)."""
    return min_share <= mask.mean() <= max_share and solidity(mask) >= MIN_SOLIDITY


def cut(rgb: np.ndarray) -> np.ndarray | None:
    """The leaf of a lab photo as an (H, W, 1) float32 alpha with a soft edge (as a lens gives), or None when the
    leaf cannot be found cleanly (clean_cut)."""
    mask = leaf_mask(rgb)
    if not clean_cut(mask):
        return None
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 1.0)[..., None]


def paste(rgb: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The leaf of `rgb` (its `alpha` from cut) in place on `background` (same size), as uint8 RGB."""
    return np.clip(np.rint(alpha * rgb + (1 - alpha) * background), 0, 255).astype(np.uint8)


def leaf_box(
    rgb: np.ndarray, max_share: float = MAX_LEAF, max_border: float = MAX_FRAMED_BORDER
) -> tuple[int, int, int, int] | None:
    """The box (x0, y0, x1, y1, in pixels of `rgb`) around the leaf of a photo of one leaf on a plain background, or
    None when no leaf is found cleanly: MIN_FRAMED_LEAF-`max_share` of the frame, and solid (MIN_SOLIDITY), with at
    most `max_border` of the border unlike the sheet. Most of the work is skipped when more than `max_share` of
    the frame differs from the sheet (a leaf filling the frame)."""
    dist, split = sheet_distance(rgb)
    rough = dist > split
    if np.count_nonzero(rough) / rough.size > max_share + 0.1:  # cleaning removes specks and adds holes: a little
        return None
    if np.count_nonzero(rough[border_ring(*rough.shape)]) / _ring_size(*rough.shape) > max_border:
        return None
    mask = largest_filled(rough)
    if not clean_cut(mask, MIN_FRAMED_LEAF, max_share):
        return None
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def sheet_colour(rgb: np.ndarray) -> np.ndarray | None:
    """The sheet's colour (RGB, float32) as lit in this photo: the median of the border's pixels that are sheet
    (`sheet_distance`), leaving out any channel clipped at 0 or 255 (it no longer shows the light's colour). None
    when too little of the border is sheet (MIN_SHEET_BORDER, MIN_UNCLIPPED_BORDER): a field photo, a close-up."""
    dist, split = sheet_distance(rgb)
    ring = border_ring(*rgb.shape[:2])
    border = _ring_size(*rgb.shape[:2])
    sheet = ring & (dist <= split)
    if np.count_nonzero(sheet) < MIN_SHEET_BORDER * border:
        return None
    # Masks and histograms (the same pixels and medians as picking them out and sorting them, faster: issue 57).
    sheet &= cv2.inRange(np.ascontiguousarray(rgb), (6, 6, 6), (249, 249, 249)) > 0  # every channel unclipped
    if np.count_nonzero(sheet) < MIN_UNCLIPPED_BORDER * border:
        return None
    mask = sheet.view(np.uint8)
    hists = [cv2.calcHist([rgb], [c], mask, [256], [0, 256]).ravel() for c in range(3)]
    return np.array([hist_quantile(h, 0.5) for h in hists], np.float32)


def balance_to_sheet(rgb: np.ndarray) -> np.ndarray:
    """The photo (H x W x 3 uint8 RGB) with its white balance taken from the sheet: each channel scaled so that the
    sheet comes out grey at its own brightness, as under daylight (a von Kries correction: a warm or cool light
    scales the channels, and the sheet, the one thing whose colour is known, shows by how much). Unchanged when no
    sheet is found (`sheet_colour`)."""
    colour = sheet_colour(rgb)
    if colour is None:
        return rgb
    gains = np.clip(colour.mean() / np.maximum(colour, 1.0), *GAIN_RANGE)
    return scale_channels(rgb, gains)


def scale_channels(rgb: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """`rgb` (uint8) with each channel multiplied by its gain, rounded and clipped."""
    # Every level of each channel through the gains once (a table), not every pixel: the same numbers, 10x faster.
    table = np.clip(np.arange(256, dtype=np.float32)[:, None] * gains + 0.5, 0, 255).astype(np.uint8)
    return cv2.LUT(np.ascontiguousarray(rgb), table[None])


def light_of(rgb: np.ndarray) -> float | None:
    """Where the light of a photo lies on LIGHT_AXIS (larger: warmer), read off its sheet's colour; None when no
    sheet is found (`sheet_colour`). Brightness and the sheet's own tint across the axis do not count."""
    colour = sheet_colour(rgb)
    if colour is None:
        return None
    g = max(float(colour[1]), 1.0)
    chroma = np.log(np.maximum(colour[[0, 2]], 1.0) / g)
    return float(chroma @ LIGHT_AXIS)


def light_range(lights: list[float | None], source: str = "the training photos") -> tuple[float, ...]:
    """The lights a model has seen: LIGHT_QUANTILES of `light_of` over its training photos with a sheet."""
    seen = np.array([v for v in lights if v is not None], np.float64)
    if len(seen) < MIN_LIGHT_PHOTOS:
        raise ValueError(
            f"only {len(seen)} of {source} show a sheet around the leaf ({MIN_LIGHT_PHOTOS} needed to measure the "
            "lights they were taken under)"
        )
    return tuple(round(float(v), 4) for v in np.quantile(seen, LIGHT_QUANTILES))


def balance_to_range(rgb: np.ndarray, lights: tuple[float, ...]) -> np.ndarray:
    """`range_correction`'s photo."""
    return range_correction(rgb, lights)[0]


def range_correction(rgb: np.ndarray, lights: tuple[float, ...]) -> tuple[np.ndarray, str | None]:
    """The photo with its light moved along LIGHT_AXIS when it lies beyond the lights of nearly all training photos
    (`lights`, from light_range: the outer quantiles), back to the nearer end of their middle half (the inner ones).
    A photo lit as the training photos were is left exactly as it is, so a model keeps what the tints of its own
    photos' sheets tell it; a warmer or cooler light than it was trained under becomes a typical one of those.
    Brightness (the channels' geometric mean) is kept. Unchanged without a sheet. With it, which light was
    corrected: `warm` (warmer than nearly all training photos) or `cool`, else None."""
    light = light_of(rgb)
    seen_lo, typical_lo, typical_hi, seen_hi = lights
    if light is None or seen_lo <= light <= seen_hi:
        return rgb, None
    move = float(np.clip(light, typical_lo, typical_hi)) - light
    log_gains = np.array([move * LIGHT_AXIS[0], 0.0, move * LIGHT_AXIS[1]])
    gains = np.clip(np.exp(log_gains - log_gains.mean()), *GAIN_RANGE)
    return scale_channels(rgb, gains), ("warm" if move < 0 else "cool")
