"""Unasked (LEAFDOC_ONNX_VARIANT unset), the API serves a model version's int8 copy where it is safe (issue 57): its
card says it gives model.onnx's top-1 on >= 99% of the validation photos and the CPU has VNNI. Elsewhere, or when
LEAFDOC_ONNX_VARIANT says otherwise, model.onnx. On the starter model's own folder, through the registry, as
`leafdoc serve` loads it; the CPU's flags are given as /proc/cpuinfo would."""

from __future__ import annotations

import json
import shutil

import pytest
from tests.conftest import REPO

pytestmark = pytest.mark.integration

STARTER = REPO / "models" / "starter"
XEON = "processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 avx512f avx512_vnni\n"
ZEN1 = "processor\t: 0\nflags\t\t: fpu sse4_1 sse4_2 avx avx2 fma\n"


@pytest.mark.parametrize(
    ("cpuinfo", "agreement", "asked", "served"),
    [
        (XEON, 0.995, None, "model.int8.onnx"),
        (XEON, 0.985, None, "model.onnx"),
        (ZEN1, 0.995, None, "model.onnx"),
        (XEON, 0.995, "fp32", "model.onnx"),
    ],
)
def test_the_api_serves_int8_unasked_only_where_it_is_safe(tmp_path, monkeypatch, cpuinfo, agreement, asked, served):
    from leafdoc import cpuflags
    from leafdoc.data.catalog import Catalog
    from leafdoc.data.store import open_store
    from leafdoc.registry import Registry
    from leafdoc.service.serving import ModelHolder
    from leafdoc.settings import Settings

    card = json.loads((STARTER / "card.json").read_text())
    if "int8" not in (card.get("onnx_variants") or {}):
        pytest.skip(f"{STARTER} has no int8 copy")
    model = tmp_path / "model"
    shutil.copytree(STARTER, model)
    card["onnx_variants"]["int8"]["validation_vs_fp32"]["top1_agreement"] = agreement
    (model / "card.json").write_text(json.dumps(card))
    monkeypatch.delenv("LEAFDOC_INT8_ANY_CPU", raising=False)
    (tmp_path / "cpuinfo").write_text(cpuinfo)
    monkeypatch.setattr(cpuflags, "CPUINFO", tmp_path / "cpuinfo")
    monkeypatch.setattr(cpuflags.platform, "machine", lambda: "x86_64")

    s = Settings(home=tmp_path / "home", onnx_variant=asked, model_check_seconds=0)
    s.ensure_home()
    catalog = Catalog(s.catalog_url)
    try:
        registry = Registry(s, catalog, open_store(s.store_location))
        registry.register(model, source="test", serve="promote")
        predictor = ModelHolder(s, registry).current().predictor
        assert predictor.model_file.name == served
    finally:
        catalog.dispose()
