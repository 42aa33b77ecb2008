"""The ONE place bytes become a model-ready array, for training and serving alike.

Rules (recorded in every model card as `resize`):
- decode fully with Pillow (a truncated file fails here, not in the middle of an epoch);
- refuse images over a pixel limit before decoding them (decompression bombs);
- apply the EXIF orientation, so a phone photo is upright;
- convert every mode to 8-bit RGB: 16-bit greyscale is scaled (not clipped), transparency is
  composited on white, CMYK and palettes go through Pillow's converters;
- resize the shorter side to `size` (bilinear with antialiasing), then crop the centre square;
- with framing `leaf` (a model card's `input.framing`): when the photo shows one leaf on a plain background and
  the leaf spans less than FRAME_BELOW of the photo's shorter side (taken from too far), the model sees the square
  around the leaf instead, in which the leaf spans FRAME_FILL, as in the photos it learnt from (`leaf_region`);
- with white balance `sheet` (a model card's `input.white_balance`): the resized square's colours are scaled so that
  the sheet around the leaf comes out grey, as under daylight (imaging/leafcut.py `balance_to_sheet`); then the
  morphology, if the card names one (`Preparation` holds what a card names).
The model itself holds its own normalisation, so the array is plain RGB uint8.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from leafdoc.core.errors import ImageError, ImageTooLarge, UnsupportedImageFormat

RESIZE_RULE = "shorter-side-bilinear-antialias+center-crop"
DEFAULT_MAX_PIXELS = 40_000_000
# A JPEG decoded at a reduced scale (1/2 to 1/8 a side) may be this many times the pixel limit as stored: 200 MP by
# default, the largest phone cameras' (16320x12240). Not 64 times (what 1/8 a side would allow): a 600-byte JPEG
# declaring 50000x50000 pixels cost 1.2 CPU-seconds and 150 MB to decode even at 1/8; one of 200 MP costs 0.1 s.
REDUCED_JPEG_PIXELS = 5
FRAMINGS = ("none", "leaf")  # a model card's `input.framing`; cards from before framing have none: "none"
# A model card's `input.white_balance`; cards from before it have none: "none". `light-range` needs the card's
# `input.light_range` too (the lights its training photos were taken under: leafcut.light_range).
WHITE_BALANCES = ("none", "sheet", "light-range")
# Framing: the leaf is looked for in a FRAME_CUT_PX square copy of the photo (about 1 ms); a leaf spanning less than
# FRAME_BELOW of the shorter side is framed so that it spans FRAME_FILL of the square the model sees. PlantVillage's
# leaves span 0.73-1.0 of theirs (5th-95th percentile), so few training photos are framed. Chosen on the starter's
# validation photos with the leaf made smaller (benchmarks/phone_conditions.py): more framing (below 0.7) answered
# more lab photos as taken wrong.
FRAME_CUT_PX = 96
FRAME_BELOW = 0.6
FRAME_FILL = 0.85
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".heic", ".heif"}
# HEIC/HEIF (iPhones' default photo format): an ISO-BMFF file whose `ftyp` box names one of these major brands.
# Pillow reads it through pillow-heif (the [heic] extra), registered the first time such a photo arrives.
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}

# We enforce our own limit (and raise ImageTooLarge); Pillow's own bomb check would only warn
# below 2x its limit, so turn it off and check the header size ourselves.
Image.MAX_IMAGE_PIXELS = None
# Pillow warns (UserWarning) about corrupt EXIF blocks and similar damage it recovers from; the photo is
# still usable, so keep that noise out of progress bars. A filter set once, not `catch_warnings` per call:
# that context manager is not thread-safe and ingest decodes in threads.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Bytes per pixel of each mode as it is decoded and converted here. A palette or 1-bit image is converted
# to RGBA/L before it is reduced (resampling a palette would pick colours, not average them), so it costs
# what it will be converted to.
_MODE_BYTES = {
    **dict.fromkeys(("1", "L"), 1),
    **dict.fromkeys(("LA", "La", "I;16", "I;16L", "I;16B", "I;16N"), 2),
    **dict.fromkeys(("P", "PA", "RGBA", "RGBa", "RGBX", "CMYK", "I", "F"), 4),
}  # every other mode (RGB, YCbCr, LAB, HSV): 3
BYTES_PER_BUDGET_PIXEL = 3  # the decoded-bytes budget is an 8-bit RGB image at the pixel limit

# The formats photos come in, the only ones Pillow is asked to open: every other format it knows is refused before
# any of its code runs (UnsupportedImageFormat, 415). Some decode while they open: an ICO's entry is decoded whole
# by Image.open, an ICNS's PNG entry by load(), at sizes their headers do not state (a 1 MB .ico held a 20000x20000
# PNG: +1.5 GB). MPO is how Pillow opens a camera JPEG that holds a second picture; only the first frame of a
# multi-page TIFF or an animated GIF, PNG or WebP is ever decoded.
PHOTO_FORMATS = ("JPEG", "MPO", "PNG", "GIF", "BMP", "TIFF", "WEBP", "HEIF")
# Peak bytes per pixel of the formats whose decoder holds far more than the decoded image, measured at 16 MP
# (benchmarks/decode_memory.py): libwebp's animation decoder, the only one Pillow uses, keeps two RGBA canvases and
# the frame beside Pillow's copy (16.8; a 6300x6300 WebP cost +611 MB); libheif its YCbCr planes (7.6-8.3).
_DECODER_BYTES = {"WEBP": 17, "HEIF": 9}


# A JPEG read in several scans (progressive, or sequential with a scan a component) is decoded by libjpeg into a
# buffer of every DCT coefficient of the image at full size, whatever the reduced scale asked for (2 bytes a sample:
# a 6320x6320 progressive 4:4:4 JPEG of 469 KB held +229 MB), and its data is read again for every scan (a crafted
# 495 KB file repeating one refinement scan cost 4.3 CPU-seconds). Encoders write up to about 10 scans for colour,
# mozjpeg's searched progressions about 20; more is refused.
MAX_JPEG_SCANS = 64
JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # the frame markers (DHT, JPG and DAC are not)


class JpegFrame(NamedTuple):
    marker: int  # its SOF marker: 0xC0/0xC1 sequential, 0xC2 progressive, ...
    scans: int  # SOS markers between the frame and the end of the image
    sampling: list[tuple[int, int]]  # each component's sampling factors (h, v)


def jpeg_frame(data: bytes, within: int = 1024 * 1024) -> JpegFrame | None:
    """The main frame of a JPEG, found by walking its segments in the first `within` bytes; None if there is none.
    The walk skips APPn segments by their length, so an EXIF thumbnail's scan is not counted; an SOS marker cannot
    occur inside entropy-coded data (0xFF is always followed by 0x00 or a restart marker there)."""
    i = 2
    end = min(len(data), within)
    while i + 4 <= end:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in JPEG_SOF:
            n = data[i + 9] if i + 9 < len(data) else 0
            sampling = [
                (data[i + 11 + 3 * k] >> 4, data[i + 11 + 3 * k] & 15) for k in range(n) if i + 12 + 3 * k < len(data)
            ]
            stop = data.find(b"\xff\xd9", i)
            return JpegFrame(marker, data.count(b"\xff\xda", i, stop if stop >= 0 else len(data)), sampling)
        if marker == 0xDA:  # a scan before any frame: not a JPEG libjpeg reads
            return None
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def jpeg_coefficient_bytes(size: tuple[int, int], sampling: list[tuple[int, int]]) -> int:
    """Bytes of libjpeg's whole-image coefficient buffer for a multi-scan JPEG of `size` (2 a sample, each
    component at its own sampling, rounded up to whole 8x8 blocks)."""
    w, h = size
    h_max = max((f[0] for f in sampling), default=1) or 1
    v_max = max((f[1] for f in sampling), default=1) or 1
    total = 0
    for fh, fv in sampling or [(1, 1)] * 3:
        cw = -(-w * max(fh, 1) // h_max)
        ch = -(-h * max(fv, 1) // v_max)
        total += (-(-cw // 8) * 8) * (-(-ch // 8) * 8)
    return 2 * total


def decoded_bytes(mode: str, size: tuple[int, int], fmt: str | None = None) -> int:
    """Bytes the decoder will hold for an image of this mode and size (before any conversion); for a format in
    _DECODER_BYTES, what its decoder holds at its peak."""
    return size[0] * size[1] * _DECODER_BYTES.get(fmt or "", _MODE_BYTES.get(mode, 3))


def format_of(data: bytes) -> str | None:
    """The format Pillow would take `data` for, from its first bytes only (nothing is parsed or decoded)."""
    Image.init()
    head = data[:64]
    for fmt, (_, accept) in Image.OPEN.items():
        with contextlib.suppress(Exception):
            if accept and accept(head):
                return fmt
    return None


def _photo_formats() -> list[str]:
    """PHOTO_FORMATS that this Pillow has a plugin for (HEIF: once heif_support has registered it)."""
    Image.init()
    return [fmt for fmt in PHOTO_FORMATS if fmt in Image.OPEN]


def _too_many_pixels(name: str, size: tuple[int, int], max_pixels: int) -> ImageTooLarge:
    return ImageTooLarge(
        f"{name}: {size[0]}x{size[1]} pixels is over the limit of {max_pixels:,} pixels.",
        hint="Downscale the photo, or raise LEAFDOC_MAX_IMAGE_PIXELS if you trust the file.",
    )


def _unsupported(name: str, fmt: str) -> UnsupportedImageFormat:
    return UnsupportedImageFormat(
        f"{name}: an image in the {fmt} format; leafdoc reads photos in {', '.join(PHOTO_FORMATS)} only.",
        hint="Send the photo as a JPEG or PNG.",
    )


def is_heif(data: bytes) -> bool:
    return len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS


@functools.cache
def heif_support() -> bool:
    """Register pillow-heif's opener with Pillow (once); False when it is not installed. libheif applies the
    photo's own rotation while decoding and pillow-heif resets the EXIF orientation to 1, so such a photo is
    upright like any other (tests/unit/test_heic.py)."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def _open_checked(
    data: bytes, name: str, max_pixels: int, min_side: int | None = None, max_bytes: int | None = None
) -> tuple[Image.Image, tuple[int, int], int]:
    """Open, check the header against the limits, and decode (at a reduced JPEG scale when `min_side` allows).
    Returns the image, its size as stored (before orientation or any reduction) and the bytes its decoder held."""
    if not data:
        raise ImageError(f"{name}: the file is empty (0 bytes).", hint="Re-export or re-copy the photo.")
    if is_heif(data) and not heif_support():
        raise ImageError(
            f"{name}: an HEIC photo (the format iPhones save by default), and this leafdoc cannot read HEIC: its "
            "optional package pillow-heif is not installed.",
            hint="Send the photo as JPEG (on an iPhone: Settings > Camera > Formats > Most Compatible), or install "
            "leafdoc's [heic] extra where leafdoc runs.",
        )
    try:
        img = Image.open(io.BytesIO(data), formats=_photo_formats())
    except UnidentifiedImageError:
        fmt = format_of(data)
        if fmt is not None and fmt not in PHOTO_FORMATS:
            raise _unsupported(name, fmt) from None
        raise ImageError(
            f"{name}: not a photo leafdoc can read (is it really a photo, or text/another format?).",
            hint="Use a photo file: JPEG, PNG, HEIC, WebP, TIFF, BMP or GIF.",
        ) from None
    except Exception as exc:  # a recognised format whose header is broken (OSError, SyntaxError, struct.error...)
        raise _corrupt(name, exc) from None
    w, h = img.size
    # A JPEG decoded at a reduced scale (below) is held to the limit at that scale, and to REDUCED_JPEG_PIXELS times
    # it as stored: a 48 MP phone photo (8000x6000) decodes at 1/8 into under 1 MP, and was refused for its size as
    # stored. Every other photo, from its header.
    reduced = bool(min_side) and img.format == "JPEG"
    if w * h > max_pixels * (REDUCED_JPEG_PIXELS if reduced else 1):
        raise _too_many_pixels(name, (w, h), max_pixels)
    if w < 1 or h < 1:
        raise ImageError(f"{name}: the image has no pixels ({w}x{h}).")
    coefficients = 0  # a multi-scan JPEG's whole-image coefficient buffer (MAX_JPEG_SCANS says why)
    if img.format in ("JPEG", "MPO"):
        frame = jpeg_frame(data)
        scans, sampling = (frame.scans, frame.sampling) if frame is not None else (1, [])
        if scans > MAX_JPEG_SCANS:
            raise ImageTooLarge(
                f"{name}: a JPEG of {scans} scans; leafdoc reads JPEGs of at most {MAX_JPEG_SCANS} (a camera or an "
                "editor writes 1 to about 20).",
                hint="Save the photo again as an ordinary (baseline) JPEG.",
            )
        if scans > 1:
            coefficients = jpeg_coefficient_bytes((w, h), sampling)
    if min_side and img.format == "JPEG":
        # libjpeg scales by 1/2, 1/4 or 1/8 while decoding, to the smallest size whose sides are still
        # >= min_side: a 12 MP phone photo costs a 1/8 decode instead of 36 MB of pixels.
        with contextlib.suppress(Exception):
            img.draft(img.mode, (min_side, min_side))
        if img.size[0] * img.size[1] > max_pixels:  # not reduced enough: min_side asked for more
            raise _too_many_pixels(name, (w, h), max_pixels)
    budget = max_bytes if max_bytes is not None else BYTES_PER_BUDGET_PIXEL * max_pixels
    need = decoded_bytes(img.mode, img.size, img.format) + coefficients
    if need > budget:
        kind = f"{img.format} " if img.format in _DECODER_BYTES else "progressive " if coefficients else ""
        raise ImageTooLarge(
            f"{name}: a {w}x{h} {kind}{img.mode} image decodes to {need / 2**20:,.0f} MiB, over the budget of "
            f"{budget / 2**20:,.0f} MiB of decoded pixels per image.",
            hint="Send the photo as an 8-bit baseline JPEG or a smaller PNG, or raise LEAFDOC_MAX_IMAGE_PIXELS "
            "(the budget is 3 bytes per allowed pixel) if you trust the file.",
        )
    try:
        img.load()
    except Exception as exc:  # decoders raise OSError, SyntaxError, ValueError, EOFError... on bad data
        raise _corrupt(name, exc) from None
    return img, (w, h), need


