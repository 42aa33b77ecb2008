"""The experiment's report: report.md with the comparison table, the learning curves as a PNG, what
the source reported and why these figures may differ, and the machine that measured them."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from leafdoc.core.atomic import atomic_write_bytes
from leafdoc.evaluate.report import _md_table
from leafdoc.evaluate.significance import accuracy_interval, mcnemar
from leafdoc.experiments.datacurve import curve_runs, curve_section, fit_curve
from leafdoc.experiments.heldout import held_out_rows
from leafdoc.imaging.figure_png import figure_png

CURVES = "learning_curves.png"


def machine() -> dict:
    """What a reader needs to compare timings: CPU model, cores, memory, OS, library versions."""
    cpu = platform.processor() or platform.machine()
    memory = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
                break
    except OSError:  # not Linux: platform's answer is the best there is
        pass
    out = {"cpu": cpu, "cores": os.cpu_count(), "memory": memory, "os": platform.platform()}
    try:
        import tensorflow as tf

        out["tensorflow"] = tf.__version__
    except ImportError:
        pass
    return out


def plot_learning_curves(runs: list[dict], key: str = "val_accuracy") -> Figure:
    """One line per run; a run that continues another starts where its parent stopped."""
    fig = Figure(figsize=(8, 4.8), layout="constrained")
    ax = fig.add_subplot()
    for run in runs:
        points = [(run["offset"] + h["epoch"], h[key]) for h in run["history"] if key in h]
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        line = ax.plot(xs, ys, marker="o", markersize=3, label=run["name"])[0]
        best = run.get("best_epoch")
        if best:
            hit = [y for h, y in zip(run["history"], ys, strict=False) if h["epoch"] == best]
            if hit:
                ax.plot([run["offset"] + best], hit, marker="*", markersize=11, color=line.get_color())
    ax.set_xlabel("epoch (a run that continues another starts where it stopped)")
    ax.set_ylabel(key.replace("_", " "))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(f"{key.replace('_', ' ')} per epoch (star: best epoch, restored)")
    ax.legend(fontsize=8, loc="best")
    return fig


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x:.1%}"


def _reference(results: dict) -> dict:
    """The run the others are compared with: the recipe's `reference`, else the first."""
    return next((r for r in results["runs"] if r["name"] == results["reference"]), results["runs"][0])


def comparison_rows(results: dict) -> tuple[list[str], list[list]]:
    runs, reported = results["runs"], results["reported"]
    ref = _reference(results)
    pairs = [paired_test(r, ref) for r in runs]
    external = any(r["external_test"] for r in runs)
    header = ["run", "settings that differ from base"]
    if reported:
        header.append("source reported")
    header += ["test acc (95% CI)", "macro F1", f"Δ acc vs {ref['name']}" + (" (McNemar p)" if any(pairs) else "")]
    if external:
        header += ["test folder acc", "test folder F1"]
    header += ["val acc", "best epoch", "epochs", "s/epoch", "wall s"]
    rows = []
    split_train = results["data"]["split"]["train"]
    for r, paired in zip(runs, pairs, strict=True):
        differs = list(r["differs"])
        if r.get("train_images") and r["train_images"] < split_train:  # train_share / train_imbalance left some out
            differs.append(f"{r['train_images']} of {split_train} training images")
        row = [r["name"], "; ".join(differs) or "(base)"]
        if reported:
            row.append(str(reported.get(r["name"], "")))
        delta = (r["test"]["accuracy"] - ref["test"]["accuracy"]) * 100
        row += [
            _with_interval(r["test"]),
            f"{r['test']['macro_f1']:.3f}",
            "" if r is ref else f"{delta:+.1f} pts" + (f" ({_p(paired['p'])})" if paired else ""),
        ]
        if external:
            ext = r["external_test"] or {}
            row += [_pct(ext.get("accuracy")), f"{ext['macro_f1']:.3f}" if ext else ""]
        spe = r["seconds_per_epoch"]
        row += [
            _pct(r["val"]["accuracy"]),
            str(r["best_epoch"]),
            str(r["epochs"]),
            f"{spe:.1f}" if spe is not None else "",
            f"{r['wall_seconds']:.0f}",
        ]
        rows.append(row)
    return header, rows


