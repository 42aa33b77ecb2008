"""How many field photos would it take? A learning curve over the number of field photos (issue 53 item 2).

    nice -n 10 .venv/bin/python benchmarks/field_curve.py [--draws 5] [--json benchmarks/out/field_curve.json]
                                                          [--model models/starter]

Issue 53 asks that field photos of corn, tomato and potato be answered >= 50% of the time, right on >= 80% of those
answered, and, where the data here cannot reach that, a learning curve over the number of field photos that says
how many it would take. This probe draws that curve on features no field photo has shaped:
- features: EfficientNet-Lite0's ImageNet weights (frozen, the lab default's 224 px and framing), computed once;
- lab photos: the 150 a class of ../shared/datasets/plantvillage for the 17 classes of those three crops (2,550);
- field photos (field-corn, field-mixed), split by the first hex digit of their sha256 as everywhere in leafdoc:
  0-7 the pool drawn from for training, 8-b validation (the choices below and the "not sure" threshold), c-f the
  figures (never used to choose anything);
- a head: logistic regression (standardised features, class-balanced) on the lab photos and k field photos drawn at
  random from the pool (`--draws` draws a point), the field photos weighted `repeat` times; C and `repeat` are
  chosen once, on the validation photos, with the whole pool;
- "not sure": the lowest confidence at which the head is right on >= 80% of the validation field photos it answers;
  the figures say how many held-out field photos it then answers, and how many of those it gets right.
The answered share is fitted against log2(k) over the points with field photos (least squares) and the fit is
read where it reaches 50%. A frozen ImageNet backbone is weaker than the starter's fine-tuned one (which is why
the starter's own figures are higher at the same k), and a few hundred photos make every figure rough: read the
slope, not the digits. `--model DIR` adds a model folder's own figures on the same held-out photos (its top answer
and confidence, before its checks): how much of what it leaves unanswered is its threshold and how much its ranking.
"""

from __future__ import annotations

import argparse
import json
import statistics
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
from shared_data import SHARED  # noqa: E402

CROPS = ("Corn_(maize)", "Potato", "Tomato")
RIGHT_WHEN_ANSWERED = 0.8


def photos() -> tuple[list[tuple[Path, str]], dict[str, list[tuple[Path, str]]], list[str]]:
    """Lab photos of the three crops, field photos by part (pool / val / test: fieldcrops.FIELD_PARTS), the classes."""
    from leafdoc.inference.fieldcrops import photos_of_part

    classes = sorted(d.name for d in (SHARED / "plantvillage").iterdir() if d.is_dir() and d.name.startswith(CROPS))
    lab = [(f, c) for c in classes for f in sorted((SHARED / "plantvillage" / c).glob("*.jpg"))]
    folders = [SHARED / "field-corn", SHARED / "field-mixed"]
    field = {
        name: photos_of_part(folders, part) for name, part in (("pool", "train"), ("val", "val"), ("test", "test"))
    }
    unknown = {c for part in field.values() for _, c in part} - set(classes)
    if unknown:
        raise SystemExit(f"field classes with no lab photos in {SHARED / 'plantvillage'}: {', '.join(sorted(unknown))}")
    return lab, field, classes


def features(items: list[tuple[Path, str]]) -> np.ndarray:
    import lite0

    model, _, prep = lite0.model_and_preparation(fine_tune_epochs=0)
    return lite0.file_features(model, prep, [f for f, _ in items])


def cached_features(lab, field, classes, cache: Path):
    """Features and class indices of the lab photos and of each part of the field photos, computed once and kept in
    `cache` for the next run (recomputed when the photos differ)."""
    names = [str(f) for f, _ in lab] + [str(f) for part in field.values() for f, _ in part]
    if cache.is_file() and np.load(cache)["names"].tolist() == names:
        kept = np.load(cache)
        x_lab, xf = kept["lab"], {k: kept[k] for k in field}
    else:
        x_lab, xf = features(lab), {k: features(v) for k, v in field.items()}
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, names=np.array(names), lab=x_lab, **xf)
    index = {c: i for i, c in enumerate(classes)}
    y_lab = np.array([index[c] for _, c in lab])
    yf = {k: np.array([index[c] for _, c in v]) for k, v in field.items()}
    return x_lab, y_lab, xf, yf


