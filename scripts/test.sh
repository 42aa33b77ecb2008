#!/usr/bin/env bash
# Install everything (system packages, locked Python packages) and run the whole test suite.
#   bash scripts/test.sh                 # every test
#   bash scripts/test.sh -m unit         # pytest's options apply to both passes below
# Two passes: first every test not marked `serial`, in two processes at once with pytest-xdist (each takes its share
# of the cores' threads for TensorFlow, ONNX Runtime and BLAS, and the tiny model is trained once per run:
# tests/conftest.py; LEAFDOC_TEST_PROCESSES=0 runs it in one process); then the `serial` ones alone, as they measure
# how the machine shares work out. Timings and why two: docs/test-suite.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-packages.sh
bash scripts/install.sh
export QT_QPA_PLATFORM=offscreen TF_CPP_MIN_LOG_LEVEL=3
.venv/bin/ruff check src tests benchmarks scripts loadtest
.venv/bin/ruff format --check src tests benchmarks scripts loadtest
PYTEST=(.venv/bin/python -m pytest -q -p no:cacheprovider)
first=0 second=0
"${PYTEST[@]}" -n "${LEAFDOC_TEST_PROCESSES:-2}" --dist worksteal --serial-tests=without --durations=25 "$@" || first=$?
"${PYTEST[@]}" --serial-tests=only "$@" || second=$?
# pytest's 5 says a pass selected no test (`-m unit` has no serial test): a failure only if both passes say it.
if [ "$first" -eq 5 ] && [ "$second" -eq 5 ]; then exit 5; fi
for rc in "$first" "$second"; do
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then exit "$rc"; fi
done
