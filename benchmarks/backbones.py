"""EfficientNet-Lite0, Lite1 and Lite2 with their ImageNet weights, side by side: how well their frozen features
tell the starter's 30 PlantVillage classes apart, and what one diagnosis costs on the CPU. Prints a table;
not a test.

    nice -n 10 python benchmarks/backbones.py [--configs efficientnet_lite0:160,...] [--runs 100]

For each backbone and image size (160, 224 and the backbone's native size): the real leafdoc model with
`--weights imagenet` (preprocessing, backbone, pooling, an untrained head) is exported with leafdoc's ONNX
export; its pooled `features` output for every photo of the starter's TRAIN split fits a logistic regression
(features standardised, C=1, fixed in advance), scored on the starter's VALIDATION split. The test split is
never read: it stays for judging the model finally chosen, not for choosing. Photos go through
leafdoc.imaging.photos.preprocess at that size, as serving does. Features are cached in benchmarks/out/backbones/.

Cost: ONNX Runtime, one intra-op thread, batch 1 (as one API request is served), the full serving graph,
median milliseconds per call, the configurations timed in turns so a busy machine slows them alike.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
from shared_data import SHARED  # noqa: E402

OUT = REPO / "benchmarks" / "out" / "backbones"
DEFAULT_CONFIGS = (
    "efficientnet_lite0:160,efficientnet_lite0:224,efficientnet_lite1:240,efficientnet_lite2:260,"
    "efficientnet_lite1:160,efficientnet_lite2:160,efficientnet_lite1:224,efficientnet_lite2:224"
)


def split_files(model: Path, data: Path, sources: Path) -> dict[str, list[tuple[Path, str]]]:
    """{'train': [(file, class)], 'val': [...]} from the model folder's split.json (sha256 lists)."""
    split = json.loads((model / "split.json").read_text())
    with sources.open() as fh:
        by_sha = {r["sha256"]: (data / r["relative_path"], r["class"]) for r in csv.DictReader(fh, delimiter="\t")}
    out = {}
    for part in ("train", "val"):
        missing = [s for s in split[part] if s not in by_sha]
        if missing:
            raise SystemExit(f"{len(missing)} {part} photos of {model}/split.json are not in {sources}")
        out[part] = [by_sha[s] for s in split[part]]
    return out


def export(backbone: str, size: int, dest: Path) -> Path:
    from leafdoc.core.settings import Settings
    from leafdoc.train.config import TrainConfig
    from leafdoc.train.export import export_onnx
    from leafdoc.train.trainer import build_model

    path = dest / f"{backbone}-{size}.onnx"
    if not path.is_file():
        cfg = TrainConfig(backbone=backbone, weights="imagenet", image_size=size)
        model = build_model(cfg, 30, Settings().cache_dir / "weights")
        export_onnx(model, path, size)
    return path


def session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def features(onnx_path: Path, files: list[Path], size: int, threads: int, batch: int = 32) -> np.ndarray:
    from leafdoc.imaging.photos import preprocess

    sess = session(onnx_path, threads)
    name = sess.get_inputs()[0].name
    out = []
    for i in range(0, len(files), batch):
        x = np.stack([preprocess(f, size) for f in files[i : i + batch]]).astype(np.float32)
        out.append(sess.run(["features"], {name: x})[0])
    return np.concatenate(out)


def probe(train_x, train_y, val_x, val_y) -> dict:
    """Logistic regression on frozen features: fitted on train, scored on validation."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))
    clf.fit(train_x, train_y)
    proba = clf.predict_proba(val_x)
    classes = clf.classes_
    top3 = np.argsort(-proba, axis=1)[:, :3]
    val_idx = np.searchsorted(classes, val_y)
    return {
        "val_accuracy": float((classes[proba.argmax(1)] == val_y).mean()),
        "val_top3": float((top3 == val_idx[:, None]).any(1).mean()),
        "n_train": len(train_y),
        "n_val": len(val_y),
    }


def cost(paths: dict[str, tuple[Path, int]], runs: int) -> dict[str, float]:
    """Median ms per call, batch 1, one thread, configurations in turns (rounds of 10 calls)."""
    rng = np.random.default_rng(0)
    sessions = {k: (session(p, 1), size) for k, (p, size) in paths.items()}
    for sess, size in sessions.values():  # warm-up
        x = rng.integers(0, 255, (1, size, size, 3)).astype(np.float32)
        for _ in range(5):
            sess.run(["probabilities"], {sess.get_inputs()[0].name: x})
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(max(1, runs // 10)):
        for key, (sess, size) in sessions.items():
            feed = {sess.get_inputs()[0].name: rng.integers(0, 255, (1, size, size, 3)).astype(np.float32)}
            for _ in range(10):
                start = time.perf_counter()
                sess.run(["probabilities"], feed)
                times[key].append((time.perf_counter() - start) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default=DEFAULT_CONFIGS, help="backbone:size,... in the order to run them")
    ap.add_argument("--model", type=Path, default=REPO / "models" / "starter", help="Its split.json is used.")
    ap.add_argument("--data", type=Path, default=SHARED / "plantvillage")
    ap.add_argument("--sources", type=Path, default=SHARED / "plantvillage.SOURCES.tsv")
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads for computing the features")
    ap.add_argument("--runs", type=int, default=100, help="Timed calls per configuration")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--reuse", action="store_true", help="Keep accuracies already in results.json; only time")
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    parts = split_files(args.model, args.data, args.sources)
    labels = {p: np.array([c for _, c in parts[p]]) for p in parts}
    results_file = args.out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    paths = {}
    for config in args.configs.split(","):
        backbone, size = config.split(":")[0], int(config.split(":")[1])
        paths[config] = (export(backbone, size, args.out), size)
        cached = args.out / f"{backbone}-{size}.features.npz"
        if cached.is_file():
            feats = dict(np.load(cached))
        else:
            start = time.perf_counter()
            feats = {p: features(paths[config][0], [f for f, _ in parts[p]], size, args.threads) for p in parts}
            seconds = time.perf_counter() - start
            print(f"{config}: features of {sum(map(len, feats.values()))} photos in {seconds:.0f} s")
            np.savez(cached, **feats)
        if "val_accuracy" not in results.get(config, {}) or not args.reuse:
            scores = probe(feats["train"], labels["train"], feats["val"], labels["val"])
            results[config] = {**results.get(config, {}), **scores}
        results_file.write_text(json.dumps(results, indent=2))
        print(config, results[config], flush=True)
    for config, ms in cost(paths, args.runs).items():
        results[config]["ms_per_image"] = ms
    results_file.write_text(json.dumps(results, indent=2))

    first = next(iter(paths))
    print(f"| backbone, size | val accuracy (frozen features) | val top-3 | ms per image | vs {first} |")
    print("|---|---|---|---|---|")
    for config in paths:
        r = results[config]
        print(
            f"| {config.replace(':', ', ')} px | {r['val_accuracy']:.1%} | {r['val_top3']:.1%} | "
            f"{r['ms_per_image']:.1f} | {r['ms_per_image'] / results[first]['ms_per_image']:.2f}x |"
        )


if __name__ == "__main__":
    main()