def _with_interval(scores: dict) -> str:
    n = scores.get("n")
    if not n:
        return _pct(scores["accuracy"])
    lo, hi = accuracy_interval(scores["accuracy"], n)
    return f"{scores['accuracy']:.1%} ({lo * 100:.1f}–{hi * 100:.1f})"


def _p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}" if p < 0.01 else f"p={p:.2f}"


def paired_test(run: dict, ref: dict) -> dict | None:
    """McNemar's test of a run against the reference on the same test images; None where either lacks
    the outcomes (finished before leafdoc recorded them) or they were scored on different images."""
    a, b = run.get("test_outcomes"), ref.get("test_outcomes")
    if run is ref or not a or not b or a["images"] != b["images"]:
        return None
    return mcnemar(a["correct"], b["correct"])


def _significance_note(results: dict) -> str:
    ref = _reference(results)
    others = [r for r in results["runs"] if r is not ref]
    paired = [r for r in others if paired_test(r, ref)]
    note = (
        "'95% CI': the Wilson interval of the test accuracy; another sample of photos like these could "
        "plausibly give any figure in it."
    )
    if not others:
        return note
    if paired:
        note += (
            f" 'McNemar p': the exact McNemar test of each run against {ref['name']} on the same "
            f"{ref['test']['n']} test images (only those exactly one of the two got right count): the chance of "
            "a gap at least this large between two equally good models. Each of the "
            f"{len(others)} comparisons is a separate test, so a p just under 0.05 is weak evidence."
        )
    missing = [r["name"] for r in others if r not in paired]
    if missing:
        note += (
            f" No p for {', '.join(missing)}: "
            + ("it" if len(missing) == 1 else "they")
            + " or the reference finished before leafdoc recorded each test image's outcome"
            + " (`--resume` adds it while the model folders are there)."
        )
    return note


def per_class_rows(results: dict) -> tuple[str, list[str], list[list]] | None:
    """Runs that recorded per-class figures (train_imbalance runs): mean test recall over the rarest,
    middle and commonest third of the classes by training images, and each run's worst class."""
    runs = [r for r in results["runs"] if r.get("per_class")]
    if not runs:
        return None
    counts = runs[0]["per_class"]  # the thinned training split; the same for runs of one ratio and seed
    order = sorted(counts, key=lambda c: (counts[c]["train"], c))
    size = len(order) // 3
    groups = [("rarest", order[:size]), ("middle", order[size : len(order) - size]), ("commonest", order[-size:])]
    groups = [(name, g) for name, g in groups if g] if size else [("all", order)]
    header = ["run"]
    for name, g in groups:
        lo, hi = counts[g[0]]["train"], counts[g[-1]]["train"]
        span = f"{lo}–{hi}" if lo != hi else f"{lo}"
        header.append(f"{name} {len(g)} {'class' if len(g) == 1 else 'classes'} ({span} training images)")
    header.append("lowest class recall")
    rows = []
    for r in runs:
        pc = r["per_class"]
        worst = min(order, key=lambda c: (pc[c]["recall"], c))
        rows.append(
            [r["name"]]
            + [_pct(sum(pc[c]["recall"] for c in g) / len(g)) for _, g in groups]
            + [f"{_pct(pc[worst]['recall'])} ({worst}, {pc[worst]['train']} training images)"]
        )
    intro = (
        f"Mean recall on the test split (whose classes were not thinned) over the classes grouped by how many "
        f"training images they had in {runs[0]['name']}'s training split. Per-class figures of every run: "
        "`per_class` in `results.json`."
    )
    return intro, header, rows


def _restored(base: dict) -> str:
    """Which epoch each model keeps, for the report's note."""
    key = base.get("restore_best", "val_loss")  # results written before `last` existed kept the lowest loss
    if key == "last":
        return "The last epoch is kept in each model (no early stopping)"
    by = "highest validation accuracy" if key == "val_accuracy" else "lowest validation loss"
    return f"The best epoch ({by}) is restored in each model"


