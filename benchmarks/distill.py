"""Issue 19: does distilling the starter (the teacher) into a small fast student buy speed back without the
accuracy? Two students trained side by side, identical but for the loss; prints a Markdown table; not a test.

    nice -n 10 .venv/bin/python benchmarks/distill.py [--head-epochs 3] [--fine-tune-epochs 20] [--runs 300]

- Photos: the teacher's own split (models/starter/split.json, by sha256). The students train on its train split,
  their epoch is chosen on its validation split (lowest validation cross-entropy, leafdoc's `restore_best`
  default), and they are scored once on its test split, as is the teacher, on the same photos.
- Arms: (a) cross-entropy on the hard labels; (b) knowledge distillation, alpha * T^2 * KL(teacher/T || student/T)
  + (1 - alpha) * CE with T = 4 and alpha = 0.7, the usual values, fixed before any run and not tuned
  (benchmarks/distill_loss.py; arm (a) is the same loss with alpha = 0). Everything else is the same: model,
  initial weights (same seed), photo order, augmentation draws, schedule, epochs.
- Teacher logits: computed once with ONNX Runtime (the teacher's model.onnx) on the UN-augmented training photos
  at the teacher's 160 px, and cached in benchmarks/out/distill/. The student sees its own 96-px arrays with
  leafdoc's training augmentation (flips, rotation, zoom, brightness, contrast: leafdoc.train.pipeline.augmenter)
  against the logits of the un-augmented photo: offline distillation.
- Student: leafdoc's own model (leafdoc.train.trainer.build_model), EfficientNet-Lite0 with ImageNet weights at
  96 px by default; trained as leafdoc's trainer does: the head on the frozen backbone at --learning-rate, then the
  whole backbone with BatchNorm frozen at a 10x lower rate, cosine-decaying to 1% of it; by default 3 head epochs
  and 20 fine-tuning epochs (the starter's own run fine-tuned 20; about 12 s and 26 s an epoch on a quiet 2-core
  machine). No class weights (the split is balanced: 150 photos a class). `--weights none` trains from scratch
  in one cosine phase (the trainer's from-scratch recipe), e.g. `--backbone mobilenet_v2 --width 0.75 --weights
  none --head-epochs 20`.
- Cost: each student exported with leafdoc's ONNX export (the serving graph, four outputs); ONNX Runtime, batch 1,
  one thread, the `probabilities` + `features` outputs a decision reads, teacher fp32, teacher int8 (if the folder
  has model.int8.onnx) and the students timed in turns, round after round; the median. The machine is shared:
  read the ratios to the teacher, not the milliseconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
from shared_data import SHARED  # noqa: E402

OUT = REPO / "benchmarks" / "out" / "distill"
sys.path.insert(0, str(REPO / "benchmarks"))

from distill_loss import ALPHA, TEMPERATURE, distillation_loss, pack_targets  # noqa: E402
from timing import timed_in_turns  # noqa: E402

from leafdoc.evaluate.significance import mcnemar, wilson_interval  # noqa: E402
from leafdoc.imaging.photos import preprocess  # noqa: E402
from leafdoc.inference.calibrate import split_photos  # noqa: E402
from leafdoc.modelfolder import read_card, read_labels, read_split  # noqa: E402

PARTS = ("train", "val", "test")
TIMED_OUTPUTS = ["probabilities", "features"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def session(path: Path, threads: int | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_logits(sess, x: np.ndarray, batch: int = 64) -> np.ndarray:
    name = sess.get_inputs()[0].name
    parts = [sess.run(["logits"], {name: np.asarray(x[i : i + batch], np.float32)})[0] for i in range(0, len(x), batch)]
    return np.concatenate(parts)


def first_per_class(items: list[tuple[Path, int]], n: int) -> list[tuple[Path, int]]:
    """A smoke run's photos: the first n of each class."""
    seen: dict[int, int] = {}
    kept = []
    for path, y in items:
        seen[y] = seen.get(y, 0) + 1
        if seen[y] <= n:
            kept.append((path, y))
    return kept


