"""Rebuild the photo guide's example pictures (examples/guide/) from ../shared/datasets.

    .venv/bin/python scripts/guide_photos.py
    .venv/bin/leafdoc predict models/starter examples/guide/*.jpg   # what leafdoc answers for each

Each picture is scaled to fit 240 px (about 10-20 KB). Sources and licences: examples/README.md. What each
picture is meant to show, and what the starter answers for it: src/leafdoc/words/photo_guide.py (the captions were
written after running the command above; if a rebuilt picture gets another answer, fix the caption or pick
another photo).
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, ImageFilter, ImageOps

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("LEAFDOC_SHARED", ROOT.parent / "shared")) / "datasets"
OUT = ROOT / "examples" / "guide"
SIDE = 240

# PlantVillage test split of the starter (seed 0): the starter never trained on it.
LEAF = DATASETS / "plantvillage/Potato___Early_blight/2d149f7a-4b0a-40a6-8d0b-1d1f14e5e696___RS_Early.B_9143.jpg"
# sha256 starts with 8: in the half of field-corn that `leafdoc calibrate --field` holds out.
FIELD = DATASETS / "field-corn/Corn_(maize)___Common_rust_/Corn_Common_Rust_48_8955533d.jpg"
FLOWER = DATASETS / "flowers/daisy/14523675369_97c31d0b5b.jpg"
BLUR_RADIUS = 4  # px at 240 px: the quality check's "blurred" (variance of the Laplacian) with a margin


def small(path: Path) -> Image.Image:
    image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    image.thumbnail((SIDE, SIDE), Image.Resampling.LANCZOS)
    return image


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    leaf = small(LEAF)
    pictures = {
        "good_leaf.jpg": leaf,
        "field_photo.jpg": small(FIELD),
        "blurred_leaf.jpg": leaf.filter(ImageFilter.GaussianBlur(BLUR_RADIUS)),
        "not_a_leaf.jpg": small(FLOWER),
    }
    for name, image in pictures.items():
        image.save(OUT / name, quality=88, optimize=True)
        print(f"{OUT / name}: {image.width}x{image.height}, {(OUT / name).stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
