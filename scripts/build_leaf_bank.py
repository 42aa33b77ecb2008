"""Make leafdoc's bank of other leaves (src/leafdoc/inference/leaf_bank.npz), which a lab's training learns to refuse.

    python scripts/build_leaf_bank.py MODEL_DIR [--data DIR] [--per-class 30] [--out PATH]

MODEL_DIR: any model folder `leafdoc train` made with its defaults (the frozen ImageNet EfficientNet-Lite0 at 224 px,
no fine-tuning): the bank is its ONNX `features` output for each photo, prepared as it serves them. The bank of the
starter's backbone (src/leafdoc/inference/leaf_bank_starter.npz) is made the same way from a model made with
`leafdoc train --init-from models/starter` and its defaults otherwise, with `--out` that file; made again whenever the
starter is retrained (a lab model of the new starter's backbone gets no check until then, and its card says why).
The photos: PlantVillage's shared set (../shared/datasets/plantvillage, 150 a class, 30 classes, CC BY-SA 3.0),
`--per-class` of each class, drawn as benchmarks/lab_negatives.py draws its bank (each class's photos shuffled with
the seed `negatives-<class>`, the first ones), so that benchmark's test photos stay out of it. A class folder of
plantvillage-full (34 classes) works the same. Float16: 2.56 kB a photo, and the photo's colour histogram
(inference/ood.py's colour_features, 160 bytes): training scores the bank's leaves with the lab model's not-a-leaf
check, for which word a refused leaf gets (`no_leaf_from`, inference/otherleaves.py).

    python scripts/build_leaf_bank.py --add-colours BANK [--data DIR]

adds the colour histograms to a bank made before they were kept (the same photos, drawn and prepared as the bank
says; its features are left as they are).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from leafdoc.core.errors import LeafdocError  # noqa: E402
from leafdoc.imaging.photos import Preparation, is_image_name  # noqa: E402
from leafdoc.inference.ood import colour_features  # noqa: E402
from leafdoc.inference.otherleaves import BANK_FILE, PREP_FIELDS, Bank, probe_image  # noqa: E402
from leafdoc.inference.predictor import Predictor  # noqa: E402


def drawn(folder: Path, n: int) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if is_image_name(p.name))
    random.Random(f"negatives-{folder.name}").shuffle(files)
    return files[:n]


def add_colours(path: Path, data: Path) -> None:
    """The bank at `path` with its photos' colour histograms: each class's photos drawn again as the bank was made,
    prepared as the bank's `prep` says; refused if the count differs from the bank's."""
    import dataclasses

    bank = Bank.load(path)
    per_class = int(np.bincount(bank.y).max())
    prep = Preparation(**{k: bank.prep[k] for k in PREP_FIELDS})
    colours = []
    for k, cls in enumerate(bank.classes):
        images = [prep(p) for p in drawn(data / cls, per_class)]
        if len(images) != int((bank.y == k).sum()):
            sys.exit(f"{data / cls}: {len(images)} photos drawn, the bank holds {(bank.y == k).sum()}: not its photos")
        colours.append(colour_features(np.stack(images)))
    dataclasses.replace(bank, colours=np.concatenate(colours).astype(np.float16)).save(path)
    print(f"wrote {path}: colours of {len(bank.y)} photos, {path.stat().st_size / 1e6:.2f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", type=Path, nargs="?")
    ap.add_argument("--add-colours", type=Path, metavar="BANK", help="add colour histograms to this bank")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "plantvillage")
    ap.add_argument("--per-class", type=int, default=30)
    ap.add_argument("--out", type=Path, default=BANK_FILE)
    ap.add_argument("--network", help="the network's name in the bank's source line (default: from MODEL_DIR's card)")
    ap.add_argument("--tag", help="the network's short name in the bank's name (default: lite0, or warm)")
    args = ap.parse_args()
    if not args.data.is_dir():
        sys.exit(f"{args.data}: no such folder of class folders. Pass --data DIR (PlantVillage's class folders).")
    if args.add_colours:
        return add_colours(args.add_colours, args.data)
    if args.model_dir is None:
        sys.exit("pass MODEL_DIR (a model folder to take features from), or --add-colours BANK")
    predictor = Predictor(args.model_dir)
    card = predictor.card
    if card.backbone != "efficientnet_lite0" or (card.training or {}).get("fine_tune_epochs", 0):
        sys.exit(f"{args.model_dir}: not a frozen EfficientNet-Lite0 model (`leafdoc train`'s defaults make one).")
    tag = args.tag or ("warm" if card.warm_start else "lite0")
    network = args.network or ("a warm-started backbone" if card.warm_start else "frozen ImageNet EfficientNet-Lite0")
    classes = sorted(d.name for d in args.data.iterdir() if d.is_dir())
    feats, colours, ys = [], [], []
    for k, cls in enumerate(classes):
        images = []
        for path in drawn(args.data / cls, args.per_class):
            try:
                images.append(predictor.load(path).x)
            except LeafdocError as exc:
                print(f"skipped {path}: {exc}", file=sys.stderr)
        x = np.stack(images)
        f = predictor.predict_arrays(x, ["features"])["features"]
        feats.append(f)
        colours.append(colour_features(x))
        ys += [k] * len(f)
        print(f"{cls}: {len(f)} photos", file=sys.stderr, flush=True)
    size = int(card.input.size)
    probe = predictor.predict_arrays(probe_image(size)[None], ["features"])["features"][0]
    bank = Bank(
        features=np.concatenate(feats).astype(np.float16),
        y=np.asarray(ys),
        classes=tuple(classes),
        probe=probe,
        prep={k: getattr(card.input, k) for k in PREP_FIELDS},
        name=f"plantvillage-{len(classes)}x{args.per_class}-{tag}-{size}",
        source=f"PlantVillage (Hughes & Salathe 2015, CC BY-SA 3.0): {args.per_class} photos of each of "
        f"{len(classes)} classes of {args.data.name}, {network} features at {size} px",
        colours=np.concatenate(colours).astype(np.float16),
    )
    bank.save(args.out)
    print(f"wrote {args.out}: {len(bank.y)} photos, {len(classes)} classes, {args.out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
