"""The photos a training run learns from: one dataset version's items split into train/val/test (by class,
near-duplicates grouped: data/splits.py) and cached as arrays of prepared photos (data/cache.py), as `TrainData`;
and the class weights the loss uses. `prepare_data` makes it; trainer.train and its phases read it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from leafdoc.core.errors import ConfigError
from leafdoc.data.cache import build_cache, cache_key
from leafdoc.data.catalog import Catalog
from leafdoc.data.datasets import get_version, version_items, version_sources
from leafdoc.data.splits import split_items
from leafdoc.data.store import BlobStore
from leafdoc.imaging.leafcut import MIN_LIGHT_PHOTOS
from leafdoc.imaging.photos import Preparation
from leafdoc.train.config import TrainConfig


@dataclass
class TrainData:
    images: np.ndarray  # (N, S, S, 3) uint8, memmap over the cache
    shas: list[str]
    classes: list[str]
    y: np.ndarray  # class index per image
    split: np.ndarray  # 'train' | 'val' | 'test' per image
    dataset: str
    version: int
    cache_dir: Path | None = None  # the data home's cache: converted pretrained weights are kept under it
    preparation: Preparation | None = None  # what was done to the images (cfg's, with the lights it measured)
    sources: list[str] | None = None  # the names of the folders (zips, files) the version's photos came from
    # Times each image is seen per training epoch (None: once). A few field photos beside thousands of lab
    # photos are repeated so that the model sees them often enough to learn what the field looks like.
    repeat: np.ndarray | None = None

    def training_indices(self) -> np.ndarray:
        tr = self.indices("train")
        return tr if self.repeat is None else np.repeat(tr, self.repeat[tr])

    def indices(self, part: str) -> np.ndarray:
        return np.nonzero(self.split == part)[0]

    def split_record(self, seed: int) -> dict:
        """Which images were train/val/test: evaluation can prove it never scores a training image."""
        out = {"dataset": self.dataset, "version": self.version, "seed": seed}
        for part in ("train", "val", "test"):
            out[part] = sorted(self.shas[i] for i in self.indices(part))
        return out

    def counts(self) -> dict[str, int]:
        return {p: int((self.split == p).sum()) for p in ("train", "val", "test")}


def prepare_data(
    catalog: Catalog,
    store: BlobStore,
    cache_dir: Path,
    dataset: str,
    cfg: TrainConfig,
    version: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    train_only: frozenset[str] = frozenset(),
    seen: frozenset[str] = frozenset(),
) -> TrainData:
    """`train_only`: sha256s that always go to the training split and take no part in splitting the others,
    so adding them leaves the other images' train/val/test exactly as they were (an experiment's extra source).
    `seen`: photos the model warm-started from learnt from: they and their near-duplicates go to training
    (data/splits.py), so its figures stay on photos no training saw."""
    row = get_version(catalog, dataset, version)
    items = version_items(catalog, row)
    rest = [it for it in items if it[0] not in train_only]
    assignment = split_items(
        rest,
        seed=cfg.seed,
        val=cfg.val_fraction,
        test=cfg.test_fraction,
        seen=seen,
        where=f"dataset {dataset!r} v{row.version}",
    )
    assignment.update({sha: "train" for sha, _, _ in items if sha in train_only})
    shas = [sha for sha, _, _ in items]
    classes = sorted({label for _, label, _ in items})
    index = {c: i for i, c in enumerate(classes)}
    prep = cfg.preparation
    if prep.white_balance == "light-range":  # the lights of this split's training photos
        train_shas = [sha for sha in shas if assignment[sha] == "train"]
        try:
            prep = prep.with_lights(train_shas, read=store.get, what=f"the {len(train_shas)} training photos")
        except ValueError as exc:
            if len(train_shas) < MIN_LIGHT_PHOTOS:  # too few photos, whatever they show
                per_class = Counter(label for _, label, _ in items)
                fewest = min(classes, key=per_class.__getitem__)
                raise ConfigError(
                    f"{dataset}: only {len(train_shas)} photos are left to train on once the validation and test "
                    f"photos are set aside ({fewest} has {per_class[fewest]} in all): too few to train a model.",
                    hint="Add photos: at least 20 a class to try, 100 or more for a model to rely on.",
                ) from None
            raise ConfigError(
                f"{dataset}: {exc}.",
                hint="Train with --white-balance none (a training job: the option white_balance none): its photos "
                "show no sheet to read.",
            ) from None
    images = build_cache(cache_dir / cache_key(dataset, row.version, prep), shas, store, prep, progress=progress)
    return TrainData(
        images=images,
        shas=shas,
        classes=classes,
        y=np.array([index[label] for _, label, _ in items], dtype=np.int32),
        split=np.array([assignment[sha] for sha in shas]),
        dataset=dataset,
        version=row.version,
        cache_dir=Path(cache_dir),
        preparation=prep,
        sources=version_sources(catalog, row),
    )


def class_weights(y: np.ndarray, n_classes: int) -> dict[int, float]:
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / (n_classes * np.maximum(counts, 1)), 0.0)
    return {i: float(v) for i, v in enumerate(w)}
