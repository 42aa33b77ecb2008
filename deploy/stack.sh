#!/usr/bin/env bash
# Start, check and stop deploy/compose.yaml's stack with one command: nginx -> 2 API replicas + the web page, the
# worker, PostgreSQL, Redis and an S3-compatible store (docs/deploy.md, "The compose stack").
#
#   bash deploy/stack.sh up        # start it in order, each service healthy before the next; prints the address
#   bash deploy/stack.sh status    # each container: state and health; the balancer's /readyz
#   bash deploy/stack.sh logs api  # a service's output (every replica's)
#   bash deploy/stack.sh down      # stop and remove its containers, pod and network (volumes kept)
#   bash deploy/stack.sh down --volumes   # and its volumes: the catalog, queue, store and worker cache
#
# Options (before or after the command) and the variables they stand for:
#   --env-file FILE       LEAFDOC_ENV_FILE      secrets (default deploy/leafdoc.env, from leafdoc.env.example)
#   --project NAME        LEAFDOC_STACK_PROJECT the compose project: prefix of containers, volumes and network (leafdoc)
#   --port N              LEAFDOC_HTTP_PORT     the host port nginx publishes (8080)
#   --images KIND         LEAFDOC_STACK_IMAGES  auto | registry | debian: the third-party services' images. registry:
#                         compose.yaml's own (postgres, redis, nginx, MinIO); debian: made from Debian's packages
#                         (deploy/service-images.sh, made when missing; deploy/compose.debian.yaml). auto (default):
#                         the registry's when they are here or can be pulled, else Debian's
#   --timeout S           LEAFDOC_STACK_TIMEOUT seconds each step may take to become healthy (600)
#   --build               rebuild leafdoc's images first (deploy/build-images.sh; made anyway when missing)
#   --file FILE           LEAFDOC_STACK_FILES   a compose file merged after the others (repeatable; the variable: a
#                         colon-separated list), e.g. other replica counts or CPU limits (python -m loadtest.run does)
#
# With podman it needs podman-compose (a dev dependency: .venv/bin/podman-compose, or `pip install podman-compose`):
# podman-compose 1.6 does not wait for `depends_on: condition: service_healthy` with podman older than 4.6, and
# podman runs health checks by systemd timers that a host without systemd lacks, so this script brings the
# services up one step at a time and runs their health checks itself. With docker it is `docker compose up --wait`.
set -euo pipefail
DEPLOY=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$DEPLOY")
cd "$REPO"
source deploy/engine.sh
leafdoc_engine_setup

CMD="" VOLUMES=false BUILD=false ARGS=() EXTRA=()
[ -z "${LEAFDOC_STACK_FILES:-}" ] || IFS=: read -r -a EXTRA <<<"$LEAFDOC_STACK_FILES"
ENV_FILE=${LEAFDOC_ENV_FILE:-$DEPLOY/leafdoc.env}
PROJECT=${LEAFDOC_STACK_PROJECT:-leafdoc}
PORT=${LEAFDOC_HTTP_PORT:-8080}
IMAGES=${LEAFDOC_STACK_IMAGES:-auto}
TIMEOUT=${LEAFDOC_STACK_TIMEOUT:-600}
while [ $# -gt 0 ]; do
  case $1 in
    up | down | status | logs) CMD=$1; shift ;;
    --env-file) ENV_FILE=$2; shift 2 ;;
    --project) PROJECT=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --images) IMAGES=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --volumes | -v) VOLUMES=true; shift ;;
    --build) BUILD=true; shift ;;
    --file) EXTRA+=("$2"); shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
[ -n "$CMD" ] || { echo "say up, status, logs or down (see --help)" >&2; exit 2; }
case $IMAGES in auto | registry | debian) ;; *) echo "--images is auto, registry or debian, not $IMAGES" >&2; exit 2 ;; esac
say() { echo "stack: $*" >&2; }
ENV_FILE=$(realpath -m "$ENV_FILE")
export LEAFDOC_ENV_FILE=$ENV_FILE LEAFDOC_HTTP_PORT=$PORT

if [ ! -f "$ENV_FILE" ]; then
  if [ "$CMD" = up ]; then
    say "no $ENV_FILE: cp deploy/leafdoc.env.example deploy/leafdoc.env and change every secret in it (or --env-file)"
    exit 1
  fi
  # down, status and logs need no secret, but compose refuses a file whose \${X:?} variables are unset.
  ENV_FILE=$(mktemp "${TMPDIR:-/tmp}/leafdoc-stack-env.XXXXXX")
  trap 'rm -f "$ENV_FILE"' EXIT
  printf 'POSTGRES_PASSWORD=unused\nAWS_ACCESS_KEY_ID=unused\nAWS_SECRET_ACCESS_KEY=unused\n' >"$ENV_FILE"
  export LEAFDOC_ENV_FILE=$ENV_FILE