def load_inputs(model_dir: Path, data: Path, size: int, per_class: int | None) -> dict:
    """The student's arrays and labels of every part, and the teacher's logits for the same photos (un-augmented,
    at the teacher's size); cached under benchmarks/out/distill/ by teacher file, student size and subset."""
    onnx_sha = hashlib.sha256((model_dir / "model.onnx").read_bytes()).hexdigest()[:12]
    cache = OUT / f"inputs-{onnx_sha}-{size}px{f'-{per_class}pc' if per_class else ''}.npz"
    if cache.is_file():
        log(f"inputs from {cache.relative_to(REPO)}")
        with np.load(cache) as z:
            return {k: z[k] for k in z.files}
    teacher_size = read_card(model_dir).input.size
    photos = split_photos(data, read_split(model_dir), read_labels(model_dir))
    teacher = session(model_dir / "model.onnx")
    int8 = session(model_dir / "model.int8.onnx") if (model_dir / "model.int8.onnx").is_file() else None
    out, t0 = {}, time.perf_counter()
    for part in PARTS:
        items = photos[part]
        if per_class:
            items = first_per_class(items, per_class)
        # The int8 copy scores the same validation and test photos (its accuracy is what a student must beat).
        teachers = {"teacher": teacher} | ({"teacher8": int8} if int8 is not None and part != "train" else {})
        xs, logits = [], {k: [] for k in teachers}
        for start in range(0, len(items), 256):  # chunks: the 160-px arrays of 3,174 photos need not all be held
            chunk = [p for p, _ in items[start : start + 256]]
            xs.append(np.stack([preprocess(p, size) for p in chunk]))
            big = np.stack([preprocess(p, teacher_size) for p in chunk])
            for k, sess in teachers.items():
                logits[k].append(run_logits(sess, big))
        out[f"x_{part}"] = np.concatenate(xs)
        out[f"y_{part}"] = np.array([y for _, y in items], np.int32)
        for k, v in logits.items():
            out[f"{k}_{part}"] = np.concatenate(v).astype(np.float32)
        log(f"{part}: {len(items)} photos, teacher logits at {teacher_size} px")
    out["seconds"] = np.array(time.perf_counter() - t0)
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **out)
    tmp.replace(cache)
    return out


def train_dataset(x: np.ndarray, targets: np.ndarray, batch: int, seed: int, augment):
    import tensorflow as tf

    xs, ts = tf.constant(x), tf.constant(targets)
    ds = tf.data.Dataset.range(len(x)).shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(batch)

    def gather(i):
        return tf.cast(tf.gather(xs, i), tf.float32), tf.gather(ts, i)

    def augmented(x, y):
        return augment(x, training=True), y

    ds = ds.map(gather)
    if augment is not None:  # sequential, as leafdoc's pipeline: one seeded generator, the same draws each run
        ds = ds.map(augmented)
    return ds.prefetch(tf.data.AUTOTUNE)


def flips(seed: int):
    import keras

    return keras.Sequential([keras.layers.RandomFlip("horizontal_and_vertical", seed=seed)], name="flips")


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    z = logits - logits.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(y)), y].mean())


def train_arm(name: str, alpha: float, cfg, inputs: dict, n_classes: int, augment: str, dest: Path) -> dict:
    """Train one student; restore its best validation epoch; export its serving ONNX to `dest`."""
    import keras

    from leafdoc.train.export import export_onnx
    from leafdoc.train.pipeline import augmenter
    from leafdoc.train.trainer import build_model

    keras.utils.set_random_seed(cfg.seed)  # the same initial head, photo order and augmentation draws in each arm
    model = build_model(cfg, n_classes, weights_cache=OUT / "weights")
    student = keras.Model(model.inputs, model.get_layer("logits").output, name="student_logits")
    aug = augmenter(cfg.seed) if augment == "leafdoc" else flips(cfg.seed)
    targets = pack_targets(inputs["y_train"], inputs["teacher_train"])
    ds = train_dataset(inputs["x_train"], targets, cfg.batch_size, cfg.seed, aug)
    steps = int(np.ceil(len(targets) / cfg.batch_size))
    x_val, y_val = inputs["x_val"].astype(np.float32), inputs["y_val"]
    loss = distillation_loss(alpha, TEMPERATURE)
    best = {"val_ce": None, "epoch": 0, "weights": None}
    history: list[dict] = []
    t0 = time.perf_counter()

    def run(phase: str, epochs: int, lr) -> None:
        student.compile(optimizer=keras.optimizers.Adam(lr), loss=loss)
        for _ in range(epochs):
            t = time.perf_counter()
            fit = student.fit(ds, epochs=1, verbose=0, shuffle=False)
            val_logits = student.predict(x_val, batch_size=64, verbose=0)
            row = {
                "epoch": len(history) + 1,
                "phase": phase,
                "loss": float(fit.history["loss"][-1]),
                "val_ce": cross_entropy(val_logits, y_val),
                "val_accuracy": float((val_logits.argmax(1) == y_val).mean()),
                "seconds": round(time.perf_counter() - t, 1),
            }
            history.append(row)
            if best["val_ce"] is None or row["val_ce"] < best["val_ce"]:
                best.update(val_ce=row["val_ce"], epoch=row["epoch"], weights=model.get_weights())
            log(
                f"{name} {phase} epoch {row['epoch']}: loss {row['loss']:.4f}, val CE {row['val_ce']:.4f}, "
                f"val accuracy {row['val_accuracy']:.4f}, {row['seconds']} s"
            )

    backbone = model.get_layer("backbone")
    if cfg.pretrained:  # leafdoc's trainer: the head on the frozen backbone, then all of it, BatchNorm frozen
        backbone.trainable = False
        run("head", cfg.epochs, cfg.base_learning_rate)
        if cfg.fine_tune_epochs:
            backbone.trainable = True
            for layer in backbone.layers:
                layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)
            decay = keras.optimizers.schedules.CosineDecay(
                cfg.base_learning_rate / 10, decay_steps=cfg.fine_tune_epochs * steps, alpha=0.01
            )
            run("fine_tune", cfg.fine_tune_epochs, decay)
    else:  # from scratch: one phase, cosine decay (the trainer's recipe)
        decay = keras.optimizers.schedules.CosineDecay(
            cfg.base_learning_rate, decay_steps=cfg.epochs * steps, alpha=0.01
        )
        run("scratch", cfg.epochs, decay)
    seconds = time.perf_counter() - t0
    model.set_weights(best["weights"])
    export_onnx(model, dest, cfg.image_size)
    return {"alpha": alpha, "best_epoch": best["epoch"], "history": history, "train_seconds": round(seconds, 1)}


