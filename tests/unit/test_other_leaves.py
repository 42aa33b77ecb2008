"""The "one of its classes, or another leaf" check (inference/otherleaves.py): which of the bank's classes a lab's
names leave out, the regression it fits, when it is not fitted, and the decision it makes when serving."""

from __future__ import annotations

import numpy as np
import pytest

from leafdoc.inference import otherleaves as O
from leafdoc.inference.abstain import decide
from leafdoc.modelfolder import ModelCard

PV = (
    "Apple___Apple_scab",
    "Apple___healthy",
    "Corn_(maize)___Cercospora_leaf_spot Gray_leaf_spot",
    "Corn_(maize)___healthy",
    "Pepper,_bell___Bacterial_spot",
    "Potato___Early_blight",
    "Tomato___Early_blight",
    "Tomato___Late_blight",
    "Tomato___Leaf_Mold",
    "Tomato___Target_Spot",
    "Tomato___healthy",
)


@pytest.mark.parametrize(
    "lab, own",
    [
        (["Tomato___Early_blight"], {"Tomato___Early_blight"}),
        (["tomato_early_blight", "tomato healthy"], {"Tomato___Early_blight", "Tomato___healthy"}),
        (["early blight"], {"Tomato___Early_blight", "Potato___Early_blight"}),  # no crop named: every crop's
        (["maize_grey_leaf_spot"], {"Corn_(maize)___Cercospora_leaf_spot Gray_leaf_spot"}),  # other words, spellings
        (["Healthy"], {"Apple___healthy", "Corn_(maize)___healthy", "Tomato___healthy"}),
        (["tomato"], {n for n in PV if n.startswith("Tomato")}),  # a crop alone: all of it
        (["leaf mould"], {"Tomato___Leaf_Mold"}),
        (["bell pepper bacterial spot"], {"Pepper,_bell___Bacterial_spot"}),
        (["eb", "lb"], set()),  # nothing to go by: left to the check's own look (fit)
        (["apple_scab"], {"Apple___Apple_scab"}),
    ],
)
def test_a_labs_names_leave_out_the_banks_classes_they_name(lab, own):
    assert set(O.own_by_name(lab, PV)) == own


def _objective_gradient(x, t, weights, bias, c=O.C):
    """The gradient of the balanced, L2-regularised logistic loss on standardised x at (weights, bias)."""
    mean, scale = O._standardise(x)
    z = (x - mean) / scale
    w_std = weights * scale  # the same model on standardised features
    b_std = bias + mean @ weights
    n = len(t)
    sw = np.where(t == 1, n / (2 * t.sum()), n / (2 * (1 - t).sum()))
    p = 1 / (1 + np.exp(-(z @ w_std + b_std)))
    return z.T @ (sw * (p - t)) + w_std / c, float(sw @ (p - t))


def test_the_regression_reaches_the_minimum_of_its_objective():
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0, 1, (60, 40)), rng.normal(0.4, 1.3, (140, 40))] * rng.uniform(0.1, 10, 40)
    t = np.r_[np.zeros(60), np.ones(140)]
    w, b = O.fit_logistic(x, t)
    grad_w, grad_b = _objective_gradient(x, t, w, b)
    assert np.abs(grad_w).max() < 1e-4 and abs(grad_b) < 0.05  # the intercept carries a 1e-4 penalty
    s = O.scores(x, w, b)
    assert s[t == 1].mean() > 0.6 > 0.4 > s[t == 0].mean()


def _bank(rng, classes, per_class=30, dim=24):
    centres = {c: rng.normal(0, 3, dim) for c in classes}
    feats = np.concatenate([centres[c] + rng.normal(0, 1, (per_class, dim)) for c in classes])
    y = np.repeat(np.arange(len(classes)), per_class)
    prep = {"size": 224, "framing": "leaf", "white_balance": "none", "morphology": "none", "morph_kernel": 3}
    probe = rng.normal(0, 1, dim).astype(np.float32)
    bank = O.Bank(feats.astype(np.float16), y, tuple(classes), probe, prep, "test-bank", "made up")
    return bank, centres