def _corrupt(name: str, exc: Exception) -> ImageError:
    return ImageError(
        f"{name}: the image data is corrupt or truncated ({exc or type(exc).__name__}).",
        hint="Copy the file again from its source.",
    )


_ROWS = 512  # rows converted at a time: a 16-bit or float image never gets a full-size float copy


def _to_8bit(img: Image.Image) -> Image.Image:
    """A 16/32-bit integer or float greyscale image as 8-bit L, scaled (not clipped), in row blocks."""
    arr = np.asarray(img)
    if img.mode == "F":
        lo, hi = float(arr.min()), float(arr.max())
        scale, offset = 255.0 / (hi - lo or 1.0), -lo
    else:
        top = 65535.0 if img.mode.startswith("I;16") or int(arr.max()) > 255 else 255.0
        scale, offset = 255.0 / top, 0.0
    out = np.empty(arr.shape, dtype=np.uint8)
    for r in range(0, arr.shape[0], _ROWS):
        block = (arr[r : r + _ROWS].astype(np.float32) + offset) * scale
        if img.mode != "F":
            block += 0.5  # round to nearest, as the scaled 16-bit conversion always did
        out[r : r + _ROWS] = np.clip(block, 0, 255)
    return Image.fromarray(out, "L")


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _to_8bit(img).convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA") if mode != "RGBA" else img
        out = Image.new("RGB", rgba.size, (255, 255, 255))  # transparency composited on white
        out.paste(rgba.convert("RGB"), mask=rgba.getchannel("A"))
        return out
    return img.convert("RGB")