def score(logits: np.ndarray, y: np.ndarray) -> dict:
    right = logits.argmax(1) == y
    lo, hi = wilson_interval(int(right.sum()), len(y))
    return {"n": len(y), "correct": int(right.sum()), "accuracy": float(right.mean()), "ci95": [lo, hi]}


def timings(files: dict[str, Path], sizes: dict[str, int], runs: int) -> dict[str, float]:
    """Median ms per photo, batch 1, one thread; the models timed in turns (timing.timed_in_turns)."""
    sessions = {k: session(p, threads=1) for k, p in files.items()}
    rng = np.random.default_rng(0)
    feeds = {
        k: {s.get_inputs()[0].name: rng.integers(0, 255, (1, sizes[k], sizes[k], 3)).astype(np.float32)}
        for k, s in sessions.items()
    }
    return timed_in_turns(
        {k: (lambda s=s, feed=feeds[k]: s.run(TIMED_OUTPUTS, feed)) for k, s in sessions.items()}, runs
    )


def pct(r: dict) -> str:
    return f"{r['accuracy']:.1%} ({r['ci95'][0]:.1%}–{r['ci95'][1]:.1%})"


def main() -> int:
    from leafdoc.train.config import TrainConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=REPO / "models" / "starter", help="The teacher's model folder.")
    ap.add_argument("--data", type=Path, default=SHARED / "plantvillage", help="The folder the teacher trained on.")
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--weights", default="imagenet", help="imagenet, or none (from scratch: one phase)")
    ap.add_argument("--width", type=float, default=1.0, help="MobileNetV2's alpha (width), e.g. 0.75")
    ap.add_argument("--size", type=int, default=96, help="The student's input size in pixels.")
    ap.add_argument("--head-epochs", type=int, default=3, help="Head epochs (pretrained) or all epochs (scratch).")
    ap.add_argument("--fine-tune-epochs", type=int, default=20)
    ap.add_argument("--learning-rate", type=float, default=1e-3, help="Head rate; fine-tuning runs at a tenth.")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--augment", choices=["leafdoc", "flips"], default="leafdoc")
    ap.add_argument("--arms", default="ce,kd", help="ce (hard labels), kd (distillation), or both, in that order.")
    ap.add_argument("--per-class", type=int, help="Smoke run: only the first N photos of each class per split.")
    ap.add_argument("--runs", type=int, default=300, help="Timed calls per model (in rounds of 10).")
    ap.add_argument("--no-int8", dest="int8", action="store_false", help="Skip the students' int8 copies.")
    ap.add_argument("--prepare", action="store_true", help="Only compute and cache the inputs and teacher logits.")
    ap.add_argument("--tag", default="lite0-96", help="Names the exported students and the JSON in the out folder.")
    args = ap.parse_args()

    if not (args.model / "split.json").is_file():
        print(f"error: {args.model} has no split.json; pass the teacher's model folder with --model", file=sys.stderr)
        return 1
    if not args.data.is_dir():
        print(f"error: {args.data} is not a folder; pass the teacher's data with --data", file=sys.stderr)
        return 1
    arms = {"ce": 0.0, "kd": ALPHA}
    chosen = [a.strip() for a in args.arms.split(",")]
    if not chosen or any(a not in arms for a in chosen):
        print(f"error: --arms {args.arms!r}: use ce, kd or ce,kd", file=sys.stderr)
        return 1
    cfg = TrainConfig(
        backbone=args.backbone,
        weights=args.weights,
        alpha=args.width,
        image_size=args.size,
        epochs=args.head_epochs,
        fine_tune_epochs=args.fine_tune_epochs if args.weights != "none" else 0,
        fine_tune_fraction=1.0,
        batch_size=args.batch,
        learning_rate=args.learning_rate,
        seed=0,
    )
    labels = read_labels(args.model)
    inputs = load_inputs(args.model, args.data, args.size, args.per_class)
    if args.prepare:
        for p in ("val", "test"):
            log(f"teacher {p} accuracy {pct(score(inputs[f'teacher_{p}'], inputs[f'y_{p}']))}")
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    teacher_size = read_card(args.model).input.size
    result = {
        "settings": {
            **cfg.model_dump(
                include={
                    "backbone",
                    "weights",
                    "alpha",
                    "image_size",
                    "epochs",
                    "fine_tune_epochs",
                    "batch_size",
                    "learning_rate",
                    "dropout",
                    "seed",
                }
            ),
            "temperature": TEMPERATURE,
            "kd_alpha": ALPHA,
            "augment": args.augment,
            "per_class": args.per_class,
            "selection": "lowest validation cross-entropy",
        },
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "load_before": os.getloadavg()},
        "teacher_logits_seconds": round(float(inputs["seconds"]), 1),
        "n": {p: len(inputs[f"y_{p}"]) for p in PARTS},
        "teacher": {p: score(inputs[f"teacher_{p}"], inputs[f"y_{p}"]) for p in ("val", "test")},
        "teacher_int8": {p: score(inputs[f"teacher8_{p}"], inputs[f"y_{p}"]) for p in ("val", "test")}
        if "teacher8_test" in inputs
        else None,
        "arms": {},
    }
    files = {"teacher fp32": args.model / "model.onnx"}
    sizes = {"teacher fp32": teacher_size}
    if (args.model / "model.int8.onnx").is_file():
        files["teacher int8"], sizes["teacher int8"] = args.model / "model.int8.onnx", teacher_size
    outcomes = {}
    for arm in chosen:
        dest = OUT / f"{args.tag}-{arm}.onnx"
        log(f"arm {arm} (alpha {arms[arm]}): training")
        record = train_arm(arm, arms[arm], cfg, inputs, len(labels), args.augment, dest)
        record.update(score_file(dest, inputs))
        outcomes[arm] = record.pop("test_outcomes")
        files[f"student {arm}"], sizes[f"student {arm}"] = dest, args.size
        if args.int8:
            t = time.perf_counter()
            small = int8_copy(dest, inputs)
            record["int8"] = score_file(small, inputs)
            record["int8"]["seconds"] = round(time.perf_counter() - t, 1)
            record["int8"].pop("test_outcomes")
            files[f"student {arm} int8"], sizes[f"student {arm} int8"] = small, args.size
        result["arms"][arm] = record
    teacher_test = outcome_string(inputs["teacher_test"], inputs["y_test"])
    if len(outcomes) == 2:
        result["mcnemar_test_ce_vs_kd"] = mcnemar(outcomes["ce"], outcomes["kd"])
    for arm, o in outcomes.items():
        result["arms"][arm]["mcnemar_test_vs_teacher"] = mcnemar(o, teacher_test)
    log(f"timing {len(files)} models, {args.runs} calls each, in turns")
    ms = timings(files, sizes, args.runs)
    result["ms_per_photo"] = ms
    result["machine"]["load_after"] = os.getloadavg()
    (OUT / f"{args.tag}.json").write_text(json.dumps(result, indent=2))
    print_table(result, ms, args, teacher_size)
    return 0