def _notes(results: dict, out: Path | None = None) -> list[str]:
    base = results["base"]
    notes = []
    if results["weights"] == "none":
        notes.append(
            "**Weights: none** — every run trained from scratch (`--weights none`; the shipped recipes start from "
            "EfficientNet-Lite0's ImageNet weights, installed offline). A pretrained recipe's 'frozen base' and "
            "'fine-tuning' stages have no pretrained features to keep, so the library trains the whole network in "
            "one phase (`fine_tune_epochs` and `fine_tune_fraction` have no effect) and the recipe's `scratch:` "
            "settings apply. Where the source used ImageNet weights, expect lower figures, most of all on small "
            "datasets."
        )
    else:
        notes.append(f"**Weights: {results['weights']}** (the basic CNN, if any, always trains from scratch).")
    if results["mode"] == "quick":
        d = results["data"]
        notes.append(
            f"**Quick mode** — {len(d['classes'])} classes, {sum(d['split'].values())} images, "
            f"{base['image_size']} px, {base['epochs']} epoch(s): a check that the recipe runs end to end, "
            "not a result. Its figures say nothing about what the full mode reaches."
        )
    d = results["data"]
    split = d["split"]
    fewer = any(r.get("train_images", split["train"]) < split["train"] for r in results["runs"])
    notes.append(
        f"All runs use one split of `{d['dataset']}` v{d['version']} (seed {base['seed']}): train {split['train']}"
        + (" (runs with train_share or train_imbalance train on fewer, as their rows say)" if fewer else "")
        + (
            f" (runs with `with_extra` add the {d['extra_training_images']} training-only photos of data.extra)"
            if d.get("extra_training_images")
            else ""
        )
        + f", val {split['val']}, test {split['test']} images; near-duplicates are kept in one split. "
        "'test acc' and 'macro F1' are on the held-out test split, computed with ONNX Runtime (the serving path). "
        "'s/epoch' is the median of the epochs after the first of each phase (the first also builds the graph); "
        "'wall s' covers training (every invocation's, for a run continued from its checkpoint), export and "
        "evaluation."
    )
    notes.append(_significance_note(results))
    if d["test_folder"]:
        notes.append(
            f"'test folder' columns: the recipe's own test set `{d['test_folder']}` "
            f"({d['test_folder_images']} images), never seen in training or model selection."
        )
    notes.append(
        f"{_restored(base)}; the best run is chosen by validation "
        f"accuracy, never test: **{results['best']['run']}**"
        + (" (so far)" if results.get("pending") else "")
        + (f", copied to `{_here(results['best']['kept'], out)}`." if results["best"]["kept"] else ".")
        + _selection_margin(results)
    )
    return notes


def _selection_margin(results: dict) -> str:
    """How far the chosen run's validation accuracy is ahead of the next one's, in images, and whether
    that is more than chance: on a small validation split the choice is often a coin toss."""
    best = next((r for r in results["runs"] if r["name"] == results["best"]["run"]), None)
    others = [r for r in results["runs"] if r is not best]
    n = best["val"].get("n") if best else None
    if not others or not n:
        return ""
    second = max(others, key=lambda r: r["val"]["accuracy"])
    lead = round((best["val"]["accuracy"] - second["val"]["accuracy"]) * n)
    lo, _ = accuracy_interval(best["val"]["accuracy"], n)
    ahead = f"tied with {second['name']}" if lead <= 0 else f"{lead} of {n} validation images ahead of {second['name']}"
    inside = second["val"]["accuracy"] >= lo
    return f" It is {ahead}, whose validation accuracy lies {'inside' if inside else 'below'} the chosen run's 95% " + (
        "interval: the choice may be chance; read the test column too." if inside else "interval."
    )


