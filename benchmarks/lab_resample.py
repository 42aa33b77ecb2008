"""Heads for a lab's first model over several draws of the lab's photos: is a gain consistent, or one draw's luck?

    python benchmarks/lab_resample.py [--draws 8] [--heads default,trainval,...] [--zoom-in 0.15] [--pool avg]
                                        [--transform sqrt-l2]

benchmarks/lab_heads.py scores each head once, on the 135 validation photos of the one draw of lab photos that
lab_defaults.py uses; at 135 photos one run's spread is as wide as the differences between heads. Here the held-out
photos stay out (never read), and each class's other 75 photos (lab_defaults.py's 30 lab + 45 validation photos) are
drawn again and again: draw 0 is lab_defaults.py's own (its lab photos, scored on its validation photos), each later
draw shuffles the 75 with its own seed into 30 lab photos and 45 scored ones. The lab's 30 are split 70/15/15 as
`leafdoc train` splits them (near-duplicates grouped, seed 0). Lite0's pooled features at 224 px of every photo, and
of 4 augmented views of each (the training augmentation), are computed once (cached under /tmp), and every head is
trained on them in this process, as TrainConfig.head_on_features trains it (dropout, dense softmax, Adam 1e-3,
batch 16, class weights, 200 epochs, the last kept). Prints each draw's accuracy per head, then the mean and how
many draws each head beat the default on. `--pool` pools the backbone's last feature map otherwise than
`leafdoc train`'s average (max, generalised mean, average and max side by side): a lesion is a small part of a leaf.
"""

from __future__ import annotations

import argparse
import io
import random
import resource
import sys
import warnings
from hashlib import sha256
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab_defaults import CLASSES, PLANTVILLAGE, parts  # noqa: E402
from lite0 import features, model_and_preparation  # noqa: E402

VIEWS = 4


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


POOLS = {  # the backbone's last map (N, H, W, C), ReLU6 so never negative -> (N, D)
    "avg": None,  # the model's own average pooling layer, as leafdoc trains
    "max": lambda m: m.max((1, 2)),
    "gem3": lambda m: np.cbrt((m.astype(np.float64) ** 3).mean((1, 2))).astype(np.float32),
    "avg+max": lambda m: np.concatenate([m.mean((1, 2)), m.max((1, 2))], 1),
}


TRANSFORMS = {  # applied to every feature vector (N, D) before any head, training and scored photos alike
    "none": lambda x: x,
    "sqrt": lambda x: np.sqrt(np.maximum(x, 0)),
    "l2": lambda x: x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-12),
    "sqrt-l2": lambda x: TRANSFORMS["l2"](TRANSFORMS["sqrt"](x)),
}


