"""The unlike-training check's calibration (inference/field.py): its threshold is set by cross-validation for a
budget shared with the model's other checks, and old (format 1) card sections still score as they did. That the
cross-validated threshold keeps its promise on fresh leaves (six calibrations, ~50 s) is checked in
tests/integration/test_field_check_cv.py."""

from __future__ import annotations

import copy
import functools

import numpy as np

from leafdoc.inference import field as fieldcheck

N_CLASSES = 10


def _photos(rng, n: int, shift: float, sure: bool):
    """(ood components, photo features, softmax) of n synthetic photos; `shift` moves every strangeness measure."""
    comps = rng.normal(shift, 1.0, (n, 2))
    photo = np.c_[rng.normal(0.3 + 0.1 * shift, 0.1, (n, 2)), rng.uniform(0, 1, n)]
    logits = rng.normal(0, 1, (n, N_CLASSES))
    logits[:, 0] += 9.0 if sure else 1.5 + rng.uniform(0, 2, n)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return comps, photo.astype(np.float32), probs


def _calibrate(rng, n_val=600, val_other=None, budget=fieldcheck.DEFAULT_BUDGET, with_val=False):
    train_photo = _photos(rng, 400, 0.0, True)[1]
    val = _photos(rng, n_val, 0.0, True)
    field = _photos(rng, 90, 2.5, False)
    nonleaf = _photos(rng, 300, 4.0, False)
    section = fieldcheck.calibrate(train_photo, val, field, nonleaf, ["synthetic"], budget, val_other)
    return (section, val) if with_val else section


@functools.cache
def _shared_calibration() -> dict:
    """`_calibrate` of seed 2 (600 validation leaves, non-leaf photos): made once for the tests that only read it."""
    return _calibrate(np.random.default_rng(2))


def _calibrated() -> dict:
    return copy.deepcopy(_shared_calibration())


def test_uncertainty_orders_sure_and_unsure_answers():
    sure = np.r_[0.99, np.full(N_CLASSES - 1, 0.01 / (N_CLASSES - 1))]
    torn = np.r_[0.5, 0.5, np.zeros(N_CLASSES - 2)]
    flat = np.full(N_CLASSES, 1 / N_CLASSES)
    u = fieldcheck.uncertainty(np.stack([sure, torn, flat]))
    assert u[0] < u[1] < u[2] and abs(u[2]) < 1e-3  # no idea at all: log(1) = 0


def test_the_budget_is_shared_with_the_other_checks():
    """Leaves the softmax or the photo checks refuse anyway use up the budget: the check then refuses fewer
    leaves (and fewer field photos), so that all checks together still abstain on about `budget` of leaves."""
    alone = _calibrated()
    other = np.zeros(600, bool)
    other[:9] = True  # 1.5% of the validation leaves already refused by the other checks
    shared = _calibrate(np.random.default_rng(2), val_other=other)
    assert shared["threshold"] > alone["threshold"]
    assert shared["val_refused"] < alone["val_refused"]
    assert shared["val_abstained_cv"] <= fieldcheck.DEFAULT_BUDGET


def test_format_1_sections_score_as_before():
    """Cards calibrated before the uncertainty input (four weights, two centres) keep their scores."""
    section = {
        "format": 1,
        "weights": [1.5, 1.0, 0.8, 0.7],
        "centre": [0.3, 0.06],
        "spread": [0.2, 0.05],
        "threshold": 10.0,
    }
    comps, photo, probs = _photos(np.random.default_rng(3), 5, 0.0, True)
    expected = np.c_[comps, (photo[:, :2] - [0.3, 0.06]) / [0.2, 0.05]] @ section["weights"]
    check = fieldcheck.FieldCheck(section)
    assert np.allclose(check.scores(comps, photo, probs), expected)
    assert np.allclose(check.scores(comps, photo), expected)


def test_a_larger_budget_refuses_more_leaves_and_more_field_photos():
    small = _calibrate(np.random.default_rng(4), budget=0.01)
    large = _calibrate(np.random.default_rng(4), budget=0.03)
    assert small["val_abstained_cv"] <= 0.01 and large["val_abstained_cv"] <= 0.03
    assert large["threshold"] < small["threshold"]
    assert large["val_refused"] > small["val_refused"] and large["field_refused_cv"] >= small["field_refused_cv"]


def test_the_cli_names_the_default_budget():
    from typer.testing import CliRunner

    from leafdoc.cli.main import app

    result = CliRunner().invoke(app, ["calibrate", "--help"], terminal_width=200)
    assert f"Default: {fieldcheck.DEFAULT_BUDGET}" in " ".join(result.output.split()), result.output


