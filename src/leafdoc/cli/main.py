"""The `leafdoc` command: thin. Parse, call the library, print (Rich for people, --json for machines).

Errors of the LeafdocError kind are printed as one plain message (no traceback), wrapped at the terminal's width, and
exit 1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.markup import escape as esc

from leafdoc.cli.common import emit_json, load_settings, progress_bar
from leafdoc.cli.model_folder import calibrate, evaluate, export
from leafdoc.cli.models import app as models_app
from leafdoc.cli.options import train_signature
from leafdoc.cli.printing import (
    TrainingLog,
    answers_summary,
    console,
    experiment_events,
    out,
    print_advice_entry,
    print_advice_labels,
    print_answers,
    print_experiment,
    print_ingest,
    print_poor_photos,
    print_skipped,
    print_stats,
    print_wrapped,
    resume_words,
    training_bar,
)
from leafdoc.core.errors import LeafdocError
from leafdoc.core.settings import Settings, without_password
from leafdoc.train.stopping import stop_on_signals

STOP_SAID = threading.Event()  # a stopped `leafdoc train` said so itself, with what --resume keeps

app = typer.Typer(
    add_completion=False, no_args_is_help=True, rich_markup_mode=None, help="Diagnose plant diseases from leaf photos."
)


def _open_data(settings: Settings):
    from leafdoc.lifecycle.workspace import Workspace

    ws = Workspace.open(settings)
    return ws.catalog, ws.store


def _limits(settings: Settings):
    from leafdoc.data.sources import Limits

    return Limits(settings.max_image_bytes, settings.max_zip_members, settings.max_zip_uncompressed_bytes)


def _ingest(settings: Settings, catalog, store, path: Path, dataset: str | None, show: bool):
    """Ingest with the settings' limits and a progress bar (when `show`)."""
    from leafdoc.data.ingest import ingest as do_ingest

    limits = _limits(settings)
    with progress_bar(f"Ingesting {path.name}", show) as update:
        return do_ingest(
            path, catalog, store, dataset, limits=limits, max_pixels=settings.max_image_pixels, progress=update
        )


