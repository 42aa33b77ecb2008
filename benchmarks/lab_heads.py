"""Heads for a lab's first model, compared on validation photos in seconds: the frozen backbone's features computed
once (with augmented views of each training photo), then many heads trained on them.

    python benchmarks/lab_heads.py [--backbone B] [--sizes 160,224] [--views 0,4,8] [--logistic] [--heldout]
    python benchmarks/lab_heads.py --layers

The photos are benchmarks/lab_defaults.py's: each class's lab photos (split 70/15/15 as `leafdoc train` splits
them: near-duplicates grouped, seed 0), its 45 validation photos (every setting here is scored on these) and,
only with `--heldout` (once, with the settings chosen), its 75 held-out photos. The heads are what
`TrainConfig.head_on_features` trains (dropout, dense softmax, Adam, class weights), in this process; the full
`leafdoc train` run (its fine-tuning, its export, ONNX scoring) is lab_defaults.py's. `--logistic`: instead of
those heads, scikit-learn's logistic regression (class-balanced, C from 0.01 to 10, features raw or standardised), a
quick probe of what a linear head on these features can reach. "flips": the scored photos' features averaged with
their horizontal and vertical mirror images' (test-time flips; leafdoc's serving does not do this). Prints one table
row a setting.
"""

from __future__ import annotations

import argparse
import io
import resource
import sys
import time
import warnings
from hashlib import sha256
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab_defaults import CLASSES, PLANTVILLAGE, parts  # noqa: E402
from lite0 import features, model_and_preparation  # noqa: E402


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def inner_split(files: list[Path], labels: list[str]) -> list[str]:
    """'train' | 'val' | 'test' for each lab photo, as `leafdoc train` cuts them (data/splits.py)."""
    from PIL import Image

    from leafdoc.data.phash import canonical_phash
    from leafdoc.data.splits import split_items

    items = []
    for f, label in zip(files, labels, strict=True):
        data = f.read_bytes()
        ph = canonical_phash(Image.open(io.BytesIO(data)).convert("RGB")) & (2**64 - 1)
        items.append((sha256(data).hexdigest(), label, ph))
    split = split_items(items, seed=0)
    return [split[sha] for sha, _, _ in items]


def train_head(f_tr, y_tr, f_va, y_va, *, epochs, dropout, l2, lr, patience, restore, seed=0):
    """The head TrainConfig.head_on_features trains, on these features: best epoch by `restore` on the inner
    validation photos (None: the last epoch)."""
    import keras

    keras.utils.set_random_seed(seed)
    reg = keras.regularizers.L2(l2) if l2 else None
    inp = keras.Input((f_tr.shape[1],))
    h = keras.layers.Dropout(dropout)(inp)
    out = keras.layers.Dense(3, activation="softmax", kernel_regularizer=reg)(h)
    head = keras.Model(inp, out)
    head.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    counts = np.bincount(y_tr, minlength=3)
    cw = {i: float(len(y_tr) / (3 * c)) for i, c in enumerate(counts)}
    cbs = []
    if restore:
        mode = "max" if "acc" in restore else "min"
        cbs.append(keras.callbacks.EarlyStopping(restore, mode=mode, patience=patience, restore_best_weights=True))
    hist = head.fit(
        f_tr,
        y_tr,
        validation_data=(f_va, y_va),
        epochs=epochs,
        batch_size=16,
        class_weight=cw,
        callbacks=cbs,
        verbose=0,
        shuffle=True,
    )
    return head, len(hist.history["loss"])


def probe(f_tr, y_tr, f_sc, f_sc_flip, y_sc, row: str) -> None:
    from sklearn.linear_model import LogisticRegression

    warnings.filterwarnings("ignore")
    for std in (False, True):
        mu, sd = (f_tr.mean(0), f_tr.std(0) + 1e-6) if std else (0.0, 1.0)
        for c in (0.01, 0.1, 1, 10):
            m = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit((f_tr - mu) / sd, y_tr)
            acc = float(np.mean(m.predict((f_sc - mu) / sd) == y_sc))
            acc_flip = float(np.mean(m.predict((f_sc_flip - mu) / sd) == y_sc))
            name = f"logistic C={c}{', standardised' if std else ''}"
            print(f"{row} {name} | | | {acc:.1%} | {acc_flip:.1%} | |", flush=True)


