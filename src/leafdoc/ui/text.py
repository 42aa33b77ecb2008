"""What the web page says: API answers turned into short Markdown and table rows for people.

Pure functions of the JSON the API sends (no Gradio here), so the words can be tested without a browser.
Anything that came from outside (labels, file names, server messages) is escaped before it goes into
Markdown.
"""

from __future__ import annotations

import re
from typing import Any

from leafdoc.advice.lookalikes import TELL_APART
from leafdoc.core.i18n import N_, UNREVIEWED_NOTE, gettext
from leafdoc.imaging.quality import SHORT_NAMES
from leafdoc.words.job_phases import (
    field_check_words,
    other_leaves_words,
    phase_words,
    serving_copy_words,
    split_words,
    version_status_words,
)
from leafdoc.words.labels import answer_name, is_healthy, pretty_label
from leafdoc.words.model_card import md_escape
from leafdoc.words.percent import measured_share, percent_words
from leafdoc.words.photo_guide import answer_notes
from leafdoc.words.refusals import refusal_headline
from leafdoc.words.serving_change import promotion_verdict

# The promotion rule's verdict comes third: on a phone it is on the screen before the table is scrolled sideways.
MODEL_COLUMNS = ["version", "status", "promotion", "test accuracy", "macro F1", "dataset", "source", "created"]
MODEL_COLUMN_SHARES = (7, 10, 24, 10, 9, 13, 14, 13)  # each column's % of the table's width (ui/phone.py: a phone's)


def esc(value: Any) -> str:
    """Text safe inside Markdown: HTML escaped and Markdown's emphasis/link characters neutralised (the words' one
    rule, words/model_card.md_escape, which the desktop app's Markdown uses too)."""
    return md_escape(str(value))


def esc_file(value: Any) -> str:
    """A file name from an upload, safe inside Markdown and never a link: the page's Markdown makes `www.x.com` and
    `a@b.org` links by themselves, and a zip's file names are anyone's (security round 8)."""
    return re.sub(r"([.:@])", r"\\\1", esc(value))


def percent(p: float | None, lang: str = "en") -> str:
    """A probability as the page shows it: ">99%" below 1, "<1%" above 0 (words/percent.py, the one rule)."""
    return percent_words(p, lang)


def top_k_scores(answer: dict) -> dict[str, float]:
    """{readable label · its percentage: probability} for gr.Label, most likely first. The percentage is ours
    (`percent`), in the label: Gradio's own figure beside the bar rounds (0.999 read "100%"), and the page's CSS
    hides it (ui/page.py)."""
    lang = answer.get("language") or "en"
    out: dict[str, float] = {}
    names: set[str] = set()
    for item in answer.get("top_k") or []:
        name = item.get("name") or pretty_label(item["label"])
        if name in names:  # two raw labels that read the same: keep both apart
            name = f"{name} ({item['label']})"
        names.add(name)
        out[f"{name} · {percent(item['probability'], lang)}"] = float(item["probability"])
    return out


NOT_SURE_ENOUGH = N_("The model is not sure enough to give a diagnosis.")
MODEL_VERSION = N_("model version {version}")
SURE_HEALTHY = N_("{percent} sure · no disease found")
SURE_SICK = N_("{percent} sure · disease found")
LABEL = N_("label: {label}")  # the model's label, in the advice's details (ui/advice.py)


def unreviewed_line(answer: dict, field: str) -> list[str]:
    """The mark on words that hold advice translated and not yet reviewed (the API's `unreviewed`)."""
    if field not in (answer.get("unreviewed") or []):
        return []
    note = answer.get("unreviewed_note") or gettext(answer.get("language") or "en", UNREVIEWED_NOTE)
    return [f'<small class="unreviewed">⚠ {esc(note)}</small>']


