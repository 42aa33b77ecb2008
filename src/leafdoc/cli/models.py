"""`leafdoc models`: the model versions of this data home's registry; adding a model folder to it, promoting a
version and rolling back.

A data home keeps serving the versions it has: a newer starter, a model trained with `leafdoc train` or one a
colleague sent is served only once it is added (and promoted). A running `leafdoc serve` picks a promotion or a
rollback up within LEAFDOC_MODEL_CHECK_SECONDS, with no restart. The service's admin routes do the same over HTTP
(`POST /v1/models/{version}/promote`, `POST /v1/models/rollback`), as do the models tables of the web page and the
desktop app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape as esc
from rich.table import Table

from leafdoc.cli.common import emit_json, load_settings
from leafdoc.cli.printing import out, print_wrapped
from leafdoc.words.percent import measured_share

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help, as `leafdoc`'s (cli/main.py): it reads at 80 columns
    help="This data home's model versions: list, show one's card, add, promote, roll back.",
)


FORCE_HELP = (
    "Go ahead even when the model is worse than the one serving now on the same photos (its test split), which is "
    "refused otherwise."
)


def _workspace():
    """This data home's workspace, to open with `with` (it closes the catalog)."""
    from leafdoc.lifecycle.workspace import Workspace

    return Workspace.open(load_settings())


def taken_up_within() -> str:
    """How soon a running `leafdoc serve` serves a promotion: the check interval's value (LEAFDOC_MODEL_CHECK_SECONDS),
    not its name."""
    seconds = load_settings().model_check_seconds
    return f"within {seconds:g} s (LEAFDOC_MODEL_CHECK_SECONDS)"


def check_answers(folder: Path) -> None:
    """Load the folder's model as a worker would and answer one made-up photo with it, advice and checks included:
    a folder whose card, labels or ONNX file the service cannot use is refused here, not after it was promoted."""
    from leafdoc.advice import shipped_knowledge
    from leafdoc.core.errors import ModelError
    from leafdoc.inference.predictor import Predictor
    from leafdoc.service.serving import Loaded, answer_made_up_photo

    loaded = Loaded(0, 0, Predictor(folder), shipped_knowledge(load_settings().advice_dir))
    try:
        answer_made_up_photo(loaded)
    except Exception as exc:
        raise ModelError(
            f"{folder}: the model loads but could not answer a test photo ({exc}).",
            hint="Export it again (leafdoc export) or retrain it; nothing was added.",
        ) from None


@app.command("list", short_help="Every version: which serves, where it came from, its accuracy.")
def list_versions(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False):
    """Every version in the registry: which one serves, where it came from, its test accuracy."""
    from leafdoc.lifecycle.versions import version_answer

    with _workspace() as ws:
        registry = ws.registry
        ptr = registry.serving()
        rows = [version_answer(r, ptr.version if ptr else None) for r in registry.versions()]
        hint = registry.newer_starter()
    if as_json:
        emit_json({"versions": rows, "serving": ptr.version if ptr else None, "hint": hint})
        return
    if not rows:
        out.print("no model versions yet: `leafdoc serve` seeds the starter on first start")
    else:
        print_versions(rows)
    if hint:
        out.print(esc(hint))


def print_versions(rows: list[dict]) -> None:
    """The versions as a table, each one's source (a path, often long) in its last column; where that table is wider
    than the terminal (80 columns), the sources follow it as lines of their own rather than broken mid-word."""

    def table(with_source: bool) -> Table:
        t = Table("version", "status", "test\naccuracy", "classes")
        t.add_column("created", no_wrap=True)
        if with_source:
            t.add_column("source")
        for r in rows:
            t.add_row(
                f"[bold]{r['version']}[/]" + (" ←" if r["serving"] else ""),
                r["status"],
                measured_share((r["metrics"] or {}).get("test")),
                str(len(r["labels"])),
                r["created"][:16].replace("T", " "),
                *([esc(r["source"] or "")] if with_source else []),
            )
        return t

    full = table(with_source=True)
    if out.measure(full, options=out.options.update_width(10_000)).maximum <= out.width:  # its width unwrapped
        out.print(full)
        return
    out.print(table(with_source=False))
    out.print("[bold]source[/] of each version")
    for r in rows:
        out.print(f"  {r['version']}: {esc(r['source'] or '')}")