def test_the_check_refuses_other_leaves_and_leaves_out_a_bank_class_that_is_the_labs_own_under_another_name():
    rng = np.random.default_rng(1)
    classes = [f"Crop{i}___condition_{i}" for i in range(8)]
    bank, centres = _bank(rng, classes)
    # The lab's classes: "cond_a" is the bank's class 0 under a name nothing matches; "mine" is new to the bank.
    mine = rng.normal(0, 3, 24)
    lab = np.r_[centres[classes[0]] + rng.normal(0, 1, (40, 24)), mine + rng.normal(0, 1, (40, 24))]
    y = np.repeat([0, 1], 40)
    section = O.fit(lab, y, ["cond_a", "mine"], bank.prep, bank.probe, bank)
    assert section["fitted"], section
    assert list(section["left_out"]) == [classes[0]] and "looks like your classes" in section["left_out"][classes[0]]
    check = O.OtherLeavesCheck(section)
    fresh_own = np.r_[centres[classes[0]] + rng.normal(0, 1, (50, 24)), mine + rng.normal(0, 1, (50, 24))]
    fresh_other = np.concatenate([centres[c] + rng.normal(0, 1, (20, 24)) for c in classes[1:]])
    assert (check.score(fresh_own) <= check.threshold).mean() >= 0.85
    assert (check.score(fresh_other) > check.threshold).mean() >= 0.9
    assert section["own_answered_out_of_fold"] >= 0.9 and len(section["weights"]) == 24


def test_not_fitted_where_the_banks_features_are_not_the_models():
    rng = np.random.default_rng(2)
    bank, centres = _bank(rng, [f"Bean___c{i}" for i in range(8)])
    lab, y = rng.normal(0, 1, (20, 24)), np.repeat([0, 1], 10)
    other_size = {**bank.prep, "size": 160}
    section = O.fit(lab, y, ["a", "b"], other_size, bank.probe, bank)
    assert not section["fitted"] and "size 224, not 160" in section["why_not"]
    fine_tuned = bank.probe + rng.normal(0, 0.5, 24)  # the same image, another network
    section = O.fit(lab, y, ["a", "b"], bank.prep, fine_tuned, bank)
    assert not section["fitted"] and "not the bank's" in section["why_not"]
    # A model of a crop that is every class of the bank: too few other leaves left
    section = O.fit(lab, y, ["bean", "x"], bank.prep, bank.probe, bank)
    assert not section["fitted"] and "too few other leaves" in section["why_not"] and len(section["left_out"]) == 8


def test_a_model_is_fitted_against_the_bank_of_its_own_network(tmp_path, monkeypatch):
    """Two banks (ImageNet Lite0's, the starter backbone's): a model of either network gets the check from its own
    bank; a model of neither gets none, and the card says the banks' networks."""
    rng = np.random.default_rng(3)
    imagenet, _ = _bank(rng, [f"Crop{i}___c{i}" for i in range(8)])
    starter, centres = _bank(rng, [f"Other{i}___c{i}" for i in range(8)])
    paths = (tmp_path / "leaf_bank.npz", tmp_path / "leaf_bank_starter.npz")
    imagenet.save(paths[0])
    starter.save(paths[1])
    monkeypatch.setattr(O, "BANK_FILES", paths)
    lab, y = rng.normal(0, 3, 24) + rng.normal(0, 1, (40, 24)), np.repeat([0, 1], 20)
    for bank in (imagenet, starter):
        chosen, refused = O.gate(["a", "b"], bank.prep, bank.probe)
        assert refused is None and np.array_equal(chosen.probe, bank.probe)
    # Fitted against the starter's bank: its classes are the ones it learnt to refuse.
    check = O.OtherLeavesCheck(O.fit(lab, y, ["a", "b"], starter.prep, starter.probe))
    other = np.concatenate([centres[c] + rng.normal(0, 1, (10, 24)) for c in centres])
    assert (check.score(other) > check.threshold).mean() >= 0.9
    chosen, refused = O.gate(["a", "b"], starter.prep, rng.normal(0, 1, 24))  # a network of neither
    assert chosen is None and "not the bank's" in refused["why_not"] and "starter's backbone" in refused["why_not"]


@pytest.mark.parametrize("path", O.BANK_FILES, ids=lambda p: p.name)
def test_the_shipped_banks_are_whole(path):
    bank = O.Bank.load(path)
    assert len(bank.classes) >= 30 and bank.features.shape == (len(bank.y), 1280)
    assert np.isfinite(bank.features.astype(np.float32)).all() and np.isfinite(bank.probe).all()
    counts = np.bincount(bank.y, minlength=len(bank.classes))
    assert counts.min() >= 20  # every class there, with its photos
    # Features of different photos differ (not one vector copied), and classes differ on average.
    assert np.linalg.norm(np.diff(bank.features[:5].astype(np.float32), axis=0), axis=1).min() > 0.1
    means = np.stack([bank.features[bank.y == k].astype(np.float32).mean(0) for k in range(len(bank.classes))])
    assert np.linalg.norm(means[0] - means[-1]) > 1.0
    assert bank.prep["size"] == 224 and "CC BY-SA" in bank.source
    # The photos' colour histograms (ood.colour_features: square roots of two normalised histograms), for no_leaf_from
    colours = bank.colours.astype(np.float32)
    assert colours.shape == (len(bank.y), 80)
    hue_saturation, brightness = (colours[:, :72] ** 2).sum(1), (colours[:, 72:] ** 2).sum(1)
    assert np.allclose(hue_saturation, 1, atol=0.02) and np.allclose(brightness, 1, atol=0.02)
    assert np.linalg.norm(np.diff(colours[:5], axis=0), axis=1).min() > 0.01