def verdict(answer: dict) -> str:
    """The headline of a diagnosis, or a plain "not sure" with the server's message when it abstained, in the
    answer's language (its `language`).

    The server's message says what went wrong and what to do, for every reason code (poor_photo, not_a_leaf,
    unlike_training, unknown_leaf, unsure, and any added later), so it is shown as it is rather than replaced by
    words of our own.
    """
    lang = answer.get("language") or "en"
    version = answer.get("model_version")
    footer = gettext(lang, MODEL_VERSION).format(version=version) if version is not None else ""
    framed = [f"<small>{esc(note)}</small>" for note in answer_notes(answer, lang)]
    if answer.get("abstained"):
        # No confidence figure anywhere in a refusal: a grower reads a percentage as an answer. The server's message
        # names the candidates and how to tell them apart (advice/lookalikes.py).
        lines = ["## " + refusal_headline(answer.get("reason"), lang)]
        message = answer.get("message") or gettext(lang, NOT_SURE_ENOUGH)
        to_tell = gettext(lang, TELL_APART).split("{a}")[0].strip()  # "To tell": one bullet for each pair
        said, *tells = message.split(f" {to_tell} ")
        lines.append(f"**{esc(said)}**")
        if tells:
            lines.append("\n".join(f"- {esc(to_tell)} {esc(t)}" for t in tells))
        lines += unreviewed_line(answer, "message")
        # The reason's code (`not_a_leaf`) is not for a grower: the headline and the message say it in words.
        if footer:
            lines.append(f"<small>{footer}</small>")
        return "\n\n".join(lines + framed)
    label = answer.get("label") or ""
    name = answer_name(answer, label)
    healthy = is_healthy(label)
    sure = gettext(lang, SURE_HEALTHY if healthy else SURE_SICK).format(percent=percent(answer.get("confidence"), lang))
    # The model's label (Corn_(maize)___Common_rust_) is not for a grower: it is at the end of the advice's details
    # (ui/advice.py), for whoever reports an answer or looks it up (`leafdoc advice LABEL`).
    lines = [f"## {esc(name)}", f"**{sure}**" + (f" · {footer}" if footer else "")]
    return "\n\n".join(lines + caution_lines(answer) + framed)


def caution_lines(answer: dict) -> list[str]:
    """The urgent look-alike's warning (the API's `caution`), set apart above the advice."""
    caution = answer.get("caution")
    if not caution:
        return []
    name = caution.get("name") or pretty_label(caution["label"])
    lines = [f"> ⚠ **{esc(name)}?** {esc(caution['message'])}"]
    return lines + [f"> {line}" for line in unreviewed_line(answer, "caution")]


def error_text(message: str, hint: str | None = None, title: str = "Something went wrong") -> str:
    lines = [f"## {esc(title)}", f"**{esc(message)}**"]
    if hint:
        lines.append(esc(hint))
    return "\n\n".join(lines)


# ---- datasets -----------------------------------------------------------------------------------


def version_choices(dataset: dict) -> list[tuple[str, int]]:
    """Dropdown choices, newest first: ("v3 — 4,500 images, 30 classes (latest)", 3)."""
    out = []
    for v in reversed(dataset.get("versions") or []):
        latest = " (latest)" if v["version"] == dataset.get("latest") else ""
        out.append((f"v{v['version']} — {v['n_images']:,} images, {v['n_classes']} classes{latest}", v["version"]))
    return out


def stats_summary(stats: dict) -> str:
    n, k = stats.get("n_images", 0), stats.get("n_classes", 0)
    ratio = stats.get("imbalance_ratio")
    head = f"**{esc(stats.get('dataset', ''))} v{stats.get('version', '?')}**: {n:,} images in {k} classes"
    lines = [head]
    counts = stats.get("class_counts") or {}
    if counts:
        small = min(counts, key=counts.get)
        big = max(counts, key=counts.get)
        imbalance = f"{ratio:.2f}" if ratio is not None else "–"
        if counts[small] == counts[big]:
            detail = f"balanced: every class has {counts[big]:,} images"
        else:
            detail = (
                f"largest {esc(pretty_label(big))} ({counts[big]:,}), "
                f"smallest {esc(pretty_label(small))} ({counts[small]:,})"
            )
        lines.append(f"Imbalance (largest / smallest class): **{imbalance}** — {detail}")
    width = (stats.get("size") or {}).get("width") or {}
    height = (stats.get("size") or {}).get("height") or {}
    if width.get("median") and height.get("median"):
        lines.append(f"Typical size: {width['median']:.0f} × {height['median']:.0f} px")
    measured, sample = stats.get("n_measured"), stats.get("sample_per_class")
    if sample:
        lines.append(f"Pictures measured on up to {sample} images per class ({measured:,} in all).")
    skipped = stats.get("skipped") or []
    if skipped:
        lines.append(f"{len(skipped)} unreadable file(s) left out.")
    return "  \n".join(lines)


# ---- models and jobs ----------------------------------------------------------------------------