_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112, 1) or 1)
    except Exception:  # a broken EXIF block should not cost the photo
        return 1


def _reduce(img: Image.Image, min_side: int) -> Image.Image:
    """Box-average the image down by a whole factor while its shorter side stays >= min_side."""
    factor = min(img.size) // min_side
    if factor < 2:
        return img
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB")
    elif img.mode == "1":
        img = img.convert("L")
    # Whole blocks only (the last partial row and column of blocks are left out), so each decoded pixel is
    # exactly the mean of a factor x factor block and the mapping back to the photo stays exact.
    w, h = img.size[0] // factor, img.size[1] // factor
    return img.resize((w, h), Image.Resampling.BOX, box=(0, 0, w * factor, h * factor))


@dataclass(frozen=True)
class Frame:
    """Where a decoded image sits in the photo as sent (photos.open_photo): the photo's own upright size, the
    whole factor it was decoded smaller by, and where the photo's origin lies in the decoded image (in decoded
    pixels). A reduced axis ends in a partial block of pixels; an EXIF rotation or flip that mirrors the axis
    brings that block first, which shifts the origin by the part of the block that lies outside the photo."""

    size: tuple[int, int]
    factor: int = 1
    offset: tuple[float, float] = (0.0, 0.0)
    decoded: int = 0  # bytes the decoder held at its peak (decoded_bytes), for who gives memory back after