def fit(x_lab, y_lab, x_field, y_field, c: float, repeat: float):
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([x_lab, x_field]) if len(x_field) else x_lab
    y = np.concatenate([y_lab, y_field]) if len(y_field) else y_lab
    w = np.concatenate([np.ones(len(y_lab)), np.full(len(y_field), repeat)])
    mu, sd = x.mean(0), x.std(0) + 1e-6
    # Class-balanced by sample weight (the classes' total weights made equal), field photos counted `repeat` times.
    totals = np.bincount(y, weights=w, minlength=y.max() + 1)
    w = w * (w.sum() / (np.count_nonzero(totals) * np.maximum(totals[y], 1e-9)))
    head = LogisticRegression(C=c, max_iter=1000).fit((x - mu) / sd, y, sample_weight=w)
    return lambda f: _full_probs(head, (f - mu) / sd, totals.size)


def _full_probs(head, x: np.ndarray, n: int) -> np.ndarray:
    probs = np.zeros((len(x), n))
    probs[:, head.classes_] = head.predict_proba(x)
    return probs


def threshold(probs: np.ndarray, y: np.ndarray, right: float = RIGHT_WHEN_ANSWERED) -> float:
    """The lowest confidence at which at least `right` of the photos answered (confidence >= it) are right."""
    conf = probs.max(1)
    order = np.argsort(-conf, kind="stable")
    hits = np.cumsum(probs.argmax(1)[order] == y[order]) / np.arange(1, len(y) + 1)
    ok = np.nonzero(hits >= right)[0]
    return float(conf[order][ok[-1]]) if len(ok) else float("inf")


def scores(probs: np.ndarray, y: np.ndarray, t: float) -> dict[str, float]:
    """Right if forced to answer; the share answered at threshold `t` (set on other photos) and the photos answered
    and right there; and the largest share of these photos that can be answered, surest first, with at least
    RIGHT_WHEN_ANSWERED of them right (a property of the model's ranking on them: nothing is chosen with it)."""
    answered = probs.max(1) >= t
    right = probs.argmax(1) == y
    order = np.argsort(-probs.max(1), kind="stable")
    hits = np.cumsum(right[order]) / np.arange(1, len(y) + 1)
    ok = np.nonzero(hits >= RIGHT_WHEN_ANSWERED)[0]
    return {
        "forced": float(right.mean()),
        "answered": float(answered.mean()),
        "n_answered": int(answered.sum()),
        "n_answered_right": int((answered & right).sum()),
        "coverage_at_right": float((ok[-1] + 1) / len(y)) if len(ok) else 0.0,
    }


def curve(x_lab, y_lab, xf, yf, c: float, repeat: float, draws: int) -> dict:
    """The learning curve of one setting: medians over `draws` draws of k pool photos at each point, and the fit of
    the share answerable at RIGHT_WHEN_ANSWERED right against log2(k), read where it reaches 50%."""
    pool_n = len(yf["pool"])
    ks = sorted({0, 12, 24, 48, 96, 144, pool_n} - {k for k in (144,) if k >= pool_n})
    rows = []
    for k in ks:
        runs = []
        for draw in range(draws if 0 < k < pool_n else 1):
            pick = np.random.default_rng(draw).permutation(pool_n)[:k]
            head = fit(x_lab, y_lab, xf["pool"][pick], yf["pool"][pick], c, repeat)
            t = threshold(head(xf["val"]), yf["val"])
            runs.append(scores(head(xf["test"]), yf["test"], t) | {"threshold": t})
        row = {"field_photos": k, "draws": len(runs)}
        row |= {key: statistics.median(r[key] for r in runs) for key in ("forced", "answered", "coverage_at_right")}
        n_ans, n_right = sum(r["n_answered"] for r in runs), sum(r["n_answered_right"] for r in runs)
        row["right_when_answered"] = n_right / n_ans if n_ans else None  # pooled over the draws
        rows.append(row)
    pts = [(np.log2(r["field_photos"]), r["coverage_at_right"]) for r in rows if r["field_photos"] > 0]
    slope, intercept = np.polyfit(*zip(*pts, strict=True), 1)
    need = 2 ** ((0.5 - intercept) / slope) if slope > 0 else float("inf")
    return {"rows": rows, "fit": [float(intercept), float(slope)], "field_photos_for_half_answerable": float(need)}


