"""How to handle PlantVillage-full's imbalance (35x between its largest and smallest class): class weights in the loss,
balanced sampling, or nothing, compared on validation photos (issue 52 item 2).

    python benchmarks/imbalance.py --home runs/starter-home [--init-from models/starter] [--epochs 20]

Each method trains the same head (dropout, dense softmax) on the same features: the frozen backbone of the model the
starter warm-starts from, over the training and validation photos of the starter's own split (the data home that
scripts/train_starter.py made). Features are computed once and kept under the data home's cache. Printed: validation
accuracy, macro-F1, the lowest recall, and the recall of the five smallest classes, for each method, with a 95%
interval. The test photos are not read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def head_scores(f_tr, y_tr, f_va, n_classes: int, weights, repeat, epochs: int, seed: int = 0) -> np.ndarray:
    import keras

    keras.utils.set_random_seed(seed)
    if repeat is not None:
        idx = np.repeat(np.arange(len(y_tr)), repeat)
        f_tr, y_tr = f_tr[idx], y_tr[idx]
    inp = keras.Input((f_tr.shape[1],))
    out = keras.layers.Dense(n_classes, activation="softmax")(keras.layers.Dropout(0.5)(inp))
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(f_tr, y_tr, epochs=epochs, batch_size=32, class_weight=weights, verbose=0, shuffle=True)
    return model.predict(f_va, batch_size=512, verbose=0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--init-from", type=Path, default=REPO / "models" / "starter")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    os.environ["LEAFDOC_HOME"] = str(args.home.resolve())
    from leafdoc.core.settings import Settings
    from leafdoc.evaluate.significance import wilson_interval
    from leafdoc.lifecycle.training import prepare
    from leafdoc.lifecycle.workspace import Workspace
    from leafdoc.train.cached import _feature_net, _features
    from leafdoc.train.config import TrainConfig
    from leafdoc.train.train_data import class_weights
    from leafdoc.train.trainer import build_model, warm_start

    cfg = TrainConfig(
        backbone="efficientnet_lite0", image_size=160, framing="leaf", white_balance="light-range", seed=0
    )
    split = json.loads((args.init_from / "split.json").read_text())
    seen = frozenset(split["train"]) | frozenset(split["val"])
    ws = Workspace.open(Settings())
    field = frozenset(hashlib.sha256(p.read_bytes()).hexdigest() for p in (args.home / "field-train").rglob("*.*"))
    data = prepare(ws, "starter", cfg, seen=seen, train_only=field)  # the split scripts/train_starter.py trains on
    tr, va = data.indices("train"), data.indices("val")
    store = ws.cache_dir / "features" / f"imbalance-{args.init_from.resolve().name}-{len(tr)}-{len(va)}.npz"
    if store.is_file():
        z = np.load(store)
        f_tr, f_va = z["train"], z["val"]
    else:
        model = build_model(cfg, len(data.classes), ws.cache_dir / "weights")
        warm_start(model, args.init_from, data.classes)
        net = _feature_net(model)
        f_tr, f_va = _features(net, data.images, tr), _features(net, data.images, va)
        store.parent.mkdir(parents=True, exist_ok=True)
        np.savez(store, train=f_tr, val=f_va)
    y_tr, y_va, n = data.y[tr], data.y[va], len(data.classes)
    counts = np.bincount(y_tr, minlength=n)
    smallest = np.argsort(counts)[:5]
    methods = {
        "none": (None, None),
        "class weights": (class_weights(y_tr, n), None),
        "balanced sampling": (None, np.maximum(1, np.round(counts.max() / counts[y_tr])).astype(int)),
    }
    rows = {}
    ratio = counts.max() / counts.min()
    print(f"{len(tr)} training and {len(va)} validation photos, {n} classes; largest/smallest {ratio:.0f}x")
    for name, (w, rep) in methods.items():
        pred = head_scores(f_tr, y_tr, f_va, n, w, rep, args.epochs).argmax(1)
        right = pred == y_va
        recall = {c: float(np.mean(pred[y_va == c] == c)) for c in range(n) if np.any(y_va == c)}
        f1 = []
        for c in recall:
            tp = np.sum((pred == c) & (y_va == c))
            p = tp / max(1, np.sum(pred == c))
            f1.append(0 if tp == 0 else 2 * p * recall[c] / (p + recall[c]))
        lo, hi = wilson_interval(int(right.sum()), len(right))
        worst = min(recall, key=recall.get)
        rows[name] = {
            "val_accuracy": float(right.mean()),
            "interval": [lo, hi],
            "macro_f1": float(np.mean(f1)),
            "lowest_recall": [data.classes[worst], recall[worst]],
            "smallest": {data.classes[c]: [int(counts[c]), recall.get(int(c))] for c in smallest},
        }
        print(
            f"{name:18s} val accuracy {right.mean():.4f} ({lo:.4f}-{hi:.4f}) macro-F1 {np.mean(f1):.4f} "
            f"lowest recall {recall[worst]:.3f} ({data.classes[worst]}); smallest classes: "
            + ", ".join(f"{data.classes[c]} ({counts[c]}) {recall.get(int(c), float('nan')):.3f}" for c in smallest)
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
