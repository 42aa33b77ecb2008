"""The served answer does not change with the faster photo preparation (issue 57): on real lab and field photos, the
model in models/starter (whatever its classes) answers the new preparation's photo exactly as it answered the old
one's (tests/prep_reference.py): the same top-1, the same refusals for the same reasons, the same photo problems,
and a framed box that moves by a few pixels at most. The leaf framing and the light-range white balance are turned
on whatever the card says, so they are always compared."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from tests import prep_reference as old
from tests.conftest import REPO, SHARED

from leafdoc.inference.predictor import Photo, Predictor

pytestmark = pytest.mark.integration

STARTER = REPO / "models" / "starter"
LIGHTS = (-0.1301, -0.0448, 0.0328, 0.1026)  # the starter's measured lights (card `input.light_range`, 2026-11-26)


def iou(a: list[int], b: list[int]) -> float:
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area if area else 1.0


def photos() -> list[Path]:
    """Every 20th PlantVillage photo (225, all classes) and every other field photo (213, 194-4000 px). All 4,926
    were compared once (docs/serving-speed.md)."""
    pv = sorted((SHARED / "plantvillage").glob("*/*.jpg"))
    field = sorted(p for d in ("field-corn", "field-mixed") for p in (SHARED / d).rglob("*") if p.is_file())
    if not pv or not field:
        pytest.skip(f"shared photos not found at {SHARED}")
    return pv[::20] + field[::2]


def test_the_faster_preparation_gets_the_same_answers():
    if not (STARTER / "model.onnx").is_file():
        pytest.skip(f"no model at {STARTER}")
    predictor = Predictor(STARTER, threads=1)
    predictor.prep = dataclasses.replace(
        predictor.prep,
        framing="leaf",
        white_balance="light-range",
        light_range=tuple(predictor.card.input.light_range or LIGHTS),
    )
    news, olds = [], []
    for path in photos():
        data = path.read_bytes()
        news.append(predictor.load(data, path.name))
        x, problems, img, frame, region, light = old.load(predictor, data, path.name)
        olds.append(Photo(x, problems, img, frame, region, light))

    framed = [(n.framed_box, o.framed_box) for n, o in zip(news, olds, strict=True) if n.framed_box or o.framed_box]
    assert all(a is not None and b is not None and iou(a, b) >= 0.95 for a, b in framed), framed
    assert [n.problems for n in news] == [o.problems for o in olds]
    assert [n.light_corrected for n in news] == [o.light_corrected for o in olds]

    def answers(batch: list[Photo]) -> list[tuple]:
        out = predictor.predict_arrays(np.stack([p.x for p in batch]), predictor.decision_outputs)
        rows = [{k: v[i] for k, v in out.items()} for i in range(len(batch))]
        decisions = [predictor.decide(row, p) for row, p in zip(rows, batch, strict=True)]
        return [
            (int(np.argmax(row["probabilities"])), d.abstained, d.reason, d.problems)
            for row, d in zip(rows, decisions, strict=True)
        ]

    now, before = answers(news), answers(olds)
    changed = [(i, a, b) for i, (a, b) in enumerate(zip(now, before, strict=True)) if a != b]
    assert not changed, changed
    # Not vacuous: some photos were framed, some lights corrected, some photos refused (field photos, mostly).
    assert len(framed) >= 3 and any(n.light_corrected for n in news), (len(framed),)
    assert any(abstained for _, abstained, _, _ in now) and any(not a for _, a, _, _ in now)
