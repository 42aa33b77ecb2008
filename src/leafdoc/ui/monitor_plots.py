"""The Monitor tab's pictures (matplotlib, no display): served answers against the validation baseline.
Each function takes GET /v1/monitoring's answer and returns PNG bytes (also used by the desktop app)."""

from __future__ import annotations

import io

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from leafdoc.inference.drift import SCORE_BIN_WIDTH, SCORE_BINS
from leafdoc.ui.feedback_text import SMALL_BASE, abstained, share_of
from leafdoc.ui.text import pretty_label

SERVED, BASELINE, WARN = "#3f8f3f", "#777777", "#c94a4a"
# Series told apart by more than their colour (red and green look alike to one man in twelve): the abstained bars
# and the validation photos' bars are hatched, the lines differ in dashes and markers.
HATCH_REFUSED, HATCH_BASELINE = "////", "...."


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def _few(base: dict | None) -> str:
    """What follows a figure of a baseline of few validation photos (feedback_text.SMALL_BASE), `(only 6)`, else
    nothing: a curve or a threshold from 6 photos is not one to read as a measure."""
    n = (base or {}).get("answers", 0)
    return f" (only {n})" if n < SMALL_BASE else ""


def drawn_share(bucket: dict) -> float | None:
    """The share of an hour's (or a day's) answers that abstained, in percent, as the activity picture draws it: only
    of SMALL_BASE answers or more, as the words say a share (feedback_text.share_of). Of fewer, one photo moves it by
    more than a point, and an hour of 2 answers drew 50% or 100% for one photo, an alarm no 2 photos can raise: those
    hours get no point, and their abstentions are counted on their bar instead ("1 of 2")."""
    n = bucket["answers"]
    return 100 * abstained(bucket) / n if n >= SMALL_BASE else None


def activity(report: dict) -> bytes:
    """Answers per hour/day (bars, the abstained ones red at their foot) and the share that abstained (line) of the
    hours/days of SMALL_BASE answers or more, against validation's (dashed); fewer answers: "1 of 2" over the bar."""
    buckets, period = report["buckets"], report["period"]
    fig = Figure(figsize=(9, 3.4))
    ax = fig.add_subplot()
    xs = [b["start"][5:16].replace("T", " ") if period == "hour" else b["start"][:10] for b in buckets]
    at = range(len(xs))
    answers = [b["answers"] for b in buckets]
    refused = [abstained(b) for b in buckets]
    ax.bar(at, refused, color=WARN, alpha=0.75, hatch=HATCH_REFUSED, edgecolor="white", label="abstained (count)")
    ax.bar(at, [n - k for n, k in zip(answers, refused, strict=True)], bottom=refused, color=SERVED, alpha=0.55,
           label="answered")  # fmt: skip
    ax.set_ylabel("answers")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # whole answers: 2 of them read "0.5, 1.0, 1.5"
    ax.set_ylim(0, max([*answers, 1]) * 1.18)  # room over the tallest bar for its count
    ax.set_xticks(at, xs, rotation=45, ha="right", fontsize=7)
    for x, n, k in zip(at, answers, refused, strict=True):
        if k and n < SMALL_BASE:
            ax.annotate(share_of(k, n), (x, n), xytext=(0, 2), textcoords="offset points", ha="center",
                        va="bottom", fontsize=7, color=WARN, rotation=90 if len(xs) > 12 else 0)  # fmt: skip
    ax2 = ax.twinx()
    shares = [drawn_share(b) for b in buckets]
    points = [s for s in shares if s is not None]
    # a gap (NaN) where an hour has too few answers: the line joins only the shares it draws
    ax2.plot(at, [float("nan") if s is None else s for s in shares], "o-", color=WARN, label="abstained %")
    base = report.get("baseline")
    if base:
        on = f"abstained on validation: {share_of(abstained(base), base['answers'])}"
        ax2.axhline(100 * base["abstention_rate"], ls="--", color=BASELINE, label=on)
        ax2.axhline(200 * base["abstention_rate"], ls=":", color=WARN, label="twice validation")
    ax2.set_ylabel("abstained (%)")
    ax2.set_ylim(0, max([*points, 100 * 2.5 * (base["abstention_rate"] if base else 0), 5]) * 1.1)
    fig.legend(loc="upper left", fontsize=7, ncols=5)
    ax.set_title(f"Answers per {period}, every model version", fontsize=10, loc="left")
    # the caption, under the dates: why some hours have no point
    ax.set_xlabel(few_caption(period, len(points) < len(buckets)), loc="left", fontsize=8.5, color="#444444")
    return _png(fig)


