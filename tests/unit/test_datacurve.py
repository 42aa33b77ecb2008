"""Accuracy against training photos: the power-law fit, where it puts a target accuracy, and when there is
no curve to fit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from leafdoc.experiments.datacurve import curve_runs, curve_section, fit_curve, fit_power_law, photos_for

N_CLASSES, N_TEST = 30, 2000


def _run(name: str, per_class: int, wrong: int, share: float | None = None) -> dict:
    """A run trained on `per_class` photos a class that gets the first `wrong` test photos wrong (so the
    photos a bigger run gets wrong are among those a smaller one did, as on a real curve)."""
    return {
        "name": name,
        "kind": "run",
        "train_images": per_class * N_CLASSES,
        "train_share": share,
        "test_outcomes": {"images": "h" * 8, "correct": "0" * wrong + "1" * (N_TEST - wrong)},
        "differs": [],
    }


def test_the_fit_recovers_a_power_law():
    n = np.array([10.0, 20.0, 40.0, 80.0])
    a, b = fit_power_law(n, 0.5 * n**-0.4)
    assert a == pytest.approx(0.5) and b == pytest.approx(0.4)
    assert photos_for(a, b, 0.98) == pytest.approx((0.5 / 0.02) ** (1 / 0.4))
    assert photos_for(0.1, 0.0, 0.98) == math.inf and photos_for(0.1, -0.2, 0.98) == math.inf


def test_the_curve_puts_98_percent_where_the_law_does_with_an_interval_around_it():
    # error 0.16 * (n/25)^-0.5: 16% at 25 photos a class, 8% at 100; 2% at 25 * 8^2 = 1,600.
    runs = [_run(f"r{n}", n, round(N_TEST * 0.16 * (n / 25) ** -0.5), share=n / 100) for n in (25, 50, 75, 100)]
    curve = fit_curve(runs[::-1], N_CLASSES)  # any order
    assert curve.names == ["r25", "r50", "r75", "r100"] and curve.per_class == [25, 50, 75, 100]
    assert curve.b == pytest.approx(0.5, abs=0.01)
    fit, lo, hi = curve.needed[0.98]
    assert fit == pytest.approx(1600, rel=0.03)
    assert lo < fit < hi < math.inf and hi / lo > 1.2  # 2,000 test photos still leave a wide extrapolation
    assert curve.needed[0.97][0] < fit < curve.needed[0.99][0]
    text = "\n".join(curve_section(curve))
    assert "b = 0.50" in text
    assert f"| 98% | {fit:,.0f} | {lo:,.0f} – {hi:,.0f} | {fit / 100:.1f}× the largest run |" in text
    assert "| r25 | 25.0 | 84.0% | 16.0% |" in text


def test_a_flat_curve_never_reaches_the_target():
    runs = [_run(f"r{n}", n, 100) for n in (25, 50, 100)]
    curve = fit_curve(runs, N_CLASSES, resamples=50)
    assert curve.b == pytest.approx(0.0, abs=1e-9) and curve.needed[0.98][0] == math.inf
    runs[-1]["test_outcomes"]["correct"] = "0" * 120 + "1" * (N_TEST - 120)  # more photos, more mistakes
    worse = fit_curve(runs, N_CLASSES, resamples=50)
    assert worse.b < 0 and worse.needed[0.98][0] == math.inf
    assert "out of reach (the curve is flat or rising)" in "\n".join(curve_section(worse))


def test_no_curve_without_three_sizes_on_the_same_photos():
    runs = [_run("a", 25, 300), _run("b", 50, 200), _run("c", 100, 150)]
    assert fit_curve(runs[:2], N_CLASSES) is None
    assert fit_curve([*runs[:2], _run("c", 50, 150)], N_CLASSES) is None  # two runs of one size
    other = _run("c", 100, 150)
    other["test_outcomes"]["images"] = "other"
    assert fit_curve([*runs[:2], other], N_CLASSES) is None
    del runs[0]["test_outcomes"]
    assert fit_curve(runs, N_CLASSES) is None


def test_the_curve_is_drawn_only_through_runs_of_a_learning_curve():
    plain = [_run("a", 25, 300), _run("b", 50, 200), _run("c", 100, 150)]
    assert curve_runs({"runs": plain}) == []  # no train_share: not a learning curve
    shared = [_run("a", 25, 300, 0.25), _run("b", 50, 200, 0.5), _run("c", 100, 150)]
    continued, extra, imbalanced, tuned = (dict(shared[2], name=n) for n in ("d", "e", "f", "g"))
    continued["init_from"], extra["with_extra"], imbalanced["per_class"], tuned["kind"] = "c", True, {"x": {}}, "tuned"
    got = curve_runs({"runs": [*shared, continued, extra, imbalanced, tuned]})
    assert [r["name"] for r in got] == ["a", "b", "c"]
