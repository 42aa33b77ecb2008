"""Unasked (LEAFDOC_ONNX_VARIANT unset), the API serves a model version's int8 copy where it is safe (issue 57): its
card says it gives model.onnx's top-1 on >= 99% of the validation photos and the CPU has VNNI. Elsewhere, or when
LEAFDOC_ONNX_VARIANT says otherwise, model.onnx. On the starter model's own folder, through the registry, as
`leafdoc serve` loads it; the CPU's flags are given as /proc/cpuinfo would."""

from __future__ import annotations

import json
import shutil

import pytest
from tests.conftest import PLANTVILLAGE, starter_on_shared

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def with_int8(tmp_path_factory):
    """The starter with its int8 copy, made as `leafdoc export --format onnx-int8` makes it (models/ does not ship
    one: 40 MB budget), calibrated on 40 of its training photos among the shared ones to keep this short."""
    from leafdoc.inference.quantize import quantize_model_dir

    if not PLANTVILLAGE.is_dir():
        pytest.skip(f"shared datasets not found at {PLANTVILLAGE}")
    folder = starter_on_shared(tmp_path_factory.mktemp("int8") / "starter")
    quantize_model_dir(folder, "int8", PLANTVILLAGE, n_calibration=40)  # 4 batches: ONNX Runtime's edge (quantize.py)
    return folder


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
def test_the_api_serves_int8_unasked_only_where_it_is_safe(
    tmp_path, monkeypatch, with_int8, cpuinfo, agreement, asked, served
):
    from leafdoc.core.settings import Settings
    from leafdoc.data.catalog import Catalog
    from leafdoc.data.store import open_store
    from leafdoc.model_versions import Registry
    from leafdoc.runtime import cpuflags
    from leafdoc.service.serving import ModelHolder

    card = json.loads((with_int8 / "card.json").read_text())
    assert (with_int8 / card["onnx_variants"]["int8"]["file"]).is_file()
    model = tmp_path / "model"
    shutil.copytree(with_int8, model)
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


@pytest.mark.parametrize(
    ("cpuinfo", "asked", "noted"), [(XEON, None, True), (ZEN1, None, False), (XEON, "int8", False)]
)
def test_evaluate_says_when_serve_would_run_the_int8_copy_it_did_not_score(
    tmp_path, monkeypatch, with_int8, cpuinfo, asked, noted
):
    """`leafdoc evaluate` scores model.onnx unless LEAFDOC_ONNX_VARIANT says otherwise, while `serve`, unasked, runs
    the int8 copy where it is safe: the figures were not the served model's, and nothing said so."""
    from typer.testing import CliRunner

    from leafdoc.cli.main import app
    from leafdoc.runtime import cpuflags

    photos = tmp_path / "photos" / "Tomato___Early_blight"
    photos.mkdir(parents=True)
    for f in sorted((PLANTVILLAGE / "Tomato___Early_blight").glob("*.jpg"))[:3]:
        shutil.copy(f, photos)
    monkeypatch.delenv("LEAFDOC_INT8_ANY_CPU", raising=False)
    (tmp_path / "cpuinfo").write_text(cpuinfo)
    monkeypatch.setattr(cpuflags, "CPUINFO", tmp_path / "cpuinfo")
    monkeypatch.setattr(cpuflags.platform, "machine", lambda: "x86_64")
    env = {
        "LEAFDOC_HOME": str(tmp_path / "home"),
        "COLUMNS": "300",
        **({"LEAFDOC_ONNX_VARIANT": asked} if asked else {}),
    }
    if not asked:
        monkeypatch.delenv("LEAFDOC_ONNX_VARIANT", raising=False)
    done = CliRunner().invoke(app, ["evaluate", str(with_int8), "--data", str(tmp_path / "photos")], env=env)
    assert done.exit_code == 0, done.output[-2000:]
    said = " ".join(done.output.split())
    assert "accuracy" in said.lower()
    assert ("these are model.onnx's figures; `leafdoc serve` on this machine serves the int8 copy" in said) is noted
