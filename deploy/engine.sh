# Sourced by deploy/base-images.sh, deploy/build-images.sh and scripts/test-containers.sh: picks the container
# engine and, for podman, the settings it needs on hosts like leafdoc's CI machines (docs/deploy.md, "Building the
# images"). Sets ENGINE (podman or docker) and, for podman, exports CONTAINERS_CONF unless it is already set.
#   LEAFDOC_ENGINE=docker  forces docker (default: podman when installed, else docker)

leafdoc_engine_setup() {
  ENGINE=${LEAFDOC_ENGINE:-}
  if [ -z "$ENGINE" ]; then
    if command -v podman >/dev/null 2>&1; then ENGINE=podman
    elif command -v docker >/dev/null 2>&1; then ENGINE=docker
    else
      echo "no container engine: install podman (apt-get install podman runc) or docker" >&2
      return 1
    fi
  fi
  if [ "$ENGINE" = podman ] && [ -z "${CONTAINERS_CONF:-}" ]; then
    # podman asks containers for 1048576 open files and the host's hard limit may be lower (20000 here: every
    # container then fails to start), and crun fails on hosts with cgroups in hybrid mode, where runc works. So a
    # containers.conf with runc (when installed) and ulimits at the host's hard limits, at most podman's own.
    local nofile nproc conf
    nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
    [ "$nofile" = unlimited ] || [ "$nofile" -gt 1048576 ] && nofile=1048576
    [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ] && nproc=32768
    conf=${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}/leafdoc-containers-$(id -u).conf
    {
      echo "# Written by deploy/engine.sh (leafdoc): see docs/deploy.md, \"Building the images\"."
      echo "[containers]"
      echo "default_ulimits = [\"nofile=${nofile}:${nofile}\", \"nproc=${nproc}:${nproc}\"]"
      if command -v runc >/dev/null 2>&1; then
        echo "[engine]"
        echo "runtime = \"runc\""
      fi
    } >"$conf"
    export CONTAINERS_CONF=$conf
  fi
}

# The build's --format flag: podman writes OCI images by default, which drop HEALTHCHECK; docker's format keeps it.
leafdoc_build_format() {
  if [ "$ENGINE" = podman ]; then echo "--format docker"; fi
}
