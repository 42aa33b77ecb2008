"""Would a bank of other leaves' features, shipped with leafdoc as negatives, teach a lab's own model to refuse
leaves it was never taught? A feasibility probe: no product change.

    python benchmarks/lab_negatives.py [--sizes 10,30,100] [--cache /tmp/lab-negatives]
    python benchmarks/lab_negatives.py --field    # then: a lab of field photos against a bank of lab photos

A lab's model (`leafdoc train`'s defaults: a head on frozen ImageNet EfficientNet-Lite0 features, 224 px) knows its
three classes and nothing else; its checks (not-a-leaf, unlike-training: the model folder's ood.npz and card) refuse
little of another crop's leaves or of its own crop's other conditions (benchmarks/lab_other_crops.py). The idea
probed: leafdoc ships frozen Lite0 features (1280 numbers a photo, float16) of leaves of many crops and conditions,
and a lab's training fits a supervised "one of my classes or some other leaf" check on them: the lab's photos as
positives, the bank less anything of the lab's own classes as negatives. The question is whether that check refuses
leaves that are NOT in the bank.

Design (fixed before any figure was read; nothing is chosen on the scored photos):
- Labs: three one-crop triples of the 30 shared PlantVillage classes, 30 photos a class, cut as
  benchmarks/lab_defaults.py cuts them (seed 54: the lab's 30, 45 validation photos, 75 held-out photos): tomato
  early blight / late blight / healthy (the benchmark's look-alikes), apple scab / black rot / healthy, corn gray
  leaf spot / northern leaf blight / healthy.
- Other classes (all 27 not the lab's): each class's 150 photos shuffled once (seed "negatives"), the first 100 the
  pool a bank draws from (its first N: `--sizes`), the last 50 the test photos. Test photos never enter a bank.
- Held out (the question): leave one group out. A group is one other crop, or one other condition of the lab's own
  crop. For each group, the bank is every other class but the lab's and that group's, and the check is scored on
  that group's 50 test photos a class; every group is held out once (tomato: 9 crops and 7 other tomato
  conditions, apple and corn: 9 crops and 1 condition each). So a scored leaf's crop (or condition) is never in the
  bank it was refused or answered by.
- Seen (the easier case): one bank of every class but the lab's; scored on the same test photos (different photos of
  classes the bank holds).
- Checks: (a) the lab's model as `leafdoc train` makes it today (trained by the real command, once a triple, cached;
  scored as served by Predictor.answer: answered = not abstained; its AUROC is the not-a-leaf score's, as
  lab_other_crops.py reads it); (b) logistic regression on standardised features, C 0.1, class-balanced, the lab's 90
  photos against the bank ("binary"), and the same with the bank as a fourth class beside the lab's three ("4-class",
  an extra 'other' class in the head); the check's score is P(other leaf); (c) (a) and (b) together (answered by both).
  (b)'s threshold: refuse at most 5% of the lab's 135 validation photos (the 95th percentile of their scores). The
  lab's own unseen photos are its 225 held-out photos. C 0.1 and 5% were fixed beforehand (C 0.1: the setting
  benchmarks/lab_resample.py used for standardised features), not tuned.
- Reported per triple and bank size: the share answered of own unseen photos, of other crops' leaves, of the own
  crop's other conditions (held out, and seen), and each group's AUROC against own unseen photos (0.5: no better than
  chance); the bank's size in MB (float16) and the CPU time of a fit. Also not-leaf photos: 200 flowers (100 roses,
  100 daisies) and 200 CIFAR-10 test photos (20 a class), with the seen bank.

`--field` (added after the tables above were read, to test a doubt they raised, not to choose anything): every
photo above is a PlantVillage lab photo, so the check may learn the leaf or merely the kind of photo. A lab of field
photos (field-corn, 20 a class) against the PlantVillage bank (30 a class, binary), scored on field photos of crops
the bank holds only as lab photos (field-mixed's tomato and potato) and on PlantVillage photos.

Features: the lab model's ONNX output `features` (its frozen Lite0's pooled features of the photo as served), read
once for every photo with the tomato model (the backbone is the same frozen network in every lab model) and cached
under --cache with each model's answers. Tomato's near-duplicates (flipped copies) are not grouped here, as in
lab_defaults.py. Runtime: about 3 CPU-minutes a lab model to train, a few minutes for the features, a few minutes
of fits.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab_defaults import LEAFDOC, PLANTVILLAGE, lab_folder, parts  # noqa: E402
from shared_data import SHARED  # noqa: E402

TRIPLES = {
    "tomato": ("Tomato___Early_blight", "Tomato___Late_blight", "Tomato___healthy"),
    "apple": ("Apple___Apple_scab", "Apple___Black_rot", "Apple___healthy"),
    "corn": (
        "Corn_(maize)___Cercospora_leaf_spot Gray_leaf_spot",
        "Corn_(maize)___Northern_Leaf_Blight",
        "Corn_(maize)___healthy",
    ),
}
POOL, TEST = 100, 50  # each other class: its bank pool, then its test photos
C = 0.1
REFUSE_VAL = 0.05
DIM = 1280


def crop_of(cls: str) -> str:
    return cls.split("___")[0]


def other_parts(cls: str) -> dict[str, list[Path]]:
    files = sorted((PLANTVILLAGE / cls).iterdir())
    random.Random(f"negatives-{cls}").shuffle(files)
    return {"pool": files[:POOL], "test": files[POOL : POOL + TEST]}


def not_leaves() -> dict[str, list[Path]]:
    flowers = [f for k in ("roses", "daisy") for f in sorted((SHARED / "flowers" / k).iterdir())[:100]]
    cifar = [f for d in sorted((SHARED / "cifar10" / "test").iterdir()) for f in sorted(d.iterdir())[:20]]
    return {"flowers": flowers, "cifar10": cifar}


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(an outside photo scores higher than an inside one), ties counted half."""
    a, b = np.asarray(inside)[None], np.asarray(outside)[:, None]
    return float((b > a).mean() + 0.5 * (b == a).mean())