# For each EXIF orientation: which stored axis (0: x, 1: y) becomes the upright x and y, and whether it is
# mirrored on the way (see the Image.Transpose each orientation uses above).
_UPRIGHT_AXES = {
    1: ((0, False), (1, False)),
    2: ((0, True), (1, False)),
    3: ((0, True), (1, True)),
    4: ((0, False), (1, True)),
    5: ((1, False), (0, False)),
    6: ((1, True), (0, False)),
    7: ((1, True), (0, True)),
    8: ((1, False), (0, True)),
}


def open_photo(
    data: bytes,
    name: str = "image",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    *,
    min_side: int | None = None,
    max_bytes: int | None = None,
) -> tuple[Image.Image, Frame]:
    """Bytes -> (upright 8-bit RGB image, where it sits in the photo), or ImageError naming `name`.

    With `min_side`, the image is decoded no larger than needed for a shorter side of at least `min_side`
    (JPEG: scaled while decoding; other formats: box-averaged by a whole factor right after decoding, in their
    own mode), so a phone photo costs what the model needs. Without it the image is decoded whole. Either way
    the decoded pixels may take at most `max_bytes` (default: 3 bytes per allowed pixel).
    """
    img, stored, decoded = _open_checked(data, name, max_pixels, min_side, max_bytes)
    orientation = _orientation(img)
    if min_side:
        img = _reduce(img, min_side)
    factor = max(1, round(stored[0] / img.width))
    # Decoded pixels past the photo's edge on each stored axis: ceil(L / f) * f - L, in decoded pixels.
    spill = [(n * factor - length) / factor for n, length in zip(img.size, stored, strict=True)]
    axes = _UPRIGHT_AXES.get(orientation, _UPRIGHT_AXES[1])
    if orientation in _EXIF_TRANSPOSE:
        img = img.transpose(_EXIF_TRANSPOSE[orientation])
    size = (stored[axes[0][0]], stored[axes[1][0]])
    offset = tuple(spill[axis] if mirrored else 0.0 for axis, mirrored in axes)
    return _to_rgb(img), Frame(size, factor, offset, decoded)


