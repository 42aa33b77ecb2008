"""The retrained starter's figures (issues 52 and 53), on photos training never saw, as served (ONNX Runtime, every
check), with the previous starter's beside them where it can be measured on the same photos.

    python benchmarks/starter_full.py --model models/starter --full DIR --home runs/starter-home \\
        [--previous OLD_MODEL] [--background DIR] [--field-apple DIR] [--json out.json]
    python benchmarks/starter_full.py --model models/starter --full DIR --lab-only LAB_ONLY_MODEL

- Lab photos: the model's own test split (split.json; PlantVillage-full, built from its manifest: the manifest maps
  sha256 to files), near-duplicates grouped, none seen by this model or the one it warm-started from. Accuracy with
  its 95% interval, macro-F1, per-class recall (the lowest named), ECE; and as served: the share answered and the
  accuracy of what is answered; refused as not a leaf.
- Not a leaf: the held-out part of each non-leaf folder (its photos whose sha256 starts with 8-f: the calibration
  reads only 0-7), PlantVillage's empty sheets among them.
- Field photos of the crops learnt in the field (corn, tomato, potato): the test part of field-corn and field-mixed
  (sha256 c-f), by crop: answered, right when answered (95% intervals), right when forced to answer.
- Field photos of a crop known only from lab photos: field-apple (Plant Pathology 2021; a sample), refused or right.
- `--lab-only`: instead of all that, what the field photos cost on lab photos (issue 53 item 4): the model beside the
  same recipe trained without them (`scripts/train_starter.py` without the field sets), both forced to answer on
  the same test photos: each one's accuracy, the difference with its 95% interval (paired photos), and McNemar's
  exact p over the photos one gets right and the other wrong.
The test figures were read only after every choice had been made on validation photos.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
from shared_data import SHARED  # noqa: E402

sys.path.insert(0, str(REPO / "src"))

from leafdoc.evaluate.metrics import expected_calibration_error  # noqa: E402
from leafdoc.evaluate.significance import mcnemar, wilson_interval  # noqa: E402
from leafdoc.imaging.photos import is_image_name  # noqa: E402
from leafdoc.inference.field import calibration_part  # noqa: E402
from leafdoc.inference.fieldcrops import crop_of, photos_of_part  # noqa: E402
from leafdoc.inference.predictor import Predictor  # noqa: E402


def served(predictor: Predictor, paths: list[Path]) -> list:
    out = []
    for start in range(0, len(paths), 64):
        out += predictor.predict_files(paths[start : start + 64], k=len(predictor.labels))
    return out


def interval(k: int, n: int) -> str:
    if n == 0:
        return "-"
    lo, hi = wilson_interval(k, n)
    return f"{k / n:.1%} ({lo:.1%}-{hi:.1%})"


def lab_figures(predictor: Predictor, photos: list[tuple[Path, str]]) -> dict:
    labels = predictor.labels
    photos = [(p, c) for p, c in photos if c in labels]
    preds = served(predictor, [p for p, _ in photos])
    idx = {c: i for i, c in enumerate(labels)}
    y = np.array([idx[c] for _, c in photos])
    probs = np.zeros((len(preds), len(labels)))
    for i, pr in enumerate(preds):
        for row in pr.top_k:
            probs[i, idx[row.label]] = row.probability
    top = probs.argmax(1)
    right = top == y
    answered = np.array([not pr.abstained for pr in preds])
    reasons = Counter(pr.reason for pr in preds if pr.abstained)
    recall, f1 = {}, []
    for c, i in idx.items():
        tp = int(np.sum((top == i) & (y == i)))
        n_true, n_pred = int(np.sum(y == i)), int(np.sum(top == i))
        if n_true:
            recall[c] = tp / n_true
            prec = tp / n_pred if n_pred else 0.0
            f1.append(0.0 if tp == 0 else 2 * prec * recall[c] / (prec + recall[c]))
    worst = sorted(recall.items(), key=lambda kv: kv[1])[:3]
    return {
        "n": len(photos),
        "accuracy": float(right.mean()),
        "accuracy_text": interval(int(right.sum()), len(right)),
        "macro_f1": float(np.mean(f1)),
        "ece": float(expected_calibration_error(probs, y)),
        "lowest_recall": [(c, round(r, 4), int(np.sum(y == idx[c]))) for c, r in worst],
        "answered": float(answered.mean()),
        "right_when_answered": float(right[answered].mean()) if answered.any() else None,
        "right_when_answered_text": interval(int(right[answered].sum()), int(answered.sum())),
        "refused": {k: v for k, v in reasons.items()},
        "recall": recall,
        "right": right,  # photo by photo, for a paired comparison (not written to --json)
    }


def paired_difference(a: np.ndarray, b: np.ndarray) -> dict:
    """Accuracy of `a` minus that of `b`, right/wrong photo by photo on the same photos: the difference, its 95%
    interval (normal approximation of the paired difference's mean) and McNemar's exact p."""
    d = a.astype(float) - b.astype(float)
    half = 1.959964 * d.std(ddof=1) / np.sqrt(len(d))
    test = mcnemar("".join("1" if x else "0" for x in a), "".join("1" if x else "0" for x in b))
    return {"difference": float(d.mean()), "interval": (float(d.mean() - half), float(d.mean() + half)), **test}


def refusals(predictor: Predictor, paths: list[Path], truth: list[str] | None = None) -> dict:
    preds = served(predictor, paths)
    refused = [pr.abstained for pr in preds]
    out = {
        "n": len(paths),
        "refused": float(np.mean(refused)) if paths else None,
        "reasons": dict(Counter(pr.reason for pr in preds if pr.abstained)),
    }
    if truth is not None:
        tops = [pr.top_k[0].label for pr in preds]
        ok = [t == c for t, c in zip(tops, truth, strict=True)]
        ans = [not r for r in refused]
        k = sum(o for o, a in zip(ok, ans, strict=True) if a)
        out.update(
            answered=interval(sum(ans), len(ans)),
            right_when_answered=interval(k, sum(ans)),
            right_forced=interval(sum(ok), len(ok)),
            right_top3=interval(
                sum(c in [r.label for r in pr.top_k[:3]] for pr, c in zip(preds, truth, strict=True)), len(ok)
            ),
        )
    return out


def heldout(folder: Path, limit: int | None = None) -> list[Path]:
    fs = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_name(p) and not calibration_part(p))
    if limit and len(fs) > limit:
        fs = [fs[i] for i in sorted(np.random.default_rng(0).choice(len(fs), limit, replace=False))]
    return fs


def test_split(model: Path) -> set[str]:
    """The sha256s of the model's test photos (its split.json)."""
    return set(json.loads((model / "split.json").read_text())["test"])


def test_photos(model: Path, full: Path) -> list[tuple[Path, str]]:
    test = test_split(model)
    with (SHARED / "plantvillage-full.SOURCES.tsv").open() as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["sha256"] in test]
    return [(full / r["relative_path"], r["class"]) for r in rows]


