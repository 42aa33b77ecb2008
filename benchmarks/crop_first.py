"""Crop first: how much does saying which crop the leaf is of help? Prints a table; not a test.

    python benchmarks/crop_first.py [--model models/starter] [--data ../shared/datasets/plantvillage]
                                    [--field DIR ...] [--json OUT]

On the model's own held-out test photos (its split.json's `test` part, by sha256, among the class folders of
--data: never trained on, never used to choose anything), each photo is answered twice by the serving path
(Predictor.answer, every check of the card): without a crop, and with its true crop given (`crop`, as a grower
would say it). For each, over all photos and per crop:
- top-1: the share of photos whose top label (answered or not) is right;
- answered: the share the model answers (does not abstain, for any reason);
- right when answered: the share of answered photos that are right (selective accuracy);
- other crop: the share whose top label is of another crop than the photo's (impossible with the crop given).
Nothing here is tuned: the thresholds are the card's, set on the validation part at training time. Then each photo
with every other crop given (a grower's slip), with and without the rule for a crop the model all but rules out
(cropfirst.crop_mismatch: its share was chosen on the field photos' validation part, not on these).

The same is measured on field photos (leaves on the plant; --field, default the shared field-corn and field-mixed),
their test part only (sha256 first hex digit c-f: inference/fieldcrops.FIELD_PARTS), which no training or threshold
of leafdoc reads; a model trained on lab photos refuses most of them (unlike_training) with or without the crop.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
from shared_data import SHARED  # noqa: E402

DEFAULT_DATA = SHARED / "plantvillage"
FIELD = ("field-corn", "field-mixed")


def figures(rows: list[dict]) -> dict:
    n = len(rows)
    answered = [r for r in rows if not r["abstained"]]
    return {
        "n": n,
        "top1": round(sum(r["top_right"] for r in rows) / n, 4) if n else None,
        "answered": round(len(answered) / n, 4) if n else None,
        "right_when_answered": round(sum(r["top_right"] for r in answered) / len(answered), 4) if answered else None,
        "other_crop": round(sum(r["other_crop"] for r in rows) / n, 4) if n else None,
    }


def held_out(predictor, model: Path, data: Path) -> list[tuple[Path, int]]:
    """The model's test photos (split.json, by sha256) among data's class folders: (photo, label index)."""
    from leafdoc.inference.calibrate import split_photos

    split = json.loads((model / "split.json").read_text())
    photos = split_photos(data, split, predictor.labels)["test"]
    if len(photos) != len(split["test"]):
        missing = len(split["test"]) - len(photos)
        print(f"note: {missing} test photos of split.json are not under {data}", file=sys.stderr)
    return photos


def field_test(predictor, folders: list[Path]) -> list[tuple[Path, int]]:
    """The test part (sha256 c-f) of field photos in class folders named by the model's labels."""
    from leafdoc.inference.fieldcrops import photos_of_part

    index = {label: i for i, label in enumerate(predictor.labels)}
    found = photos_of_part([f for f in folders if f.is_dir()], "test")
    return [(path, index[label]) for path, label in found if label in index]


def read_photos(predictor, photos: list[tuple[Path, int]]):
    """Each photo read and run through the model in batches of 32: (path, true label, photo, its outputs)."""
    for start in range(0, len(photos), 32):
        chunk = photos[start : start + 32]
        loaded = [predictor.load(path) for path, _ in chunk]
        out = predictor.predict_arrays(np.stack([ph.x for ph in loaded]), predictor.decision_outputs)
        for i, ((path, y), photo) in enumerate(zip(chunk, loaded, strict=True)):
            yield path, predictor.labels[y], photo, {n: v[i : i + 1] for n, v in out.items()}


def measure(predictor, photos: list[tuple[Path, int]]) -> dict:
    from leafdoc.advice import shipped_knowledge
    from leafdoc.inference.fieldcrops import crop_name, crop_of

    knowledge = shipped_knowledge()
    rows: dict[str, list[dict]] = {"without": [], "with": []}
    for path, truth, photo, one in read_photos(predictor, photos):
        for how, crop in (("without", None), ("with", crop_of(truth))):
            [a] = predictor.answer([photo], [path.name], 1, knowledge, outputs=one, crop=crop)
            top = a.top_k[0].label
            rows[how].append(
                {
                    "crop": crop_name(crop_of(truth)),
                    "top_right": top == truth,
                    "abstained": a.abstained,
                    "reason": a.reason,
                    "other_crop": crop_of(top) != crop_of(truth),
                }
            )
    result: dict = {"n": len(photos), "overall": {}, "per_crop": {}, "reasons": {}}
    for how, rs in rows.items():
        result["overall"][how] = figures(rs)
        by_crop = defaultdict(list)
        for r in rs:
            by_crop[r["crop"]].append(r)
        for crop, crs in sorted(by_crop.items()):
            result["per_crop"].setdefault(crop, {})[how] = figures(crs)
        reasons = defaultdict(int)
        for r in rs:
            if r["abstained"]:
                reasons[r["reason"]] += 1
        result["reasons"][how] = dict(sorted(reasons.items()))
    labels_per_crop = defaultdict(int)
    for label in predictor.labels:
        labels_per_crop[crop_name(crop_of(label))] += 1
    result["labels_per_crop"] = dict(labels_per_crop)
    return result


