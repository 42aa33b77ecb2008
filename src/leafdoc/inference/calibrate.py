"""`leafdoc calibrate`: fit the not-a-leaf check of an existing model folder (one trained before the check
existed, or to recalibrate with other non-leaf photos), from the training data it was trained on.

The folder's split.json names the training and validation photos by sha256, so the check is fitted on the
same training photos and calibrated on the same validation photos as at training time; the test split is
never touched.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from leafdoc.core.atomic import atomic_write_bytes
from leafdoc.core.errors import ConfigError, LeafdocError, ModelError
from leafdoc.imaging.photos import apply_white_balance, is_image_name, sha256_bytes
from leafdoc.inference.abstain import calibrate_min_confidence, min_confidence
from leafdoc.inference.baseline import write_baseline
from leafdoc.inference.ood import DEFAULT_TARGET, NonleafPhotos, OodCheck, fit_model_dir, nonleaf_photos
from leafdoc.inference.otherleaves import model_bank, not_fitted, with_no_leaf_from
from leafdoc.inference.predictor import Predictor
from leafdoc.modelfolder import (
    FIELD_PHOTOS_FILE,
    SPLIT_FILE,
    carries_field_photos,
    read_card,
    read_split,
    split_parts,
    write_card,
)


def split_photos(data_dir: Path, split: dict, labels: list[str]) -> dict[str, list[tuple[Path, int]]]:
    """{part: [(path, label index)]} for the photos of data_dir/<class>/ whose sha256 split.json lists."""
    part_of = split_parts(split)
    index = {name: i for i, name in enumerate(labels)}
    found: dict[str, list[tuple[Path, int]]] = {"train": [], "val": [], "test": []}
    for path in sorted(Path(data_dir).rglob("*")):
        if not (path.is_file() and is_image_name(path)) or path.parent.name not in index:
            continue
        part = part_of.get(sha256_bytes(path.read_bytes()))
        if part:
            found[part].append((path, index[path.parent.name]))
    return found


CARRIED_QUALITY = 75  # JPEG quality of the carried field photos (94 of them: 3.4 MB, inside models/' budget)
MAX_CARRIED, MAX_CARRIED_BYTES = 2_000, 4 * 2**20  # what is read of a field_photos.zip: photos, bytes per photo


def _field_photos(folders: list[Path], predictor: Predictor) -> tuple[np.ndarray, list[np.ndarray], list[str]]:
    """Model-ready arrays of the calibration part of the photos under each folder, the same photos as scenes
    (RGB, at most SCENE_MAX_SIDE px) for the scene measure, and where they came from; the rest is never read.
    A model folder's field_photos.zip (carried_photos) stands for the folder it was made from: all of it."""
    from leafdoc.imaging.photos import decode
    from leafdoc.inference.field import calibration_part
    from leafdoc.inference.scenes import SCENE_MAX_SIDE

    xs, scenes, sources = [], [], []
    for folder in folders:
        carried = Path(folder).name == FIELD_PHOTOS_FILE and Path(folder).is_file()
        if not carried and not Path(folder).is_dir():
            raise ConfigError(f"{folder}: no such folder of field photos.", hint="Pass a folder of field photos.")
        n = 0
        for name, data in carried_photos(Path(folder)) if carried else _folder_photos(Path(folder)):
            if not carried and not calibration_part(data):
                continue
            try:
                xs.append(predictor.preprocess(data, name=name))
                scene = decode(data, name, min_side=SCENE_MAX_SIDE)
                scene.thumbnail((SCENE_MAX_SIDE, SCENE_MAX_SIDE))
                scenes.append(np.asarray(scene))
                n += 1
            except LeafdocError:
                continue
        if carried:
            sources.append(f"{n} field photos carried by the model folder it started from ({FIELD_PHOTOS_FILE})")
        else:
            sources.append(f"{Path(folder).name} ({n} photos: sha256 first hex digit 0-7; the rest held out)")
    if len(xs) < 10:
        raise ConfigError(f"{', '.join(map(str, folders))}: fewer than 10 usable field photos for calibration.")
    return np.stack(xs), scenes, sources