def added_to_existing(res, data: Path) -> str | None:
    """What `train --data DIR` says when the data home already held a dataset of the folder's name: the run trains
    on the dataset's latest version, this folder's photos with the ones before, which is easy to miss."""
    if not res.version or res.version == 1:
        return None
    from_folder = res.added + len(res.duplicates)
    if res.n_images <= from_folder:
        return None
    made = f"this folder's {res.added} new photos made v{res.version}" if res.created_version else "it adds no photo"
    return (
        f"this data home already held a dataset named {res.dataset!r}; {made}, and this run trains on all "
        f"{res.n_images} photos of v{res.version}, not only the {from_folder} in {data.name}. To train on this folder "
        f"alone, pass --dataset with a new name; to train on an earlier version, --dataset {res.dataset} "
        f"--dataset-version N (1 to {res.version - 1 if res.created_version else res.version})."
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
    settings = load_settings()
    catalog, store = _open_data(settings)
    result = _ingest(settings, catalog, store, path, dataset, not as_json)
    summary = result.to_dict()
    _save_summary(settings, summary)
    if as_json:
        emit_json(summary)
    else:
        print_ingest(summary, path)
    if result.version is None:
        raise typer.Exit(1)


def _save_summary(settings: Settings, summary: dict) -> None:
    from leafdoc.core.atomic import atomic_write_json

    v = summary["version"] if summary["created_version"] else "unchanged"
    atomic_write_json(settings.home / "ingests" / f"{summary['dataset']}-v{v}.json", summary)


def train(**options):
    """Split by class, train, keep the last epoch (or the best, with --restore-best), evaluate on the test split,
    write the model folder."""
    from pydantic import ValidationError

    from leafdoc.core.errors import ConfigError
    from leafdoc.train.backbone_registry import STARTER
    from leafdoc.train.config import TrainConfig, parent_weights

    out_dir, data, dataset = options.pop("out_dir"), options.pop("data"), options.pop("dataset")
    dataset_version, init_from = options.pop("dataset_version"), options.pop("init_from")
    nonleaf, field, provenance = options.pop("nonleaf"), options.pop("field"), options.pop("provenance")
    resume, as_json = options.pop("resume"), options.pop("as_json")
    if data is None and dataset is None:
        raise ConfigError(
            "pass --data DIR (a folder of class folders) or --dataset NAME (a dataset already in the catalog).",
            hint="With both, the folder is ingested into the dataset NAME (a new one, or one it adds photos to).",
        )
    given = {k: v for k, v in options.items() if v is not None}
    if init_from is not None:  # the backbone comes from the model warm-started from, made as its was
        given.setdefault("weights", parent_weights(init_from))
    try:
        cfg = TrainConfig(
            **given,
            nonleaf_dirs=[str(p.resolve()) for p in nonleaf or []],
            field_dirs=[str(p.resolve()) for p in field] if field else None,
        )
    except ValidationError as exc:  # one line per option, named as typed, with every valid choice pydantic lists
        problems = "; ".join(
            f"--{'.'.join(map(str, e['loc'])).replace('_', '-')} {e['input']!r}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid training options: {problems}.", hint="See `leafdoc train --help`.") from None
    if init_from is not None and cfg.field_dirs is None and not as_json:
        warn_field_check_dropped(init_from)
    if "weights" not in given and cfg.weights == STARTER and not as_json:
        console.print(
            "Starting from the backbone of leafdoc's starter model (ImageNet's weights taught PlantVillage's leaf "
            "diseases); --weights imagenet starts from ImageNet's alone.",
            soft_wrap=False,  # wrapped at the terminal's width
        )
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
        emit_json(card.to_dict())


def warn_field_check_dropped(init_from: Path) -> None:
    """The model warm-started from refuses field photos but carries none to refit that check with (folders from
    before field_photos.zip); without --field the new model will not refuse them (a retraining job of the service
    is refused instead: service/training.py `keeps_field_check`)."""
    from leafdoc.modelfolder import carries_field_photos, read_card

    try:
        has_check = read_card(Path(init_from)).field is not None
    except LeafdocError:
        return  # the run itself says what is wrong with the folder
    if has_check and not carries_field_photos(init_from):
        console.print(
            f"[yellow]note:[/] {esc(str(init_from))} refuses field photos (leaves on the plant) as `unlike_training`; "
            "this run names no --field folder, so the new model will guess on them instead. Pass --field DIR "
            "(folders of field photos) to keep that check.",
            soft_wrap=False,  # wrapped at the terminal's width
        )


train.__signature__ = train_signature()
app.command()(train)


def nothing_ingested(data: Path, rejected: list[dict], most: int = 3):
    """The error of `leafdoc train --data DIR` when not one photo of DIR could be ingested: the rejections' reasons,
    commonest first (as `leafdoc ingest` lists them), with how many files each and one of them."""
    from leafdoc.cli.printing import shown_path
    from leafdoc.core.errors import ConfigError

    by_reason: dict[str, list[str]] = {}
    for r in rejected:
        by_reason.setdefault(r["reason"], []).append(r["file"])
    ranked = sorted(by_reason.items(), key=lambda kv: -len(kv[1]))
    said = "; ".join(
        f"{len(files)} file{'s' if len(files) != 1 else ''} (e.g. {shown_path(files[0], data)}): {reason}"
        for reason, files in ranked[:most]
    )
    more = f"; and {len(ranked) - most} other reasons" if len(ranked) > most else ""
    return ConfigError(
        f"{data}: no photo could be ingested, so there is nothing to train on. "
        + (f"{said}{more}." if rejected else "It holds no files."),
        hint=f"Put the photos in one folder per class ({data}/<label>/photo.jpg) and pass the folder that holds the "
        f"class folders; `leafdoc ingest {data}` lists every file rejected and why.",
    )


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
    from leafdoc.train.tfimport import import_tensorflow_quietly

    with console.status("loading TensorFlow"):
        import_tensorflow_quietly()
    from leafdoc.core.atomic import check_replaceable
    from leafdoc.lifecycle import caveats
    from leafdoc.lifecycle.training import prepare, train_model
    from leafdoc.lifecycle.workspace import Workspace
    from leafdoc.modelfolder import CARD_FILE
    from leafdoc.train.checkpoint import STATE, beside
    from leafdoc.train.trainer import started_from, test_learnt, val_learnt

    # Checked before ingest and caching, which take minutes on a big folder: where the backbone starts is there
    # (models/starter, a weights file, the parent's card), and --out is new, empty or an earlier model (a folder of
    # photos given as --out would be replaced by the model)
    started_from(cfg, init_from)
    check_replaceable(out_dir, CARD_FILE)
    ws = Workspace.open(load_settings())
    if data is not None:
        res = _ingest(ws.settings, ws.catalog, ws.store, data, dataset, not quiet)
        if res.version is None:  # nothing ingested, none before: say why as `leafdoc ingest` does
            raise nothing_ingested(data, res.rejected)
        if res.rejected and not quiet:
            print_skipped(res.rejected, f"`leafdoc ingest {data} --json`")  # each named with its reason
        if not quiet:
            print_poor_photos(res.poor_photos, data)
        if (note := added_to_existing(res, data)) and not quiet:
            console.print(f"[yellow]note:[/] {esc(note)}", soft_wrap=False)
        dataset = res.dataset
    with progress_bar(f"Caching {cfg.image_size}px arrays", not quiet) as update:
        td = prepare(ws, dataset, cfg, version, progress=update)
    if not quiet:
        c = td.counts()
        console.print(
            f"{td.dataset} v{td.version}: {len(td.classes)} classes; "
            f"train {c['train']}, val {c['val']}, test {c['test']}"
        )
    train_y = td.y[td.split == "train"]
    if warning := caveats.few_photos({cls: int((train_y == i).sum()) for i, cls in enumerate(td.classes)}):
        console.print(f"[yellow]warning:[/] {esc(warning)}", soft_wrap=False)  # wrapped at the terminal's width
    held_out = {
        cls: {p: int(((td.y == i) & (td.split == p)).sum()) for p in ("val", "test")}
        for i, cls in enumerate(td.classes)
    }
    if warning := caveats.empty_held_out(held_out):
        console.print(f"[yellow]warning:[/] {esc(warning)}", soft_wrap=False)
    with training_bar(quiet) as bar:
        task = bar.add_task("training", total=None, info="")

        on_event = TrainingLog(
            bar, task, {"head": cfg.epochs, "scratch": cfg.epochs, "fine_tune": cfg.fine_tune_epochs}
        )

        checkpoint = beside(out_dir)
        if not resume:
            shutil.rmtree(checkpoint, ignore_errors=True)
        elif not (checkpoint / STATE).is_file() and not quiet:
            console.log(f"no checkpoint at {checkpoint}: training from the first epoch")
        try:
            card = train_model(
                cfg,
                td,
                out_dir,
                on_event=on_event,
                init_from=init_from,
                provenance=provenance,
                checkpoint_dir=checkpoint,
                originals=ws.store.get,
            ).card
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM, at a batch's end: say what --resume will keep
            on_event.flush()
            said = resume_words(on_event.running, on_event.saved, cfg.pretrained and cfg.head_on_features)
            console.print(f"stopped: {esc(said)}", soft_wrap=False)
            STOP_SAID.set()
            raise
        finally:
            on_event.flush()  # the epoch a stop ended on
    t = card.test_metrics
    if not quiet:
        out.print(
            f"[bold green]{out_dir}[/]: test accuracy {t['accuracy']:.4f}, top-3 {t['top3_accuracy']:.4f}, "
            f"macro F1 {t['macro_f1']:.4f} on {t['n']} held-out images (best epoch {card.best_epoch})",
            soft_wrap=False,
        )
    learnt_test = test_learnt(card)
    if not quiet and (learnt := val_learnt(card)):
        held_out = "" if learnt_test else "; the test figures are on photos no training saw"
        out.print(
            f"note: the model also learnt from the {learnt} validation photos (with --restore-best last they choose "
            f"nothing; --no-train-on-val: it does not){held_out}",
            soft_wrap=False,
        )
    if learnt_test:  # PlantVillage photos the starter's network learnt: the test figures above flatter the model
        console.print(f"[yellow]warning:[/] {esc(card.dataset.model_extra['test_learnt_note'])}", soft_wrap=False)
    right = round(t["accuracy"] * t["n"])
    if warning := caveats.no_better_than_chance(right, t["n"], len(td.classes)):
        console.print(f"[bold red]warning:[/] {esc(warning)}", soft_wrap=False)
    elif warning := caveats.too_few_test_photos(right, t["n"], len(td.classes), cfg.test_fraction):
        console.print(f"[yellow]warning:[/] {esc(warning)}", soft_wrap=False)
    if not quiet and card.field:
        f = card.field
        cv = f" ({f['field_refused_cv']:.1%} by cross-validation)" if f.get("field_refused_cv") is not None else ""
        out.print(
            f"unlike-training check: refuses {f['field_refused']:.1%} of {f['n_field']} calibration field "
            f"photos{cv} and {f['val_refused']:.1%} of {f['n_val']} validation leaf photos",
            soft_wrap=False,
        )
        from leafdoc.inference.field import budget_missed

        if missed := budget_missed(f):
            out.print(f"[yellow]warning:[/] {esc(missed)}", soft_wrap=False)
    from leafdoc.words.job_phases import other_leaves_words

    if not quiet and (said := other_leaves_words(getattr(card, "other_leaves", None))):
        out.print(esc(said), soft_wrap=False)  # which bank, how many of its classes are the lab's own, threshold
    return card


@app.command()
def predict(
    model_dir: Annotated[Path, typer.Argument(help="A model folder, or a .tflite file inside one (to check it).")],
    images: Annotated[
        list[Path], typer.Argument(help="One or more photos, or folders: every photo in them and their sub-folders.")
    ],
    top_k: Annotated[int, typer.Option("--top-k", help="How many labels per image.")] = 3,
    crop: Annotated[
        str | None,
        typer.Option(
            "--crop",
            help="The crop the photos are of (`tomato`, `corn`, `bell pepper`, or a label prefix such as "
            "`Corn_(maize)`): the answers choose among that crop's labels only.",
        ),
    ] = None,
    lang: Annotated[
        str | None,
        typer.Option(
            "--lang",
            help="The language of the answers' words and advice: en, es, fr or hi (the API's `lang`). Default: en.",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print a JSON list: each photo's answer as the API gives it, or its error."),
    ] = False,
    csv_file: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            help="Also write the answers as a table to this CSV file, a row a photo (the desktop app's columns), "
            "once every photo is answered.",
        ),
    ] = None,
):
    """Top-k diagnoses with probabilities for each photo, and what to do about the diagnosis."""
    from leafdoc.advice import shipped_knowledge
    from leafdoc.core.i18n import negotiate
    from leafdoc.inference.predictor import Predictor

    language = negotiate(lang)  # an unknown one refused, naming those spoken, before the model is read
    settings = load_settings()
    knowledge = shipped_knowledge(settings.advice_dir)
    if model_dir.suffix == ".tflite":  # its interpreter may be TensorFlow's: imported without its CUDA noise
        from leafdoc.train.tfimport import import_tensorflow_quietly

        with contextlib.suppress(ImportError):
            import_tensorflow_quietly()
    predictor = Predictor(
        model_dir,
        max_pixels=settings.max_image_pixels,
        variant=settings.onnx_variant or "fp32",
        any_cpu=settings.int8_any_cpu,
    )
    if csv_file is not None:
        check_csv_target(csv_file)  # before hours of answers, not after
    photos = photos_of(images)  # a folder with no photos: an error in its place, the other photos still answered
    answers: list[dict] = []
    # A few photos at a time: each decoded photo is held until its answer is made (4 MB a phone's photo), and a folder
    # of 2,000 held 8 GB before the first answer was printed; now the answers are printed as they come.
    for start in range(0, len(photos), PREDICT_CHUNK):
        part = photos[start : start + PREDICT_CHUNK]
        found = [p for p in part if isinstance(p, Path)]
        answered = iter(
            a.model_dump(mode="json") for a in predictor.predict_files(found, top_k, knowledge, crop, language)
        )
        got = [next(answered) if isinstance(p, Path) else p for p in part]
        if not as_json:
            print_answers(got)
        answers += got
    if as_json:
        emit_json(answers)
    elif len(answers) > 1:  # a folder's answers scroll by: what they come to, last
        print_wrapped(out, "In all:", answers_summary(answers), "bold")
    if csv_file is not None:
        from leafdoc.core.atomic import atomic_write_bytes
        from leafdoc.words.answer_table import answer_row, table_csv

        rows = [answer_row(a, a["file"]) for a in answers]
        atomic_write_bytes(csv_file, table_csv(rows).encode("utf-8"))
        print(f"{len(rows):,} answer{'' if len(rows) == 1 else 's'} written to {csv_file}", file=sys.stderr)
    if any("error" in a for a in answers):  # a script must know a photo went unanswered; the rest were printed
        raise typer.Exit(1)