def decode(data: bytes, name: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS, **kw) -> Image.Image:
    """Bytes -> upright 8-bit RGB Pillow image, or ImageError naming `name` and what to do (see open_photo)."""
    return open_photo(data, name, max_pixels, **kw)[0]


def thumbnail(data: bytes, name: str, size: int) -> tuple[Image.Image, Frame]:
    """The photo upright in RGB, fitted in a size x size box, decoded no larger than that needs (a phone's JPEG at
    1/8 scale; see open_photo), with its Frame (`decoded`: what the decoder held, for who gives memory back after
    a big one). ImageError naming `name` as open_photo does. A 40 MP JPEG decoded whole for a 96 px picture took
    a page process from 289 to 746 MB (2026-12-01)."""
    img, frame = open_photo(data, name, min_side=size)
    img.thumbnail((size, size), Image.Resampling.LANCZOS)
    return img, frame


def min_side_for(size: int) -> int:
    """The shorter side a photo is decoded at for a model of input `size`: twice the input (the final
    antialiased resize still averages over at least 2x2 source pixels) and at least the 256 px the photo
    quality checks measure at. PlantVillage's 256 px photos are therefore decoded whole for models up to 128 px."""
    return max(2 * size, 256)


def leaf_region(img: Image.Image) -> tuple[float, float, float, float] | None:
    """The square of `img` (left, top, right, bottom, in its pixels) a model with framing `leaf` sees: around the
    leaf, when a leaf on a plain background is found and spans less than FRAME_BELOW of the shorter side; else
    None (the centre crop). The square is kept inside the photo, shifted if it has to be."""
    from leafdoc.imaging.leafcut import leaf_box

    small = np.asarray(img.resize((FRAME_CUT_PX, FRAME_CUT_PX), Image.Resampling.BILINEAR))
    # A leaf that could be framed spans less than FRAME_BELOW of the shorter side, so it covers at most
    # FRAME_BELOW^2 / aspect of the photo, and of its squeezed square copy: a cut finding more is not needed.
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