fi

# The images compose.yaml names for PostgreSQL, Redis, nginx and MinIO, and whether this host has or can pull them.
REGISTRY_IMAGES=$(awk '/^ *image: / && $2 !~ /^leafdoc/ { print $2 }' deploy/compose.yaml)
registry_images_here() {
  local image
  for image in $REGISTRY_IMAGES; do
    "$ENGINE" image inspect "$image" >/dev/null 2>&1 && continue
    # A pull fails within seconds when the registry has no DNS name or route here; a slow link gets 10 minutes.
    timeout 600 "$ENGINE" pull -q "$image" >/dev/null 2>&1 || return 1
  done
}

FILES=(-f deploy/compose.yaml) extra_files=()
choose_images() {
  if [ "$IMAGES" = auto ]; then
    if registry_images_here; then IMAGES=registry; else
      say "the registry's images ($(echo $REGISTRY_IMAGES)) cannot be had here: using Debian's packages"
      IMAGES=debian
    fi
  elif [ "$IMAGES" = registry ] && ! registry_images_here; then
    say "cannot pull $(echo $REGISTRY_IMAGES) (use --images debian)"; exit 1
  fi
  if [ "$IMAGES" = debian ]; then
    FILES+=(-f deploy/compose.debian.yaml)
    bash deploy/service-images.sh
  fi
}
# down, status and logs: the same files up used (the services are the same in both; only images and commands differ).
stand_in=false
if [ "$CMD" != up ] && [ -n "$("$ENGINE" ps -aq --filter "label=com.docker.compose.project=$PROJECT" \
  --filter ancestor=localhost/leafdoc-s3:moto 2>/dev/null)" ]; then
  FILES+=(-f deploy/compose.debian.yaml)
  stand_in=true
fi

for file in "${EXTRA[@]}"; do
  [ -f "$file" ] || { say "no compose file $file"; exit 2; }
  extra_files+=(-f "$(realpath "$file")")
done
if [ "$ENGINE" = podman ]; then
  COMPOSE=$(command -v podman-compose || true)
  [ -n "$COMPOSE" ] || { [ -x .venv/bin/podman-compose ] && COMPOSE=$REPO/.venv/bin/podman-compose; } || true
  [ -n "$COMPOSE" ] || { say "needs podman-compose: pip install podman-compose (a dev dependency of leafdoc)"; exit 1; }
  compose() { "$COMPOSE" --podman-path podman -p "$PROJECT" "${FILES[@]}" "${extra_files[@]}" --env-file "$ENV_FILE" "$@"; }
else
  compose() { docker compose -p "$PROJECT" "${FILES[@]}" "${extra_files[@]}" --env-file "$ENV_FILE" "$@"; }
fi

containers() {  # $1: service -> its containers' names
  "$ENGINE" ps -a --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=$1" \
    --format '{{.Names}}' | sort
}