def _metric(m: dict | None, key: str) -> str:
    return measured_share((m or {}).get("test"), key)


def model_rows(models: dict) -> list[list[str]]:
    """One row per model version, newest first (columns: MODEL_COLUMNS)."""
    rows = []
    for m in sorted(models.get("models") or [], key=lambda m: -m["version"]):
        status = "▶ serving" if m.get("serving") else version_status_words(m)
        ds = m.get("dataset")
        dataset = f"{ds} v{m['dataset_version']}" if ds and m.get("dataset_version") else (ds or "–")
        rows.append(
            [
                str(m["version"]),
                status,
                promotion_verdict(m),
                _metric(m.get("metrics"), "accuracy"),
                _metric(m.get("metrics"), "macro_f1"),
                dataset,
                re.sub(r"^job:(\w{8})\w+$", r"job \1", m.get("source") or ""),
                (m.get("created") or "")[:16].replace("T", " "),
            ]
        )
    return rows


def version_options(models: dict) -> list[tuple[str, int]]:
    """The version menu's choices, "v3 (candidate, 91.7% of 12)": short enough to show whole in the menu on a phone
    (its label says what the figure is)."""
    out = []
    for m in sorted(models.get("models") or [], key=lambda m: -m["version"]):
        accuracy = _metric(m.get("metrics"), "accuracy")
        out.append((f"v{m['version']} ({version_status_words(m)}, {accuracy})", m["version"]))
    return out


METRIC_NAMES = {
    "loss": "loss",
    "accuracy": "accuracy",
    "val_loss": "validation loss",
    "val_accuracy": "validation accuracy",
    "top3_accuracy": "top-3",
    "macro_f1": "macro F1",
    "ece": "calibration error",
}


def _metrics(values: dict) -> str:
    """`accuracy 81.0% · validation loss 0.512`: shares as percentages, the rest with three decimals."""
    shown = []
    for key, name in METRIC_NAMES.items():
        v = values.get(key)
        if isinstance(v, int | float):
            shown.append(f"{name} {v:.1%}" if "accuracy" in key else f"{name} {v:.3f}")
    return " · ".join(shown)


def job_summary(job: dict | None) -> str:
    if not job:
        return "No training job yet. Upload photos with *Retrain when the upload is in*, or press *Start retraining*."
    state = job.get("state", "?")
    icon = {"succeeded": "✓", "failed": "✗", "cancelled": "⊘"}.get(state, "…" if state in ("queued", "running") else "")
    shown = "cancelling" if state == "running" and job.get("cancel_requested") else state
    lines = [f"**Job {esc(job['id'][:8])}: {icon} {esc(shown)}** — dataset {esc(job.get('dataset', ''))}"]
    if job.get("dataset_version"):
        lines[0] += f" v{job['dataset_version']}"
    progress = job.get("progress") or {}
    phase = phase_words(progress.get("phase"))
    if phase and progress.get("batch") and progress.get("steps"):
        phase += f", batch {progress['batch']} / {progress['steps']}"
    if job.get("epochs"):
        lines.append(f"Epoch **{job.get('epoch', 0)} / {job['epochs']}**" + (f" · {esc(phase)}" if phase else ""))
    elif phase:
        lines.append(esc(phase))
    if split := split_words(progress):
        lines.append(esc(split))
    last = _metrics((job.get("metrics") or {}).get("last") or {})
    if last:
        lines.append("Last epoch: " + last)
    test = (job.get("metrics") or {}).get("test") or {}
    if _metrics(test):
        photos = f" ({test['n']} held-out photos)" if test.get("n") else ""
        lines.append(f"Test{photos}: {_metrics(test)}")
    if job.get("error"):
        lines.append(f"**Error:** {esc(job['error'])}")
    if job.get("candidate_version"):
        promo = job.get("promotion") or {}
        served = "now serving" if promo.get("promoted") else "not promoted"
        lines.append(f"New model **v{job['candidate_version']}**: {served}. {esc(promo.get('reason') or '')}")
        copy = serving_copy_words(promo)
        if copy:
            lines.append(esc(copy))
    if field := field_check_words(progress):
        lines.append(esc(field))
    if other := other_leaves_words(progress.get("other_leaves")):
        lines.append(esc(other))
    return "  \n".join(lines)


