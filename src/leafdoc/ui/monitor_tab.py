"""The Monitor tab: answers per hour or day, the not-a-leaf score's distribution and the mix of diagnoses,
against the serving model's validation photos, with drift warnings in plain words (GET /v1/monitoring)."""

from __future__ import annotations

import gradio as gr

from leafdoc.core.settings import Settings
from leafdoc.ui import feedback_text, monitor_plots, text
from leafdoc.ui.common import api_client, png, problem


def monitor_tab(settings: Settings, tab: gr.Tab) -> None:
    gr.Markdown(
        "How the model is doing on the photos it gets, against its validation photos. A warning appears when the "
        "last 24 hours drift: abstentions doubling, or the scores or the mix of diagnoses moving beyond what "
        "chance gives at that many answers.",
        elem_classes=["small-note"],
    )
    with gr.Row(equal_height=True):
        period = gr.Radio([("per hour", "hour"), ("per day", "day")], value="hour", label="Figures", scale=3)
        refresh = gr.Button("Refresh", scale=1, elem_id="monitor-refresh")
    summary = gr.Markdown(elem_id="monitor-summary")
    pictures = [
        gr.Image(show_label=False, type="pil", format="png", interactive=False, elem_id=f"monitor-{kind}")
        for kind in ("activity", "scores", "labels")
    ]

    def draw(which: str, request: gr.Request):
        try:
            with api_client(settings, request) as api:
                report = api.monitoring(which)
        except Exception as exc:
            message, hint = problem(exc, "Loading the figures")
            return text.error_text(message, hint, "No figures"), None, None, None
        return (
            feedback_text.drift_summary(report),
            png(monitor_plots.activity(report)),
            png(monitor_plots.scores(report)),
            png(monitor_plots.labels(report)),
        )

    outputs = [summary, *pictures]
    tab.select(draw, [period], outputs)
    period.change(draw, [period], outputs)
    refresh.click(draw, [period], outputs)