def lab_model(name: str, cache: Path) -> Path:
    """The lab's model, made by `leafdoc train --data DIR --out OUT` with its defaults (once; cached)."""
    root = cache / name
    if (root / "mymodel" / "model.onnx").exists():
        return root / "mymodel"
    shutil.rmtree(root, ignore_errors=True)
    folder = lab_folder(PLANTVILLAGE, TRIPLES[name], 30, root / "mydata")
    env = {**os.environ, "LEAFDOC_HOME": str(root / "home")}
    print(f"training the {name} lab's model ...", file=sys.stderr, flush=True)
    done = subprocess.run(
        [str(LEAFDOC), "train", "--data", str(folder), "--out", str(root / "mymodel")],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit(f"leafdoc train failed:\n{done.stdout}\n{done.stderr}")
    return root / "mymodel"


def served(model: Path, files: list[Path], cache: Path, tag: str) -> dict[str, np.ndarray]:
    """Each photo as the model serves it: abstained or not, the not-a-leaf score, the pooled features (cached)."""
    out = cache / f"served-{tag}.npz"
    keys = np.array([str(f) for f in files])
    if out.exists():
        got = dict(np.load(out))
        if np.array_equal(got["files"], keys):
            return got
    from leafdoc.advice import shipped_knowledge
    from leafdoc.inference.predictor import Predictor

    predictor = Predictor(model)
    knowledge = shipped_knowledge()
    abstained, ood, feats = [], [], []
    for i in range(0, len(files), 128):
        chunk = files[i : i + 128]
        photos = [predictor.load(f.read_bytes(), f.name) for f in chunk]
        x = np.stack([p.x for p in photos])
        res = predictor.predict_arrays(x, predictor.decision_outputs)
        answers = predictor.answer(photos, [f.name for f in chunk], 1, knowledge, outputs=res)
        abstained += [a.abstained for a in answers]
        ood.append(predictor.ood_scores(res["features"], x))
        feats.append(res["features"].astype(np.float32))
        print(f"\r  {tag}: {min(i + 128, len(files))}/{len(files)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    got = {
        "files": keys,
        "abstained": np.array(abstained),
        "ood": np.concatenate(ood),
        "features": np.concatenate(feats),
    }
    np.savez(out, **got)
    return got


def fit_check(pos: np.ndarray, y_pos: np.ndarray, neg: np.ndarray, four: bool):
    """Logistic regression, the lab's photos against the bank: a function photos' features -> P(other leaf)."""
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([pos, neg])
    mu, sd = x.mean(0), x.std(0) + 1e-6
    y = np.concatenate([y_pos if four else np.zeros(len(pos), int), np.full(len(neg), 3 if four else 1)])
    fit = LogisticRegression(C=C, max_iter=2000, class_weight="balanced").fit((x - mu) / sd, y)
    other = list(fit.classes_).index(3 if four else 1)
    return lambda f: fit.predict_proba((f - mu) / sd)[:, other]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,30,100", help="bank photos a class")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/lab-negatives"))
    ap.add_argument("--labs", default=",".join(TRIPLES))
    ap.add_argument("--field", action="store_true", help="only the field probe: a lab of field photos of corn")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    args.cache.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    classes = sorted(d.name for d in PLANTVILLAGE.iterdir() if d.is_dir())
    extra = not_leaves()

    # Every photo's features, read once through the tomato lab's model (the same frozen Lite0 in every lab model).
    every: list[Path] = [f for c in classes for f in sorted((PLANTVILLAGE / c).iterdir())]
    every += [f for fs in extra.values() for f in fs]
    base = served(lab_model("tomato", args.cache), every, args.cache, "tomato-all")
    row = {f: i for i, f in enumerate(base["files"])}

    def feats(files: list[Path]) -> np.ndarray:
        return base["features"][[row[str(f)] for f in files]]

    print(
        f"bank: {DIM} float16 numbers a photo ({DIM * 2 / 1e6 * 1000:.2f} kB); checks at C={C}, threshold: refuse "
        f"{REFUSE_VAL:.0%} of the lab's validation photos"
    )
    if args.field:
        field_probe(args, classes, feats)
        return
    for name in args.labs.split(","):
        lab_report(name, args, sizes, classes, extra, feats)