def job_outcome(job: dict) -> tuple[str, bool]:
    """One line for the status box when a followed job ends, and whether it went well."""
    name = f"Training job {esc(job['id'][:8])}"
    state = job.get("state")
    if state == "succeeded":
        promo = job.get("promotion") or {}
        version = job.get("candidate_version")
        if promo.get("promoted"):
            return f"✓ {name} finished: version {version} is now serving.", True
        why = f" ({esc(promo['reason'])})" if promo.get("reason") else ""
        return f"✓ {name} finished: version {version} was not promoted{why}.", True
    if state == "cancelled":
        return f"⊘ {name} was cancelled: nothing was kept.", True
    return f"✗ {name} failed: {esc(job.get('error') or 'no reason given')}", False


def job_is_active(job: dict | None) -> bool:
    return bool(job) and job.get("state") in ("queued", "running")


def job_can_cancel(job: dict | None) -> bool:
    """Queued or running, and no cancel asked yet."""
    return job_is_active(job) and not job.get("cancel_requested")


def _first_ten(items: list[str]) -> list[str]:
    """A list's first ten lines, then how many more there are."""
    return items[:10] + ([f"- … and {len(items) - 10} more"] if len(items) > 10 else [])


def upload_summary(up: dict) -> str:
    duplicates, near = up.get("duplicates") or [], up.get("near_duplicates") or []
    lines = [
        f"**Uploaded to {esc(up['dataset'])}"
        + (f" v{up['version']}" if up.get("version") else "")
        + f"**: {up['added']} new photo(s) added, {len(duplicates)} exact duplicate(s) skipped, "
        f"{len(up.get('rejected') or [])} file(s) rejected.",
        f"The dataset now holds {up.get('n_images', 0):,} images in {up.get('n_classes', 0)} classes.",
    ]
    # data/ingest.py names the first copy of a photo, or says "earlier version" when the dataset already had it
    lines += _first_ten(
        [
            f"- skipped {esc_file(d['file'])}: "
            + (
                "already in the dataset"
                if d.get("of", "earlier version") == "earlier version"
                else f"same as {esc_file(d['of'])}"
            )
            for d in duplicates
        ]
    )
    if near:
        lines.append(f"{len(near)} near-duplicate(s) of photos already there (kept, grouped in splits):")
        lines += _first_ten(
            [f"- {esc_file(n['file'])}: like {esc_file(n.get('similar_to', 'another photo'))}" for n in near]
        )
    lines += _first_ten([f"- rejected {esc_file(r['file'])}: {esc(r['reason'])}" for r in up.get("rejected") or []])
    poor = up.get("poor_photos") or []
    if poor:
        lines.append(
            f"{len(poor)} photo(s) added that leafdoc would refuse to diagnose (kept for training; remove those you do "
            "not mean to teach):"
        )
        lines += _first_ten(
            [f"- {esc_file(p['file'])}: {esc(', '.join(SHORT_NAMES.get(c, c) for c in p['problems']))}" for p in poor]
        )
    if up.get("training_job"):
        lines.append(f"Retraining queued: job {esc(up['training_job']['id'][:8])}.")
    elif up.get("retrain"):
        lines.append(esc(up["retrain"]))
    return "  \n".join(lines)


# ---- the API's words in the page's -------------------------------------------------------------------

UPLOAD_LABEL = "Class of every photo"  # the Retrain tab's box for the API's `label` (ui/retrain_tab.py)
# (what the API says for a program to send, what the page says for it: which of its controls to use)
_API_HINTS = [
    (
        re.compile(r"upload the zip with label=(.+?), or to a dataset"),
        rf"type \1 in “{UPLOAD_LABEL}” and upload the zip again, or upload it to a dataset",
    ),
    (  # a rollback with nothing to roll back to (model_versions.rollback): the page's Promote, not a command
        re.compile(
            r"Promote a version instead: `leafdoc models promote VERSION`, or POST /v1/models/\{version\}/promote\."
        ),
        "To serve another version, pick it in “Version (status, test accuracy)” and press “Promote”.",
    ),
]


HINT_CHARS = 2_000  # the longest hint in_page_words rewrites; the server's own are a few hundred characters


def in_page_words(hint: str | None) -> str | None:
    """An API hint as the page says it: a form field a program sends (`label=rust`) becomes the page's control
    that sends it."""
    if hint and len(hint) > HINT_CHARS:  # the hint repeats a zip's folder name: its patterns would take seconds
        return hint
    for pattern, words in _API_HINTS:
        hint = pattern.sub(words, hint) if hint else hint
    return hint
