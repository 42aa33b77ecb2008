"""Evaluate the starter model on its own held-out test split, with the report a person reads.

    python benchmarks/starter_eval.py [--model models/starter] [--data ../shared/datasets/plantvillage]
                                      [--report benchmarks/out/starter-report]

The model folder's split.json lists the sha256 of every test image (never seen in training or model
selection); plantvillage.SOURCES.tsv maps sha256 to files. The test images are copied into class
folders and evaluated with `leafdoc evaluate` (ONNX Runtime, the serving path).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
from shared_data import SHARED  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=REPO / "models" / "starter")
    ap.add_argument("--data", type=Path, default=SHARED / "plantvillage")
    ap.add_argument("--sources", type=Path, default=SHARED / "plantvillage.SOURCES.tsv")
    ap.add_argument("--report", type=Path, default=REPO / "benchmarks" / "out" / "starter-report")
    args = ap.parse_args()
    split = json.loads((args.model / "split.json").read_text())
    test = set(split["test"])
    with args.sources.open() as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["sha256"] in test]
    if len(rows) != len(test):
        print(f"error: {len(test) - len(rows)} test images are not in {args.sources}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        for r in rows:
            dest = Path(tmp) / r["class"]
            dest.mkdir(exist_ok=True)
            shutil.copy2(args.data / r["relative_path"], dest)
        cmd = [
            sys.executable,
            "-m",
            "leafdoc.cli.main",
            "evaluate",
            str(args.model),
            "--data",
            tmp,
            "--report",
            str(args.report),
            "--json",
        ]
        result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    print(
        f"starter model on its held-out test split: n={result['n']}, accuracy {result['accuracy']:.4f}, "
        f"top-3 {result['top3_accuracy']:.4f}, macro F1 {result['macro_f1']:.4f}, ECE {result['ece']:.4f}"
    )
    for pair in result["most_confused"][:5]:
        print(f"  {pair['count']} x {pair['true']} -> {pair['predicted']}")
    print(f"report: {args.report / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