def test_a_handful_of_validation_photos_still_calibrates():
    """A tiny dataset (a few validation photos, as a quick retrain has): no cross-validation is possible with one
    photo; with a few it still runs; either way the section is complete and the threshold refuses no leaf."""
    rng = np.random.default_rng(5)
    train_photo = _photos(rng, 20, 0.0, True)[1]
    field = _photos(rng, 12, 2.5, False)
    for n_val in (1, 4):
        val = _photos(rng, n_val, 0.0, True)
        section = fieldcheck.calibrate(train_photo, val, field, None, ["synthetic"])
        check = fieldcheck.FieldCheck(section)
        assert np.isfinite(section["threshold"]) and not (check.scores(*val) > check.threshold).any()
        assert (section["val_abstained_cv"] is None) == (n_val == 1)


def test_a_section_of_a_newer_format_is_not_applied(caplog):
    """A model folder calibrated by a later leafdoc (a format this one does not know) is served without the check,
    with a warning, instead of being read wrongly or failing."""
    from leafdoc.modelfolder import ModelCard

    section = {"format": fieldcheck.FORMAT + 1, "weights": [1.0] * 7, "centre": [0.0] * 5, "spread": [1.0] * 5}
    card = ModelCard.model_construct(field={**section, "threshold": 1.0}, ood={"threshold": 1.0})
    with caplog.at_level("WARNING"):
        assert fieldcheck.FieldCheck.from_card(card) is None
    assert "newer than this leafdoc" in caplog.text
    current = ModelCard.model_construct(field={**section, "format": fieldcheck.FORMAT, "threshold": 1.0}, ood={})
    assert fieldcheck.FieldCheck.from_card(current) is None  # no not-a-leaf check: nothing to weigh it with
    current.ood = {"threshold": 1.0}
    assert isinstance(fieldcheck.FieldCheck.from_card(current), fieldcheck.FieldCheck)


def _reason_photos(rng, n: int, kind: str):
    """(ood components, photo features) where leaf colour alone cannot tell field photos from non-leaf ones: both
    are often leafy (foliage behind a flower) or not (a pale, dry field photo), but a leaf in a field is much
    nearer the training leaves (the two not-a-leaf distances) than a flower or a truck is."""
    far = {"field": 2.0, "nonleaf": 5.0}[kind]
    comps = rng.normal(far, 1.0, (n, 2))
    leafy = rng.uniform(0.1, 0.9, n) if kind == "field" else rng.uniform(0.0, 0.7, n)
    return comps, np.c_[rng.uniform(0, 1, (n, 2)), leafy].astype(np.float32)


def test_refused_photos_are_told_apart_by_distance_and_leaf_colour_not_leaf_colour_alone():
    """With non-leaf examples, calibration fits which refused photos are field photos (unlike_training, advice on
    how to take one the model can read) and which are no leaf (not_a_leaf): on fresh photos it names both far
    better than the leaf-colour share it falls back on without them, and its cross-validated figures say so."""
    rng = np.random.default_rng(5)
    field, nonleaf = _reason_photos(rng, 90, "field"), _reason_photos(rng, 600, "nonleaf")
    reason = fieldcheck.fit_reason(field, nonleaf)
    assert reason["inputs"] == ["features distance", "colour distance", "leaf-coloured share"]
    assert reason["field_as_unlike_training_cv"] >= 0.9 and reason["nonleaf_as_not_a_leaf_cv"] >= 0.9, reason
    section = {"weights": [1, 1, 1, 1], "centre": [0, 0], "spread": [1, 1], "threshold": 0.0, "leafy_share": 0.3}
    by_colour = fieldcheck.FieldCheck(section)
    fitted = fieldcheck.FieldCheck({**section, "reason": reason})
    fresh_field, fresh_nonleaf = _reason_photos(rng, 2000, "field"), _reason_photos(rng, 2000, "nonleaf")

    def named_right(check) -> float:  # the mean of the two shares named right
        return (check.field_like(*fresh_field).mean() + (~check.field_like(*fresh_nonleaf)).mean()) / 2

    assert named_right(fitted) >= 0.9
    assert named_right(by_colour) < 0.8  # leaf colour alone: the photos were drawn so that it cannot tell them apart
    assert abs(fitted.field_like(*fresh_field).mean() - reason["field_as_unlike_training_cv"]) < 0.06


def test_calibration_without_non_leaf_photos_keeps_the_leaf_colour_rule():
    rng = np.random.default_rng(6)
    train_photo = _photos(rng, 400, 0.0, True)[1]
    val, field = _photos(rng, 300, 0.0, True), _photos(rng, 90, 2.5, False)
    section = fieldcheck.calibrate(train_photo, val, field, None, ["synthetic"])
    assert "reason" not in section and "leaf-coloured share" in section["rule"]
    check = fieldcheck.FieldCheck(section)
    photo = np.array([[0.5, 0.5, 0.31], [0.5, 0.5, 0.29]], np.float32)
    assert check.field_like(np.zeros((2, 2)), photo).tolist() == [True, False]
    with_nonleaf = _calibrated()
    assert "reason" in with_nonleaf and "`reason`" in with_nonleaf["rule"]


