"""A recipe's training-only extra source (data.extra; field-corn in recipes/field-corn-learning.yaml): its halves
are fixed by content (sha256 0-7 trained on, 8-f held out), and adding its training half to the dataset leaves
the main folder's train/val/test split exactly as it is without it, so runs with and without the extra photos
are scored on the same test and validation photos as a recipe that never heard of field photos."""

from __future__ import annotations

import hashlib

import pytest
from tests.conftest import SHARED

from leafdoc.data.ingest import ingest
from leafdoc.experiments.data import Selection, select, write_csv
from leafdoc.experiments.recipe import load_recipe
from leafdoc.lifecycle.training import prepare
from leafdoc.lifecycle.workspace import Workspace
from leafdoc.train.config import TrainConfig

pytestmark = pytest.mark.skipif(not (SHARED / "field-corn").is_dir(), reason=f"field-corn not found in {SHARED}")


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_extra_source_halves_by_content_and_main_split_unchanged(settings, tmp_path):
    recipe = load_recipe("field-corn-learning")
    sel = select(recipe, SHARED, quick=True)
    assert sel.extra_files and sel.test_files
    assert all(_sha(p)[0] in "01234567" for p, _ in sel.extra_files)
    assert all(_sha(p)[0] in "89abcdef" for p, _ in sel.test_files)
    assert all(p.is_relative_to(SHARED / "field-corn") for p, _ in sel.extra_files + sel.test_files)
    assert {c for _, c in sel.extra_files} == set(sel.classes)  # every class gets field photos

    ws = Workspace.open(settings)
    try:
        lab_only = Selection(sel.root, sel.files, [], sel.classes, "lab")  # as a recipe without data.extra
        ingest(write_csv(lab_only, tmp_path / "lab.csv"), ws.catalog, ws.store, "lab")
        ingest(write_csv(sel, tmp_path / "both.csv"), ws.catalog, ws.store, "both")
        cfg = TrainConfig(image_size=16)
        extra = sel.extra_shas()
        lab = dict(zip(prepare(ws, "lab", cfg).shas, prepare(ws, "lab", cfg).split, strict=True))
        both_data = prepare(ws, "both", cfg, train_only=extra)
        both = dict(zip(both_data.shas, both_data.split, strict=True))
    finally:
        ws.close()
    assert set(both) == set(lab) | extra and len(extra) == len(sel.extra_files)
    assert {s: part for s, part in both.items() if s not in extra} == lab  # same train, val and test
    assert {both[s] for s in extra} == {"train"}  # extra photos are never validated or tested on
