"""What an agronomist reads in `leafdoc evaluate`'s report and summary: every figure with what it was measured on."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from leafdoc.cli import printing
from leafdoc.evaluate.evaluate import per_image
from leafdoc.evaluate.report import misclassified, refused, render_html, render_markdown
from leafdoc.evaluate.score import Scores
from leafdoc.evaluate.significance import wilson_interval
from leafdoc.inference.abstain import Decision

pytestmark = pytest.mark.unit

LABELS = ["Tomato___Early_blight", "Tomato___Late_blight", "Strawberry___Leaf_scorch"]
FIGURES = {"confusion_matrix": "cm.png", "reliability": "rel.png", "risk_coverage": "rc.png"}


@pytest.fixture
def wide_out(monkeypatch):
    """The CLI's console 200 columns wide for one test (one line a row, to read it back), the module's own after it."""
    monkeypatch.setattr(printing, "out", printing.TrimmedConsole(soft_wrap=True, width=200))


def result_of(y: list[int], probs: list[list[float]], answered: list[bool]) -> dict:
    """What evaluate_folder returns for these answers, without a model: one photo per row."""
    decisions = [Decision(False) if a else Decision(True, "unsure", "Not sure.") for a in answered]
    scores = Scores(LABELS, np.array(y), np.array(probs, dtype=np.float64), decisions)
    kept = [(Path(f"photos/{LABELS[t]}/{k}.jpg"), LABELS[t]) for k, t in enumerate(y)]
    result = scores.figures()
    result.update(
        classes=sorted({LABELS[t] for t in y}),
        predictions=per_image(kept, scores.probs, LABELS, decisions),
        model="models/m",
        data="photos",
        skipped=[],
        created="2026-11-30",
    )
    return result


def field_like() -> dict:
    """10 photos of early blight: 4 answered (3 right), 6 not sure; one wrong answer is all but certain, and one
    photo was taken for leaf scorch, a class with no photo in the data."""
    eb, lb, ls = [0.9, 0.05, 0.05], [0.3, 0.65, 0.05], [0.3, 0.1, 0.6]
    sure_wrong = [0.00002, 0.99996, 0.00002]
    probs = [eb, eb, eb, sure_wrong, lb, lb, ls, eb, eb, eb]
    answered = [True, True, True, True, False, False, False, False, False, False]
    return result_of([0] * 10, probs, answered)


def test_accuracy_on_the_answered_photos_says_how_many_it_was_measured_on_and_its_interval(capsys, wide_out):
    """The field run showed 'accuracy on answered photos: 89.5%' with no count: 38 photos, whose 95% interval runs
    from 75.9% to 95.8%. A grower reads that figure as how often an answer is right; it needs its counts."""
    r = field_like()
    lo, hi = wilson_interval(3, 4)
    said = f"75.0% (95% CI {lo:.1%}–{hi:.1%}; 3 of 4 answered)"
    md = render_markdown(r, FIGURES, [], [])
    assert f"| right on the photos it answered | {said}; it answered 40.0% (4 of 10) |" in md
    assert "| answered (coverage) | 40.0% (4 of 10) |" in md
    assert f"<td>{said}; it answered 40.0% (4 of 10)</td>" in render_html(r, FIGURES, [], [])

    printing.print_evaluation(r)
    text = capsys.readouterr().out
    assert said in text and "40.0% (4 of 10); 6 abstained: unsure 6" in text
    # the summary's other shares as the report gives them, to one decimal (it said 100.00% of 10 photos)
    top3 = f"{r['top3_accuracy']:.1%}"
    assert f"| top-3 accuracy | {top3} |" in md and re.search(rf"top-3 accuracy\s+│ {re.escape(top3)} ", text), text


def test_no_photo_answered_says_so_instead_of_a_figure():
    r = result_of([0, 1], [[0.5, 0.4, 0.1], [0.5, 0.4, 0.1]], [False, False])
    md = render_markdown(r, FIGURES, [], [])
    assert "| right on the photos it answered | - (no photo answered) |" in md
    assert "| answered (coverage) | 0.0% (0 of 2) |" in md


def test_per_class_figures_with_nothing_to_measure_them_on_are_dashes_not_zeros(capsys, wide_out):
    """Leaf scorch was predicted once and has no photo: its recall was shown as 0.000, as if the model never found
    leaf scorch; late blight, in the data but never answered, had precision 0.000 from 0 of 0 answers."""
    r = result_of([0, 0, 1], [[0.9, 0.05, 0.05], [0.3, 0.1, 0.6], [0.9, 0.05, 0.05]], [True] * 3)
    md = render_markdown(r, FIGURES, [], [])
    assert "| Strawberry___Leaf_scorch | 0.000 | – | – | 0 |" in md
    assert "| Tomato___Late_blight | – | 0.000 | 0.000 | 1 |" in md
    assert "| Tomato___Early_blight | 0.500 | 0.500 | 0.500 | 2 |" in md
    assert '<td class="num">–</td>' in render_html(r, FIGURES, [], [])

    printing.print_evaluation(r)
    late = next(line for line in capsys.readouterr().out.splitlines() if "Late_blight" in line)
    assert late.split("│")[2:5] == [" –         ", " 0.000  ", " 0.000 "]


def test_the_galleries_never_show_a_probability_as_a_certainty():
    """A wrong answer at 0.99996 read 'Tomato___Late_blight (100.0%)' under the photo: a certainty, and wrong.
    The report says it as `leafdoc predict` does: '>99.9%'."""
    r = field_like()
    wrong = [{**g, "thumbnail": f"w{k}.png"} for k, g in enumerate(misclassified(r["predictions"]))]
    shy = [{**g, "thumbnail": f"r{k}.png"} for k, g in enumerate(refused(r["predictions"]))]
    for page in (render_markdown(r, FIGURES, wrong, shy), render_html(r, FIGURES, wrong, shy)):
        galleries = page[page.index("Misclassified images") :]
        assert ">99.9%" in galleries and "100.0%" not in galleries
        assert "65.0%" in galleries  # the refused photos' best guesses, as they were


# ---- the risk-coverage figure of an evaluation of a few photos -------------------------------------------------

CURVE_BLUE = np.array([0x4C, 0x72, 0xB0])


def curve_pixels(fig) -> int:
    """How many pixels of the rendered figure are the curve's blue, the legend (which has a blue sample) left out:
    what a reader sees of the curve itself."""
    import io

    from PIL import Image

    from leafdoc.imaging.figure_png import figure_png

    fig.axes[0].get_legend().remove()
    rgb = np.asarray(Image.open(io.BytesIO(figure_png(fig))).convert("RGB"), dtype=np.int64)
    return int((np.abs(rgb - CURVE_BLUE).sum(axis=2) < 60).sum())


@pytest.mark.parametrize(
    ("y", "probs", "answered"),
    [
        ([0], [[0.9, 0.05, 0.05]], [True]),  # one photo, answered and right: one point, under leafdoc's decision
        ([0], [[0.3, 0.6, 0.1]], [True]),  # one photo, answered and wrong: risk 1
        ([0, 1], [[0.9, 0.05, 0.05], [0.5, 0.4, 0.1]], [True, False]),  # two photos, one refused
        ([0, 1], [[0.5, 0.4, 0.1], [0.5, 0.4, 0.1]], [False, False]),  # none answered
    ],
)
def test_the_risk_coverage_figure_of_one_or_two_photos_shows_its_points(y, probs, answered):
    from leafdoc.evaluate.report import plot_risk_coverage

    sel = result_of(y, probs, answered)["selective"]
    fig = plot_risk_coverage(sel)
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    for line in ax.get_lines():
        assert line.get_marker() not in (None, "", "None", " "), "a point with no marker is not drawn"
        assert all(lo < v <= hi for v in line.get_ydata()), (line.get_ydata(), (lo, hi))
    # drawn, not only declared: a line through one point is an empty frame (the defect) and has no blue pixel
    assert curve_pixels(fig) >= 12
    assert f"Only {len(y)} photo" in ax.get_title()
    if not any(answered):
        assert f"leafdoc answered none of the {len(y)} photos" in ax.get_title()
        md = render_markdown(result_of(y, probs, answered), FIGURES, [], [])
        assert f"leafdoc answered none of the {len(y)} photos" in md


def test_the_risk_coverage_curve_of_a_model_with_no_mistake_is_above_the_axis_not_in_it():
    from leafdoc.evaluate.report import plot_risk_coverage

    n = 200  # every photo answered and right: risk 0 everywhere
    r = result_of([0] * n, [[0.98, 0.01, 0.01]] * n, [True] * n)
    fig = plot_risk_coverage(r["selective"])
    ax = fig.axes[0]
    assert ax.get_ylim()[0] < 0 < ax.get_ylim()[1]
    assert "Only" not in ax.get_title()  # 200 photos: a curve to read
    assert "200 of 200 answered" in ax.get_legend().get_texts()[1].get_text()
    assert curve_pixels(fig) > 300  # a line across the frame, not hidden under the bottom axis


def test_the_report_shows_the_model_cards_limitations():
    r = field_like()
    r["limitations"] = 'Most often "not sure": A, on 8 of its 40 held-out test photos <20%>.'
    md, page = render_markdown(r, FIGURES, [], []), render_html(r, FIGURES, [], [])
    assert f"**The model card's limitations:** {r['limitations']}" in md
    assert "on 8 of its 40 held-out test photos &lt;20%&gt;." in page and "The model card&#x27;s limitations" in page
    r["limitations"] = None
    assert "limitations" not in render_markdown(r, FIGURES, [], []).lower()


def test_accuracy_at_full_coverage_is_the_accuracy_as_the_report_shows_both():
    """field-corn: 196 of 247 right; accuracy_at was rounded to 4 places (0.7935), and the report said 79.3% at 100%
    coverage beside an accuracy of 79.4% on the same photos."""
    from leafdoc.evaluate.report import pct, summary_rows

    probs = [[0.9, 0.05, 0.05]] * 196 + [[0.1, 0.85, 0.05]] * 51
    r = result_of([0] * 247, probs, [True] * 247)
    accuracy = dict(summary_rows(r))["right if forced to answer every photo"]
    assert accuracy.startswith(f"{pct(196 / 247)} ") and pct(196 / 247) == "79.4%"
    assert "79.3%" not in render_markdown(r, FIGURES, [], [])


def test_the_most_confused_pairs_say_how_many_were_answered_and_how_many_not_sure():
    """field-corn's report listed "gray leaf spot predicted as northern leaf blight: 19", read as 19 wrong answers,
    when most of them were "not sure"."""
    lb = [0.3, 0.65, 0.05]
    r = result_of([0] * 5, [lb, lb, lb, [0.01, 0.98, 0.01], [0.9, 0.05, 0.05]], [False, False, False, True, True])
    md = render_markdown(r, FIGURES, [], [])
    assert "| true | likeliest label | photos | of which answered so (the rest: not answered) |" in md
    assert "| Tomato___Early_blight | Tomato___Late_blight | 4 | 1 |" in md
    assert '<td>Tomato___Late_blight</td><td class="num">4</td><td class="num">1</td>' in render_html(
        r, FIGURES, [], []
    )


def test_the_headline_rows_say_which_photos_each_figure_is_on():
    """field-corn's report read "accuracy 79.4%" beside "accuracy on answered photos 94.9%", with "accuracy at 50%
    coverage 95.2%" further down: three accuracies of one model on one folder. The first counts the top guess of every
    photo leafdoc refused; the coverage rows rank by the top probability alone, leafdoc's checks left out."""
    from leafdoc.evaluate.report import RANKED_NOTE, selective_rows

    r = field_like()  # 10 photos: 6 right if forced (3 of them refused), 3 of the 4 answered right
    md, page = render_markdown(r, FIGURES, [], []), render_html(r, FIGURES, [], [])
    forced = "| right if forced to answer every photo | 60.0% (95% CI "
    assert forced in md and "); 6 of 10 photos, its top guess on each, refused ones included |" in md
    assert md.index(forced) < md.index("| right on the photos it answered | 75.0% (95% CI ")
    assert "| accuracy |" not in md and "accuracy at" not in md and "accuracy on all photos" not in md
    ranked = [name for name, _ in selective_rows(r) if "ranked by confidence" in name]
    assert ranked == [f"right on the {k} of photos it is most sure of (ranked by confidence)" for k in ("50%", "80%")]
    assert RANKED_NOTE in md and "leafdoc's checks and threshold left out" in RANKED_NOTE
    assert "leafdoc&#x27;s checks and threshold left out" in page and "right if forced to answer every photo" in page


