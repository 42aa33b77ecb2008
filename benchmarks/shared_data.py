"""Where the benchmarks find the shared photos: `../shared/datasets` beside the clone, or `$LEAFDOC_SHARED/datasets`
(the tests read the same variable: tests/conftest.py). Not a benchmark itself."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LEAFDOC_SHARED", REPO.parent / "shared")) / "datasets"
