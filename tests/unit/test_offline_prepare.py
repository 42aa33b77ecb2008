"""The offline page's preparation (src/leafdoc/offline/static/prepare.js), run in Node on photos made here, against
imaging/photos.py and imaging/leafcut.py: Pillow's antialiased resize to the pixel, framing the same square, the
light-range white balance correcting the same lights. Skipped without node (the browser test covers the page end
to end)."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter
from tests.unit.node_support import needs_node, run_node

from leafdoc.imaging.leafcut import balance_to_sheet, range_correction
from leafdoc.imaging.photos import leaf_region, min_side_for, open_photo, resize_square
from leafdoc.imaging.quality import check_photo

pytestmark = needs_node
LIGHTS = (-0.122, -0.0308, 0.0404, 0.1545)  # the starter's card

SCRIPT = r"""
const { image, resizeSquare, leafRegion, rangeCorrection, balanceToSheet, reduce, minSideFor } = await import(
  process.argv[1]
);
let text = "";
for await (const chunk of process.stdin) text += chunk;
const out = [];
for (const c of JSON.parse(text)) {
  const whole = image(c.w, c.h, new Uint8Array(Buffer.from(c.data, "base64")));
  const { img, factor } = reduce(whole, minSideFor(c.size));
  const region = leafRegion(img);
  const square = resizeSquare(img, c.size, { size: [c.w, c.h], factor }, c.framed ? region : null);
  const balanced = rangeCorrection(square, c.lights);
  out.push({ region, square: Buffer.from(square.data).toString("base64"),
             balanced: Buffer.from(balanced.img.data).toString("base64"), light: balanced.light,
             sheet: Buffer.from(balanceToSheet(square).data).toString("base64") });
}
console.log(JSON.stringify(out));
"""


def leaf_photo(w: int, h: int, leaf: float, sheet=(228, 226, 220), seed: int = 0) -> np.ndarray:
    """A green leaf (an ellipse with spots) spanning `leaf` of the shorter side, on a sheet, with noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    r = leaf * min(w, h) / 2
    inside = ((xx - w * 0.45) / r) ** 2 + ((yy - h * 0.55) / (0.7 * r)) ** 2 <= 1
    arr = np.empty((h, w, 3), np.float32)
    arr[:] = sheet
    arr[inside] = (60, 130, 50)
    spots = inside & (rng.random((h, w)) < 0.02)
    arr[spots] = (110, 80, 40)
    arr += rng.normal(0, 3, arr.shape)
    return np.clip(arr, 0, 255).astype(np.uint8)


def run_js(cases: list[dict], script: str = SCRIPT) -> list:
    return run_node(script, "prepare.js", cases)


def case(arr: np.ndarray, size: int, framed: bool) -> dict:
    h, w = arr.shape[:2]
    data = base64.b64encode(arr.tobytes()).decode()
    return {"w": w, "h": h, "data": data, "size": size, "framed": framed, "lights": LIGHTS}


def square_of(result: dict, key: str, size: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(result[key]), np.uint8).reshape(size, size, 3)


PHOTOS = [
    (leaf_photo(256, 256, 0.9), 160),  # PlantVillage-like: not framed
    (leaf_photo(300, 221, 0.8, seed=1), 160),  # landscape, odd sizes
    (leaf_photo(333, 480, 0.35, seed=2), 160),  # a small leaf: framed
    (leaf_photo(256, 256, 0.8, sheet=(250, 215, 150), seed=3), 96),  # a warm light: corrected
    (leaf_photo(256, 256, 0.8, sheet=(170, 200, 250), seed=4), 128),  # a cool light: corrected
    (leaf_photo(1003, 701, 0.5, seed=5), 160),  # decoded 2x smaller (images.open_photo), a small leaf: framed
]


def test_the_page_prepares_a_photo_as_the_server_does():
    results = run_js([case(arr, size, framed) for arr, size in PHOTOS for framed in (False, True)])
    for i, (arr, size) in enumerate(PHOTOS):
        png = io.BytesIO()
        Image.fromarray(arr).save(png, "PNG")
        img, frame = open_photo(png.getvalue(), min_side=min_side_for(size))
        region = leaf_region(img)
        plain, framed = results[2 * i], results[2 * i + 1]
        assert (plain["region"] is None) == (region is None), i
        if region is not None:
            assert np.allclose(plain["region"], region, atol=1e-6), (i, plain["region"], region)
        # Pillow's resize, to the pixel: the centre crop and the framed square
        assert np.array_equal(square_of(plain, "square", size), resize_square(img, size, frame)), i
        assert np.array_equal(square_of(framed, "square", size), resize_square(img, size, frame, region)), i
        # the light-range white balance: the same light corrected, the same colours within one level
        want, light = range_correction(resize_square(img, size, frame), LIGHTS)
        assert plain["light"] == light, (i, plain["light"], light)
        got = square_of(plain, "balanced", size).astype(int)
        assert np.abs(got - want.astype(int)).max() <= 1, i
        # the white balance `sheet` (a card may name it instead)
        sheet = square_of(plain, "sheet", size).astype(int)
        assert np.abs(sheet - balance_to_sheet(resize_square(img, size, frame)).astype(int)).max() <= 1, i
    assert [r["light"] for r in results[6:10]] == ["warm", "warm", "cool", "cool"]
    assert results[4]["region"] is not None and results[10]["region"] is not None  # the small leaves were framed


CHECK_SCRIPT = r"""
const { image, checkPhoto } = await import(process.argv[1]);
let text = "";
for await (const chunk of process.stdin) text += chunk;
const out = JSON.parse(text).map((c) =>
  checkPhoto(image(c.w, c.h, new Uint8Array(Buffer.from(c.data, "base64"))), c.size).map((p) => p.code));
console.log(JSON.stringify(out));
"""


def test_the_page_refuses_the_photos_the_server_refuses_as_poor():
    """imaging/quality.py's checks, as the page runs them: the same problems for a photo as taken and spoilt each
    way (dark, over-exposed, blurred, one colour, black and white, small)."""
    leaf = Image.fromarray(leaf_photo(300, 240, 0.8, seed=6))
    photos = [
        leaf,
        ImageEnhance.Brightness(leaf).enhance(0.1),
        Image.blend(leaf, Image.new("RGB", leaf.size, (255, 255, 255)), 0.95),
        leaf.filter(ImageFilter.GaussianBlur(6)),
        Image.new("RGB", leaf.size, (80, 144, 48)),
        leaf.convert("L").convert("RGB"),
        ImageEnhance.Color(leaf).enhance(0.02),
        leaf.resize((50, 40)),
    ]
    given = [case(np.asarray(p), 96, False) for p in photos]
    server = [[p.code for p in check_photo(p, 96)] for p in photos]
    assert run_js(given, CHECK_SCRIPT) == server
    assert server[1:6] == [["too_dark"], ["too_bright"], ["blurred"], ["one_colour"], ["no_colour"]], server
    assert server[0] == [] and "no_colour" in server[6] and "too_small" in server[7], server
