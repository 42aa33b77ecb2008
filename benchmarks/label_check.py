"""Training photos whose label looks wrong, found without trusting the label: a logistic regression on a frozen
backbone's features, fitted in 5 folds, gives each training photo a probability for its own label from the folds that
did not learn it (out-of-fold). A photo is flagged where that probability is under 5% and another class takes at
least 80% (the rule fixed before any run). Writes the flagged sha256s, one a line, for `scripts/train_starter.py
--drop-photos` (docs/retrain-starter.md, "Tried and not kept: training photos whose label looks wrong left out").

    python benchmarks/label_check.py --features-from OLD_STARTER --split models/starter/split.json \
        --full DATA/plantvillage-full --home runs/starter-home --out drop.txt

- `--features-from`: a model folder whose backbone did not learn these photos (the 30-class starter learnt 3,837 of
  the 24,554). Its model.keras is cut at the pooled features.
- The photos as training saw them: the 160 px cache of the run's data home (framed, lights corrected).
- Field photos (not in the PlantVillage folder) are left as they are.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import time
from pathlib import Path

import numpy as np

OWN_BELOW = 0.05
OTHER_AT_LEAST = 0.8


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--features-from", type=Path, required=True, help="a model folder (its backbone's features)")
    ap.add_argument("--split", type=Path, required=True, help="the run's split.json")
    ap.add_argument("--full", type=Path, required=True, help="PlantVillage-full (class folders)")
    ap.add_argument("--home", type=Path, required=True, help="the run's data home (its 160 px cache)")
    ap.add_argument("--out", type=Path, required=True, help="where the flagged sha256s go")
    args = ap.parse_args()
    t0 = time.monotonic()
    label_of = {
        hashlib.sha256(f.read_bytes()).hexdigest(): d.name
        for d in sorted(args.full.iterdir())
        if d.is_dir()
        for f in d.iterdir()
    }
    (cache,) = sorted((args.home / "cache").glob("starter-v*-160px-*"))
    index = {s: i for i, s in enumerate(json.loads((cache / "index.json").read_text())["shas"])}
    images = np.load(cache / "images.npy", mmap_mode="r")
    train = [s for s in json.loads(args.split.read_text())["train"] if s in label_of]
    classes = sorted(set(label_of.values()))
    y = np.array([classes.index(label_of[s]) for s in train])

    import keras
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    from leafdoc.train.export import load_keras

    model = load_keras(args.features_from)
    features = keras.Model(model.inputs, model.get_layer("pool").output)
    rows = np.array([index[s] for s in train])
    order = np.argsort(rows)  # read the cache in its order
    x = np.zeros((len(train), features.output_shape[-1]), np.float32)
    for b in range(0, len(train), 256):
        idx = order[b : b + 256]
        x[idx] = features.predict([np.asarray(images[rows[idx]], dtype=np.float32)], verbose=0, batch_size=64)
    print(f"features of {len(train)} training photos: {time.monotonic() - t0:.0f} s", flush=True)
    p = np.zeros((len(train), len(classes)), np.float32)
    for a, b in StratifiedKFold(5, shuffle=True, random_state=0).split(x, y):
        scale = StandardScaler().fit(x[a])
        fit = LogisticRegression(C=0.5, max_iter=300, class_weight="balanced").fit(scale.transform(x[a]), y[a])
        p[b] = fit.predict_proba(scale.transform(x[b]))
    own = p[np.arange(len(y)), y]
    flagged = (own < OWN_BELOW) & (p.max(1) >= OTHER_AT_LEAST) & (p.argmax(1) != y)
    accuracy = np.mean(p.argmax(1) == y)
    print(f"out-of-fold accuracy {accuracy:.2%}; flagged {flagged.sum()} ({time.monotonic() - t0:.0f} s)")
    for label, n in collections.Counter(classes[i] for i in y[flagged]).most_common():
        print(f"  {label}: {n}")
    args.out.write_text("".join(f"{s}\n" for s, f in zip(train, flagged, strict=True) if f))


if __name__ == "__main__":
    main()