def model_region(img: Image.Image, framing: str) -> tuple[float, float, float, float] | None:
    """What `resize_square` is given as `region` for a model of this framing (FRAMINGS)."""
    if framing == "leaf":
        return leaf_region(img)
    if framing in ("none", None):
        return None
    raise ValueError(f"framing {framing!r} is not one of {', '.join(FRAMINGS)}")


def region_in_photo(region: tuple[float, float, float, float], frame: Frame) -> list[int]:
    """`region`, a box of a decoded image (`model_region`), in whole pixels of the upright photo as sent."""
    (ox, oy), f = frame.offset, frame.factor
    left, top, right, bottom = region
    w, h = frame.size
    return [
        min(max(round((left - ox) * f), 0), w),
        min(max(round((top - oy) * f), 0), h),
        min(max(round((right - ox) * f), 0), w),
        min(max(round((bottom - oy) * f), 0), h),
    ]


def resize_square(
    img: Image.Image, size: int, frame: Frame | None = None, region: tuple[float, float, float, float] | None = None
) -> np.ndarray:
    """Resize the shorter side to `size`, crop the centre: uint8 array (size, size, 3).

    `frame`: where a reduced-scale decode sits in the photo (open_photo). The crop is then the same region
    of the photo as at full size, to the sub-pixel, so reduced and whole decoding differ only by the
    decoder's own averaging. `region`: a square of `img` to resize instead (`model_region`)."""
    if region is not None:
        out = img.resize((size, size), Image.Resampling.BILINEAR, box=region, reducing_gap=None)
        return np.asarray(out, dtype=np.uint8)
    w, h = frame.size if frame else img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    left, top = (nw - size) // 2, (nh - size) // 2
    if frame and frame.factor >= 2:
        fx, fy = nw / w * frame.factor, nh / h * frame.factor  # resized-photo pixels per decoded pixel
        ox, oy = frame.offset
        box = (ox + left / fx, oy + top / fy, ox + (left + size) / fx, oy + (top + size) / fy)
        # A whole-block reduction leaves out the photo's last partial block: at most a decoded pixel's edge.
        box = (max(0.0, box[0]), max(0.0, box[1]), min(img.width, box[2]), min(img.height, box[3]))
        out = img.resize((size, size), Image.Resampling.BILINEAR, box=box, reducing_gap=None)
        return np.asarray(out, dtype=np.uint8)
    resized = img.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=None)
    out = resized.crop((left, top, left + size, top + size))
    return np.asarray(out, dtype=np.uint8)


def load_array(
    source: bytes | str | Path,
    size: int,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    framing: str = "none",
) -> np.ndarray:
    """A file path or bytes -> the decoded, framed and resized uint8 RGB array (size, size, 3); Preparation goes on."""
    data, name = read_source(source, name)
    img, frame = open_photo(data, name, max_pixels, min_side=min_side_for(size))
    return resize_square(img, size, frame, model_region(img, framing))


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


def apply_white_balance(
    arr: np.ndarray, white_balance: str = "none", light_range: tuple[float, ...] | None = None
) -> np.ndarray:
    """`white_balance_noting`'s photo."""
    return white_balance_noting(arr, white_balance, light_range)[0]


