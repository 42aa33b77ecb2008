"""The Gradio page: Diagnose, Dataset and Retrain tabs, every action an HTTP call through LeafdocClient.

Handlers never raise at the user: an `ApiError` (server down, wrong token, bad photo) becomes a readable
message in the page and a toast; anything unexpected is logged here and shown as one plain sentence.

Files: a visitor sends Gradio a file *description* (a path), not the file, so every path an event brings
is hostile. The page opens only what a visitor uploaded through it (see `PageFiles`); Gradio's own checks
are configured in `build_app` (see also `ui/mount.py`: the page's own folder).
"""

from __future__ import annotations

import base64
import io
import logging
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from fastapi import FastAPI
from PIL import Image
from starlette.routing import Mount

from leafdoc import guide
from leafdoc.client import ApiError, LeafdocClient
from leafdoc.settings import Settings
from leafdoc.ui import advice, text
from leafdoc.ui.where import api_base, use_page_folder

log = logging.getLogger(__name__)

PLOTS = ("class_distribution", "sizes", "colour", "sharpness", "samples")
PLOT_TITLES = {
    "class_distribution": "Photos per class",
    "sizes": "Image sizes",
    "colour": "Colour and brightness per class",
    "sharpness": "Sharpness",
    "samples": "Sample photos per class",
}
EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "examples"  # the repository's examples/ (src layout)
EXAMPLES = tuple(sorted(EXAMPLES_DIR.glob("*.jpg"))) if EXAMPLES_DIR.is_dir() else ()
GUIDE_PHOTOS = tuple(e.path for e in guide.pictured())  # the photo guide's pictures (examples/guide/)
JOB_POLL_SECONDS = 3.0

CSS = """
#leafdoc-header { display: flex; align-items: center; gap: 0.8em; }
#leafdoc-header h1 { margin: 0; font-size: 2em; }
#leafdoc-header p { margin: 0.1em 0 0 0; font-size: 1.05em; }
.block.verdict { border-radius: 10px; padding: 0.2em 1em 0.6em 1em !important; border: 2px solid transparent !important;
                 min-height: 8em; }
.verdict h3 { font-size: 1.6em !important; margin: 0.4em 0 0.2em 0 !important; }
.block.verdict-ok { background: #eef8ee; border-color: #4f9d4f !important; }
.block.verdict-sick { background: #fff6e5; border-color: #d9902b !important; }
.block.verdict-unsure, .block.verdict-error { background: #fdf1f1; border-color: #c94a4a !important; }
.block.verdict-empty { background: #f5f7f5; border-color: #d8ddd8 !important; color: #555; }
.block.status-error { background: #fdf1f1; border: 2px solid #c94a4a !important; border-radius: 8px;
                      padding: 0.3em 0.9em !important; }
.block.status-ok { background: #eef8ee; border: 2px solid #4f9d4f !important; border-radius: 8px;
                   padding: 0.3em 0.9em !important; }
.small-note { color: #666; font-size: 0.9em; }
.guide-entry { border-radius: 8px; padding: 0.4em !important; border-top: 4px solid transparent;
               justify-content: flex-start !important; }
.guide-good { background: #eef8ee; border-top-color: #4f9d4f; }
.guide-bad { background: #fdf1f1; border-top-color: #c94a4a; }
.guide-photo { flex: 0 0 150px !important; height: 150px !important; }
.guide-photo img { height: 150px !important; width: 100% !important; object-fit: contain !important; }
.guide-entry p { font-size: 0.9em; margin: 0.2em 0 !important; }
"""

HEADER = """
<div id="leafdoc-header">
  <svg width="52" height="52" viewBox="0 0 64 64" aria-hidden="true">
    <path d="M54 8C30 8 10 20 10 40c0 6 2 11 5 15 3-12 11-23 25-30-11 9-18 19-21 32 4 2 8 3 13 3 20 0 30-22 22-52z"
          fill="#3f8f3f"/>
  </svg>
  <div>
    <h1>leafdoc</h1>
    <p>Photograph a sick leaf and get a diagnosis in seconds, with a heat map of the spots that led to it.
       The model knows the diseases it was trained on; when it is not sure, it says so.</p>
  </div>
</div>
"""

