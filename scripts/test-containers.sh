#!/usr/bin/env bash
# Build leafdoc's images and test them running (tests/containers): the serving and worker images each alone, then the
# compose stack end to end through deploy/stack.sh (test_compose_stack.py: about 3 minutes here). Not part of
# scripts/test.sh, because it needs a container engine and many minutes of CPU. Needs podman (apt-get install podman runc debootstrap) or docker with
# BuildKit; docs/deploy.md, "Building the images".
#   bash scripts/test-containers.sh            # base images if missing, both images, then the tests
#   bash scripts/test-containers.sh --no-build # test the images already built
#   bash scripts/test-containers.sh -k serve   # pytest's options after the script's
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=true
if [ "${1:-}" = --no-build ]; then BUILD=false; shift; fi
[ -x .venv/bin/python ] || bash scripts/install.sh
if $BUILD; then
  bash deploy/build-images.sh
fi
export LEAFDOC_CONTAINER_TESTS=1
.venv/bin/python -m pytest -q -p no:cacheprovider tests/containers "$@"
