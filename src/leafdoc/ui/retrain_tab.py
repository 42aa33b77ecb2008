"""The Retrain tab (admin token): upload labelled photos, retrain, follow the job, promote or roll back."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from leafdoc.advice.render import english_label
from leafdoc.api_client import ApiError, LeafdocClient
from leafdoc.core.settings import Settings
from leafdoc.ui import text
from leafdoc.ui.common import NotSent, PageFiles, admin_token_box, api_client, fail, problem, status_box
from leafdoc.words.job_phases import AUTO_EPOCHS, AUTO_EPOCHS_RULE, LEARN_FIELD_INFO, LEARN_FIELD_LABEL
from leafdoc.words.model_card import card_markdown
from leafdoc.words.serving_change import promotion_details, rollback_target

JOB_POLL_SECONDS = 3.0
ROLLBACK_TO = "Roll back to version {version}"
ROLLBACK_NONE = "Roll back (no earlier version served)"
CARD_HINT = (
    "Choose a version above (or click its row) to read the promotion rule's decision on it and its model card: "
    "what it learnt from, the classes it knows, its test figures and its limitations."
)


def retrain_tab(settings: Settings, blocks: gr.Blocks, files: PageFiles, tab: gr.Tab) -> gr.Textbox:
    """The tab; returns its admin token box (page.py keeps it in step with the other admin tabs')."""
    gr.Markdown(
        "For the people who look after the model: add labelled photos, retrain, and choose which model version "
        "answers. Every action here needs the server's admin token (`LEAFDOC_ADMIN_TOKEN`).",
        elem_classes=["small-note"],
    )
    with gr.Row(equal_height=True):
        token = admin_token_box("admin-token")
        check = gr.Button("Check token", scale=1, elem_id="check-token")
    status = gr.Markdown(elem_id="retrain-status", elem_classes=["status-box"])

    gr.Markdown("## 1 · Add labelled photos")
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
            upload_label = gr.Textbox(
                label=text.UPLOAD_LABEL,
                info="Only for a zip whose photos are all of one class, in any folders: each gets this label.",
                placeholder="empty: one folder per class",
                elem_id="upload-label",
            )
            retrain_after = gr.Checkbox(label="Retrain when the upload is in", value=False)
            learn_field = gr.Checkbox(
                label=LEARN_FIELD_LABEL, info=LEARN_FIELD_INFO, value=False, elem_id="learn-field"
            )
            upload_button = gr.Button("Upload", variant="primary", elem_id="upload-button")
    upload_result = gr.Markdown(elem_id="upload-result")

    gr.Markdown(
        "## 2 · Retrain on the latest photos\n"
        "Of the dataset named above; the new model starts from the serving one and replaces it only if it does at "
        "least as well on held-out photos (the server's promotion rule). Tick *The photos include field photos* "
        "above if the new model should learn to answer photos of leaves on the plant. Epochs left empty: "
        f"{AUTO_EPOCHS_RULE}.",
        elem_classes=["section-head"],
    )
    with gr.Row(equal_height=True):
        epochs = gr.Textbox(
            label="Head epochs",
            info="Training the head on the frozen backbone (from scratch: every epoch).",
            placeholder=AUTO_EPOCHS,
            scale=2,
            elem_id="train-epochs",
        )
        fine_tune = gr.Textbox(
            label="Fine-tuning epochs",
            info="Then the backbone, at a lower rate (0: none; pretrained models only).",
            placeholder=AUTO_EPOCHS,
            scale=2,
            elem_id="train-fine-tune-epochs",
        )
        train_button = gr.Button("Start retraining", variant="primary", scale=1, elem_id="train-button")
        refresh_job = gr.Button("Refresh", scale=1, elem_id="refresh-job")
        cancel_job = gr.Button("Cancel job", variant="stop", scale=1, interactive=False, elem_id="cancel-job")
    job = gr.Markdown("Enter the admin token to follow training jobs.", elem_id="job-status")
    followed = gr.State(None)  # the id of the job shown, which *Cancel job* cancels
    watched = gr.State(None)  # the id of a job this page saw queued or running: its end is announced once
    timer = gr.Timer(JOB_POLL_SECONDS, active=False)

    gr.Markdown("## 3 · Model versions")
    table = gr.Dataframe(
        headers=text.MODEL_COLUMNS,
        datatype=["str"] * len(text.MODEL_COLUMNS),
        interactive=False,
        wrap=True,
        column_widths=[f"{share}%" for share in text.MODEL_COLUMN_SHARES],
        max_height=360,
        elem_id="model-versions",
    )
    with gr.Row(equal_height=True):
        # wide enough for its choices whole (text.version_options): on a phone, a row of its own
        chosen = gr.Dropdown(
            label="Version (status, test accuracy)",
            choices=[],
            interactive=True,
            scale=3,
            min_width=300,
            elem_id="promote-version",
        )
        reason = gr.Textbox(label="Reason (kept in the history)", scale=3)
        promote = gr.Button("Promote", variant="primary", scale=1, elem_id="promote-button")
        # offered once the server's serving history has an earlier version to go back to (models_view)
        rollback = gr.Button(ROLLBACK_NONE, variant="stop", scale=1, interactive=False, elem_id="rollback-button")
        # the version the button names, sent with the rollback: refused if another admin changed the serving one
        rollback_to = gr.State(None)
        refresh_models = gr.Button("Refresh", scale=1, elem_id="refresh-models")
    # The chosen version's promotion decision whole (the table says it in a few words), then its model card
    # (words/model_card.py, as `leafdoc models show` and the desktop app say it):
    # what it learnt from, its classes, test figures and limitations, to read before promoting it.
    decision = gr.Markdown(elem_id="promotion-details")
    with gr.Accordion("Model card of the chosen version", open=True, elem_id="model-card-box"):
        card = gr.Markdown(CARD_HINT, elem_id="model-card")

    def models_view(api: LeafdocClient, current: int | None = 0) -> tuple[list[list[str]], dict, dict, int | None]:
        """The table's rows, the version menu's choices, the rollback button (naming the version it would serve,
        or not offered: the button gave an error when there was none) and that version: `versions`' four outputs.
        With nothing chosen yet (`current` None), the serving version is chosen, so that its card shows before anyone
        picks one."""
        models = api.models()
        options = text.version_options(models)
        back = rollback_target(models.get("history"))
        back_button = gr.update(
            value=ROLLBACK_TO.format(version=back) if back else ROLLBACK_NONE, interactive=bool(back)
        )
        if current is None:
            chosen = gr.update(choices=options, value=models.get("serving_version"))
        else:
            chosen = gr.update(choices=options)
        return text.model_rows(models), chosen, back_button, back

    def show_card(version: int | None, request: gr.Request):
        """The chosen version's promotion decision and model card."""
        if version is None:
            return "", CARD_HINT
        try:
            with api_client(settings, request) as api:
                m = api.model(int(version))
        except Exception as exc:
            message, hint = problem(exc, "Reading the model card")
            return "", text.error_text(message, hint, "Cannot show the model card")
        return promotion_details(m), card_markdown(m, name=english_label, face="app")  # no command line here

    def pick_row(rows, evt: gr.SelectData):
        """A click on a row of the table chooses its version (the first cell)."""
        try:
            row = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
            return int(rows.iloc[row, 0] if hasattr(rows, "iloc") else rows[row][0])
        except (TypeError, ValueError, IndexError, KeyError):
            return gr.skip()

    def show_models(current: int | None, request: gr.Request):
        try:
            with api_client(settings, request) as api:
                return models_view(api, current)
        except Exception as exc:
            fail(exc, "Loading the model versions")
            return (gr.skip(),) * len(versions)

    def latest(api: LeafdocClient) -> dict | None:
        jobs = api.jobs(limit=1)
        return jobs[0] if jobs else None

    def follow(current: dict | None) -> tuple[str | None, dict]:
        """The followed job's id and the *Cancel job* button, enabled while it can be cancelled."""
        return (current or {}).get("id"), gr.update(interactive=text.job_can_cancel(current))

    def check_token(key: str, request: gr.Request):
        try:
            with api_client(settings, request, key) as api:
                api.check_token()
                current = latest(api)
        except Exception as exc:
            return fail(exc, "Checking the token"), *(gr.skip(),) * 5
        active = text.job_is_active(current)
        return (
            status_box("✓ Token accepted.", ok=True),
            text.job_summary(current),
            gr.Timer(active=active),
            *follow(current),
            current["id"] if active else None,
        )

    def upload(
        sent: dict | None,
        key: str,
        dataset: str,
        label: str,
        retrain: bool,
        learns_field: bool,
        request: gr.Request,
        progress=gr.Progress(),
    ):
        """`sent` is Gradio's file description (preprocess=False): checked and opened by the page."""
        if not sent:
            return (
                status_box(text.error_text("Pick a zip file first.", title="Nothing to upload"), ok=False),
                "",
                gr.skip(),
                gr.skip(),
            )
        try:
            path, name = files.open(sent)
        except NotSent as exc:
            return fail(exc, "Upload"), "", gr.skip(), gr.skip()
        if not name.lower().endswith(".zip"):
            message = f"{name} is not a zip file."
            return fail(NotSent(message, "Pick a .zip of class folders."), "Upload"), "", gr.skip(), gr.skip()
        size = path.stat().st_size

        def progressed(done: int, total: int) -> None:
            if done < total:
                progress(done / total, desc=f"Sending {done / 1e6:.1f} of {total / 1e6:.1f} MB")
            else:
                progress(0.99, desc="Sent; the server is checking every photo…")

        try:
            progress(0, desc=f"Sending {size / 1e6:.1f} MB")
            with api_client(settings, request, key) as api:
                answer = api.upload(
                    path,
                    dataset=dataset.strip() or None,
                    label=(label or "").strip() or None,
                    retrain=retrain,
                    on_progress=progressed,
                    learn_field=learns_field,
                )
        except Exception as exc:
            return fail(exc, "Upload"), "", gr.skip(), gr.skip()
        gr.Info(f"{answer['added']} photo(s) added to {answer['dataset']}.")
        queued = answer.get("training_job")  # then follow it; else leave the following of any other job alone
        follow_it = (gr.Timer(active=True), queued["id"]) if queued else (gr.skip(), gr.skip())
        return status_box("✓ Upload done.", ok=True), text.upload_summary(answer), *follow_it

    def start(key: str, dataset: str, n_epochs: str, n_fine_tune: str, learns_field: bool, request: gr.Request):
        options: dict = {"field_dirs": []} if learns_field else {}
        boxes = (("epochs", "Head epochs", n_epochs, 1), ("fine_tune_epochs", "Fine-tuning epochs", n_fine_tune, 0))
        for field, what, value, least in boxes:
            value = (value or "").strip()
            if value and not (value.isdigit() and int(value) >= least):
                message = f"{what} must be a whole number of at least {least}, not {value!r}."
                hint = f"Leave it empty: {AUTO_EPOCHS_RULE}."
                return status_box(text.error_text(message, hint, "Not started"), ok=False), *(gr.skip(),) * 5
            if value:
                options[field] = int(value)
        try:
            with api_client(settings, request, key) as api:
                started = api.start_training(dataset=dataset.strip() or None, options=options)
        except Exception as exc:
            return fail(exc, "Starting the training"), *(gr.skip(),) * 5
        return (
            status_box(f"✓ Training job {started['id'][:8]} started: follow it below.", ok=True),
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
            return message, gr.Timer(active=False), *(gr.skip(),) * len(versions), *idle, gr.skip(), None
        try:
            with api_client(settings, request, key) as api:
                current = latest(api)
                active = text.job_is_active(current)
                rows, options, back, to = (gr.skip(),) * len(versions) if active else models_view(api)
        except Exception as exc:
            message, hint = problem(exc, "Following the training job")
            error = text.error_text(message, hint, "Cannot follow the job")
            return error, gr.Timer(active=False), *(gr.skip(),) * 8
        status, watching = gr.skip(), watched
        if active:
            watching = current["id"]
        elif current and current["id"] == watched:
            message, ok = text.job_outcome(current)
            (gr.Info if ok else gr.Warning)(message)
            status, watching = status_box(message, ok=ok), None
        summary = text.job_summary(current)
        return summary, gr.Timer(active=active), rows, options, back, to, *follow(current), status, watching

    def cancel(key: str, job_id: str | None, request: gr.Request):
        """Cancel the job shown: a queued one ends at once, a running one once its worker has stopped it."""
        if not job_id:
            message = text.error_text("There is no job to cancel.", title="Nothing cancelled")
            return status_box(message, ok=False), gr.skip(), gr.skip(), gr.update(interactive=False), gr.skip()
        try:
            with api_client(settings, request, key) as api:
                current = api.cancel_job(job_id)
        except Exception as exc:
            return fail(exc, "Cancelling the job"), *(gr.skip(),) * 4
        active = text.job_is_active(current)
        if not active:
            message = f"⊘ Training job {job_id[:8]} was cancelled: it never ran."
        else:
            message = f"✓ Cancelling training job {job_id[:8]}: its training is being stopped; nothing will be kept."
        return (
            status_box(message, ok=True),
            text.job_summary(current),
            gr.Timer(active=active),
            gr.update(interactive=text.job_can_cancel(current)),
            job_id if active else None,  # a running job's end is announced once its worker has stopped it
        )

    def pointer(action: str) -> Callable:
        def act(key: str, version: int | None, why: str, request: gr.Request):
            try:
                with api_client(settings, request, key) as api:
                    if action == "promote":
                        if version is None:
                            raise ApiError("Pick the version to promote first.")
                        done = api.promote(int(version), why.strip() or None)
                    else:
                        done = api.rollback(why.strip() or None, version)  # version: the one the button named
                    rows, options, back, to = models_view(api)
            except Exception as exc:
                return fail(exc, "Promotion" if action == "promote" else "Rollback"), *(gr.skip(),) * len(versions)
            verb = "promoted" if action == "promote" else "rolled back"
            message = f"✓ {verb.capitalize()}: version {done['serving_version']} is now serving"
            if done.get("previous_version"):
                message += f" (was {done['previous_version']})"
            gr.Info(message.removeprefix("✓ ") + ".")
            return status_box(message + ".", ok=True), rows, options, back, to

        return act

    versions = [table, chosen, rollback, rollback_to]
    blocks.load(show_models, [chosen], versions)
    check.click(check_token, [token], [status, job, timer, followed, cancel_job, watched])
    token.submit(check_token, [token], [status, job, timer, followed, cancel_job, watched])
    upload_button.click(
        upload,
        [archive, token, upload_dataset, upload_label, retrain_after, learn_field],
        [status, upload_result, timer, watched],
        preprocess=False,
    )
    train_button.click(
        start,
        [token, upload_dataset, epochs, fine_tune, learn_field],
        [status, job, timer, followed, cancel_job, watched],
    )
    polled = [job, timer, *versions, followed, cancel_job, status, watched]
    refresh_job.click(poll, [token, watched], polled)
    tab.select(poll, [token, watched], polled)  # the token may have been typed in another admin tab
    timer.tick(poll, [token, watched], polled, show_progress="hidden")
    cancel_job.click(cancel, [token, followed], [status, job, timer, cancel_job, watched])
    # The card is read again after each: the chosen version stays the same, so `chosen.change` does not fire, and the
    # card said "· not promoted" under a table that said it was serving.
    chosen_shown = [decision, card]
    promote.click(pointer("promote"), [token, chosen, reason], [status, *versions]).then(
        show_card, [chosen], chosen_shown
    )
    rollback.click(pointer("rollback"), [token, rollback_to, reason], [status, *versions]).then(
        show_card, [chosen], chosen_shown
    )
    refresh_models.click(show_models, [chosen], versions).then(show_card, [chosen], chosen_shown)
    table.select(pick_row, [table], [chosen])
    chosen.change(show_card, [chosen], chosen_shown)
    return token
