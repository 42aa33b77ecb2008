"""Does leafdoc refuse field photos honestly (issue 21 item 3), and still answer lab photos?

For a model folder (default models/starter), on copies of it calibrated in a temporary folder:
- before: the not-a-leaf check alone (as calibrated in the folder's card);
- after: `leafdoc calibrate --field field-corn` (the unlike-training check, inference/field.py), with the
  non-leaf photos of one set and tested on the other (CIFAR-10 train -> flowers; flowers -> CIFAR-10 test);
- as shipped: calibrated with both (flowers and CIFAR-10 train), tested on CIFAR-10 test photos enlarged to
  256 px (nearest neighbour), so that they reach the checks instead of being refused as too small.
For the refused non-leaf photos, the table also says how many were called `not_a_leaf` (the rest
`unlike_training`, i.e. taken for field photos, or poor photos).
Field-corn is split by sha256 (first hex digit 0-7: calibration; 8-f: held out, used here only). PlantVillage:
the model's own test split (split.json), never used for training or calibration.

    .venv/bin/python benchmarks/field_photos.py [MODEL_DIR]     # prints a Markdown table
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
from shared_data import SHARED  # noqa: E402

sys.path.insert(0, str(REPO / "src"))

from leafdoc.imaging.photos import is_image_name  # noqa: E402
from leafdoc.inference.answer import Answer  # noqa: E402
from leafdoc.inference.calibrate import calibrate_model_dir, split_photos  # noqa: E402
from leafdoc.inference.field import calibration_part  # noqa: E402
from leafdoc.inference.predictor import Predictor  # noqa: E402

CIFAR_TEST_LIMIT = 500


def files(folder: Path, limit: int | None = None) -> list[Path]:
    fs = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_name(p))
    if limit and len(fs) > limit:
        fs = [fs[i] for i in sorted(np.random.default_rng(0).choice(len(fs), limit, replace=False))]
    return fs


def measure(model_dir: Path, paths: list[Path], truth: list[str | None]) -> dict:
    p = Predictor(model_dir)
    preds = []
    for start in range(0, len(paths), 64):
        preds += p.predict_files(paths[start : start + 64])
    read = [(pr, t) for pr, t in zip(preds, truth, strict=True) if isinstance(pr, Answer)]
    reasons = Counter(pr.reason for pr, _ in read if pr.abstained)
    answered = [(pr, t) for pr, t in read if not pr.abstained]
    right = sum(1 for pr, t in answered if t is not None and pr.top_k[0].label == t)
    n = len(paths)
    return {
        "n": n,
        "abstained": 1 - len(answered) / n,
        "reasons": {k: v / n for k, v in reasons.items()},
        "answered_accuracy": right / len(answered) if answered and truth[0] is not None else None,
    }


def pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def by_reason(m: dict) -> str:
    counts = {k: round(v * m["n"]) for k, v in sorted(m["reasons"].items())}
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"


def main(model_dir: Path) -> None:
    field_all = files(SHARED / "field-corn")
    held = [f for f in field_all if not calibration_part(f)]
    held_truth = [f.parent.name for f in held]
    split = __import__("json").loads((model_dir / "split.json").read_text())
    labels = __import__("json").loads((model_dir / "labels.json").read_text())
    test = split_photos(SHARED / "plantvillage", split, labels)["test"]
    pv, pv_truth = [f for f, _ in test], [labels[y] for _, y in test]
    flowers = files(SHARED / "flowers")
    cifar = files(SHARED / "cifar10" / "test", CIFAR_TEST_LIMIT)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "cifar-256"
        big.mkdir()
        cifar_big = []
        for f in cifar:
            cifar_big.append(big / f"{f.parent.name}-{f.name}")
            Image.open(f).convert("RGB").resize((256, 256), Image.Resampling.NEAREST).save(cifar_big[-1])
        both = [SHARED / "flowers", SHARED / "cifar10" / "train"]
        configs = [
            ("before: not-a-leaf check only (card as shipped before)", None, None, flowers),
            ("after: --field field-corn --nonleaf cifar10/train", [SHARED / "cifar10" / "train"], True, flowers),
            ("after: --field field-corn --nonleaf flowers", [SHARED / "flowers"], True, cifar),
            ("as shipped: --field field-corn --nonleaf flowers --nonleaf cifar10/train", both, True, cifar_big),
        ]
        for name, nonleaf, with_field, nonleaf_test in configs:
            d = Path(tmp) / "m"
            shutil.rmtree(d, ignore_errors=True)
            shutil.copytree(model_dir, d)
            if with_field:
                calibrate_model_dir(d, SHARED / "plantvillage", nonleaf, field=[SHARED / "field-corn"])
            else:
                import json

                card = json.loads((d / "card.json").read_text())
                card.pop("field", None)
                (d / "card.json").write_text(json.dumps(card))
            f = measure(d, held, held_truth)
            t = measure(d, pv, pv_truth)
            nl = measure(d, nonleaf_test, [None] * len(nonleaf_test))
            nl_name = {id(flowers): "flowers", id(cifar): "CIFAR-10 test"}.get(id(nonleaf_test), "CIFAR-10, 256 px")
            rows.append((name, f, t, nl, nl_name))
            print(f"done: {name}", file=sys.stderr, flush=True)
    print(f"Model: {model_dir.name}; field-corn held out: {len(held)} photos; PlantVillage test split: {len(pv)}\n")
    print(
        "| check | field-corn held out: abstained | as unlike_training / not_a_leaf | accuracy on answered "
        "| PV test abstained | by reason | PV accuracy on answered | non-leaf (held out) abstained | as not_a_leaf |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, f, t, nl, nl_name in rows:
        print(
            f"| {name} | **{pct(f['abstained'])}** | {pct(f['reasons'].get('unlike_training', 0))} / "
            f"{pct(f['reasons'].get('not_a_leaf', 0))} | {pct(f['answered_accuracy'])} | **{pct(t['abstained'])}** "
            f"| {by_reason(t)} | {pct(t['answered_accuracy'])} | {nl_name} ({nl['n']}): **{pct(nl['abstained'])}** "
            f"| {pct(nl['reasons'].get('not_a_leaf', 0))} |"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "models" / "starter")
