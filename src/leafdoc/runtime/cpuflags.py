"""Whether this CPU runs a model's int8 copy as it was checked: x86 CPUs without VNNI are not trusted with it.

ONNX Runtime multiplies uint8 activations by int8 weights with VPMADDUBSW on x86 CPUs without VNNI (AVX2-only:
AMD EPYC before Zen 4, Intel before Cascade Lake). Its 16-bit sums saturate, so there the int8 copy answers
differently from model.onnx on some photos, and it is no faster. Measured on the starter (2026-11-25): same top-1
as model.onnx on 94.7% of its 663 validation photos on an AMD EPYC (Zen 1, AVX2) against 99.1% on an Intel Xeon
with VNNI, and 15.6 against 14.3 ms a photo there. 7-bit weights (`reduce_range`) gave 97.0%; uint8 weights
agreed (98.3%) but ran 4.6 times slower. So leafdoc serves model.onnx on such a CPU and says why, unless
LEAFDOC_INT8_ANY_CPU (Settings.int8_any_cpu) says to run the copy anyway.
"""

from __future__ import annotations

import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
X86 = ("x86_64", "amd64", "i686", "x86")


def _field(cpuinfo: str, name: str) -> str | None:
    """The first processor's `name` line in /proc/cpuinfo's text."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The first processor's flags in /proc/cpuinfo's text (x86: the `flags` line)."""
    return frozenset((_field(cpuinfo, "flags") or "").split())


def _this_cpu() -> tuple[bool, str]:
    """Whether this machine is x86, and its /proc/cpuinfo ("" when there is none)."""
    try:
        text = CPUINFO.read_text()
    except OSError:
        text = ""
    return platform.machine().lower() in X86, text


def describe() -> dict:
    """This CPU as a model card records where an int8 copy was checked: its model name, architecture and
    whether it has VNNI (None when unknown or not x86)."""
    x86, text = _this_cpu()
    flags = cpu_flags(text)
    return {
        "model": _field(text, "model name") or platform.processor() or "unknown",
        "machine": platform.machine(),
        "vnni": bool(flags & VNNI_FLAGS) if x86 and flags else None,
    }


def int8_problem() -> str | None:
    """Why the int8 copy is not to be run on this CPU, or None when it may be (VNNI, not x86, or unknown)."""
    x86, text = _this_cpu()
    flags = cpu_flags(text)
    if not x86 or not flags or flags & VNNI_FLAGS:
        return None
    return (
        "this CPU has no VNNI (AVX512-VNNI or AVX-VNNI), where ONNX Runtime's int8 sums saturate: the int8 copy "
        "answers differently from model.onnx on some photos there, and is no faster"
    )
