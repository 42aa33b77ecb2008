"""Evaluate a model folder on a labelled class-folder dataset, through the serving path (ONNX Runtime).

The images go through `Predictor.preprocess`, the same pipeline as training and serving, so the
numbers are what users will get. Unreadable images are listed with their reason and never stop
the run; a class folder the model has never heard of stops it before any work is done.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from leafdoc.core.errors import ConfigError, DatasetError, ModelError
from leafdoc.core.settings import Settings
from leafdoc.data.sources import list_labelled_folder
from leafdoc.evaluate.score import score_files
from leafdoc.imaging.photos import DEFAULT_MAX_PIXELS, is_image_name, sha256_bytes
from leafdoc.inference.abstain import Decision
from leafdoc.inference.predictor import Predictor
from leafdoc.modelfolder import SPLIT_FILE, learnt_by_start, read_split, split_parts

Progress = Callable[[int, int], None]


def check_classes(data_labels: set[str], model_labels: list[str], model_dir: Path, data_dir: Path) -> None:
    """Refuse class folders the model cannot predict: their images would all count as wrong."""
    unknown = sorted(data_labels - set(model_labels))
    if unknown:
        raise DatasetError(
            f"{data_dir}: class folder(s) {', '.join(repr(u) for u in unknown)} are not labels of the model "
            f"in {model_dir} (it knows {len(model_labels)}: {', '.join(model_labels[:8])}"
            f"{', ...' if len(model_labels) > 8 else ''}).",
            hint="Rename the folder to the model's label, or remove it from the evaluation data.",
        )


def per_image(
    kept: list[tuple[Path, str]], probs: np.ndarray, labels: list[str], decisions: list[Decision] | None = None
) -> list[dict]:
    """One row per image: what it is, what the model said, how sure it was, and whether it abstained (and why)."""
    pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=np.int64)
    rows = []
    for k, ((path, true), p, i) in enumerate(zip(kept, probs, pred, strict=True)):
        row = {
            "file": str(path),
            "true": true,
            "predicted": labels[int(i)],
            "confidence": round(float(p[int(i)]), 6),
            "correct": labels[int(i)] == true,
        }
        if decisions is not None:
            row["abstained"] = decisions[k].abstained
            row["reason"] = decisions[k].reason
            if decisions[k].abstained:  # what a grower is told instead of a diagnosis (the report shows it)
                row["message"] = decisions[k].message
        rows.append(row)
    return rows


def evaluate_folder(
    model_dir: Path,
    data_dir: Path,
    settings: Settings | None = None,
    progress: Progress | None = None,
    predictor: Predictor | None = None,
    ood_dir: Path | None = None,
    per_class: int | None = None,
    seed: int = 0,
    split: str | None = None,
) -> dict:
    """Metrics of the model in `model_dir` on the class folders of `data_dir`
    (and with `ood_dir`, the share of those photos, none a leaf of the model's classes, it abstained on).
    With `per_class`, at most that many photos of each class (and of each folder under `ood_dir`) are
    evaluated, drawn at random with `seed` (a quick look at a big folder; the result says so).
    With `split` (train, val, test or unseen), only the photos the model folder's split.json puts in that part
    (by content hash; `unseen`: in neither train nor val) are evaluated, so a folder the model was trained on
    can be scored on what the model never saw.

    Returns a JSON-ready dict: compute_metrics' keys (accuracy, top3_accuracy, macro_f1, ece, n,
    labels, per_class, confusion_matrix) plus accuracy_ci95 (95% Wilson interval), most_confused,
    reliability, predictions (per image), skipped (file + reason), classes (those in the data), model
    and data; seen_in_training ({train, val, of}: how many of the photos scored are the model's training or
    validation photos by split.json; None when none are, the folder has no split.json, or `split` chose the part);
    learnt_by_start ({photos, of}: how many the network it started from, the starter's, learnt; None when none).
    """
    model_dir, data_dir = Path(model_dir), Path(data_dir)
    max_pixels = settings.max_image_pixels if settings else DEFAULT_MAX_PIXELS
    variant = (settings.onnx_variant if settings else None) or "fp32"  # LEAFDOC_ONNX_VARIANT: evaluate what is served
    any_cpu = bool(settings and settings.int8_any_cpu)
    predictor = predictor or Predictor(model_dir, max_pixels=max_pixels, variant=variant, any_cpu=any_cpu)
    files, not_images = list_labelled_folder(data_dir)
    data_labels = {label for _, label in files}
    check_classes(data_labels, predictor.labels, model_dir, data_dir)
    found = len(files)
    split_info, split_shas = None, {}
    if split is not None:
        files, split_info, split_shas = in_split(files, model_dir, data_dir, split)
        found = len(files)
    files = sample_per_group(files, per_class, seed)

    # The one prediction pass: every figure from it, and (without --split, which hashed the photos to choose them)
    # each photo's sha256 from the bytes it read, for seen_in_training and learnt_by_start.
    found_scores = score_files(predictor, files, progress, hashes=split is None)
    scores, kept = found_scores.scores, found_scores.kept
    shas = (found_scores.shas or []) if split is None else [split_shas[p] for p, _ in kept]
    skipped = [{"file": s.name, "reason": s.reason} for s in not_images] + found_scores.skipped
    if not kept:
        first = "; ".join(f"{s['file']}: {s['reason']}" for s in skipped[:3])
        raise DatasetError(f"{data_dir}: none of the {len(files)} images could be read ({first}).")

    result = scores.figures()
    result["classes"] = sorted(data_labels)
    result["predictions"] = per_image(kept, scores.probs, predictor.labels, scores.decisions)
    if ood_dir is not None:
        result["ood"] = evaluate_ood(predictor, Path(ood_dir), per_class, seed)
    result["sample"] = {"per_class": per_class, "seed": seed, "photos": len(files), "of": found} if per_class else None
    result["split"] = split_info
    result["seen_in_training"] = seen_in_training(shas, model_dir)  # `--split train` and `val` too: all are
    result["learnt_by_start"] = seen_by_start(shas, predictor.card)
    result["skipped"] = skipped
    result["model"] = str(model_dir)
    result["model_file"] = predictor.model_file.name
    result["limitations"] = predictor.card.limitations  # the card's own words: the report shows them to the lab
    result["data"] = str(data_dir)
    return result


SPLIT_PARTS = ("train", "val", "test", "unseen")


def in_split(
    files: list[tuple[Path, str]], model_dir: Path, data_dir: Path, part: str
) -> tuple[list[tuple[Path, str]], dict, dict[Path, str]]:
    """The (path, label) pairs whose content split.json puts in `part` (`unseen`: in neither train nor val), the
    split's summary, and the chosen photos' sha256s (hashed to choose them: the scoring pass need not again)."""
    if part not in SPLIT_PARTS:
        raise ConfigError(f"--split {part!r}: not a part of a split.", hint=f"Use one of {', '.join(SPLIT_PARTS)}.")
    missing = ModelError(
        f"{model_dir / SPLIT_FILE}: no such file, so which photos the model saw is unknown.",
        hint="Leave out --split (every photo is scored), or evaluate a folder the model never saw.",
    )
    split = read_split(model_dir, missing)
    part_of = split_parts(split)

    def wanted(sha: str) -> bool:
        got = part_of.get(sha)
        return got not in ("train", "val") if part == "unseen" else got == part

    shas = {p: sha256_bytes(p.read_bytes()) for p, _ in files}
    keep = [(p, label) for p, label in files if wanted(shas[p])]
    if not keep:
        listed = f"split.json lists {len(split.get(part, []))}" if part != "unseen" else "all were used in training"
        raise DatasetError(
            f"{data_dir}: none of its {len(files)} photos are the model's {part} photos ({listed}).",
            hint="Pass the folder the model was trained from, or leave out --split.",
        )
    return keep, {"part": part, "photos": len(keep), "of": len(files)}, {p: shas[p] for p, _ in keep}


def seen_in_training(shas: list[str], model_dir: Path) -> dict | None:
    """How many of the photos scored (their sha256s, as the scoring pass hashed the bytes it read) the model learnt
    from or was chosen on: split.json's train and val parts. Figures on those overstate the model on new photos, so a
    report says it; None when none are, or the folder has no split.json to tell."""
    if not (Path(model_dir) / SPLIT_FILE).is_file():
        return None
    part_of = split_parts(read_split(model_dir))
    parts = [part_of.get(sha) for sha in shas]
    train, val = parts.count("train"), parts.count("val")
    return {"train": train, "val": val, "of": len(shas)} if train or val else None


def seen_by_start(shas: list[str], card) -> dict | None:
    """How many of the photos scored the network the model started from learnt or was chosen on
    (modelfolder.learnt_by_start: the starter's training and validation photos); None when none are."""
    learnt = learnt_by_start(card.pretrained)
    if not learnt:
        return None
    photos = sum(sha in learnt for sha in shas)
    return {"photos": photos, "of": len(shas)} if photos else None


def sample_per_group(files: list[tuple[Path, str]], per_group: int | None, seed: int) -> list[tuple[Path, str]]:
    """At most `per_group` of the (path, group) pairs of each group, drawn at random with `seed`, in their order."""
    if not per_group:
        return files
    if per_group < 0:
        raise ConfigError(f"per_class must be positive (got {per_group}).", hint="Leave it out to use every photo.")
    rng = np.random.default_rng(seed)
    by_group: dict[str, list[int]] = {}
    for i, (_, group) in enumerate(files):
        by_group.setdefault(group, []).append(i)
    keep = set()
    for group in sorted(by_group):
        idx = by_group[group]
        keep.update(rng.choice(idx, size=min(per_group, len(idx)), replace=False).tolist())
    return [f for i, f in enumerate(files) if i in keep]


def evaluate_ood(predictor: Predictor, folder: Path, per_folder: int | None = None, seed: int = 0) -> dict:
    """Photos that are not leaves of the model's classes (any images under `folder`): how many it refused.
    With `per_folder`, at most that many photos of each folder, drawn at random with `seed`."""
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such folder.", hint="Pass a folder of photos that are not leaves.")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_name(p))
    if not paths:
        raise DatasetError(f"{folder}: no image files in it.", hint="Pass a folder of photos that are not leaves.")
    files = sample_per_group([(p, str(p.parent)) for p in paths], per_folder, seed)
    found = score_files(predictor, [(p, "") for p, _ in files], labelled=False)
    skipped, decisions = found.skipped, found.scores.decisions
    reasons: dict[str, int] = {}
    for d in decisions:
        key = d.reason or "answered"
        reasons[key] = reasons.get(key, 0) + 1
    n = len(decisions)
    return {
        "data": str(folder),
        "n": n,
        "abstained": round(sum(d.abstained for d in decisions) / n, 4) if n else None,
        "not_a_leaf": round(reasons.get("not_a_leaf", 0) / n, 4) if n else None,
        "by_reason": reasons,
        "skipped": len(skipped),
    }
