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
# NumPy's BLAS keeps OpenBLAS's default threads (one per core) in the API workers.
_BLAS_DEFAULT = (
    SERVING,
    "        one_blas_thread()  # process-wide",
    "        pass  # variant: BLAS threads by default;",
)
# Python's default GIL switch interval (5 ms) in the API workers.
_SWITCH_DEFAULT = (
    SERVING,
    "        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)\n",
    "        pass  # variant: Python's default switch interval\n",
)

# uvicorn's own accept (each worker's event loop takes whatever connections are waiting) for --workers > 1.
_ACCEPT_UVICORN = (
    "leafdoc/service/run.py",
    "        if workers > 1:  # connections handed to the workers in turn: service/balance.py\n",
    "        if False:  # variant: uvicorn's own accept\n",
)

VARIANTS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "threads-default": ("ONNX Runtime's default threads per session", [_DEFAULT_THREADS]),
    "blas-default": ("NumPy's BLAS with its default threads (one per core) in API workers", [_BLAS_DEFAULT]),
    "switch-default": ("Python's default GIL switch interval (5 ms) in API workers", [_SWITCH_DEFAULT]),
    "accept-uvicorn": ("uvicorn's own accept: no handing of connections to the workers in turn", [_ACCEPT_UVICORN]),
    "before": (
        "ONNX Runtime's and BLAS's default threads, default switch interval (the serving path before)",
        [_DEFAULT_THREADS, _BLAS_DEFAULT, _SWITCH_DEFAULT],
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
