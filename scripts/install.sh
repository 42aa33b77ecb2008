#!/usr/bin/env bash
# Install leafdoc into ./.venv from the locked requirements (reproducible), no system changes.
#   bash scripts/install.sh          # everything: train, serve, desktop, dev tools
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# The uv this script, the locks (`uv pip compile`) and the test suite were run with: 0.13.9 (2026-12-02). A uv on PATH
# outside this range is not used; one is installed in a virtual environment of leafdoc's own instead. Move the range
# only after running install.sh and the suite with the new uv (tests/unit/test_install_script.py checks the range).
UV_MIN=0.13.9
UV_BELOW=0.14
UV_SPEC="uv>=$UV_MIN,<$UV_BELOW"
uv_version() { "$1" --version 2>/dev/null | awk '{print $2}'; }
uv_tested() { # is the uv at $1 within UV_MIN (included) .. UV_BELOW (excluded)?
  local v
  v=$(uv_version "$1")
  [ -n "$v" ] && [ "$(printf '%s\n' "$UV_MIN" "$v" | sort -V | head -n 1)" = "$UV_MIN" ] &&
    [ "$v" != "$UV_BELOW" ] && [ "$(printf '%s\n' "$v" "$UV_BELOW" | sort -V | head -n 1)" = "$v" ]
}
UV=
if command -v uv >/dev/null 2>&1; then
  if uv_tested uv; then
    UV=uv
  else
    echo "install.sh: the uv on PATH ($(command -v uv), version $(uv_version uv || true)) is not one leafdoc was" \
      "tested with ($UV_SPEC): using a uv of leafdoc's own instead." >&2
  fi
fi
if [ -z "$UV" ]; then
  # uv in a virtual environment of its own: Debian 12 and Ubuntu 23.04+ refuse `pip install` into the system's Python
  # (externally-managed-environment), and `uv pip sync` below would remove it from .venv.
  TOOLS=${XDG_CACHE_HOME:-$HOME/.cache}/leafdoc/uv-venv
  if [ ! -x "$TOOLS/bin/uv" ] || ! uv_tested "$TOOLS/bin/uv"; then # missing, or an earlier unpinned install's
    [ -x "$TOOLS/bin/python" ] || "$PY" -m venv "$TOOLS" || {
      echo "install.sh: could not make a virtual environment for uv with $PY. Install uv (https://docs.astral.sh/uv/," \
        "or 'pipx install \"$UV_SPEC\"'), or Python's venv module (Debian/Ubuntu: sudo apt install python3-venv), and" \
        "run it again." >&2
      exit 1
    }
    echo "install.sh: installing $UV_SPEC into $TOOLS" >&2
    "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check "$UV_SPEC" || {
      echo "install.sh: could not install $UV_SPEC into $TOOLS (pip's error is above: no network, or no such version" \
        "on your package index?). Install a uv in that range yourself ('pipx install \"$UV_SPEC\"') and run it again." >&2
      exit 1
    }
  fi
  UV=$TOOLS/bin/uv
fi
[ -x .venv/bin/python ] || "$UV" venv --quiet --python "$PY" .venv
# The lock pins every package of leafdoc[all]; `uv pip sync` makes the venv match it exactly.
# Bytecode is compiled here, once: uv does not by default, and where PYTHONDONTWRITEBYTECODE is set (as on the
# machines leafdoc is developed on) Python never writes it either, so every process (each CLI command, server, worker and
# training) compiled TensorFlow's and Keras' sources again: `import tensorflow` took 8.2 s instead of 4.2 (docs/test-suite.md).
"$UV" pip sync --quiet --compile-bytecode --python .venv/bin/python requirements.lock
"$UV" pip install --quiet --python .venv/bin/python --no-deps -e .
.venv/bin/python -m compileall -q -j 0 src/leafdoc
echo "leafdoc installed in $(pwd)/.venv: run .venv/bin/leafdoc --help" >&2
# The offline page's ONNX Runtime Web (src/leafdoc/offline): from npm, as web/package-lock.json pins it, copied into
# the package's git-ignored vendor/ folder. Without npm the page says what is missing; the rest of leafdoc works.
if command -v npm >/dev/null 2>&1; then
  bash scripts/install-web.sh
else
  echo "npm not found: the offline page (/app) will lack ONNX Runtime Web (install node and npm, then run scripts/install-web.sh)" >&2
fi