EMPTY_VERDICT = (
    "### Your diagnosis appears here\n\nAdd a photo of one leaf on the left: upload it or take it with the camera."
)


def theme() -> gr.themes.Base:
    # System fonts only: the page must not wait for a font server (farms, offline machines).
    return gr.themes.Soft(
        primary_hue="green",
        secondary_hue="lime",
        neutral_hue="stone",
        font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
    )


def _client(settings: Settings, request: gr.Request | None, token: str | None = None) -> LeafdocClient:
    scope = getattr(getattr(request, "request", None), "scope", None) if request is not None else None
    return LeafdocClient(api_base(settings, scope), admin_token=(token or "").strip() or None)


def _png(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def _status(message: str, ok: bool) -> dict:
    return gr.update(value=message, elem_classes=["status-box", "status-ok" if ok else "status-error"])


def _problem(exc: Exception, what: str) -> tuple[str, str | None]:
    """(message, hint) for a failure, logged when it is not the server's own answer. An unexpected
    exception's own text is not shown: it can name a server path."""
    if isinstance(exc, (ApiError, NotSent)):
        return exc.message, exc.hint
    log.exception("web page: %s failed", what)
    return (
        f"{what} failed ({exc.__class__.__name__}).",
        "This is a bug in the web page; the server log has the details.",
    )


# ---- files a visitor sends ----------------------------------------------------------------------------


class NotSent(Exception):
    """An event named a file the page did not receive from a visitor (or no longer has)."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.message, self.hint = message, hint


def sent_name(value: dict | None) -> str:
    """The file's name as the visitor sent it: a base name, never a path (of theirs or of the server)."""
    value = value if isinstance(value, dict) else {}
    for raw in (value.get("orig_name"), value.get("path")):
        if isinstance(raw, str) and (name := raw.replace("\\", "/").rsplit("/", 1)[-1].strip()):
            return name if len(name) <= 120 else name[:117] + "..."
    return "The file"


@dataclass(frozen=True)
class PageFiles:
    """Which files the page may open: those a visitor uploaded through Gradio's upload route into the
    page's own folder, and the example photos. Gradio checks this too (`build_app`); this is the page's
    own check, so that no change in Gradio's can make a handler read a server file."""

    folder: Path  # the page's own folder (GRADIO_TEMP_DIR), resolved
    examples: frozenset[Path]  # resolved
    uploads: Callable[[], set[str]]  # the paths Gradio's upload route wrote (Blocks.upload_file_set)

    def open(self, value: dict | None) -> tuple[Path, str]:
        """(the file, its name as sent) for an event's file value; raises NotSent for anything else."""
        name = sent_name(value)
        raw = value.get("path") if isinstance(value, dict) else None
        if not isinstance(raw, str) or not raw:
            raise NotSent(f"{name} did not arrive.", "Upload it again.")
        given = Path(os.path.abspath(raw))
        real = given.resolve()  # follows every symlink: a link out of the folder ends outside it
        if given in self.examples and real in self.examples:
            return real, name
        uploaded = raw in self.uploads() or str(given) in self.uploads()
        if not (uploaded and given.is_relative_to(self.folder) and real.is_relative_to(self.folder)):
            log.warning("web page: refused a file that was not uploaded through the page: %s", raw)
            raise NotSent(f"{name} was not uploaded through this page.", "Upload it with the page's upload button.")
        if not real.is_file():
            raise NotSent(f"{name} is no longer on the server.", "Upload it again.")
        return real, name


def _fail(exc: Exception, what: str) -> dict:
    message, hint = _problem(exc, what)
    gr.Warning(message + (f" {hint}" if hint else ""))
    return _status(text.error_text(message, hint, title=f"{what} failed"), ok=False)


# ---- Diagnose ---------------------------------------------------------------------------------------


def _no_scores() -> dict:
    return gr.update(value=None, label="Most likely")


def _verdict_update(md: str, kind: str) -> dict:
    return gr.update(value=md, elem_classes=["verdict", f"verdict-{kind}"])


def diagnose_handler(settings: Settings, files: PageFiles) -> Callable:
    def diagnose(photo: dict | None, request: gr.Request):
        """`photo` is Gradio's file description (the event runs with preprocess=False): the page checks
        it and reads the file itself, and a photo that cannot be decoded gets the server's own answer."""
        if not photo:
            return _verdict_update(EMPTY_VERDICT, "empty"), _no_scores(), None
        try:
            path, name = files.open(photo)
            with _client(settings, request) as api:
                answer = api.explain(path.read_bytes(), name)
                entry = api.advice_for(answer)
        except Exception as exc:
            message, hint = _problem(exc, "Diagnosis")
            return (
                _verdict_update(text.error_text(message, hint, title="Could not diagnose this photo"), "error"),
                _no_scores(),
                None,
            )
        if answer.get("abstained"):
            kind = "unsure"
        else:
            kind = "ok" if "healthy" in (answer.get("label") or "").lower() else "sick"
        heat = _png(base64.b64decode(answer["overlay_png"])) if answer.get("overlay_png") else None
        guesses = "Its guesses (not a diagnosis)" if answer.get("abstained") else "Most likely"
        return (
            _verdict_update(text.verdict(answer) + advice.advice_markdown(answer, entry), kind),
            gr.update(value=text.top_k_scores(answer), label=guesses),
            heat,
        )

    return diagnose


def diagnose_tab(settings: Settings, files: PageFiles) -> None:
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            photo = gr.Image(
                sources=["upload", "webcam"],
                type="filepath",
                image_mode=None,  # keep the file as sent: the server decodes it (EXIF, modes) like in training
                label="Leaf photo",
                height=380,
                elem_id="leaf-photo",
            )
            button = gr.Button("Diagnose", variant="primary", elem_id="diagnose-button")
            if EXAMPLES:  # served as they are (static paths, see build_app), never copied
                gr.Examples(
                    [[str(p)] for p in EXAMPLES],
                    inputs=[photo],
                    label="No photo at hand? Try one of these",
                    example_labels=[p.stem.replace("_", " ") for p in EXAMPLES],
                )
            gr.Markdown(
                "**For a good answer:** one leaf, in daylight, filling most of the picture, in focus "
                "(examples below, in *How to take a photo leafdoc can read*). "
                "The photo is used for this diagnosis only.",
                elem_classes=["small-note"],
            )
        with gr.Column(scale=1):
            verdict = gr.Markdown(EMPTY_VERDICT, elem_id="verdict", elem_classes=["verdict", "verdict-empty"])
            scores = gr.Label(label="Most likely", num_top_classes=5, show_heading=False, elem_id="top-k")
            heat = gr.Image(
                label="Where the model looked (red: what drove the answer)",
                type="pil",
                format="png",
                interactive=False,
                height=320,
                elem_id="heat-map",
            )
    photo_guide()
    fn = diagnose_handler(settings, files)
    outputs = [verdict, scores, heat]
    photo.change(fn, [photo], outputs, concurrency_limit=4, show_progress="minimal", preprocess=False)
    button.click(fn, [photo], outputs, concurrency_limit=4, preprocess=False)


def photo_guide() -> None:
    """How to take a photo leafdoc can read: tips, then example photos with what leafdoc answers for each
    (the words are leafdoc/guide.py's, shared with the desktop app)."""
    with gr.Accordion(guide.TITLE, open=False, elem_id="photo-guide"):
        gr.Markdown("\n".join(f"- {tip}" for tip in guide.TIPS))
        shown = guide.pictured()
        with gr.Row(equal_height=True):
            for entry in shown:
                kind = "guide-good" if entry.good else "guide-bad"
                with gr.Column(min_width=170, elem_classes=["guide-entry", kind]):
                    gr.Image(  # served as it is (static paths, see build_app), never copied
                        str(entry.path),
                        show_label=False,
                        interactive=False,
                        container=False,
                        height=150,
                        buttons=[],
                        elem_classes=["guide-photo"],
                    )
                    gr.Markdown(f"**{text.esc(entry.caption)}**\n\n{text.esc(entry.photo)} {text.esc(entry.answer)}")
        for entry in guide.ENTRIES:
            if entry not in shown:
                gr.Markdown(f"**{text.esc(entry.caption)}**: {text.esc(entry.photo)} {text.esc(entry.answer)}")
        if shown:
            gr.Markdown(text.esc(guide.credits()), elem_classes=["small-note"])


# ---- Dataset ----------------------------------------------------------------------------------------


def dataset_tab(settings: Settings, blocks: gr.Blocks, tab: gr.Tab) -> None:
    gr.Markdown(
        "What the model learns from: pick a dataset and one of its versions (every upload makes a new one).",
        elem_classes=["small-note"],
    )
    with gr.Row():
        name = gr.Dropdown(label="Dataset", choices=[], interactive=True, elem_id="dataset-name", scale=2)
        version = gr.Dropdown(label="Version", choices=[], interactive=True, elem_id="dataset-version", scale=3)
        sample = gr.Dropdown(
            label="Photos measured per class",
            choices=[("all", 0), ("up to 20 (fast)", 20), ("up to 50", 50), ("up to 200", 200)],
            value=0,
            interactive=True,
            scale=2,
        )
        show = gr.Button("Show", variant="primary", scale=1, elem_id="dataset-show")
    summary = gr.Markdown(elem_id="dataset-summary")
    # One picture per row: they are wide matplotlib figures whose small print needs the full width.
    images = {
        kind: gr.Image(
            label=PLOT_TITLES[kind],
            show_label=False,
            type="pil",
            format="png",
            interactive=False,
            buttons=["download", "fullscreen"],
            elem_id=f"plot-{kind}",
        )
        for kind in PLOTS
    }

    def list_datasets(current: str | None, request: gr.Request):
        """The catalog's datasets: keep the one shown (at its latest version), else the serving model's."""
        try:
            with _client(settings, request) as api:
                datasets = api.datasets()
                models = api.models() if current is None else {}
        except Exception as exc:
            message, hint = _problem(exc, "Loading the datasets")
            return gr.update(choices=[]), gr.update(choices=[]), text.error_text(message, hint, "No datasets")
        names = [d["name"] for d in datasets]
        if not names:
            return gr.update(choices=[]), gr.update(choices=[]), "No dataset yet: ingest or upload photos first."
        serving = next((m for m in models.get("models", []) if m.get("serving")), {})
        first = next((n for n in (current, serving.get("dataset")) if n in names), names[0])
        versions = text.version_choices(next(d for d in datasets if d["name"] == first))
        return (
            gr.update(choices=names, value=first),
            gr.update(choices=versions, value=versions[0][1] if versions else None),
            gr.skip(),
        )

    def draw(
        dataset: str | None, number: int | None, per_class: int | None, request: gr.Request, progress=gr.Progress()
    ):
        empty = [None] * len(PLOTS)
        if not dataset:
            return ["Pick a dataset first.", *empty]
        per_class = int(per_class) or None
        number = int(number) if number else None
        try:
            with _client(settings, request) as api:
                progress(0.05, desc="Measuring the photos (the first time can take a while)…")
                stats = api.dataset_stats(dataset, number, per_class)
                progress(0.5, desc="Drawing the pictures…")
                with ThreadPoolExecutor(max_workers=3) as pool:
                    pngs = list(pool.map(lambda k: api.dataset_plot(dataset, k, stats["version"], per_class), PLOTS))
        except Exception as exc:
            message, hint = _problem(exc, "Drawing the dataset")
            return [text.error_text(message, hint, title="Could not show this dataset"), *empty]
        return [text.stats_summary(stats), *(_png(p) for p in pngs)]

    choose, inputs, outputs = [name, version, summary], [name, version, sample], [summary, *images.values()]
    draws = {"fn": draw, "inputs": inputs, "outputs": outputs, "concurrency_limit": 2, "concurrency_id": "draw"}
    blocks.load(list_datasets, [name], choose)
    # Drawn when asked (the tab opened, a dataset or version picked, Show), not on every page load:
    # measuring a big dataset the first time takes a while, and most visitors only diagnose.
    tab.select(list_datasets, [name], choose).then(**draws)
    name.input(list_datasets, [name], choose).then(**draws)
    for event in (version.input, sample.input, show.click):
        event(**draws)


# ---- Retrain ----------------------------------------------------------------------------------------


def retrain_tab(settings: Settings, blocks: gr.Blocks, files: PageFiles) -> None:
    gr.Markdown(
        "For the people who look after the model: add labelled photos, retrain, and choose which model version "
        "answers. Every action here needs the server's admin token (`LEAFDOC_ADMIN_TOKEN`).",
        elem_classes=["small-note"],
    )
    with gr.Row(equal_height=True):
        token = gr.Textbox(
            label="Admin token", type="password", placeholder="paste the admin token", scale=4, elem_id="admin-token"
        )
        check = gr.Button("Check token", scale=1, elem_id="check-token")
    status = gr.Markdown(elem_id="retrain-status", elem_classes=["status-box"])

    gr.Markdown("### 1 · Add labelled photos")
    with gr.Row():
        archive = gr.File(
            label="Zip of class folders (one folder per disease, named like the label)",
            file_types=[".zip"],
            height=170,
            scale=3,
            elem_id="upload-zip",
        )
        with gr.Column(scale=2):
            upload_dataset = gr.Textbox(
                label="Dataset", placeholder="default: the serving model's dataset", elem_id="upload-dataset"
            )
            retrain_after = gr.Checkbox(label="Retrain when the upload is in", value=False)
            upload_button = gr.Button("Upload", variant="primary", elem_id="upload-button")
    upload_result = gr.Markdown(elem_id="upload-result")

    gr.Markdown(
        "### 2 · Retrain on the latest photos\n"
        "Of the dataset named above; the new model starts from the serving one and replaces it only if it does at "
        "least as well on held-out photos (the server's promotion rule).",
        elem_classes=["section-head"],
    )
    with gr.Row(equal_height=True):
        epochs = gr.Textbox(label="Epochs", placeholder="as the serving model", scale=2, elem_id="train-epochs")
        train_button = gr.Button("Start retraining", variant="primary", scale=1, elem_id="train-button")
        refresh_job = gr.Button("Refresh", scale=1, elem_id="refresh-job")
        cancel_job = gr.Button("Cancel job", variant="stop", scale=1, interactive=False, elem_id="cancel-job")
    job = gr.Markdown("Enter the admin token to follow training jobs.", elem_id="job-status")
    followed = gr.State(None)  # the id of the job shown, which *Cancel job* cancels
    watched = gr.State(None)  # the id of a job this page saw queued or running: its end is announced once
    timer = gr.Timer(JOB_POLL_SECONDS, active=False)

    gr.Markdown("### 3 · Model versions")
    table = gr.Dataframe(
        headers=text.MODEL_COLUMNS,
        datatype=["str"] * len(text.MODEL_COLUMNS),
        interactive=False,
        wrap=True,
        column_widths=["8%", "11%", "13%", "17%", "12%", "9%", "8%", "22%"],
        max_height=360,
        elem_id="model-versions",
    )
    with gr.Row(equal_height=True):
        chosen = gr.Dropdown(label="Version", choices=[], interactive=True, scale=3, elem_id="promote-version")
        reason = gr.Textbox(label="Reason (kept in the history)", scale=3)
        promote = gr.Button("Promote", variant="primary", scale=1, elem_id="promote-button")
        rollback = gr.Button("Roll back", variant="stop", scale=1, elem_id="rollback-button")
        refresh_models = gr.Button("Refresh", scale=1, elem_id="refresh-models")

    def models_view(api: LeafdocClient) -> tuple[list[list[str]], dict]:
        models = api.models()
        options = text.version_options(models)
        return text.model_rows(models), gr.update(choices=options)

    def show_models(request: gr.Request):
        try:
            with _client(settings, request) as api:
                return models_view(api)
        except Exception as exc:
            _fail(exc, "Loading the model versions")
            return gr.skip(), gr.skip()

    def latest(api: LeafdocClient) -> dict | None:
        jobs = api.jobs(limit=1)
        return jobs[0] if jobs else None

    def follow(current: dict | None) -> tuple[str | None, dict]:
        """The followed job's id and the *Cancel job* button, enabled while it can be cancelled."""
        return (current or {}).get("id"), gr.update(interactive=text.job_can_cancel(current))

    def check_token(key: str, request: gr.Request):
        try:
            with _client(settings, request, key) as api:
                api.check_token()
                current = latest(api)
        except Exception as exc:
            return _fail(exc, "Checking the token"), *(gr.skip(),) * 5
        active = text.job_is_active(current)
        return (
            _status("✓ Token accepted.", ok=True),
            text.job_summary(current),
            gr.Timer(active=active),
            *follow(current),
            current["id"] if active else None,
        )

    def upload(sent: dict | None, key: str, dataset: str, retrain: bool, request: gr.Request, progress=gr.Progress()):
        """`sent` is Gradio's file description (preprocess=False): checked and opened by the page."""
        if not sent:
            return (
                _status(text.error_text("Pick a zip file first.", title="Nothing to upload"), ok=False),
                "",
                gr.skip(),
                gr.skip(),
            )
        try:
            path, name = files.open(sent)
        except NotSent as exc:
            return _fail(exc, "Upload"), "", gr.skip(), gr.skip()
        if not name.lower().endswith(".zip"):
            message = f"{name} is not a zip file."
            return _fail(NotSent(message, "Pick a .zip of class folders."), "Upload"), "", gr.skip(), gr.skip()
        size = path.stat().st_size

        def progressed(done: int, total: int) -> None:
            if done < total:
                progress(done / total, desc=f"Sending {done / 1e6:.1f} of {total / 1e6:.1f} MB")
            else:
                progress(0.99, desc="Sent; the server is checking every photo…")

        try:
            progress(0, desc=f"Sending {size / 1e6:.1f} MB")
            with _client(settings, request, key) as api:
                answer = api.upload(path, dataset=dataset.strip() or None, retrain=retrain, on_progress=progressed)
        except Exception as exc:
            return _fail(exc, "Upload"), "", gr.skip(), gr.skip()
        gr.Info(f"{answer['added']} photo(s) added to {answer['dataset']}.")
        queued = answer.get("training_job")  # then follow it; else leave the following of any other job alone
        follow_it = (gr.Timer(active=True), queued["id"]) if queued else (gr.skip(), gr.skip())
        return _status("✓ Upload done.", ok=True), text.upload_summary(answer), *follow_it

    def start(key: str, dataset: str, n_epochs: str, request: gr.Request):
        n_epochs = (n_epochs or "").strip()
        if n_epochs and not (n_epochs.isdigit() and int(n_epochs) > 0):
            message = f"Epochs must be a whole number above 0, not {n_epochs!r}."
            return (
                _status(
                    text.error_text(
                        message, "Leave it blank to train as long as the serving model did.", "Not started"
                    ),
                    ok=False,
                ),
                *(gr.skip(),) * 5,
            )
        options = {"epochs": int(n_epochs)} if n_epochs else {}
        try:
            with _client(settings, request, key) as api:
                started = api.start_training(dataset=dataset.strip() or None, options=options)
        except Exception as exc:
            return _fail(exc, "Starting the training"), *(gr.skip(),) * 5
        return (
            _status(f"✓ Training job {started['id'][:8]} started: follow it below.", ok=True),
            text.job_summary(started),
            gr.Timer(active=True),
            *follow(started),
            started["id"],
        )

    def poll(key: str, watched: str | None, request: gr.Request):
        """The latest job; models are re-read once it finishes (a new version may be serving). When the job
        this page saw queued or running has ended, the status box says how, once."""
        idle = (None, gr.update(interactive=False))
        if not (key or "").strip():
            message = "Enter the admin token to follow training jobs."
            return message, gr.Timer(active=False), gr.skip(), gr.skip(), *idle, gr.skip(), None
        try:
            with _client(settings, request, key) as api:
                current = latest(api)
                active = text.job_is_active(current)
                rows, options = (gr.skip(), gr.skip()) if active else models_view(api)
        except Exception as exc:
            message, hint = _problem(exc, "Following the training job")
            error = text.error_text(message, hint, "Cannot follow the job")
            return error, gr.Timer(active=False), *(gr.skip(),) * 6
        status, watching = gr.skip(), watched
        if active:
            watching = current["id"]
        elif current and current["id"] == watched:
            message, ok = text.job_outcome(current)
            (gr.Info if ok else gr.Warning)(message)
            status, watching = _status(message, ok=ok), None
        return text.job_summary(current), gr.Timer(active=active), rows, options, *follow(current), status, watching

    def cancel(key: str, job_id: str | None, request: gr.Request):
        """Cancel the job shown: a queued one ends at once, a running one once its worker has stopped it."""
        if not job_id:
            message = text.error_text("There is no job to cancel.", title="Nothing cancelled")
            return _status(message, ok=False), gr.skip(), gr.skip(), gr.update(interactive=False), gr.skip()
        try:
            with _client(settings, request, key) as api:
                current = api.cancel_job(job_id)
        except Exception as exc:
            return _fail(exc, "Cancelling the job"), *(gr.skip(),) * 4
        active = text.job_is_active(current)
        if not active:
            message = f"⊘ Training job {job_id[:8]} was cancelled: it never ran."
        else:
            message = f"✓ Cancelling training job {job_id[:8]}: its training is being stopped; nothing will be kept."
        return (
            _status(message, ok=True),
            text.job_summary(current),
            gr.Timer(active=active),
            gr.update(interactive=text.job_can_cancel(current)),
            job_id if active else None,  # a running job's end is announced once its worker has stopped it
        )

    def pointer(action: str) -> Callable:
        def act(key: str, version: int | None, why: str, request: gr.Request):
            try:
                with _client(settings, request, key) as api:
                    if action == "promote":
                        if version is None:
                            raise ApiError("Pick the version to promote first.")
                        done = api.promote(int(version), why.strip() or None)
                    else:
                        done = api.rollback(why.strip() or None)
                    rows, options = models_view(api)
            except Exception as exc:
                return _fail(exc, "Promotion" if action == "promote" else "Rollback"), gr.skip(), gr.skip()
            verb = "promoted" if action == "promote" else "rolled back"
            message = f"✓ {verb.capitalize()}: version {done['serving_version']} is now serving"
            if done.get("previous_version"):
                message += f" (was {done['previous_version']})"
            gr.Info(message.removeprefix("✓ ") + ".")
            return _status(message + ".", ok=True), rows, options

        return act

    blocks.load(show_models, None, [table, chosen])
    check.click(check_token, [token], [status, job, timer, followed, cancel_job, watched])
    token.submit(check_token, [token], [status, job, timer, followed, cancel_job, watched])
    upload_button.click(
        upload,
        [archive, token, upload_dataset, retrain_after],
        [status, upload_result, timer, watched],
        preprocess=False,
    )
    train_button.click(start, [token, upload_dataset, epochs], [status, job, timer, followed, cancel_job, watched])
    polled = [job, timer, table, chosen, followed, cancel_job, status, watched]
    refresh_job.click(poll, [token, watched], polled)
    timer.tick(poll, [token, watched], polled, show_progress="hidden")
    cancel_job.click(cancel, [token, followed], [status, job, timer, cancel_job, watched])
    promote.click(pointer("promote"), [token, chosen, reason], [status, table, chosen])
    rollback.click(pointer("rollback"), [token, chosen, reason], [status, table, chosen])
    refresh_models.click(show_models, None, [table, chosen])


# ---- the page ---------------------------------------------------------------------------------------


def build_page(settings: Settings, folder: Path) -> gr.Blocks:
    """The page; `folder` is its own folder for Gradio's uploads and cache (see `use_page_folder`)."""
    with gr.Blocks(
        title="leafdoc · plant disease diagnosis", analytics_enabled=False, delete_cache=(3600, 3600)
    ) as blocks:
        files = PageFiles(
            folder=folder.resolve(),
            examples=frozenset(p.resolve() for p in EXAMPLES),
            uploads=lambda: blocks.upload_file_set,
        )
        gr.HTML(HEADER)
        with gr.Tabs():
            with gr.Tab("Diagnose", id="diagnose"):
                diagnose_tab(settings, files)
            with gr.Tab("Dataset", id="dataset") as tab:
                dataset_tab(settings, blocks, tab)
            with gr.Tab("Retrain", id="retrain"):
                retrain_tab(settings, blocks, files)
        gr.Markdown(
            "leafdoc · [API documentation](../docs) · answers come from the leafdoc service; "
            "a diagnosis is advice, not a lab test.",
            elem_classes=["small-note"],
        )
    return blocks


def blocked_paths(settings: Settings, folder: Path) -> list[str]:
    """What Gradio must never copy or serve even if a later change allowed it: the data home's own files,
    the served model, and the system temp dir (when the page's folder is not inside it)."""
    paths = [settings.queue_path, settings.models_dir, settings.mlruns_dir, settings.model_dir]
    if settings.catalog_url.startswith("sqlite:///"):
        paths.append(Path(settings.catalog_url.removeprefix("sqlite:///")))
    if "://" not in settings.store_location:
        paths.append(Path(settings.store_location))
    temp = Path(tempfile.gettempdir()).resolve()
    if not folder.resolve().is_relative_to(temp):
        paths.append(temp)
    return [str(Path(p).resolve()) for p in paths if p is not None]


def build_app(settings: Settings, path: str = "/ui") -> tuple[FastAPI, gr.Blocks]:
    """The page as Gradio's own ASGI app, configured for `path`, and its Blocks (see ui/mount.py).

    What a visitor can make Gradio open or serve (a visitor sends paths, not files):
    - Gradio's uploads and cache go to the page's own folder, which nothing else writes to;
    - events take only files from that folder (Gradio's "uploaded by a user" check, which Gradio skips
      for a page that was mounted rather than launched: `has_launched` below), and handlers open only
      what the upload route wrote there or an example photo (`PageFiles`);
    - the `file=` route serves only that folder, the example photos and the photo guide's (exact files, not
      their folder);
    - errors Gradio raises reach the visitor as a bare "Error" (`show_error=False`): their text names
      server paths. The page's own handlers catch everything and say what went wrong themselves.
    """
    folder = use_page_folder(settings)
    # Served as they are and never copied: a copy would be deleted with the cache after an hour.
    gr.set_static_paths([*EXAMPLES, *GUIDE_PHOTOS])
    blocks = build_page(settings, folder)
    holder = FastAPI()  # gr.mount_gradio_app configures the page for `path`; ui/mount.py serves it there
    gr.mount_gradio_app(
        holder,
        blocks,
        path=path,
        theme=theme(),
        css=CSS,
        footer_links=[],
        run_history=False,
        show_error=False,
        max_file_size=settings.max_request_bytes,
        ssr_mode=False,
        mcp_server=False,
        allowed_paths=[str(p) for p in (*EXAMPLES, *GUIDE_PHOTOS)],
        blocked_paths=blocked_paths(settings, folder),
    )
    # Gradio checks that an event's files were uploaded by a visitor only once `launch()` has run; a mounted
    # page is never launched, so without this any path a visitor names is copied into the cache and served.
    blocks.has_launched = True
    [app] = [r.app for r in holder.routes if isinstance(r, Mount) and r.path == path]
    return app, blocks
