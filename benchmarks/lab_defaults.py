"""A small lab's first model with `leafdoc train`'s defaults: accuracy on held-out photos and wall time.

    python benchmarks/lab_defaults.py [--classes A,B,C | --triples N] [--per-class 30] [--score heldout|val]
                                      [--repeats 1] [--stand-in CROP,...] [-- EXTRA TRAIN OPTIONS]

What issue 54 asks of the defaults: `leafdoc train --data DIR --out OUT`, with no other option, on 3 classes x 30
photos of ../shared/datasets/plantvillage, learns (>= 85% on photos it never saw) within 10 minutes on 2 cores,
with weights that install offline. Each run is the real command in a fresh data home (so the first-run work, such
as converting the ImageNet weights, is counted), timed from start to exit.

Each class's 150 photos are shuffled with a fixed seed and cut into three parts that never mix:
- the lab's photos (the first `--per-class`), the only ones `leafdoc train` sees (it splits them 70/15/15 itself);
- validation photos (the next 45): the defaults (image size, epochs, learning rate, fine-tuning) were chosen on these
  (`--score val`, with the candidate settings passed after `--`);
- held-out photos (the remaining 75): scored once, with the chosen defaults (`--score heldout`, the default).
`--cut-seed` draws another cut, `--val 0` leaves no validation photos (for a small set of field photos: the lab
then gets at most half a class's photos, and the rest are held out). Photos are scored as served (ONNX Runtime, the
model folder's own preparation); the figure is top-1 accuracy, abstentions counted as the label the model ranks first.

**The starter learnt these photos.** With no options `leafdoc train` starts from the backbone of leafdoc's starter
model, which was taught PlantVillage's classes, these photos among them: on them the defaults' figure flatters. What a
lab of a crop the starter never saw gets is measured with a stand-in: `--stand-in Tomato,Potato` first trains a
backbone as the 30-class starter was trained (`STAND_IN_RECIPE`) on every shared class but those crops' (once; kept in
`--stand-in-dir`, about 45 minutes on two cores), then starts each run from it (`--init-from`): the lab's crop is
then new to it, as it is to the starter for a lab of another crop. `-- --weights imagenet` gives ImageNet's figure.

The default classes are one crop's look-alikes, the hard case. `--triples N` runs once on each of N other sets of
three classes, drawn at random (seed 54) from the folders of `--data`: what a lab with other diseases can expect.
`--one-crop` draws each set from one crop's classes instead (up to N a crop, for every crop with three or more), as
a lab studying one crop's diseases brings them. The defaults were chosen on the look-alikes' validation photos only,
so every set's held-out photos are new.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
from shared_data import SHARED  # noqa: E402

PLANTVILLAGE = SHARED / "plantvillage"
# One crop's diseases, as a lab would bring them: three look-alike tomato classes (harder than three crops).
CLASSES = ("Tomato___Early_blight", "Tomato___Late_blight", "Tomato___healthy")
N_VAL = 45
# How the 30-class starter's backbone was trained (scripts/train_starter.py's ancestor, docs/retrain-starter.md), on
# 150 photos a class: a stand-in for it that never saw some crops (--stand-in).
STAND_IN_RECIPE = (
    *("--image-size", "160", "--no-head-on-features", "--epochs", "8", "--fine-tune-epochs", "15"),
    *("--batch-size", "32", "--restore-best", "val_loss", "--patience", "5", "--no-train-on-val"),
)
LEAFDOC = Path(sys.executable).with_name("leafdoc")


CUT = {"seed": 54, "val": N_VAL}  # how every class is cut (--cut-seed, --val): one cut for the whole run


def parts(data: Path, cls: str, per_class: int) -> dict[str, list[Path]]:
    """The class's photos cut into lab / val / heldout, the same for every run with the same --cut-seed. A class
    with fewer than twice `per_class` photos (small field sets) gives the lab half of them."""
    files = sorted((data / cls).iterdir())
    random.Random(f"{CUT['seed']}-{cls}").shuffle(files)
    lab = min(per_class, len(files) // 2)
    val_end = lab + CUT["val"]
    return {"lab": files[:lab], "val": files[lab:val_end], "heldout": files[val_end:]}


def lab_folder(data: Path, classes, per_class: int, dest: Path) -> Path:
    for cls in classes:
        (dest / cls).mkdir(parents=True)
        for f in parts(data, cls, per_class)["lab"]:
            shutil.copy2(f, dest / cls / f.name)
    return dest


def score(model: Path, data: Path, classes, per_class: int, which: str) -> tuple[float, int, float]:
    """Top-1 accuracy, the photos scored, and the share the model answers (its softmax above the card's abstention
    threshold; the other checks are left out)."""
    import numpy as np

    from leafdoc.inference.abstain import min_confidence
    from leafdoc.inference.predictor import Predictor

    predictor = Predictor(model)
    truth, x = [], []
    for cls in classes:
        for f in parts(data, cls, per_class)[which]:
            truth.append(cls)
            x.append(predictor.preprocess(f))
    probs = predictor.predict_arrays(np.stack(x))["probabilities"]
    predicted = [predictor.labels[i] for i in probs.argmax(axis=1)]
    answered = float(np.mean(probs.max(axis=1) >= min_confidence(predictor.card)))
    return float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)])), len(truth), answered


def _child_cpu() -> float:
    """CPU seconds (user + system) of finished child processes: on a shared machine the wall time says more
    about the neighbours than about leafdoc; the CPU time does not move with them."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_once(data: Path, classes, per_class: int, which: str, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="lab-defaults-") as tmp:
        tmp = Path(tmp)
        folder = lab_folder(data, classes, per_class, tmp / "mydata")
        env = {**os.environ, "LEAFDOC_HOME": str(tmp / "home")}
        start, cpu0 = time.perf_counter(), _child_cpu()
        done = subprocess.run(
            [str(LEAFDOC), "train", "--data", str(folder), "--out", str(tmp / "mymodel"), *extra],
            env=env,
            capture_output=True,
            text=True,
        )
        wall, cpu = time.perf_counter() - start, _child_cpu() - cpu0
        if done.returncode:
            sys.exit(f"leafdoc train failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        last = [line for line in done.stdout.splitlines() if "test accuracy" in line]
        accuracy, n, answered = score(tmp / "mymodel", data, classes, per_class, which)
        line = last[-1] if last else ""
        return {"wall": wall, "cpu": cpu, "accuracy": accuracy, "n": n, "answered": answered, "line": line}


def stand_in(crops: list[str], folder: Path) -> Path:
    """A backbone taught every shared PlantVillage class but `crops`' (trained once into `folder`/model): what the
    starter is to a lab of a crop it never saw."""
    model = folder / "model"
    if (model / "card.json").is_file():
        return model
    data = folder / "data"
    shutil.rmtree(data, ignore_errors=True)
    for cls in sorted(p.name for p in PLANTVILLAGE.iterdir() if p.is_dir()):
        if cls.split("___")[0] in crops:
            continue
        (data / cls).mkdir(parents=True)
        for f in (PLANTVILLAGE / cls).iterdir():
            (data / cls / f.name).symlink_to(f)
    print(f"training the stand-in backbone (every shared class but {', '.join(crops)}'s) into {model}", flush=True)
    env = {**os.environ, "LEAFDOC_HOME": str(folder / "home")}
    done = subprocess.run(
        [str(LEAFDOC), "train", "--data", str(data), "--out", str(model), "--weights", "imagenet", *STAND_IN_RECIPE],
        env=env,
    )
    if done.returncode:
        sys.exit(f"training the stand-in failed ({done.returncode}); its log is above.")
    return model


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=PLANTVILLAGE)
    ap.add_argument("--classes", default=",".join(CLASSES))
    ap.add_argument("--per-class", type=int, default=30)
    ap.add_argument("--score", choices=("heldout", "val"), default="heldout")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--triples", type=int, default=0, help="run on N random sets of 3 classes instead of --classes")
    ap.add_argument("--one-crop", action="store_true", help="with --triples: each set one crop's (N a crop at most)")
    ap.add_argument("--val", type=int, default=N_VAL, help="validation photos a class (0 for small field sets)")
    ap.add_argument("--cut-seed", type=int, default=54, help="another cut of each class's photos")
    ap.add_argument("--stand-in", help="start from a backbone that never saw these crops (comma-separated)")
    ap.add_argument("--stand-in-dir", type=Path, help="where the stand-in is kept (default: a folder under /tmp)")
    args = ap.parse_args(argv)
    CUT.update(seed=args.cut_seed, val=args.val)
    if not args.data.is_dir():
        sys.exit(f"{args.data}: no such folder. This benchmark needs PlantVillage photos (../shared/datasets).")
    if args.stand_in:
        crops = [c.strip() for c in args.stand_in.split(",") if c.strip()]
        folder = args.stand_in_dir or Path(tempfile.gettempdir()) / f"leafdoc-stand-in-{'-'.join(crops)}"
        extra = ["--init-from", str(stand_in(crops, folder)), *extra]
    elif not {"--weights", "--init-from"} & set(extra):
        print("note: the defaults start from the starter's backbone, which learnt PlantVillage's photos: on them this "
              "figure flatters. --stand-in CROP gives a fair one, -- --weights imagenet ImageNet's.")  # fmt: skip
    if args.triples:
        return triples(args, extra)
    classes = args.classes.split(",")
    runs = [run_once(args.data, classes, args.per_class, args.score, extra) for _ in range(args.repeats)]
    print(f"leafdoc train --data ({len(classes)} classes x {args.per_class} photos) --out OUT {' '.join(extra)}")
    print(f"| run | {args.score} accuracy | photos scored | answered | wall time | CPU time | its test line |")
    print("|---|---|---|---|---|---|---|")
    for i, r in enumerate(runs, 1):
        print(
            f"| {i} | {r['accuracy']:.1%} | {r['n']} | {r['answered']:.1%} | {r['wall']:.0f} s | {r['cpu']:.0f} s | "
            f"{r['line']} |"
        )
    if len(runs) > 1:
        acc = statistics.median(r["accuracy"] for r in runs)
        wall = statistics.median(r["wall"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        print(f"| median | {acc:.1%} | | | {wall:.0f} s | {cpu:.0f} s | |")


def triples(args, extra: list[str]) -> None:
    every = sorted(p.name for p in args.data.iterdir() if p.is_dir())
    draw = random.Random(54)
    if args.one_crop:
        crops: dict[str, list[str]] = {}
        for cls in every:
            crops.setdefault(cls.split("___")[0], []).append(cls)
        sets = []
        for names in crops.values():
            combos = [list(c) for c in itertools.combinations(names, 3)]
            sets += draw.sample(combos, min(args.triples, len(combos)))
    else:
        sets = [sorted(draw.sample(every, 3)) for _ in range(args.triples)]
    print(f"leafdoc train --data (3 classes x {args.per_class} photos) --out OUT {' '.join(extra)}")
    print(f"| classes | {args.score} accuracy | photos scored | answered | wall time | CPU time |")
    print("|---|---|---|---|---|---|")
    runs = []
    for classes in sets:
        r = run_once(args.data, classes, args.per_class, args.score, extra)
        runs.append(r)
        names = ", ".join(c.replace("___", " ").replace("_", " ") for c in classes)
        got = f"{r['accuracy']:.1%} | {r['n']} | {r['answered']:.1%} | {r['wall']:.0f} s | {r['cpu']:.0f} s"
        print(f"| {names} | {got} |", flush=True)
    acc = [r["accuracy"] for r in runs]
    print(
        f"| median (mean) of {len(runs)} | {statistics.median(acc):.1%} ({statistics.mean(acc):.1%}) | | "
        f"{statistics.median(r['answered'] for r in runs):.1%} | {statistics.median(r['wall'] for r in runs):.0f} s | "
        f"{statistics.median(r['cpu'] for r in runs):.0f} s |"
    )
    print(f"triples at or above 85%: {sum(a >= 0.85 for a in acc)} of {len(acc)}")


if __name__ == "__main__":
    main()
