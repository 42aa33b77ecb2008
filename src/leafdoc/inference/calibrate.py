"""`leafdoc calibrate`: fit the not-a-leaf check of an existing model folder (one trained before the check
existed, or to recalibrate with other non-leaf photos), from the training data it was trained on.

The folder's split.json names the training and validation photos by sha256, so the check is fitted on the
same training photos and calibrated on the same validation photos as at training time; the test split is
never touched.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from leafdoc.errors import ConfigError, LeafdocError, ModelError
from leafdoc.fsutil import atomic_write_json
from leafdoc.images import is_image_name, sha256_bytes
from leafdoc.inference.ood import DEFAULT_TARGET, fit_model_dir
from leafdoc.inference.predictor import Predictor


def split_photos(data_dir: Path, split: dict, labels: list[str]) -> dict[str, list[tuple[Path, int]]]:
    """{part: [(path, label index)]} for the photos of data_dir/<class>/ whose sha256 split.json lists."""
    part_of = {sha: part for part in ("train", "val", "test") for sha in split.get(part, [])}
    index = {name: i for i, name in enumerate(labels)}
    found: dict[str, list[tuple[Path, int]]] = {"train": [], "val": [], "test": []}
    for path in sorted(Path(data_dir).rglob("*")):
        if not (path.is_file() and is_image_name(path)) or path.parent.name not in index:
            continue
        part = part_of.get(sha256_bytes(path.read_bytes()))
        if part:
            found[part].append((path, index[path.parent.name]))
    return found


def calibrate_model_dir(
    model_dir: Path,
    data_dir: Path,
    nonleaf: list[Path] = (),
    target: float = DEFAULT_TARGET,
    max_pixels: int | None = None,
) -> dict:
    model_dir, data_dir = Path(model_dir), Path(data_dir)
    predictor = Predictor(model_dir, **({"max_pixels": max_pixels} if max_pixels else {}))
    if not data_dir.is_dir():
        raise ConfigError(f"{data_dir}: no such folder.", hint="Pass the folder of class folders the model saw.")
    split_file = model_dir / "split.json"
    if not split_file.is_file():
        raise ModelError(
            f"{model_dir}: no split.json, so the training and validation photos are unknown.",
            hint="Retrain with `leafdoc train` (it fits the check itself).",
        )
    split = json.loads(split_file.read_text())
    photos = split_photos(data_dir, split, predictor.labels)
    for part in ("train", "val"):
        want = len(split.get(part, []))
        if len(photos[part]) < max(10, want // 2):
            raise ConfigError(
                f"{data_dir}: only {len(photos[part])} of the {want} {part} photos in {split_file} are there.",
                hint="Pass the same folder of class folders the model was trained on.",
            )

    def arrays(part: str) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for path, y in photos[part]:
            try:
                xs.append(predictor.preprocess(path))
                ys.append(y)
            except LeafdocError:
                continue
        return np.stack(xs), np.asarray(ys)

    train = arrays("train")
    val_images, _ = arrays("val")
    if "features" not in predictor.output_names:
        raise ModelError(
            f"{model_dir}/model.onnx has no `features` output.",
            hint="Re-export it with `leafdoc export MODEL_DIR --format onnx`.",
        )
    section = fit_model_dir(model_dir, predictor, train, val_images, [str(p) for p in nonleaf], target)
    card = json.loads((model_dir / "card.json").read_text())
    card["ood"] = section
    if isinstance(card.get("training"), dict):  # retraining recalibrates with the same non-leaf folders
        card["training"]["nonleaf_dirs"] = [str(Path(d).resolve()) for d in nonleaf]
    atomic_write_json(model_dir / "card.json", card)  # after ood.npz: a card never names a missing file
    return section
