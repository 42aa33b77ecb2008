"""leafdoc/cpuflags.py: the int8 copy is not run on x86 CPUs without VNNI, read from /proc/cpuinfo's flags."""

from __future__ import annotations

import pytest

from leafdoc.runtime import cpuflags

ZEN1 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse4_1 sse4_2 avx avx2 fma\n\nprocessor\t: 1\n"
XEON = "processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 avx512f avx512_vnni\n"
ALDER_LAKE = "processor\t: 0\nflags\t\t: fpu avx avx2 avx_vnni\n"


@pytest.fixture
def cpu(tmp_path, monkeypatch):
    monkeypatch.setattr(cpuflags.platform, "machine", lambda: "x86_64")

    def use(text: str | None):
        path = tmp_path / "cpuinfo"
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(text)
        monkeypatch.setattr(cpuflags, "CPUINFO", path)

    return use


def test_an_avx2_cpu_without_vnni_is_not_trusted_with_int8_and_says_why(cpu, tmp_path):
    from leafdoc.core.errors import ModelError
    from leafdoc.modelfolder import ModelCard, variant_file

    cpu(ZEN1)
    why = cpuflags.int8_problem()
    assert why is not None and "no VNNI" in why and "answers differently from model.onnx" in why
    # A model folder's int8 copy: refused with the file, the reason and what to do; run with the override.
    (tmp_path / "model.int8.onnx").write_bytes(b"onnx")
    checked_on = {"model": "Intel(R) Xeon(R) Platinum 8375C CPU", "machine": "x86_64", "vnni": True}
    card = ModelCard.model_validate({"onnx_variants": {"int8": {"file": "model.int8.onnx", "checked_on": checked_on}}})
    with pytest.raises(ModelError) as refused:
        variant_file(tmp_path, card, "int8")
    said = f"{refused.value.message} {refused.value.hint}"
    assert str(tmp_path / "model.int8.onnx") in said and "no VNNI" in said and "LEAFDOC_ONNX_VARIANT=fp32" in said
    assert "LEAFDOC_INT8_ANY_CPU=true" in said and "checked against model.onnx on Intel(R) Xeon(R) Platinum" in said
    assert variant_file(tmp_path, card, "int8", any_cpu=True) == tmp_path / "model.int8.onnx"
    assert variant_file(tmp_path, card, "fp32") == tmp_path / "model.onnx"


@pytest.mark.parametrize("text", [XEON, ALDER_LAKE, None, "processor\t: 0\n"])
def test_vnni_or_an_unreadable_cpu_leaves_the_int8_copy_alone(cpu, text):
    cpu(text)
    assert cpuflags.int8_problem() is None


def test_only_x86_is_judged(cpu, monkeypatch):
    cpu(ZEN1)
    monkeypatch.setattr(cpuflags.platform, "machine", lambda: "aarch64")
    assert cpuflags.int8_problem() is None
    assert cpuflags.cpu_flags(ZEN1) == {"fpu", "sse4_1", "sse4_2", "avx", "avx2", "fma"}


@pytest.mark.parametrize(
    ("text", "machine", "vnni"),
    [
        ("processor\t: 0\nmodel name\t: AMD EPYC 7551 32-Core Processor\n" + ZEN1, "x86_64", False),
        ("model name\t: Intel(R) Xeon(R) Platinum 8375C CPU\n" + XEON, "x86_64", True),
        ("processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\n", "aarch64", None),
        (None, "x86_64", None),
    ],
)
def test_a_cpu_is_described_as_the_card_records_where_an_int8_copy_was_checked(cpu, monkeypatch, text, machine, vnni):
    cpu(text)
    monkeypatch.setattr(cpuflags.platform, "machine", lambda: machine)
    got = cpuflags.describe()
    assert got["vnni"] is vnni and got["machine"] == machine
    if text and "model name" in text:
        assert got["model"] == text.split("model name\t: ")[1].splitlines()[0]
    else:
        assert isinstance(got["model"], str) and got["model"]


@pytest.mark.parametrize(
    ("flags", "agreement", "served"),
    [(XEON, 0.995, "int8"), (ALDER_LAKE, 0.99, "int8"), (XEON, 0.9879, "fp32"), (ZEN1, 0.995, "fp32")],
)
def test_unasked_the_int8_copy_is_served_only_with_vnni_and_99_percent_agreement(
    cpu, tmp_path, flags, agreement, served
):
    """LEAFDOC_ONNX_VARIANT unset (issue 57): int8 where the card says its copy gives model.onnx's top-1 on >= 99% of
    the validation photos and this CPU has VNNI; else model.onnx, with the reason."""
    import hashlib

    from leafdoc.modelfolder import ModelCard, default_variant

    cpu(flags)
    (tmp_path / "model.onnx").write_bytes(b"fp32 onnx")
    (tmp_path / "model.int8.onnx").write_bytes(b"int8 onnx")
    entry = {
        "file": "model.int8.onnx",
        "source_sha256": hashlib.sha256(b"fp32 onnx").hexdigest(),
        "validation_vs_fp32": {"n": 663, "top1_agreement": agreement},
    }
    card = ModelCard.model_validate({"onnx_variants": {"int8": entry}})
    variant, why = default_variant(tmp_path, card)
    assert variant == served, why
    if flags == ZEN1:
        assert "no VNNI" in why
    elif served == "fp32":
        assert f"{agreement:.1%}" in why and "under 99%" in why
    # No copy, or a copy made from another model.onnx: model.onnx, whatever the CPU.
    assert default_variant(tmp_path, ModelCard.model_validate({})) == ("fp32", "the model folder has no int8 copy")
    # Checked on too few photos to tell (a lab's small model: 32 validation photos, all agreeing): model.onnx.
    few = ModelCard.model_validate(
        {"onnx_variants": {"int8": {**entry, "validation_vs_fp32": {"n": 32, "top1_agreement": 1.0}}}}
    )
    assert default_variant(tmp_path, few) == (
        "fp32",
        "its int8 copy was checked on 32 validation photos, too few to show that it answers as model.onnx does (at "
        "least 125)",
    )
    (tmp_path / "model.onnx").write_bytes(b"re-exported")
    assert default_variant(tmp_path, card)[0] == "fp32"
