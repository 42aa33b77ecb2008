"""The Monitor tab: answers per hour or day, the not-a-leaf score's distribution and the mix of diagnoses,
against the serving model's validation photos, with drift warnings in plain words (GET /v1/monitoring). The figures
need the admin token (unless the server runs with LEAFDOC_MONITORING_OPEN=true): the tab has its token box, as every
admin tab does (one token for them all: common.share_admin_token), draws the figures as it opens, and says what to do
without one."""

from __future__ import annotations

import gradio as gr

from leafdoc.core.settings import Settings
from leafdoc.ui import feedback_text, monitor_plots, text
from leafdoc.ui.common import admin_token_box, api_client, png, problem

ENTER = "Paste the server's admin token in the box above and press **Show the figures**."


# What each chart shows, for a screen reader (alt text; the drift figures are in the summary above them, in words)
CHART_WORDS = {
    "activity": "Chart: answers per hour or day, every model version; the abstained ones at the foot of each bar and"
    " their share as a line.",
    "scores": "Chart: the not-a-leaf score of the photos served beside the validation photos', and the threshold past"
    " which a photo is refused as not a leaf.",
    "labels": "Chart: the mix of diagnoses served beside the validation photos'.",
}


def monitor_tab(settings: Settings, tab: gr.Tab) -> gr.Textbox:
    """The tab; returns its admin token box (page.py keeps it in step with the other admin tabs')."""
    gr.Markdown(
        "How the model is doing on the photos it gets, against its validation photos. A warning appears when the "
        "last 24 hours drift: abstentions doubling, or the scores or the mix of diagnoses moving beyond what "
        "chance gives at that many answers. Needs the admin token, unless the server shows these figures to "
        "everyone.",
        elem_classes=["small-note"],
    )
    with gr.Row(equal_height=True):
        token = admin_token_box("monitor-token", scale=3)
        period = gr.Radio([("per hour", "hour"), ("per day", "day")], value="hour", label="Figures", scale=2)
        refresh = gr.Button("Show the figures", variant="primary", scale=1, elem_id="monitor-refresh")
    summary = gr.Markdown(elem_id="monitor-summary")
    pictures = [
        gr.Image(
            show_label=False,
            type="pil",
            format="png",
            interactive=False,
            visible=False,
            buttons=["download", "fullscreen"],  # a business's figures: no "share" to Hugging Face
            alt_text=words,  # the figures themselves are in the summary above, in words
            elem_id=f"monitor-{kind}",
        )
        for kind, words in CHART_WORDS.items()
    ]

    def draw(key: str, which: str, request: gr.Request):
        try:
            with api_client(settings, request, key) as api:
                report = api.monitoring(which)
        except Exception as exc:
            refused = feedback_text.monitoring_refused(exc, ENTER, sent_token=bool((key or "").strip()))
            if not refused:
                message, hint = problem(exc, "Loading the figures")
            said = refused or text.error_text(message, hint, "No figures")
            return said, *[gr.update(value=None, visible=False)] * len(pictures)
        drawn = (monitor_plots.activity(report), monitor_plots.scores(report), monitor_plots.labels(report))
        return feedback_text.drift_summary(report), *[gr.update(value=png(d), visible=True) for d in drawn]

    outputs = [summary, *pictures]
    tab.select(draw, [token, period], outputs)
    period.change(draw, [token, period], outputs)
    refresh.click(draw, [token, period], outputs)
    token.submit(draw, [token, period], outputs)
    return token