def _version_answer(registry, version: int) -> dict:
    """One version as GET /v1/models/{version} answers it: the registry's row with its card and files, the crops it
    learnt from field photos and from lab photos only, no server folder named (core/redact.py)."""
    from leafdoc.core.errors import NotFound
    from leafdoc.core.redact import redact
    from leafdoc.lifecycle.versions import version_answer

    try:
        row = registry.get(version)
    except NotFound:
        there = [r.version for r in registry.versions()]
        raise NotFound(
            f"model version {version} is not in the registry; "
            + (f"its versions are {', '.join(map(str, there))}." if there else "it holds no version yet."),
            hint="`leafdoc models list` lists them; `leafdoc models show MODEL_DIR` reads a model folder's card.",
        ) from None
    ptr = registry.serving()
    return redact(version_answer(row, ptr.version if ptr else None, full=True))


def _folder_answer(folder: Path) -> dict:
    """A model folder's card in the shape of GET /v1/models/{version} (no version, no registry fields), redacted the
    same way."""
    from leafdoc.core.redact import redact
    from leafdoc.inference.fieldcrops import crops_known
    from leafdoc.modelfolder import CARD_FILE, LABELS_FILE, check_model_dir, read_card, read_labels

    folder = check_model_dir(folder.expanduser().resolve(), (CARD_FILE, LABELS_FILE))
    card, labels = read_card(folder).to_dict(), read_labels(folder)
    ds = card.get("dataset") or {}
    answer = {
        "version": None,
        "folder": folder.name,
        "source": None,
        "created": card.get("created"),
        "dataset": ds.get("name"),
        "dataset_version": ds.get("version"),
        "labels": labels,
        "metrics": card.get("metrics"),
        "card": card,
        "crops": crops_known(labels, card.get("field")),
    }
    return redact(answer)


@app.command(short_help="A version's card: its data and licences, classes, figures, limits.")
def show(
    target: Annotated[
        str | None, typer.Argument(metavar="VERSION", help="A version (`leafdoc models list`), or a model folder.")
    ] = None,
    folder: Annotated[Path | None, typer.Option("--dir", help="A model folder instead of a version.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print it as GET /v1/models/{version} does.")] = False,
):
    """A model version's card, to read before promoting it or to know what the model knows: when and how it was made,
    what it learnt from (the data and their licences), the classes it knows by crop, its test figures with the
    photos they were measured on, its limitations. No server folder is named (as the API's answer)."""
    from leafdoc.advice.render import english_label
    from leafdoc.core.errors import ConfigError
    from leafdoc.words.model_card import card_text

    if folder is None and target is not None and not target.strip().isdigit():
        folder = Path(target)
    elif folder is not None and target is not None:
        raise ConfigError("give a version or --dir MODEL_DIR, not both.", hint="`leafdoc models show 2`.")
    if folder is not None:
        answer = _folder_answer(folder)
    elif target is None:
        raise ConfigError(
            "which version? Give its number or a model folder.",
            hint="`leafdoc models list` lists the versions; `leafdoc models show 2`, `leafdoc models show --dir DIR`.",
        )
    else:
        with _workspace() as ws:
            answer = _version_answer(ws.registry, int(target))
    if as_json:
        emit_json(answer)
        return
    out.print(esc(card_text(answer, min(out.width, 80), name=english_label)), highlight=False)