def card_figures(model: Path, full: Path) -> int:
    """Each class's recall on the model's test photos, forced to answer as served, into its card's metrics.test
    (`per_class`: recall and photos), the rest of card.json byte for byte: for a starter trained before cards kept
    them (lifecycle/training.py writes them now). Refused when the pass's accuracy is not the card's."""
    photos = test_photos(model, full)
    lab = lab_figures(Predictor(model), photos)
    path = model / "card.json"
    card = json.loads(path.read_text(encoding="utf-8"))
    test = card["metrics"]["test"]
    if lab["n"] != test["n"] or abs(lab["accuracy"] - test["accuracy"]) > 0.5 / test["n"]:
        found = f"{lab['accuracy']:.6f} of {lab['n']}"
        print(f"{path}: this pass found {found}, the card {test['accuracy']} of {test['n']}: not written")
        return 1
    labels = json.loads((model / "labels.json").read_text())
    support = Counter(c for _, c in photos)
    test["per_class"] = {c: {"recall": round(lab["recall"][c], 6), "support": support[c]} for c in labels if support[c]}
    path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{path}: per-class test recall written; lowest {lab['lowest_recall']}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=REPO / "models" / "starter")
    ap.add_argument("--full", type=Path, required=True)
    ap.add_argument("--previous", type=Path, default=None)
    ap.add_argument("--field", type=Path, action="append", help="default: field-corn and field-mixed")
    ap.add_argument("--nonleaf", type=Path, action="append", default=[], help="besides flowers and CIFAR-10 test")
    ap.add_argument("--field-apple", type=Path, default=None)
    ap.add_argument("--apple-limit", type=int, default=600)
    ap.add_argument("--lab-only", type=Path, default=None, help="only compare with this lab-only model on lab photos")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--card-figures",
        action="store_true",
        help="only write each class's test recall into the model's card (metrics.test.per_class), as a model "
        "trained now gets it",
    )
    args = ap.parse_args()
    if args.lab_only:
        return lab_only_cost(args.model, args.lab_only, args.full)
    if args.card_figures:
        return card_figures(args.model, args.full)
    args.field = args.field or [SHARED / "field-corn", SHARED / "field-mixed"]
    args.nonleaf = [SHARED / "flowers", SHARED / "cifar10" / "test", *args.nonleaf]
    models = {"new": Predictor(args.model)}
    if args.previous:
        models["previous"] = Predictor(args.previous)
    photos = test_photos(args.model, args.full)
    result: dict = {}
    for name, p in models.items():
        r = result.setdefault(name, {})
        r["lab"] = lab_figures(p, photos)
        r["nonleaf"] = {str(d): refusals(p, heldout(d, 1000)) for d in args.nonleaf}
        field = photos_of_part(args.field, "test")
        by_crop = defaultdict(list)
        for f, label in field:
            by_crop[crop_of(label)].append((f, label))
        r["field"] = {c: refusals(p, [f for f, _ in fs], [lab for _, lab in fs]) for c, fs in sorted(by_crop.items())}
        r["field"]["all"] = refusals(p, [f for f, _ in field], [lab for _, lab in field])
        if args.field_apple:
            apple = sorted(f for f in args.field_apple.rglob("*") if f.is_file() and is_image_name(f))
            pick = np.random.default_rng(0).choice(len(apple), min(args.apple_limit, len(apple)), replace=False)
            apple = [apple[i] for i in sorted(pick)]
            r["field_apple"] = refusals(p, apple, [f.parent.name for f in apple])
        print(f"== {name}: {args.model if name == 'new' else args.previous}")
        lab = r["lab"]
        print(
            f"lab test photos: n={lab['n']} accuracy {lab['accuracy_text']} macro-F1 {lab['macro_f1']:.4f} "
            f"ECE {lab['ece']:.4f}; answered {lab['answered']:.2%}, right when answered "
            f"{lab['right_when_answered_text']}; refused {lab['refused']}; lowest recall {lab['lowest_recall']}"
        )
        for d, m in r["nonleaf"].items():
            print(f"non-leaf held out {d}: n={m['n']} refused {m['refused']:.1%} {m['reasons']}")
        for c, m in r["field"].items():
            print(
                f"field {c}: n={m['n']} answered {m['answered']}, right when answered {m['right_when_answered']}, "
                f"forced {m['right_forced']}, top-3 {m['right_top3']}, reasons {m['reasons']}"
            )
        if "field_apple" in r:
            m = r["field_apple"]
            print(
                f"field-apple: n={m['n']} refused {m['refused']:.1%} {m['reasons']}, right when answered "
                f"{m['right_when_answered']}, forced {m['right_forced']}"
            )
    if args.json:
        for r in result.values():
            r["lab"].pop("right", None)
        args.json.write_text(json.dumps(result, indent=1, default=str))
    return 0


def lab_only_cost(model: Path, lab_only: Path, full: Path) -> int:
    mine, theirs = test_split(model), test_split(lab_only)
    if theirs != mine:
        raise SystemExit(
            f"{lab_only}: its test split is not {model}'s ({len(theirs & mine)} photos shared of {len(mine)}): "
            "train it with the same --init-from, so that both are scored on photos neither saw."
        )
    photos = test_photos(model, full)
    figures = {}
    for name, folder in (("with field photos", model), ("lab-only", lab_only)):
        figures[name] = lab_figures(Predictor(folder), photos)
        lab = figures[name]
        print(
            f"{name} ({folder}): {lab['n']} test photos, accuracy {lab['accuracy_text']}, macro-F1 "
            f"{lab['macro_f1']:.4f}, lowest recall {lab['lowest_recall']}"
        )
    diff = paired_difference(figures["with field photos"]["right"], figures["lab-only"]["right"])
    lo, hi = diff["interval"]
    print(
        f"with field photos minus lab-only: {100 * diff['difference']:+.2f} points (95% interval {100 * lo:+.2f} to "
        f"{100 * hi:+.2f}); right only with field photos {diff['only_a']}, only lab-only {diff['only_b']}, "
        f"McNemar p = {diff['p']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