def few_caption(period: str, any_few: bool) -> str:
    """The activity picture's caption: which hours (days) have an abstained % (drawn_share), and, when some have
    none, why and what they show instead."""
    rule = f"Abstained % is drawn for {period}s of {SMALL_BASE} answers or more"
    if not any_few:
        return rule + "."
    return rule + ';\nof fewer, one photo would move it by over a point, so their bar says the count ("1 of 2").'


def _shares(bins: dict) -> list[float]:
    counts = [0.0] * SCORE_BINS
    for k, n in bins.items():
        counts[min(int(k), SCORE_BINS - 1)] += n
    total = sum(counts) or 1.0
    return [c / total for c in counts]


def scores(report: dict) -> bytes:
    """The not-a-leaf score's distribution in the drift window against validation's, in units of the threshold."""
    fig = Figure(figsize=(9, 3.0))
    ax = fig.add_subplot()
    edges = [i * SCORE_BIN_WIDTH for i in range(SCORE_BINS)]
    window = report["drift_window"]
    ax.bar(edges, _shares(window["score_bins"]), width=SCORE_BIN_WIDTH, align="edge", color=SERVED, alpha=0.6,
           label=f"last {window['hours']} h ({window['answers']} answers)")  # fmt: skip
    base = report.get("baseline")
    if base:
        ax.step(edges, _shares(base["score_bins"]), where="post", color=BASELINE, lw=2,
                label=f"validation photos{_few(base)}")  # fmt: skip
    # the threshold is set on the validation photos (inference/ood.py): on a few, it is a rough one
    where = f" (set on only {base['answers']} validation photos)" if base and _few(base) else ""
    ax.axvline(1.0, color=WARN, ls="--", label=f"threshold{where}: refused as not a leaf from here")
    psi = report["drift"].get("score_psi")
    title = "Not-a-leaf score (1 = the model's threshold)"
    if not window["score_bins"]:
        title += " · no scores yet (or this model has no not-a-leaf check)"
    if psi:
        title += f" · PSI {psi['value']:.2f} (bound {psi['bound']:.2f})"
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_xlabel("score / threshold")
    ax.set_ylabel("share of answers")
    ax.legend(fontsize=7)
    return _png(fig)


def labels(report: dict, top: int = 12) -> bytes:
    """The mix of diagnoses in the drift window against validation's, for the most frequent labels."""
    window = report["drift_window"]["labels"]
    total = sum(window.values()) or 1
    base = (report.get("baseline") or {}).get("label_shares", {})
    names = sorted(set(window) | set(base), key=lambda k: -(window.get(k, 0) / total + base.get(k, 0)))[:top]
    fig = Figure(figsize=(9, 0.3 * max(len(names), 3) + 1.0))
    ax = fig.add_subplot()
    ys = range(len(names))
    ax.barh([y + 0.2 for y in ys], [window.get(n, 0) / total for n in names], 0.4, color=SERVED, label="served")
    few = _few(report.get("baseline"))
    ax.barh(
        [y - 0.2 for y in ys],
        [base.get(n, 0) for n in names],
        0.4,
        color=BASELINE,
        hatch=HATCH_BASELINE,
        edgecolor="white",
        label=f"validation photos{few}",
    )
    ax.set_yticks(list(ys), [pretty_label(n)[:40] for n in names], fontsize=7)
    ax.invert_yaxis()
    psi = report["drift"].get("label_psi")
    title = "Mix of diagnoses" + (f" · PSI {psi['value']:.2f} (bound {psi['bound']:.2f})" if psi else "")
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_xlabel("share of answers")
    ax.legend(fontsize=7)
    return _png(fig)