def _folder_photos(folder: Path):
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and is_image_name(p)):
        yield path.name, path.read_bytes()


def carried_photos(path: Path):
    """(name, JPEG bytes) of a model folder's field_photos.zip, as write_carried_photos wrote them."""
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist()[:MAX_CARRIED]:
                if info.filename.endswith(".jpg") and info.file_size <= MAX_CARRIED_BYTES:
                    yield info.filename, zf.read(info)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelError(
            f"{path}: not a readable zip of field photos ({exc}).",
            hint="Recalibrate the model it belongs to with `leafdoc calibrate --field DIR`.",
        ) from None


def write_carried_photos(model_dir: Path, scenes: list[np.ndarray]) -> None:
    """The field photos the unlike-training check was calibrated with, as the scenes it saw (at most
    SCENE_MAX_SIDE px, JPEG), into the model folder: a retrain refits the check with them (lifecycle/training.py).
    The same photos give the same bytes (no time stamps), so recalibrating a folder under version control with the
    same photos leaves the file as it was."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i, scene in enumerate(scenes):
            photo = io.BytesIO()
            Image.fromarray(scene).save(photo, "JPEG", quality=CARRIED_QUALITY)
            zf.writestr(zipfile.ZipInfo(f"{i:04d}.jpg", date_time=(1980, 1, 1, 0, 0, 0)), photo.getvalue())
    atomic_write_bytes(Path(model_dir) / FIELD_PHOTOS_FILE, buf.getvalue())


def as_served(images: np.ndarray, predictor: Predictor) -> np.ndarray:
    """Composites made from model-ready photos (a leaf pasted on a new background) white-balanced whole, as the
    model's own preprocessing would white-balance such a photo sent to it."""
    prep = predictor.prep
    if prep.white_balance == "none" or not len(images):
        return images
    return np.stack([apply_white_balance(x, prep.white_balance, prep.light_range) for x in images])


def fit_field(
    model_dir,
    predictor,
    train_images,
    val_images,
    field,
    nonleaf: NonleafPhotos | None,
    val_poor=None,
    budget=None,
    val_out=None,
) -> dict:
    """The card's `field` section for a model folder whose ood.npz was just written, with its scene measure
    taught by examples made from `train_images` and the field photos (inference/scenes.py). `nonleaf`: the
    non-leaf examples as scored for the not-a-leaf check (nonleaf_photos). `val_poor`: which validation photos the
    photo checks refuse (they count in the abstention budget with the softmax's). `val_out`: the network's
    probabilities and features for `val_images`, when the caller has them."""
    from leafdoc.inference import field as fieldcheck
    from leafdoc.inference import scenes as scenemeasure
    from leafdoc.inference.ood import OOD_FILE, OodScorer

    scorer = OodScorer.load(Path(model_dir) / OOD_FILE)

    def group(images, out):
        photo = fieldcheck.photo_features(images)
        return scorer.components(out["features"], images), photo, out["probabilities"], out["features"]

    def scored(images):
        return group(images, predictor.predict_arrays(images, ["probabilities", "features"]))

    def features(images):
        return predictor.predict_arrays(images, ["features"])["features"]

    field_images, scenes, sources = _field_photos(field, predictor)
    plain, in_scenes, _ = scenemeasure.make_examples(train_images, scenes, np.random.default_rng(0))
    plain, in_scenes = as_served(plain, predictor), as_served(in_scenes, predictor)
    scene = scenemeasure.fit(features(plain), features(in_scenes)) if len(plain) else None
    nonleaf_group = None
    if nonleaf is not None and len(nonleaf.images):
        nonleaf_group = group(nonleaf.images, {"features": nonleaf.features, "probabilities": nonleaf.probabilities})
    val = group(val_images, val_out) if val_out is not None else scored(val_images)
    unsure = val[2].max(axis=1) < min_confidence(predictor.card)
    poor = np.zeros(len(unsure), bool) if val_poor is None else np.asarray(val_poor, bool)
    section = fieldcheck.calibrate(
        fieldcheck.photo_features(train_images),
        val,
        scored(field_images),
        nonleaf_group,
        sources,
        budget or fieldcheck.DEFAULT_BUDGET,
        unsure | poor,
        scene,
    )
    write_carried_photos(model_dir, scenes)
    scene_part = {"scene": section.pop("scene")} if "scene" in section else {}
    return {**section, "carried_photos": len(scenes), **scene_part}  # the scene's 1,280 weights stay last