def test_the_confusion_matrix_and_the_reliability_plot_say_which_photos_they_count(tmp_path, monkeypatch):
    """The matrix counts the refused photos at their top guess and drew an all-zero row for leaf scorch, a class only
    predicted; the reliability plot covers every photo, refused ones too. Neither said so."""
    from leafdoc.evaluate import report

    drawn = []
    monkeypatch.setattr(report, "figure_png", lambda fig: drawn.append(fig) or b"png")
    r = field_like()  # 10 photos of early blight; top guesses late blight (3) and leaf scorch (1) too
    report.write_report(r, tmp_path / "rep")
    md = (tmp_path / "rep" / "report.md").read_text()
    page = (tmp_path / "rep" / "index.html").read_text()
    matrix, reliability = drawn[0].axes[0], drawn[1].axes[0]
    assert [t.get_text() for t in matrix.get_yticklabels()] == ["Tomato: Early blight"]  # no all-zero rows
    assert [t.get_text() for t in matrix.get_xticklabels()] == [
        "Tomato: Early blight",
        "Tomato: Late blight",
        "Strawberry: Leaf scorch",
    ]
    caption = (
        "Every one of the 10 photos, the 6 it refused included (counted at their top guess): a row for each class in "
        "the data, a column for its top guess. 2 columns are a class with no photo in the data, only guessed: "
        "Tomato: Late blight, Strawberry: Leaf scorch."
    )
    assert caption in md and caption in page
    assert "all 10 photos, refused ones included" in reliability.get_title()
    assert "All 10 photos, the refused ones included: each photo's top probability" in md
    assert "All 10 photos, the refused ones included" in page


