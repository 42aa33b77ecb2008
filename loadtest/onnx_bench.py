"""Raw ONNX Runtime throughput on the load test's photos, without HTTP: the ceiling the service is held to.

    python -m loadtest.onnx_bench [--model models/starter] [--images DIR] [--seconds 4] [--json]

The photos are preprocessed once (decode, resize: `Predictor.preprocess`, as serving does), then
`session.run` is timed on those arrays for a fixed time per configuration: batch size, ONNX Runtime
intra-op threads per session, and callers (threads calling `run` on one session at once; ONNX Runtime
releases the GIL, so 2 callers with 1 thread each use 2 cores the way 2 concurrent requests do).
`load` times what serving does to a photo before the network (decode, quality checks, resize:
`Predictor.load`); `serving path` times bytes -> answer in-process, as one request does without HTTP:
load, ONNX Runtime (the outputs the decision needs), then the decision (softmax, not-a-leaf score),
with NumPy's BLAS on one thread as in the API workers.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

import numpy as np

from loadtest.images import REPO, image_dir, image_paths

# (name, batch, intra-op threads (0: ONNX Runtime's default), callers, what else each call does)
CONFIGS = (
    ("onnx b1 t1 x1", 1, 1, 1, None),
    ("onnx b1 t1 x2", 1, 1, 2, None),
    ("onnx b1 t2 x1", 1, 2, 1, None),
    ("onnx b1 default x1", 1, 0, 1, None),
    ("onnx b8 t1 x2", 8, 1, 2, None),
    ("onnx b32 t2 x1", 32, 2, 1, None),
    ("load x1", 1, 1, 1, "load"),
    ("serving path b1 t1 x1", 1, 1, 1, "serving"),
)


def _session(model_dir: Path, threads: int):
    from leafdoc.inference.predictor import Predictor

    return Predictor(model_dir, threads=threads or None)


def _timed(worker, callers: int, seconds: float) -> tuple[float, float]:
    """Run `worker(stop) -> images done` in `callers` threads for `seconds`: images/s, process CPU ms/image."""
    stop = threading.Event()
    counts = [0] * callers

    def run(i):
        counts[i] = worker(stop)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(callers)]
    t0, c0 = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    done = max(1, sum(counts))
    return done / (time.perf_counter() - t0), 1000 * (time.process_time() - c0) / done


def bench(model_dir: Path, folder: Path, seconds: float = 4.0, limit: int = 256) -> dict:
    from leafdoc.inference.predictor import Predictor
    from leafdoc.service.serving import one_blas_thread

    one_blas_thread()  # as in the API workers (ONNX Runtime does not use it)
    paths = image_paths(folder, limit=limit)
    raw = [p.read_bytes() for p in paths]
    ref = Predictor(model_dir, threads=1)
    arrays = np.stack([ref.preprocess(b) for b in raw]).astype(np.float32)
    n = len(arrays)
    results, cpu = {}, {}
    for name, batch, threads, callers, pre in CONFIGS:
        p = ref if threads == 1 else _session(model_dir, threads)

        def worker(stop, p=p, batch=batch, pre=pre):
            i = done = 0
            while not stop.is_set():
                if pre == "load":
                    p.load(raw[i % n])
                elif pre == "serving":
                    photo = p.load(raw[i % n])
                    out = p.predict_arrays(photo.x[None], p.decision_outputs)
                    p.decide({k: v[0] for k, v in out.items()}, photo)
                else:
                    start = (i * batch) % (n - batch + 1)
                    p.session.run(["probabilities"], {p.input_name: arrays[start : start + batch]})
                i += 1
                done += batch
            return done

        _timed(worker, callers, min(1.0, seconds / 4))  # warm-up
        rate, ms = _timed(worker, callers, seconds)
        results[name], cpu[name] = round(rate, 1), round(ms, 3)
    return {
        "images": len(paths),
        "folder": str(folder),
        "model": str(model_dir),
        "seconds_per_config": seconds,
        "cpus": os.cpu_count(),
        "img_per_s": results,
        "cpu_ms_per_img": cpu,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=REPO / "models" / "starter")
    ap.add_argument("--images", default=None)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    out = bench(args.model, image_dir(args.images), args.seconds)
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out["img_per_s"].items():
            print(f"{k:24s} {v:8.1f} img/s {out['cpu_ms_per_img'][k]:7.2f} CPU ms/img")


if __name__ == "__main__":
    main()