def lab_photos() -> tuple[list, list, list, dict[str, int], np.ndarray]:
    """Each class's (photo, class) pairs: the lab's own, the validation and the held-out ones; the classes' indices;
    and `leafdoc train`'s inner split of the lab's photos ('train' | 'val' | 'test' each)."""
    lab, val, held = [], [], []
    for cls in CLASSES:
        p = parts(PLANTVILLAGE, cls, 30)
        lab += [(f, cls) for f in p["lab"]]
        val += [(f, cls) for f in p["val"]]
        held += [(f, cls) for f in p["heldout"]]
    index = {c: i for i, c in enumerate(sorted(CLASSES))}
    inner = np.array(inner_split([f for f, _ in lab], [c for _, c in lab]))
    return lab, val, held, index, inner


BLOCKS = ["block4_add", "block6_add", "block10_add", "block14_add"]


def layers_probe() -> None:
    """--layers: Lite0's pooled features from an earlier block beside the last, logistic regression (standardised,
    C 0.01-1) on the validation photos; one line a feature set."""
    import keras
    from sklearn.linear_model import LogisticRegression

    warnings.filterwarnings("ignore")
    lab, val, _, index, inner = lab_photos()
    train = inner == "train"
    y_tr = np.array([index[c] for _, c in lab])[train]
    y_va = np.array([index[c] for _, c in val])

    model, cfg, prep = model_and_preparation(image_size=224, fine_tune_epochs=0)
    backbone, preprocess = model.get_layer("backbone"), model.get_layer("preprocess")
    pooled = [keras.layers.GlobalAveragePooling2D()(backbone.get_layer(n).output) for n in BLOCKS]
    pooled.append(keras.layers.GlobalAveragePooling2D()(backbone.output))
    inner = keras.Model(backbone.input, pooled)
    image = keras.Input((224, 224, 3))
    net = keras.Model(image, inner(preprocess(image)))

    def features(files: list[Path]) -> list[np.ndarray]:
        arrays = np.stack([prep(f) for f in files]).astype(np.float32)
        runs = [net.predict_on_batch(arrays[i : i + 32]) for i in range(0, len(arrays), 32)]
        return [np.concatenate([r[k] for r in runs]) for k in range(len(pooled))]

    f_tr = features([f for (f, _), t in zip(lab, train, strict=True) if t])
    f_va = features([f for f, _ in val])

    def probe(ks: list[int], name: str) -> None:
        x_tr = np.concatenate([f_tr[k] for k in ks], 1)
        x_va = np.concatenate([f_va[k] for k in ks], 1)
        mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-6
        accs = []
        for c in (0.01, 0.1, 1):
            fit = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit((x_tr - mu) / sd, y_tr)
            accs.append(f"C={c}: {np.mean(fit.predict((x_va - mu) / sd) == y_va):.1%}")
        print(name, x_tr.shape[1], " ".join(accs), flush=True)

    last = len(BLOCKS)
    probe([last], "last only")
    for k, name in enumerate(BLOCKS):
        probe([k, last], f"{name} + last")
    probe([2, 3, last], "block10+block14+last")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="efficientnet_lite0", help="a registry backbone (Lite1/2: leafdoc[lite12])")
    ap.add_argument("--sizes", default="160,224")
    ap.add_argument("--head", default="", help="only the heads whose name holds this text")
    ap.add_argument("--views", default="0,4,8,16")
    ap.add_argument("--logistic", action="store_true", help="logistic regression probes instead of Keras heads")
    ap.add_argument("--heldout", action="store_true", help="score the chosen setting on the held-out photos (once)")
    ap.add_argument("--layers", action="store_true", help="probe an earlier block's features beside the last")
    args = ap.parse_args()
    if args.layers:
        layers_probe()
        return

    from leafdoc.train.pipeline import augmenter

    lab, val, held, index, inner = lab_photos()
    y_lab = np.array([index[c] for _, c in lab])
    scored = held if args.heldout else val
    y_sc = np.array([index[c] for _, c in scored])
    print(f"lab photos: {dict(zip(*np.unique(inner, return_counts=True), strict=True))}; scored: {len(scored)}")
    print(f"backbone: {args.backbone}")
    print("| size | views | head | epochs run | inner val acc | scored acc | scored acc, flips | CPU s (features) |")
    print("|---|---|---|---|---|---|---|---|")
    for size in map(int, args.sizes.split(",")):
        t0 = cpu()
        model, cfg, prep = model_and_preparation(backbone=args.backbone, image_size=size, fine_tune_epochs=0)
        a_lab = np.stack([prep(f) for f, _ in lab])
        a_sc = np.stack([prep(f) for f, _ in scored])
        f_plain = features(model, a_lab)
        f_sc = features(model, a_sc)
        f_sc_flip = (f_sc + features(model, a_sc[:, :, ::-1]) + features(model, a_sc[:, ::-1])) / 3
        tr, va = inner == "train", inner == "val"
        feat_cpu = cpu() - t0
        max_views = max(map(int, args.views.split(",")))
        aug = augmenter(0, cfg.zoom_in)
        t1 = cpu()
        f_views = [features(model, a_lab[tr], augment=aug) for _ in range(max_views)]
        view_cpu = (cpu() - t1) / max(max_views, 1)
        for views in map(int, args.views.split(",")):
            f_tr = np.concatenate([f_plain[tr], *f_views[:views]])
            y_tr = np.concatenate([y_lab[tr]] * (views + 1))
            if args.logistic:
                probe(f_tr, y_tr, f_sc, f_sc_flip, y_sc, f"| {size} | {views} |")
                continue
            heads = {
                "now: drop 0.5, 30 ep, best val_loss p8": dict(
                    epochs=30, dropout=0.5, l2=0, lr=1e-3, patience=8, restore="val_loss"
                ),
                "drop 0.5, 200 ep, best val_loss p8": dict(
                    epochs=200, dropout=0.5, l2=0, lr=1e-3, patience=8, restore="val_loss"
                ),
                "drop 0.5, 200 ep, best val_loss p30": dict(
                    epochs=200, dropout=0.5, l2=0, lr=1e-3, patience=30, restore="val_loss"
                ),
                "drop 0.5, 100 ep, last": dict(epochs=100, dropout=0.5, l2=0, lr=1e-3, patience=0, restore=None),
                "drop 0.5, 200 ep, last (the default now)": dict(
                    epochs=200, dropout=0.5, l2=0, lr=1e-3, patience=0, restore=None
                ),
                "drop 0.5, 300 ep, last": dict(epochs=300, dropout=0.5, l2=0, lr=1e-3, patience=0, restore=None),
                "drop 0.5 L2 1e-3, 300 ep, last": dict(
                    epochs=300, dropout=0.5, l2=1e-3, lr=1e-3, patience=0, restore=None
                ),
                "drop 0.5 L2 1e-2, 300 ep, last": dict(
                    epochs=300, dropout=0.5, l2=1e-2, lr=1e-3, patience=0, restore=None
                ),
            }
            for name, hp in heads.items():
                if args.head not in name:
                    continue
                t2 = cpu()
                head, ran = train_head(f_tr, y_tr, f_plain[va], y_lab[va], **hp)
                inner_acc = float(np.mean(head.predict(f_plain[va], verbose=0).argmax(1) == y_lab[va]))
                acc = float(np.mean(head.predict(f_sc, verbose=0).argmax(1) == y_sc))
                acc_flip = float(np.mean(head.predict(f_sc_flip, verbose=0).argmax(1) == y_sc))
                spent = feat_cpu + views * view_cpu + cpu() - t2
                print(
                    f"| {size} | {views} | {name} | {ran} | {inner_acc:.1%} | {acc:.1%} | {acc_flip:.1%} | "
                    f"{spent:.0f} |",
                    flush=True,
                )
                time.sleep(0)


if __name__ == "__main__":
    main()