PREDICT_CHUNK = 16  # photos `predict` decodes at once


def check_csv_target(path: Path) -> None:
    """Refuse a --csv file that cannot be written, or that is a photo or a folder, before any photo is read."""
    from leafdoc.core.errors import ConfigError
    from leafdoc.imaging.photos import is_image_name

    if path.is_dir():
        raise ConfigError(f"{path}: is a folder.", hint="Name a file for the table: --csv answers.csv")
    if path.is_symlink() or (path.exists() and not path.is_file()):  # the file is replaced whole: a link (or
        # /dev/stdout) would become a file of its own, and the file it named be left as it was
        raise ConfigError(f"{path}: is a link or not a plain file.", hint="Name a new file, or a plain one to replace.")
    if is_image_name(path):  # `--csv photo.jpg other.jpg`: the first photo would be written over
        raise ConfigError(f"{path}: is named as a photo.", hint="Name a .csv file for the table: --csv answers.csv")
    if not path.parent.is_dir():
        raise ConfigError(f"{path}: its folder does not exist.", hint="Make the folder first, or name another one.")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"{path}: cannot be written here.", hint="Name a file in a folder you can write to.")


def photos_of(paths: list[Path]) -> list[Path | dict]:
    """The photos `predict` answers: each file as given, and for a folder every file in it and its sub-folders named
    as a photo (.jpg, .png, ...; hidden ones left out), in name order. A folder with none is an error naming it: in
    its place among other paths (an answer's `{"file", "error"}`, so the other photos are still answered), the
    command's error when it is all there is."""
    from leafdoc.core.errors import ImageError
    from leafdoc.imaging.photos import IMAGE_SUFFIXES, is_image_name

    photos: list[Path | dict] = []
    for path in paths:
        if not path.is_dir():
            photos.append(path)
            continue
        found = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and is_image_name(p) and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not found:
            said = "a folder with no photos in it or its sub-folders."
            hint = f"Pass photos, or a folder holding some (named {', '.join(sorted(IMAGE_SUFFIXES))})."
            if len(paths) == 1:
                raise ImageError(f"{path}: {said}", hint=hint)
            photos.append({"file": str(path), "error": f"{said} {hint}"})
        photos += found
    return photos


