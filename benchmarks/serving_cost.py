"""What a diagnosis costs on the CPU, per backbone and input size: ONNX Runtime, one intra-op thread,
batch 1 (as one API request is served). Prints a table; not a test.

    python benchmarks/serving_cost.py [--sizes 128,160,224] [--runs 200] [--model DIR ...]

Each configuration is a real leafdoc model (backbone + head, built untrained: the cost does not depend on
the weights) exported with leafdoc's own ONNX export; `--model DIR` adds existing model folders (e.g. the
starter). The configurations are timed in turns, round after round, so a busy machine slows them alike;
the table gives each one's median milliseconds per image and its ratio to the first model folder given.
`--int8` adds each untrained build's int8 copy (leafdoc.inference.quantize, calibrated on 50 PlantVillage photos:
the ranges do not change the cost, only the answers, which are not looked at here).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from shared_data import SHARED

from leafdoc.modelfolder import ONNX_FILE, read_card


def build(backbone: str, size: int, dest: Path, alpha: float = 1.0) -> Path:
    from leafdoc.train.config import TrainConfig
    from leafdoc.train.export import export_onnx
    from leafdoc.train.trainer import build_model

    cfg = TrainConfig(backbone=backbone, weights="none", image_size=size, alpha=alpha)
    model = build_model(cfg, 30)
    return export_onnx(model, dest / f"{backbone}-{size}.onnx", size)


def int8_copy(path: Path, size: int) -> Path:
    from leafdoc.imaging.photos import preprocess
    from leafdoc.inference.quantize import quantize_int8

    photos = sorted((SHARED / "plantvillage").rglob("*.jpg"))
    images = np.stack([preprocess(p, size) for p in photos[:: max(1, len(photos) // 50)][:50]])
    dest = path.with_suffix(".int8.onnx")
    quantize_int8(path, dest, images)
    return dest


def session(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="128,160,224")
    ap.add_argument("--backbones", default="efficientnet_lite0")
    ap.add_argument("--model", action="append", default=[], help="A model folder to time beside them.")
    ap.add_argument("--runs", type=int, default=200, help="Timed calls per configuration (in rounds of 10).")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--int8", action="store_true", help="Also time an int8 copy of every untrained build.")
    args = ap.parse_args()

    configs: dict[str, tuple] = {}
    for folder in args.model:
        card = read_card(Path(folder))
        name = f"{Path(folder).name} ({card.backbone}, {card.input.size} px)"
        configs[name] = (session(Path(folder) / ONNX_FILE), card.input.size)
    with tempfile.TemporaryDirectory() as tmp:
        for backbone in args.backbones.split(","):
            for size in map(int, args.sizes.split(",")):
                path = build(backbone, size, Path(tmp))
                configs[f"{backbone}, {size} px (untrained)"] = (session(path), size)
                if args.int8:
                    configs[f"{backbone}, {size} px (untrained) int8"] = (session(int8_copy(path, size)), size)
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {k: [] for k in configs}
    for sess, size in configs.values():  # warm-up
        x = rng.integers(0, 255, (1, size, size, 3)).astype(np.float32)
        for _ in range(5):
            sess.run(["probabilities"], {sess.get_inputs()[0].name: x})
    for _ in range(max(1, args.runs // 10)):
        for name, (sess, size) in configs.items():
            x = rng.integers(0, 255, (1, size, size, 3)).astype(np.float32)
            feed = {sess.get_inputs()[0].name: x}
            for _ in range(10):
                start = time.perf_counter()
                sess.run(["probabilities"], feed)
                times[name].append((time.perf_counter() - start) * 1000)
    first = next(iter(times))
    rows = {k: statistics.median(v) for k, v in times.items()}
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"| model | ms per image (median of {len(times[first])}) | vs {first} |")
    print("|---|---|---|")
    for name, ms in rows.items():
        print(f"| {name} | {ms:.2f} | {ms / rows[first]:.2f}x |")


if __name__ == "__main__":
    main()
