"""`leafdoc models add` and `leafdoc models promote` refuse a model worse than the one serving now on the same photos
(the new model's test split), with both figures in the message, unless --force (lifecycle/against_serving.py).
Issue 54: a lab's 3-class model at 41.7% was added as version 2 without a word, and its advice served."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from tests.conftest import PLANTVILLAGE
from tests.integration.test_models_cli import models

from leafdoc.core.settings import Settings
from leafdoc.inference.predictor import Predictor
from leafdoc.lifecycle.workspace import Workspace
from leafdoc.model_versions import starter_model_dir
from leafdoc.modelfolder import read_split

# Classes with 7 or more photos in the starter's test split among the shared ones (it trained on most shared photos)
CLASSES = ("Apple___Apple_scab", "Potato___healthy", "Tomato___healthy")


def photos_the_starter_never_saw(dest, per_class: int = 10):
    """PlantVillage photos from the starter's own test split: the comparison leaves out photos the serving model
    trained on, and a lab's photos are never among those."""
    if not PLANTVILLAGE.is_dir():
        pytest.skip(f"shared datasets not found at {PLANTVILLAGE}")
    unseen = set(read_split(starter_model_dir())["test"])
    for cls in CLASSES:
        (dest / cls).mkdir(parents=True)
        kept = [
            f for f in sorted((PLANTVILLAGE / cls).iterdir()) if hashlib.sha256(f.read_bytes()).hexdigest() in unseen
        ]
        for f in kept[:per_class]:
            shutil.copy2(f, dest / cls / f.name)
    return dest


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """A data home serving the starter, and a model trained in it on the lab's photos that has learnt next to
    nothing (16 px, one epoch from scratch)."""
    from leafdoc.data.ingest import ingest
    from leafdoc.lifecycle.training import prepare, train_model
    from leafdoc.train.config import TrainConfig

    monkeypatch.setenv("LEAFDOC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LEAFDOC_MODEL_DIR", raising=False)
    settings = Settings.load()
    settings.ensure_home()
    folder = photos_the_starter_never_saw(tmp_path / "mydata")
    cfg = TrainConfig(backbone="baseline_cnn", weights="none", image_size=16, epochs=1, batch_size=8)
    with Workspace.open(settings) as ws:
        assert ws.registry.seed() == 1
        ingest(folder, ws.catalog, ws.store, "mydata")
        td = prepare(ws, "mydata", cfg)
        card = train_model(cfg, td, tmp_path / "mymodel").card
    return tmp_path / "mymodel", card, folder


def starter_accuracy_on(model_dir, folder) -> float:
    """The starter's accuracy on the photos of `folder` in model_dir's test split, computed here on its own."""
    test = set(read_split(model_dir)["test"])
    starter = Predictor(starter_model_dir())
    right = []
    for f in sorted(folder.rglob("*.jpg")) + sorted(folder.rglob("*.JPG")):
        if hashlib.sha256(f.read_bytes()).hexdigest() in test:
            probs = starter.predict_arrays(starter.preprocess(f)[None])["probabilities"][0]
            right.append(starter.labels[int(np.argmax(probs))] == f.parent.name)
    return float(np.mean(right))


def test_a_worse_model_is_refused_with_both_figures_unless_forced(lab):
    model, card, folder = lab
    ours, theirs = card.test_metrics["accuracy"], starter_accuracy_on(model, folder)
    assert ours < theirs, (ours, theirs)  # the setting of the test: a model that learnt next to nothing

    code, text = models("add", str(model), "--promote")
    assert code == 1, text
    assert f"accuracy {ours:.1%} against {theirs:.1%} for version 1" in text, text
    assert "--force" in text and "not added" in text
    assert json.loads(models("list", "--json")[1])["serving"] == 1
    assert len(json.loads(models("list", "--json")[1])["versions"]) == 1  # nothing was added

    code, text = models("add", str(model), "--force", "--json")
    added = json.loads(text)
    assert code == 0 and {k: added[k] for k in ("version", "added", "serving", "promoted")} == {
        "version": 2,
        "added": True,
        "serving": 1,
        "promoted": False,
    }, text
    assert f"accuracy {ours:.1%}, against {theirs:.1%} for version 1" in added["notes"][0], added

    code, text = models("promote", "2")
    assert code == 1 and f"accuracy {ours:.1%} against {theirs:.1%} for version 1" in text and "not promoted" in text
    assert json.loads(models("list", "--json")[1])["serving"] == 1

    # What `leafdoc train` warned of its few test photos is the card's first limitation, so `models show` says it
    # long after the run (a lab's 4-photo model read "Test accuracy 100.0% of 4 test photos" and nothing else).
    from leafdoc.lifecycle.caveats import test_chance_caveat

    warned = test_chance_caveat(card.test_metrics, len(CLASSES), 0.15)
    assert warned is not None and card.limitations.split("\n")[0] == warned[:1].upper() + warned[1:]
    code, text = models("show", "2")
    assert code == 0 and " ".join(warned[1:].split()) in " ".join(text.split()), text

    code, text = models("promote", "2", "--force", "--reason", "we know")
    assert code == 0, text
    # what serving it means, said before it serves: both figures, and the starter's classes it does not know
    said = " ".join(text.split())
    n = len(read_split(model)["test"])
    assert f"On {n} photos of its test split: accuracy {ours:.1%}, against {theirs:.1%} for version 1" in said
    assert "It knows 3 classes where version 1 knew 34: photos of the 31 it does not know (Apple___Black_rot," in said
    assert json.loads(models("list", "--json")[1])["serving"] == 2


def test_what_serving_another_model_changes_is_said(tmp_path):
    """A corn model promoted over a tomato one, and a lab's model of 4 test photos, were served with "version 3 serves
    from now on" and nothing else: the figures (the serving model scored 0% on photos of classes it does not know)
    said the new one was better. Now the sentences say when the figures cannot tell the two apart."""
    from types import SimpleNamespace

    from leafdoc.lifecycle.against_serving import what_changes

    def folder(name, labels):
        (tmp_path / name).mkdir()
        (tmp_path / name / "labels.json").write_text(json.dumps(labels))
        return tmp_path / name

    tomato = folder("tomato", ["early blight", "healthy", "late blight"])
    corn = folder("corn", ["common rust", "gray leaf spot"])
    ws = SimpleNamespace(registry=SimpleNamespace(local_dir=lambda version: tomato))
    decision = {"metric": "accuracy", "candidate": 1.0, "serving": 0.0, "n_images": 4}
    said = what_changes(ws, corn, 3, decision)
    assert said[0] == (
        "On 4 photos of its test split: accuracy 100.0%, against 0.0% for version 3; 4 photos are too few to tell "
        "two models apart."
    )
    assert "shares no class with version 3" in said[1] and "do not compare the two models" in said[1]
    assert said[2] == (
        "It knows 2 classes where version 3 knew 3: photos of the 3 it does not know (early blight, healthy and "
        "late blight) are answered as one of its own or refused."
    )
    same = what_changes(
        ws, folder("tomato2", ["early blight", "healthy", "late blight"]), 3, {**decision, "n_images": 40}
    )
    assert same == ["On 40 photos of its test split: accuracy 100.0%, against 0.0% for version 3."]
    assert what_changes(ws, corn, None, None) == []  # nothing serves: nothing changes
