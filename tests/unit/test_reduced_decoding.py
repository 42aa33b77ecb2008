"""Photos are decoded no larger than the model needs (photos.open_photo): the pixels the model gets stay
those of a whole decode, on real photos, for every way a photo arrives (baseline and progressive JPEG,
EXIF rotation, PNG), and a big photo costs a fraction of the work."""

from __future__ import annotations

import functools
import io

import numpy as np
import pytest
from PIL import Image
from tests.conftest import SHARED

from leafdoc.core.errors import ImageTooLarge
from leafdoc.imaging.photos import decode, decoded_bytes, min_side_for, open_photo, resize_square

pytestmark = pytest.mark.unit

FIELD = SHARED / "field-corn"


def field_photos(n: int) -> list[Image.Image]:
    """The first n (at most 4) field photos of at least 1500 px a side, decoded once per test process."""
    if not FIELD.is_dir():
        pytest.skip(f"shared field photos not found at {FIELD}")
    return list(_big_field_photos()[:n])


@functools.cache
def _big_field_photos() -> tuple[Image.Image, ...]:
    big = [p for p in sorted(FIELD.rglob("*.jpg")) if min(Image.open(p).size) >= 1500]
    return tuple(Image.open(p).convert("RGB") for p in big[:4])


@functools.cache
def encoded(how: str) -> tuple[bytes, ...]:
    """The field photos as a phone or a page sends them (`how`), made once for both model sizes."""
    out = []
    for photo in field_photos(4):
        if how == "exif-rotated":
            exif = Image.Exif()
            exif[0x0112] = 6  # stored on its side, shown upright
            out.append(encode(photo.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=92, exif=exif))
        elif how == "png":  # the least compression: the same pixels, saved in a fraction of the time
            out.append(encode(photo.resize((photo.width // 2, photo.height // 2)), "PNG", compress_level=1))
        else:
            out.append(encode(photo, "JPEG", quality=92, progressive=how == "progressive"))
    return tuple(out)


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def full_then_reduced(data: bytes, size: int) -> tuple[np.ndarray, np.ndarray]:
    full = resize_square(decode(data), size)  # no min_side: decoded whole, as before
    img, frame = open_photo(data, min_side=min_side_for(size))
    return full, resize_square(img, size, frame)


@pytest.mark.parametrize("size", [96, 224])
@pytest.mark.parametrize(
    "how",
    ["baseline", "progressive", "exif-rotated", "png"],
)
def test_reduced_decoding_gives_the_pixels_of_a_whole_decode_on_real_field_photos(size, how):
    diffs = []
    for data in encoded(how):
        full, reduced = full_then_reduced(data, size)
        diffs.append(np.abs(full.astype(np.float32) - reduced).mean())
    # Measured: 0.2-0.7 grey levels of 255 on average; a wrong crop or orientation costs tens.
    assert max(diffs) < 1.5, diffs


def test_exif_rotation_is_applied_to_the_reduced_photo_and_to_its_size():
    photo = field_photos(1)[0]
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(photo.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=92, exif=exif)
    img, frame = open_photo(data, min_side=256)
    assert frame.size == photo.size  # upright: as the person saw it
    assert (img.width > img.height) == (photo.width > photo.height)
    assert img.width < photo.width  # and decoded smaller


def test_a_12_megapixel_jpeg_is_decoded_at_an_eighth_of_its_size():
    """What makes it cheap (the time is in benchmarks/decode.py): libjpeg decodes 1/8 of each side."""
    photo = field_photos(1)[0].resize((4000, 3000))
    img, frame = open_photo(encode(photo, "JPEG", quality=92), min_side=min_side_for(96))
    assert frame.size == (4000, 3000) and frame.factor == 8
    assert img.size == (500, 375)


def test_plantvillage_sized_photos_are_decoded_whole_for_small_models():
    """256 px photos (PlantVillage, the starter's training set) give exactly the pixels they always gave."""
    rng = np.random.default_rng(0)
    data = encode(Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)), "JPEG")
    for size in (96, 128):
        full, reduced = full_then_reduced(data, size)
        assert np.array_equal(full, reduced)


def test_the_decoded_bytes_budget_counts_bytes_not_pixels():
    assert decoded_bytes("I;16", (100, 100)) == 20_000
    assert decoded_bytes("RGBA", (100, 100)) == 40_000
    assert decoded_bytes("RGB", (100, 100)) == 30_000
    rgba = encode(Image.new("RGBA", (400, 400), (1, 2, 3, 4)), "PNG")
    with pytest.raises(ImageTooLarge, match="decodes to"):
        decode(rgba, "x.png", max_pixels=400 * 400)  # 4 bytes a pixel > 3 bytes x the pixel limit
    rgb = encode(Image.new("RGB", (400, 400), (1, 2, 3)), "PNG")
    assert decode(rgb, "x.png", max_pixels=400 * 400).size == (400, 400)


def test_the_frame_says_what_the_decoder_held():
    """What the service gives back to the system after a big decode is judged by (serving.ModelHolder.load): a
    reduced JPEG decode holds the reduced pixels, a PNG is decoded whole, a 16-bit PNG at its decoder's peak."""
    leaf = Image.new("RGB", (4000, 3000), (40, 120, 30))
    _, frame = open_photo(encode(leaf, "JPEG", quality=80), min_side=256)
    assert frame.factor == 8 and frame.decoded == 500 * 375 * 3
    _, frame = open_photo(encode(leaf, "JPEG", quality=80))
    assert frame.decoded == 4000 * 3000 * 3
    _, frame = open_photo(encode(leaf, "PNG"), min_side=256)
    assert frame.decoded == 4000 * 3000 * 3  # reduced only once decoded
    deep = Image.fromarray(np.full((1000, 1200), 30000, np.uint16))
    _, frame = open_photo(encode(deep, "PNG"), min_side=256)
    assert frame.decoded == decoded_bytes(deep.mode, deep.size, "PNG") == 1000 * 1200 * 2


def test_the_pages_history_thumbnail_of_a_40_megapixel_photo_costs_a_few_mb(tmp_path):
    """The web page makes a history thumbnail of every photo the API accepted (ui/history.py). It decoded the photo
    whole, then copied it upright: one 40 MP JPEG sent by a client that skips the page's own shrinking took the page
    process from 289 to 746 MB, four at once to 1.76 GB. Now it is decoded no larger than the thumbnail needs,
    measured in a fresh process by its peak resident memory, and the thumbnail is still the photo."""
    import base64
    import subprocess
    import sys

    h, w = 5470, 7300  # 40 MP, the service's limit: a smooth photo (a few MB as JPEG), green above, brown below
    top = np.array([40, 140, 40], np.float32)
    bottom = np.array([140, 90, 40], np.float32)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    column = (top * (1 - t) + bottom * t).astype(np.uint8)
    photo = tmp_path / "big.jpg"
    Image.fromarray(np.repeat(column[:, None, :], w, axis=1)).save(photo, quality=85)
    code = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from leafdoc.ui.history import thumbnail\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "url = thumbnail(Path(sys.argv[1]))\n"
        "grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
        "print(grew // 1024, url)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(photo)], capture_output=True, text=True, check=True)
    grew_mb, url = out.stdout.split()
    assert int(grew_mb) < 40, f"the thumbnail of a 40 MP photo took {grew_mb} MB (whole: 120 MB decoded, twice)"
    assert url.startswith("data:image/jpeg;base64,")
    small = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert small.size == (96, round(96 * h / w))  # the whole photo, its shape kept
    pixels = np.asarray(small.convert("RGB"), np.float32)
    assert np.abs(pixels[1, 48] - top).max() < 12 and np.abs(pixels[-2, 48] - bottom).max() < 12


def test_a_48_megapixel_phone_jpeg_is_read_at_a_reduced_scale_and_a_png_of_its_size_is_refused():
    """An 8000x6000 phone photo (48 MP, a common camera's full resolution) was refused for its size as stored, "over
    the limit of 40,000,000 pixels", though it decodes at 1/8 into under 1 MP. A JPEG decoded reduced is held to the
    limit at that scale; decoded whole (no model size to reduce to), or as a PNG, still from its header."""
    leaf = Image.new("RGB", (8000, 6000), (40, 120, 30))
    jpeg = encode(leaf, "JPEG", quality=80)
    img, frame = open_photo(jpeg, "phone.jpg", min_side=min_side_for(160))
    assert img.size == (500, 375) and frame.size == (8000, 6000) and frame.decoded < 3_000_000, (img.size, frame)
    with pytest.raises(ImageTooLarge, match="phone.jpg: 8000x6000 pixels is over the limit of 40,000,000"):
        open_photo(jpeg, "phone.jpg")  # decoded whole: 144 MB
    with pytest.raises(ImageTooLarge, match="phone.png: 8000x6000 pixels is over the limit"):
        open_photo(encode(leaf, "PNG"), "phone.png", min_side=min_side_for(160))
    # past 5 times the limit as stored (200 MP), refused from the header: a small file declaring 50000x50000 pixels
    # cost 1.2 CPU-seconds to decode at 1/8
    small = bytearray(encode(Image.new("RGB", (64, 64), (40, 120, 30)), "JPEG"))
    sof = small.find(b"\xff\xc0")
    small[sof + 5 : sof + 9] = (50000).to_bytes(2, "big") * 2
    with pytest.raises(ImageTooLarge, match="50000x50000 pixels is over the limit of 40,000,000"):
        open_photo(bytes(small), "bomb.jpg", min_side=min_side_for(160))
    # the limit still bounds the reduced decode: a model asking for a larger side gets less reduction
    with pytest.raises(ImageTooLarge, match="over the limit of 500,000"):
        open_photo(jpeg, "phone.jpg", max_pixels=500_000, min_side=min_side_for(160))
