"""What the int8 and fp16 copies of a model (`leafdoc export MODEL --format onnx-int8|onnx-fp16`) cost and
what they change, beside model.onnx. Prints Markdown tables; not a test.

    .venv/bin/python benchmarks/quantized.py MODEL_DIR [MODEL_DIR ...] [--runs 300] [--json OUT]

It runs int8 copies on any CPU, also x86 CPUs without VNNI, where leafdoc itself serves model.onnx instead
(leafdoc/cpuflags.py): there the figures show what the copy would answer.

Per model folder and variant (fp32 = model.onnx, and each copy card.json lists under `onnx_variants`):
- ms per photo: ONNX Runtime, batch 1, one intra-op thread (as the API serves one request), the decision
  outputs (`probabilities`, `features`); every (model, variant) timed in turns, round after round, so a busy
  machine slows them alike; the median.
- accuracy on the model's own test split (split.json's test photos, the same photos for every variant; never
  used for training, calibration or quantisation), top-1 over all photos (abstentions count by their top-1).
- agreement with model.onnx on those photos: share of identical top-1, largest absolute probability difference.
- abstention rates through the whole decision (threshold, not-a-leaf, unlike-training checks as calibrated in
  the card) on the test split, on the flowers (all 600 are the not-a-leaf check's calibration photos: in-sample
  for it) and on the held-out half of field-corn (sha256 first hex digit 8-f), and the share of photos whose
  decision (answered label, or abstention reason) is identical to model.onnx's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
from shared_data import SHARED  # noqa: E402

sys.path.insert(0, str(REPO / "src"))

from timing import timed_in_turns  # noqa: E402

from leafdoc.core.errors import LeafdocError  # noqa: E402
from leafdoc.imaging.photos import is_image_name  # noqa: E402
from leafdoc.inference.calibrate import split_photos  # noqa: E402
from leafdoc.inference.field import calibration_part  # noqa: E402
from leafdoc.inference.predictor import Predictor  # noqa: E402


def files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_image_name(p))


def photo_sets(p: Predictor, model_dir: Path, data: Path) -> dict[str, tuple[list, list[int | None]]]:
    split = json.loads((model_dir / "split.json").read_text())
    test = split_photos(data, split, p.labels)["test"]
    field = [f for f in files(SHARED / "field-corn") if not calibration_part(f.read_bytes())]
    sets = {
        "test": ([f for f, _ in test], [y for _, y in test]),
        "flowers": (files(SHARED / "flowers"), None),
        "field-corn held out": (field, None),
    }
    out = {}
    for name, (paths, truth) in sets.items():
        photos, ys = [], []
        for i, f in enumerate(paths):
            try:
                photos.append(p.load(f))
                ys.append(truth[i] if truth else None)
            except LeafdocError:
                continue
        out[name] = (photos, ys)
    return out


def decisions(p: Predictor, photos: list) -> tuple[np.ndarray, list[str]]:
    out = p.predict_arrays(np.stack([ph.x for ph in photos]), p.decision_outputs)
    said = []
    for i, photo in enumerate(photos):
        d = p.decide({k: v[i] for k, v in out.items()}, photo)
        said.append(f"abstain:{d.reason}" if d.abstained else p.labels[int(out["probabilities"][i].argmax())])
    return out["probabilities"], said


def timings(sessions: dict[str, Predictor], runs: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    feeds = {
        k: {p.input_name: rng.integers(0, 255, (1, p.size, p.size, 3)).astype(np.float32)} for k, p in sessions.items()
    }
    return timed_in_turns(
        {k: (lambda p=p, feed=feeds[k]: p.session.run(p.decision_outputs, feed)) for k, p in sessions.items()}, runs
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--data", type=Path, default=SHARED / "plantvillage", help="The folder the models trained on.")
    ap.add_argument("--runs", type=int, default=300, help="Timed calls per model and variant (in rounds of 10).")
    ap.add_argument("--json", type=Path, help="Also write the figures here.")
    args = ap.parse_args()

    rows, sessions = [], {}
    for model_dir in args.models:
        card = json.loads((model_dir / "card.json").read_text())
        variants = ["fp32", *sorted(card.get("onnx_variants", {}))]
        predictors = {v: Predictor(model_dir, threads=1, variant=v, any_cpu=True) for v in variants}
        sets = photo_sets(predictors["fp32"], model_dir, args.data)
        reference = {name: decisions(predictors["fp32"], photos) for name, (photos, _) in sets.items()}
        for v, p in predictors.items():
            key = f"{model_dir.name} ({card['input']['size']} px) {v}"
            sessions[key] = p
            row = {"model": key, "mb": round(p.model_file.stat().st_size / 1e6, 1)}
            for name, (photos, ys) in sets.items():
                probs, said = decisions(p, photos) if v != "fp32" else reference[name]
                ref_probs, ref_said = reference[name]
                row[f"{name} n"] = len(photos)
                row[f"{name} abstained"] = float(np.mean([s.startswith("abstain:") for s in said]))
                row[f"{name} same decision"] = float(np.mean([a == b for a, b in zip(said, ref_said, strict=True)]))
                if name == "test":
                    row["test accuracy"] = float(np.mean(probs.argmax(1) == np.asarray(ys)))
                    row["top1 agreement"] = float(np.mean(probs.argmax(1) == ref_probs.argmax(1)))
                    row["max prob diff"] = float(np.abs(probs - ref_probs).max())
            rows.append(row)
    ms = timings(sessions, args.runs)
    for row in rows:
        row["ms per photo"] = ms[row["model"]]
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    print(f"| model, variant | MB | ms/photo (median of {args.runs}) | test acc | top-1 = fp32 | max Δp |", end="")
    print(" abstained: test | flowers | field-corn held out | same decision as fp32: test / flowers / field |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['mb']} | {r['ms per photo']:.2f} | {r['test accuracy']:.1%} (n={r['test n']}) "
            f"| {r['top1 agreement']:.1%} | {r['max prob diff']:.3f} | {r['test abstained']:.1%} "
            f"| {r['flowers abstained']:.1%} (n={r['flowers n']}) "
            f"| {r['field-corn held out abstained']:.1%} (n={r['field-corn held out n']}) "
            f"| {r['test same decision']:.1%} / {r['flowers same decision']:.1%} "
            f"/ {r['field-corn held out same decision']:.1%} |"
        )


if __name__ == "__main__":
    main()
