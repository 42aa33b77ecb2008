#!/usr/bin/env bash
# Install everything (system packages, locked Python packages) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-packages.sh
bash scripts/install.sh
export QT_QPA_PLATFORM=offscreen TF_CPP_MIN_LOG_LEVEL=3
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=25 "$@"
