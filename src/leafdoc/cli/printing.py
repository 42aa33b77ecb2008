"""How `leafdoc`'s commands show their results to people (Rich); `--json` prints the same dicts for machines."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape as esc
from rich.measure import Measurement
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.segment import Segment
from rich.table import Column, Table
from rich.text import Text

from leafdoc.imaging.quality import SHORT_NAMES

UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 and C1 controls but tab and line feed


class TrimmedConsole(Console):
    """A Console whose wrapped lines end at their last character: text printed with `soft_wrap=False` (wrapped at the
    terminal's width, as the CLI's warnings and notes are) kept the space Rich breaks a line at, so every line but the
    last ended in a trailing space (a copied warning, a diff of the output, a test's comparison all carried them).

    And whose text never carries a terminal's control codes: a photo named `leaf\x1b[2J.jpg`, a label in someone
    else's model or a server's message could clear the screen or rewrite earlier lines (a fake diagnosis) through
    `leafdoc predict`. Each is shown as "?" (Rich's own codes, its styles and cursor moves, are not text)."""

    def render(self, renderable, options: ConsoleOptions | None = None):
        for segment in super().render(renderable, options):
            if segment.control is None and UNPRINTABLE.search(segment.text):
                segment = Segment(UNPRINTABLE.sub("?", segment.text), segment.style)
            yield segment

    def print(self, *objects, sep: str = " ", end: str = "\n", soft_wrap: bool | None = None, **kwargs) -> None:
        if soft_wrap is not False or not objects or not all(isinstance(o, str | Text) for o in objects):
            return super().print(*objects, sep=sep, end=end, soft_wrap=soft_wrap, **kwargs)
        render = {k: kwargs[k] for k in ("markup", "emoji", "highlight") if k in kwargs}
        text = Text(sep).join(self.render_str(o, **render) if isinstance(o, str) else o for o in objects)
        lines = text.wrap(self, self.width, justify=kwargs.get("justify"), overflow=kwargs.get("overflow"))
        for line in lines:
            line.rstrip()
        kept = {k: v for k, v in kwargs.items() if k not in render}
        super().print(Text("\n").join(lines), end=end, soft_wrap=True, **kept)


# people read stderr; stdout is for --json and results. log_path=False: `console.log` lines (a resumed run's) keep
# their time but not the source line that printed them (`printing.py:194` means nothing to a user).
console = TrimmedConsole(stderr=True, soft_wrap=True, log_path=False)
out = TrimmedConsole(soft_wrap=True)


class ClassName:
    """A class name in a table cell that wraps after an underscore or a space: Rich wraps at spaces only, so at
    80 columns `Corn_(maize)___Cercospora_leaf_spot` broke as `..._le` / `af_spot`. Printed as it is (no markup)."""

    def __init__(self, label: str):
        self.pieces = re.findall(r".+?(?:[_\s]+|$)", label) or [""]  # each piece ends where a line may break

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(max(len(p.rstrip()) for p in self.pieces), len("".join(self.pieces)))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = [""]
        for piece in self.pieces:
            if lines[-1] and len((lines[-1] + piece).rstrip()) > options.max_width:
                lines.append("")
            lines[-1] += piece
        yield Text("\n".join(line.rstrip() for line in lines), overflow="fold")  # a piece wider than all: folded


def wrap_words(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` columns, broken at spaces only: a word longer than a line (a long path) is
    a line of its own, whole, where Rich's wrapping (`soft_wrap=False`) folds it mid-word. Its own lines stay lines."""
    lines = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            if line and cell_len(line) + 1 + cell_len(word) > width:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
    return lines


def print_wrapped(console: Console, label: str, text: str, style: str, indent: str = "", text_style: str = "") -> None:
    """`label text` (the label in `style`, the text in `text_style`, neither read as markup) wrapped at the console's
    width, the terminal's or 80 columns when it is not one (`wrap_words`), every line after `indent`."""
    for i, line in enumerate(wrap_words(f"{label} {text}", console.width - cell_len(indent))):
        if i == 0:
            console.print(Text.assemble(indent, (label, style), (line[len(label) :], text_style)), soft_wrap=True)
        else:
            console.print(Text.assemble(indent, (line, text_style)), soft_wrap=True)


def print_ingest(s: dict, folder: Path | None = None) -> None:
    """`leafdoc ingest`'s summary; the rejected files as plain lines under their reason, named from `folder` (the
    one ingested) so that two files of one name in two class folders are told apart at any terminal width."""
    if s["created_version"]:
        images, classes = s["n_images"], s["n_classes"]
        out.print(
            f"[bold green]{esc(s['dataset'])} v{s['version']}[/]: {images} image{'s' if images != 1 else ''} "
            f"in {classes} class{'es' if classes != 1 else ''}"
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
        out.print("[bold]Rejected[/]" + (f" (in {esc(str(folder))})" if folder and folder.is_dir() else ""))
        by_reason: dict[str, list[str]] = {}
        for r in s["rejected"]:
            by_reason.setdefault(r["reason"], []).append(shown_path(r["file"], folder))
        for reason, files in by_reason.items():
            out.print(f"[red]{esc(reason)}[/]")
            for file in files:
                out.print(f"  {esc(file)}")
    print_poor_photos(s.get("poor_photos") or [], folder)
    print_small_classes(s.get("classes") or {}, s["dataset"])


def print_small_classes(classes: dict[str, int], dataset: str) -> None:
    """The classes of the version an ingest made (or found) with too few photos to train on: said at ingest, where
    the folder is at hand, not first by `leafdoc train` (which refuses them)."""
    from leafdoc.data.splits import MIN_PER_CLASS, SMALL_CLASS_HINT

    small = sorted((n, cls) for cls, n in classes.items() if n < MIN_PER_CLASS)
    if small:
        listing = ", ".join(f"{cls} has {n}" for n, cls in small)
        console.print(
            f"[yellow]warning:[/] {esc(dataset)}: {esc(listing)}; training needs at least {MIN_PER_CLASS} photos a "
            f"class (one each for training, validation and test). {esc(SMALL_CLASS_HINT)}",
            soft_wrap=False,
        )


def print_poor_photos(poor: list[dict], folder: Path | None = None) -> None:
    """The photos an ingest added that leafdoc would refuse to diagnose (imaging/quality.py), each with its problems
    (the first SKIPPED_SHOWN): `leafdoc train` took a black-and-white and a one-colour photo into training unsaid."""
    if not poor:
        return
    counts = Counter(code for item in poor for code in item["problems"])
    tally = ", ".join(f"{SHORT_NAMES.get(code, code)} {n}" for code, n in counts.items())
    many = len(poor) != 1
    console.print(
        f"[yellow]warning:[/] {len(poor)} photo{'s' if many else ''} added {'are' if many else 'is'} "
        f"{'ones' if many else 'one'} leafdoc would refuse to diagnose ({tally}): kept for training, but no grower's "
        "answer comes from such a photo. Look at them and remove those you do not mean to teach:",
        soft_wrap=False,
    )
    for item in poor[:SKIPPED_SHOWN]:
        problems = ", ".join(SHORT_NAMES.get(code, code) for code in item["problems"])
        console.print(f"  {esc(shown_path(item['file'], folder))} ({problems})", soft_wrap=False)
    if len(poor) > SKIPPED_SHOWN:
        console.print(f"  and {len(poor) - SKIPPED_SHOWN} more (all of them: `leafdoc ingest ... --json`)")


def shown_path(file: str, folder: Path | None) -> str:
    """`file` as named from `folder` when it is inside it (a folder ingested), else as it is."""
    if folder is None or not folder.is_dir():
        return file
    try:
        return Path(file).resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return file


class Count(ProgressColumn):
    """`done/total` and what is counted (the task's `unit` field: batches, photos); nothing while the total is
    unknown (Rich's own column shows `0/?`)."""

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text("")
        unit = task.fields.get("unit")
        return Text(f"{task.completed:.0f}/{task.total:.0f}" + (f" {unit}" if unit else ""), style="progress.download")


def training_bar(disable: bool) -> Progress:
    """A progress bar for training: description, bar, count, elapsed time, then the last epoch's figures
    (`bar_figures`). The bar takes the width the others leave: at 80 columns its fixed 40 squeezed the count into
    "123…" over two lines and the elapsed time into "0:0…"."""
    return Progress(
        TextColumn("{task.description}", table_column=Column(no_wrap=True)),
        BarColumn(bar_width=None, table_column=Column(ratio=1)),
        Count(table_column=Column(no_wrap=True)),
        TimeElapsedColumn(table_column=Column(no_wrap=True)),
        TextColumn("{task.fields[info]}", table_column=Column(no_wrap=True, overflow="ellipsis")),
        console=console,
        disable=disable,
        expand=True,
    )


WIDE_BAR = 120  # columns from which the training bar shows an epoch's four figures, not its validation accuracy alone


def bar_figures(e: dict, width: int) -> str:
    """An epoch's figures for the training bar's last column: all four on a terminal of WIDE_BAR columns or more, else
    the validation accuracy (the training accuracy without validation photos); every epoch's line has them all."""
    if width >= WIDE_BAR:
        return epoch_figures(e)
    key = "val_accuracy" if "val_accuracy" in e else "accuracy"
    return f"{'val acc' if key == 'val_accuracy' else 'acc'} {e[key]:.3f}" if key in e else ""


def epoch_info(e: dict) -> str:
    return " ".join(f"{k}={e[k]:.3f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in e)


def epoch_figures(e: dict) -> str:
    """An epoch's figures short enough for its line to fit 80 columns with the longest phase name
    (`fine_tune epoch 120: loss 0.123 acc 0.987, val loss 0.456 acc 0.912 (999s)`)."""
    names = (("loss", "loss"), ("accuracy", "acc"))
    train = " ".join(f"{name} {e[k]:.3f}" for k, name in names if k in e)
    val = " ".join(f"{name} {e['val_' + k]:.3f}" for k, name in names if "val_" + k in e)
    return ", ".join(part for part in (train, val and f"val {val}") if part)


SKIPPED_SHOWN = 10


def print_skipped(skipped: list[dict], where: str) -> None:
    """The files a command could not use, each with its reason (the first SKIPPED_SHOWN; `where` has them all): "6 files
    skipped (see stats.json)" named none of them."""
    out.print(f"[yellow]{len(skipped)} file{'s' if len(skipped) != 1 else ''} skipped[/]:")
    for item in skipped[:SKIPPED_SHOWN]:
        print_wrapped(out, f"{item['file']}:", item["reason"], "", indent="  ")
    if len(skipped) > SKIPPED_SHOWN:
        out.print(f"  and {len(skipped) - SKIPPED_SHOWN} more (all of them: {esc(where)})")


def print_evaluation(r: dict) -> None:
    from leafdoc.evaluate.report import (
        class_figures,
        coverage_text,
        headline_rows,
        images_evaluated,
        pct,
        refusal_advice,
        seen_warning,
    )

    table = Table("metric", "value", title=f"{r['model']} on {r['data']}")
    table.add_row("images", images_evaluated(r))
    for name, value in headline_rows(r):  # right if forced to answer every photo; right on the photos it answered
        table.add_row(name, value)
    table.add_row("top-3 accuracy", pct(r["top3_accuracy"]))
    table.add_row("macro F1", f"{r['macro_f1']:.3f}")
    table.add_row("ECE (calibration error)", f"{r['ece']:.3f}")
    sel = r.get("selective")
    if sel:
        reasons = ", ".join(f"{k} {v}" for k, v in sel["abstained_by_reason"].items()) or "none"
        table.add_row("answered (coverage)", f"{coverage_text(sel)}; {sel['abstained']} abstained: {reasons}")
        at = sel["accuracy_at"]
        table.add_row(
            "right on the 50/80% it is most sure of (ranked by confidence alone, its checks left out)",
            " / ".join(pct(at[k]) for k in ("50%", "80%")),
        )
        table.add_row("AURC (lower is better)", f"{sel['aurc']:.4f}")
    if r.get("ood"):
        o = r["ood"]
        why = ", ".join(f"{k} {v}" for k, v in o["by_reason"].items() if k != "answered") or "none"
        table.add_row(f"not-leaf photos refused ({o['n']})", f"{pct(o['abstained'])} ({why})")
    out.print(table)
    if sel and (advice := refusal_advice(sel)):
        print_wrapped(out, "what would help:", advice, "bold")
    if warning := seen_warning(r):
        print_wrapped(out, "warning:", warning, "yellow")
    per = Table("class", "precision", "recall", "F1", "support", title="Per class (classes in the data)")
    for label in r["classes"]:
        per.add_row(ClassName(label), *class_figures(r, label), str(r["per_class"][label]["support"]))
    out.print(per)
    if r["most_confused"]:
        conf = Table("true", "predicted as", "count", title="Most confused")
        for p in r["most_confused"][:5]:
            conf.add_row(ClassName(p["true"]), ClassName(p["predicted"]), str(p["count"]))
        out.print(conf)
    if r["skipped"]:
        print_skipped(r["skipped"], "--json")
    if r.get("report"):
        out.print(f"report: {Path(r['report']) / 'index.html'}")


def print_stats(s: dict, out_dir: Path) -> None:
    ratio = s["imbalance_ratio"]
    out.print(
        f"[bold]{s['source']}[/]: {s['n_images']} image{'s' if s['n_images'] != 1 else ''} in {s['n_classes']} "
        f"class{'es' if s['n_classes'] != 1 else ''}, "
        f"{s['n_measured']} measured; imbalance max/min {ratio:.2f}"
        if ratio
        else f"[bold]{s['source']}[/]: no images measured"
    )
    # The class name is the one column that may wrap (a long name at 80 columns); the figures keep their width.
    table = Table(
        "class", "images", "mean R,G,B", "brightness", "sharpness\n(median)", title="Per class", box=box.SIMPLE_HEAD
    )
    for column in table.columns[1:]:
        column.justify, column.no_wrap = "right", True
    for label, c in s["per_class"].items():
        rgb = ",".join(f"{v:.0f}" for v in c["mean_rgb"])
        table.add_row(
            ClassName(label),
            str(s["class_counts"][label]),
            rgb,
            f"{c['brightness']['mean']:.0f}",
            f"{c['sharpness']['p50']:.0f}",
        )
    out.print(table)
    if s["skipped"]:
        print_skipped(s["skipped"], str(out_dir / "stats.json"))
    out.print(f"wrote {out_dir}")


def print_experiment(r: dict) -> None:
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


def print_answers(answers: list[dict]) -> None:
    """`leafdoc predict`: each photo's diagnosis (or why leafdoc is not sure), its top labels, and the advice."""
    from leafdoc.words.labels import answer_name
    from leafdoc.words.percent import precise_percent
    from leafdoc.words.photo_guide import CROP_DOUBT

    for a in answers:
        if "error" in a:
            print_wrapped(out, f"{a['file']}:", a["error"], "bold", text_style="red")
            continue
        if a.get("crop_given"):  # the answer chose among this crop's labels only
            out.print(f"[dim]{esc(a['file'])}: among the conditions of {esc(a['crop_given'])} only[/]")
        if a["abstained"]:  # no figures: a grower reads a percentage as an answer (`--json` keeps them)
            out.print(f"[bold]{esc(a['file'])}[/]: [yellow]not sure ({a['reason']})[/]")
            if a["message"]:
                print_wrapped(out, "", a["message"], "", indent="  ")  # under its photo, as the advice
            continue
        # in the answer's words and language, as the page names it; the label itself (a folder's name) beside it
        # wrapped at the terminal's width like the advice (a long path and the names passed 80 columns)
        named = f"{answer_name(a, a['label'])} ({a['label']})"
        print_wrapped(out, f"{a['file']}:", named, "bold", text_style="green")
        for t in a["top_k"]:
            out.print(f"  {precise_percent(t['probability']):>7}  {esc(answer_name(a, t['label']))}")
        if a.get("caution"):
            out.print(f"  [bold red]⚠ {esc(a['caution']['message'])}[/]")
        if a.get("crop_share") is not None and a["crop_share"] < 0.5:
            out.print(f"  [yellow]{esc(CROP_DOUBT.format(crop=a['crop_given']))}[/]")
        print_advice(a["advice"])


def answers_summary(answers: list[dict], shown: int = 5) -> str:
    """`leafdoc predict`'s last line for several photos, what a scout reads first: "120 photos: 80 diagnosed (52
    Tomato — Early blight, 20 Tomato — healthy, 8 among 3 other diagnoses), 35 not sure (unsure 20, not_a_leaf 15),
    5 could not be read"."""
    from leafdoc.words.counts import counted
    from leafdoc.words.labels import answer_name

    unread = sum("error" in a for a in answers)
    refused = Counter(a["reason"] for a in answers if "error" not in a and a["abstained"])
    named = Counter(answer_name(a, a["label"]) for a in answers if "error" not in a and not a["abstained"])
    parts = []
    if named:
        most = [f"{n:,} {name}" for name, n in named.most_common(shown)]
        rest = sum(named.values()) - sum(n for _, n in named.most_common(shown))
        most += [f"{rest:,} among {counted(len(named) - shown, 'other diagnosis', 'other diagnoses')}"] if rest else []
        parts.append(f"{sum(named.values()):,} diagnosed ({', '.join(most)})")
    if refused:
        why = ", ".join(f"{reason} {n:,}" for reason, n in refused.most_common())
        parts.append(f"{sum(refused.values()):,} not sure ({why})")
    if unread:
        parts.append(f"{unread:,} could not be read")
    return f"{counted(len(answers), 'photo')}: {', '.join(parts)}."


def print_advice(advice: dict | None) -> None:
    """The summary under the diagnosis, and where the full entry is (an abstention has no advice)."""
    if advice is None:
        return
    if not advice["available"]:  # wrapped: a lab's label made it 91 columns
        print_wrapped(out, "", advice["message"], "", indent="  ", text_style="yellow")
        return
    print_wrapped(out, "What to do:", advice["summary"], "bold", indent="  ")
    sources = "; ".join(s["title"] for s in advice["sources"])
    full = f'leafdoc advice "{advice["label"]}" (or GET {advice["route"]})'
    print_wrapped(out, "Full advice:", full, "dim", indent="  ", text_style="dim")
    print_wrapped(out, "Sources:", sources, "dim", indent="  ", text_style="dim")


def print_advice_labels(knowledge) -> None:
    for e in sorted(knowledge.entries.values(), key=lambda e: e.label):
        out.print(f"{esc(e.label)}  [dim]{esc(e.title)}[/]")


def print_advice_entry(entry, data: dict) -> None:
    """`leafdoc advice LABEL`: the whole entry as Markdown."""
    from rich.markdown import Markdown

    from leafdoc.advice.render import details_markdown

    Console(soft_wrap=False).print(Markdown(f"# {entry.title}\n\n{entry.summary}\n\n" + details_markdown(data)))


EPOCH_LINES = 20  # a phase of more epochs than this logs about this many of them


def resume_words(running: str | None, saved: tuple[str, int] | None, head_on_features: bool) -> str:
    """What `leafdoc train ... --resume` keeps of a run stopped part-way (`running`: the phase it was in; `saved`:
    the phase and epoch of its last checkpoint). The head phase on cached features (the default) is saved only when
    it ends: its epochs take a second or so, and the network's features of the photos are computed again on resume
    anyway; every other phase (the head on the network, fine-tuning, from scratch) is saved after every epoch."""
    kept = "the photos ingested and their cached arrays are kept"
    if saved is None:
        if running == "head" and head_on_features:
            return (
                f"the head phase (on features computed once) is saved only when it ends, so `--resume` starts it "
                f"over, features and all; {kept}."
            )
        if running is None:
            return f"it stopped before its first epoch: `--resume` starts training from the first epoch; {kept}."
        return f"no epoch was saved yet: `--resume` starts training from the first epoch; {kept}."
    phase, epoch = saved
    if phase == "head" and head_on_features:
        return (
            f"the head phase was saved whole ({epoch} epochs): `--resume` keeps it and goes on from there (a "
            "fine-tuning epoch under way when stopped is trained again)."
        )
    return (
        f"`--resume` goes on from the checkpoint after {phase} epoch {epoch} (with the same options and photos); the "
        "epoch under way when stopped is trained again."
    )


class TrainingLog:
    """`leafdoc train`'s progress: the bar follows the batches of each epoch, then the test photos; epochs are logged
    with their figures: every one in a phase of up to EPOCH_LINES epochs, else the first, every n-th and the last
    (200 head epochs of a second each are 21 lines, not 200). `epochs`: each phase's number of epochs, if known.
    Call `flush()` once training ends or stops."""

    def __init__(self, bar: Progress, task, epochs: dict[str, int] | None = None):
        self.bar, self.task, self.epochs = bar, task, epochs or {}
        self.phase: str | None = None
        self.first, self.every = 0, 1  # the phase's first epoch (always logged), and how often the others are
        self.unlogged: str | None = None  # the latest epoch's line, if it was not logged: logged when the phase ends
        self.photos = 0  # the test photos being scored
        self.evaluating_since: float | None = None  # when they started to be (the bar's clock)
        self.running: str | None = None  # the phase under way
        self.saved: tuple[str, int] | None = None  # the phase and epoch of the last checkpoint written

    def __call__(self, e) -> None:
        from leafdoc.train import events

        match e:
            case events.Checkpointed(phase=phase, epoch=epoch):
                self.saved = (phase, epoch)
            case events.Batch(phase=phase, batch=batch, steps=steps):
                self.running = phase
                self.bar.update(self.task, completed=batch, total=steps, unit="batches", description=f"{phase} epoch")
            case events.Epoch(phase=phase, epoch=epoch, seconds=seconds):
                figures = epoch_figures(e.to_dict())
                info = bar_figures(e.to_dict(), self.bar.console.width)
                self.bar.update(self.task, info=info, description=f"{phase} epoch {epoch}")
                if phase != self.phase:
                    self.start(phase, epoch)
                self.unlogged = f"{phase} epoch {epoch}: {figures} ({seconds:.0f}s)"
                if epoch == self.first or epoch % self.every == 0:
                    self.flush()
            case events.Evaluating(n=n):
                self.flush()
                self.photos, self.evaluating_since = n, self.bar.get_time()
                # reset, not update: the bar's clock starts again, so it shows the evaluation's own time. Updated,
                # it went on counting from the first epoch, and "evaluating on the test split 27/27 photos 0:01:29"
                # read as 89 s for 27 photos when they took under a second (the training took the rest).
                self.bar.reset(self.task, description="evaluating on the test split", total=n, unit="photos", info="")
            case events.Calibrating():  # the test photos were scored: the checks are fitted now, a phase of its own
                scored = self.bar.get_time() - (self.evaluating_since or self.bar.get_time())
                self.bar.update(self.task, completed=self.photos)
                console.print(f"scored the {self.photos} test photos in {scored:.1f}s")
                # A task of its own: Rich keeps a task's total on reset (None is ignored), so the old task would read
                # "27/27" (or 0/27) beside the checks, and its unit wrapped the line at 80 columns. No count: the
                # checks have none to give, only their own clock.
                self.bar.update(self.task, visible=False)
                self.task = self.bar.add_task("fitting the checks (not a leaf, other leaves, ...)", total=None, info="")
            case events.Resumed(phase=phase, epoch=epoch):
                self.saved = (phase, epoch)
                console.log(f"continuing from the checkpoint after {phase} epoch {epoch}")
            case events.Restarted(reason=reason):
                console.log(f"[yellow]{reason}[/]: training from the first epoch (it is replaced after it)")

    def start(self, phase: str, epoch: int) -> None:
        self.flush()
        total = self.epochs.get(phase, 0)
        self.phase, self.first, self.every = phase, epoch, max(1, total // EPOCH_LINES)
        if self.every > 1:
            console.print(f"{total} {phase} epochs: a line every {self.every} (card.json has them all)")

    def flush(self) -> None:
        """Log the latest epoch if it was not (the last of its phase, or the one a stop ended on)."""
        if self.unlogged:
            console.print(self.unlogged)
            self.unlogged = None


def experiment_events(bar: Progress) -> Callable:
    """`leafdoc experiment`'s progress: one bar for the runs, one for the current step, epochs logged."""
    from leafdoc.experiments import stream as xe
    from leafdoc.train import events

    runs = bar.add_task("runs", total=None, info="")
    steps = bar.add_task("preparing", total=None, info="")

    def on_event(e: xe.ExperimentEvent) -> None:
        match e:
            case xe.RunStarted(run=run, index=index, total=total, note=note):
                bar.update(runs, description=f"run {run}", completed=index, total=total, info=note or "")
            case xe.Progress(what=what, done=done, total=total):
                bar.update(steps, description=what, completed=done, total=total)
            case xe.InRun(run=run, event=events.Batch(phase=phase, batch=batch, steps=n)):
                bar.update(steps, description=f"{run}: {phase} epoch", completed=batch, total=n)
            case xe.InRun(run=run, event=events.Epoch(phase=phase, epoch=epoch, seconds=seconds) as ep):
                info = epoch_info(ep.to_dict())
                bar.update(steps, info=info)
                console.log(f"{esc(run)} {phase} epoch {epoch}: {info} ({seconds:.0f}s)")
            case xe.InRun(run=run, event=events.Evaluating()):
                bar.update(steps, description=f"{run}: evaluating", info="")
            case xe.Message(text=text):
                console.log(esc(text))

    return on_event