def render_markdown(results: dict, out: Path | None = None) -> str:
    """The report; with `out` (the experiment's folder), paths inside it are written relative to it."""
    m = results["machine"]
    uri = _here_uri(results["tracking_uri"], out)
    written = results.get("written_at") or f"{datetime.now(UTC):%Y-%m-%d %H:%M}"  # older results lack it
    pending, reused = results.get("pending") or [], results.get("reused") or []
    done = len(results["runs"])
    all_reused = bool(reused) and not pending and {r["name"] for r in results["runs"]} <= set(reused)
    lines = [
        f"# {results['title'] or results['recipe']} — {results['mode']} mode"
        + (f" (incomplete: {done} of {done + len(pending)} runs)" if pending else ""),
        "",
        f"Recipe `{results['recipe']}`"
        + (f" (`{results['recipe_file']}`)" if results["recipe_file"] else "")
        + (
            f", written {written} UTC by an invocation that trained nothing ({results['seconds'] / 60:.1f} min), on "
            if all_reused
            else f", run {written} UTC in {results['seconds'] / 60:.1f} min on "
        )
        + f"{m['cpu']}, {m['cores']} cores, {m.get('memory') or '? GiB'}, {m['os']}"
        + (f", TensorFlow {m['tensorflow']}" if m.get("tensorflow") else "")
        + "."
        + (
            " Every run was reused from earlier invocations (`--resume`) and keeps its own wall time."
            if all_reused
            else f" Reused from an earlier invocation (`--resume`), with their own wall times: {', '.join(reused)}."
            if reused
            else ""
        ),
        "",
    ]
    if pending:
        progress = results.get("progress") or {}
        started = [f"{name} ({progress[name]})" for name in pending if name in progress]
        waiting = [name for name in pending if name not in progress]
        lines += [
            "**Incomplete.** "
            + (f"Part-way: {', '.join(started)}. " if started else "")
            + (f"Not run yet: {', '.join(waiting)}. " if waiting else "")
            + "This report is rewritten after every run; "
            f"continue with `leafdoc experiment {results['recipe']}"
            + (" --quick" if results["mode"] == "quick" else "")
            + " --resume` (finished runs are reused).",
            "",
        ]
    if results["source"]:
        lines += ["## What the source reported", "", results["source"].strip(), ""]
    lines += ["## Notes", ""] + [f"- {n}" for n in _notes(results, out)] + [""]
    header, rows = comparison_rows(results)
    lines += ["## Runs", "", _md_table(header, rows), ""]
    described = [r for r in results["runs"] if r["note"]]
    if described:
        lines += [f"- **{r['name']}**: {r['note']}" for r in described] + [""]
    header, rows = held_out_rows(results["runs"])
    if rows:
        d = results["data"]
        lines += [
            "## Held-out extra photos, without and with abstention",
            "",
            f"`{d['test_folder']}`: {d['test_folder_images']} photos no run trained on or was selected by. "
            f"Runs marked 'trained on extra' also trained on the other half ({d.get('extra_training_images', 0)} "
            "photos, kept out of validation and test, so every run has the main folder's split). 'As trained': "
            "leafdoc's decisions with the model folder's own checks (confidence, not-a-leaf). '+ unlike-training "
            "check': a copy calibrated as `leafdoc calibrate --field` does, on the half that runs with extra "
            "trained on; for those runs it refuses what they have learnt, and is shown only to say so.",
            "",
            _md_table(header, rows),
            "",
        ]
    by_class = per_class_rows(results)
    if by_class:
        intro, header, rows = by_class
        lines += ["## Per class, by training images", "", intro, "", _md_table(header, rows), ""]
    curve = fit_curve(curve_runs(results), len(results["data"]["classes"]))
    if curve:
        lines += curve_section(curve)
    lines += [f"![validation accuracy per epoch]({CURVES})", ""]
    if results["tuning"]:
        t = results["tuning"]
        keys = list(t["best_params"])
        lines += [
            "## Hyperparameter search (Optuna, TPE)",
            "",
            f"{len(t['trials'])} trials from the settings of `{t['from_run'] or 'base'}`, scored by "
            f"{t['metric']} (validation split)"
            + _pruning_note(t)
            + f". Best: trial {t['best_trial']}, "
            + ", ".join(f"{k}={v:.3g}" for k, v in t["best_params"].items())
            + f" ({t['metric']} {t['best_value']:.1%}); its model is run **{t['name']}** above."
            + (
                " Without pretrained weights nothing is frozen, so `fine_tune_fraction` had no effect here."
                if results["weights"] == "none" and "fine_tune_fraction" in t["best_params"]
                else ""
            )
            + _interrupted_note(t),
            "",
            _md_table(
                ["trial", *keys, t["metric"], "seconds"],
                [
                    [str(row["trial"]), *(f"{row[k]:.3g}" for k in keys), _trial_score(row, t), f"{row['seconds']}"]
                    for row in t["trials"]
                ],
            ),
            "",
        ]
    if results["pipeline"]:
        p = results["pipeline"]
        n = max(len(p["cached_seconds"]), len(p["plain_seconds"]))
        rows = []
        for i in range(n):
            c = p["cached_seconds"][i] if i < len(p["cached_seconds"]) else None
            d = p["plain_seconds"][i] if i < len(p["plain_seconds"]) else None
            rows.append(
                [
                    str(i + 1),
                    f"{c:.2f}" if c else "",
                    f"{d:.2f}" if d else "",
                    f"{d / c:.2f}×" if c and d else "",
                ]
            )
        rows.append(["median", f"{p['cached_median']:.2f}", f"{p['plain_median']:.2f}", f"**{p['speedup']:.2f}×**"])
        cache = p.get("cache_build_seconds")
        lines += [
            "## Input pipeline speed",
            "",
            f"Seconds per training epoch over the same {p['n_images']} images, model of run `{p['run']}` "
            f"({p['backbone']}, {p['image_size']} px, batch {p['batch_size']}, same augmentation): leafdoc's cached "
            "pipeline (decoded once into a memory-mapped array, tf.data) against `directory_dataset` (Keras "
            "`image_dataset_from_directory`, decodes every file every epoch). One model for both; after one warm-up "
            "epoch each (graph tracing, first reads; not counted), two rounds of each, alternated."
            + (
                f" Building the cache (decoding and resizing every image once) took {cache:.1f} s; it is reused "
                "by every later run at this size."
                if cache
                else ""
            ),
            "",
            _md_table(["epoch", "cached s", "directory s", "speed-up"], rows),
            "",
        ]
    lines += [
        "## Where things are",
        "",
        "Paths are relative to this report's folder where they are inside it (run the commands from there).",
        "",
        f"- MLflow: `{uri}`, experiment `{results['mlflow_experiment']}` (`mlflow ui --backend-store-uri {uri}`)",
        "- Model folders: " + ", ".join(f"`{_here(r['model_dir'], out)}`" for r in results["runs"]),
        "- Every figure above, per run and per epoch: `results.json`",
        "",
    ]
    return "\n".join(lines)


