#!/usr/bin/env bash
# System packages the test tiers need (Debian): browser for the web page tests, real servers for
# the at-scale tests, Xvfb and the libraries Qt needs for the desktop tests (and a font, or offscreen
# Qt draws no text in the desktop screenshots; and a Devanagari font, or the page in Hindi is drawn in boxes), and npm
# for the offline page. Skipped when not root.
set -euo pipefail
PKGS=(chromium chromium-driver postgresql redis-server nginx xvfb xauth
      libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libdbus-1-3 libfontconfig1
      libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-randr0 libxcb-render-util0
      libxcb-xinerama0 libxcb-image0 fonts-dejavu-core fonts-lohit-deva)
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "not root or no apt-get: skipping system packages (${PKGS[*]})" >&2
  exit 0
fi
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# npm installs the offline page's ONNX Runtime Web (scripts/install-web.sh); Debian's only where none is installed
# (a NodeSource nodejs carries its own npm and conflicts with Debian's package).
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
