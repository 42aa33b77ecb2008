"""A model that learns the field, through the service (issue 21 item 4): what a user's own field photos do
when they are uploaded and a retraining job runs on them.

Over a throw-away data home (scripts/demo_home.py's `use_home`) whose dataset is PlantVillage photos, it starts
a real `leafdoc serve` (API and job worker: the desktop app's LocalServer) serving the starter, and as a user
and an admin would, over HTTP only (leafdoc.api_client, as the desktop app):
1. sends the lab photos it compares on (the starter's test split, which the dataset leaves out) and the held-out
   half of field-corn (sha256 first hex digit 8-f, never uploaded) through `POST /v1/predict`;
2. uploads the training half of field-corn (sha256 0-7) as a zip of class folders (`POST /v1/uploads`: a new
   dataset version at once, no separate acceptance step);
3. starts a retraining job (`POST /v1/training-jobs`, warm-started from the serving model, `field_dirs: []`: it
   learns the field photos, so it gets no unlike-training check) and follows it;
4. promotes the new version if the promotion rule did not (`POST /v1/models/{v}/promote`, saying so);
5. sends the same photos through `/v1/predict` again, now answered by the new version.
It then reads the new version's split.json from the data home: how many uploaded field photos the job trained
on, and that no compared photo is in any of its splits. Prints a Markdown table; the raw figures go to
benchmarks/out/field_retrain.json. About 15 minutes on two shared cores with the defaults.

    nice -n 10 .venv/bin/python benchmarks/field_retrain.py [--per-class 40] [--fine-tune-epochs 4] ...

tests/e2e/test_field_retrain.py runs `run` with the tests' tiny model and sizes.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from demo_home import PLANTVILLAGE, use_home  # noqa: E402

from leafdoc.api_client import LeafdocClient  # noqa: E402
from leafdoc.desktop.local_server import LocalServer  # noqa: E402
from leafdoc.evaluate.significance import mcnemar, wilson_interval  # noqa: E402
from leafdoc.imaging.photos import is_image_name  # noqa: E402
from leafdoc.inference.field import calibration_part  # noqa: E402
from leafdoc.modelfolder import read_labels, read_split  # noqa: E402

SHARED = PLANTVILLAGE.parent
FIELD = SHARED / "field-corn"
NONLEAF = (SHARED / "flowers", SHARED / "cifar10" / "train")
STARTER = REPO / "models" / "starter"
DATASET = "plantvillage"
OUT = REPO / "benchmarks" / "out" / "field_retrain.json"
ENV = ("LEAFDOC_HOME", "LEAFDOC_MODEL_DIR", "LEAFDOC_DEFAULT_DATASET", "LEAFDOC_NONLEAF_DIRS")
REASONS = ("poor_photo", "not_a_leaf", "unlike_training", "unsure")


@dataclass
class Sizes:
    model: Path = STARTER  # what serves first, and what the job warm-starts from
    per_class: int = 40  # PlantVillage photos per class in the dataset (none from the model's test split)
    lab_eval_per_class: int | None = 10  # photos per class of the model's test split to compare on (None: all)
    field_classes: tuple[str, ...] | None = None  # field-corn classes to upload and compare on (None: all)
    field_per_class: int | None = None  # training-half photos uploaded per class (None: all)
    held_out_per_class: int | None = None  # held-out photos compared per class (None: all)
    nonleaf_per_set: int = 150  # non-leaf examples per set for the jobs' not-a-leaf check (0: none)
    options: dict = field(default_factory=lambda: {"epochs": 1, "fine_tune_epochs": 4})  # the job's options
    job_timeout: float = 3600.0


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def images_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_name(p))


def field_halves(
    classes: tuple[str, ...] | None = None, upload_per_class: int | None = None, held_per_class: int | None = None
) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]]]:
    """Field-corn split by calibration_part (inference/field.py): the training half (sha256 0-7) to upload,
    the held-out half (8-f) to compare on, each (photo, class), at most so many per class."""
    upload, held = [], []
    for folder in sorted(p for p in FIELD.iterdir() if p.is_dir()):
        if classes is not None and folder.name not in classes:
            continue
        photos = images_of(folder)
        ours = [(p, folder.name) for p in photos if calibration_part(p)]
        theirs = [(p, folder.name) for p in photos if not calibration_part(p)]
        upload += ours[:upload_per_class]
        held += theirs[:held_per_class]
    return upload, held


def lab_photos(
    labels: list[str], never: set[str], per_class: int, eval_per_class: int | None
) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]]]:
    """PlantVillage photos of the model's classes: `per_class` for the dataset, none of them in `never` (the
    model's test split); and up to `eval_per_class` of `never` to compare on."""
    dataset, compare = [], []
    for cls in labels:
        photos = [(p, sha256(p)) for p in images_of(PLANTVILLAGE / cls)]
        dataset += [(p, cls) for p, s in photos if s not in never][:per_class]
        compare += [(p, cls) for p, s in photos if s in never][:eval_per_class]
    return dataset, compare


