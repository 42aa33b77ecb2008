"""The ONE place bytes become a model-ready array, for training and serving alike.

Rules (recorded in every model card as `resize`):
- decode fully with Pillow (a truncated file fails here, not in the middle of an epoch);
- refuse images over a pixel limit before decoding them (decompression bombs);
- apply the EXIF orientation, so a phone photo is upright;
- convert every mode to 8-bit RGB: 16-bit greyscale is scaled (not clipped), transparency is
  composited on white, CMYK and palettes go through Pillow's converters;
- resize the shorter side to `size` (bilinear with antialiasing), then crop the centre square.
The model itself holds its own normalisation, so the array is plain RGB uint8.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from leafdoc.errors import ImageError, ImageTooLarge

RESIZE_RULE = "shorter-side-bilinear-antialias+center-crop"
DEFAULT_MAX_PIXELS = 40_000_000
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}

# We enforce our own limit (and raise ImageTooLarge); Pillow's own bomb check would only warn
# below 2x its limit, so turn it off and check the header size ourselves.
Image.MAX_IMAGE_PIXELS = None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _open_checked(data: bytes, name: str, max_pixels: int) -> Image.Image:
    if not data:
        raise ImageError(f"{name}: the file is empty (0 bytes).", hint="Re-export or re-copy the photo.")
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageError(
            f"{name}: not an image Pillow can read (is it really a photo, or text/another format?).",
            hint="Use a JPEG or PNG photo.",
        ) from None
    w, h = img.size
    if w * h > max_pixels:
        raise ImageTooLarge(
            f"{name}: {w}x{h} pixels is over the limit of {max_pixels:,} pixels.",
            hint="Downscale the photo, or raise LEAFDOC_MAX_IMAGE_PIXELS if you trust the file.",
        )
    if w < 1 or h < 1:
        raise ImageError(f"{name}: the image has no pixels ({w}x{h}).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(
            f"{name}: the image data is corrupt or truncated ({exc}).",
            hint="Copy the file again from its source.",
        ) from None
    return img


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr8 = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr8 = ((arr - lo) / (hi - lo or 1.0) * 255.0).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def decode(data: bytes, name: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Bytes -> upright 8-bit RGB Pillow image, or ImageError naming `name` and what to do."""
    img = _open_checked(data, name, max_pixels)
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block should not cost the photo
        pass
    return _to_rgb(img)


def resize_square(img: Image.Image, size: int) -> np.ndarray:
    """Resize the shorter side to `size`, crop the centre: uint8 array (size, size, 3)."""
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    resized = img.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=None)
    left, top = (nw - size) // 2, (nh - size) // 2
    out = resized.crop((left, top, left + size, top + size))
    return np.asarray(out, dtype=np.uint8)


def load_array(
    source: bytes | str | Path,
    size: int,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """A file path or bytes -> model-ready uint8 RGB array (size, size, 3)."""
    data, name = read_source(source, name)
    return resize_square(decode(data, name, max_pixels), size)


def read_source(source: bytes | str | Path, name: str | None = None) -> tuple[bytes, str]:
    if isinstance(source, bytes | bytearray):
        return bytes(source), name or "image"
    path = Path(source)
    try:
        return path.read_bytes(), name or str(path)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file.", hint="Check the path.") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image file.") from None
    except PermissionError:
        raise ImageError(f"{path}: permission denied.", hint="Check the file's permissions.") from None


def is_image_name(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def perceptual_hashes(img: Image.Image) -> list[int]:
    """64-bit difference hashes of the image under the 8 flips/rotations (dihedral group).

    Two photos whose hash sets intersect within a small Hamming distance are near-duplicates,
    even when one is a flipped or rotated copy of the other (PlantVillage's augmented copies).
    """
    grey = np.asarray(img.convert("L").resize((9, 9), Image.Resampling.BILINEAR), dtype=np.float32)
    hashes = []
    for k in range(4):
        rot = np.rot90(grey, k)
        for arr in (rot, rot[:, ::-1]):
            # 8x8 horizontal gradient signs of the 9x9 thumbnail (drop the last row for 64 bits).
            bits = (arr[:8, 1:] > arr[:8, :-1]).flatten()
            hashes.append(int("".join("1" if b else "0" for b in bits), 2))
    return hashes


def canonical_phash(img: Image.Image) -> int:
    """One representative of the dihedral hash set (its minimum): equal for flipped/rotated copies."""
    return min(perceptual_hashes(img))


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


MORPHOLOGY_OPS = ("none", "opening", "closing", "tophat", "blackhat")


def apply_morphology(arr: np.ndarray, op: str = "none", kernel: int = 3) -> np.ndarray:
    """Optional OpenCV morphology on a uint8 RGB array (per channel), part of preprocessing when a
    model card says so. `tophat` keeps small bright details (lesions, spots) and drops the background.
    """
    if op in ("none", None):
        return arr
    if op not in MORPHOLOGY_OPS:
        raise ValueError(f"morphology {op!r} is not one of {', '.join(MORPHOLOGY_OPS)}")
    import cv2

    codes = {
        "opening": cv2.MORPH_OPEN,
        "closing": cv2.MORPH_CLOSE,
        "tophat": cv2.MORPH_TOPHAT,
        "blackhat": cv2.MORPH_BLACKHAT,
    }
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel, kernel))
    return cv2.morphologyEx(np.ascontiguousarray(arr), codes[op], k)


def preprocess(
    source: bytes | str | Path,
    size: int,
    *,
    morphology: str = "none",
    morph_kernel: int = 3,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """The full pipeline a model card names: decode, resize, optional morphology -> uint8 (S, S, 3)."""
    return apply_morphology(load_array(source, size, name, max_pixels), morphology, morph_kernel)
