#!/usr/bin/env bash
# The base images deploy/*.Dockerfile build FROM, made whether or not an image registry can be reached:
#   localhost/leafdoc-debian:bookworm       Debian 12
#   localhost/leafdoc-python:3.11-bookworm  Python 3.11 on it (python, venv), what PYTHON_IMAGE names
# Both carry this host's extra CA certificates (/usr/local/share/ca-certificates), so pip inside a build trusts what
# the host trusts (a TLS-inspecting proxy's CA, a site's own PyPI mirror).
#
#   bash deploy/base-images.sh                    # the registry's images when it answers, else Debian's packages
#   bash deploy/base-images.sh --source debian    # always from Debian's packages (debootstrap), no registry
#   bash deploy/base-images.sh --source registry  # always the registry's (fails if it is unreachable)
#   bash deploy/base-images.sh --mirror http://apt.example.lan/debian   # a site's own Debian mirror
#   bash deploy/base-images.sh --save DIR         # also write both images to DIR/*.tar, for an air-gapped site
#   bash deploy/base-images.sh --load DIR         # load images written by --save (nothing downloaded)
#
# From Debian's packages: `debootstrap --variant=minbase bookworm` from the mirror apt already uses (or --mirror),
# trimmed of documentation and apt's lists, imported as the debian image; the python image is built FROM it with
# apt (python3, python3-venv). Needs root (debootstrap, and podman's import), debootstrap and debian-archive-keyring.
# Then:  bash deploy/build-images.sh   (or --build-arg PYTHON_IMAGE=localhost/leafdoc-python:3.11-bookworm).
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/engine.sh
leafdoc_engine_setup

SOURCE=auto MIRROR="" SECURITY_MIRROR="" SAVE="" LOAD=""
while [ $# -gt 0 ]; do
  case $1 in
    --source) SOURCE=$2; shift 2 ;;
    --mirror) MIRROR=$2; shift 2 ;;
    --security-mirror) SECURITY_MIRROR=$2; shift 2 ;;
    --save) SAVE=$2; shift 2 ;;
    --load) LOAD=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case $SOURCE in auto | registry | debian) ;; *) echo "--source is auto, registry or debian, not $SOURCE" >&2; exit 2 ;; esac

DEBIAN=localhost/leafdoc-debian:bookworm
PYTHON=localhost/leafdoc-python:3.11-bookworm
REGISTRY_DEBIAN=${LEAFDOC_REGISTRY_DEBIAN:-docker.io/library/debian:bookworm-slim}
REGISTRY_PYTHON=${LEAFDOC_REGISTRY_PYTHON:-docker.io/library/python:3.11-slim-bookworm}
say() { echo "base-images: $*" >&2; }

if [ -n "$LOAD" ]; then
  for tar in "$LOAD"/leafdoc-debian.tar "$LOAD"/leafdoc-python.tar; do
    "$ENGINE" load -i "$tar"
  done
  say "loaded $DEBIAN and $PYTHON from $LOAD"
  exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/leafdoc-base.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# The host's extra CAs, as the python image's build copies them in (an empty folder when there are none).
mkdir -p "$WORK/ctx/ca"
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$WORK/ctx/ca/"
fi

# The mirrors apt uses on this host (deb822 sources or sources.list), so debootstrap needs nothing apt does not.
apt_mirror() {  # $1: debian | debian-security
  local uris
  uris=$(grep -hs -E '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
    /etc/apt/sources.list | grep -oE '(https?|file)://[^ ]+' | grep -E "/$1/?\$" | head -1 || true)
  echo "${uris%/}"
}

registry_answers() {
  # A pull fails within seconds when the registry has no DNS name or route here; a slow link gets 10 minutes.
  timeout 600 "$ENGINE" pull -q "$REGISTRY_DEBIAN" >/dev/null 2>&1 && timeout 600 "$ENGINE" pull -q "$REGISTRY_PYTHON" >/dev/null 2>&1
}

from_registry() {
  say "from the registry: $REGISTRY_DEBIAN, $REGISTRY_PYTHON"
  cat >"$WORK/ctx/Containerfile" <<'EOF'
ARG FROM
FROM ${FROM}
COPY ca/ /usr/local/share/ca-certificates/
RUN if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then \
      (command -v update-ca-certificates >/dev/null || (apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*)) \
      && update-ca-certificates; fi
EOF
  "$ENGINE" build -q --build-arg FROM="$REGISTRY_DEBIAN" -t "$DEBIAN" -f "$WORK/ctx/Containerfile" "$WORK/ctx" >/dev/null
  "$ENGINE" build -q --build-arg FROM="$REGISTRY_PYTHON" -t "$PYTHON" -f "$WORK/ctx/Containerfile" "$WORK/ctx" >/dev/null
}

from_debian() {
  local mirror=${MIRROR:-$(apt_mirror debian)} security=${SECURITY_MIRROR:-$(apt_mirror debian-security)}
  mirror=${mirror:-http://deb.debian.org/debian}
  security=${security:-http://deb.debian.org/debian-security}
  command -v debootstrap >/dev/null || { say "needs debootstrap: apt-get install debootstrap"; exit 1; }
  say "from Debian's packages: debootstrap --variant=minbase bookworm from $mirror"
  local rootfs=$WORK/rootfs
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 || {
    tail -20 "$WORK/debootstrap.log" >&2; say "debootstrap failed (log above)"; exit 1; }
  # apt inside the images: the release, its updates and security fixes, from the same mirrors.
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # As Docker's debian:*-slim images: no documentation, man pages or translations installed, now or later.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
APT::Install-Recommends "false";
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$rootfs"/usr/share/{man,info,locale}/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* \
    "$rootfs"/var/log/* "$rootfs"/tmp/*
  tar --numeric-owner -C "$rootfs" -c . | "$ENGINE" import - "$DEBIAN" >/dev/null
  cat >"$WORK/ctx/Containerfile" <<EOF
FROM $DEBIAN
COPY ca/ /usr/local/share/ca-certificates/
RUN apt-get update \\
 && apt-get upgrade -y \\
 && apt-get install -y --no-install-recommends ca-certificates python3 python3-venv python-is-python3 \\
 && update-ca-certificates \\
 && rm -rf /var/lib/apt/lists/*
ENV LANG=C.UTF-8
CMD ["python3"]
EOF
  "$ENGINE" build -q -t "$PYTHON" -f "$WORK/ctx/Containerfile" "$WORK/ctx" >/dev/null
}

start=$SECONDS
case $SOURCE in
  registry)
    registry_answers || { say "cannot pull $REGISTRY_DEBIAN and $REGISTRY_PYTHON (use --source debian)"; exit 1; }
    from_registry ;;
  debian) from_debian ;;
  auto)
    if registry_answers; then from_registry
    else say "the registry does not answer ($REGISTRY_PYTHON): building from Debian's packages"; from_debian; fi ;;
esac
for image in "$DEBIAN" "$PYTHON"; do
  say "$image: $("$ENGINE" image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')"
done
say "done in $((SECONDS - start)) s; build with --build-arg PYTHON_IMAGE=$PYTHON (deploy/build-images.sh does)"
if [ -n "$SAVE" ]; then
  mkdir -p "$SAVE"
  "$ENGINE" save -o "$SAVE/leafdoc-debian.tar" "$DEBIAN"
  "$ENGINE" save -o "$SAVE/leafdoc-python.tar" "$PYTHON"
  say "saved to $SAVE/leafdoc-debian.tar and leafdoc-python.tar (load them with --load $SAVE)"
fi
