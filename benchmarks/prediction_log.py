"""What recording answers (service/predictionlog.py) costs per prediction, in process. Prints a table; not a test.

    python benchmarks/prediction_log.py [--model models/starter] [--n 2000] [--photos DIR]

- `predict`: serving.predict_bytes on a real photo (decode, ONNX Runtime, the not-a-leaf score): one
  prediction without any recording, for scale.
- `record`: what the request path adds, PredictionLog.record (build the row, append under a lock).
- `record + flush`: the request path's part plus the background thread's, per answer, written in batches
  of `--batch` to a SQLite catalog (and with keep_photos, the photo put in the local store first).
Medians of 5 rounds, CPU time of this process (the machine is shared: wall time varies more).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def cpu_per(fn, n: int) -> float:
    t0 = time.process_time()
    fn()
    return (time.process_time() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/starter")
    ap.add_argument("--photos", default="../shared/datasets/plantvillage/Apple___Apple_scab")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=125)  # 250 predictions/s flushed every 0.5 s
    args = ap.parse_args()

    from leafdoc.core.settings import Settings
    from leafdoc.data.catalog import Catalog
    from leafdoc.data.store import open_store
    from leafdoc.inference.baseline import ood_threshold
    from leafdoc.model_versions import Registry
    from leafdoc.service import serving
    from leafdoc.service.predictionlog import PredictionLog

    photos = [p.read_bytes() for p in sorted(Path(args.photos).iterdir())[:20]]
    rows: dict[str, list[float]] = {}

    def measure(home: Path, keep: bool) -> None:
        s = Settings(
            home=home,
            model_dir=Path(args.model),
            keep_photos=keep,
            prediction_buffer=args.n + 1,
            kept_photos_per_client_hour=10**9,
        )  # one client here: measure storing, not the cap
        s.ensure_home()
        catalog, store = Catalog(s.catalog_url), open_store(s.store_location)
        Registry(s, catalog, store).seed()
        holder = serving.ModelHolder(s, Registry(s, catalog, store))
        threshold = ood_threshold(holder.current().predictor.card)
        answers = [serving.predict_bytes(holder, photos[i % len(photos)], "leaf.jpg", 3) for i in range(50)]
        log = PredictionLog(s, catalog, store)
        log._ensure_thread = lambda: None  # flushed by hand below, timed apart

        def predict(k: int = 50) -> None:
            for i in range(k):
                serving.predict_bytes(holder, photos[i % len(photos)], "x", 3)

        def record() -> None:
            for i in range(args.n):
                fresh = answers[i % 50].model_copy(update={"prediction_id": f"r{time.perf_counter_ns()}{i}"})
                log.record(fresh, threshold, None)

        def record_and_flush() -> None:
            for start in range(0, args.n, args.batch):
                for i in range(start, min(start + args.batch, args.n)):
                    answer = {**answers[i % 50], "prediction_id": f"f{time.perf_counter_ns()}{i}"}
                    log.record(answer, threshold, photos[i % len(photos)] if keep else None)
                log.flush()

        for _ in range(5):
            if not keep:
                rows.setdefault("predict", []).append(cpu_per(predict, 50))
                rows.setdefault("record", []).append(cpu_per(record, args.n))
                log._pending.rows.clear()
            name = "record + flush" + (" (keep_photos)" if keep else "")
            rows.setdefault(name, []).append(cpu_per(record_and_flush, args.n))
        catalog.dispose()

    with tempfile.TemporaryDirectory() as tmp:
        measure(Path(tmp) / "plain", keep=False)
        measure(Path(tmp) / "photos", keep=True)
    print(f"{'':32} {'CPU per prediction':>20}")
    for name, values in rows.items():
        print(f"{name:32} {statistics.median(values) * 1e6:17.1f} µs")


if __name__ == "__main__":
    main()
