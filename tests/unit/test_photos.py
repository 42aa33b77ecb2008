"""imaging/photos.py: the one place bytes become pixels. Bad files must fail with a message naming the file and
what to do; every odd-but-valid photo must become correct, upright 8-bit RGB."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile
from tests.conftest import synthetic_image

from leafdoc.core.errors import ImageError, ImageTooLarge, UnsupportedImageFormat
from leafdoc.data.ingest import NEAR_DUPLICATE_BITS
from leafdoc.data.phash import canonical_phash, near_duplicate_pairs, perceptual_hashes, phash_distance
from leafdoc.imaging.photos import decode, load_array, read_source

T = Image.Transpose


def png_bytes(width: int, height: int, bit_depth: int, color_type: int, raw_rows: bytes) -> bytes:
    """A PNG written by hand, for what Pillow cannot save (16-bit RGB) or should not build in memory."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw_rows) + chunk(b"IEND", b"")


def bomb_png(side: int = 10_000) -> bytes:
    """A valid 1-bit white PNG of side x side pixels: about 25 kB on disk, 100 megapixels decoded."""
    row = b"\x00" + b"\xff" * ((side + 7) // 8)
    packer = zlib.compressobj(9)
    return png_bytes(side, side, 1, 0, b"".join(packer.compress(row) for _ in range(side)) + packer.flush())


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def rgb(img: Image.Image) -> np.ndarray:
    assert img.mode == "RGB"
    return np.asarray(img).astype(int)


@pytest.fixture
def jpeg_bytes(tmp_path) -> bytes:
    return synthetic_image(tmp_path / "leaf.jpg", size=(64, 48)).read_bytes()


# --- files that are not usable images -------------------------------------------------------------


def test_empty_file_is_refused_by_name():
    with pytest.raises(ImageError) as err:
        decode(b"", "photos/empty.jpg")
    assert err.value.message.startswith("photos/empty.jpg: ")
    assert "empty (0 bytes)" in err.value.message
    assert err.value.hint  # says what to do


def test_text_file_named_jpg_is_refused_by_name():
    with pytest.raises(ImageError) as err:
        decode(b"label,notes\nhealthy,looks fine\n", "photos/notes.jpg")
    assert err.value.message.startswith("photos/notes.jpg: not a photo leafdoc can read")
    assert "JPEG, PNG, HEIC" in err.value.hint


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_jpeg_fails_at_decode_not_later(jpeg_bytes, keep):
    cut = jpeg_bytes[: int(len(jpeg_bytes) * keep)]
    with pytest.raises(ImageError) as err:
        decode(cut, "leaf.jpg")
    assert err.value.message.startswith("leaf.jpg: the image data is corrupt or truncated")
    assert "Copy the file again" in err.value.hint


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's own notes about the damage it recovers from
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"])
def test_damaged_files_of_every_format_raise_image_error_only(fmt):
    """Truncated or bit-flipped files must become ImageError (a 422 / a rejected file), never a crash."""
    img = synthetic_image_in_memory()
    data = encode(img, fmt)
    rng = np.random.default_rng(1)
    variants = [data[:n] for n in (8, 16, 30, 60, len(data) // 2, len(data) - 1) if n < len(data)]
    for _ in range(25):
        damaged = bytearray(data)
        for i in rng.integers(0, len(data), 4):
            damaged[i] = int(rng.integers(0, 256))
        variants.append(bytes(damaged))
    for v in variants:
        try:
            out = decode(v, f"x.{fmt.lower()}")
        except ImageError as exc:
            assert exc.message.startswith(f"x.{fmt.lower()}: ")
        else:  # some damage still decodes (to odd pixels); then it must be a proper RGB image
            assert out.mode == "RGB" and out.width > 0


def synthetic_image_in_memory() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8), "RGB")


def test_decompression_bomb_is_refused_from_the_header(monkeypatch):
    data = bomb_png()
    assert len(data) < 100_000  # tiny on disk...

    def no_decoding(self, *a, **kw):  # ...and must never be decoded (100 megapixels)
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageTooLarge) as err:
        decode(data, "huge.png")
    assert err.value.message.startswith("huge.png: 10000x10000 pixels is over the limit of 40,000,000")
    assert "LEAFDOC_MAX_IMAGE_PIXELS" in err.value.hint
    assert err.value.status == 413


