"""The `leafdoc` command: thin. Parse, call the library, print (Rich for people, --json for machines).

Errors of the LeafdocError kind are printed as one plain message (no traceback) and exit 1.
"""

from __future__ import annotations

import inspect
import json
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from types import UnionType
from typing import Annotated, Literal, Union, get_args, get_origin

import typer
from rich.console import Console
from rich.markup import escape as esc
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from leafdoc.errors import LeafdocError
from leafdoc.settings import Settings
from leafdoc.train.registry import help_text as backbone_help
from leafdoc.train.stopping import stop_on_signals

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Diagnose plant diseases from leaf photos.")
console = Console(stderr=True, soft_wrap=True)  # people read stderr; stdout is for --json and results
out = Console(soft_wrap=True)


def _settings() -> Settings:
    s = Settings()
    s.ensure_home()
    return s


def _emit_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


@contextmanager
def _progress(description: str, enabled: bool = True):
    """A Rich progress bar; yields update(done, total)."""
    if not enabled:
        yield lambda done, total: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _open_data(settings: Settings):
    from leafdoc.data.catalog import Catalog
    from leafdoc.data.store import open_store

    return Catalog(settings.catalog_url), open_store(settings.store_location, settings.s3_endpoint_url)


def _limits(settings: Settings):
    from leafdoc.data.sources import Limits

    return Limits(settings.max_image_bytes, settings.max_zip_members, settings.max_zip_uncompressed_bytes)


def _ingest(settings: Settings, catalog, store, path: Path, dataset: str | None, show: bool):
    """Ingest with the settings' limits and a progress bar (when `show`)."""
    from leafdoc.data.ingest import ingest as do_ingest

    limits = _limits(settings)
    with _progress(f"Ingesting {path.name}", show) as update:
        return do_ingest(
            path, catalog, store, dataset, limits=limits, max_pixels=settings.max_image_pixels, progress=update
        )


@app.command()
def ingest(
    path: Annotated[
        Path,
        typer.Argument(help="A folder of class folders, a .zip of one, or a CSV with path,label."),
    ],
    dataset: Annotated[str | None, typer.Option(help="Dataset name (default: the folder or file name).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
):
    """Check every image and add the new ones to the catalog as a new dataset version."""
    settings = _settings()
    catalog, store = _open_data(settings)
    result = _ingest(settings, catalog, store, path, dataset, not as_json)
    summary = result.to_dict()
    _save_summary(settings, summary)
    if as_json:
        _emit_json(summary)
    else:
        _print_ingest(summary)
    if result.version is None:
        raise typer.Exit(1)


def _save_summary(settings: Settings, summary: dict) -> None:
    from leafdoc.fsutil import atomic_write_json

    v = summary["version"] if summary["created_version"] else "unchanged"
    atomic_write_json(settings.home / "ingests" / f"{summary['dataset']}-v{v}.json", summary)


def _print_ingest(s: dict) -> None:
    if s["created_version"]:
        out.print(
            f"[bold green]{esc(s['dataset'])} v{s['version']}[/]: {s['n_images']} images in {s['n_classes']} classes"
        )
    elif s["version"] is not None:
        out.print(f"[bold]{s['dataset']} v{s['version']}[/]: nothing new, no new version")
    else:
        out.print(f"[bold red]{s['dataset']}[/]: nothing was ingested")
    out.print(
        f"added {s['added']}, duplicates {len(s['duplicates'])}, "
        f"near-duplicates {len(s['near_duplicates'])}, rejected {len(s['rejected'])}"
    )
    if s["rejected"]:
        table = Table("rejected file", "reason", title="Rejected")
        for r in s["rejected"]:
            table.add_row(esc(r["file"]), esc(r["reason"]))
        out.print(table)


# `leafdoc train`'s options: the run's own (where data comes from, where the model goes), then one per
# TrainConfig field, generated from it with its description and default (issue: no field restated by hand).
_TRAIN_RUN_OPTIONS = [
    ("out_dir", Path, typer.Option("--out", help="Model folder to write."), inspect.Parameter.empty),
    ("data", Path | None, typer.Option(help="A folder of class folders (ingested first)."), None),
    ("dataset", str | None, typer.Option(help="A dataset already in the catalog."), None),
    ("dataset_version", int | None, typer.Option(help="Dataset version (default: latest)."), None),
    ("init_from", Path | None, typer.Option(help="Warm-start from this model folder."), None),
    (
        "nonleaf",
        list[Path] | None,
        typer.Option(
            help="A folder of non-leaf photos to calibrate the not-a-leaf check (repeatable).",
            exists=True,
            file_okay=False,
        ),
        None,
    ),
    (
        "provenance",
        Path | None,
        typer.Option(help="A text file on the data's sources and licences, copied into card.json."),
        None,
    ),
    (
        "resume",
        bool,
        typer.Option(
            help="Continue a run to the same --out that was stopped part-way, from its last finished epoch "
            "(same settings and data; the state is kept beside --out as .NAME.checkpoint while training)."
        ),
        False,
    ),
    ("as_json", bool, typer.Option("--json", help="Print the model card as JSON."), False),
]
_NOT_OPTIONS = {"nonleaf_dirs"}  # set through --nonleaf (folders that must exist)


def _config_parameters(model) -> list[inspect.Parameter]:
    """One Typer option per field of a pydantic config: its type (a Literal becomes a string whose choices the
    help lists; the config checks it), its description as help, its default."""
    params = []
    for name, field in model.model_fields.items():
        if name in _NOT_OPTIONS:
            continue
        kind, hint = field.annotation, field.description or ""
        args = [a for a in get_args(kind) if a is not type(None)]
        if get_origin(kind) is Literal:
            kind, hint = str, " | ".join(map(str, get_args(kind))) + (f": {hint}" if hint else "")
        elif get_origin(kind) in (Union, UnionType) and len(args) == 1:
            inner = args[0]
            kind = (str if get_origin(inner) is Literal else inner) | None
        if name == "backbone":
            hint = backbone_help()
        default = field.get_default(call_default_factory=True)
        if get_origin(kind) is list:
            default = None  # repeatable; empty means the config's default
        option = typer.Option(help=hint or None)
        params.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[kind, option])
        )
    return params


