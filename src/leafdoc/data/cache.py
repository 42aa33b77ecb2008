"""Decode and resize each image once per (dataset version, image size, preprocessing) into a cache.

Epochs then read uint8 arrays from a memory-mapped .npy instead of decoding JPEGs again: this is
what makes the cached pipeline faster than `image_dataset_from_directory`. The cache is written in
chunks under a temporary name and renamed when complete, so an interrupted build is never used.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from leafdoc.core.atomic import atomic_dir
from leafdoc.data.store import BlobStore
from leafdoc.imaging.photos import Preparation

CHUNK = 256


def cache_key(dataset: str, version: int, prep: Preparation) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in dataset)
    return f"{safe}-v{version}-{prep.label()}"


def build_cache(
    folder: Path,
    shas: list[str],
    store: BlobStore,
    prep: Preparation,
    *,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 4,
) -> np.ndarray:
    """Return a read-only memmap (N, S, S, 3) uint8 of the images as `prep` makes them (S: prep.size), in `shas`
    order."""
    folder = Path(folder)
    index = folder / "index.json"
    if progress:  # the total from the start: a bar of "0/?" says nothing of how long the first chunk takes
        progress(0, len(shas))
    if index.exists() and json.loads(index.read_text())["shas"] == shas:
        if progress:
            progress(len(shas), len(shas))
        return np.load(folder / "images.npy", mmap_mode="r")

    def load(sha: str) -> np.ndarray:
        return prep(store.get(sha), name=sha)

    with atomic_dir(folder) as tmp:
        arr = np.lib.format.open_memmap(
            tmp / "images.npy", mode="w+", dtype=np.uint8, shape=(len(shas), prep.size, prep.size, 3)
        )
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for start in range(0, len(shas), CHUNK):
                chunk = shas[start : start + CHUNK]
                arr[start : start + len(chunk)] = np.stack(list(pool.map(load, chunk)))
                if progress:
                    progress(start + len(chunk), len(shas))
        arr.flush()
        del arr
        meta = {"shas": shas, **asdict(prep)}
        (tmp / "index.json").write_text(json.dumps(meta))
    return np.load(folder / "images.npy", mmap_mode="r")
