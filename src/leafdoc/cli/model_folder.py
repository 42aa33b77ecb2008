"""`leafdoc calibrate`, `leafdoc export` and `leafdoc evaluate`: commands on a model folder (cli/main.py registers
them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape as esc

from leafdoc.cli.common import emit_json, load_settings, progress_bar
from leafdoc.cli.options import SPLIT_HELP, folders_option
from leafdoc.cli.printing import console, out, print_evaluation
from leafdoc.core.errors import ConfigError
from leafdoc.runtime.cpuflags import int8_problem


def calibrate(
    model_dir: Annotated[Path, typer.Argument(help="A model folder with split.json.")],
    data: Annotated[Path, typer.Option(help="The folder of class folders the model was trained on.")],
    nonleaf: Annotated[
        list[Path] | None, folders_option("A folder of non-leaf photos (repeatable): flowers, CIFAR-10, ...")
    ] = None,
    field: Annotated[
        list[Path] | None,
        folders_option(
            "A folder of field photos (repeatable): fits the unlike-training check on the half of them whose "
            "sha256 starts with 0-7; the rest stay held out."
        ),
    ] = None,
    field_learnt: Annotated[
        list[Path] | None,
        folders_option(
            "A folder of field photos the model was trained on (repeatable; class folders named by label): field "
            "photos of their crops are then answered when the model is sure (a threshold set on the photos whose "
            "sha256 starts with 8-b), and field photos of other crops refused as known only from lab photos."
        ),
    ] = None,
    target: Annotated[float, typer.Option(help="Share of validation leaf photos the threshold may refuse.")] = 0.01,
    field_budget: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            max=0.2,
            help="With --field: the share of unseen lab photos the model may abstain on, all checks together "
            "(the unlike-training threshold is set for it by cross-validation). Default: 0.0175.",
        ),
    ] = None,
    drop_field: Annotated[
        bool,
        typer.Option(
            "--drop-field",
            help="Remove the unlike-training check and the field photos the model carries (without --nonleaf, the "
            "not-a-leaf check is kept as fitted: seconds, not minutes). Without it or --field, a model with that "
            "check refits it with the field photos it carries (field_photos.zip).",
        ),
    ] = False,
    light_range: Annotated[
        bool,
        typer.Option(
            "--light-range",
            help="Measure the lights the model's training photos were taken under (read off the sheet around each "
            "leaf) and from now on take a photo lit warmer or cooler than 95% of them back to the nearer end of "
            "their middle half before the model sees it; the checks are refitted on photos so prepared.",
        ),
    ] = False,
    answer_share: Annotated[
        float | None,
        typer.Option(
            min=0.5,
            max=1.0,
            help='Also set the "not sure" threshold again: the largest that answers this share of the validation '
            "photos (training's default: 0.99). Lower answers fewer photos and gets more of them right.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the card's new checks as JSON.")] = False,
):
    """(Re)fit the not-a-leaf check of a model folder (and the unlike-training check: with --field, or with the
    field photos the model carries)."""
    from leafdoc.inference.calibrate import calibrate_model_dir

    section = calibrate_model_dir(
        model_dir,
        data,
        nonleaf or [],
        target,
        max_pixels=load_settings().max_image_pixels,
        field=field or [],
        field_budget=field_budget,
        drop_field=drop_field,
        light_range=light_range,
        answer_share=answer_share,
    )
    from leafdoc.modelfolder import read_card

    if field_learnt:
        learn_field_crops(model_dir, field_learnt)
    card = read_card(model_dir)
    field_section = card.field
    if as_json:
        extra = {"field": field_section} if field_section else {}
        emit_json({**section, **extra, **({"abstain": card.abstain} if answer_share else {})})
        return
    if field_section:
        f = field_section
        nonleaf_part = (
            f" and {f['nonleaf_refused']:.1%} of {f['n_nonleaf']} non-leaf photos" if "n_nonleaf" in f else ""
        )
        cv_part = (
            f"; by cross-validation, the model abstains on {f['val_abstained_cv']:.1%} of unseen lab photos (all "
            f"checks; budget {f['budget']:.2%}) and refuses {f['field_refused_cv']:.1%} of unseen field photos"
            if f.get("val_abstained_cv") is not None
            else ""
        )
        r = f.get("reason")
        reason_part = (
            f"; a refused photo is called a field photo (unlike_training) or no leaf (not_a_leaf) by a rule that, "
            f"cross-validated, names {r['field_as_unlike_training_cv']:.1%} of field photos and "
            f"{r['nonleaf_as_not_a_leaf_cv']:.1%} of non-leaf photos right"
            if r
            else f"; without non-leaf photos, a refused photo at least {f['leafy_share']:.0%} leaf-coloured is "
            "unlike_training, any other not_a_leaf"
        )
        out.print(
            f"[bold green]{esc(str(model_dir))}[/]: unlike-training threshold {f['threshold']:.3f} refuses "
            f"{f['val_refused']:.1%} of {f['n_val']} validation leaf photos, {f['field_refused']:.1%} of "
            f"{f['n_field']} field photos{nonleaf_part}{cv_part}{reason_part}"
        )
        from leafdoc.inference.field import budget_missed

        if missed := budget_missed(f):
            out.print(f"[yellow]warning:[/] {esc(missed)}")
    out.print(
        f"[bold green]{esc(str(model_dir))}[/]: not-a-leaf threshold {section['threshold']:.3f} refuses "
        f"{section['val_refused']:.1%} of {section['n_val']} validation leaf photos"
        + (
            f" and {section['nonleaf_refused']:.1%} of {section['n_nonleaf']} non-leaf photos"
            if "nonleaf_refused" in section
            else ""
        )
    )
    from leafdoc.words.job_phases import other_leaves_words

    if said := other_leaves_words(getattr(card, "other_leaves", None)):
        out.print(f"[bold green]{esc(str(model_dir))}[/]: {esc(said)}")
    if answer_share:
        a = card.abstain
        out.print(
            f'[bold green]{esc(str(model_dir))}[/]: "not sure" below {a["min_confidence"]:.3f}: answers '
            f"{a['val_coverage']:.1%} of the validation photos, right on {a['val_selective_accuracy']:.2%} of them"
        )


EXPORT_FORMATS = ("onnx", "tflite", "onnx-int8", "onnx-fp16")


def export(
    model_dir: Annotated[Path, typer.Argument(help="A model folder with model.keras.")],
    fmt: Annotated[str, typer.Option("--format", help=" | ".join(EXPORT_FORMATS))] = "onnx",
    data: Annotated[
        Path | None,
        typer.Option(help="onnx-int8/fp16: the folder of class folders the model was trained on (calibration, check)."),
    ] = None,
):
    """Write model.onnx or model.tflite from model.keras, or an int8/fp16 copy of model.onnx beside it."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}.", hint=f"Use one of {', '.join(EXPORT_FORMATS)}.")
    if fmt.startswith("onnx-"):  # from model.onnx with ONNX Runtime's tools: no TensorFlow
        from leafdoc.inference.quantize import quantize_model_dir

        with console.status(f"converting model.onnx to {fmt[5:]}, checking it on the validation photos"):
            path = quantize_model_dir(model_dir, fmt[5:], data)
        entry = json.loads((Path(model_dir) / "card.json").read_text())["onnx_variants"][fmt[5:]]
        check = entry["validation_vs_fp32"]
        out.print(
            f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): same top-1 as model.onnx on "
            f"{check['top1_agreement']:.1%} of {check['n']} validation photos on this CPU "
            f"({entry['checked_on']['model']}), probabilities within "
            f"{check['max_abs_prob_diff']:.4f}."
        )
        from leafdoc.modelfolder import read_split

        if (listed := len(read_split(model_dir).get("val", []))) > check["n"]:
            gone = listed - check["n"]
            out.print(
                f"note: {gone} of the {listed} validation photos split.json lists {'was' if gone == 1 else 'were'} "
                f"not in {esc(str(data))} or could not be read: the check is on the other {check['n']}."
            )
        if fmt != "onnx-int8":
            out.print(f"Serve it with LEAFDOC_ONNX_VARIANT={fmt[5:]}.")
        elif why := int8_problem():
            out.print(f"Those figures are this machine's, and leafdoc will not serve the copy on it: {why}.")
        else:
            from leafdoc.modelfolder import default_variant, read_card

            variant, reason = default_variant(Path(model_dir), read_card(model_dir))
            served = "serves it" if variant == "int8" else "serves model.onnx"
            out.print(f"On this machine `leafdoc serve` {served} unless LEAFDOC_ONNX_VARIANT says otherwise: {reason}.")
        return
    from leafdoc.train.export import export as do_export
    from leafdoc.train.tfimport import import_tensorflow_quietly

    import_tensorflow_quietly()
    with console.status(f"exporting {fmt}"):
        path = do_export(model_dir, fmt)
    out.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


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
    split: Annotated[str | None, typer.Option(help=SPLIT_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
):
    """Accuracy, top-3, macro F1, calibration, confusions, and what the model refuses to answer."""
    from leafdoc.core.atomic import check_replaceable
    from leafdoc.evaluate.evaluate import evaluate_folder

    if report is not None:  # fail before the slow part, not after it
        check_replaceable(report, "index.html")
    settings = load_settings()
    with progress_bar(f"Evaluating on {data.name}", not as_json) as update:
        result = evaluate_folder(model_dir, data, settings, update, None, ood, per_class, seed, split)
    if report is not None:
        from leafdoc.evaluate.report import write_report

        with console.status(f"writing the report to {report}"):
            write_report(result, report)
        result["report"] = str(report)
    if as_json:
        emit_json(result)
    else:
        print_evaluation(result)
        if not settings.onnx_variant:
            from leafdoc.modelfolder import default_variant, read_card

            if default_variant(Path(model_dir), read_card(model_dir))[0] == "int8":
                out.print(
                    "note: these are model.onnx's figures; `leafdoc serve` on this machine serves the int8 copy. "
                    f"LEAFDOC_ONNX_VARIANT=int8 leafdoc evaluate {esc(str(model_dir))} ... scores that copy."
                )


def learn_field_crops(model_dir: Path, folders: list[Path]) -> None:
    """`calibrate --field-learnt`: the card's `field.learnt` (inference/fieldcrops.py)."""
    from leafdoc.core.errors import ModelError
    from leafdoc.inference.fieldcrops import fit_learnt
    from leafdoc.inference.predictor import Predictor
    from leafdoc.modelfolder import read_card, write_card

    card = read_card(model_dir)
    if card.field is None:
        raise ModelError(
            f"{model_dir}: it has no unlike-training check to tell field photos by.",
            hint="Pass --field DIR (field photos) with --field-learnt to fit both.",
        )
    # The threshold is set on the model's answers without the old one (a field photo of a learnt crop is then decided
    # by the lab rules alone); the card on disk keeps the old one until the new one is known.
    predictor = Predictor(model_dir, max_pixels=load_settings().max_image_pixels)
    predictor.card.field = {k: v for k, v in card.field.items() if k != "learnt"}
    learnt = fit_learnt(predictor, folders)
    card.field = {**predictor.card.field, "learnt": learnt}
    write_card(model_dir, card)
    out.print(
        f"[bold green]{esc(str(model_dir))}[/]: field photos of {', '.join(learnt['crops'])} answered at "
        f"{learnt['min_confidence']:.3f} or more: {learnt['val_answered']:.1%} of {learnt['n_val']} validation field "
        f"photos answered, {learnt['val_right_when_answered'] or 0:.1%} of those right"
    )
