#!/usr/bin/env bash
# The images of compose.yaml's third-party services, made from Debian 12's packages for hosts that cannot pull
# them from a registry (deploy/compose.debian.yaml names them; deploy/stack.sh uses them when the registry's cannot
# be had):
#   localhost/leafdoc-postgres:15-bookworm  for postgres:16-alpine       (Debian's postgresql-15)
#   localhost/leafdoc-redis:7-bookworm      for redis:7-alpine           (Debian's redis-server 7.0)
#   localhost/leafdoc-nginx:1.22-bookworm   for nginx-unprivileged:1.27  (Debian's nginx-light 1.22)
#   localhost/leafdoc-s3:moto               for minio/minio and minio/mc (moto's S3 server from PyPI: in memory)
# Built FROM deploy/base-images.sh's images (made first if missing), sources in deploy/services/<name>/.
#
#   bash deploy/service-images.sh                 # all four (each skipped when it exists; --rebuild to make anew)
#   bash deploy/service-images.sh postgres redis  # some
#   bash deploy/service-images.sh --save DIR      # also write them to DIR/*.tar, for an air-gapped site
#   bash deploy/service-images.sh --load DIR      # load images written by --save (nothing downloaded)
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/engine.sh
leafdoc_engine_setup

ALL=(postgres redis nginx s3)
REBUILD=false SAVE="" LOAD="" NAMES=()
while [ $# -gt 0 ]; do
  case $1 in
    --rebuild) REBUILD=true; shift ;;
    --save) SAVE=$2; shift 2 ;;
    --load) LOAD=$2; shift 2 ;;
    postgres | redis | nginx | s3) NAMES+=("$1"); shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#NAMES[@]} -gt 0 ] || NAMES=("${ALL[@]}")
say() { echo "service-images: $*" >&2; }

image_of() {
  case $1 in
    postgres) echo localhost/leafdoc-postgres:15-bookworm ;;
    redis) echo localhost/leafdoc-redis:7-bookworm ;;
    nginx) echo localhost/leafdoc-nginx:1.22-bookworm ;;
    s3) echo localhost/leafdoc-s3:moto ;;
  esac
}
exists() { "$ENGINE" image inspect "$1" >/dev/null 2>&1; }

if [ -n "$LOAD" ]; then
  for name in "${NAMES[@]}"; do "$ENGINE" load -i "$LOAD/leafdoc-$name.tar"; done
  say "loaded ${NAMES[*]} from $LOAD"
  exit 0
fi

if ! exists localhost/leafdoc-debian:bookworm || ! exists localhost/leafdoc-python:3.11-bookworm; then
  say "no base images yet: making them (deploy/base-images.sh)"
  bash deploy/base-images.sh
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/leafdoc-services.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
for name in "${NAMES[@]}"; do
  image=$(image_of "$name")
  if exists "$image" && ! $REBUILD; then
    say "$image exists (--rebuild to make it anew)"
    continue
  fi
  start=$SECONDS
  cp -r "deploy/services/$name" "$WORK/$name"
  if [ "$name" = s3 ]; then
    # moto at the version leafdoc's tests use, and its dependencies at the versions requirements.lock pins.
    grep -E '^[A-Za-z0-9_.-]+==' requirements.lock | sed 's/ *\\$//' >"$WORK/$name/constraints.txt"  # pins, not hashes
  fi
  "$ENGINE" build -q $(leafdoc_build_format) -t "$image" -f "$WORK/$name/Containerfile" "$WORK/$name" >/dev/null
  size=$("$ENGINE" image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')
  say "$image: built in $((SECONDS - start)) s, $size"
done
if [ -n "$SAVE" ]; then
  mkdir -p "$SAVE"
  for name in "${NAMES[@]}"; do "$ENGINE" save -o "$SAVE/leafdoc-$name.tar" "$(image_of "$name")"; done
  say "saved to $SAVE (load them with --load $SAVE)"
fi
