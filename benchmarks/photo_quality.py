"""What the photo-quality checks (src/leafdoc/imaging/quality.py) refuse: lab photos that must pass, the same
photos darkened or blurred that must not, and photos of other things. Not a test: a table to read.

    .venv/bin/python benchmarks/photo_quality.py [MODEL_DIR] [--part trainval|test] [--every 8]

- The model's own PlantVillage photos, by its split.json: its training and validation photos (the default, what
  thresholds may be chosen on) or its test split (`--part test`: to report, never to choose by).
- The same photos darkened (PIL brightness x0.1, x0.2, x0.3), blurred (Gaussian, radius 2, 3, 5), faded to half
  their colour and made black and white: every `--every`-th photo. x0.6 is phone_conditions.py's "underexposed",
  which no rule should refuse.
- The shared flowers and CIFAR-10 photos (enlarged to 256 px, as field_photos.py sends them): which non-leaf
  photos the check calls too dark (those it no longer does go on to the not-a-leaf check).

For `too_dark` it also counts the rule before 2026-11-27 (the whole photo's mean grey level under 25) beside the
one in use, on the same photos.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

REPO = Path(__file__).resolve().parents[1]
from shared_data import SHARED  # noqa: E402

sys.path.insert(0, str(REPO / "src"))

from leafdoc.imaging.photos import is_image_name  # noqa: E402
from leafdoc.imaging.quality import MEASURE_PX, check_photo  # noqa: E402
from leafdoc.inference.calibrate import split_photos  # noqa: E402
from leafdoc.modelfolder import read_card, read_labels  # noqa: E402

CIFAR_SIDE = 256  # as benchmarks/field_photos.py sends them
OLD_DARK_MEAN = 25.0  # the rule before 2026-11-27: the whole photo's mean grey level

CHANGES = {
    "as taken": lambda img: img,
    "darkened x0.1": lambda img: ImageEnhance.Brightness(img).enhance(0.1),
    "darkened x0.2": lambda img: ImageEnhance.Brightness(img).enhance(0.2),
    "darkened x0.3": lambda img: ImageEnhance.Brightness(img).enhance(0.3),
    "darkened x0.6": lambda img: ImageEnhance.Brightness(img).enhance(0.6),
    "blurred r2": lambda img: img.filter(ImageFilter.GaussianBlur(2)),
    "blurred r3": lambda img: img.filter(ImageFilter.GaussianBlur(3)),
    "blurred r5": lambda img: img.filter(ImageFilter.GaussianBlur(5)),
    "faded to x0.5 colour": lambda img: ImageEnhance.Color(img).enhance(0.5),
    "black and white": lambda img: img.convert("L").convert("RGB"),
}


def old_too_dark(img: Image.Image) -> bool:
    small = img.copy()
    small.thumbnail((MEASURE_PX, MEASURE_PX))
    return float(np.asarray(small.convert("L"), dtype=np.float32).mean()) < OLD_DARK_MEAN


def tally(images, size: int) -> tuple[int, Counter, int]:
    """Photos, problems by code (a photo may have several), and photos the old dark rule refused."""
    n, codes, old = 0, Counter(), 0
    for img in images:
        n += 1
        codes.update(p.code for p in check_photo(img, size))
        old += old_too_dark(img)
    return n, codes, old


def row(name: str, n: int, codes: Counter, old: int) -> str:
    def cell(k: int) -> str:
        return f"{k} ({100 * k / n:.1f}%)" if n else "—"

    refused = ", ".join(f"{c} {k}" for c, k in sorted(codes.items())) or "none"
    return f"| {name} | {n} | {cell(codes['too_dark'])} | {cell(old)} | {cell(codes['blurred'])} | {refused} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default=str(REPO / "models" / "starter"))
    ap.add_argument("--part", choices=("trainval", "test"), default="trainval")
    ap.add_argument("--every", type=int, default=8, help="Darken and blur every N-th photo.")
    args = ap.parse_args()
    model = Path(args.model)
    size = int(read_card(model).input.size)
    split = json.loads((model / "split.json").read_text())
    parts = split_photos(SHARED / "plantvillage", split, read_labels(model))
    paths = [p for part in (("train", "val") if args.part == "trainval" else ("test",)) for p, _ in parts[part]]

    def photos(every: int = 1):
        for path in paths[::every]:
            yield Image.open(path).convert("RGB")

    print(f"PlantVillage, the {args.part} photos of {model.name}'s split ({len(paths)} photos)\n")
    print("| photos | n | too dark | too dark by the old rule (mean < 25) | blurred | all problems |")
    print("|---|---|---|---|---|---|")
    for name, change in CHANGES.items():
        every = 1 if name == "as taken" else args.every
        print(row(name, *tally((change(img) for img in photos(every)), size)))
    for name in ("flowers", "cifar10"):
        folder = SHARED / name
        files = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_name(p))
        side = CIFAR_SIDE if name == "cifar10" else None  # 32 px photos: too small for any model, as sent
        images = (Image.open(p).convert("RGB") for p in files)
        if side:
            images = (img.resize((side, side), Image.Resampling.NEAREST) for img in images)
        print(row(f"{name} (not leaves){f', at {side} px' if side else ''}", *tally(images, size)))


if __name__ == "__main__":
    main()
