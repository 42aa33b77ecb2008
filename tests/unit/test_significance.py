"""The Wilson interval and McNemar's exact test behind the experiment reports' "95% CI" and "p", against
textbook values and SciPy, and the report's columns and note with and without per-image outcomes."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from scipy.stats import binomtest

from leafdoc.evaluate.significance import accuracy_interval_text, mcnemar, wilson_interval
from leafdoc.experiments.report import comparison_rows, render_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs" / "experiments"


def test_wilson_interval_matches_textbook_values():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)  # Newcombe 1998, table I
    assert wilson_interval(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    assert wilson_interval(10, 10) == pytest.approx((0.72247, 1.0), abs=1e-5)
    lo, hi = wilson_interval(76, 90)
    assert lo < 76 / 90 < hi and hi - lo == pytest.approx(0.1493, abs=1e-3)
    assert accuracy_interval_text(76 / 90, 90) == "84.4% (95% CI 75.6%–90.5%)"
    for bad in ((1, 0), (-1, 5), (6, 5)):
        with pytest.raises(ValueError):
            wilson_interval(*bad)


def test_mcnemar_is_the_exact_binomial_test_of_the_discordant_images():
    assert mcnemar("000000", "111111") == {"only_a": 0, "only_b": 6, "p": 0.03125}
    assert mcnemar("0" + "1" * 9, "1" + "0" * 9)["p"] == pytest.approx(0.021484375)
    assert mcnemar("1100", "1100")["p"] == 1.0  # the same answers: nothing to tell them apart
    assert mcnemar("", "")["p"] == 1.0
    rng = random.Random(0)
    for _ in range(50):  # whatever the agreed images, p is SciPy's two-sided binomial test of the others
        a = "".join(rng.choice("01") for _ in range(60))
        b = "".join(rng.choice("01") for _ in range(60))
        found = mcnemar(a, b)
        n = found["only_a"] + found["only_b"]
        assert found["p"] == pytest.approx(binomtest(found["only_a"], n, 0.5).pvalue if n else 1.0)
    with pytest.raises(ValueError, match="cannot be paired"):
        mcnemar("01", "011")


def _results(outcomes: list[str | None], images: str = "abc") -> dict:
    """A committed results.json with its runs' outcomes replaced: real fields, chosen answers."""
    results = json.loads((DOCS / "flowers-resnet50" / "results.json").read_text())
    results["runs"] = results["runs"][: len(outcomes)]
    for run, correct in zip(results["runs"], outcomes, strict=True):
        run["test_outcomes"] = {"images": images, "correct": correct} if correct else None
        run["test"] = {**run["test"], "n": len(correct or "0" * 90), "accuracy": (correct or "").count("1") / 90}
    return results


def test_report_pairs_each_run_with_the_reference_on_the_same_images():
    base = "1" * 80 + "0" * 10
    much_worse = "0" * 12 + "1" * 68 + "0" * 10  # 12 images base got right and it did not, none the other way
    a_little = "0" * 6 + "1" * 75 + "0" * 9  # 6 the other way, 1 better: 7 discordant images
    results = _results([base, much_worse, a_little, base])
    header, rows = comparison_rows(results)
    ref = results["reference"]
    assert header[2:5] == ["test acc (95% CI)", "macro F1", f"Δ acc vs {ref} (McNemar p)"]
    assert rows[0][2] == "88.9% (80.7–93.9)" and rows[0][4] == ""
    assert rows[1][4] == "-13.3 pts (p<0.001)"  # 2 / 2**12
    assert rows[2][4] == "-5.6 pts (p=0.12)"  # 2 * (1 + 7) / 2**7
    assert rows[3][4] == "+0.0 pts (p=1.00)"
    report = render_markdown(results)
    assert f"exact McNemar test of each run against {ref} on the same 90 test images" in report
    assert "Each of the 3 comparisons is a separate test" in report and "No p for" not in report


def test_report_says_which_runs_have_no_p_and_why():
    base = "1" * 80 + "0" * 10
    results = _results([base, None, base])  # the middle run finished before outcomes were recorded
    header, rows = comparison_rows(results)
    assert rows[1][4] == "-88.9 pts" and rows[2][4] == "+0.0 pts (p=1.00)"
    assert f"No p for {results['runs'][1]['name']}: it or the reference finished before" in render_markdown(results)
    other = _results([base, base], images="abc")
    other["runs"][1]["test_outcomes"]["images"] = "another split"
    header, rows = comparison_rows(other)
    assert "McNemar" not in header[4] and rows[1][4] == "+0.0 pts"


def test_committed_reports_without_outcomes_still_render_intervals():
    """cifar10's full run finished before outcomes were recorded (its model folders are gone): the
    report gives intervals, no p, and says why."""
    results = json.loads((DOCS / "cifar10-mobilenetv2" / "results.json").read_text())
    assert not any(r.get("test_outcomes") for r in results["runs"])
    header, rows = comparison_rows(results)
    assert header[header.index("macro F1") - 1] == "test acc (95% CI)"
    assert all(" (" in row[header.index("test acc (95% CI)")] for row in rows)
    assert "No p for" in render_markdown(results)


def test_the_chosen_run_says_how_far_ahead_it_is_on_validation():
    """flowers: the kept model led by 2 of 90 validation photos (within chance); plantvillage-rest: size-128
    led by 31 of 663 (beyond the chosen run's interval)."""
    flowers = render_markdown(json.loads((DOCS / "flowers-resnet50" / "results.json").read_text()))
    assert (
        "**morph-opening**, copied to `/work/runs/flowers-search2/best`. It is 2 of 90 validation images ahead of "
        "baseline, whose validation accuracy lies inside the chosen run's 95% interval: the choice may be chance"
    ) in flowers
    rest = render_markdown(json.loads((DOCS / "plantvillage-mobilenetv2" / "results-rest.json").read_text()))
    assert "It is 31 of 663 validation images ahead of size-64, whose validation accuracy lies below" in rest
    one = json.loads((DOCS / "flowers-resnet50" / "results.json").read_text())
    one["runs"] = [r for r in one["runs"] if r["name"] == one["best"]["run"]]
    assert "validation images ahead" not in render_markdown(one)  # nothing to compare with