@app.command()
def advice(
    label: Annotated[str | None, typer.Argument(help="A label as the model answers it; none: list them.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the entry (or the labels) as JSON.")] = False,
):
    """What to do about a diagnosis: the knowledge entry of a label (symptoms, look-alikes, actions, sources)."""
    from leafdoc.advice import shipped_knowledge
    from leafdoc.core.errors import NotFound

    knowledge = shipped_knowledge(load_settings().advice_dir)
    if label is None:
        if as_json:
            emit_json([{"label": e.label, "title": e.title} for e in knowledge.entries.values()])
            return
        print_advice_labels(knowledge)
        return
    entry = knowledge.get(label)
    if entry is None:
        raise NotFound(
            f"leafdoc has no advice for label {label!r}.", hint="`leafdoc advice` lists the labels it has advice for."
        )
    data = entry.model_dump(mode="json")
    if as_json:
        emit_json(data)
        return
    print_advice_entry(entry, data)


app.command()(calibrate)
app.command()(export)
app.command()(evaluate)
app.add_typer(models_app, name="models")


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
    from leafdoc.core.atomic import check_replaceable
    from leafdoc.core.errors import ConfigError
    from leafdoc.data.stats import catalog_entries, compute_stats, folder_entries, write_stats

    if (data is None) == (dataset is None):
        raise ConfigError("pass exactly one of --data DIR or --dataset NAME.")
    check_replaceable(out_dir, "stats.json")
    settings = load_settings()
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
    with progress_bar(f"Measuring {source}", not as_json) as update:
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
        emit_json(result)
    else:
        print_stats(result, out_dir)


