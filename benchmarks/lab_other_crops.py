"""What a lab's own model does with leaves it was not taught: its not-a-leaf and unlike-training checks (as trained,
the model folder's ood.npz and card) on unseen photos of its own classes, on leaves of other crops and on leaves of
its crop with other conditions, all from the shared PlantVillage photos.

    python benchmarks/lab_other_crops.py MODEL_DIR DATA_DIR [--per-class 15]

MODEL_DIR is a model `leafdoc train --data DATA_DIR` made (docs/guide-train-your-own.md, step 3); DATA_DIR's class
folders name its classes. Own-class photos: the shared photos of those classes that are not in DATA_DIR (at most
300). Other crops: `--per-class` photos of each class of another crop. Same crop, other conditions: as many of each
of that crop's other classes. Prints the share each group refused and answered, and the check's AUROC between own
photos and each other group (0.5: it cannot tell them apart).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab_defaults import PLANTVILLAGE  # noqa: E402

from leafdoc.advice import shipped_knowledge  # noqa: E402
from leafdoc.inference.predictor import Predictor  # noqa: E402


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(an outside photo scores higher than an inside one), ties counted half."""
    a, b = np.asarray(inside)[None], np.asarray(outside)[:, None]
    return float((b > a).mean() + 0.5 * (b == a).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("data", type=Path)
    ap.add_argument("--per-class", type=int, default=15)
    args = ap.parse_args()
    predictor = Predictor(args.model)
    if predictor.ood is None:
        sys.exit(f"{args.model}: no ood.npz (not-a-leaf check) in this model folder")
    classes = sorted(d.name for d in args.data.iterdir() if d.is_dir())
    crop = classes[0].split("___")[0]
    taught = {f.name for c in classes for f in (args.data / c).iterdir()}
    groups = {
        "own classes, unseen": [
            f for c in classes for f in sorted((PLANTVILLAGE / c).iterdir()) if f.name not in taught
        ][:300],
        "other crops": [
            f
            for d in sorted(PLANTVILLAGE.iterdir())
            if not d.name.startswith(crop)
            for f in sorted(d.iterdir())[: args.per_class]
        ],
        f"{crop}, other conditions": [
            f
            for d in sorted(PLANTVILLAGE.iterdir())
            if d.name.startswith(crop) and d.name not in classes
            for f in sorted(d.iterdir())[: args.per_class]
        ],
    }
    scores = {}
    print("| photos | n | refused | answered | check's AUROC against own |\n|---|---|---|---|---|")
    for name, files in groups.items():
        photos = [predictor.load(f.read_bytes(), f.name) for f in files]
        out = predictor.predict_arrays(np.stack([p.x for p in photos]), predictor.decision_outputs)
        answers = predictor.answer(photos, [f.name for f in files], 1, shipped_knowledge(), outputs=out)
        scores[name] = predictor.ood_scores(out["features"], np.stack([p.x for p in photos]))
        refused = np.mean([a.abstained for a in answers])
        own = scores["own classes, unseen"]
        area = "" if name.startswith("own") else f"{auroc(own, scores[name]):.3f}"
        print(f"| {name} | {len(files)} | {refused:.1%} | {1 - refused:.1%} | {area} |", flush=True)


if __name__ == "__main__":
    main()