def train(**options):
    """Split by class, train, keep the best checkpoint, evaluate on the test split, write the model folder."""
    from leafdoc.errors import ConfigError
    from leafdoc.train.config import TrainConfig

    out_dir, data, dataset = options.pop("out_dir"), options.pop("data"), options.pop("dataset")
    dataset_version, init_from = options.pop("dataset_version"), options.pop("init_from")
    nonleaf, provenance = options.pop("nonleaf"), options.pop("provenance")
    resume, as_json = options.pop("resume"), options.pop("as_json")
    if (data is None) == (dataset is None):
        raise ConfigError("pass exactly one of --data DIR or --dataset NAME.")
    given = {k: v for k, v in options.items() if v is not None}
    try:
        cfg = TrainConfig(**given, nonleaf_dirs=[str(p.resolve()) for p in nonleaf or []])
    except ValueError as exc:
        raise ConfigError(f"invalid training options: {exc}") from None
    note = None
    if provenance is not None:
        if not provenance.is_file():
            raise ConfigError(f"{provenance}: no such file.", hint="Pass a text file describing the data's sources.")
        note = provenance.read_text(encoding="utf-8")
    with stop_on_signals():  # Ctrl-C or SIGTERM mid-epoch stops at the batch's end (leafdoc.train.stopping)
        card = run_training(
            cfg,
            out_dir,
            data=data,
            dataset=dataset,
            version=dataset_version,
            init_from=init_from,
            quiet=as_json,
            provenance=note,
            resume=resume,
        )
    if as_json:
        _emit_json(card)


def _train_signature() -> inspect.Signature:
    from leafdoc.train.config import TrainConfig

    run = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[kind, option])
        for name, kind, option, default in _TRAIN_RUN_OPTIONS
    ]
    return inspect.Signature(run + _config_parameters(TrainConfig))


train.__signature__ = _train_signature()
app.command()(train)