@app.command(short_help="Add a model folder as a new version (--promote: serve it).")
def add(
    folder: Annotated[Path, typer.Argument(help="A model folder (model.onnx, labels.json, card.json, ...).")],
    promote: Annotated[bool, typer.Option("--promote", help="Serve it as soon as it is added.")] = False,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
):
    """Add a model folder to this data home's registry as a new version (a newer starter, say), and serve it with
    --promote. The same files added twice are one version."""
    from leafdoc.lifecycle import against_serving
    from leafdoc.modelfolder import SERVING_FILES, check_model_dir

    folder = check_model_dir(folder.expanduser().resolve(), SERVING_FILES)
    check_answers(folder)
    with _workspace() as ws:
        registry = ws.registry
        version = registry.holding(folder)
        added = version is None
        ptr = registry.serving()
        notes: list[str] = []
        if ptr is None or ptr.version != version:
            decision = against_serving.refuse_if_worse(ws, folder, ptr and ptr.version, "added", force)
            notes = against_serving.what_changes(ws, folder, ptr and ptr.version, decision)
        if added:
            version, served = registry.register(
                folder,
                source=f"added:{folder}",
                serve="promote" if promote else None,
                promotion={"decision": "added", "promoted": promote, "reason": f"added from {folder}"}
                if promote
                else None,
            )
        else:
            ptr = registry.serving()
            served = False
            if promote and (ptr is None or ptr.version != version):
                registry.promote(version, reason=f"promoted with leafdoc models add {folder}")
                served = True
        ptr = registry.serving()
    result = {"version": version, "added": added, "serving": ptr.version if ptr else None, "promoted": served}
    if as_json:
        emit_json({**result, "notes": notes})
        return
    what = "added as" if added else "already in the registry as"
    out.print(f"[bold green]{esc(str(folder))}[/]: {what} model version {version}")
    for note in notes:
        print_wrapped(out, "", note, "")
    if result["serving"] == version:
        print_wrapped(
            out,
            "",
            f"version {version} serves{' from now on' if served else ''}: a running `leafdoc serve` takes it up "
            f"{taken_up_within()}",
            "",
        )
    else:
        out.print(f"version {result['serving']} still serves; add --promote to serve this one")


def _switched(event: dict, as_json: bool, notes: list[str] | None = None) -> None:
    if as_json:
        emit_json({**event, "notes": notes} if notes is not None else event)
        return
    for note in notes or []:
        print_wrapped(out, "", note, "")
    print_wrapped(
        out,
        "",
        f"model version {event['version']} serves from now on (was {event['previous_version']}): a running "
        f"`leafdoc serve` takes it up {taken_up_within()}",
        "",
        text_style="bold green",
    )


@app.command(short_help="Serve another version of the registry.")
def promote(
    version: Annotated[int, typer.Argument(help="The version to serve (`leafdoc models list`).")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the serving history.")] = "",
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the serving event as one JSON object.")] = False,
):
    """Serve a version of the registry (a candidate a retrain left, or one served before)."""
    from leafdoc.lifecycle import against_serving

    with _workspace() as ws:
        registry = ws.registry
        registry.get(version)  # not in the registry: said at once
        ptr = registry.serving()
        notes: list[str] = []
        if ptr is None or ptr.version != version:  # (already serving: promote says so)
            folder = registry.local_dir(version)
            check_answers(folder)  # it answers here before it serves anywhere
            decision = against_serving.refuse_if_worse(ws, folder, ptr and ptr.version, "promoted", force)
            notes = against_serving.what_changes(ws, folder, ptr and ptr.version, decision)
        event = registry.promote(version, reason=reason.strip() or "promoted with leafdoc models promote")
    _switched(event, as_json, notes)


@app.command()
def rollback(
    reason: Annotated[str, typer.Option("--reason", help="Why, for the serving history.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the serving event as one JSON object.")] = False,
):
    """Serve again the version that served before the one serving now."""
    with _workspace() as ws:
        registry = ws.registry
        event = registry.rollback(reason.strip() or "rolled back with leafdoc models rollback")
    _switched(event, as_json)
