"""The Dataset tab: a dataset version's class balance, sizes, colour and sharpness, as pictures."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import gradio as gr

from leafdoc.core.settings import Settings
from leafdoc.ui import text
from leafdoc.ui.common import api_client, png, problem
from leafdoc.ui.language import page_language
from leafdoc.ui.phone import tab_where

PLOTS = ("class_distribution", "sizes", "colour", "sharpness", "samples")
PLOT_TITLES = {
    "class_distribution": "Photos per class",
    "sizes": "Image sizes",
    "colour": "Colour and brightness per class",
    "sharpness": "Sharpness",
    "samples": "Sample photos per class",
}
NO_DATASET = (
    "**No dataset yet.** Add labelled photos with *1 · Add labelled photos* in {retrain}, with the admin token: a zip "
    "with one folder per class, each folder named like its label (`Tomato___Early_blight/`) and holding that class's "
    "photos. Each upload makes a new version of the dataset, shown here."
)


def no_dataset(lang: str = "en") -> str:
    """What the tab says on a server with no dataset: where to add one (the Retrain tab, found on a phone too)."""
    return NO_DATASET.format(retrain=tab_where("tab_retrain", lang))


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
            alt_text=f"Chart: {PLOT_TITLES[kind].lower()}, of the dataset shown",
            type="pil",
            format="png",
            interactive=False,
            visible=False,  # until there is a picture: five empty frames said nothing
            buttons=["download", "fullscreen"],
            elem_id=f"plot-{kind}",
        )
        for kind in PLOTS
    }

    def list_datasets(current: str | None, request: gr.Request):
        """The catalog's datasets: keep the one shown (at its latest version), else the serving model's."""
        try:
            with api_client(settings, request) as api:
                datasets = api.datasets()
                models = api.models() if current is None else {}
        except Exception as exc:
            message, hint = problem(exc, "Loading the datasets")
            return gr.update(choices=[]), gr.update(choices=[]), text.error_text(message, hint, "No datasets")
        names = [d["name"] for d in datasets]
        if not names:
            return gr.update(choices=[]), gr.update(choices=[]), no_dataset(page_language(request))
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
        empty = [gr.update(value=None, visible=False)] * len(PLOTS)
        if not dataset:  # none to pick: what to do is said (list_datasets), or why the datasets did not come
            return [gr.skip(), *empty]
        per_class = int(per_class) or None
        number = int(number) if number else None
        try:
            with api_client(settings, request) as api:
                progress(0.05, desc="Measuring the photos (the first time can take a while)…")
                stats = api.dataset_stats(dataset, number, per_class)
                progress(0.5, desc="Drawing the pictures…")
                with ThreadPoolExecutor(max_workers=3) as pool:
                    pngs = list(pool.map(lambda k: api.dataset_plot(dataset, k, stats["version"], per_class), PLOTS))
        except Exception as exc:
            message, hint = problem(exc, "Drawing the dataset")
            return [text.error_text(message, hint, title="Could not show this dataset"), *empty]
        return [text.stats_summary(stats), *(gr.update(value=png(p), visible=True) for p in pngs)]

    choose, inputs, outputs = [name, version, summary], [name, version, sample], [summary, *images.values()]
    draws = {"fn": draw, "inputs": inputs, "outputs": outputs, "concurrency_limit": 2, "concurrency_id": "draw"}
    blocks.load(list_datasets, [name], choose)
    # Drawn when asked (the tab opened, a dataset or version picked, Show), not on every page load:
    # measuring a big dataset the first time takes a while, and most visitors only diagnose.
    tab.select(list_datasets, [name], choose).then(**draws)
    name.input(list_datasets, [name], choose).then(**draws)
    for event in (version.input, sample.input, show.click):
        event(**draws)