def _here(path: str, out: Path | None) -> str:
    """`path` relative to the experiment's folder when it lies inside it, so a report copied elsewhere
    (with its folder, or into docs/) does not name one machine's absolute paths."""
    if out is None:
        return path
    try:
        return Path(path).resolve().relative_to(Path(out).resolve()).as_posix()
    except ValueError:
        return path


def _here_uri(uri: str, out: Path | None) -> str:
    """A sqlite:////abs/path tracking URI inside the experiment's folder as sqlite:///relative/path."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return uri
    rel = _here(uri[len(prefix) :], out)
    return uri if rel.startswith("/") else prefix + rel


def write_report(results: dict, out: Path) -> Path:
    out = Path(out)
    atomic_write_bytes(out / CURVES, figure_png(plot_learning_curves(results["runs"])))
    path = out / "report.md"
    atomic_write_bytes(path, render_markdown(results, out).encode())
    return path


def _interrupted_note(t: dict) -> str:
    gone = t.get("interrupted") or []
    if not gone:
        return ""
    which = ", ".join(str(n) for n in gone)
    return (
        f" Trial{'s' if len(gone) > 1 else ''} {which} did not finish: the search was interrupted during "
        f"{'them' if len(gone) > 1 else 'it'} and continued by `--resume` with new trials, so "
        f"{'they are' if len(gone) > 1 else 'it is'} not in the table or the count."
    )


def _pruning_note(t: dict) -> str:
    p = t.get("pruning") or {}
    if not p.get("prune"):
        return ""
    earliest = max(1, p["warmup_epochs"])
    return (
        f"; a trial whose best validation accuracy fell below the median of the earlier trials' at the same "
        f"epoch was stopped there (after {p['startup_trials']} whole trials, at epoch {earliest} or later): "
        f"{t.get('pruned', 0)} of {len(t['trials'])} stopped"
    )


def _trial_score(row: dict, t: dict) -> str:
    if row.get("pruned_at") is not None:
        return f"stopped at epoch {row['pruned_at']}"
    return _pct(row[t["metric"]])