def white_balance_noting(
    arr: np.ndarray, white_balance: str = "none", light_range: tuple[float, ...] | None = None
) -> tuple[np.ndarray, str | None]:
    """The white balance a model card names (WHITE_BALANCES) on a uint8 RGB array: `sheet` takes it from the sheet
    around the leaf (leafcut.py `balance_to_sheet`), `light-range` corrects only a light beyond `light_range`, the
    lights the training photos were taken under (`range_correction`), `none` leaves the colours as they are. With
    it, which light `light-range` corrected: `warm`, `cool` or None."""
    if white_balance in ("none", None):
        return arr, None
    from leafdoc.imaging import leafcut

    if white_balance == "sheet":
        return leafcut.balance_to_sheet(arr), None
    if white_balance == "light-range":
        if light_range is None:
            raise ValueError("white balance 'light-range' needs the range of lights the model was trained under")
        return leafcut.range_correction(arr, light_range)
    raise ValueError(f"white balance {white_balance!r} is not one of {', '.join(WHITE_BALANCES)}")


@dataclass(frozen=True)
class Preparation:
    """What a model's card (`input`) says is done to a photo after decoding, in training (the cache) and serving
    (Predictor) alike: the square of `size` px it sees (framed by `framing`: FRAMINGS), then its `white_balance`
    (WHITE_BALANCES; `light-range` with its `light_range`), then its `morphology` (MORPHOLOGY_OPS) with
    `morph_kernel`. The field names are the card's."""

    size: int
    framing: str = "none"
    white_balance: str = "none"
    morphology: str = "none"
    morph_kernel: int = 3
    light_range: tuple[float, ...] | None = None  # leafcut.light_range's quantiles

    def __call__(self, source: bytes | str | Path, name: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS):
        """A file path or bytes -> the model-ready uint8 RGB array (size, size, 3)."""
        return self.finish(load_array(source, self.size, name, max_pixels, self.framing))

    def finish(self, arr: np.ndarray) -> np.ndarray:
        """What follows the resize: the white balance, then the morphology."""
        return self.finish_noting(arr)[0]

    def finish_noting(self, arr: np.ndarray) -> tuple[np.ndarray, str | None]:
        """`finish`, and which light the `light-range` white balance corrected: `warm`, `cool` or None."""
        balanced, light = white_balance_noting(arr, self.white_balance, self.light_range)
        return apply_morphology(balanced, self.morphology, self.morph_kernel), light

    def with_lights(self, items: Sequence, read: Callable = lambda item: item, what: str = "the training photos"):
        """This preparation with `light-range` white balance and the lights `items` (photos: what `read` makes of
        each is a path or bytes) were taken under, measured as the model would see them before any white balance
        (leafcut.light_range). ValueError when too few of them show a sheet."""
        from leafdoc.imaging.leafcut import light_of, light_range

        plain = replace(self, white_balance="none", morphology="none", light_range=None)
        with ThreadPoolExecutor(max_workers=4) as pool:
            lights = list(pool.map(lambda item: light_of(plain(read(item))), items))
        return replace(self, white_balance="light-range", light_range=light_range(lights, what))

    def label(self) -> str:
        """What sets these pixels apart, for a cache folder's name: `160px`, `64px-tophat5-leaf-wbsheet`."""
        morph = "" if self.morphology in ("none", None) else f"-{self.morphology}{self.morph_kernel}"
        framed = "" if self.framing in ("none", None) else f"-{self.framing}"
        balanced = "" if self.white_balance in ("none", None) else f"-wb{self.white_balance}"
        if self.light_range is not None and self.white_balance == "light-range":
            balanced += "".join(f"{v:+.4f}" for v in self.light_range)  # each training split has its own lights
        return f"{self.size}px{morph}{framed}{balanced}"


def preprocess(
    source: bytes | str | Path,
    size: int,
    *,
    morphology: str = "none",
    morph_kernel: int = 3,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    framing: str = "none",
    white_balance: str = "none",
    light_range: tuple[float, ...] | None = None,
) -> np.ndarray:
    """The full pipeline a model card names: decode, frame, resize, white balance, morphology -> uint8 (S, S, 3)."""
    prep = Preparation(size, framing, white_balance, morphology, morph_kernel, light_range)
    return prep(source, name, max_pixels)