@app.command(short_help="Copy this data home (catalog, photos, models) to DEST, while leafdoc runs.")
def backup(
    dest: Annotated[Path, typer.Argument(help="A new folder for the copy (it becomes a data home of its own).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print what was copied as JSON.")] = False,
):
    """Copy this data home's catalog and store into DEST, while leafdoc runs: datasets, model versions, jobs' records,
    feedback and kept photos. `LEAFDOC_HOME=DEST` serves from the copy; to restore, stop leafdoc, move the home
    aside and copy DEST in its place (not over its files: a crashed home's catalog.sqlite-wal would be replayed)."""
    from leafdoc.data.backup import backup_home

    settings = load_settings()
    with progress_bar(f"Backing up {settings.home}", not as_json) as update:
        done = backup_home(settings, dest, progress=update)
    if as_json:
        emit_json(done)
        return
    print_wrapped(
        console,
        "Backed up",
        f"{settings.home} to {dest}: the catalog ({done['catalog_bytes']:,} bytes) and {done['blobs']:,} stored "
        f"files ({done['blob_bytes']:,} bytes). Serve from it with LEAFDOC_HOME={dest}; to restore, stop leafdoc, "
        "move the data home aside and copy this folder in its place (never its files over the old home's: a "
        "catalog.sqlite-wal left there would be replayed into the restored catalog).",
        "green",
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-w",
            min=1,
            help="API worker processes (default: LEAFDOC_API_WORKERS; else one per CPU this process may use, at "
            "most 4; the web page then runs in a process of its own).",
        ),
    ] = None,
    consumer: Annotated[
        bool | None,
        typer.Option(
            "--consumer/--no-consumer",
            help="Run one training-job consumer beside the API (default: LEAFDOC_RUN_CONSUMER, true).",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    parent_pid: Annotated[int | None, typer.Option(hidden=True, help="Stop when this process is gone.")] = None,
):
    """Serve the web API (docs at /docs); embedded, a training-job consumer runs beside it."""
    from leafdoc.service.run import serve as run_service

    run_service(load_settings(), host, port, workers, consumer, log_level, say=console.print, parent_pid=parent_pid)


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Exit when the queue is empty instead of waiting for jobs.")] = False,
    parent_pid: Annotated[int | None, typer.Option(hidden=True, help="Exit when this process is gone.")] = None,
):
    """Run training jobs from the queue, one at a time, until stopped (SIGTERM or Ctrl-C)."""
    import logging

    from leafdoc.service.worker import serve_forever

    settings = load_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its plugin and migration chatter is not the job's
    queue, catalog = settings.queue_url or str(settings.queue_path), settings.catalog_url
    console.print(f"worker: queue {without_password(queue)}, catalog {without_password(catalog)}")
    ran = serve_forever(settings, burst=burst, parent_pid=parent_pid)
    if burst:  # it exits now: say why, rather than nothing
        console.print("no job waiting; nothing to do" if not ran else f"the queue is empty: {ran} task(s) run")


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
    from leafdoc.train.tfimport import import_tensorflow_quietly

    import_tensorflow_quietly()

    spec = load_recipe(recipe)
    out_dir = out_dir or Path("runs") / (f"{spec.name}-quick" if quick else spec.name)
    with training_bar(as_json) as bar:
        on_event = experiment_events(bar)

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
        emit_json(results)
        return
    print_experiment(results)


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


