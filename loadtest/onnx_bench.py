"""Raw ONNX Runtime throughput on the load test's photos, without HTTP: the ceiling the service is held to.

    python -m loadtest.onnx_bench [--model models/starter] [--images DIR] [--seconds 4] [--onnx-variant int8] [--json]

The photos are preprocessed once (decode, resize: `Predictor.preprocess`, as serving does), then
`session.run` is timed on those arrays for a fixed time per configuration: batch size, ONNX Runtime
intra-op threads per session, and callers (threads calling `run` on one session at once; ONNX Runtime
releases the GIL, so 2 callers with 1 thread each use 2 cores the way 2 concurrent requests do).
`load` times what serving does to a photo before the network (decode, quality checks, resize:
`Predictor.load`); `serving path` times bytes -> answer in-process, as one request does without HTTP:
load, ONNX Runtime (the outputs the decision needs), then the decision (softmax, not-a-leaf score),
with NumPy's BLAS on one thread as in the API workers. `serving path b1 t1 x2 processes` runs that path in two
processes at once, each its own model on one thread, and counts both: what the in-process path answers on the whole
machine (2 cores), measured rather than extrapolated from one thread, the figure the service's throughput is held to.
`--path-processes N` times only that path, in N processes: what `loadtest.run` times just before and just after each
measured slice of the service, so that each run's ratio compares figures taken seconds apart.
`--onnx-variant` times the model folder's int8 or fp16 copy instead of model.onnx, as `LEAFDOC_ONNX_VARIANT` makes the
servers serve it (`loadtest.run --onnx-variant` passes its own).
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
PROCESSES = "serving path b1 t1 x2 processes"  # the serving path in 2 processes at once (see _serving_processes)


def _session(model_dir: Path, threads: int, variant: str = "fp32"):
    """The model folder's `variant` (fp32: model.onnx) on `threads` intra-op threads (0: ONNX Runtime's default),
    run whatever the CPU, as the servers run it when LEAFDOC_ONNX_VARIANT names it."""
    from leafdoc.inference.predictor import Predictor

    return Predictor(model_dir, threads=threads or None, variant=variant, any_cpu=True)


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


def _serving_once(p, data: bytes) -> None:
    photo = p.load(data)
    out = p.predict_arrays(photo.x[None], p.decision_outputs)
    p.decide({k: v[0] for k, v in out.items()}, photo)


def _serving_process(model_dir: str, paths: list[str], seconds: float, barrier, out, variant: str = "fp32") -> None:
    """One process of `_serving_processes`: its own model on one thread, warmed up, then timed from the barrier."""
    from leafdoc.service.serving import one_blas_thread

    one_blas_thread()
    raw = [Path(p).read_bytes() for p in paths]
    p = _session(Path(model_dir), 1, variant)
    for data in raw[:16]:
        _serving_once(p, data)
    barrier.wait()
    t0, c0, done = time.perf_counter(), time.process_time(), 0
    while time.perf_counter() - t0 < seconds:
        _serving_once(p, raw[done % len(raw)])
        done += 1
    out.put((done, time.perf_counter() - t0, time.process_time() - c0, p.model_file.name))


def _serving_processes(
    model_dir: Path, paths: list[Path], seconds: float, processes: int = 2, variant: str = "fp32"
) -> tuple[float, float, str]:
    """The serving path in `processes` processes at once (spawned: no model shared across a fork), started together:
    photos/s of all of them together, CPU ms per photo, and the ONNX file they ran."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    args = (str(model_dir), [str(p) for p in paths], seconds, barrier, out, variant)
    procs = [ctx.Process(target=_serving_process, args=args) for _ in range(processes)]
    for proc in procs:
        proc.start()
    got = [out.get(timeout=300 + seconds) for _ in procs]
    for proc in procs:
        proc.join()
    done = sum(g[0] for g in got)
    return sum(g[0] / g[1] for g in got), 1000 * sum(g[2] for g in got) / max(1, done), got[0][3]


def bench(model_dir: Path, folder: Path, seconds: float = 4.0, limit: int = 256, variant: str = "fp32") -> dict:
    from leafdoc.service.serving import one_blas_thread

    one_blas_thread()  # as in the API workers (ONNX Runtime does not use it)
    paths = image_paths(folder, limit=limit)
    raw = [p.read_bytes() for p in paths]
    ref = _session(model_dir, 1, variant)
    arrays = np.stack([ref.preprocess(b) for b in raw]).astype(np.float32)
    n = len(arrays)
    results, cpu = {}, {}
    for name, batch, threads, callers, pre in CONFIGS:
        p = ref if threads == 1 else _session(model_dir, threads, variant)

        def worker(stop, p=p, batch=batch, pre=pre):
            i = done = 0
            while not stop.is_set():
                if pre == "load":
                    p.load(raw[i % n])
                elif pre == "serving":
                    _serving_once(p, raw[i % n])
                else:
                    start = (i * batch) % (n - batch + 1)
                    p.session.run(["probabilities"], {p.input_name: arrays[start : start + batch]})
                i += 1
                done += batch
            return done

        _timed(worker, callers, min(1.0, seconds / 4))  # warm-up
        rate, ms = _timed(worker, callers, seconds)
        results[name], cpu[name] = round(rate, 1), round(ms, 3)
    rate, ms, _ = _serving_processes(model_dir, paths, seconds, variant=variant)
    results[PROCESSES], cpu[PROCESSES] = round(rate, 1), round(ms, 3)
    return {
        "images": len(paths),
        "folder": str(folder),
        "model": str(model_dir),
        "onnx_variant": variant,
        "onnx_file": ref.model_file.name,
        "seconds_per_config": seconds,
        "cpus": os.cpu_count(),
        "img_per_s": results,
        "cpu_ms_per_img": cpu,
    }


def path_only(
    model_dir: Path, folder: Path, seconds: float, processes: int, limit: int = 256, variant: str = "fp32"
) -> dict:
    """Only the serving path, in `processes` processes at once: photos/s of all of them, CPU ms per photo."""
    rate, ms, onnx_file = _serving_processes(model_dir, image_paths(folder, limit=limit), seconds, processes, variant)
    return {
        "processes": processes,
        "seconds": seconds,
        "img_per_s": round(rate, 1),
        "cpu_ms_per_img": round(ms, 3),
        "onnx_file": onnx_file,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=REPO / "models" / "starter")
    ap.add_argument("--images", default=None)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--path-processes", type=int, default=0, help="Time only the serving path, in N processes.")
    ap.add_argument("--onnx-variant", choices=("fp32", "int8", "fp16"), default="fp32", help="The copy to time.")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.path_processes:
        out = path_only(args.model, image_dir(args.images), args.seconds, args.path_processes, 256, args.onnx_variant)
        words = f"serving path b1 t1 in {args.path_processes} process(es)"
        print(json.dumps(out) if args.json else f"{words}: {out['img_per_s']} img/s, {out['cpu_ms_per_img']} ms/img")
        return
    out = bench(args.model, image_dir(args.images), args.seconds, variant=args.onnx_variant)
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out["img_per_s"].items():
            print(f"{k:32s} {v:8.1f} img/s {out['cpu_ms_per_img'][k]:7.2f} CPU ms/img")


if __name__ == "__main__":
    main()
