"""Does the unlike-training check catch field photos of crops other than corn? A proxy (issue 21 item 3).

The only field photos leafdoc has are corn (field-corn), and the check was calibrated on part of them. This
makes field-like photos of the other crops: PlantVillage leaves of every non-corn class, from the model's own
**test** split (split.json; nothing was fitted on them), cut from their plain background (composite.py) and
pasted on crops of **held-out** field-corn photos (sha256 8-f: never used by any calibration). Variants (all but the
first two: the same leaf at the same size, angle and place):
- `lab`: the original PlantVillage photo (the baseline);
- `plain sheet, in place`: that photo with its background (and the leaf's shadow on it) replaced by a plain
  sheet of the background's own colour: nothing else changed (a control: what the background is worth);
- `grey sheet`: the leaf cut, scaled, rotated and moved, on such a sheet (a control: what compositing costs);
- `white paper`: the same on near-white paper, as leafdoc's advice asks a user to do (a control that
  should be answered);
- `field`: on a crop of a field photo (foliage, soil, sky, hands);
- `field, blurred`: the same crop out of focus, as a phone's close-up of one leaf on the plant.
Each is saved as JPEG (quality 90) bytes and scored through the serving path (Predictor.load -> network ->
Predictor.decide), as `leafdoc predict` does. Everything about the model (labels, split, card with its checks)
is read from the model folder, so rerunning this on a recalibrated folder is all it takes. Deterministic for a
seed. Writes benchmarks/out/field_composites.md, a contact sheet of composites with their answers
(field_composites.png) and one of the leaf masks (field_composites_masks.png) for a person to check.

    .venv/bin/python benchmarks/field_composites.py [MODEL_DIR] [--per-class 8] [--seed 0] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[1]
from shared_data import SHARED  # noqa: E402

OUT = REPO / "benchmarks" / "out"
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from composite import (  # noqa: E402
    background_colour,
    field_crop,
    in_place,
    jpeg,
    open_rgb,
    paste,
    place_leaf,
    segment_leaf,
    sheet,
    usable,
)

from leafdoc.core.errors import LeafdocError  # noqa: E402
from leafdoc.evaluate.significance import wilson_interval  # noqa: E402
from leafdoc.imaging.photos import is_image_name  # noqa: E402
from leafdoc.inference.calibrate import split_photos  # noqa: E402
from leafdoc.inference.field import calibration_part  # noqa: E402
from leafdoc.inference.predictor import Predictor  # noqa: E402

VARIANTS = ("lab", "plain sheet, in place", "grey sheet", "white paper", "field", "field, blurred")
CONTROLS = VARIANTS[:4]
REASONS = ("poor_photo", "not_a_leaf", "unlike_training", "unsure")
SHARE = (0.3, 0.7)  # the leaf covers this share of the frame (less when it would not fit whole)
SIDE = (512, 768)  # composite size in px
BLUR = (0.008, 0.02)  # background blur sigma, as a share of the side


def crop_of(label: str) -> str:
    return label.split("___")[0].split("_(")[0].replace(",_bell", " (bell)").replace("_", " ")


@dataclass
class Leaf:
    path: Path
    label: str
    rgb: np.ndarray
    mask: np.ndarray


def pick_leaves(data: Path, model_dir: Path, per_class: int, rng: np.random.Generator) -> tuple[list[Leaf], int]:
    """Up to `per_class` test-split photos of every non-corn label whose leaf segments cleanly; and how many
    were passed over (mask implausible, or the leaf cut by the photo's frame)."""
    split = json.loads((model_dir / "split.json").read_text())
    labels = json.loads((model_dir / "labels.json").read_text())
    by_label: dict[str, list[Path]] = defaultdict(list)
    for path, y in split_photos(data, split, labels)["test"]:
        by_label[labels[y]].append(path)
    leaves, skipped = [], 0
    for label in sorted(by_label):
        if crop_of(label).lower().startswith("corn"):
            continue
        paths = by_label[label]
        taken = 0
        for i in rng.permutation(len(paths)):
            if taken == per_class:
                break
            rgb = np.asarray(Image.open(paths[i]).convert("RGB"))
            mask = segment_leaf(rgb)
            if not usable(mask):
                skipped += 1
                continue
            leaves.append(Leaf(paths[i], label, rgb, mask))
            taken += 1
    return leaves, skipped


def backgrounds() -> list[Path]:
    """The held-out part of field-corn (sha256 first hex digit 8-f): no check was calibrated on them."""
    folder = SHARED / "field-corn"
    fs = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_name(p))
    return [f for f in fs if not calibration_part(f)]