def outcome_string(logits: np.ndarray, y: np.ndarray) -> str:
    """'1' for a photo the model got right, '0' for a wrong one, in the photos' order (McNemar's input)."""
    return "".join("1" if r else "0" for r in logits.argmax(1) == y)


def score_file(path: Path, inputs: dict) -> dict:
    """Validation and test accuracy of an ONNX student through ONNX Runtime, and its agreement with the teacher."""
    sess = session(path)
    out = {"onnx_mb": round(path.stat().st_size / 1e6, 1)}
    for part in ("val", "test"):
        logits = run_logits(sess, inputs[f"x_{part}"])
        out[part] = score(logits, inputs[f"y_{part}"])
        out[part]["same_top1_as_teacher"] = float((logits.argmax(1) == inputs[f"teacher_{part}"].argmax(1)).mean())
        if part == "test":
            out["test_outcomes"] = outcome_string(logits, inputs["y_test"])
    return out


def int8_copy(src: Path, inputs: dict) -> Path:
    """The student's int8 copy, made as `leafdoc export --format onnx-int8` makes the teacher's: leafdoc's
    quantize_int8 calibrated on 300 training photos spread over the classes."""
    from leafdoc.inference.quantize import CALIBRATION_PHOTOS, quantize_int8, spread

    picked = spread(list(enumerate(inputs["y_train"].tolist())), CALIBRATION_PHOTOS)
    dest = src.with_name(f"{src.stem}.int8.onnx")
    quantize_int8(src, dest, inputs["x_train"][[i for i, _ in picked]])
    return dest


