"""Does leafdoc say "not sure" to photos that are not leaves, and answer the leaves it should?

On the starter model (models/starter) and its own split (split.json):
1. Scores compared: softmax confidence, energy (logsumexp of the logits), Mahalanobis distance of the
   features, Mahalanobis distance of the colour histogram, and leafdoc's combination of the last two.
   AUROC against flowers and CIFAR-10 test photos, and the share refused at each score's own threshold
   (refusing 1% of validation leaf photos).
2. The shipped decision, end to end (quality checks, not-a-leaf, unsure), with held-out non-leaf classes:
   calibrated with CIFAR-10 (train) photos and tested on flowers, and calibrated with flowers and tested on
   CIFAR-10 (test). On the PlantVillage test split (never used for training or calibration): the share it
   abstains on, and accuracy on the answered photos against accuracy on all.

    .venv/bin/python benchmarks/ood.py            # writes benchmarks/out/ood.md and ood.json
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
from shared_data import SHARED  # noqa: E402

OUT = REPO / "benchmarks" / "out"
sys.path.insert(0, str(REPO / "src"))

from leafdoc.inference.calibrate import calibrate_model_dir, split_photos  # noqa: E402
from leafdoc.inference.ood import OodScorer  # noqa: E402
from leafdoc.inference.predictor import Predictor  # noqa: E402

CIFAR_TEST_LIMIT = 1000


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(a random outside photo scores above a random inside photo), ties counted half."""
    from scipy.stats import rankdata

    ranks = rankdata(np.r_[inside, outside])
    n_in, n_out = len(inside), len(outside)
    return float((ranks[n_in:].sum() - n_out * (n_out + 1) / 2) / (n_in * n_out))


def files(folder: Path, limit: int | None = None) -> list[Path]:
    fs = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if limit and len(fs) > limit:
        fs = [fs[i] for i in np.random.default_rng(0).choice(len(fs), limit, replace=False)]
    return fs


def outputs(p: Predictor, paths: list[Path]) -> dict:
    xs = np.stack([p.preprocess(f) for f in paths])
    out = p.predict_arrays(xs, ["probabilities", "logits", "features"])
    out["images"] = xs
    return out


def compare_scores(model_dir: Path, photos: dict, sets: dict[str, list[Path]]) -> list[dict]:
    p = Predictor(model_dir)
    o = {k: outputs(p, [f for f, _ in photos[k]]) for k in ("train", "val", "test")}
    o.update({k: outputs(p, v) for k, v in sets.items()})
    y_train = np.array([y for _, y in photos["train"]])
    scorer = OodScorer.fit(o["train"]["features"], y_train, o["train"]["images"])

    def comp(k):
        return scorer.components(o[k]["features"], o[k]["images"])

    def lse(z):
        m = z.max(1, keepdims=True)
        return (m + np.log(np.exp(z - m).sum(1, keepdims=True)))[:, 0]

    methods = {
        "softmax confidence": lambda k: -o[k]["probabilities"].max(1),
        "energy (logits)": lambda k: -lse(o[k]["logits"]),
        "Mahalanobis, features": lambda k: comp(k)[:, 0],
        "Mahalanobis, colour histogram": lambda k: comp(k)[:, 1],
        "features + colour (equal weights)": lambda k: comp(k).sum(1),
    }
    rows = []
    for name, score in methods.items():
        v, t = score("val"), score("test")
        th = np.quantile(v, 0.99, method="higher")
        row = {"score": name, "test_refused": float(np.mean(t > th))}
        for k in sets:
            row[f"auroc_{k}"] = auroc(t, score(k))
            row[f"refused_{k}"] = float(np.mean(score(k) > th))
        rows.append(row)
    return rows


def decisions(model_dir: Path, paths: list[Path]) -> list[dict]:
    return [a.model_dump(mode="json") for a in Predictor(model_dir).predict_files(paths, 1)]


