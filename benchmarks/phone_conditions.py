"""How the diagnosis holds up when a lab photo is taken the way people take photos: darker, tilted, compressed by a
messaging app, out of focus, the leaf farther away or closer. Right, or honest (abstaining), or wrong?

Each photo of the model's own test split (split.json: never seen in training, model selection or calibration; or
its validation part, `--part val`, to choose settings on) is changed one way at a time and sent through the serving
decision (`Predictor.predict_files`: decoding, framing, the photo-quality, not-a-leaf and unlike-training checks,
the model) as a JPEG file, as a phone or a browser would send it. For each condition: how many are answered, how
many of those are right, how many are answered *wrong* (what costs a farmer most), and why the others were refused;
and, to compare models whose checks were calibrated differently, how often the top label is right on all photos.
Changes are fixed per photo (seeded), so a second run prints the same table.

    .venv/bin/python benchmarks/phone_conditions.py [MODEL_DIR] [--part val] [--limit N]    # a Markdown table
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

REPO = Path(__file__).resolve().parents[1]
from shared_data import SHARED  # noqa: E402

sys.path.insert(0, str(REPO / "src"))

from leafdoc.inference.answer import Answer  # noqa: E402
from leafdoc.inference.calibrate import split_photos  # noqa: E402
from leafdoc.inference.predictor import Predictor  # noqa: E402


def border_colour(img: Image.Image) -> tuple[int, ...]:
    """The median colour of the photo's outermost pixels: what a wider shot would show around the leaf here."""
    a = np.asarray(img)
    edge = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    return tuple(int(v) for v in np.median(edge, axis=0))


def jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def farther(img: Image.Image, scale: float) -> Image.Image:
    """The leaf `scale` as wide in the frame, on its own background colour around it (taken from farther away)."""
    w, h = img.size
    small = img.resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", img.size, border_colour(img))
    canvas.paste(small, ((w - small.width) // 2, (h - small.height) // 2))
    return canvas


def closer(img: Image.Image, keep: float) -> Image.Image:
    """The middle `keep` of the photo enlarged back to its size (taken closer: part of the leaf out of the frame)."""
    w, h = img.size
    cw, ch = round(w * keep), round(h * keep)
    box = ((w - cw) // 2, (h - ch) // 2, (w + cw) // 2, (h + ch) // 2)
    return img.crop(box).resize(img.size, Image.Resampling.BICUBIC)


def noisy(img: Image.Image, sigma: float, seed: int) -> Image.Image:
    a = np.asarray(img, dtype=np.float32)
    a = a + np.random.default_rng(seed).normal(0, sigma, a.shape)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def warm(img: Image.Image) -> Image.Image:
    """Indoor or evening light a phone did not correct: red up 10%, blue down 15%."""
    a = np.asarray(img, dtype=np.float32) * np.array([1.10, 1.0, 0.85], dtype=np.float32)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


# name -> (what a user would call it, bytes of the changed photo from the original's bytes and its seed)
CONDITIONS: dict[str, tuple[str, Callable[[Image.Image, bytes, int], bytes]]] = {
    "as is": ("the photo itself", lambda img, raw, seed: raw),
    "jpeg-30": ("compressed hard (JPEG quality 30, as messaging apps do)", lambda img, raw, seed: jpeg(img, 30)),
    "dark": ("underexposed (brightness x0.6)", lambda img, raw, seed: jpeg(ImageEnhance.Brightness(img).enhance(0.6))),
    "bright": ("overexposed (brightness x1.4)", lambda img, raw, seed: jpeg(ImageEnhance.Brightness(img).enhance(1.4))),
    "warm": ("warm light (red +10%, blue -15%)", lambda img, raw, seed: jpeg(warm(img))),
    "tilt-15": (
        "tilted 15 degrees",
        lambda img, raw, seed: jpeg(img.rotate(15, Image.Resampling.BICUBIC, fillcolor=border_colour(img))),
    ),
    "sideways": ("turned 90 degrees, no EXIF orientation", lambda img, raw, seed: jpeg(img.transpose(Image.ROTATE_90))),
    "soft-focus": (
        "slightly out of focus (Gaussian 1.5 px)",
        lambda img, raw, seed: jpeg(img.filter(ImageFilter.GaussianBlur(1.5))),
    ),
    "noise": ("sensor noise in low light (sigma 8)", lambda img, raw, seed: jpeg(noisy(img, 8, seed))),
    "farther-75": ("taken from farther (leaf 75% as wide)", lambda img, raw, seed: jpeg(farther(img, 0.75))),
    "farther-60": ("taken from farther (leaf 60% as wide)", lambda img, raw, seed: jpeg(farther(img, 0.6))),
    "farther-45": ("taken from farther (leaf 45% as wide)", lambda img, raw, seed: jpeg(farther(img, 0.45))),
    "closer": ("taken closer (middle 70% of the frame)", lambda img, raw, seed: jpeg(closer(img, 0.7))),
    "12mp": (
        "the same photo at phone resolution (3000x3000)",
        lambda img, raw, seed: jpeg(img.resize((3000, 3000), Image.Resampling.BICUBIC)),
    ),
}


def measure(predictor: Predictor, photos: list[tuple[Path, str]], condition: str, tmp: Path) -> dict:
    change = CONDITIONS[condition][1]
    folder = tmp / condition
    folder.mkdir()
    paths = []
    for i, (path, _) in enumerate(photos):
        raw = path.read_bytes()
        img = Image.open(io.BytesIO(raw)).convert("RGB")
        out = folder / f"{i:04d}.jpg"
        out.write_bytes(change(img, raw, i))
        paths.append(out)
    preds = []
    for start in range(0, len(paths), 32):
        preds += predictor.predict_files(paths[start : start + 32])
    reasons: Counter[str] = Counter()
    right = wrong = top1 = 0
    for pred, (_, truth) in zip(preds, photos, strict=True):
        if not isinstance(pred, Answer):  # the file could not be read
            reasons["error"] += 1
            continue
        top1 += pred.top_k[0].label == truth
        if pred.abstained:
            reasons[pred.reason] += 1
        elif pred.top_k[0].label == truth:
            right += 1
        else:
            wrong += 1
    return {"n": len(photos), "right": right, "wrong": wrong, "refused": dict(reasons), "top1": top1}


def row(name: str, m: dict) -> str:
    n, answered = m["n"], m["right"] + m["wrong"]
    acc = f"{m['right'] / answered:.1%}" if answered else "-"
    refused = ", ".join(f"{k} {v}" for k, v in sorted(m["refused"].items())) or "-"
    return (
        f"| {name} | {CONDITIONS[name][0]} | {answered / n:.1%} | {acc} | **{m['wrong'] / n:.1%}** ({m['wrong']}) "
        f"| {refused} | {m['top1'] / n:.1%} |"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", type=Path, default=REPO / "models" / "starter")
    ap.add_argument("--data", type=Path, default=SHARED / "plantvillage")
    ap.add_argument("--part", choices=("test", "val"), default="test", help="the split's part (choose on val)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N photos (a quick look)")
    ap.add_argument("--conditions", default=",".join(CONDITIONS), help="comma-separated, of: " + ", ".join(CONDITIONS))
    args = ap.parse_args()
    split = json.loads((args.model / "split.json").read_text())
    labels = json.loads((args.model / "labels.json").read_text())
    part = split_photos(args.data, split, labels)[args.part]
    photos = [(path, labels[y]) for path, y in part][: args.limit or None]
    predictor = Predictor(args.model)
    print(
        f"{args.model.name}: {len(photos)} {args.part} photos, served from {predictor.model_file.name}, "
        f"framing {predictor.framing}\n"
    )
    print(
        "| condition | what | answered | right, of the answered | answered wrong (photos) | refused, by reason "
        "| top label right, all photos (the checks aside) |"
    )
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.conditions.split(","):
            print(row(name, measure(predictor, photos, name, Path(tmp))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