def make_composites(leaves: list[Leaf], bgs: list[Path], rng: np.random.Generator) -> list[dict]:
    """Per leaf: {variant: JPEG bytes}, and what was made (size, share, background)."""
    made = []
    for leaf in leaves:
        size = int(rng.integers(SIDE[0], SIDE[1] + 1))
        placed = place_leaf(leaf.rgb, leaf.mask, size, float(rng.uniform(*SHARE)), rng)
        bg_path = bgs[int(rng.integers(len(bgs)))]
        scene = field_crop(open_rgb(bg_path, max_side=1600), size, rng)
        blurred = cv2.GaussianBlur(scene, (0, 0), size * float(rng.uniform(*BLUR)))
        colour = background_colour(leaf.rgb, leaf.mask)
        made.append(
            {
                "leaf": leaf,
                "share": placed.share,
                "size": size,
                "background": bg_path.name,
                "lab": leaf.path.read_bytes(),
                "plain sheet, in place": jpeg(
                    paste(sheet(leaf.rgb.shape[:2], rng, None, colour), in_place(leaf.rgb, leaf.mask))
                ),
                "grey sheet": jpeg(paste(sheet(size, rng, placed, colour), placed)),
                "white paper": jpeg(paste(sheet(size, rng, placed), placed)),
                "field": jpeg(paste(scene, placed)),
                "field, blurred": jpeg(paste(blurred, placed)),
            }
        )
    return made


def score(predictor: Predictor, photos: list[tuple[bytes, str]]) -> list[dict]:
    """The serving path's answer per photo: abstained, reason, top label (as `leafdoc predict` decides)."""
    out = []
    for start in range(0, len(photos), 64):
        chunk, loaded = photos[start : start + 64], []
        for data, name in chunk:
            try:
                loaded.append(predictor.load(data, name=name))
            except LeafdocError:
                loaded.append(None)
        ok = [p for p in loaded if p is not None]
        arrays = predictor.predict_arrays(np.stack([p.x for p in ok]), predictor.decision_outputs) if ok else {}
        j = 0
        for photo in loaded:
            if photo is None:
                out.append({"abstained": True, "reason": "unreadable", "top": None})
                continue
            row = {n: v[j] for n, v in arrays.items()}
            j += 1
            d = predictor.decide(row, photo)
            top = predictor.labels[int(np.argmax(row["probabilities"]))]
            out.append({"abstained": d.abstained, "reason": d.reason, "top": top})
    return out


def summary(rows: list[dict]) -> dict:
    n = len(rows)
    answered = [r for r in rows if not r["abstained"]]
    right = sum(r["top"] == r["truth"] for r in answered)
    reasons = Counter(r["reason"] for r in rows if r["abstained"])
    return {
        "n": n,
        "abstained": (n - len(answered)) / n if n else 0.0,
        "reasons": reasons,
        "answered": len(answered),
        "right": right,
        "top_all": sum(r["top"] == r["truth"] for r in rows) / n if n else 0.0,
    }


def pct(v: float) -> str:
    return f"{v:.1%}"


def answered_cell(s: dict) -> str:
    if not s["answered"]:
        return "- (none answered)"
    lo, hi = wilson_interval(s["right"], s["answered"])
    return f"{s['right'] / s['answered']:.1%} ({s['right']}/{s['answered']}; {lo:.0%}-{hi:.0%})"


def target(s: dict) -> str:
    acc = s["right"] / s["answered"] if s["answered"] else 1.0
    met = s["abstained"] >= 0.95 or acc >= 0.90
    return "met" if met else "not met"


