"""The unlike-training check's cross-validated threshold (inference/field.py) keeps its promise on leaves it never saw:
a statistical check of the method over six independent calibrations (126 logistic fits), which is why it is here and
not with the other calibration tests in tests/unit/test_field_check.py (about 50 s of the unit tier's 2 minutes)."""

from __future__ import annotations

import numpy as np
from tests.unit.test_field_check import _calibrate, _photos

from leafdoc.inference import field as fieldcheck


def test_cross_validated_threshold_keeps_its_promise_on_fresh_leaves():
    """Fresh leaves from the same source as the validation leaves are refused about as often as the budget says
    (averaged over several draws: one draw of 300 validation leaves is noisy), and less often than with the
    threshold a fit on the same leaves alone would choose (the quantile of the very scores the weights were fitted
    to: optimistic)."""
    budget = fieldcheck.DEFAULT_BUDGET
    fresh = _photos(np.random.default_rng(99), 20000, 0.0, True)
    by_cv, in_sample = [], []
    for seed in range(6):
        section, val = _calibrate(np.random.default_rng(100 + seed), n_val=300, with_val=True)
        check = fieldcheck.FieldCheck(section)
        assert section["val_abstained_cv"] <= budget and len(section["weights"]) == 5 and section["format"] == 2
        fresh_scores = check.scores(*fresh)
        by_cv.append(np.mean(fresh_scores > check.threshold))
        naive = np.quantile(check.scores(*val), 1 - budget, method="higher")  # refuses <= budget of these leaves
        in_sample.append(np.mean(fresh_scores > naive))
    assert np.mean(by_cv) <= budget + 0.0035, (by_cv, budget)
    assert np.mean(by_cv) < np.mean(in_sample) - 0.002, (by_cv, in_sample)
    field_fresh = _photos(np.random.default_rng(98), 5000, 2.5, False)
    assert np.mean(check.scores(*field_fresh) > check.threshold) > 0.6