def copy_to(dest: Path, photos: list[tuple[Path, str]]) -> Path:
    for p, cls in photos:
        (dest / cls).mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, dest / cls / p.name)
    return dest


def zip_of(path: Path, photos: list[tuple[Path, str]]) -> Path:
    """A zip of class folders, as a user makes one of their labelled photos."""
    with zipfile.ZipFile(path, "w") as zf:
        for p, cls in photos:
            zf.write(p, f"{cls}/{p.name}")
    return path


def nonleaf_sample(dest: Path, per_set: int) -> list[Path]:
    """`per_set` photos of each non-leaf set (flowers, CIFAR-10 train), spread over its classes."""
    out = []
    for source in NONLEAF:
        folder = dest / source.name
        folder.mkdir(parents=True)
        photos = sorted(p for p in source.rglob("*") if p.is_file() and is_image_name(p))
        for p in photos[:: max(1, len(photos) // per_set)][:per_set]:
            shutil.copy2(p, folder / f"{p.parent.name}-{p.name}")
        out.append(folder)
    return out


@contextlib.contextmanager
def scoped_env(**values: str | None) -> Iterator[None]:
    """Set (or, with None, remove) environment variables, and put back what was there on the way out."""

    def put(pairs: dict[str, str | None]) -> None:
        for k, v in pairs.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    before = {k: os.environ.get(k) for k in (*values, *ENV)}
    try:
        put(values)
        yield
    finally:
        put(before)


def ask(client: LeafdocClient, photos: list[tuple[Path, str]], say: Callable[[str], None]) -> list[dict]:
    """Each photo through POST /v1/predict; per photo: its truth, the top-1 label, whether and why it abstained."""
    out = []
    t0 = time.perf_counter()
    for i, (p, truth) in enumerate(photos, 1):
        a = client.predict(p.read_bytes(), p.name, top_k=3)
        out.append(
            {
                "file": f"{truth}/{p.name}",
                "truth": truth,
                "top1": a["top_k"][0]["label"],
                "answered": not a["abstained"],
                "reason": a["reason"] if a["abstained"] else None,
                "version": a["model_version"],
            }
        )
        if i % 50 == 0:
            say(f"  {i}/{len(photos)} photos ({time.perf_counter() - t0:.0f} s)")
    return out


def summary(answers: list[dict]) -> dict:
    """Top-1 accuracy on every photo (no abstention), share answered, right on answered, abstentions by reason."""
    n = len(answers)
    right = sum(a["top1"] == a["truth"] for a in answers)
    answered = [a for a in answers if a["answered"]]
    right_answered = sum(a["top1"] == a["truth"] for a in answered)
    return {
        "n": n,
        "accuracy": right / n,
        "accuracy_ci": wilson_interval(right, n),
        "answered": len(answered) / n,
        "right_on_answered": right_answered / len(answered) if answered else None,
        "n_answered": len(answered),
        "abstained": dict(Counter(a["reason"] for a in answers if not a["answered"])),
        "labels_said": dict(Counter(a["top1"] for a in answers)),
    }


def follow(client: LeafdocClient, job_id: str, timeout: float, say: Callable[[str], None]) -> dict:
    deadline, said = time.monotonic() + timeout, None
    while True:
        job = client.job(job_id)
        progress = job.get("progress") or {}
        line = f"  job {job['state']}: {progress.get('phase', '')} epoch {job.get('epoch') or 0}/{job['epochs']}"
        if line != said:
            say(line)
            said = line
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        if time.monotonic() > deadline:
            client.cancel_job(job_id)
            raise TimeoutError(f"the training job did not end within {timeout:.0f} s")
        time.sleep(2.0)


def in_splits(split: dict, shas: set[str]) -> dict[str, int]:
    return {part: len(shas & set(split.get(part, []))) for part in ("train", "val", "test")}


def trained_on(home: Path, version: int, groups: dict[str, set[str]]) -> dict[str, dict[str, int]]:
    """How many photos of each group the version's split.json puts in train, val and test (read in the data home
    the server wrote: the API does not hand out split.json)."""
    from leafdoc.core.settings import Settings
    from leafdoc.lifecycle.workspace import Workspace

    ws = Workspace.open(Settings(home=home))
    try:
        split = read_split(ws.registry.local_dir(version))
    finally:
        ws.catalog.dispose()
    return {name: in_splits(split, shas) for name, shas in groups.items()}


def run(sizes: Sizes, root: Path, say: Callable[[str], None] = print) -> dict:
    """Everything above in `root` (a throw-away folder); the figures as a dict."""
    t_start = time.perf_counter()
    labels = read_labels(sizes.model)
    served_split = read_split(sizes.model)
    never = set(served_split.get("test", []))
    lab_data, lab_eval = lab_photos(labels, never, sizes.per_class, sizes.lab_eval_per_class)
    upload, held_out = field_halves(sizes.field_classes, sizes.field_per_class, sizes.held_out_per_class)
    if not upload or not held_out or not lab_eval:
        raise SystemExit(
            f"nothing to compare on: {len(upload)} to upload, {len(held_out)} held out, {len(lab_eval)} lab"
        )
    compared = {
        "field held out": held_out,
        "lab (the serving model's test split)": lab_eval,
    }
    shas = {
        "uploaded field photos": {sha256(p) for p, _ in upload},
        "held-out field photos": {sha256(p) for p, _ in held_out},
        "compared lab photos": {sha256(p) for p, _ in lab_eval},
        # what the promotion rule leaves out of the job's test split (lifecycle/promotion.py)
        "the serving model's training and validation photos": set(served_split["train"]) | set(served_split["val"]),
    }
    assert not shas["held-out field photos"] & shas["uploaded field photos"], "a held-out photo would be uploaded"
    nonleaf = nonleaf_sample(root / "nonleaf", sizes.nonleaf_per_set) if sizes.nonleaf_per_set else []
    results: dict = {
        "sizes": {
            **asdict(sizes),
            "model": str(sizes.model.relative_to(REPO) if sizes.model.is_relative_to(REPO) else sizes.model.name),
        },
        "counts": {
            "dataset_lab_photos": len(lab_data),
            "uploaded": dict(Counter(c for _, c in upload)),
            "held_out": dict(Counter(c for _, c in held_out)),
            "lab_compared": len(lab_eval),
        },
    }
    env = {
        "LEAFDOC_MODEL_DIR": str(sizes.model),
        "LEAFDOC_NONLEAF_DIRS": ":".join(str(p) for p in nonleaf) or None,
        "LEAFDOC_WORKER_POLL_SECONDS": "0.5",
    }
    with scoped_env(**env):
        home = use_home(root / "home", copy_to(root / DATASET, lab_data), DATASET)
        server = LocalServer(root / "serve.log")
        server.start()
        try:
            server.wait_ready()
            with LeafdocClient(server.base, admin_token=server.token) as client:
                results.update(through_the_service(client, sizes, compared, upload, root, say))
            v = results["new_version"]
            results["in_splits"] = trained_on(home, v, shas)
        except BaseException:
            say(server.log_tail(3000))
            raise
        finally:
            server.stop()
    results["wall_seconds"] = time.perf_counter() - t_start
    return results


def through_the_service(
    client: LeafdocClient, sizes: Sizes, compared: dict, upload: list, root: Path, say: Callable[[str], None]
) -> dict:
    out: dict = {"answers": {}, "timings": {}}
    before = client.models()["serving_version"]
    t = time.perf_counter()
    for name, photos in compared.items():
        say(f"{name}: {len(photos)} photos through /v1/predict, version {before} serving")
        out["answers"][f"{name} | before"] = ask(client, photos, say)
    out["timings"]["predict_before_s"] = time.perf_counter() - t

    t = time.perf_counter()
    say(f"uploading {len(upload)} field photos as a zip of class folders")
    up = client.upload(zip_of(root / "field-photos.zip", upload), dataset=DATASET)
    out["upload"] = {k: up[k] for k in ("version", "created_version", "added", "n_images", "classes")}
    out["upload"]["duplicates"] = len(up["duplicates"])
    out["upload"]["near_duplicates"] = len(up["near_duplicates"])
    out["upload"]["rejected"] = up["rejected"]
    out["timings"]["upload_s"] = time.perf_counter() - t
    say(f"  dataset {DATASET} v{up['version']}: {up['added']} added, {len(up['rejected'])} rejected")

    t = time.perf_counter()
    # The uploads are field photos for the model to learn: say so, or a retrain of a model that refuses field
    # photos (the starter) is refused (service/training.py keeps_field_check); the new version has no such check.
    job = client.start_training(dataset=DATASET, options={**sizes.options, "field_dirs": []})
    say(f"training job {job['id']} on {DATASET} v{job['dataset_version']}, options {sizes.options}")
    job = follow(client, job["id"], sizes.job_timeout, say)
    out["timings"]["job_s"] = time.perf_counter() - t
    if job["state"] != "succeeded":
        raise RuntimeError(f"the training job {job['state']}: {job['error']}")
    v = job["candidate_version"]
    out["job"] = {
        k: job[k] for k in ("id", "dataset_version", "options", "warm_start", "parent_version", "metrics", "promotion")
    }
    card = client.model(v)["card"]
    out["job"]["split"] = (card.get("dataset") or {}).get("split")
    out["job"]["train_seconds"] = card.get("train_seconds")
    out["new_version"] = v
    decision = job["promotion"]
    say(f"  version {v}: {decision['reason']} -> {'promoted' if decision['promoted'] else 'not promoted'}")
    if not decision["promoted"]:
        client.promote(v, reason="field_retrain benchmark: promoted by hand to measure it through /v1/predict")
    out["promoted_by"] = "the rule" if decision["promoted"] else "an admin (the benchmark), to measure it"
    if client.ready().get("model_version") != v:
        raise RuntimeError(f"version {v} was promoted but /readyz serves {client.ready().get('model_version')}")

    t = time.perf_counter()
    for name, photos in compared.items():
        say(f"{name}: {len(photos)} photos through /v1/predict, version {v} serving")
        out["answers"][f"{name} | after"] = ask(client, photos, say)
    out["timings"]["predict_after_s"] = time.perf_counter() - t
    for name in compared:
        a, b = out["answers"][f"{name} | before"], out["answers"][f"{name} | after"]
        if {x["version"] for x in a} != {before} or {x["version"] for x in b} != {v}:
            raise RuntimeError(f"{name}: answers came from other versions than {before} and {v}")
        out.setdefault("summary", {})[name] = {
            "before": summary(a),
            "after": summary(b),
            "mcnemar": mcnemar(
                "".join("1" if x["top1"] == x["truth"] else "0" for x in a),
                "".join("1" if x["top1"] == x["truth"] else "0" for x in b),
            ),
        }
    out["versions"] = {"before": before, "after": v}
    return out


def pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def table(results: dict) -> str:
    before, after = results["versions"]["before"], results["versions"]["after"]
    rows = [
        "| photos | model | top-1 accuracy, no abstention (95% CI) | answered | right on answered | abstained: "
        + ", ".join(REASONS)
        + " |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in results["summary"].items():
        for when, v, what in (("before", before, "serving (starter)"), ("after", after, "retrained")):
            f = s[when]
            lo, hi = f["accuracy_ci"]
            reasons = ", ".join(str(f["abstained"].get(r, 0)) for r in REASONS)
            rows.append(
                f"| {name} ({f['n']}) | v{v} {what} | **{pct(f['accuracy'])}** ({lo:.1%}-{hi:.1%}) | "
                f"{pct(f['answered'])} | {pct(f['right_on_answered'])} | {reasons} |"
            )
        m = s["mcnemar"]
        rows.append(
            f"| | McNemar, top-1 | {m['only_a']} right only before, {m['only_b']} only after, p = {m['p']:.3g} | | | |"
        )
    return "\n".join(rows)


def report(results: dict) -> str:
    splits = results["in_splits"]
    job = results["job"]
    lines = [
        table(results),
        "",
        f"Upload: {results['upload']['added']} field photos added -> dataset v{results['upload']['version']} "
        f"({results['upload']['n_images']} photos), {len(results['upload']['rejected'])} rejected, "
        f"{results['upload']['near_duplicates']} near-duplicates noted.",
        f"Job {job['id']}: options {job['options'].get('image_size')} px, head {job['options'].get('epochs')} + "
        f"fine-tune {job['options'].get('fine_tune_epochs')} epochs, warm start {job['warm_start']} from "
        f"v{job['parent_version']}; split {job['split']}; training {job['train_seconds'] or 0:.0f} s.",
        f"Promotion rule: {job['promotion']['reason']}; promoted by {results['promoted_by']}.",
        "In the new version's split.json: " + "; ".join(f"{k}: {v}" for k, v in splits.items()) + ".",
        f"Wall time {results['wall_seconds'] / 60:.1f} min "
        + "("
        + ", ".join(f"{k} {v:.0f} s" for k, v in results["timings"].items())
        + ").",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    d = Sizes()
    ap.add_argument("--model", type=Path, default=d.model, help="the model that serves first (default the starter)")
    ap.add_argument("--per-class", type=int, default=d.per_class, help="PlantVillage photos per class in the dataset")
    ap.add_argument("--lab-eval-per-class", type=int, default=d.lab_eval_per_class, help="test-split photos compared")
    ap.add_argument("--nonleaf-per-set", type=int, default=d.nonleaf_per_set, help="non-leaf examples per set")
    ap.add_argument("--image-size", type=int, default=None, help="the job's image size (default: the serving model's)")
    ap.add_argument("--epochs", type=int, default=d.options["epochs"], help="the job's head epochs")
    ap.add_argument("--fine-tune-epochs", type=int, default=d.options["fine_tune_epochs"])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    options = {"epochs": args.epochs, "fine_tune_epochs": args.fine_tune_epochs}
    if args.image_size:
        options["image_size"] = args.image_size
    sizes = Sizes(
        model=args.model.resolve(),
        per_class=args.per_class,
        lab_eval_per_class=args.lab_eval_per_class,
        nonleaf_per_set=args.nonleaf_per_set,
        options=options,
    )
    with tempfile.TemporaryDirectory(prefix="leafdoc-field-retrain-") as tmp:
        results = run(sizes, Path(tmp), lambda s: print(s, flush=True))
    text = report(results)
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=str))
    args.out.with_suffix(".md").write_text(text + "\n")
    print(f"\nraw figures: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