def report(model_dir: Path, made: list[dict], results: dict[str, list[dict]], skipped: int, seconds: float) -> str:
    card = json.loads((model_dir / "card.json").read_text())
    field = card.get("field")
    check = (
        f"unlike-training check format {field.get('format')}, threshold {field.get('threshold')}, fitted on "
        f"{'; '.join(field.get('sources', []))}; refusals named by "
        f"{'its fitted reason rule (field.reason)' if field.get('reason') else 'the leaf-coloured share'}"
        if field
        else "no unlike-training check in its card (the not-a-leaf check alone)"
    )
    shares = np.array([m["share"] for m in made])
    crops = sorted({crop_of(m["leaf"].label) for m in made})
    labels = sorted({m["leaf"].label for m in made})
    lines = [
        f"Model: `{model_dir.name}` ({check}).",
        f"Leaves: {len(made)} PlantVillage test-split photos of {len(labels)} non-corn classes "
        f"({len(crops)} crops); {skipped} passed over (mask implausible or leaf cut by the frame). "
        f"Backgrounds: {len({m['background'] for m in made})} of the held-out field-corn photos (sha256 8-f). "
        f"Leaf share of the frame: median {np.median(shares):.0%} (range {shares.min():.0%}-{shares.max():.0%}); "
        f"composites {SIDE[0]}-{SIDE[1]} px, JPEG q90. Scored in {seconds:.0f} s.",
        "",
        "| photos | n | abstained | poor_photo / not_a_leaf / unlike_training / unsure "
        "| accuracy on answered (95% CI) | top-1 on all "
        "| issue target (>= 90% right on answered or >= 95% abstained) |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in VARIANTS:
        s = summary(results[v])
        by = " / ".join(str(s["reasons"].get(r, 0)) for r in REASONS)
        tgt = "(lab-like: should be answered)" if v in CONTROLS else f"**{target(s)}**"
        lines.append(
            f"| {v} | {s['n']} | **{pct(s['abstained'])}** | {by} | {answered_cell(s)} | {pct(s['top_all'])} | {tgt} |"
        )
    lines += [
        "",
        "Per crop: abstained, and right on answered (k/m):",
        "",
        "| crop | leaves | " + " | ".join(VARIANTS) + " |",
        "|---|---|" + "---|" * len(VARIANTS),
    ]
    for c in crops:
        cells = []
        for v in VARIANTS:
            s = summary([r for r in results[v] if crop_of(r["truth"]) == c])
            ans = f"{s['right']}/{s['answered']}" if s["answered"] else "-"
            cells.append(f"{pct(s['abstained'])}, {ans}")
        lines.append(
            f"| {c} | {summary([r for r in results['lab'] if crop_of(r['truth']) == c])['n']} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines) + "\n"


def short(label: str) -> str:
    crop, _, disease = label.partition("___")
    return f"{crop_of(label)}: {disease.replace('_', ' ').strip()[:18]}"


def contact_sheet(made: list[dict], results: dict[str, list[dict]], path: Path, rows: int = 8, tile: int = 180) -> None:
    """One leaf per row (spread over crops), its four photos side by side, each with the answer it got."""
    seen, picks = set(), []
    for i, m in enumerate(made):  # the first leaf of each crop, then fill up in order
        if crop_of(m["leaf"].label) not in seen:
            seen.add(crop_of(m["leaf"].label))
            picks.append(i)
    picks = (picks + [i for i in range(len(made)) if i not in picks])[:rows]
    try:
        font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 11)
    except OSError:
        font = ImageFont.load_default()
    cap = 46
    canvas = Image.new("RGB", (tile * len(VARIANTS), 22 + rows * (tile + cap)), "white")
    draw = ImageDraw.Draw(canvas)
    for c, v in enumerate(VARIANTS):
        draw.text((c * tile + 6, 4), v, fill="black", font=font)
    for r, i in enumerate(picks):
        y = 22 + r * (tile + cap)
        for c, v in enumerate(VARIANTS):
            img = open_rgb(made[i][v]).resize((tile - 4, tile - 4), Image.Resampling.LANCZOS)
            canvas.paste(img, (c * tile + 2, y))
            res = results[v][i]
            if res["abstained"]:
                said, colour = f"not sure: {res['reason']}", (0, 90, 200)
            else:
                ok = res["top"] == res["truth"]
                said, colour = ("right: " if ok else "WRONG: ") + short(res["top"]), (0, 130, 0) if ok else (200, 0, 0)
            draw.text((c * tile + 4, y + tile - 2), said, fill=colour, font=font)
            if c == 0:
                draw.text((c * tile + 4, y + tile + 14), "truth " + short(res["truth"]), fill="black", font=font)
    canvas.save(path)


def mask_sheet(leaves: list[Leaf], path: Path, n: int = 64, tile: int = 128) -> None:
    """`n` leaves spread over every class, with their mask's outline (yellow) and the background dimmed, to
    check by eye."""
    cols = 8
    picked = [leaves[i] for i in np.linspace(0, len(leaves) - 1, min(n, len(leaves))).round().astype(int)]
    canvas = Image.new("RGB", (tile * cols, tile * ((len(picked) + cols - 1) // cols)), "white")
    for i, leaf in enumerate(picked):
        vis = leaf.rgb.copy()
        vis[~leaf.mask] = (vis[~leaf.mask] * 0.3 + np.array([255, 0, 255]) * 0.3).astype(np.uint8)
        contours, _ = cv2.findContours(leaf.mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(vis, contours, -1, (255, 255, 0), 2)
        canvas.paste(Image.fromarray(vis).resize((tile, tile)), ((i % cols) * tile, (i // cols) * tile))
    canvas.save(path)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir", nargs="?", type=Path, default=REPO / "models" / "starter")
    ap.add_argument("--per-class", type=int, default=8, help="leaves per non-corn class (test split)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=SHARED / "plantvillage", help="the model's PlantVillage folder")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    cv2.setRNGSeed(args.seed)  # GrabCut's colour models start from OpenCV's generator
    leaves, skipped = pick_leaves(args.data, args.model_dir, args.per_class, rng)
    made = make_composites(leaves, backgrounds(), rng)
    print(f"made {len(made)} x {len(VARIANTS)} photos in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    t1 = time.perf_counter()
    predictor = Predictor(args.model_dir)
    results = {}
    for v in VARIANTS:
        rows = score(predictor, [(m[v], f"{i}.jpg") for i, m in enumerate(made)])
        for r, m in zip(rows, made, strict=True):
            r["truth"] = m["leaf"].label
        results[v] = rows
    text = report(args.model_dir, made, results, skipped, time.perf_counter() - t1)
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "field_composites.md").write_text(text)
    contact_sheet(made, results, OUT / "field_composites.png")
    mask_sheet(leaves, OUT / "field_composites_masks.png")
    print(f"wrote {OUT}/field_composites.md, .png, _masks.png in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
