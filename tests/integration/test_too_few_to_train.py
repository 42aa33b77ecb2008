"""A lab's upload of three photos a class, trained from the page with the starter's settings: the job failed saying
"only 2 of the 2 training photos show a sheet around the leaf ... Train with --white-balance none", a flag the page
does not have, about a problem the photos did not have. Too few photos is said as too few photos."""

from __future__ import annotations

import shutil

import pytest
from tests.conftest import PLANTVILLAGE

from leafdoc.core.errors import ConfigError
from leafdoc.data.ingest import ingest
from leafdoc.lifecycle.training import prepare
from leafdoc.lifecycle.workspace import Workspace
from leafdoc.train.config import TrainConfig


def test_three_photos_a_class_are_too_few_to_train_and_said_so(settings, tmp_path):
    if not PLANTVILLAGE.is_dir():
        pytest.skip("shared datasets not found")
    root = tmp_path / "few"
    for label in ("Tomato___healthy", "Tomato___Early_blight"):
        (root / label).mkdir(parents=True)
        for f in sorted((PLANTVILLAGE / label).glob("*.jpg"))[:3]:
            shutil.copy(f, root / label)
    ws = Workspace.open(settings)
    try:
        ingest(root, ws.catalog, ws.store, "few")
        with pytest.raises(ConfigError) as err:
            prepare(ws, "few", TrainConfig(image_size=32, white_balance="light-range"))
    finally:
        ws.close()
    said = f"{err.value.message} {err.value.hint}"
    assert "few: only 2 photos are left to train on once the validation and test photos are set aside" in said
    assert "has 3 in all): too few to train a model" in said and "Add photos: at least 20 a class" in said
    assert "white-balance" not in said and "sheet" not in said
