"""The Review tab (admin token): answers users said were wrong, then abstentions and other feedback, the most
informative first; the admin looks at a kept photo, sets its label, and it joins a new dataset version
(through the same path as an upload), ready for retraining in the Retrain tab. The queue loads as the tab opens when
the admin token is in (typed here or in another admin tab: common.share_admin_token)."""

from __future__ import annotations

import gradio as gr

from leafdoc.core.settings import Settings
from leafdoc.ui import feedback_text, text
from leafdoc.ui.common import admin_token_box, api_client, fail, png, problem, status_box
from leafdoc.ui.language import page_language
from leafdoc.ui.phone import tab_where

QUEUE_LIMIT = 50
ENTER = (
    "The review queue needs the server's admin token: paste it in the box above and press **Load the queue**. "
    "No token? Ask whoever runs this server."
)


def review_tab(settings: Settings, tab: gr.Tab) -> gr.Textbox:
    """The tab; returns its admin token box (page.py keeps it in step with the other admin tabs')."""
    gr.Markdown(
        "Answers to check: those a user said were wrong first, then abstentions and other feedback, the least sure "
        "first. Label a photo and it joins a new version of the dataset; nothing a user says enters training "
        "without an admin's label. Needs the admin token; only an answer whose photo the server kept can join a "
        "dataset.",
        elem_classes=["small-note"],
        elem_id="review-intro",
    )
    with gr.Row(equal_height=True):
        token = admin_token_box("review-token")
        load = gr.Button("Load the queue", variant="primary", scale=1, elem_id="review-load")
    status = gr.Markdown(elem_id="review-status", elem_classes=["status-box"])
    table = gr.Dataframe(
        headers=feedback_text.REVIEW_COLUMNS,
        datatype=["str"] * len(feedback_text.REVIEW_COLUMNS),
        interactive=False,
        wrap=True,
        max_height=300,
        elem_id="review-queue",
    )
    items = gr.State([])
    keeping = gr.State(False)  # whether the server keeps the photos it diagnoses (the queue's `keep_photos`)
    with gr.Row(equal_height=False):
        photo = gr.Image(  # a grower's kept photo: never a "share" button (to Hugging Face Spaces Discussions)
            label="Photo",
            type="pil",
            interactive=False,
            height=260,
            scale=1,
            buttons=["download", "fullscreen"],
            elem_id="review-photo",
        )
        with gr.Column(scale=2):
            chosen = gr.Dropdown(label="Answer to review", choices=[], interactive=True, elem_id="review-chosen")
            label = gr.Dropdown(
                label="What it shows (a class of the model, or a new one)",
                choices=[],
                allow_custom_value=True,
                interactive=True,
                elem_id="review-label",
            )
            dataset = gr.Textbox(label="Dataset", placeholder="default: the serving model's", elem_id="review-dataset")
            with gr.Row():
                add = gr.Button(
                    "Add to the dataset", variant="primary", scale=2, interactive=False, elem_id="review-add"
                )
                dismiss = gr.Button("Nothing to learn: dismiss", scale=1, elem_id="review-dismiss")
            add_note = gr.Markdown(elem_id="review-add-note", elem_classes=["small-note"])

    def can_add(item: dict | None, keep_photos: bool) -> tuple[dict, str]:
        """*Add to the dataset*, enabled only for an answer with a kept photo, and why not under it."""
        why = feedback_text.cannot_add(item, keep_photos)
        return gr.update(interactive=why is None), why or ""

    def refresh(key: str, request: gr.Request):
        if not (key or "").strip():  # said as a note, not an error: the tab has just been opened
            return gr.update(value=ENTER, elem_classes=["status-box"]), *(gr.skip(),) * 7
        try:
            with api_client(settings, request, key) as api:
                queue = api.review(limit=QUEUE_LIMIT)
                models = api.models()
        except Exception as exc:
            return fail(exc, "Loading the review queue"), *(gr.skip(),) * 7
        found = queue["items"]
        serving = next((m for m in models.get("models", []) if m.get("serving")), {})
        labels = [(text.pretty_label(x), x) for x in serving.get("labels", [])]
        choices = [(feedback_text.review_choice(i), i["prediction_id"]) for i in found]
        shown = f"the first {len(found)}" if len(found) >= QUEUE_LIMIT else str(len(found))
        return (
            status_box(f"✓ {shown} answer(s) to review.", ok=True),
            feedback_text.review_rows(found),
            found,
            gr.update(choices=choices, value=choices[0][1] if choices else None),
            gr.update(choices=labels),
            queue["keep_photos"],
            *can_add(found[0] if found else None, queue["keep_photos"]),
        )

    def show(key: str, pid: str | None, found: list[dict], keep_photos: bool, request: gr.Request):
        item = next((i for i in found if i["prediction_id"] == pid), None)
        if item is None:
            return None, gr.skip(), *can_add(None, keep_photos)
        # What a user said, never the model's own guess: one click must not file a rose under a disease.
        guess = item["feedback_label"] or (item["label"] if item["feedback_correct"] else None)
        if not item["has_photo"]:
            return None, gr.update(value=guess), *can_add(item, keep_photos)
        try:
            with api_client(settings, request, key) as api:
                return png(api.review_photo(pid)), gr.update(value=guess), *can_add(item, keep_photos)
        except Exception as exc:
            problem(exc, "Loading the photo")
            return None, gr.update(value=guess), *can_add(item, keep_photos)

    def label_it(key: str, pid: str | None, value: str | None, name: str, request: gr.Request):
        if not pid or not (value or "").strip():
            message = text.error_text("Pick an answer and the label first.", title="Nothing labelled")
            return status_box(message, ok=False), *(gr.skip(),) * 7
        try:
            with api_client(settings, request, key) as api:
                done = api.review_label(pid, value.strip(), name.strip() or None)
        except Exception as exc:
            return fail(exc, "Labelling the photo"), *(gr.skip(),) * 7
        gr.Info("Added to the dataset.")
        refreshed = refresh(key, request)
        where = tab_where("tab_retrain", page_language(request))
        return status_box(feedback_text.reviewed(done, where), ok=True), *refreshed[1:]

    def dismiss_it(key: str, pid: str | None, request: gr.Request):
        if not pid:
            message = text.error_text("Pick an answer first.", title="Nothing dismissed")
            return status_box(message, ok=False), *(gr.skip(),) * 7
        try:
            with api_client(settings, request, key) as api:
                api.review_dismiss(pid)
        except Exception as exc:
            return fail(exc, "Dismissing the answer"), *(gr.skip(),) * 7
        refreshed = refresh(key, request)
        return status_box(f"✓ Dismissed {pid[:10]}: it enters no dataset.", ok=True), *refreshed[1:]

    listed = [status, table, items, chosen, label, keeping, add, add_note]
    load.click(refresh, [token], listed)
    tab.select(refresh, [token], listed)
    token.submit(refresh, [token], listed)
    chosen.change(show, [token, chosen, items, keeping], [photo, label, add, add_note])
    add.click(label_it, [token, chosen, label, dataset], listed)
    dismiss.click(dismiss_it, [token, chosen], listed)
    return token
