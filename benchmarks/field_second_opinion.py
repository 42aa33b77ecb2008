"""A second opinion for field photos (issue 53 item 2): would a head on frozen ImageNet features, beside the starter,
answer half the field photos of corn, tomato and potato, right on 80% of those answered?

    nice -n 10 .venv/bin/python benchmarks/field_second_opinion.py [--model models/starter]
                                                                    [--json benchmarks/out/field_second_opinion.json]

The starter answers a field photo of a crop it learnt in the field when its confidence reaches the card's
`field.learnt.min_confidence`, set on the validation field photos (sha256 8-b) for 85% right (fieldcrops.py). Its
ranking of field photos is what limits it; field_curve.py found that a logistic-regression head on EfficientNet-Lite0's
frozen ImageNet features, trained on the shared lab photos of those crops and the 192 training field photos (0-7),
ranks the validation photos better. This probe tries that head as a second opinion on the photos the unlike-training
check calls field photos of a learnt crop (every other photo keeps the starter's answer and rules):
- the starter alone, and with its answer averaged over the photo and its mirror image;
- the head alone;
- both, their probabilities averaged (arithmetic or geometric mean), with or without the mirror image;
for each head setting (C, the field photos' weight). Each is held to a threshold set as the card's is, on the 119
validation photos, for 85% right (and, for comparison, 80%); the setting is chosen by the share of validation photos
it then answers; the held-out photos (c-f) are scored once, with every setting, and choose nothing. Two engines on
every field photo cost a second backbone pass (about 3 ms) and a second network in the model folder (~14 MB).
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
from field_curve import REPO, cached_features, fit, photos

from leafdoc.evaluate.significance import wilson_interval
from leafdoc.inference.fieldcrops import DEFAULT_PRECISION, choose_threshold, crop_of, field_readings

PRECISIONS = (DEFAULT_PRECISION, 0.80)


def mean(s, h):
    return (s + h) / 2


def geometric(s, h):
    g = np.sqrt(s * h)
    return g / np.maximum(g.sum(1, keepdims=True), 1e-12)


def readings(predictor, items, crops):
    """The starter's probabilities (as is, and averaged with the mirror image's), which photos the field threshold
    decides, which the lab rules answer, and the truth."""
    files = [f for f, _ in items]
    probs, flagged, lab_answered = field_readings(predictor, files, crops)
    mirrored = np.stack(
        [
            predictor.predict_arrays(predictor.load(f).x[None, :, ::-1], ["probabilities"])["probabilities"][0]
            for f in files
        ]
    )
    truth = np.array([predictor.labels.index(c) for _, c in items])
    return {"plain": probs, "flip": (probs + mirrored) / 2, "flagged": flagged, "lab": lab_answered, "y": truth}


def score(r: dict, probs: np.ndarray, t: float) -> dict:
    """Answered and right at threshold `t`: a flagged photo is answered by `probs` when its top reaches `t`; any other
    keeps the starter's answer and lab rules."""
    answered = np.where(r["flagged"], probs.max(1) >= t, r["lab"])
    right = np.where(r["flagged"], probs.argmax(1), r["plain"].argmax(1)) == r["y"]
    return {"n": len(right), "answered": int(answered.sum()), "right": int((answered & right).sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=REPO / "models" / "starter")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "out" / "field_second_opinion.json")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    from leafdoc.inference.predictor import Predictor

    lab, field, classes = photos()
    x_lab, y_lab, xf, yf = cached_features(lab, field, classes, args.json.with_name("field_curve_features.npz"))
    predictor = Predictor(args.model)
    crops = sorted({crop_of(c) for c in classes})
    cols = [predictor.labels.index(c) for c in classes]
    r = {part: readings(predictor, field[part], crops) for part in ("val", "test")}
    print(f"{len(r['val']['y'])} validation and {len(r['test']['y'])} held-out field photos; {len(lab)} lab photos")

    def head_probs(head, part):
        out = np.zeros_like(r[part]["plain"])
        out[:, cols] = head(xf[part])
        return out

    candidates = {
        "the starter": lambda part: r[part]["plain"],
        "the starter, mirrored too": lambda part: r[part]["flip"],
    }
    for c in (0.01, 0.1, 1.0):
        for repeat in (1, 5, 20):
            head = fit(x_lab, y_lab, xf["pool"], yf["pool"], c, repeat)
            h = {part: head_probs(head, part) for part in r}
            name = f"C={c} x{repeat}"
            candidates[f"the head alone, {name}"] = lambda part, h=h: h[part]
            for how, combine in (("mean", mean), ("geometric mean", geometric)):
                for src in ("plain", "flip"):
                    label = f"both, {how}{', mirrored too' if src == 'flip' else ''}, {name}"
                    candidates[label] = lambda part, h=h, combine=combine, src=src: combine(r[part][src], h[part])

    rows = []
    for name, probs_of in candidates.items():
        row = {"candidate": name}
        for precision in PRECISIONS:
            pv, pt = probs_of("val"), probs_of("test")
            rv = r["val"]
            t, _ = choose_threshold(pv.max(1), pv.argmax(1) == rv["y"], rv["flagged"], rv["lab"], precision)
            row[precision] = {"threshold": t, "val": score(rv, pv, t), "test": score(r["test"], pt, t)}
        rows.append(row)

    def share(s):
        return s["answered"] / s["n"]

    def line(row, precision):
        v, t = row[precision]["val"], row[precision]["test"]
        lo, hi = wilson_interval(t["answered"], t["n"])
        rwa = f"{t['right'] / t['answered']:.1%}" if t["answered"] else "none answered"
        return f"{share(v):.1%} | {share(t):.1%} ({lo:.0%}-{hi:.0%}) | {rwa}"

    for precision in PRECISIONS:
        ranked = sorted(rows, key=lambda row: -share(row[precision]["val"]))
        best = share(ranked[0][precision]["val"])
        near = [row for row in ranked if share(row[precision]["val"]) >= best - 1 / len(r["val"]["y"])]
        print(f"\nThreshold set on the validation photos for {precision:.0%} right.\n")
        print("| candidate | validation answered | held-out answered (95% interval) | held-out right when answered |")
        print("|---|---|---|---|")
        shown = [rows[0], rows[1]] + [row for row in ranked if row["candidate"].startswith("the head")][:1]
        for row in shown + [row for row in near if row not in shown]:
            mark = " (chosen on validation)" if row is ranked[0] else ""
            print(f"| {row['candidate']}{mark} | {line(row, precision)} |")
        tests = [share(row[precision]["test"]) for row in near]
        print(
            f"\n{len(near)} candidate(s) within one validation photo of the best: held-out answered "
            f"{min(tests):.1%} to {max(tests):.1%}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps([{**row, **{str(k): row.pop(k) for k in PRECISIONS}} for row in rows], indent=1))


if __name__ == "__main__":
    main()