def wrong_crop(predictor, photos: list[tuple[Path, int]]) -> dict:
    """Each photo with every other crop given (a grower's slip): how many of those answers are given, and how many
    name another condition than the photo's (a sure answer of the wrong disease, or "healthy" for a sick leaf), with
    the rule for a crop the model all but rules out (cropfirst.crop_mismatch) and without it."""
    from leafdoc.advice import shipped_knowledge
    from leafdoc.inference import cropfirst
    from leafdoc.inference.fieldcrops import crop_of

    knowledge = shipped_knowledge()
    crops = cropfirst.crops_of(predictor.labels)
    counts = {how: {"pairs": 0, "answered": 0, "other_condition": 0} for how in ("without_rule", "with_rule")}
    rule = cropfirst.CROP_MISMATCH_SHARE
    for path, truth, photo, one in read_photos(predictor, photos):
        for crop in crops:
            if crop == crop_of(truth):
                continue
            for how, share in (("without_rule", 0.0), ("with_rule", rule)):
                cropfirst.CROP_MISMATCH_SHARE = share
                try:
                    [a] = predictor.answer([photo], [path.name], 1, knowledge, outputs=one, crop=crop)
                finally:
                    cropfirst.CROP_MISMATCH_SHARE = rule
                c = counts[how]
                c["pairs"] += 1
                if not a.abstained:
                    c["answered"] += 1
                    named = cropfirst.condition_name(a.top_k[0].label).lower()
                    c["other_condition"] += named != cropfirst.condition_name(truth).lower()
    return counts


def wrong_crop_line(counts: dict) -> str:
    def one(c: dict) -> str:
        return f"answered {pct(c['answered'] / c['pairs'])}, another condition {pct(c['other_condition'] / c['pairs'])}"

    n, before, after = counts["with_rule"]["pairs"], one(counts["without_rule"]), one(counts["with_rule"])
    return f"given a wrong crop ({n} photo-and-crop pairs): without the rule {before}; with it {after}"


def pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def table(result: dict) -> str:
    head = (
        "| crop (labels) | photos | top-1 without | top-1 with | answered without | answered with | right when "
        "answered without | right when answered with | other crop without |"
    )
    lines = [head, "|" + "---|" * 9]
    rows = [("**all**", result["overall"])] + [
        (f"{crop} ({result['labels_per_crop'][crop]})", v) for crop, v in result["per_crop"].items()
    ]
    for name, v in rows:
        w, c = v["without"], v["with"]
        lines.append(
            f"| {name} | {w['n']} | {pct(w['top1'])} | {pct(c['top1'])} | {pct(w['answered'])} | "
            f"{pct(c['answered'])} | {pct(w['right_when_answered'])} | {pct(c['right_when_answered'])} | "
            f"{pct(w['other_crop'])} |"
        )
    lines.append("")
    lines.append(f"abstentions by reason: without {result['reasons']['without']}, with {result['reasons']['with']}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=REPO / "models" / "starter")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--field", type=Path, nargs="*", default=[DEFAULT_DATA.parent / f for f in FIELD])
    ap.add_argument("--json", type=Path, help="Also write the figures here.")
    args = ap.parse_args()
    from leafdoc.inference.predictor import Predictor

    predictor = Predictor(args.model)
    results = {"model": str(args.model), "lab": measure(predictor, held_out(predictor, args.model, args.data))}
    print(f"{args.model}: {results['lab']['n']} held-out test photos, answered without and with the true crop given")
    print(table(results["lab"]))
    results["lab"]["wrong_crop"] = wrong_crop(predictor, held_out(predictor, args.model, args.data))
    print(wrong_crop_line(results["lab"]["wrong_crop"]))
    field = field_test(predictor, args.field)
    if field:
        results["field"] = measure(predictor, field)
        print(f"\nfield photos, test part (sha256 c-f): {len(field)} photos of {', '.join(f.name for f in args.field)}")
        print(table(results["field"]))
        results["field"]["wrong_crop"] = wrong_crop(predictor, field)
        print(wrong_crop_line(results["field"]["wrong_crop"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