def test_a_folder_the_model_mostly_refuses_says_what_would_help(capsys, wide_out):
    """A lab's tomato model refused all 89 field photos of its own classes (66 not_a_leaf, 23 unknown_leaf), and the
    report said only "leafdoc answered none of the 89 photos": not why, nor what to do. Its advice goes by the reason
    most refusals give, in the report (Markdown and HTML) and in what `leafdoc evaluate` prints."""
    from leafdoc.evaluate.report import refusal_advice

    r = field_like()  # 6 of 10 refused, all "unsure"
    assert "between classes that look alike" in refusal_advice(r["selective"])
    sel = {**r["selective"], "abstained_by_reason": {"not_a_leaf": 4, "unsure": 2}}
    advice = refusal_advice(sel)
    assert advice.startswith("It refused 4 of these 10 photos as unlike the photos it learnt from")
    assert "train it on photos like these too" in advice
    r["selective"] = sel
    assert f"**What would help:** {advice}" in render_markdown(r, FIGURES, [], [])
    assert "<strong>What would help:</strong> It refused 4 of these 10" in render_html(r, FIGURES, [], [])
    printing.print_evaluation(r)
    assert "what would help: It refused 4 of these 10 photos" in capsys.readouterr().out
    poor = {**sel, "abstained_by_reason": {"poor_photo": 5, "unsure": 1}}
    assert "better photos, not another model" in refusal_advice(poor)
    few = {**sel, "answered": 9, "abstained": 1, "abstained_by_reason": {"not_a_leaf": 1}}
    assert refusal_advice(few) is None  # 1 of 10 refused: nothing to say


def test_the_files_evaluate_skipped_are_named_with_their_reason(capsys, wide_out):
    """`leafdoc evaluate` said "4 files skipped (see --json for the reasons)", naming none of them."""
    r = field_like()
    r["skipped"] = [{"file": f"photos/{k}.jpg", "reason": "not a photo leafdoc can read"} for k in range(12)]
    printing.print_evaluation(r)
    text = capsys.readouterr().out
    assert "12 files skipped:" in text and "photos/0.jpg: not a photo leafdoc can read" in text
    assert "photos/9.jpg:" in text and "photos/10.jpg" not in text and "and 2 more (all of them: --json)" in text
