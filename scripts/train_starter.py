"""Retrain the starter model (models/starter) on all of PlantVillage and the field photos of corn, tomato and potato.

    python scripts/train_starter.py --full DIR --field-corn DIR --field-mixed DIR --out runs/starter \\
        [--init-from models/starter] [--resume] [--home DIR]

Without --field-corn and --field-mixed it trains the same recipe on the lab photos alone (the lab-only model the
field photos' cost on lab photos is measured against: docs/retrain-starter.md).

What it does, in order (docs/retrain-starter.md explains each choice):
1. Splits each field set by the first hex digit of each photo's sha256: 0-7 training, 8-b validation (the checks
   are fitted on it), c-f test (figures only). The split depends only on the photos' bytes.
2. Lays out one folder of class folders (symbolic links): every PlantVillage photo and the field photos' training
   part, and ingests it as the dataset `starter` in the data home (`--home`, default ./runs/starter-home).
3. Splits PlantVillage 70/15/15 per class with near-duplicates grouped; with --init-from, the photos that model was
   trained and validated on (its split.json) and their near-duplicates go to training, so the test figures are on
   photos no training saw. The field photos' training part goes to training only, repeated (`--field-repeat`).
4. Trains: the head on features computed once (`head_on_features`), then the whole backbone fine-tuned, with a
   checkpoint after every epoch (`--resume` continues a stopped run).
The folders of field photos' validation and test parts are written under the data home for `leafdoc calibrate`
and `benchmarks/starter_full.py`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
FIELD_PARTS = {"train": "01234567", "val": "89ab", "test": "cdef"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def photos(folder: Path):
    for cls in sorted(p for p in folder.iterdir() if p.is_dir()):
        for f in sorted(cls.iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                yield cls.name, f


def field_part(sha: str) -> str:
    return next(part for part, digits in FIELD_PARTS.items() if sha[0] in digits)


def link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists():
        os.symlink(src.resolve(), dst)


def lay_out(full: Path, fields: list[Path], home: Path) -> tuple[Path, dict[str, set[str]]]:
    """The training folder (lab photos and the field photos' training part) and the field photos' other parts,
    as class folders under `home`; returns the training folder and the field sha256s by part."""
    data = home / "data"
    if data.exists():
        shutil.rmtree(data)
    for label, f in photos(full):
        link(f, data / label / f.name)
    shas: dict[str, set[str]] = {p: set() for p in FIELD_PARTS}
    for folder in fields:
        for part in FIELD_PARTS:
            shutil.rmtree(home / f"field-{part}" / folder.name, ignore_errors=True)
        for label, f in photos(folder):
            sha = sha256(f)
            part = field_part(sha)
            shas[part].add(sha)
            name = f"{folder.name}-{f.name}"
            if part == "train":
                link(f, data / label / name)
            link(f, home / f"field-{part}" / folder.name / label / name)
    return data, shas


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", type=Path, required=True, help="plantvillage-full, built from its manifest")
    ap.add_argument("--field-corn", type=Path, default=None, help="without both field sets: lab-only")
    ap.add_argument("--field-mixed", type=Path, default=None)
    ap.add_argument("--nonleaf", type=Path, action="append", default=[], help="non-leaf photos (repeatable)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--home", type=Path, default=Path("runs/starter-home"))
    ap.add_argument("--init-from", type=Path, default=None, help="warm-start from this model folder")
    ap.add_argument("--field-repeat", type=int, default=8, help="times a field training photo is seen per epoch")
    ap.add_argument("--epochs", type=int, default=20, help="head epochs, on features computed once")
    ap.add_argument("--fine-tune-epochs", type=int, default=4)
    ap.add_argument(
        "--fine-tune-fraction", type=float, default=1.0, help="share of the backbone's layers fine-tuned (from the top)"
    )
    ap.add_argument(
        "--fine-tune-cached",
        action="store_true",
        help="fine-tune the top on the activations below it, computed once (minutes an epoch instead of half an hour)",
    )
    ap.add_argument(
        "--fine-tune-views",
        type=int,
        default=0,
        help="with --fine-tune-cached: augmented copies of each training photo cached too, one drawn per epoch",
    )
    ap.add_argument("--learning-rate", type=float, default=1e-3, help="the head's rate; fine-tuning runs at a tenth")
    ap.add_argument("--class-weights", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--image-size", type=int, default=160)
    ap.add_argument("--train-seed", type=int, default=None, help="the training's own seed, the split kept (noise)")
    ap.add_argument(
        "--drop-photos",
        type=Path,
        default=None,
        help="a file of sha256s (one a line) of training photos not shown in training (the split unchanged): "
        "photos whose label looks wrong",
    )
    ap.add_argument(
        "--teacher",
        type=Path,
        default=None,
        help="distillation: a teacher's probabilities for the training photos (benchmarks/starter_ensemble.py "
        "--teacher-out), learnt beside the labels (Hinton's loss, train/teacher.py)",
    )
    ap.add_argument("--teacher-weight", type=float, default=0.7, help="with --teacher: the teacher's share of the loss")
    ap.add_argument(
        "--teacher-temperature",
        type=float,
        default=4.0,
        help="with --teacher: the temperature both sides are softened by",
    )
    ap.add_argument("--resume", action="store_true")
    ap.add_argument(
        "--finish",
        action="store_true",
        help="end a stopped run now: the model folder from the best epoch its checkpoint holds (same options)",
    )
    args = ap.parse_args(argv)

    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["LEAFDOC_HOME"] = str(home)
    from leafdoc.train.tfimport import import_tensorflow_quietly

    import_tensorflow_quietly()  # as leafdoc's commands do: no CUDA lines on a machine without a GPU
    from leafdoc.cli.printing import TrainingLog, training_bar
    from leafdoc.core.settings import Settings
    from leafdoc.data.datasets import latest_version
    from leafdoc.data.ingest import ingest
    from leafdoc.lifecycle.training import prepare, train_model
    from leafdoc.lifecycle.workspace import Workspace
    from leafdoc.train.checkpoint import beside
    from leafdoc.train.config import TrainConfig
    from leafdoc.train.stopping import stop_on_signals

    fields = [p for p in (args.field_corn, args.field_mixed) if p is not None]
    data, field_shas = lay_out(args.full, fields, home)
    print({part: len(s) for part, s in field_shas.items()}, "field photos by part", flush=True)
    seen: frozenset[str] = frozenset()
    if args.init_from:
        split = json.loads((args.init_from / "split.json").read_text())
        seen = frozenset(split["train"]) | frozenset(split["val"])
    cfg = TrainConfig(
        backbone="efficientnet_lite0",
        weights="imagenet",
        image_size=args.image_size,
        epochs=args.epochs,
        fine_tune_epochs=args.fine_tune_epochs,
        fine_tune_fraction=args.fine_tune_fraction,
        fine_tune_cached=args.fine_tune_cached,
        fine_tune_views=args.fine_tune_views,
        learning_rate=args.learning_rate,
        batch_size=32,  # pinned: TrainConfig's default (a lab's first model) is 16
        patience=3,
        restore_best="val_loss",  # pinned: a lab's first model keeps its last epoch
        feature_views=1,
        class_weights=args.class_weights,
        head_on_features=True,
        framing="leaf",
        white_balance="light-range",
        nonleaf_dirs=[str(p.resolve()) for p in args.nonleaf],
        field_dirs=[],
        seed=0,
        train_seed=args.train_seed,
        teacher=str(args.teacher.resolve()) if args.teacher else None,
        teacher_weight=args.teacher_weight,
        teacher_temperature=args.teacher_temperature,
    )
    ws = Workspace.open(Settings())
    if (args.resume or args.finish) and latest_version(ws.catalog, "starter") is not None:
        print("the photos were ingested by the run this one continues", flush=True)  # 35,000 photos: minutes
    else:
        res = ingest(data, ws.catalog, ws.store, "starter", max_pixels=ws.settings.max_image_pixels)
        print(f"ingested: {len(res.rejected)} rejected", flush=True)
    td = prepare(ws, "starter", cfg, train_only=frozenset(field_shas["train"]), seen=seen)
    import numpy as np

    td.repeat = np.array([args.field_repeat if s in field_shas["train"] else 1 for s in td.shas], dtype=np.int64)
    if args.drop_photos:
        print(f"{leave_out(td, args.drop_photos)} training photos left out (--drop-photos)", flush=True)
    print(f"{len(td.classes)} classes; {td.counts()}", flush=True)
    checkpoint = beside(args.out)
    if not (args.resume or args.finish):
        shutil.rmtree(checkpoint, ignore_errors=True)
    with stop_on_signals(), training_bar(False) as bar:
        task = bar.add_task("training", total=None, info="")
        card = train_model(
            cfg,
            td,
            args.out,
            on_event=TrainingLog(bar, task),
            init_from=args.init_from,
            checkpoint_dir=checkpoint,
            originals=ws.store.get,
            finish=args.finish,
        ).card
    shipped_training_options(args.out)
    print(json.dumps(card.test_metrics, indent=1)[:2000])
    return 0


def leave_out(td, listed: Path) -> int:
    """--drop-photos: the training photos whose sha256 `listed` names (one a line) are seen 0 times an epoch; they stay
    in the training split, so validation and test are unchanged. Returns how many were left out."""
    dropped = set(listed.read_text().split())
    left_out = [i for i, s in enumerate(td.shas) if s in dropped and td.split[i] == "train"]
    td.repeat[left_out] = 0
    return len(left_out)


def shipped_training_options(model_dir: Path) -> None:
    """The card goes to every user: no folder of this machine in it. The non-leaf and field folders were read for the
    checks (ood.npz, field_photos.zip carry what a retrain needs); a warm-started retrain merges the card's training
    options, and it refits the field check from the photos the model carries only when `field_dirs` is unset."""
    from leafdoc.modelfolder import read_card, write_card

    card = read_card(model_dir)
    training = card.training or {}
    teacher = training.get("teacher")  # its file's name says the model was distilled; the folder is this machine's
    card.training = {**training, "nonleaf_dirs": [], "field_dirs": None, "teacher": teacher and Path(teacher).name}
    write_card(model_dir, card)


if __name__ == "__main__":
    sys.exit(main())