state() { "$ENGINE" inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$1" 2>/dev/null || echo "missing -"; }

# Waits until every container of the services is healthy (running, when it has no health check), running the
# checks itself; a container that exits or stays unhealthy past the timeout fails the start, with its last output.
wait_healthy() {
  local deadline=$((SECONDS + TIMEOUT)) service ctr pending st
  while :; do
    pending=()
    for service in "$@"; do
      for ctr in $(containers "$service"); do
        st=$(state "$ctr")
        case $st in
          running*)
            if "$ENGINE" inspect --format '{{if .Config.Healthcheck}}yes{{end}}' "$ctr" | grep -q yes; then
              "$ENGINE" healthcheck run "$ctr" >/dev/null 2>&1 || pending+=("$ctr")
            fi ;;
          *)
            say "$ctr is not running ($st); its last output:"; "$ENGINE" logs --tail 30 "$ctr" >&2 || true
            return 1 ;;
        esac
      done
    done
    [ ${#pending[@]} -eq 0 ] && return 0
    if [ $SECONDS -ge $deadline ]; then
      for ctr in "${pending[@]}"; do
        say "$ctr is not healthy after ${TIMEOUT} s; its last output:"; "$ENGINE" logs --tail 30 "$ctr" >&2 || true
      done
      return 1
    fi
    sleep 3
  done
}

wait_completed() {  # $1: a one-off service: its container exits 0
  local ctr code
  for ctr in $(containers "$1"); do
    code=$(timeout "$TIMEOUT" "$ENGINE" wait "$ctr" | tail -1) || code=timeout
    if [ "$code" != 0 ]; then
      say "$ctr ended with $code; its output:"; "$ENGINE" logs --tail 30 "$ctr" >&2 || true
      return 1
    fi
  done
}

readyz() { python3 -c "import json, sys, urllib.request
r = json.load(urllib.request.urlopen('http://127.0.0.1:$PORT/readyz', timeout=10))
print(json.dumps(r)); sys.exit(0 if r.get('ready') else 1)" 2>/dev/null; }

up() {
  local start=$SECONDS step
  $BUILD && bash deploy/build-images.sh
  for image in leafdoc-serve:latest leafdoc-worker:latest; do
    "$ENGINE" image inspect "$image" >/dev/null 2>&1 || { say "no $image yet: building it"; bash deploy/build-images.sh; break; }
  done
  choose_images
  say "project $PROJECT, images: $IMAGES, secrets: $ENV_FILE, port $PORT"
  if [ "$ENGINE" = docker ]; then
    compose up -d --no-build --wait --wait-timeout "$TIMEOUT"
  else
    # One step at a time, as compose.yaml's depends_on conditions say.
    for step in "postgres redis minio" "minio-bucket" "api ui worker" "nginx"; do
      step_start=$SECONDS
      compose up -d --no-build --no-deps $step >"${TMPDIR:-/tmp}/leafdoc-stack-$PROJECT.log" 2>&1 || {
        tail -30 "${TMPDIR:-/tmp}/leafdoc-stack-$PROJECT.log" >&2; say "podman-compose up $step failed"; exit 1; }
      if [ "$step" = minio-bucket ]; then wait_completed minio-bucket; else wait_healthy $step; fi || {
        say "$step did not start: 'bash deploy/stack.sh down' removes what did"; exit 1; }
      say "$step: up in $((SECONDS - step_start)) s"
    done
  fi
  local deadline=$((SECONDS + TIMEOUT))
  until readyz >/dev/null; do
    [ $SECONDS -lt $deadline ] || { say "http://127.0.0.1:$PORT/readyz does not say ready: $(readyz || true)"; exit 1; }
    sleep 2
  done
  say "up in $((SECONDS - start)) s: http://127.0.0.1:$PORT (API and /docs), http://127.0.0.1:$PORT/ui (the page)"
}

status() {
  "$ENGINE" ps -a --filter "label=com.docker.compose.project=$PROJECT" \
    --format 'table {{.Names}}\t{{.Image}}\t{{.Status}}'
  if [ "$ENGINE" = podman ]; then
    local ctr
    for ctr in $("$ENGINE" ps -q --filter "label=com.docker.compose.project=$PROJECT"); do
      if "$ENGINE" inspect --format '{{if .Config.Healthcheck}}yes{{end}}' "$ctr" | grep -q yes; then
        if "$ENGINE" healthcheck run "$ctr" >/dev/null 2>&1; then h=healthy; else h=unhealthy; fi
        echo "$("$ENGINE" inspect --format '{{.Name}}' "$ctr"): $h"
      fi
    done
  fi
  readyz || { echo "http://127.0.0.1:$PORT/readyz: not ready or not answering"; return 1; }
}

down() {
  local flags=() left
  $VOLUMES && flags+=(-v)
  if compose down "${flags[@]}" >"${TMPDIR:-/tmp}/leafdoc-stack-$PROJECT.log" 2>&1; then
    rm -f "${TMPDIR:-/tmp}/leafdoc-stack-$PROJECT.log"  # podman-compose's output, kept only when a step failed
  else
    tail -30 "${TMPDIR:-/tmp}/leafdoc-stack-$PROJECT.log" >&2; say "compose down failed"
  fi
  if [ "$ENGINE" = podman ]; then
    # What podman-compose may leave: containers of services renamed since, the pod, the network, the volumes.
    left=$("$ENGINE" ps -aq --filter "label=com.docker.compose.project=$PROJECT")
    [ -z "$left" ] || "$ENGINE" rm -f -t 30 $left >/dev/null
    "$ENGINE" pod rm -f "pod_$PROJECT" >/dev/null 2>&1 || true
    "$ENGINE" network rm -f "${PROJECT}_default" >/dev/null 2>&1 || true
    if $VOLUMES; then
      left=$("$ENGINE" volume ls -q --filter "label=com.docker.compose.project=$PROJECT")
      [ -z "$left" ] || "$ENGINE" volume rm -f $left >/dev/null
    fi
  fi
  if $VOLUMES; then say "down: $PROJECT's containers, network and volumes removed"
  else
    say "down: $PROJECT's containers and network removed (its volumes are kept: --volumes removes them)"
    if [ "$stand_in" = true ]; then
      say "but the S3 stand-in (moto) kept its objects in memory: they are gone, and the catalog kept in the volumes"
      say "names models and photos no longer stored. Start afresh with 'down --volumes' before the next up."
    fi
  fi
}

case $CMD in
  up) up ;;
  status) status ;;
  logs)
    for service in "${ARGS[@]:-api}"; do
      for ctr in $(containers "$service"); do echo "== $ctr"; "$ENGINE" logs --tail 200 "$ctr"; done
    done ;;
  down) down ;;
esac