def _training_bar(disable: bool) -> Progress:
    """A progress bar for training: description, bar, count, elapsed time, then the last epoch's figures."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        disable=disable,
    )


def _epoch_info(e: dict) -> str:
    return " ".join(f"{k}={e[k]:.3f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in e)


def run_training(
    cfg,
    out_dir: Path,
    *,
    data=None,
    dataset=None,
    version=None,
    init_from=None,
    quiet=False,
    provenance=None,
    resume=False,
) -> dict:
    from leafdoc.train.checkpoint import STATE, beside
    from leafdoc.train.trainer import prepare_data
    from leafdoc.train.trainer import train as do_train

    settings = _settings()
    catalog, store = _open_data(settings)
    if data is not None:
        res = _ingest(settings, catalog, store, data, dataset, not quiet)
        if res.rejected and not quiet:
            console.print(f"[yellow]{len(res.rejected)} files rejected[/] (see `leafdoc ingest {data} --json`)")
        dataset = res.dataset
    with _progress(f"Caching {cfg.image_size}px arrays", not quiet) as update:
        td = prepare_data(catalog, store, settings.cache_dir, dataset, cfg, version, progress=update)
    if not quiet:
        c = td.counts()
        console.print(
            f"{td.dataset} v{td.version}: {len(td.classes)} classes; "
            f"train {c['train']}, val {c['val']}, test {c['test']}"
        )
    with _training_bar(quiet) as bar:
        task = bar.add_task("training", total=None, info="")

        def on_event(e: dict) -> None:
            if e["event"] == "batch":
                bar.update(task, completed=e["batch"], total=e["steps"], description=f"{e['phase']} epoch")
            elif e["event"] == "epoch":
                info = _epoch_info(e)
                bar.update(task, info=info, description=f"{e['phase']} epoch {e['epoch']}")
                console.log(f"{e['phase']} epoch {e['epoch']}: {info} ({e['seconds']:.0f}s)")
            elif e["event"] == "evaluate":
                bar.update(task, description="evaluating on the test split", info="")
            elif e["event"] == "resume":
                console.log(f"continuing from the checkpoint after {e['phase']} epoch {e['epoch']}")
            elif e["event"] == "restart":
                console.log(f"[yellow]{e['reason']}[/]: training from the first epoch (it is replaced after it)")

        checkpoint = beside(out_dir)
        if not resume:
            shutil.rmtree(checkpoint, ignore_errors=True)
        elif not (checkpoint / STATE).is_file() and not quiet:
            console.log(f"no checkpoint at {checkpoint}: training from the first epoch")
        card = do_train(
            cfg,
            td,
            out_dir,
            on_event=on_event,
            init_from=init_from,
            provenance=provenance,
            checkpoint_dir=checkpoint,
        )
    if not quiet:
        t = card["metrics"]["test"]
        out.print(
            f"[bold green]{out_dir}[/]: test accuracy {t['accuracy']:.4f}, top-3 {t['top3_accuracy']:.4f}, "
            f"macro F1 {t['macro_f1']:.4f} on {t['n']} held-out images (best epoch {card['best_epoch']})"
        )
    return card


@app.command()
def predict(
    model_dir: Annotated[Path, typer.Argument(help="A model folder, or a .tflite file inside one (to check it).")],
    images: Annotated[list[Path], typer.Argument(help="One or more photos.")],
    top_k: Annotated[int, typer.Option("--top-k", help="How many labels per image.")] = 3,
    as_json: Annotated[bool, typer.Option("--json")] = False,
):
    """Top-k diagnoses with probabilities for each photo, and what to do about the diagnosis."""
    from leafdoc.advice import shipped_knowledge
    from leafdoc.inference.predictor import Predictor

    settings = _settings()
    knowledge = shipped_knowledge(settings.advice_dir)
    predictor = Predictor(model_dir, max_pixels=settings.max_image_pixels)
    answers = [r.to_dict(knowledge) for r in predictor.predict_files(images, top_k)]
    if as_json:
        _emit_json(answers)
    else:
        for a in answers:
            if "error" in a:
                out.print(f"[bold]{esc(a['file'])}[/]: [red]{esc(a['error'])}[/]")
                continue
            if a["abstained"]:
                out.print(f"[bold]{esc(a['file'])}[/]: [yellow]not sure ({a['reason']})[/] {esc(a['message'] or '')}")
            else:
                out.print(f"[bold]{esc(a['file'])}[/]: [green]{esc(a['label'])}[/]")
            for t in a["top_k"]:
                out.print(f"  {t['probability']:7.2%}  {t['label']}")
            _print_advice(a["advice"])
    if answers and all("error" in a for a in answers):
        raise typer.Exit(1)


def _print_advice(advice: dict | None) -> None:
    """The summary under the diagnosis, and where the full entry is (an abstention has no advice)."""
    if advice is None:
        return
    if not advice["available"]:
        out.print(f"  [yellow]{esc(advice['message'])}[/]")
        return
    out.print(f"  [bold]What to do:[/] {esc(advice['summary'])}")
    sources = "; ".join(s["title"] for s in advice["sources"])
    out.print(f'  [dim]Full advice: leafdoc advice "{esc(advice["label"])}" (or GET {esc(advice["route"])})[/]')
    out.print(f"  [dim]Sources: {esc(sources)}[/]")


@app.command()
def advice(
    label: Annotated[str | None, typer.Argument(help="A label as the model answers it; none: list them.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
):
    """What to do about a diagnosis: the knowledge entry of a label (symptoms, look-alikes, actions, sources)."""
    from rich.markdown import Markdown

    from leafdoc.advice import shipped_knowledge
    from leafdoc.advice.render import details_markdown
    from leafdoc.errors import NotFound

    knowledge = shipped_knowledge(_settings().advice_dir)
    if label is None:
        if as_json:
            _emit_json([{"label": e.label, "title": e.title} for e in knowledge.entries.values()])
            return
        for e in sorted(knowledge.entries.values(), key=lambda e: e.label):
            out.print(f"{esc(e.label)}  [dim]{esc(e.title)}[/]")
        return
    entry = knowledge.get(label)
    if entry is None:
        raise NotFound(
            f"leafdoc has no advice for label {label!r}.", hint="`leafdoc advice` lists the labels it has advice for."
        )
    data = entry.model_dump(mode="json")
    if as_json:
        _emit_json(data)
        return
    Console(soft_wrap=False).print(Markdown(f"# {entry.title}\n\n{entry.summary}\n\n" + details_markdown(data)))


@app.command()
def calibrate(
    model_dir: Annotated[Path, typer.Argument(help="A model folder with split.json.")],
    data: Annotated[Path, typer.Option(help="The folder of class folders the model was trained on.")],
    nonleaf: Annotated[
        list[Path] | None,
        typer.Option(
            help="A folder of non-leaf photos (repeatable): flowers, CIFAR-10, ...", exists=True, file_okay=False
        ),
    ] = None,
    field: Annotated[
        list[Path] | None,
        typer.Option(
            help="A folder of field photos (repeatable): fits the unlike-training check on the half of them whose "
            "sha256 starts with 0-7; the rest stay held out.",
            exists=True,
            file_okay=False,
        ),
    ] = None,
    target: Annotated[float, typer.Option(help="Share of validation leaf photos the threshold may refuse.")] = 0.01,
    as_json: Annotated[bool, typer.Option("--json")] = False,
):
    """(Re)fit the not-a-leaf check of a model folder (and, with --field, the unlike-training check)."""
    from leafdoc.inference.calibrate import calibrate_model_dir

    section = calibrate_model_dir(
        model_dir, data, nonleaf or [], target, max_pixels=_settings().max_image_pixels, field=field or []
    )
    field_section = json.loads((Path(model_dir) / "card.json").read_text()).get("field")
    if as_json:
        _emit_json({**section, "field": field_section} if field_section else section)
        return
    if field_section:
        out.print(
            f"[bold green]{esc(str(model_dir))}[/]: unlike-training threshold {field_section['threshold']:.3f} "
            f"refuses {field_section['val_refused']:.1%} of {field_section['n_val']} validation leaf photos, "
            f"{field_section['field_refused']:.1%} of {field_section['n_field']} field photos"
            + (
                f" and {field_section['nonleaf_refused']:.1%} of {field_section['n_nonleaf']} non-leaf photos"
                if "nonleaf_refused" in field_section
                else ""
            )
        )
    out.print(
        f"[bold green]{esc(str(model_dir))}[/]: not-a-leaf threshold {section['threshold']:.3f} refuses "
        f"{section['val_refused']:.1%} of {section['n_val']} validation leaf photos"
        + (
            f" and {section['nonleaf_refused']:.1%} of {section['n_nonleaf']} non-leaf photos"
            if "nonleaf_refused" in section
            else ""
        )
    )


@app.command()
def export(
    model_dir: Annotated[Path, typer.Argument(help="A model folder with model.keras.")],
    fmt: Annotated[str, typer.Option("--format", help="onnx | tflite")] = "onnx",
):
    """Write model.onnx or model.tflite from model.keras."""
    from leafdoc.train.export import export as do_export

    with console.status(f"exporting {fmt}"):
        path = do_export(model_dir, fmt)
    out.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


@app.command()
def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="A model folder.")],
    data: Annotated[Path, typer.Option(help="A folder with one subfolder per class (any of the model's labels).")],
    report: Annotated[
        Path | None, typer.Option(help="Write report.md, index.html and figures into this folder.")
    ] = None,
    ood: Annotated[
        Path | None, typer.Option(help="A folder of photos that are not leaves: report the share refused.")
    ] = None,
    per_class: Annotated[
        int | None,
        typer.Option(min=1, help="Evaluate at most N random photos per class (and per --ood folder): a quick look."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the --per-class draw.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
):
    """Accuracy, top-3, macro F1, calibration, confusions, and what the model refuses to answer."""
    from leafdoc.data.stats import check_replaceable
    from leafdoc.evaluate.evaluate import evaluate_folder

    if report is not None:  # fail before the slow part, not after it
        check_replaceable(report, "index.html")
    settings = _settings()
    with _progress(f"Evaluating on {data.name}", not as_json) as update:
        result = evaluate_folder(
            model_dir, data, settings, progress=update, ood_dir=ood, per_class=per_class, seed=seed
        )
    if report is not None:
        from leafdoc.evaluate.report import write_report

        with console.status(f"writing the report to {report}"):
            write_report(result, report)
        result["report"] = str(report)
    if as_json:
        _emit_json(result)
    else:
        _print_evaluation(result)


def _print_evaluation(r: dict) -> None:
    from leafdoc.evaluate.report import images_evaluated
    from leafdoc.evaluate.significance import accuracy_interval_text

    table = Table("metric", "value", title=f"{r['model']} on {r['data']}")
    table.add_row("images", images_evaluated(r))
    table.add_row("accuracy", accuracy_interval_text(r["accuracy"], r["n"]))
    table.add_row("top-3 accuracy", f"{r['top3_accuracy']:.2%}")
    table.add_row("macro F1", f"{r['macro_f1']:.3f}")
    table.add_row("ECE (calibration error)", f"{r['ece']:.3f}")
    sel = r.get("selective")
    if sel:
        reasons = ", ".join(f"{k} {v}" for k, v in sel["abstained_by_reason"].items()) or "none"
        table.add_row("answered (coverage)", f"{sel['coverage']:.2%} ({sel['abstained']} abstained: {reasons})")
        if sel["accuracy_answered"] is not None:
            table.add_row("accuracy on answered", f"{sel['accuracy_answered']:.2%}")
        at = sel["accuracy_at"]
        table.add_row("accuracy at 50/80/100% coverage", " / ".join(f"{at[k]:.2%}" for k in ("50%", "80%", "100%")))
        table.add_row("AURC (lower is better)", f"{sel['aurc']:.4f}")
    if r.get("ood"):
        o = r["ood"]
        why = ", ".join(f"{k} {v}" for k, v in o["by_reason"].items() if k != "answered") or "none"
        table.add_row(f"not-leaf photos refused ({o['n']})", f"{o['abstained']:.2%} ({why})")
    out.print(table)
    per = Table("class", "precision", "recall", "F1", "support", title="Per class (classes in the data)")
    for label in r["classes"]:
        c = r["per_class"][label]
        per.add_row(label, f"{c['precision']:.3f}", f"{c['recall']:.3f}", f"{c['f1']:.3f}", str(c["support"]))
    out.print(per)
    if r["most_confused"]:
        conf = Table("true", "predicted as", "count", title="Most confused")
        for p in r["most_confused"][:5]:
            conf.add_row(p["true"], p["predicted"], str(p["count"]))
        out.print(conf)
    if r["skipped"]:
        out.print(f"[yellow]{len(r['skipped'])} files skipped[/] (see --json for the reasons)")
    if r.get("report"):
        out.print(f"report: {Path(r['report']) / 'index.html'}")


@app.command()
def stats(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for stats.json and the PNG plots.")],
    data: Annotated[Path | None, typer.Option(help="A folder of class folders, read from disk.")] = None,
    dataset: Annotated[str | None, typer.Option(help="A dataset in the catalog.")] = None,
    dataset_version: Annotated[int | None, typer.Option(help="Dataset version (default: latest).")] = None,
    sample: Annotated[int | None, typer.Option(min=1, help="Measure at most N images per class.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print stats.json to stdout too.")] = False,
):
    """Class balance, image sizes, colour, brightness and sharpness of a dataset, as numbers and plots."""
    from leafdoc.data.stats import catalog_entries, check_replaceable, compute_stats, folder_entries, write_stats
    from leafdoc.errors import ConfigError

    if (data is None) == (dataset is None):
        raise ConfigError("pass exactly one of --data DIR or --dataset NAME.")
    check_replaceable(out_dir, "stats.json")
    settings = _settings()
    skipped: list = []
    if data is not None:
        entries, skipped = folder_entries(data, _limits(settings))
        source = str(data)
    else:
        catalog, store = _open_data(settings)
        try:
            entries, version = catalog_entries(catalog, store, dataset, dataset_version)
        finally:
            catalog.dispose()
        source = f"{dataset} v{version}"
    with _progress(f"Measuring {source}", not as_json) as update:
        result = compute_stats(
            entries,
            sample=sample,
            skipped=skipped,
            source=source,
            max_pixels=settings.max_image_pixels,
            progress=update,
        )
    with console.status(f"writing plots to {out_dir}"):
        write_stats(result, out_dir, entries)
    if as_json:
        _emit_json(result)
    else:
        _print_stats(result, out_dir)


def _print_stats(s: dict, out_dir: Path) -> None:
    ratio = s["imbalance_ratio"]
    out.print(
        f"[bold]{s['source']}[/]: {s['n_images']} images in {s['n_classes']} classes, "
        f"{s['n_measured']} measured; imbalance max/min {ratio:.2f}"
        if ratio
        else f"[bold]{s['source']}[/]: no images measured"
    )
    table = Table("class", "images", "mean R,G,B", "brightness", "sharpness (median)", title="Per class")
    for label, c in s["per_class"].items():
        rgb = ",".join(f"{v:.0f}" for v in c["mean_rgb"])
        table.add_row(
            label, str(s["class_counts"][label]), rgb, f"{c['brightness']['mean']:.0f}", f"{c['sharpness']['p50']:.0f}"
        )
    out.print(table)
    if s["skipped"]:
        out.print(f"[yellow]{len(s['skipped'])} files skipped[/] (see {out_dir / 'stats.json'})")
    out.print(f"wrote {out_dir}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="API worker processes.")] = 1,
    consumer: Annotated[
        bool | None,
        typer.Option(
            "--consumer/--no-consumer",
            help="Run one training-job consumer beside the API (default: LEAFDOC_RUN_CONSUMER, true).",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
):
    """Serve the web API (docs at /docs); embedded, a training-job consumer runs beside it."""
    from leafdoc.service.run import serve as run_service

    run_service(_settings(), host, port, workers, consumer, log_level, say=console.print)


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Exit when the queue is empty instead of waiting for jobs.")] = False,
    parent_pid: Annotated[int | None, typer.Option(hidden=True, help="Exit when this process is gone.")] = None,
):
    """Run training jobs from the queue, one at a time, until stopped (SIGTERM or Ctrl-C)."""
    import logging

    from leafdoc.service.worker import serve_forever

    settings = _settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(message)s")
    console.print(f"worker: queue {settings.queue_url or settings.queue_path}, catalog {settings.catalog_url}")
    serve_forever(settings, burst=burst, parent_pid=parent_pid)


@app.command()
def experiment(
    recipe: Annotated[str, typer.Argument(help="A recipe file (.yaml/.toml) or the name of one in recipes/.")],
    data: Annotated[
        Path | None, typer.Option(help="Folder holding the recipe's data folders (default: ../shared/datasets).")
    ] = None,
    quick: Annotated[bool, typer.Option(help="The recipe's small subset and settings: minutes on 2 cores.")] = False,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Experiment folder (default: runs/RECIPE or runs/RECIPE-quick).")
    ] = None,
    weights: Annotated[
        str | None, typer.Option(help="none | imagenet | PATH, for every run (default: the recipe's).")
    ] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow store (default: sqlite under OUT/home/mlruns).")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Reuse the runs an earlier invocation into the same --out finished (same settings).")
    ] = False,
    only: Annotated[
        str | None,
        typer.Option(
            help="Train only these runs (comma-separated names; the search by its name); with --resume the "
            "runs finished earlier are reported too, so a long recipe can be split over several sittings."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print results.json.")] = False,
):
    """Train and compare the runs of a recipe; track them in MLflow; write report.md with table and curves.

    The report is rewritten after every run; if the command stops part-way, run it again with --resume."""
    from leafdoc.experiments.recipe import DEFAULT_DATA_ROOT, load_recipe
    from leafdoc.experiments.runner import run_experiment

    spec = load_recipe(recipe)
    out_dir = out_dir or Path("runs") / (f"{spec.name}-quick" if quick else spec.name)
    with _training_bar(as_json) as bar:
        runs = bar.add_task("runs", total=None, info="")
        steps = bar.add_task("preparing", total=None, info="")

        def on_event(e: dict) -> None:
            kind = e["event"]
            if kind == "run":
                bar.update(runs, description=f"run {e['run']}", completed=e["index"], total=e["total"], info=e["note"])
            elif kind in ("progress", "batch"):
                what = e["what"] if kind == "progress" else f"{e['run']}: {e['phase']} epoch"
                done, total = (e["done"], e["total"]) if kind == "progress" else (e["batch"], e["steps"])
                bar.update(steps, description=what, completed=done, total=total)
            elif kind == "epoch":
                info = _epoch_info(e)
                bar.update(steps, info=info)
                console.log(f"{esc(e['run'])} {e['phase']} epoch {e['epoch']}: {info} ({e['seconds']:.0f}s)")
            elif kind == "evaluate":
                bar.update(steps, description=f"{e['run']}: evaluating", info="")
            elif kind == "message":
                console.log(esc(e["text"]))

        # A kill (stopped container, ended session) ends like Ctrl-C, so the report says how far each run
        # got; during an epoch it waits for the batch to end (see leafdoc.train.stopping).
        with stop_on_signals():
            results = run_experiment(
                spec,
                data_root=data or DEFAULT_DATA_ROOT,
                out=out_dir,
                quick=quick,
                weights=weights,
                tracking_uri=tracking_uri,
                resume=resume,
                only=only.split(",") if only else None,
                on_event=on_event,
            )
    if as_json:
        _emit_json(results)
        return
    _print_experiment(results)


def _print_experiment(r: dict) -> None:
    from leafdoc.experiments.report import comparison_rows

    header, rows = comparison_rows(r)
    table = Table(*header, title=f"{r['title'] or r['recipe']} ({r['mode']}, weights {r['weights']})")
    for row in rows:
        table.add_row(*(esc(str(v)) for v in row))
    out.print(table)
    if r["tuning"]:
        t = r["tuning"]
        best = ", ".join(f"{k}={v:.3g}" for k, v in t["best_params"].items())
        out.print(f"Optuna: best of {len(t['trials'])} trials: {best} ({t['metric']} {t['best_value']:.1%})")
    if r["pipeline"]:
        p = r["pipeline"]
        out.print(
            f"input pipeline: cached {p['cached_median']:.2f} s/epoch, directory {p['plain_median']:.2f} s/epoch: "
            f"speed-up {p['speedup']:.2f}x over {p['n_images']} images"
        )
    out.print(f"best run (validation accuracy): [bold]{esc(r['best']['run'])}[/]")
    if r["reused"]:
        out.print(f"reused from an earlier invocation: {esc(', '.join(r['reused']))}")
    if r["pending"]:
        out.print(f"not run yet: {esc(', '.join(r['pending']))} (continue with --resume)")
    out.print(f"report: {esc(r['report'])}")
    out.print(f"MLflow: {esc(r['tracking_uri'])}")


@app.command()
def desktop(
    server: Annotated[
        str | None,
        typer.Option(help="URL of a leafdoc server (default: start a built-in one, stopped when the window closes)."),
    ] = None,
):
    """Open the desktop app: diagnose photos, look at datasets, upload photos and retrain."""
    try:
        from leafdoc.desktop.app import run
    except ImportError as exc:
        if not (exc.name or "").startswith(("PySide6", "shiboken6")):
            raise
        raise LeafdocError(
            f"The desktop app needs PySide6, which is not installed ({exc}).",
            hint="Install it with: pip install 'leafdoc[desktop]'",
        ) from None
    raise typer.Exit(run(server))


def main() -> None:
    try:
        # Outside standalone mode, Typer returns the code of a typer.Exit (130 for Ctrl-C) instead of exiting.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            if code == 130:
                console.print("stopped")
            sys.exit(code)
    except LeafdocError as exc:
        console.print(f"[bold red]error:[/] {esc(exc.message)}")
        if exc.hint:
            console.print(f"[yellow]what to do:[/] {esc(exc.hint)}")
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors come through here in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
