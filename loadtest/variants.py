"""Named variants of the serving fast path, for measuring a change side by side with `--variant NAME`.

A variant is a copy of this checkout's `src/` with one or more knobs of src/leafdoc/service/serving.py
turned back, served with PYTHONPATH pointing at the copy. Each edit must match exactly once, so a
variant that no longer applies fails loudly instead of measuring the current code under another name.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from loadtest.images import REPO

SERVING = "leafdoc/service/serving.py"
# ONNX Runtime's default session threads (one per core, spinning) instead of one thread per session.
_DEFAULT_THREADS = (SERVING, "SESSION_THREADS = 1\n", "SESSION_THREADS = None  # variant: ONNX Runtime's default\n")
# Every single-photo request runs its own ONNX call instead of sharing one with concurrent requests.
_NO_BATCHING = (SERVING, "Batcher(predictor))  # the swap", "None)  # variant: no batching; the swap")

# NumPy's BLAS keeps OpenBLAS's default threads (one per core) in the API workers.
_BLAS_DEFAULT = (
    SERVING,
    "        one_blas_thread()  # process-wide",
    "        pass  # variant: BLAS threads by default;",
)

VARIANTS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "ort-default": (
        "ONNX Runtime's default threads per session, no batching (the serving path before)",
        [_DEFAULT_THREADS, _NO_BATCHING],
    ),
    "no-batching": ("one ONNX thread per session, each request its own ONNX call", [_NO_BATCHING]),
    "threads-default": ("ONNX Runtime's default threads per session, with batching", [_DEFAULT_THREADS]),
    "blas-default": ("NumPy's BLAS with its default threads (one per core) in API workers", [_BLAS_DEFAULT]),
    "before": (
        "ONNX Runtime's and BLAS's default threads, no batching (the serving path before these changes)",
        [_DEFAULT_THREADS, _NO_BATCHING, _BLAS_DEFAULT],
    ),
}


def make_variant(name: str, dest: Path, src: Path = REPO / "src") -> Path:
    """Copy `src` to dest/<name>/src with the variant's edits (none for "current"); return that src folder."""
    if name not in VARIANTS and name != "current":
        raise SystemExit(f"unknown variant {name!r}: one of {', '.join(VARIANTS)}, or NAME=SRC_FOLDER")
    out = Path(dest) / name / "src"
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for rel, old, new in VARIANTS.get(name, ("", []))[1]:
        path = out / rel
        text = path.read_text()
        if text.count(old) != 1:
            raise SystemExit(
                f"variant {name}: {rel} does not contain {old!r} exactly once; update loadtest/variants.py"
            )
        path.write_text(text.replace(old, new))
    return out
