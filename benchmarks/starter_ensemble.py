"""Runs of the starter's recipe averaged (an ensemble): each model's served probabilities on the validation photos of
their shared split, then every pair's and all of theirs averaged: accuracy, loss and the lowest class recalls
(docs/retrain-starter.md, "two runs averaged").

    python benchmarks/starter_ensemble.py --model models/starter --model runs/px224 [--model ...] --full DIR [--test]
    python benchmarks/starter_ensemble.py --model A [--model B ...] --full DIR --teacher-out FILE
    python benchmarks/starter_ensemble.py --model models/starter --full DIR --flip


The models must share their split (split.json): runs warm-started from the same model do. Judge on validation;
`--test` adds the test photos' figures, to read once after the choice is made. `--teacher-out` writes the models'
averaged probabilities on their training photos, as served, for distilling them into one model
(`scripts/train_starter.py --teacher FILE`, TrainConfig.teacher: train/teacher.py), and nothing else. `--flip` adds
each model with flips at test time: its probabilities on the photo and on its mirror image, averaged (twice the cost
a photo).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shared_data import SHARED  # noqa: E402

from leafdoc.inference.predictor import Predictor  # noqa: E402
from leafdoc.modelfolder import read_labels  # noqa: E402


def split_rows(model: Path, part: str) -> list[dict]:
    """The manifest's rows of the photos in `part` of the model's split (its PlantVillage photos, not field ones)."""
    keep = set(json.loads((model / "split.json").read_text())[part])
    with (SHARED / "plantvillage-full.SOURCES.tsv").open() as fh:
        return [r for r in csv.DictReader(fh, delimiter="\t") if r["sha256"] in keep]


def split_photos(model: Path, full: Path, part: str) -> list[tuple[Path, str]]:
    return [(full / r["relative_path"], r["class"]) for r in split_rows(model, part)]


def sha256s(model: Path, part: str) -> list[str]:
    return [r["sha256"] for r in split_rows(model, part)]


def served_probabilities(
    model: Path, photos: list[tuple[Path, str]], labels: list[str], mirrored: list[np.ndarray] | None = None
) -> np.ndarray:
    """The model's probabilities as served; with `mirrored` (a list to fill), also those of each photo's mirror image
    (left to right), appended to it."""
    p = Predictor(model)
    assert p.labels == labels, f"{model}: other labels than the first model's"
    out, out_mirrored = [], []
    for i in range(0, len(photos), 128):
        x = np.stack([p.load(f).x for f, _ in photos[i : i + 128]])
        out.append(p.predict_arrays(x, ["probabilities"])["probabilities"])
        if mirrored is not None:
            out_mirrored.append(p.predict_arrays(x[:, :, ::-1], ["probabilities"])["probabilities"])
    if mirrored is not None:
        mirrored.append(np.concatenate(out_mirrored))
    return np.concatenate(out)


def figures(name: str, probs: np.ndarray, y: np.ndarray, labels: list[str]) -> str:
    pred = probs.argmax(1)
    recall = {labels[c]: float((pred[y == c] == c).mean()) for c in np.unique(y)}
    low = sorted(recall.items(), key=lambda kv: kv[1])[:3]
    loss = float(-np.log(probs[np.arange(len(y)), y] + 1e-12).mean())
    lows = ", ".join(f"{k.replace('___', ' ')} {v:.1%}" for k, v in low)
    return f"| {name} | {(pred == y).mean():.2%} | {loss:.4f} | {lows} |"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, action="append", required=True, help="a model folder (two or more)")
    ap.add_argument("--full", type=Path, required=True, help="PlantVillage-full, built from its manifest")
    ap.add_argument("--test", action="store_true", help="also the test photos (read once, after choosing)")
    ap.add_argument("--teacher-out", type=Path, help="write the training photos' averaged probabilities here")
    ap.add_argument("--flip", action="store_true", help="also each model with flips at test time")
    args = ap.parse_args()
    if len(args.model) < 2 and not (args.teacher_out or args.flip):
        ap.error("give two or more --model folders, or --flip")
    splits = {(m / "split.json").read_bytes() for m in args.model}
    if len(splits) > 1:
        ap.error("the models do not share their split.json: their validation photos differ")
    labels = read_labels(args.model[0])
    if args.teacher_out:
        photos = split_photos(args.model[0], args.full, "train")
        probs = [served_probabilities(m, photos, labels) for m in args.model]
        shas = sha256s(args.model[0], "train")
        np.savez(args.teacher_out, shas=np.array(shas), probs=sum(probs) / len(probs), labels=np.array(labels))
        print(f"{args.teacher_out}: {len(photos)} training photos, the average of {len(args.model)} models")
        return 0
    for part in ("val", "test") if args.test else ("val",):
        photos = split_photos(args.model[0], args.full, part)
        missing = [f for f, _ in photos if not f.is_file()]
        if missing:
            ap.error(f"{len(missing)} photos of the split are not in {args.full} (e.g. {missing[0]})")
        y = np.array([labels.index(c) for _, c in photos])
        mirrored: list[np.ndarray] = []
        probs = {m.name: served_probabilities(m, photos, labels, mirrored if args.flip else None) for m in args.model}
        print(f"\n{part}: {len(photos)} photos\n| served | accuracy | loss | lowest recalls |\n|---|---|---|---|")
        for name, p in probs.items():
            print(figures(name, p, y, labels))
        for (name, p), m in zip(probs.items(), mirrored, strict=args.flip):  # mirrored is empty without --flip
            print(figures(f"{name}, its mirror image alone", m, y, labels))
            print(figures(f"{name}, flips at test time", (p + m) / 2, y, labels))
        for k in range(2, len(probs) + 1):
            for names in itertools.combinations(probs, k):
                print(figures(" + ".join(names), sum(probs[n] for n in names) / k, y, labels))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
