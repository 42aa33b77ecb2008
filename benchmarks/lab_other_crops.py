"""What a lab's own model does with leaves it was not taught: its not-a-leaf and unlike-training checks (as trained,
the model folder's ood.npz and card) on unseen photos of its own classes, on leaves of other crops and on leaves of
its crop with other conditions, all from the shared PlantVillage photos.

    python benchmarks/lab_other_crops.py MODEL_DIR DATA_DIR [--per-class 15] [--unseen-crop DIR ...]

MODEL_DIR is a model `leafdoc train --data DATA_DIR` made (docs/guide-train-your-own.md, step 3); DATA_DIR's class
folders name its classes. Own-class photos: the shared photos of those classes that are not in DATA_DIR (at most
300). Other crops: `--per-class` photos of each class of another crop. Same crop, other conditions: as many of each
of that crop's other classes. Prints the share each group refused and answered, and the check's AUROC between own
photos and each other group (0.5: it cannot tell them apart).

With the "one of its classes or another leaf" check in the card (`other_leaves`, inference/otherleaves.py), each
group is answered twice, side by side from one pass: as served, and with that check taken out of the card (the model
as it was before the check existed); other crops' photos that are in leafdoc's bank of other leaves
(scripts/build_leaf_bank.py draws them) are left out, so every scored photo is new to the check. `--unseen-crop DIR`:
a folder of class folders of a crop the bank does not hold at all (plantvillage-full's grape classes, built from
its manifest), the honest test of leaves it was never shown. `--non-leaves DIR`: a folder of photos that hold no leaf
(the shared CIFAR-10 subset's classes, say), at most `--per-class` from each of its folders.

Which check speaks first: a photo both checks refuse is `not_a_leaf` as served (the not-a-leaf check decides first).
The last column counts the photos that would be `unknown_leaf` if the other-leaves check decided first: for other
leaves that is the right word; for non-leaves, the wrong one.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab_defaults import PLANTVILLAGE  # noqa: E402

from leafdoc.advice import shipped_knowledge  # noqa: E402
from leafdoc.inference.predictor import Predictor  # noqa: E402
from leafdoc.lifecycle.training import as_written  # noqa: E402


def in_bank(cls: Path, per_class: int = 30) -> set[str]:
    """The photos of a class that scripts/build_leaf_bank.py put in the shipped bank."""
    files = sorted(cls.iterdir())
    random.Random(f"negatives-{cls.name}").shuffle(files)
    return {f.name for f in files[:per_class]}


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(an outside photo scores higher than an inside one), ties counted half."""
    a, b = np.asarray(inside)[None], np.asarray(outside)[:, None]
    return float((b > a).mean() + 0.5 * (b == a).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("data", type=Path)
    ap.add_argument("--per-class", type=int, default=15)
    ap.add_argument("--unseen-crop", type=Path, action="append", default=[])
    ap.add_argument("--non-leaves", type=Path, action="append", default=[])
    args = ap.parse_args()
    predictor = Predictor(args.model)
    if predictor.ood is None:
        sys.exit(f"{args.model}: no ood.npz (not-a-leaf check) in this model folder")
    classes = sorted(d.name for d in args.data.iterdir() if d.is_dir())
    crop = classes[0].split("___")[0]
    taught = {f.name for c in classes for f in (args.data / c).iterdir()}
    banked = {d.name: in_bank(d) for d in PLANTVILLAGE.iterdir() if d.is_dir()}
    groups = {
        "own classes, unseen": [
            f for c in classes for f in sorted((PLANTVILLAGE / c).iterdir()) if f.name not in taught
        ][:300],
        "other crops (the bank holds other photos of them)": [
            f
            for d in sorted(PLANTVILLAGE.iterdir())
            if not d.name.startswith(crop)
            for f in [f for f in sorted(d.iterdir()) if f.name not in banked[d.name]][: args.per_class]
        ],
        f"{crop}, other conditions": [
            f
            for d in sorted(PLANTVILLAGE.iterdir())
            if d.name.startswith(crop) and d.name not in classes
            for f in [f for f in sorted(d.iterdir()) if f.name not in banked[d.name]][: args.per_class]
        ],
    }
    for extra in args.unseen_crop:
        groups[f"{extra.name} (not in the bank)"] = [
            f for d in sorted(extra.iterdir()) if d.is_dir() for f in sorted(d.iterdir())[: args.per_class]
        ]
    for extra in args.non_leaves:
        groups[f"{extra.name} (no leaf)"] = [
            f for d in sorted(extra.iterdir()) if d.is_dir() for f in sorted(d.iterdir())[: args.per_class]
        ]
    section = predictor.card.other_leaves or {}
    without = None
    if section.get("fitted"):
        card = as_written(predictor.card)
        card.other_leaves = None
        without = predictor.with_card(card)
        print(f"other_leaves: threshold {section['threshold']:.4f}, left out: {', '.join(section['left_out'])}\n")
    else:
        print(f"no fitted other_leaves check: {section.get('why_not', 'none in the card')}\n")
    scores = {}
    head = "| photos | n | answered | refused: unknown_leaf / not_a_leaf or unlike_training / unsure |"
    if without:
        head += " answered without the check |"
    head += " not-a-leaf AUROC against own | not_a_leaf that would be unknown_leaf, the other check first |"
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for name, files in groups.items():
        photos = [predictor.load(f.read_bytes(), f.name) for f in files]
        names = [f.name for f in files]
        out = predictor.predict_arrays(np.stack([p.x for p in photos]), ["probabilities", "features"])
        answers = predictor.answer(photos, names, 1, shipped_knowledge(), outputs=out)
        reasons = [a.reason for a in answers if a.abstained]
        answered = 1 - len(reasons) / len(answers)
        unknown = reasons.count("unknown_leaf") / len(answers)
        photo = sum(r in ("not_a_leaf", "unlike_training") for r in reasons) / len(answers)
        unsure = sum(r in ("unsure", "poor_photo") for r in reasons) / len(answers)
        row = f"| {name} | {len(files)} | {answered:.1%} | {unknown:.1%} / {photo:.1%} / {unsure:.1%} |"
        if without:
            before = without.answer(photos, names, 1, shipped_knowledge(), outputs=out)
            row += f" {np.mean([not a.abstained for a in before]):.1%} |"
        scores[name] = predictor.ood_scores(out["features"], np.stack([p.x for p in photos]))
        own = scores["own classes, unseen"]
        area = "" if name.startswith("own") else f"{auroc(own, scores[name]):.3f}"
        flipped = ""
        if predictor.other_leaves is not None:
            other = predictor.other_leaves.score(out["features"]) > predictor.other_leaves.threshold
            not_leaf = np.array([a.reason == "not_a_leaf" for a in answers])
            flipped = f"{(not_leaf & other).mean():.1%} of the group"
        print(f"{row} {area} | {flipped} |", flush=True)


if __name__ == "__main__":
    main()