def field_probe(args, classes: list[str], feats) -> None:
    """--field: does the check learn the leaf or the lab's kind of photo? A lab whose photos are field photos
    (field-corn's 3 classes, 20 a class, the rest cut into validation and unseen halves), against a bank of
    PlantVillage lab photos (30 a class of every class but corn's). Scored: field photos of other crops
    (field-mixed's tomato and potato; those crops are in the bank, but as lab photos) and PlantVillage lab photos."""
    lab, val, own = [], [], []
    for d in sorted((SHARED / "field-corn").iterdir()):
        files = sorted(d.iterdir())
        random.Random(f"negatives-field-{d.name}").shuffle(files)
        rest = files[20:]
        lab += files[:20]
        val += rest[: len(rest) // 2]
        own += rest[len(rest) // 2 :]
    mixed = [
        f for d in sorted((SHARED / "field-mixed").iterdir()) if not d.name.startswith("Corn") for f in d.iterdir()
    ]
    field = served(lab_model("tomato", args.cache), lab + val + own + mixed, args.cache, "field")
    f_row = {f: i for i, f in enumerate(field["files"])}

    def ff(files):
        return field["features"][[f_row[str(f)] for f in files]]

    others = [c for c in classes if crop_of(c) != "Corn_(maize)"]
    neg = np.concatenate([feats(other_parts(c)["pool"][:30]) for c in others])
    check = fit_check(ff(lab), np.zeros(len(lab), int), neg, False)
    thr = np.quantile(check(ff(val)), 1 - REFUSE_VAL)
    s_own = check(ff(own))
    print(f"\n### field lab: field-corn, {len(lab)} lab / {len(val)} validation / {len(own)} unseen photos\n")
    print(
        "| photos | n | answered by the bank check (binary, 30 a class) | AUROC against own unseen |\n|---|---|---|---|"
    )
    groups = {
        "own unseen (field corn)": s_own,
        "field photos of tomato and potato (field-mixed)": check(ff(mixed)),
        "PlantVillage corn (lab photos, 4 classes)": check(
            feats([f for c in classes if c.startswith("Corn") for f in other_parts(c)["test"]])
        ),
        "PlantVillage other crops (lab photos)": check(feats([f for c in others for f in other_parts(c)["test"]])),
    }
    for name, s in groups.items():
        area = "" if s is s_own else f"{auroc(s_own, s):.2f}"
        print(f"| {name} | {len(s)} | {np.mean(s <= thr):.1%} | {area} |", flush=True)


def lab_report(name: str, args, sizes: list[int], classes: list[str], extra: dict, feats) -> None:
    """One lab's table: its model today, then the bank checks, held out and seen, at each bank size."""
    triple = TRIPLES[name]
    crop = crop_of(triple[0])
    lab_p = {c: parts(PLANTVILLAGE, c, 30) for c in triple}
    pos = feats([f for c in triple for f in lab_p[c]["lab"]])
    y_pos = np.repeat(np.arange(3), 30)
    val = feats([f for c in triple for f in lab_p[c]["val"]])
    own_files = [f for c in triple for f in lab_p[c]["heldout"]]
    others = [c for c in classes if c not in triple]
    test = {c: other_parts(c)["test"] for c in others}
    groups: dict[str, list[str]] = {}
    for c in others:
        groups.setdefault(c if crop_of(c) == crop else crop_of(c), []).append(c)

    # (a) the lab's model as trained today, on the same photos
    model = lab_model(name, args.cache)
    scored_files = own_files + [f for c in others for f in test[c]] + [f for fs in extra.values() for f in fs]
    today = served(model, scored_files, args.cache, f"{name}-scored")
    t_row = {f: i for i, f in enumerate(today["files"])}

    def today_of(files, key):
        return today[key][[t_row[str(f)] for f in files]]

    own_ans_today = ~today_of(own_files, "abstained")
    own_ood = today_of(own_files, "ood")
    own_feat = feats(own_files)

    print(f"\n### {name}: {', '.join(triple)}\n")
    print(
        "| check | bank | bank MB (f16) | fit CPU s | own unseen answered | other crops answered (AUROC) | "
        f"{crop} other conditions answered (AUROC) | flowers / CIFAR answered |"
    )
    print("|---|---|---|---|---|---|---|---|")

    def line(check, bank, mb, fit_s, own, oc, oc_auc, cond, cond_auc, nl=""):
        print(
            f"| {check} | {bank} | {mb} | {fit_s} | {own:.1%} | {oc:.1%} ({oc_auc:.2f}) | {cond:.1%} "
            f"({cond_auc:.2f}) | {nl} |",
            flush=True,
        )

    other_crop = [c for c in others if crop_of(c) != crop]
    same_crop = [c for c in others if crop_of(c) == crop]
    oc_files = [f for c in other_crop for f in test[c]]
    sc_files = [f for c in same_crop for f in test[c]]
    nl = " / ".join(f"{np.mean(~today_of(fs, 'abstained')):.0%}" for fs in extra.values())
    line(
        "(a) the model as trained today",
        "none",
        "0",
        "",
        own_ans_today.mean(),
        np.mean(~today_of(oc_files, "abstained")),
        auroc(own_ood, today_of(oc_files, "ood")),
        np.mean(~today_of(sc_files, "abstained")),
        auroc(own_ood, today_of(sc_files, "ood")),
        nl,
    )

    for four in (False, True):
        kind = "4-class" if four else "binary"
        for n in sizes:
            pool = {c: feats(other_parts(c)["pool"][:n]) for c in others}
            # held out: leave one group (another crop, or one other condition of the lab's crop) out of the bank
            res = {"oc": [], "sc": []}  # per group: (answered b, answered a+b, auroc, n)
            own_b, own_ab, fit_cpu = [], [], []
            for g, members in groups.items():
                neg = np.concatenate([pool[c] for c in others if c not in members])
                t0 = cpu()
                check = fit_check(pos, y_pos, neg, four)
                fit_cpu.append(cpu() - t0)
                thr = np.quantile(check(val), 1 - REFUSE_VAL)
                s_own = check(own_feat)
                own_b.append(s_own <= thr)
                own_ab.append((s_own <= thr) & own_ans_today)
                files = [f for c in members for f in test[c]]
                s = check(feats(files))
                ans_b = s <= thr
                ans_ab = ans_b & ~today_of(files, "abstained")
                res["sc" if g in same_crop else "oc"].append((ans_b, ans_ab, auroc(s_own, s), len(files)))

            def agg(key, k, res=res):
                rows = res[key]
                if not rows:
                    return float("nan"), float("nan")
                answered = np.concatenate([r[k] for r in rows]).mean()
                area = sum(r[2] * r[3] for r in rows) / sum(r[3] for r in rows)
                return answered, area

            bank_desc = f"{n} a class, held out ({len(groups)} folds)"
            mb = f"{len(others) * n * DIM * 2 / 1e6:.2f}"
            fit_s = f"{np.median(fit_cpu):.1f}"
            line(f"(b) {kind}", bank_desc, mb, fit_s, np.concatenate(own_b).mean(), *agg("oc", 0), *agg("sc", 0))
            oc_a, oc_auc = agg("oc", 1)
            sc_a, sc_auc = agg("sc", 1)
            line(f"(c) model + {kind}", bank_desc, mb, "", np.concatenate(own_ab).mean(), oc_a, oc_auc, sc_a, sc_auc)

            # seen: one bank of every class but the lab's, the same test photos
            neg = np.concatenate([pool[c] for c in others])
            t0 = cpu()
            check = fit_check(pos, y_pos, neg, four)
            fit_s = f"{cpu() - t0:.1f}"
            thr = np.quantile(check(val), 1 - REFUSE_VAL)
            s_own = check(own_feat)
            s_oc, s_sc = check(feats(oc_files)), check(feats(sc_files))
            nl = " / ".join(f"{np.mean(check(feats(fs)) <= thr):.0%}" for fs in extra.values())
            line(
                f"(b) {kind}",
                f"{n} a class, seen",
                mb,
                fit_s,
                np.mean(s_own <= thr),
                np.mean(s_oc <= thr),
                auroc(s_own, s_oc),
                np.mean(s_sc <= thr),
                auroc(s_own, s_sc),
                nl,
            )


if __name__ == "__main__":
    main()
