"""Core benchmark: prints a table; not a test.

    python benchmarks/bench_core.py [--data ../shared/datasets/plantvillage] [--classes 10] [--repeats 3]

Measured side by side in one run, on whatever machine runs it:
1. training images/s of leafdoc's cached pipeline (decode once, memmap, tf.data) against a plain
   `keras.utils.image_dataset_from_directory` pipeline, same model (MobileNetV2, from scratch),
   same image size, batch size and augmentation; medians of steady-state epochs (the first epoch
   of each, which traces the graph, is dropped);
2. inference images/s of ONNX Runtime (leafdoc's serving path) against Keras `model.predict`,
   at batch 1 and batch 32, same model, same preprocessed images;
3. the starter model's accuracy on its held-out test split and its training wall time, read from
   its card (measured by the training run that made it; `--retrain-starter` reruns the recipe).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from leafdoc.modelfolder import read_card

REPO = Path(__file__).resolve().parents[1]
from shared_data import SHARED  # noqa: E402

DEFAULT_DATA = SHARED / "plantvillage"


def subset(data: Path, classes: int, dest: Path) -> Path:
    for c in sorted(p.name for p in data.iterdir() if p.is_dir())[:classes]:
        shutil.copytree(data / c, dest / c)
    return dest


def epoch_rates(model, ds, n_images: int, epochs: int) -> list[float]:
    rates = []
    for _ in range(epochs):
        t = time.perf_counter()
        model.fit(ds, epochs=1, verbose=0)
        rates.append(n_images / (time.perf_counter() - t))
    return rates[1:]  # the first epoch traces the graph


def bench_training(folder: Path, home: Path, size: int, batch: int, epochs: int, alpha: float) -> dict:
    import keras

    from leafdoc.core.settings import Settings
    from leafdoc.data.catalog import Catalog
    from leafdoc.data.ingest import ingest
    from leafdoc.data.store import open_store
    from leafdoc.train.config import TrainConfig
    from leafdoc.train.pipeline import augmenter, directory_dataset, make_dataset
    from leafdoc.train.train_data import prepare_data
    from leafdoc.train.trainer import build_model

    s = Settings(home=home)
    s.ensure_home()
    catalog, store = Catalog(s.catalog_url), open_store(s.store_location)
    ingest(folder, catalog, store, "bench")
    cfg = TrainConfig(
        weights="none", image_size=size, batch_size=batch, alpha=alpha, val_fraction=0.01, test_fraction=0.01
    )
    t = time.perf_counter()
    data = prepare_data(catalog, store, s.cache_dir, "bench", cfg)
    cache_seconds = time.perf_counter() - t
    idx = list(range(len(data.shas)))
    n = len(idx)

    def fresh_model():
        keras.utils.set_random_seed(0)
        m = build_model(cfg, len(data.classes))
        m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        return m

    cached = make_dataset(data.images, idx, data.y, batch, shuffle=True, augment=augmenter(0))
    plain = directory_dataset(folder, size, batch, augment=augmenter(0))
    out = {"cached": [], "plain": [], "n_images": n, "cache_build_seconds": cache_seconds}
    # Alternate the two pipelines so drift in machine load hits both alike.
    for name, ds in (("cached", cached), ("plain", plain), ("cached", cached), ("plain", plain)):
        out[name] += epoch_rates(fresh_model(), ds, n, epochs)
    return out


def bench_inference(model_dir: Path, folder: Path, repeats: int) -> dict:
    import numpy as np

    from leafdoc.inference.predictor import Predictor
    from leafdoc.train.export import load_keras

    predictor = Predictor(model_dir)
    files = sorted(p for c in folder.iterdir() for p in c.iterdir())[:256]
    x = np.stack([predictor.preprocess(f) for f in files]).astype(np.float32)
    model = load_keras(model_dir)
    results = {}
    for batch in (1, 32):
        n = 64 if batch == 1 else 256
        xs = x[:n]
        model.predict(xs[:batch], batch_size=batch, verbose=0)  # warm up both
        predictor.predict_arrays(xs[:batch], ["probabilities"], batch=batch)
        keras_rates, onnx_rates = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            if batch == 1:
                for i in range(n):
                    model.predict(xs[i : i + 1], verbose=0)
            else:
                model.predict(xs, batch_size=batch, verbose=0)
            keras_rates.append(n / (time.perf_counter() - t))
            t = time.perf_counter()
            if batch == 1:
                for i in range(n):
                    predictor.predict_arrays(xs[i : i + 1], ["probabilities"])
            else:
                predictor.predict_arrays(xs, ["probabilities"], batch=batch)
            onnx_rates.append(n / (time.perf_counter() - t))
        results[batch] = {"keras": statistics.median(keras_rates), "onnx": statistics.median(onnx_rates)}
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--classes", type=int, default=10, help="classes of --data used for the pipeline benchmark")
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--alpha", type=float, default=0.75)
    ap.add_argument("--epochs", type=int, default=3, help="epochs per pipeline per round (first is dropped)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", type=Path, default=REPO / "models" / "starter")
    ap.add_argument("--json", type=Path, help="also write the raw figures here")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"error: {args.data} is not a folder; pass --data DIR (one subfolder per class)", file=sys.stderr)
        return 1

    import platform

    with tempfile.TemporaryDirectory() as tmp:
        folder = subset(args.data, args.classes, Path(tmp) / "data")
        train = bench_training(folder, Path(tmp) / "home", args.size, args.batch, args.epochs, args.alpha)
        infer = bench_inference(args.model, folder, args.repeats)
    card = read_card(args.model)

    cached, plain = statistics.median(train["cached"]), statistics.median(train["plain"])
    rows = [
        ("training img/s, cached pipeline", f"{cached:.1f}", ""),
        ("training img/s, image_dataset_from_directory", f"{plain:.1f}", ""),
        ("  ratio cached / plain", f"{cached / plain:.2f}x", "target 2x"),
        ("  one-off cache build (s)", f"{train['cache_build_seconds']:.1f}", f"{train['n_images']} images"),
    ]
    for b, r in infer.items():
        rows += [
            (f"inference img/s batch {b}, ONNX Runtime", f"{r['onnx']:.1f}", ""),
            (f"inference img/s batch {b}, Keras model.predict", f"{r['keras']:.1f}", ""),
            ("  ratio ONNX / Keras", f"{r['onnx'] / r['keras']:.2f}x", "target 2x"),
        ]
    test = card.metrics.test
    rows += [
        ("starter test accuracy", f"{test['accuracy']:.4f}", f"n={test['n']} held out (from card)"),
        ("starter test top-3 / macro F1", f"{test['top3_accuracy']:.4f} / {test['macro_f1']:.4f}", ""),
        ("starter training wall time (s)", f"{card.train_seconds:.0f}", f"best epoch {card.best_epoch}"),
    ]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(
        f"pipeline: {train['n_images']} images, {args.size} px, batch {args.batch}, MobileNetV2 alpha {args.alpha}, "
        f"from scratch; medians of {len(train['cached'])} epochs each"
    )
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure'.ljust(width)} | value | note |")
    print(f"|{'-' * (width + 2)}|-------|------|")
    for name, value, note in rows:
        print(f"| {name.ljust(width)} | {value} | {note} |")
    if args.json:
        args.json.write_text(json.dumps({"training": train, "inference": infer}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
