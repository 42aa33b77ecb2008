#!/usr/bin/env bash
# Build leafdoc's images from this checkout, each with its own ignore file (deploy/<name>.Dockerfile.dockerignore),
# and say how big each build context and image is and how long each build took.
#   bash deploy/build-images.sh                 # serve and worker
#   bash deploy/build-images.sh serve           # only the serving image
#   bash deploy/build-images.sh --context-only  # only measure what each build would send
# The base image: PYTHON_IMAGE, by default localhost/leafdoc-python:3.11-bookworm from deploy/base-images.sh (made
# first if missing). Images are tagged leafdoc-serve:latest and leafdoc-worker:latest (compose.yaml's names);
# LEAFDOC_BUILD_ARGS adds build options (e.g. "--build-arg WITH_CUDA=true").
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/engine.sh
leafdoc_engine_setup

CONTEXT_ONLY=false NAMES=()
for arg in "$@"; do
  case $arg in
    --context-only) CONTEXT_ONLY=true ;;
    serve | worker) NAMES+=("$arg") ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#NAMES[@]} -gt 0 ] || NAMES=(serve worker)
PYTHON_IMAGE=${PYTHON_IMAGE:-localhost/leafdoc-python:3.11-bookworm}
say() { echo "build-images: $*" >&2; }

if [ "$ENGINE" = docker ] && ! docker buildx version >/dev/null 2>&1; then
  # The legacy builder reads only a .dockerignore at the context's root, so it would send the whole checkout
  # (.venv included: gigabytes) and copy what the ignore files keep out.
  say "docker without BuildKit (docker-buildx) ignores deploy/*.Dockerfile.dockerignore: install docker-buildx or use podman"
  exit 1
fi
if ! "$ENGINE" image exists "$PYTHON_IMAGE" 2>/dev/null && ! "$ENGINE" image inspect "$PYTHON_IMAGE" >/dev/null 2>&1; then
  case $PYTHON_IMAGE in
    localhost/leafdoc-python:*) say "no $PYTHON_IMAGE yet: making it (deploy/base-images.sh)"; bash deploy/base-images.sh ;;
  esac
fi

# What a build sends: the checkout through the Dockerfile's ignore file, copied into a throwaway image and counted.
context_size() {  # $1: serve | worker
  local probe tmp
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/leafdoc-ctx.XXXXXX")
  printf 'FROM %s\nCOPY . /ctx\n' "$PYTHON_IMAGE" >"$tmp/$1.Dockerfile"
  cp "deploy/$1.Dockerfile.dockerignore" "$tmp/$1.Dockerfile.dockerignore"
  probe=localhost/leafdoc-context-probe:$1
  "$ENGINE" build -q -t "$probe" -f "$tmp/$1.Dockerfile" $(ignorefile_flag "$tmp/$1.Dockerfile.dockerignore") . >/dev/null
  "$ENGINE" run --rm --network none "$probe" sh -c 'echo "$(find /ctx -type f | wc -l) files, $(du -sk /ctx | cut -f1) KiB"'
  "$ENGINE" rmi "$probe" >/dev/null
  rm -rf "$tmp"
}

# podman is given the ignore file by name; BuildKit finds <Dockerfile>.dockerignore beside the Dockerfile itself.
ignorefile_flag() { if [ "$ENGINE" = podman ]; then echo "--ignorefile $1"; fi; }

# The offline page's ONNX Runtime Web is git-ignored (scripts/install-web.sh puts it in src/leafdoc/offline/vendor): a
# serving image built from a fresh clone without it served an /app that lists missing files.
if [[ " ${NAMES[*]} " == *" serve "* ]] && ! $CONTEXT_ONLY && [ -z "$(ls -A src/leafdoc/offline/vendor 2>/dev/null)" ]; then
  if command -v npm >/dev/null 2>&1; then
    bash scripts/install-web.sh
  else
    say "no ONNX Runtime Web in src/leafdoc/offline/vendor and no npm to fetch it: the image's offline page (/app) would not work; install node and npm, or run scripts/install-web.sh where they are"
    exit 1
  fi
fi

for name in "${NAMES[@]}"; do
  say "$name: context $(context_size "$name") (deploy/$name.Dockerfile.dockerignore)"
  $CONTEXT_ONLY && continue
  start=$SECONDS
  # shellcheck disable=SC2046,SC2086
  "$ENGINE" build $(leafdoc_build_format) $(ignorefile_flag "deploy/$name.Dockerfile.dockerignore") \
    --build-arg PYTHON_IMAGE="$PYTHON_IMAGE" ${LEAFDOC_BUILD_ARGS:-} \
    -f "deploy/$name.Dockerfile" -t "leafdoc-$name:latest" .
  size=$("$ENGINE" image inspect --format '{{.Size}}' "leafdoc-$name:latest" | awk '{printf "%.0f MB", $1/1e6}')
  say "$name: built leafdoc-$name:latest in $((SECONDS - start)) s, $size"
done