def test_pixel_limit_is_a_setting():
    data = encode(Image.new("RGB", (30, 20), "green"), "PNG")
    assert decode(data, "ok.png", max_pixels=600).size == (30, 20)
    with pytest.raises(ImageTooLarge, match="30x20 pixels is over the limit of 599"):
        decode(data, "big.png", max_pixels=599)


# --- modes: everything becomes correct 8-bit RGB --------------------------------------------------


def test_16bit_greyscale_png_is_scaled_not_clipped():
    arr = np.array([[0, 257 * 10, 32768, 65535]], dtype=np.uint16)
    data = encode(Image.fromarray(arr), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    out = rgb(decode(data))
    assert out[0, :, 0].tolist() == [0, 10, 128, 255]
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_16bit_rgb_png_keeps_its_colours():
    px = np.array([[[65535, 0, 32768], [65535, 65535, 65535], [0, 0, 0]]], dtype=">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in px)
    out = rgb(decode(png_bytes(3, 1, 16, 2, zlib.compress(raw))))
    assert out[0].tolist() == [[255, 0, 128], [255, 255, 255], [0, 0, 0]]


def test_cmyk_becomes_rgb():
    cmyk = Image.new("CMYK", (4, 2), (0, 0, 0, 0))  # no ink: white paper
    cmyk.paste((255, 0, 0, 0), (0, 0, 2, 2))  # full cyan
    out = rgb(decode(encode(cmyk, "TIFF")))
    assert out[0, 0].tolist() == [0, 255, 255]
    assert out[0, 3].tolist() == [255, 255, 255]
    jpeg = rgb(decode(encode(cmyk, "JPEG", quality=95)))
    assert np.abs(jpeg[1, 3] - [255, 255, 255]).max() <= 6


def test_greyscale_becomes_three_equal_channels():
    out = rgb(decode(encode(Image.new("L", (5, 5), 77), "PNG")))
    assert out.shape == (5, 5, 3) and (out == 77).all()


def test_rgba_transparency_composites_on_white():
    img = Image.new("RGBA", (3, 1), (0, 0, 0, 0))  # fully transparent black
    img.putpixel((1, 0), (200, 30, 40, 255))  # opaque red
    img.putpixel((2, 0), (0, 0, 0, 128))  # half-transparent black
    out = rgb(decode(encode(img, "PNG")))
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 1].tolist() == [200, 30, 40]
    assert np.abs(out[0, 2] - 127).max() <= 1


def test_palette_transparency_composites_on_white():
    img = Image.new("P", (2, 1), 0)
    img.putpalette([0, 0, 0, 10, 150, 20])
    img.putpixel((1, 0), 1)
    out = rgb(decode(encode(img, "GIF", transparency=0)))
    assert out[0].tolist() == [[255, 255, 255], [10, 150, 20]]


def test_exif_orientation_6_is_turned_upright():
    stored = Image.new("RGB", (40, 20), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 20, 20))  # left half red, right half blue, as the sensor saw it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    out = decode(encode(stored, "JPEG", quality=95, exif=exif.tobytes()), "phone.jpg")
    assert out.size == (20, 40)  # width and height swapped
    px = rgb(out)
    assert px[:18, :].mean(axis=(0, 1)).round().tolist() == pytest.approx([255, 0, 0], abs=3)  # left went up
    assert px[22:, :].mean(axis=(0, 1)).round().tolist() == pytest.approx([0, 0, 255], abs=3)


def test_load_array_is_a_square_uint8_centre_crop(tmp_path):
    img = Image.new("RGB", (90, 30), (255, 0, 0))
    img.paste((0, 255, 0), (30, 0, 60, 30))  # the centre third is green
    path = tmp_path / "wide.png"
    img.save(path)
    arr = load_array(path, 16)
    assert arr.shape == (16, 16, 3) and arr.dtype == np.uint8
    assert (arr[:, 2:-2] == [0, 255, 0]).all()


