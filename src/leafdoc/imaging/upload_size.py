"""A large photo made smaller before it is sent to the service (the desktop app does this; the web page does the same
in the browser, ui/downscale.js), so a 12 MP phone photo costs the server a 1 MP decode and the phone a few
hundred KB of upload instead of several MB.

Why 1024 px on the long side, JPEG quality 90: everything leafdoc looks at is far smaller. The model sees the
shorter side resized to its input (160 px for the starter), the blur check measures at 256 px on the long side,
the unlike-training check at 96 px, and `too_small` refuses photos under 64 px; 1024 px keeps the shorter side of
a 4:3 photo at 768 px (576 px at 16:9), at least twice the largest of those, so the server's own downscaling
(antialiased) still has several source pixels per pixel it keeps. Quality 90 keeps JPEG's blocking far below what
a 160 px input can show. EXIF orientation is applied first (the result carries no EXIF), through photos.open_photo,
the decoder the server uses, so the photo is turned the same way. A photo already at or under 1024 px, or one
that cannot be decoded, is sent as it is: the server gives its own answer (and its own error message) for it. An
HEIC photo (iPhones' default) is always sent as a JPEG when this machine can read HEIC (the [heic] extra), so a
server without it still answers, and the desktop app can show it (Qt cannot read HEIC).
tests/integration/test_upload_size.py checks that real large photos get the same answer either way.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from PIL import Image

from leafdoc.core.errors import LeafdocError
from leafdoc.imaging.photos import DEFAULT_MAX_PIXELS, heif_support, is_heif, open_photo

LONG_SIDE = 1024
JPEG_QUALITY = 90
# shrink_for_upload runs where the photo is (the desktop app, on the grower's own machine), on a file they chose: it
# may decode more than the service would from a stranger. A 24 MP HEIC (an iPhone 15's default) holds about 216 MiB
# while it is decoded, over the service's budget of 114 MiB, and was sent whole, to be refused by the service.
LOCAL_MAX_PIXELS = 4 * DEFAULT_MAX_PIXELS


def shrink_for_upload(
    data: bytes, name: str, long_side: int = LONG_SIDE, max_pixels: int = LOCAL_MAX_PIXELS
) -> tuple[bytes, str]:
    """(bytes, file name) to send: a JPEG with the long side `long_side`, or the photo as it is when it is
    not larger than that (and not HEIC) or not a photo Pillow can read."""
    heic = is_heif(data) and heif_support()
    try:
        with Image.open(io.BytesIO(data)) as head:
            width, height = head.size
    except Exception:  # not an image: the server says why
        return data, name
    if max(width, height) <= long_side and not heic:
        return data, name
    small = reencoded(data, name, long_side, (width, height), max_pixels)
    if small is None or (len(small) >= len(data) and not heic):  # a photo already small in bytes gains nothing
        return data, name
    return small, f"{Path(name).stem or 'photo'}.jpg"


def reencoded(
    data: bytes,
    name: str,
    long_side: int = LONG_SIDE,
    size: tuple[int, int] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> bytes | None:
    """The photo as a JPEG (quality JPEG_QUALITY, EXIF orientation applied) at most `long_side` on its long side,
    decoded as the server decodes; None if it cannot be decoded. Whatever the file held besides the picture (EXIF,
    bytes after its end) is not in the copy."""
    try:
        if size is None:
            with Image.open(io.BytesIO(data)) as head:
                size = head.size
        width, height = size
        min_side = math.ceil(long_side * min(width, height) / max(width, height))
        img, _ = open_photo(data, name, max_pixels, min_side=min_side)
    except (LeafdocError, OSError, ValueError, SyntaxError):
        return None
    scale = long_side / max(img.size)
    if scale < 1:
        resized = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(resized, Image.Resampling.LANCZOS, reducing_gap=3.0)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()