def set_answer_share(card, abstain: dict, share: float) -> None:
    """The card's "not sure" threshold, set for `share` of the validation photos answered (calibrate_min_confidence),
    and the training option that makes a retrain set its own the same way."""
    card.abstain = abstain
    if card.training is not None:
        card.training["abstain_target_coverage"] = share


MIN_PHOTOS = 10  # training and validation photos each, at least, found in the folder to calibrate on


def calibrate_model_dir(
    model_dir: Path,
    data_dir: Path,
    nonleaf: list[Path] = (),
    target: float = DEFAULT_TARGET,
    max_pixels: int | None = None,
    field: list[Path] = (),
    field_budget: float | None = None,
    drop_field: bool = False,
    light_range: bool = False,
    answer_share: float | None = None,
) -> dict:
    """Fit the not-a-leaf check (card `ood`) and, with `field` folders of field photos, the unlike-training
    check (card `field`, inference/field.py) on the calibration part of those photos (calibration_part).
    Without `field`, a model with the check refits it with the field photos it carries (field_photos.zip, at
    the budget it had), unless `drop_field`: then it has none, and without `nonleaf` folders the not-a-leaf check
    is kept as it was fitted (only the monitoring baseline is made again, under the checks left).
    `light_range`: first measure the lights the model's training photos were taken under and from then on
    correct a photo lit beyond nearly all of them (white balance `light-range`, imaging/photos.py); the checks are
    fitted on photos so prepared, and the card says so only once they are.
    `answer_share`: also set the "not sure" threshold again, to the largest that answers that share of the
    validation photos (card `abstain`, as training sets it); the unlike-training check is then fitted under it."""
    model_dir, data_dir = Path(model_dir), Path(data_dir)
    if not field and not drop_field and carries_field_photos(model_dir):
        field = [model_dir / FIELD_PHOTOS_FILE]
        field_budget = field_budget or read_card(model_dir).field.get("budget")
    predictor = Predictor(model_dir, **({"max_pixels": max_pixels} if max_pixels else {}))
    if not data_dir.is_dir():
        raise ConfigError(f"{data_dir}: no such folder.", hint="Pass the folder of class folders the model saw.")
    split_file = model_dir / SPLIT_FILE
    missing = ModelError(
        f"{model_dir}: no split.json, so the training and validation photos are unknown.",
        hint="Retrain with `leafdoc train` (it fits the check itself).",
    )
    split = read_split(model_dir, missing)
    photos = split_photos(data_dir, split, predictor.labels)
    for part in ("train", "val"):
        want = len(split.get(part, []))
        if len(photos[part]) < max(MIN_PHOTOS, want // 2):
            raise ConfigError(
                f"{data_dir}: only {len(photos[part])} of the {want} {part} photos in {split_file} are there.",
                hint="Pass the same folder of class folders the model was trained on.",
            )

    def arrays(part: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Model-ready images, labels, and whether the photo checks refuse each (as serving would)."""
        xs, ys, poor = [], [], []
        for path, y in photos[part]:
            try:
                photo = predictor.load(path)
            except LeafdocError:
                continue
            xs.append(photo.x)
            ys.append(y)
            poor.append(bool(photo.problems))
        return np.stack(xs), np.asarray(ys), np.asarray(poor)

    if light_range:
        if predictor.prep.white_balance == "sheet":
            raise ConfigError(
                f"{model_dir}: it was trained on photos balanced to their sheet, so no light is left to correct.",
                hint="Leave out --light-range.",
            )
        try:
            predictor.prep = predictor.prep.with_lights(
                [path for path, _ in photos["train"]], what=f"the {len(photos['train'])} training photos in {data_dir}"
            )
        except ValueError as exc:
            raise ConfigError(f"{exc}.", hint="Leave out --light-range: these photos show no sheet.") from None
    if drop_field and not nonleaf and not field and not light_range:  # nothing to refit: keep the not-a-leaf check
        card = read_card(model_dir)
        if card.ood is None:
            raise ModelError(
                f"{model_dir}: it has no not-a-leaf check to keep.",
                hint="Fit one: pass --nonleaf DIR (non-leaf example photos) with --drop-field.",
            )
        card.field = None
        if answer_share:
            val_images, val_y, _ = arrays("val")
            probs = predictor.predict_arrays(val_images, ["probabilities"])["probabilities"]
            set_answer_share(card, calibrate_min_confidence(probs, val_y, answer_share), answer_share)
        write_card(model_dir, card)  # before the photos go: a card never names a missing file
        (model_dir / FIELD_PHOTOS_FILE).unlink(missing_ok=True)
        write_baseline(model_dir, [path for path, _ in photos["val"]], max_pixels)
        return card.ood
    train_x, train_y, _ = arrays("train")
    train = (train_x, train_y)
    val_images, val_y, val_poor = arrays("val")
    if "features" not in predictor.output_names:
        raise ModelError(
            f"{model_dir}/model.onnx has no `features` output.",
            hint="Re-export it with `leafdoc export MODEL_DIR --format onnx`.",
        )
    val_out = predictor.predict_arrays(val_images, ["probabilities", "features"])  # one pass for both checks
    abstain = None
    if answer_share:  # before the field check: it is fitted under the "not sure" threshold
        abstain = calibrate_min_confidence(val_out["probabilities"], val_y, answer_share)
        predictor.card.abstain = abstain
    examples = nonleaf_photos([str(p) for p in nonleaf], predictor)  # scored once for both checks
    section = fit_model_dir(model_dir, predictor, train, val_images, examples, target, val_out["features"])
    card = read_card(model_dir)
    card.ood = section
    card.field = None  # fitted against the old not-a-leaf statistics: refit below or drop
    if abstain:
        set_answer_share(card, abstain, answer_share)
    if light_range:  # what the checks were just fitted on; a retrain measures its own training photos' lights
        card.input.white_balance, card.input.light_range = "light-range", list(predictor.prep.light_range)
        if (card.other_leaves or {}).get("fitted"):  # fitted on photos prepared as the bank's were: not these now
            card.other_leaves = not_fitted("photos are now prepared with light-range; retrain to fit it again")
        if card.training is not None:
            card.training["white_balance"] = "light-range"
    elif (card.other_leaves or {}).get("fitted"):  # which word a refused leaf gets reads the new not-a-leaf scores
        bank, ood = model_bank(predictor)[0], OodCheck.from_model_dir(model_dir, card)
        card.other_leaves = with_no_leaf_from(card.other_leaves, bank, ood.scores_of)
    if field:
        card.field = fit_field(
            model_dir, predictor, train_x, val_images, list(field), examples, val_poor, field_budget, val_out
        )
    else:
        (model_dir / FIELD_PHOTOS_FILE).unlink(missing_ok=True)  # no check, so nothing to refit it with
    if card.training is not None:  # retraining recalibrates with the same non-leaf folders
        card.training["nonleaf_dirs"] = [str(Path(d).resolve()) for d in nonleaf]
    write_card(model_dir, card)  # after ood.npz: a card never names a missing file
    # The validation answers monitoring compares served answers with (card `baseline`), under the new check.
    write_baseline(model_dir, [path for path, _ in photos["val"]], max_pixels)
    return section