def _card(threshold=0.8, fitted=True):
    return ModelCard.from_dict(
        {
            "abstain": {"min_confidence": 0.5},
            "other_leaves": {"format": 1, "fitted": fitted, "threshold": threshold, "bias": 0.0, "weights": [0.0]},
        }
    )


def test_a_leaf_above_the_threshold_is_refused_as_unknown_and_one_below_is_answered():
    probs, labels = np.array([0.9, 0.05, 0.05]), ["Tomato___a", "Tomato___b", "Tomato___c"]
    refused = decide(probs, labels, _card(), other_score=0.95)
    assert refused.abstained and refused.reason == "unknown_leaf" and "not taught" in refused.message
    assert not decide(probs, labels, _card(), other_score=0.5).abstained
    assert not decide(probs, labels, _card(fitted=False), other_score=0.99).abstained  # no check fitted
    assert not decide(probs, labels, ModelCard.from_dict({}), other_score=0.99).abstained  # a card without one


def test_no_leaf_from_is_where_most_of_the_banks_other_leaves_score_under_the_not_a_leaf_check():
    """The bank's other leaves (less the lab's own classes) scored by the model's not-a-leaf check: no_leaf_from is the
    score NO_LEAF_SHARE of them reach; none without colours in the bank or without a check."""
    rng = np.random.default_rng(4)
    bank, _ = _bank(rng, [f"Crop{i}___c{i}" for i in range(4)], per_class=100)
    bank = O.Bank(*[getattr(bank, f) for f in ("features", "y", "classes", "probe", "prep", "name", "source")],
                  colours=rng.random((400, 80)).astype(np.float16))  # fmt: skip

    def scores_of(features, colours):  # a stand-in for OodCheck.scores_of: class k's photos score 10k + 0..9.9
        assert features.shape[0] == colours.shape[0] == 300
        return np.concatenate([10 * k + np.arange(100) / 10 for k in (1, 2, 3)])

    section = O.no_leaf_section({"Crop0___c0": "named like your class"}, bank, scores_of)
    kept = scores_of(np.zeros((300, 1)), np.zeros((300, 1)))  # classes 1-3: the lab's own class 0 left out
    assert section["no_leaf_from"] == pytest.approx(np.quantile(kept, 0.95), abs=1e-6)
    assert "95% of the bank's 300 other leaves" in section["no_leaf_rule"]
    assert O.no_leaf_section({}, bank, None) == {}
    plain = O.Bank(*[getattr(bank, f) for f in ("features", "y", "classes", "probe", "prep", "name", "source")])
    assert O.no_leaf_section({}, plain, scores_of) == {}


def _both(no_leaf_from=None):
    card = _card()
    card.ood = {"threshold": 10.0}
    if no_leaf_from is not None:
        card.other_leaves = {**card.other_leaves, "no_leaf_from": no_leaf_from}
    return card


@pytest.mark.parametrize(
    "ood_score, other_score, no_leaf_from, reason",
    [
        (12.0, 0.95, 15.0, "unknown_leaf"),  # both refuse, below no_leaf_from: a leaf of another kind
        (16.0, 0.95, 15.0, "not_a_leaf"),  # both refuse, above it: no leaf
        (12.0, 0.50, 15.0, "not_a_leaf"),  # the other-leaves check takes it for one of the lab's: no leaf
        (12.0, 0.95, None, "not_a_leaf"),  # a card from before no_leaf_from: the not-a-leaf check speaks first
        (8.0, 0.95, 15.0, "unknown_leaf"),  # like the lab's leaves, but another kind
        (8.0, 0.50, 15.0, None),  # answered
    ],
)
def test_which_word_a_photo_both_checks_refuse_gets(ood_score, other_score, no_leaf_from, reason):
    probs, labels = np.array([0.9, 0.05, 0.05]), ["Tomato___a", "Tomato___b", "Tomato___c"]
    said = decide(probs, labels, _both(no_leaf_from), ood_score=ood_score, other_score=other_score)
    assert said.reason == reason and said.abstained == (reason is not None)
