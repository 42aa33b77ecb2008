#!/usr/bin/env bash
# ONNX Runtime Web for the offline page (/app): `npm ci` in web/ (the versions web/package-lock.json pins, from the
# npm registry; no install scripts run), then the three files the page loads copied into src/leafdoc/offline/vendor/
# (git-ignored: the .wasm is 14 MB). Idempotent: npm ci is skipped when the installed version is the locked one.
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(node -p "require('./web/package-lock.json').packages['node_modules/onnxruntime-web'].version")
have=$(node -p "require('./web/node_modules/onnxruntime-web/package.json').version" 2>/dev/null || echo none)
if [ "$want" != "$have" ]; then
  (cd web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
dist=web/node_modules/onnxruntime-web/dist
vendor=src/leafdoc/offline/vendor
mkdir -p "$vendor"
for f in ort.wasm.min.mjs ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm; do
  if ! cmp -s "$dist/$f" "$vendor/$f"; then
    cp "$dist/$f" "$vendor/$f.tmp"
    mv -f "$vendor/$f.tmp" "$vendor/$f"
  fi
done
echo "ONNX Runtime Web $want in $vendor" >&2