def print_table(result: dict, ms: dict, args, teacher_size: int) -> None:
    t = ms["teacher fp32"]
    n = result["n"]
    width = f" alpha {args.width:g}" if args.backbone == "mobilenet_v2" else ""
    schedule = (
        f"{args.head_epochs} head + {args.fine_tune_epochs} fine-tuning epochs"
        if args.weights != "none"
        else f"{args.head_epochs} epochs from scratch"
    )
    print(
        f"teacher {args.model.name} ({teacher_size} px); students {args.backbone}{width}, {args.size} px, {schedule}; "
        f"photos train/val/test "
        f"{n['train']}/{n['val']}/{n['test']}; "
        f"T={TEMPERATURE:g}, alpha={ALPHA:g}; augmentation {args.augment}; ms: median of {args.runs}, batch 1, 1 thread"
    )
    print(
        "| model | validation accuracy (95% CI) | test accuracy (95% CI) | same top-1 as teacher (test) "
        "| best epoch | training | ms/photo | vs teacher fp32 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| teacher fp32 | {pct(result['teacher']['val'])} | {pct(result['teacher']['test'])} | — | — | — "
        f"| {t:.2f} | 1.00× |"
    )
    if "teacher int8" in ms:
        r = result["teacher_int8"]
        print(
            f"| teacher int8 | {pct(r['val'])} | {pct(r['test'])} | — | — | — | {ms['teacher int8']:.2f} "
            f"| {ms['teacher int8'] / t:.2f}× |"
        )
    for arm, r in result["arms"].items():
        name = (
            "student, hard labels (CE)" if arm == "ce" else f"student, distilled (KD, T={TEMPERATURE:g}, α={ALPHA:g})"
        )
        rows = [(name, r, f"{r['best_epoch']} of {len(r['history'])}", f"{r['train_seconds'] / 60:.1f} min", "")]
        if "int8" in r:
            rows.append((f"{name}, int8", r["int8"], "same", f"+{r['int8']['seconds']:.0f} s to quantise", " int8"))
        for label, x, epoch, wall, key in rows:
            m = ms[f"student {arm}{key}"]
            print(
                f"| {label} | {pct(x['val'])} | {pct(x['test'])} | {x['test']['same_top1_as_teacher']:.1%} "
                f"| {epoch} | {wall} | {m:.2f} | {m / t:.2f}× |"
            )
    pairs = [("CE", "KD", result["mcnemar_test_ce_vs_kd"])] if "mcnemar_test_ce_vs_kd" in result else []
    pairs += [(arm, "the teacher", r["mcnemar_test_vs_teacher"]) for arm, r in result["arms"].items()]
    for a, b, m in pairs:
        print(f"McNemar, test, {a} vs {b}: {m['only_a']} right only with {a}, {m['only_b']} only with {b}, ", end="")
        print(f"p = {m['p']:.3g}")
    print(f"teacher logits (decode at both sizes + ONNX Runtime, all photos): {result['teacher_logits_seconds']:.0f} s")
    print(f"raw figures: {(OUT / f'{args.tag}.json').relative_to(REPO)}")


if __name__ == "__main__":
    sys.exit(main())
