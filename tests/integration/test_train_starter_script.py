"""scripts/train_starter.py's --drop-photos: the training photos a file names (benchmarks/label_check.py's photos
whose label looks wrong) are not shown in training, and the split stays as it was (docs/retrain-starter.md)."""

from __future__ import annotations

import hashlib
import sys

import pytest
from tests.conftest import REPO, make_leaf_folder

sys.path.insert(0, str(REPO / "scripts"))
import train_starter  # noqa: E402


class Trained(Exception):
    """Raised by the stand-in for training: the run got as far as training with these data."""


def test_drop_photos_leaves_the_listed_training_photos_out_of_every_epoch(tmp_path, monkeypatch):
    from leafdoc.lifecycle import training

    full = make_leaf_folder(tmp_path / "full")
    first = sorted(p for p in full.iterdir())[0]
    listed = {hashlib.sha256(f.read_bytes()).hexdigest() for f in first.iterdir()}
    drop = tmp_path / "drop.txt"
    drop.write_text("\n".join(sorted(listed)) + "\n")

    def stand_in(cfg, td, out, **kw):
        raise Trained(td)

    monkeypatch.setattr(training, "train_model", stand_in)
    monkeypatch.setenv("LEAFDOC_HOME", str(tmp_path / "home"))  # the script sets it; restored after the test
    args = ["--full", full, "--out", tmp_path / "model", "--home", tmp_path / "home", "--image-size", "16"]
    with pytest.raises(Trained) as ran:
        train_starter.main([*map(str, args), "--drop-photos", str(drop)])
    td = ran.value.args[0]
    shown = {td.shas[i] for i in td.training_indices()}
    training_photos = {td.shas[i] for i in td.indices("train")}
    assert listed & training_photos and not listed & shown  # listed, in the training split, and never shown
    assert shown == training_photos - listed  # every other training photo is
    assert td.counts()["train"] == len(training_photos) and sum(td.counts().values()) == len(td.shas)
