#!/bin/sh
# Debian's redis-server refuses clients from other addresses while it has no password and no bind address
# (protected mode); the official image builds it with protected mode off. Same here, for `redis-server ...`.
set -eu
if [ "${1:-}" = redis-server ]; then
  shift
  set -- redis-server --protected-mode no "$@"
fi
exec "$@"
