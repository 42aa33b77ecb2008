"""Preparing a photo against the model reading it, side by side in one run (issue 57). Prints a table; not a test.

    .venv/bin/python benchmarks/prep_speed.py [--model models/starter] [--photos 200] [--big 5] [--rounds 5]
                                              [--int8] [--profile]

CPU time per photo (time.process_time, so other work on the machine counts less than in wall time; it still slows
the caches), one thread, in process, for:
- preparation before: the photo preparation as it was (main at 4acb14a), kept in tests/prep_reference.py;
- preparation now: `Predictor.load`, what the service runs (decode, quality checks, leaf framing, resize to the
  model's input, white balance);
- of which decoding: `photos.open_photo` alone (bytes to the upright RGB image, at a reduced JPEG scale for a large
  photo), which issue 57 left as it was (the decoding limits are another change's);
- the model: ONNX Runtime on the prepared photo, batch 1, one intra-op thread (as `leafdoc serve` runs it), with the
  outputs a decision needs; `--int8` adds the folder's int8 copy (run here even on a CPU without VNNI, to time it).
Photos: `--photos` 256-px PlantVillage photos (the load test's fixed sample) and `--big` 12 MP baseline JPEGs made
from the largest field photos, as phone cameras write them (loadtest/images.py). The stages are timed in turns,
round after round, so background load hits them alike; the table gives the median over rounds of each stage's mean.
`--profile` prints where the time of the preparation now goes (cProfile over the 256-px photos).
`--thumbnail-light` checks the next saving before making it: the light measured on the 96-px copy the leaf is
framed in (whose sheet distance is already computed) instead of on the model's input, over every shared
PlantVillage and field photo: how many photos' light-range decision (in range, corrected, no sheet) would change.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests/prep_reference.py (the preparation before) and loadtest/images.py


from loadtest.images import image_dir, load_images, phone_photos  # noqa: E402
from tests import prep_reference  # noqa: E402

from leafdoc.imaging.photos import min_side_for, open_photo  # noqa: E402
from leafdoc.inference.predictor import Predictor  # noqa: E402


def cpu_ms_per_item(call: Callable[[object], object], items: list) -> float:
    start = time.process_time()
    for item in items:
        call(item)
    return (time.process_time() - start) * 1000 / len(items)


def timed_rounds(stages: dict[str, tuple[Callable, list]], rounds: int) -> dict[str, float]:
    """Median over `rounds` of each stage's CPU ms per item; stages in turn within each round, after a warm-up."""
    for call, items in stages.values():
        for item in items[:5]:
            call(item)
    times: dict[str, list[float]] = {k: [] for k in stages}
    for _ in range(rounds):
        for name, (call, items) in stages.items():
            times[name].append(cpu_ms_per_item(call, items))
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=REPO / "models" / "starter")
    ap.add_argument("--photos", type=int, default=200, help="256-px PlantVillage photos")
    ap.add_argument("--big", type=int, default=5, help="12 MP baseline JPEGs")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--int8", action="store_true", help="time the folder's int8 copy too")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--thumbnail-light", action="store_true", help="count light decisions a 96-px measure changes")
    args = ap.parse_args()
    if args.thumbnail_light:
        thumbnail_light(Predictor(args.model, threads=1))
        return

    fp32 = Predictor(args.model, threads=1)
    small = [data for _, data in load_images(image_dir(), args.photos)]
    big = [data for _, data in phone_photos(made=args.big, only_12mp=True)] if args.big else []
    inputs = [fp32.load(d).x for d in small[:50]]

    def model(predictor: Predictor) -> Callable:
        return lambda x: predictor.predict_arrays(x[None], predictor.decision_outputs)

    def decode(data: bytes):
        return open_photo(data, min_side=min_side_for(fp32.size))

    stages = {
        "256 px: preparation before": (lambda d: prep_reference.load(fp32, d), small),
        "256 px: preparation now": (fp32.load, small),
        "256 px: of which decoding (unchanged)": (decode, small),
        "model fp32": (model(fp32), inputs),
    }
    if args.int8:
        int8 = Predictor(args.model, threads=1, variant="int8", any_cpu=True)
        stages["model int8"] = (model(int8), inputs)
    if big:
        stages["12 MP JPEG: preparation before"] = (lambda d: prep_reference.load(fp32, d), big)
        stages["12 MP JPEG: preparation now"] = (fp32.load, big)
        stages["12 MP JPEG: of which decoding (unchanged)"] = (decode, big)
    ms = timed_rounds(stages, args.rounds)

    print(f"model: {args.model} ({fp32.size} px, framing {fp32.framing}, white balance {fp32.prep.white_balance})")
    print(f"{len(small)} photos of 256 px, {len(big)} 12 MP JPEGs; median of {args.rounds} rounds, CPU ms per photo\n")
    print("| stage | CPU ms per photo | vs model fp32 |")
    print("|---|---|---|")
    for name, value in ms.items():
        print(f"| {name} | {value:.2f} | {value / ms['model fp32']:.2f}x |")
    before, now = ms["256 px: preparation before"], ms["256 px: preparation now"]
    print(f"\n256 px: preparation now takes {now / before:.2f}x the time it took ({before / now:.1f}x faster)")
    for name in [k for k in ms if k.startswith("model")]:
        print(
            f"share of preparation in preparation + {name}: before {before / (before + ms[name]):.0%}, "
            f"now {now / (now + ms[name]):.0%}"
        )

    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        for d in small:
            fp32.load(d)
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(25)


def thumbnail_light(predictor: Predictor) -> None:
    """The light-range decision of every shared lab and field photo, with the light measured on the model's input
    (as served) and on the 96-px copy of the whole photo the leaf is framed in."""
    import numpy as np
    from PIL import Image
    from shared_data import SHARED as shared

    from leafdoc.imaging import leafcut
    from leafdoc.imaging.photos import FRAME_CUT_PX, model_region, resize_square

    files = sorted((shared / "plantvillage").glob("*/*.jpg"))
    files += sorted(p for d in ("field-corn", "field-mixed") for p in (shared / d).rglob("*") if p.is_file())
    lights = predictor.card.input.light_range

    def decision(light: float | None) -> str:
        if light is None:
            return "no sheet"
        return "corrected" if not lights[0] <= light <= lights[3] else "in range"

    changed, gaps = [], []
    for path in files:
        img, frame = open_photo(path.read_bytes(), path.name, min_side=min_side_for(predictor.size))
        served = leafcut.light_of(resize_square(img, predictor.size, frame, model_region(img, "leaf")))
        small = leafcut.light_of(np.asarray(img.resize((FRAME_CUT_PX, FRAME_CUT_PX), Image.Resampling.BILINEAR)))
        if served is not None and small is not None:
            gaps.append(abs(small - served))
        if decision(served) != decision(small):
            changed.append(f"{path.name}: {decision(served)} -> {decision(small)}")
    print(f"{len(files)} photos; the light's two measures differ by {np.median(gaps):.4f} (median), ")
    print(f"{np.quantile(gaps, 0.99):.4f} (99th percentile) on the {len(gaps)} with a sheet in both")
    print(f"light-range decision changed on {len(changed)} photos ({len(changed) / len(files):.1%}):")
    print("\n".join(changed[:20]))


if __name__ == "__main__":
    main()