def test_read_source_names_missing_files_and_folders(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        read_source(tmp_path / "gone.jpg")
    with pytest.raises(ImageError, match="is a folder"):
        read_source(tmp_path)


# --- perceptual hash: flipped/rotated copies are near-duplicates, other leaves are not ---------------


def test_exact_flips_and_rotations_share_the_canonical_hash():
    img = synthetic_image_in_memory().resize((32, 32))
    hashes = perceptual_hashes(img)
    assert len(set(hashes)) == 8
    for t in (T.FLIP_LEFT_RIGHT, T.FLIP_TOP_BOTTOM, T.ROTATE_90, T.ROTATE_180, T.ROTATE_270, T.TRANSPOSE):
        assert canonical_phash(img.transpose(t)) == canonical_phash(img)


def _hash_of_jpeg(img: Image.Image, quality: int = 85) -> int:
    return canonical_phash(decode(encode(img, "JPEG", quality=quality)))


def test_re_encoded_flipped_and_rotated_real_leaves_are_near_duplicates(leaf_folder):
    leaves = [decode(p.read_bytes(), str(p)) for p in sorted(leaf_folder.rglob("*.jpg"))]
    originals = [canonical_phash(img) for img in leaves]
    for img, h in zip(leaves, originals, strict=True):
        for t in (T.FLIP_LEFT_RIGHT, T.ROTATE_90, T.TRANSVERSE):
            assert phash_distance(h, _hash_of_jpeg(img.transpose(t))) <= NEAR_DUPLICATE_BITS
    # ...while different leaves, even of the same class on the same background, are not.
    assert list(near_duplicate_pairs(originals, NEAR_DUPLICATE_BITS)) == []


def test_near_duplicate_pairs_only_looks_at_new_items_when_asked():
    base = synthetic_image_in_memory()
    a = canonical_phash(base)
    flipped = canonical_phash(base.transpose(T.FLIP_LEFT_RIGHT))
    other = canonical_phash(Image.fromarray(np.random.default_rng(5).integers(0, 255, (24, 32, 3), dtype=np.uint8)))
    assert list(near_duplicate_pairs([a, other, flipped], NEAR_DUPLICATE_BITS)) == [(2, 0)]
    assert list(near_duplicate_pairs([a, flipped, other], NEAR_DUPLICATE_BITS, start=2)) == []


def test_an_icon_holding_a_huge_png_is_refused_before_pillow_opens_it(monkeypatch):
    """Pillow decodes an ICO's entry while it opens the file, at a size the icon's directory does not state (a
    1.1 MB .ico of a 20000x20000 PNG cost +1.5 GB): icons are not photos, refused by their first bytes."""
    from PIL import IcoImagePlugin

    def never(self):
        raise AssertionError("Pillow's ICO decoder ran")

    monkeypatch.setattr(IcoImagePlugin.IcoImageFile, "load", never)
    png = bomb_png(20000)  # 400 megapixels; 1-bit, so the test makes it in a second (an RGB one took 17 s to save)
    ico = struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(png), 22) + png
    with pytest.raises(UnsupportedImageFormat) as caught:
        decode(ico, "icon.ico")
    assert caught.value.status == 415 and "icon.ico" in caught.value.message and "ICO" in caught.value.message


def test_a_webp_is_counted_at_what_its_decoder_holds():
    """libwebp's decoder holds about 17 bytes a pixel: a 9 MP WebP is over the 114 MiB budget, a 4 MP one is not."""

    def webp(side):
        buf = io.BytesIO()
        Image.new("RGB", (side, side), (30, 140, 60)).save(buf, "WEBP", quality=1, method=0)
        return buf.getvalue()

    with pytest.raises(ImageTooLarge, match="WEBP"):
        decode(webp(3000), "big.webp")
    assert min(decode(webp(2000), "ok.webp", min_side=256).size) >= 256
