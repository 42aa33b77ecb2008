"""A held-out photo the serving model takes for another crop's condition, for the crop-first tests (API, page,
desktop): found among a model's own test photos (its split.json), whatever its labels are, then among the test part
of the shared field photos (sha256 c-f, which no training or threshold saw: inference/fieldcrops.FIELD_PARTS). The
starter trained on all of PlantVillage takes none of the 139 shared lab photos of its test split for another crop;
a field photo it does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from leafdoc.inference.fieldcrops import crop_name, crop_of

FIELD = ("field-corn", "field-mixed")


def other_crop_photo(model_dir: Path, photos_dir: Path) -> tuple[Path, str, str] | None:
    """(photo, its label, the label the model gives it unaided), or None if the model takes none of its test photos
    (lab, then field: the shared field folders beside `photos_dir`) for another crop."""
    from leafdoc.inference.calibrate import split_photos
    from leafdoc.inference.cropfirst import crop_indices, crop_share
    from leafdoc.inference.fieldcrops import photos_of_part
    from leafdoc.inference.predictor import Predictor

    p = Predictor(model_dir)
    split = json.loads((Path(model_dir) / "split.json").read_text())
    photos = split_photos(photos_dir, split, p.labels)["test"]
    index = {label: i for i, label in enumerate(p.labels)}
    field = photos_of_part(
        [Path(photos_dir).parent / f for f in FIELD if (Path(photos_dir).parent / f).is_dir()], "test"
    )
    photos += [(f, index[label]) for f, label in field if label in index]
    for start in range(0, len(photos), 64):
        chunk = photos[start : start + 64]
        probs = p.predict_arrays(np.stack([p.load(f).x for f, _ in chunk]), ["probabilities"])["probabilities"]
        for (f, y), row in zip(chunk, probs, strict=True):
            top = p.labels[int(np.argmax(row))]
            share = crop_share(row, crop_indices(p.labels, crop_of(p.labels[y])))  # what the answer's crop_share is
            if crop_of(top) != crop_of(p.labels[y]) and share < 0.5:  # mostly another crop: the answer says so
                return f, p.labels[y], top
    return None


def other_crop_photo_or_skip(model_dir: Path, photos_dir: Path) -> tuple[Path, str, str]:
    """other_crop_photo, or the test skipped with the reason."""
    import pytest

    if not Path(photos_dir).is_dir():
        pytest.skip(f"shared datasets not found at {photos_dir}")
    found = other_crop_photo(model_dir, photos_dir)
    if found is None:
        pytest.skip(f"{model_dir} takes none of its test photos for another crop")
    return found


def words(label: str) -> str:
    """The crop of a label as the API names it (`strawberry`)."""
    return crop_name(crop_of(label))
