"""Which leaf photos the load test sends: a folder given by option or environment, else the shared
PlantVillage images beside the repository, else the repository's examples; and the form they are sent in."""

from __future__ import annotations

import os
import random
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = "LEAFDOC_LOADTEST_IMAGES"
DEFAULT_DIRS = (
    Path("/work/shared/datasets/plantvillage"),
    REPO.parent / "shared" / "datasets" / "plantvillage",
    REPO / "examples",
)
SUFFIXES = {".jpg", ".jpeg", ".png"}


def image_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The folder given (argument, then LEAFDOC_LOADTEST_IMAGES), else the first default that exists."""
    chosen = explicit or os.environ.get(ENV)
    if chosen:
        path = Path(chosen)
        if not path.is_dir():
            raise SystemExit(f"{path}: no such image folder (set {ENV} or --images to a folder of photos).")
        return path
    for path in DEFAULT_DIRS:
        if path.is_dir() and any(p.suffix.lower() in SUFFIXES for p in path.rglob("*")):
            return path
    raise SystemExit(f"no leaf photos found in {', '.join(map(str, DEFAULT_DIRS))}; set {ENV} to a folder of photos.")


def image_paths(folder: Path, limit: int = 300, seed: int = 0) -> list[Path]:
    """Up to `limit` photos under `folder` (recursively), a fixed random sample across its classes."""
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
    if not paths:
        raise SystemExit(f"{folder}: no .jpg/.jpeg/.png photos in it.")
    if len(paths) > limit:
        paths = sorted(random.Random(seed).sample(paths, limit))
    return paths


def load_images(folder: Path, limit: int = 300, seed: int = 0) -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in image_paths(folder, limit, seed)]


# Phone photos: what people send. Real field photos of 1,500 px or more on the short side (field-corn), and
# 12 MP (4000 x 3000) baseline JPEGs made from real photos, as a phone camera writes them.
PHONE_DIRS = (
    Path("/work/shared/datasets/field-corn"),
    REPO.parent / "shared" / "datasets" / "field-corn",
)
PHONE_MIN_SIDE = 1500
TWELVE_MP = (4000, 3000)


def phone_photos(
    folder: Path | None = None, limit: int = 40, made: int = 10, shrink: bool = False, only_12mp: bool = False
) -> list[tuple[str, bytes]]:
    """Up to `limit` real large photos as published, plus `made` 12 MP JPEGs resized from the largest of them
    (quality 90, baseline, as phone cameras save them). `shrink`: the same photos as leafdoc's web page and desktop
    app send them (leafdoc.imaging.upload_size: 1024 px on the long side, JPEG 90, EXIF applied). `only_12mp`: the 12 MP
    JPEGs alone (the published field photos are mostly progressive, re-encoded for the web, which phones do not
    write)."""
    import io

    from PIL import Image

    folder = folder or next((d for d in PHONE_DIRS if d.is_dir()), None)
    if folder is None or not folder.is_dir():
        raise SystemExit(f"no field photos found in {', '.join(map(str, PHONE_DIRS))}; pass --phone-images DIR.")
    big = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()):
        with Image.open(path) as img:
            if min(img.size) >= PHONE_MIN_SIDE:
                big.append((min(img.size), path))
    if not big:
        raise SystemExit(f"{folder}: no photo of {PHONE_MIN_SIDE} px or more on its short side.")
    chosen = sorted(random.Random(0).sample(big, min(limit, len(big))), key=lambda t: t[1])
    photos = [] if only_12mp else [(p.name, p.read_bytes()) for _, p in chosen]
    for _, path in sorted(big, reverse=True)[:made]:
        with Image.open(path) as img:
            upright = img.convert("RGB")
            w, h = TWELVE_MP if upright.width >= upright.height else TWELVE_MP[::-1]
            buf = io.BytesIO()
            upright.resize((w, h), Image.Resampling.LANCZOS).save(buf, "JPEG", quality=90)
        photos.append((f"12mp-{path.stem}.jpg", buf.getvalue()))
    if shrink:
        from leafdoc.imaging.upload_size import shrink_for_upload

        photos = [shrink_for_upload(data, name)[::-1] for name, data in photos]
    return photos


def multipart(field: str, files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body with each photo as `field`, and its content type."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, data in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        parts += [head, data, b"\r\n"]
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
