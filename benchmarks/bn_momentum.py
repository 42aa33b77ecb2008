"""BatchNorm momentum from scratch: Keras applications' 0.999 against leafdoc's 0.9. Prints a table.

    python benchmarks/bn_momentum.py [--data ../shared/datasets/plantvillage] [--classes 10] [--epochs 12]

Same data, split, seed, model and schedule; only the momentum differs. Training accuracy is the
running figure in training mode; validation accuracy is measured in inference mode (moving statistics),
which is what serving uses.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).parent))

from bench_core import DEFAULT_DATA, subset  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--alpha", type=float, default=0.35)
    ap.add_argument("--epochs", type=int, default=12)
    args = ap.parse_args()

    from leafdoc.core.settings import Settings
    from leafdoc.data.catalog import Catalog
    from leafdoc.data.ingest import ingest
    from leafdoc.data.store import open_store
    from leafdoc.train.config import TrainConfig
    from leafdoc.train.train_data import prepare_data
    from leafdoc.train.trainer import _seed_everything, build_model, fit

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = subset(args.data, args.classes, Path(tmp) / "data")
        s = Settings(home=Path(tmp) / "home")
        s.ensure_home()
        catalog, store = Catalog(s.catalog_url), open_store(s.store_location)
        ingest(folder, catalog, store, "bn")
        for momentum in (0.999, 0.99, 0.9):
            cfg = TrainConfig(
                weights="none",
                image_size=args.size,
                alpha=args.alpha,
                epochs=args.epochs,
                bn_momentum=momentum,
                patience=args.epochs,
            )
            data = prepare_data(catalog, store, s.cache_dir, "bn", cfg)
            _seed_everything(cfg.seed)
            model = build_model(cfg, len(data.classes))
            result = fit(model, cfg, data)
            last = result["history"][-1]
            rows.append(
                (momentum, last["accuracy"], last["val_accuracy"], max(h["val_accuracy"] for h in result["history"]))
            )
    print(
        f"MobileNetV2 alpha {args.alpha}, {args.size} px, from scratch, {args.classes} PlantVillage classes, "
        f"{args.epochs} epochs"
    )
    print(
        "| BN momentum | train acc (training mode), last epoch | val acc (inference mode), last epoch | best val acc |"
    )
    print("|---|---|---|---|")
    for m, tr, va, best in rows:
        print(f"| {m} | {tr:.3f} | {va:.3f} | {best:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
