"""Drift against a validation baseline, on made-up streams of answers: a known shift is warned about in plain
words, and a stream drawn from the baseline's own distribution gives no warning."""

from __future__ import annotations

import numpy as np
import pytest

from leafdoc.inference import drift

LABELS = [f"class{i}" for i in range(10)]
THRESHOLD = 6.0


def stream(rng, n, *, abstain=0.02, score_scale=1.0, label_p=None) -> list[dict]:
    """n made-up answers: scores like a model's on its own leaf photos (most well under the threshold)."""
    p = label_p if label_p is not None else np.full(len(LABELS), 1 / len(LABELS))
    out = []
    for _ in range(n):
        score = float(rng.gamma(4.0, 0.6)) * score_scale
        abstained = rng.random() < abstain or score > THRESHOLD
        reason = ("not_a_leaf" if score > THRESHOLD else "unsure") if abstained else None
        out.append({"abstained": abstained, "reason": reason, "score": score, "label": rng.choice(LABELS, p=p)})
    return out


def summary(answers: list[dict]) -> dict:
    s = {"answers": len(answers), "abstentions": {}, "labels": {}, "score_bins": {}}
    for a in answers:
        if a["abstained"]:
            s["abstentions"][a["reason"]] = s["abstentions"].get(a["reason"], 0) + 1
        else:
            s["labels"][a["label"]] = s["labels"].get(a["label"], 0) + 1
        b = drift.score_bin(a["score"], THRESHOLD)
        s["score_bins"][b] = s["score_bins"].get(b, 0) + 1
    bins = [0] * drift.SCORE_BINS
    for b, n in s["score_bins"].items():
        bins[b] = n
    return s | {"score_bins_list": bins}


@pytest.fixture
def baseline():
    s = summary(stream(np.random.default_rng(0), 700))
    return {**s, "score_bins": s["score_bins_list"]}


def kinds(result: dict) -> set[str]:
    assert result["checked"], result
    return {w["kind"] for w in result["warnings"]}


@pytest.mark.parametrize("seed", range(5))
def test_no_warning_without_a_shift(baseline, seed):
    window = summary(stream(np.random.default_rng(100 + seed), 400))
    assert kinds(drift.check(window, baseline)) == set()


def test_scores_moved_beyond_the_bound_are_warned_about(baseline):
    result = drift.check(summary(stream(np.random.default_rng(1), 400, score_scale=1.6)), baseline)
    assert "score" in kinds(result)
    assert result["score_psi"]["value"] > result["score_psi"]["bound"] >= drift.PSI_FLOOR
    [w] = [w for w in result["warnings"] if w["kind"] == "score"]
    assert "not-a-leaf scores have moved" in w["message"]


def test_abstentions_doubling_is_warned_about_in_plain_words(baseline):
    result = drift.check(summary(stream(np.random.default_rng(2), 400, abstain=0.12)), baseline)
    assert "abstentions" in kinds(result)
    [w] = [w for w in result["warnings"] if w["kind"] == "abstentions"]
    assert "twice as often" in w["message"] and "of the last 400 photos" in w["message"]
    # 1.4 times as many abstentions is not a doubling
    assert "abstentions" not in kinds(
        drift.check(summary(stream(np.random.default_rng(3), 400, abstain=0.03)), baseline)
    )


def test_a_changed_mix_of_labels_is_warned_about(baseline):
    p = np.array([0.55] + [0.05] * 9)
    result = drift.check(summary(stream(np.random.default_rng(4), 400, label_p=p)), baseline)
    assert kinds(result) == {"labels"}


def test_too_few_answers_or_no_baseline_give_no_verdict(baseline):
    few = summary(stream(np.random.default_rng(5), drift.MIN_ANSWERS - 1, score_scale=3))
    assert drift.check(few, baseline)["checked"] is False
    assert drift.check(summary(stream(np.random.default_rng(6), 400)), None)["checked"] is False


def test_the_bound_is_what_sampling_noise_gives_at_the_window_size(baseline):
    expected = np.array(baseline["score_bins"])
    small, large = drift.psi_bound(expected, 60), drift.psi_bound(expected, 5000)
    assert small > large and large == drift.PSI_FLOOR  # fewer answers: more noise tolerated


def test_score_bins_and_quantiles_are_in_tenths_of_the_threshold():
    assert drift.score_bin(0.0, 6.0) == 0 and drift.score_bin(6.0, 6.0) == 10 and drift.score_bin(600, 6.0) == 30
    assert drift.score_bin(None, 6.0) is None and drift.score_bin(1.0, None) is None
    assert drift.bin_quantiles({2: 50, 12: 50}) == {"p50": 0.3, "p90": 1.3, "p99": 1.3}