def photo_features(
    files: list[Path],
    zoom_in: float,
    cache: Path,
    pool: str = "avg",
    backbone_from: Path | None = None,
    image_size: int = 224,
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Plain features (N, D), views (VIEWS, N, D) and the near-duplicate hash of each photo, cached. With
    `backbone_from` (a leafdoc model folder), its backbone's weights in place of ImageNet's, copied as
    `leafdoc train --init-from` copies them."""
    if cache.exists():
        z = np.load(cache)
        return z["plain"], z["views"], [int(h) for h in z["hashes"]]
    from PIL import Image

    from leafdoc.data.phash import canonical_phash
    from leafdoc.train.pipeline import augmenter
    from leafdoc.train.trainer import warm_start

    model, _, prep = model_and_preparation(image_size=image_size)
    if backbone_from is not None:
        print(f"backbone: {backbone_from} ({warm_start(model, backbone_from, ['?'])})")
    arrays = np.stack([prep(f) for f in files])
    pooling = POOLS[pool]
    plain = features(model, arrays, pool=pooling)
    aug = augmenter(0, zoom_in)
    views = np.stack([features(model, arrays, augment=aug, pool=pooling) for _ in range(VIEWS)])
    hashes = [canonical_phash(Image.open(io.BytesIO(f.read_bytes())).convert("RGB")) & (2**64 - 1) for f in files]
    np.savez(cache, plain=plain, views=views, hashes=np.array(hashes, dtype=np.uint64))
    return plain, views, hashes


def keras_head(x, y, *, seed=0, epochs=200, dropout=0.5, l2=0.0, smoothing=0.0, lr=1e-3):
    """The head leafdoc train fits on cached features; returns its kernel and bias (a linear map to logits)."""
    import keras

    keras.utils.set_random_seed(seed)
    reg = keras.regularizers.L2(l2) if l2 else None
    inp = keras.Input((x.shape[1],))
    out = keras.layers.Dense(3, activation="softmax", kernel_regularizer=reg)(keras.layers.Dropout(dropout)(inp))
    head = keras.Model(inp, out)
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)
    head.compile(keras.optimizers.Adam(lr), loss)
    counts = np.bincount(y, minlength=3)
    cw = {i: float(len(y) / (3 * c)) for i, c in enumerate(counts)}
    order = np.random.default_rng(seed).permutation(len(x))
    head.fit(x[order], np.eye(3)[y[order]], epochs=epochs, batch_size=16, class_weight=cw, verbose=0)
    kernel, bias = head.layers[-1].get_weights()
    return kernel, bias


def numpy_head(x, y, *, seed=0, epochs=200, dropout=0.5, l2=0.0, smoothing=0.0, lr=1e-3, batch=16):
    """keras_head in numpy (the same steps: Glorot-uniform kernel, dropout, class-weighted cross-entropy averaged
    over the batch, Adam), some 20 times faster on these shapes: for comparing heads over many draws."""
    rng = np.random.default_rng(seed)
    n, d = x.shape
    limit = np.sqrt(6 / (d + 3))
    w, b = rng.uniform(-limit, limit, (d, 3)), np.zeros(3)
    counts = np.bincount(y, minlength=3)
    cw = (len(y) / (3 * counts))[y]
    target = np.eye(3)[y] * (1 - smoothing) + smoothing / 3
    m = [np.zeros_like(w), np.zeros_like(b)]
    v = [np.zeros_like(w), np.zeros_like(b)]
    step = 0
    for _ in range(epochs):
        order = rng.permutation(n)
        for i in range(0, n, batch):
            j = order[i : i + batch]
            keep = rng.random((len(j), d)) >= dropout
            xb = x[j] * keep / (1 - dropout)
            z = xb @ w + b
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            g = (p - target[j]) * cw[j][:, None] / len(j)
            grads = [xb.T @ g + 2 * l2 * w, g.sum(0)]
            step += 1
            for k, (param, grad) in enumerate(zip((w, b), grads, strict=True)):
                m[k] = 0.9 * m[k] + 0.1 * grad
                v[k] = 0.999 * v[k] + 0.001 * grad**2
                mhat, vhat = m[k] / (1 - 0.9**step), v[k] / (1 - 0.999**step)
                param -= lr * mhat / (np.sqrt(vhat) + 1e-7)
    return w, b


def logistic(x, y, c):
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit(x, y)
    return m.coef_.T, m.intercept_


def standardised(fit):
    """A head fitted on standardised features, folded back into one linear map of the raw features."""

    def head(x, y, **kw):
        mu, sd = x.mean(0), x.std(0) + 1e-6
        kernel, bias = fit((x - mu) / sd, y, **kw)
        return kernel / sd[:, None], bias - (mu / sd) @ kernel

    return head


def ensemble(fit, n):
    """n heads (seeds 0..n-1) whose logits are averaged: one linear map again."""

    def head(x, y, seed=0, **kw):
        maps = [fit(x, y, seed=seed * n + s, **kw) for s in range(n)]
        return np.mean([k for k, _ in maps], 0), np.mean([b for _, b in maps], 0)

    return head


# name -> (photos trained on, fit(x, y) -> (kernel, bias))
HEADS = {
    "default": ("train", numpy_head),
    "default keras": ("train", keras_head),
    "trainval": ("train+val", numpy_head),
    "trainval keras": ("train+val", keras_head),
    "trainval smooth0.1": ("train+val", lambda x, y, seed=0: numpy_head(x, y, seed=seed, smoothing=0.1)),
    "trainval l2 1e-3": ("train+val", lambda x, y, seed=0: numpy_head(x, y, seed=seed, l2=1e-3)),
    "trainval l2 1e-2": ("train+val", lambda x, y, seed=0: numpy_head(x, y, seed=seed, l2=1e-2)),
    "trainval drop0.7": ("train+val", lambda x, y, seed=0: numpy_head(x, y, seed=seed, dropout=0.7)),
    "trainval 400ep": ("train+val", lambda x, y, seed=0: numpy_head(x, y, seed=seed, epochs=400)),
    "trainval std": ("train+val", standardised(numpy_head)),
    "trainval ens5": ("train+val", ensemble(numpy_head, 5)),
    "trainval logreg std C0.1": ("train+val", standardised(lambda x, y, seed=0: logistic(x, y, 0.1))),
    "trainval logreg std C1": ("train+val", standardised(lambda x, y, seed=0: logistic(x, y, 1.0))),
    "train logreg std C0.1": ("train", standardised(lambda x, y, seed=0: logistic(x, y, 0.1))),
}
DEFAULT_HEADS = [h for h in HEADS if "keras" not in h]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=8)
    ap.add_argument("--heads", default=",".join(DEFAULT_HEADS))
    ap.add_argument("--zoom-in", type=float, default=0.15, help="the views' most zoom into a photo")
    ap.add_argument("--views", type=int, default=VIEWS, help="views a training photo (up to 4)")
    ap.add_argument("--pool", choices=sorted(POOLS), default="avg", help="how the backbone's last map is pooled")
    ap.add_argument(
        "--transform",
        choices=sorted(TRANSFORMS),
        default="none",
        help="a power transform (sqrt) and/or unit length (l2) of each feature vector before the heads, as few-shot "
        "work on frozen features does",
    )
    ap.add_argument(
        "--backbone-from",
        type=Path,
        help="a leafdoc model folder whose backbone gives the features (as `leafdoc train --init-from` copies it), "
        "in place of Lite0's ImageNet weights",
    )
    ap.add_argument("--image-size", type=int, default=224, help="the photos' size for the backbone")
    ap.add_argument(
        "--data",
        type=Path,
        help="another folder of class folders (with --classes, 3 of them): each class's photos, shuffled once, are "
        "its pool (no held-out part); every draw takes 30 of them as the lab's and scores the rest",
    )
    ap.add_argument("--classes", help="with --data: the 3 class folders, comma-separated")
    ap.add_argument("--seeds", type=int, default=1, help="each head trained with seeds 0..N-1, its accuracy averaged")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    from leafdoc.data.splits import split_items

    classes = args.classes.split(",") if args.data else list(CLASSES)
    pools = {}  # class -> its 75 photos that are not held out: lab_defaults.py's lab photos, then its validation
    for cls in classes:
        if args.data:
            pools[cls] = sorted(f for f in (args.data / cls).iterdir() if f.is_file())
            random.Random(f"pool-{cls}").shuffle(pools[cls])
        else:
            p = parts(PLANTVILLAGE, cls, 30)
            pools[cls] = p["lab"] + p["val"]
    files = [f for cls in classes for f in pools[cls]]
    labels = np.array([i for i, cls in enumerate(sorted(classes)) for _ in pools[cls]])
    t0 = cpu()
    pool = "" if args.pool == "avg" else f"-{args.pool}"
    source = f"-{sha256(str(args.backbone_from.resolve()).encode()).hexdigest()[:8]}" if args.backbone_from else ""
    size = "" if args.image_size == 224 else f"-{args.image_size}px"
    if args.data:
        size += "-" + sha256(f"{args.data.resolve()}:{args.classes}".encode()).hexdigest()[:8]
    cache = Path(f"/tmp/leafdoc-lab-resample-z{args.zoom_in}{pool}{source}{size}.npz")
    plain, views, hashes = photo_features(
        files, args.zoom_in, cache, args.pool, backbone_from=args.backbone_from, image_size=args.image_size
    )
    views = views[: args.views]
    plain, views = TRANSFORMS[args.transform](plain), TRANSFORMS[args.transform](views)
    print(f"features: {plain.shape}, {len(views)} views; {cpu() - t0:.0f} CPU s")
    shas = [sha256(f.read_bytes()).hexdigest() for f in files]
    heads = args.heads.split(",")
    acc = {h: [] for h in heads}
    spent = dict.fromkeys(heads, 0.0)
    print("| draw | inner split | " + " | ".join(heads) + " |")
    print("|---|---|" + "---|" * len(heads))
    for draw in range(args.draws):
        lab, scored = [], []
        for cls in classes:
            pos = [i for i, f in enumerate(files) if f in set(pools[cls])]
            if draw:
                random.Random(f"draw-{draw}-{cls}").shuffle(pos)
            lab += pos[:30]
            scored += pos[30:]
        inner = split_items([(shas[i], str(labels[i]), hashes[i]) for i in lab], seed=0)
        part = np.array([inner[shas[i]] for i in lab])
        lab = np.array(lab)
        row = []
        for h in heads:
            which, fit = HEADS[h]
            rows = lab[np.isin(part, which.split("+"))]
            x = np.concatenate([plain[rows], *views[:, rows]])
            y = np.tile(labels[rows], len(views) + 1)
            t, a = cpu(), 0.0
            for seed in range(args.seeds):
                kernel, bias = fit(x, y, seed=seed)
                a += float(np.mean((plain[scored] @ kernel + bias).argmax(1) == labels[scored])) / args.seeds
            spent[h] += (cpu() - t) / args.seeds
            acc[h].append(a)
            row.append(f"{a:.1%}")
        counts = {p: int((part == p).sum()) for p in ("train", "val", "test")}
        print(f"| {draw} | {counts} | " + " | ".join(row) + " |", flush=True)
    base = np.array(acc[heads[0]])
    print("| mean | | " + " | ".join(f"{np.mean(acc[h]):.1%}" for h in heads) + " |")
    wins = [f"{int((np.array(acc[h]) > base).sum())}/{int((np.array(acc[h]) < base).sum())}" for h in heads]
    print(f"| better/worse than {heads[0]} | | " + " | ".join(wins) + " |")
    print("| head CPU s a draw | | " + " | ".join(f"{spent[h] / args.draws:.1f}" for h in heads) + " |")


if __name__ == "__main__":
    main()