# One line each in `leafdoc --help`: the docstrings' first sentences are longer than an 80-column list leaves room
# for, and click cut them off mid-word.
SHORT_HELP = {
    "ingest": "Check photos and add them to the catalog as a dataset version.",
    "train": "Train a model folder on a dataset, scored on held-out photos.",
    "predict": "Diagnose photos with a model folder, and what to do.",
    "advice": "What to do about a diagnosis: a label's knowledge entry.",
    "calibrate": "Fit a model folder's not-a-leaf and field-photo checks.",
    "export": "Write model.onnx or model.tflite, or an int8/fp16 copy.",
    "evaluate": "Score a model folder on labelled photos; write a report.",
    "stats": "Class balance, sizes, colour and sharpness of a dataset.",
    "serve": "Serve the web API, and the web page at /ui.",
    "worker": "Run training jobs from the queue.",
    "experiment": "Train and compare the runs of a recipe.",
    "desktop": "Open the desktop app.",
    "models": "This data home's model versions: list, show, add, promote.",
}
for _info in [*app.registered_commands, *app.registered_groups]:
    _info.short_help = SHORT_HELP.get(_info.name or _info.callback.__name__)


def main() -> None:
    try:
        # Outside standalone mode, Typer returns the code of a typer.Exit (130 for Ctrl-C) instead of exiting.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            if code == 130 and not STOP_SAID.is_set():  # `leafdoc train` says what --resume keeps
                console.print("stopped")
            sys.exit(code)
    except LeafdocError as exc:
        print_wrapped(console, "error:", exc.message, "bold red")  # at the terminal's width, paths whole
        if exc.hint:
            print_wrapped(console, "what to do:", exc.hint, "yellow")
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        console.print("aborted")
        sys.exit(130)
    except (typer.TyperException, click.ClickException) as exc:
        # Usage errors (a missing argument, a bad choice) come through here outside standalone mode: Typer 0.29
        # raises its own vendored click's exceptions, older ones click's. Either prints a short usage line, exit 2.
        if not hasattr(exc, "show"):
            raise
        exc.show()
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
