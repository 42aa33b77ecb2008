"""`leafdoc calibrate` as a user runs it: an old model folder without the not-a-leaf check gets one fitted on
its own training and validation leaves and on non-leaf photos, and then refuses other non-leaf photos it
never saw while still answering leaves. The starter model is used: the session's tiny model has 3
validation photos, fewer than calibration needs (10)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from tests.conftest import PLANTVILLAGE, REPO, SHARED, starter_on_shared
from tests.lighting import WARM, lit_jpeg
from typer.testing import CliRunner

from leafdoc.cli.main import app
from leafdoc.inference.calibrate import split_photos
from leafdoc.inference.predictor import Predictor

STARTER = REPO / "models" / "starter"
DAISIES = SHARED / "flowers" / "daisy"  # given to calibrate
ROSES = SHARED / "flowers" / "roses"  # never seen by it
CIFAR_TEST = SHARED / "cifar10" / "test"  # never seen by it


def refused_share(p: Predictor, files) -> float:
    return float(np.mean([r.reason == "not_a_leaf" for r in p.predict_files(files)]))


def test_calibrate_fits_the_not_a_leaf_check_of_an_old_model_folder(tmp_path, settings):
    if not (DAISIES.is_dir() and ROSES.is_dir() and CIFAR_TEST.is_dir() and PLANTVILLAGE.is_dir()):
        pytest.skip(f"shared datasets not found at {SHARED}")
    old = tmp_path / "old"  # a model folder from before the check: no ood.npz, no `ood` in the card
    starter_on_shared(old, ("card.json", "labels.json", "model.onnx", "split.json"), thin=True)
    card = json.loads((old / "card.json").read_text())
    del card["ood"]
    (old / "card.json").write_text(json.dumps(card))
    roses = sorted(p for p in ROSES.iterdir() if p.suffix == ".jpg")[::5]
    cifar = [f for c in sorted(CIFAR_TEST.iterdir()) for f in sorted(c.iterdir())[:6]]
    assert Predictor(old).ood is None
    assert refused_share(Predictor(old), roses) == 0.0  # the softmax alone never says "not a leaf"
    # --drop-field alone keeps the not-a-leaf check as fitted: here there is none, and it says how to fit one.
    result = CliRunner().invoke(app, ["calibrate", str(old), "--data", str(PLANTVILLAGE), "--drop-field"])
    said = f"{result.exception.message} {result.exception.hint}"  # leafdoc's main prints these two, no traceback
    assert result.exit_code != 0 and str(old) in said and "no not-a-leaf check to keep" in said, said
    assert "--nonleaf" in said and "ood" not in json.loads((old / "card.json").read_text())

    result = CliRunner().invoke(
        app, ["calibrate", str(old), "--data", str(PLANTVILLAGE), "--nonleaf", str(DAISIES), "--json"]
    )
    assert result.exit_code == 0, result.output
    section = json.loads(result.stdout)
    card = json.loads((old / "card.json").read_text())
    assert card["ood"] == section and (old / section["file"]).is_file()
    assert card["training"]["nonleaf_dirs"] == [str(DAISIES.resolve())]  # retraining recalibrates with them
    split = json.loads((old / "split.json").read_text())
    assert section["n_val"] == len(split["val"]) and section["n_nonleaf"] == 300
    assert section["nonleaf_sources"] == ["flowers/daisy (300 photos)"]
    assert section["threshold"] > 0 and section["val_refused"] <= 0.011  # the default target: 1% of leaves
    assert section["nonleaf_refused"] >= 0.9
    assert section["weights_rule"].startswith("logistic regression")  # fitted with non-leaf photos

    p = Predictor(old)
    assert p.ood is not None and p.decision_outputs == ["probabilities", "features"]
    assert refused_share(p, roses) >= 0.8, "flowers it never saw"
    # CIFAR-10's 32 px photos are refused as too small before the check; the check alone refuses them too
    x = np.stack([p.preprocess(f) for f in cifar])
    scores = p.ood_scores(p.predict_arrays(x, ["features"])["features"], x)
    assert np.mean(scores > section["threshold"]) >= 0.8, "CIFAR-10 test photos"
    # the starter's test photos among the shared ones (it learnt from all of PlantVillage: most shared ones trained it)
    test_leaves = [path for path, _ in split_photos(PLANTVILLAGE, split, p.labels)["test"]]
    assert len(test_leaves) >= 130 and refused_share(p, test_leaves) <= 0.03, "test leaves are answered"

    # --answer-share: the "not sure" threshold set again, to answer a share S of the validation photos present here
    # (with --drop-field and no --nonleaf, the not-a-leaf check is kept as fitted: only the validation photos are
    # read). The threshold expected is computed here from the photos' own confidences: the largest answering S, never
    # above MAX_MIN_CONFIDENCE. S is the first of 0.99, 0.95, 0.9 whose threshold differs from the card's, so the
    # option is seen to act whatever the model's confidences (the starter is sure enough of these photos that for
    # 0.95 the cap decides).
    from leafdoc.inference.abstain import MAX_MIN_CONFIDENCE

    before, ood = card["abstain"]["min_confidence"], card["ood"]
    val_leaves = [path for path, _ in split_photos(PLANTVILLAGE, split, p.labels)["val"]]
    reader = Predictor(old)
    x = np.stack([reader.load(f).x for f in val_leaves])
    conf = reader.predict_arrays(x, ["probabilities"])["probabilities"].max(1)

    def expected(share: float) -> float:
        return min(float(np.quantile(conf, 1 - share, method="lower")), MAX_MIN_CONFIDENCE)

    share = next(s for s in (0.99, 0.95, 0.9) if abs(expected(s) - before) > 1e-4)
    result = CliRunner().invoke(
        app, ["calibrate", str(old), "--data", str(PLANTVILLAGE), "--drop-field", "--answer-share", str(share)]
    )
    assert result.exit_code == 0, result.output
    card = json.loads((old / "card.json").read_text())
    abstain = card["abstain"]
    assert abstain["min_confidence"] == pytest.approx(expected(share), abs=2e-6), (share, abstain)
    covered = float(np.mean(conf >= abstain["min_confidence"]))
    assert abstain["val_coverage"] == pytest.approx(covered, abs=1e-3) and covered >= share, abstain
    assert f"answers {covered:.1%}" in result.stdout, result.stdout
    assert abstain["rule"].endswith(f"answering >= {share:.0%} of validation images")
    assert card["training"]["abstain_target_coverage"] == share  # a retrain sets its threshold the same way
    assert card["ood"] == ood
    # Served: the photos under the new threshold are "not sure", and only those (other checks may refuse a few).
    unsure = np.mean([r.reason == "unsure" for r in Predictor(old).predict_files(val_leaves)])
    assert unsure <= 1 - covered + 1e-9 and unsure >= 1 - covered - 0.03, (unsure, covered)


def test_calibrate_with_the_light_range_measures_the_training_lights_and_corrects_only_others(tmp_path):
    """`leafdoc calibrate --light-range` on the starter (trained before the option): the lights are read off the
    sheets of its own training photos, the card keeps them (and a retrain measures its own), the checks are refitted
    on photos so corrected, and a photo under a warmer light than nearly all of them is served as a typical one
    while a photo lit as the training photos were reaches the model as it was. A model trained on sheet-balanced
    photos is refused, unchanged."""
    from leafdoc.imaging.leafcut import light_of, light_range

    if not (DAISIES.is_dir() and PLANTVILLAGE.is_dir()):
        pytest.skip(f"shared datasets not found at {SHARED}")
    folder = starter_on_shared(
        tmp_path / "starter", ("card.json", "labels.json", "model.onnx", "split.json", "ood.npz"), thin=True
    )
    card = json.loads((folder / "card.json").read_text())
    card["field"] = None  # no unlike-training check to refit: the not-a-leaf one alone, to keep this test short
    card["input"]["white_balance"] = "none"  # the starter as it was before it got the option
    card["input"].pop("light_range", None)
    card["training"].pop("white_balance", None)
    (folder / "card.json").write_text(json.dumps(card))
    plain = tmp_path / "plain"  # the model before: what it makes of a photo is the reference
    shutil.copytree(folder, plain)

    sheet = tmp_path / "sheet"
    shutil.copytree(folder, sheet)
    balanced = json.loads((sheet / "card.json").read_text())
    balanced["input"]["white_balance"] = "sheet"
    (sheet / "card.json").write_text(json.dumps(balanced))
    before = {p.name: p.read_bytes() for p in sheet.iterdir()}
    result = CliRunner().invoke(app, ["calibrate", str(sheet), "--data", str(PLANTVILLAGE), "--light-range"])
    assert result.exit_code != 0 and "balanced to their sheet" in result.exception.message
    assert {p.name: p.read_bytes() for p in sheet.iterdir()} == before  # nothing written

    args = ["calibrate", str(folder), "--data", str(PLANTVILLAGE), "--nonleaf", str(DAISIES), "--light-range"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    card = json.loads((folder / "card.json").read_text())
    assert card["input"]["white_balance"] == "light-range" and card["training"]["white_balance"] == "light-range"
    old, new = Predictor(plain), Predictor(folder)
    assert old.prep.white_balance == "none"
    split = json.loads((folder / "split.json").read_text())
    photos = split_photos(PLANTVILLAGE, split, new.labels)
    train_lights = [light_of(old.preprocess(path)) for path, _ in photos["train"]]
    lights = card["input"]["light_range"]
    assert lights == pytest.approx(light_range(train_lights), abs=0.015)  # read off the same photos: the same quantiles
    assert card["ood"]["n_val"] == len(split["val"]) and card["ood"]["nonleaf_refused"] >= 0.9
    served, landed = {"inside": 0, "warm": 0}, []
    for path, _ in photos["val"][:40]:
        x = old.preprocess(path)
        if light_of(x) is None:
            continue
        if lights[0] <= light_of(x) <= lights[3]:  # lit as the training photos were: the model sees it as before
            served["inside"] += 1
            assert np.array_equal(new.preprocess(path), x)
        photo = new.load(warm_bytes := lit_jpeg(path, WARM), "warm.jpg").x
        if light_of(old.load(warm_bytes, "warm.jpg").x) > lights[3]:  # warmer than nearly all training photos
            served["warm"] += 1
            landed.append(abs(light_of(photo) - lights[2]))  # ... served as a typical one
    assert served["inside"] >= 20 and served["warm"] >= 15, served
    # Read again off the served photo (framed, 160 px), the light is the typical one: nearly always within 0.015 (2 of
    # the 30 warm photos of the starter's validation split land 0.026 and 0.033 away: their sheet shows less once
    # framed, and a corrected channel clips), and the median well inside it.
    assert np.mean(np.array(landed) <= 0.015) >= 0.9 and np.median(landed) <= 0.006, landed


def test_calibrate_field_learnt_sets_the_starters_threshold_again_and_a_failed_fit_keeps_the_card(tmp_path):
    """`calibrate --field-learnt` (the half that sets field.learnt: cli/model_folder.py learn_field_crops) on the
    starter's own field photos gives back the card's threshold and figures to the digit: 119 validation field photos
    (sha256 8-b), the lowest confidence at which 85% of those answered are right, answered by the lab rules or that
    threshold. A fit that fails (too few validation photos) says which folder, and leaves the card as it was."""
    from leafdoc.cli.model_folder import learn_field_crops
    from leafdoc.core.errors import ConfigError

    folders = [SHARED / "field-corn", SHARED / "field-mixed"]
    if not all(f.is_dir() for f in folders):
        pytest.skip(f"shared field photos not found at {SHARED}")
    model = tmp_path / "starter"
    model.mkdir()
    for f in STARTER.iterdir():
        (model / f.name).symlink_to(f) if f.name != "card.json" else shutil.copy2(f, model / f.name)
    shipped = json.loads((STARTER / "card.json").read_text())["field"]["learnt"]
    card = json.loads((model / "card.json").read_text())
    card["field"]["learnt"] = {**shipped, "min_confidence": 0.5}  # a stale threshold, replaced by the fit
    (model / "card.json").write_text(json.dumps(card))

    learn_field_crops(model, folders)
    learnt = json.loads((model / "card.json").read_text())["field"]["learnt"]
    assert learnt == shipped, (learnt, shipped)

    few = tmp_path / "few" / "Corn_(maize)___Common_rust_"
    few.mkdir(parents=True)
    val = [f for f in sorted((SHARED / "field-corn" / few.name).iterdir()) if f.is_file()]
    from leafdoc.inference.fieldcrops import field_part

    for f in [f for f in val if field_part(f.read_bytes()) == "val"][:3]:
        shutil.copy2(f, few / f.name)
    before = (model / "card.json").read_bytes()
    with pytest.raises(ConfigError) as error:
        learn_field_crops(model, [few.parent])
    assert "only 3 validation field photos" in str(error.value) and str(few.parent) in str(error.value)
    assert (model / "card.json").read_bytes() == before  # the threshold it had is still there