def test_the_scene_measure_catches_leaves_the_border_measures_miss():
    """A leaf photographed on the plant against an out-of-focus background is like a lab photo on every measure
    but the scene measure (here: one direction of the features). Fitted on examples (the same leaves on plain
    backgrounds and in scenes), the check with it refuses such photos; the same calibration without it does not,
    and both stay within the budget on fresh lab leaves. The served score is the one calibration fitted."""
    from leafdoc.inference import scenes

    rng = np.random.default_rng(7)
    dims, u = 24, np.eye(24)[3]  # the features' direction a scene moves them along

    def feats(n, in_scene):
        return rng.normal(0, 1, (n, dims)) + (6.0 * u if in_scene else 0)

    scene = scenes.fit(feats(400, False), feats(400, True))
    assert scene["examples_right"] > 0.95 and len(scene["weights"]) == dims
    train_photo = _photos(rng, 400, 0.0, True)[1]
    # Field photos: half strange on every measure, half (close-ups) like lab photos but for the scene.
    busy, close = _photos(rng, 45, 2.5, False), _photos(rng, 45, 0.0, True)
    val, field, nonleaf = (
        (*_photos(rng, 600, 0.0, True), feats(600, False)),
        (*(np.r_[a, b] for a, b in zip(busy, close, strict=True)), feats(90, True)),
        (*_photos(rng, 300, 4.0, False), feats(300, False)),
    )
    with_scene = fieldcheck.calibrate(train_photo, val, field, nonleaf, ["synthetic"], scene=scene)
    without = fieldcheck.calibrate(train_photo, val[:3], field[:3], nonleaf[:3], ["synthetic"])
    assert with_scene["format"] == 3 and len(with_scene["weights"]) == 6 and without["format"] == 2
    blurred = (*_photos(rng, 2000, 0.0, True), feats(2000, True))  # lab-like on all but the scene measure
    fresh = (*_photos(rng, 2000, 0.0, True), feats(2000, False))
    check, old = fieldcheck.FieldCheck(with_scene), fieldcheck.FieldCheck(without)
    assert np.mean(check.scores(*blurred) > check.threshold) > 0.9
    assert np.mean(old.scores(*blurred[:3]) > old.threshold) < 0.1
    assert np.mean(check.scores(*fresh) > check.threshold) <= fieldcheck.DEFAULT_BUDGET + 0.01
    # The card rounds weights and threshold: a photo at the threshold may fall either side.
    assert abs(np.mean(check.scores(*val) > check.threshold) - with_scene["val_refused"]) <= 2 / 600


def test_a_budget_fifteen_validation_photos_cannot_keep_is_said_not_to_be_met():
    """`leafdoc calibrate` printed "abstains on 6.7% of unseen lab photos (all checks; budget 1.75%)" and no more:
    with 15 validation photos one photo is 6.7%, and calibrate took its strictest threshold silently."""
    rng = np.random.default_rng(6)
    train_photo = _photos(rng, 60, 0.0, True)[1]
    val, field = _photos(rng, 15, 0.0, True), _photos(rng, 20, 2.5, False)
    other = np.zeros(15, bool)
    other[0] = True  # one photo the other checks refuse: one in 15 abstained on, whatever the threshold
    section = fieldcheck.calibrate(train_photo, val, field, None, ["synthetic"], val_other=other)
    assert section["val_abstained_cv"] > section["budget"]
    said = fieldcheck.budget_missed(section)
    assert said is not None and "the abstention budget of 1.75% could not be met" in said, said
    assert "Too few validation photos: one photo is 6.7% of 15" in said and "at least 58 validation photos" in said
    assert "--field-budget" in said
    assert fieldcheck.budget_missed(_calibrated()) is None  # 600 photos: met, nothing said


def test_calibrate_prints_that_its_budget_was_not_met(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from typer.testing import CliRunner

    from leafdoc.cli.main import app

    field = {"threshold": 1.2, "val_refused": 0.0, "n_val": 15, "field_refused": 0.5, "n_field": 20, "budget": 0.0175}
    field.update(val_abstained_cv=0.0667, field_refused_cv=0.4, leafy_share=0.5)
    ood = {"threshold": 2.0, "val_refused": 0.0, "n_val": 15}
    monkeypatch.setattr("leafdoc.inference.calibrate.calibrate_model_dir", lambda *a, **k: ood)
    monkeypatch.setattr("leafdoc.modelfolder.read_card", lambda d: SimpleNamespace(field=field, abstain=None))
    result = CliRunner().invoke(app, ["calibrate", str(tmp_path), "--data", str(tmp_path)], terminal_width=200)
    said = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "abstains on 6.7% of unseen lab photos (all checks; budget 1.75%)" in said
    assert "warning: the abstention budget of 1.75% could not be met" in said
    assert "Too few validation photos: one photo is 6.7% of 15" in said