def held_out(model_dir: Path, data: Path, photos: dict, calib: Path, test_name: str, test: list[Path]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        m = Path(tmp) / "model"
        shutil.copytree(model_dir, m)
        (m / "ood.npz").unlink(missing_ok=True)
        section = calibrate_model_dir(m, data, [calib], drop_field=True)  # the not-a-leaf check alone
        pv = decisions(m, [f for f, _ in photos["test"]])
        other = decisions(m, test)
    labels = json.loads((model_dir / "labels.json").read_text())
    truth = [labels[y] for _, y in photos["test"]]
    answered = [r for r in pv if not r["abstained"]]
    correct_all = np.mean([r["top_k"][0]["label"] == t for r, t in zip(pv, truth, strict=True)])
    correct_ans = np.mean([r["top_k"][0]["label"] == t for r, t in zip(pv, truth, strict=True) if not r["abstained"]])
    reasons = {}
    for r in other:
        reasons[r["reason"] or "answered"] = reasons.get(r["reason"] or "answered", 0) + 1
    pv_reasons = {}
    for r in pv:
        if r["abstained"]:
            pv_reasons[r["reason"]] = pv_reasons.get(r["reason"], 0) + 1
    return {
        "calibrated_on": f"{calib.parent.name}/{calib.name}",
        "tested_on": test_name,
        "nonleaf_n": len(other),
        "nonleaf_abstained": float(np.mean([r["abstained"] for r in other])),
        "nonleaf_not_a_leaf": float(np.mean([r["reason"] == "not_a_leaf" for r in other])),
        "nonleaf_reasons": reasons,
        "pv_test_n": len(pv),
        "pv_abstained": 1 - len(answered) / len(pv),
        "pv_reasons": pv_reasons,
        "pv_accuracy_all": float(correct_all),
        "pv_accuracy_answered": float(correct_ans),
        "threshold": section["threshold"],
        "weights": section["weights"],
        "val_refused": section["val_refused"],
    }


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def main() -> None:
    t0 = time.time()
    model_dir = REPO / "models" / "starter"
    data = SHARED / "plantvillage"
    labels = json.loads((model_dir / "labels.json").read_text())
    photos = split_photos(data, json.loads((model_dir / "split.json").read_text()), labels)
    flowers = files(SHARED / "flowers")
    cifar_test = files(SHARED / "cifar10" / "test", CIFAR_TEST_LIMIT)
    rows = compare_scores(model_dir, photos, {"flowers": flowers, "cifar10": cifar_test})
    ho = [
        held_out(model_dir, data, photos, SHARED / "cifar10" / "train", "flowers", flowers),
        held_out(model_dir, data, photos, SHARED / "flowers", "cifar10/test", cifar_test),
    ]
    result = {"scores": rows, "held_out": ho, "seconds": round(time.time() - t0)}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "ood.json").write_text(json.dumps(result, indent=2))
    md = [
        "# Not-a-leaf benchmark (starter model, PlantVillage test split vs flowers and CIFAR-10)",
        "",
        "## Scores compared (threshold: refuse 1% of validation leaf photos)",
        "",
        "| score | AUROC flowers | AUROC CIFAR-10 | refused: flowers | refused: CIFAR-10 | refused: PV test |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        md.append(
            f"| {r['score']} | {r['auroc_flowers']:.3f} | {r['auroc_cifar10']:.3f} | {pct(r['refused_flowers'])} "
            f"| {pct(r['refused_cifar10'])} | {pct(r['test_refused'])} |"
        )
    md += [
        "",
        "## The shipped decision, non-leaf classes held out of calibration",
        "",
        "| calibrated on | tested on | abstained (any reason) | of which not_a_leaf | PV test abstained "
        "| PV accuracy, all | PV accuracy, answered |",
        "|---|---|---|---|---|---|---|",
    ]
    for h in ho:
        md.append(
            f"| {h['calibrated_on']} | {h['tested_on']} ({h['nonleaf_n']}) | {pct(h['nonleaf_abstained'])} "
            f"| {pct(h['nonleaf_not_a_leaf'])} | {pct(h['pv_abstained'])} of {h['pv_test_n']} "
            f"| {pct(h['pv_accuracy_all'])} | {pct(h['pv_accuracy_answered'])} |"
        )
    md += ["", "Reasons on the non-leaf photos: " + "; ".join(f"{h['tested_on']}: {h['nonleaf_reasons']}" for h in ho)]
    md += ["Reasons on the PlantVillage test photos: " + "; ".join(f"{h['pv_reasons']}" for h in ho)]
    md += ["", f"Run time {result['seconds']} s."]
    (OUT / "ood.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
