#!/usr/bin/env bash
# Install leafdoc into ./.venv from the locked requirements (reproducible), no system changes.
#   bash scripts/install.sh          # everything: train, serve, desktop, dev tools
set -euo pipefail
# The checkout this script is in, through a link to it too (a `~/bin/leafdoc-install` link went to `~/bin/..`).
cd "$(dirname "$(readlink -f "$0" 2>/dev/null || echo "$0")")/.."
if [ ! -f requirements.lock ] || [ ! -d src/leafdoc ]; then
  echo "install.sh: $(pwd) is not a leafdoc checkout (no requirements.lock and src/leafdoc): run the script of one." >&2
  exit 1
fi
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
# leafdoc runs on Python 3.11 (pyproject's requires-python; requirements.lock is compiled for it): Ubuntu 24.04's
# python3 is 3.12, macOS's Homebrew's 3.13, and the lock's packages then failed to install. A python3.11 on PATH is
# taken instead, else uv finds one on this machine or fetches a Python of its own (nothing is installed system-wide).
WANT=3.11
py_minor() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }
if [ -x .venv/bin/python ] && [ "$(py_minor .venv/bin/python || true)" != "$WANT" ]; then
  echo "install.sh: .venv has Python $(py_minor .venv/bin/python || echo '(none that runs)'); leafdoc needs $WANT:" \
    "making it again" >&2
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  VENV_PY=$PY
  HAVE=$(py_minor "$PY" || true)
  if [ "$HAVE" != "$WANT" ]; then
    if command -v "python$WANT" >/dev/null 2>&1; then
      VENV_PY=$(command -v "python$WANT")
    else
      VENV_PY=$WANT
    fi
    echo "install.sh: $PY is Python ${HAVE:-(none that runs)}; leafdoc needs $WANT: using $VENV_PY" \
      "$([ "$VENV_PY" = "$WANT" ] && echo "(uv finds it on this machine or fetches its own)")" >&2
  fi
  "$UV" venv --quiet --python "$VENV_PY" .venv || {
    echo "install.sh: could not make .venv with Python $WANT. Install Python $WANT (Ubuntu 24.04: sudo" \
      "add-apt-repository ppa:deadsnakes/ppa && sudo apt install python3.11 python3.11-venv; macOS: brew install" \
      "python@3.11), or let uv fetch one ($UV python install $WANT), or name one: PYTHON=/path/to/python3.11 bash" \
      "scripts/install.sh" >&2
    exit 1
  }
fi
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
