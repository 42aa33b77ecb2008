"""Which leaf photos the load test sends: a folder given by option or environment, else the shared
PlantVillage images beside the repository, else the repository's examples."""

from __future__ import annotations

import os
import random
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