def print_curve(cv: dict, n_test: int, n_val: int, pool_n: int) -> None:
    right = f"{RIGHT_WHEN_ANSWERED:.0%}"
    print(
        f"C={cv['C']}, field photos weighted x{cv['repeat']}. Held-out field photos ({n_test}); medians over the "
        "draws, 'right when answered' pooled over them.\n"
    )
    print(
        f"| field photos trained on | right if forced to answer | most that can be answered with {right} right | "
        f"answered at the threshold set on {n_val} validation photos for {right} right | right when answered there |"
    )
    print("|---|---|---|---|---|")
    for r in cv["rows"]:
        rwa = "none answered" if r["right_when_answered"] is None else f"{r['right_when_answered']:.1%}"
        print(
            f"| {r['field_photos']} | {r['forced']:.1%} | {r['coverage_at_right']:.1%} | {r['answered']:.1%} | {rwa} |"
        )
    intercept, slope = cv["fit"]
    print(
        f"\nmost answerable with {right} right = {intercept:.3f} + {slope:.3f} x log2(field photos): "
        f"{slope:+.1%} a doubling; 50% at about {cv['field_photos_for_half_answerable']:,.0f} field photos (the pool "
        f"here: {pool_n}), on this frozen backbone\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--draws", type=int, default=5, help="random draws of the field photos at each point")
    ap.add_argument("--model", type=Path, help="a model folder to score on the same held-out field photos too")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "out" / "field_curve.json")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    lab, field, classes = photos()
    print(
        f"{len(lab)} lab photos of {len(classes)} classes; field photos: "
        + ", ".join(f"{k} {len(v)}" for k, v in field.items())
    )
    x_lab, y_lab, xf, yf = cached_features(lab, field, classes, args.json.with_name("field_curve_features.npz"))

    # C and the field photos' weight, chosen on the validation photos with the whole pool.
    choices = []
    for c in (0.01, 0.1, 1.0):
        for repeat in (1, 5, 20):
            probs = fit(x_lab, y_lab, xf["pool"], yf["pool"], c, repeat)(xf["val"])
            t = threshold(probs, yf["val"])
            s = scores(probs, yf["val"], t)
            choices.append((s["answered"], s["forced"], c, repeat))
            print(
                f"  C={c} repeat={repeat}: validation forced {s['forced']:.1%}, answered {s['answered']:.1%} "
                f"at {RIGHT_WHEN_ANSWERED:.0%} right"
            )
    # A setting's validation figure moves by one photo (0.8 points) with round-off: features that differ in the 6th
    # digit between two CPUs flipped the choice between two field weights (session 44's Xeon chose x1, a Zen 4 x5).
    # So every setting within one validation photo of the best draws its curve, and the spread between them is shown.
    best = max(choices)
    near = sorted((ch for ch in choices if ch[0] >= best[0] - 1 / len(yf["val"])), reverse=True)
    print(
        f"chosen on validation: C={best[2]}, field photos weighted x{best[3]}; within one validation photo of it: "
        + ", ".join(f"C={c} x{r}" for _, _, c, r in near[1:])
        + "\n"
    )
    curves = [
        curve(x_lab, y_lab, xf, yf, c, repeat, args.draws) | {"C": c, "repeat": repeat} for _, _, c, repeat in near
    ]
    for cv in curves:
        print_curve(cv, len(yf["test"]), len(yf["val"]), len(yf["pool"]))
    needs = [cv["field_photos_for_half_answerable"] for cv in curves]
    print(
        f"50% answerable at {RIGHT_WHEN_ANSWERED:.0%} right: at about {min(needs):,.0f} to {max(needs):,.0f} field "
        f"photos across the {len(curves)} setting(s) validation cannot tell apart"
    )
    n_test = len(yf["test"])
    right = f"{RIGHT_WHEN_ANSWERED:.0%}"
    if args.model:
        from leafdoc.inference.predictor import Predictor

        model = Predictor(args.model)
        x = np.stack([model.load(f).x for f, _ in field["test"]])
        probs = model.predict_arrays(x, ["probabilities"])["probabilities"]
        truth = np.array([model.labels.index(c) for _, c in field["test"]])
        own = scores(probs, truth, float("inf"))
        print(
            f"{args.model}, its top answer before its checks, on the same {n_test} photos: right if forced "
            f"{own['forced']:.1%}, most that can be answered with {right} right {own['coverage_at_right']:.1%}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    result = {"chosen": curves[0], "within_one_validation_photo": curves[1:], "test_photos": n_test}
    args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
