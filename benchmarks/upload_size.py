"""What downscaling a large photo before upload (upload_size.shrink_for_upload: long side 1024 px, JPEG 90, as the
desktop app and the web page do) saves, and whether the answer stays the same, on the real photos of
../shared/datasets/field-corn larger than 1024 px (phone and camera photos up to 5184 px, most progressive JPEGs).

For each photo: bytes before and after; the server's CPU to turn the bytes into the model's input
(Predictor.load: decode at reduced scale, EXIF, quality checks' measures), median of 3; the client's CPU to
shrink; and the starter's answer (decision and top label, top probability) for both.

    .venv/bin/python benchmarks/upload_size.py [MODEL_DIR]     # prints a Markdown table
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
from shared_data import SHARED  # noqa: E402

sys.path.insert(0, str(REPO / "src"))

from PIL import Image  # noqa: E402

from leafdoc.imaging.upload_size import LONG_SIDE, shrink_for_upload  # noqa: E402
from leafdoc.inference.predictor import Predictor  # noqa: E402


def large_photos(folder: Path) -> list[Path]:
    out = []
    for p in sorted(folder.rglob("*.jp*g")):
        with Image.open(p) as im:
            if max(im.size) > LONG_SIDE:
                out.append(p)
    return out


def cpu(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return statistics.median(times)


def answer(predictor: Predictor, data: bytes, name: str) -> tuple[str, str, float]:
    """(decision: 'answered' or the abstention's reason, top label, top probability), as the service decides."""
    photo = predictor.load(data, name=name)
    out = {k: v[0] for k, v in predictor.predict_arrays(photo.x[None], predictor.decision_outputs).items()}
    d = predictor.decide(out, photo)
    top = predictor.top_k(out["probabilities"], 1)[0]
    return (d.reason if d.abstained else "answered"), top["label"], top["probability"]


def main(model_dir: Path) -> None:
    predictor = Predictor(model_dir)
    photos = large_photos(SHARED / "field-corn")
    rows = []
    for p in photos:
        data = p.read_bytes()
        small, name = shrink_for_upload(data, p.name)
        rows.append(
            {
                "bytes": len(data),
                "small_bytes": len(small),
                "server_cpu": cpu(lambda d=data, n=p.name: predictor.load(d, name=n)),
                "server_cpu_small": cpu(lambda d=small, n=name: predictor.load(d, name=n)),
                "client_cpu": cpu(lambda d=data, n=p.name: shrink_for_upload(d, n), repeat=1),
                "before": answer(predictor, data, p.name),
                "after": answer(predictor, small, name),
            }
        )
    n = len(rows)
    same_decision = sum(r["before"][0] == r["after"][0] for r in rows)
    same_label = sum(r["before"][1] == r["after"][1] for r in rows)
    same_both = sum(r["before"][:2] == r["after"][:2] for r in rows)
    dscore = [abs(r["before"][2] - r["after"][2]) for r in rows]
    med = statistics.median
    print(f"Model: {model_dir.name}; {n} field-corn photos with a long side over {LONG_SIDE} px\n")
    print("| figure | sent as taken | downscaled before upload |")
    print("|---|---|---|")
    print(
        f"| bytes per photo, median (total) | {med(r['bytes'] for r in rows) / 1e6:.2f} MB "
        f"({sum(r['bytes'] for r in rows) / 1e6:.0f} MB) | {med(r['small_bytes'] for r in rows) / 1e6:.2f} MB "
        f"({sum(r['small_bytes'] for r in rows) / 1e6:.1f} MB) |"
    )
    print(
        f"| server CPU bytes -> model input, median per photo | {med(r['server_cpu'] for r in rows) * 1e3:.1f} ms "
        f"| {med(r['server_cpu_small'] for r in rows) * 1e3:.1f} ms |"
    )
    print(f"| client CPU to downscale, median per photo | - | {med(r['client_cpu'] for r in rows) * 1e3:.0f} ms |")
    print(
        f"\nSame answer: decision {same_decision}/{n}, top label {same_label}/{n}, both {same_both}/{n}; "
        f"top probability differs by {med(dscore):.3f} (median), {max(dscore):.3f} (max)."
    )
    for r in rows:
        if r["before"][:2] != r["after"][:2]:
            print(f"- differs: {r['before']} -> {r['after']}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "models" / "starter")
