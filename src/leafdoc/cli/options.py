"""`leafdoc train`'s options: the run's own (where data comes from, where the model goes), then one per
TrainConfig field, generated from it with its description and default: no field is restated by hand."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from types import UnionType
from typing import Annotated, Literal, Union, get_args, get_origin

import typer

from leafdoc.train.backbone_registry import help_text as backbone_help

SPLIT_HELP = (
    "Only the photos the model's split.json puts in this part: train, val, test, or unseen (neither train nor val)."
)


def folders_option(help_text: str):
    """A repeatable option naming folders that must exist (non-leaf photos, field photos)."""
    return typer.Option(help=help_text, exists=True, file_okay=False, metavar="DIR")


TRAIN_RUN_OPTIONS = [
    (
        "out_dir",
        Path,
        typer.Option("--out", help="Model folder to write: new, empty, or an earlier model (replaced whole)."),
        inspect.Parameter.empty,
    ),
    ("data", Path | None, typer.Option(help="A folder of class folders (ingested first)."), None),
    (
        "dataset",
        str | None,
        typer.Option(
            help="A dataset already in the catalog; with --data, the dataset the folder goes into (default: "
            "the folder's name)."
        ),
        None,
    ),
    ("dataset_version", int | None, typer.Option(help="Dataset version (default: latest)."), None),
    ("init_from", Path | None, typer.Option(help="Warm-start from this model folder."), None),
    (
        "nonleaf",
        list[Path] | None,
        folders_option("A folder of non-leaf photos to calibrate the not-a-leaf check (repeatable)."),
        None,
    ),
    (
        "field",
        list[Path] | None,
        folders_option(
            "A folder of field photos to calibrate the unlike-training check with (repeatable; as `leafdoc "
            "calibrate --field`). Leave it out for a model trained on field photos."
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
            help="Continue a run to the same --out that was stopped part-way, from its last saved epoch "
            "(same settings and data; the state is kept beside --out as .NAME.checkpoint while training). The "
            "default head phase on cached features is saved only when it ends; fine-tuning and the other phases "
            "after every epoch."
        ),
        False,
    ),
    ("as_json", bool, typer.Option("--json", help="Print the model card as JSON."), False),
]
NOT_OPTIONS = {"nonleaf_dirs", "field_dirs"}  # set through --nonleaf and --field (folders that must exist)


def as_options(text: str, names) -> str:
    """A description in the command line's words: the other settings it names as the API and recipes spell them
    (`head_on_features`, `restore_best`) named as options (--head-on-features, --restore-best)."""
    for name in sorted((n for n in names if "_" in n), key=len, reverse=True):
        text = re.sub(rf"`?\b{name}\b`?", "--" + name.replace("_", "-"), text)
    return text


def config_parameters(model) -> list[inspect.Parameter]:
    """One Typer option per field of a pydantic config: its type (a Literal becomes a string whose choices the
    help lists; the config checks it), its description as help (other settings named as options), its default."""
    params = []
    for name, field in model.model_fields.items():
        if name in NOT_OPTIONS:
            continue
        kind, hint = field.annotation, as_options(field.description or "", model.model_fields)
        args = [a for a in get_args(kind) if a is not type(None)]
        if get_origin(kind) is Literal:
            kind, hint = str, " | ".join(map(str, get_args(kind))) + (f": {hint}" if hint else "")
        elif get_origin(kind) in (Union, UnionType) and len(args) == 1:
            inner = args[0]
            kind = (str if get_origin(inner) is Literal else inner) | None
        if name == "backbone":
            hint = backbone_help()
        default = field.get_default(call_default_factory=True)
        metavar = None
        if get_origin(kind) is list or any(get_origin(a) is list for a in get_args(kind)):
            default = None  # repeatable; empty means the config's default
            metavar = "N"  # one value each time the option is given (`list[int]` read as a type name)
        option = typer.Option(help=hint or None, metavar=metavar)
        params.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[kind, option])
        )
    return params


def train_signature() -> inspect.Signature:
    from leafdoc.train.config import TrainConfig

    run = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[kind, option])
        for name, kind, option, default in TRAIN_RUN_OPTIONS
    ]
    return inspect.Signature(run + config_parameters(TrainConfig))
