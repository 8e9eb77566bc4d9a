#!/usr/bin/env bash
# Start or stop a private Docker engine that leaves the host's network alone.
#
#   engine.sh start      -> prints "W=<dir>" and "DOCKER_HOST=unix://<dir>/docker.sock"
#   engine.sh stop <W>   -> stops that engine and removes <dir>
#
# The image store lives in a persistent cache directory (so the base image and build layers are
# reused between runs) when no other engine holds it; otherwise, or with CZANN_DOCKER_FRESH=1 (an
# engine with an empty image store, as on a new machine), in <W>. The lock is an open file
# descriptor that dockerd inherits, so it is released when that dockerd exits.
set -euo pipefail
# shellcheck source=tests/container/process.sh
source "$(dirname "${BASH_SOURCE[0]}")/process.sh"

CACHE_ROOT="${CZANN_DOCKER_CACHE:-/var/tmp/czann-ci-docker}"

start() {
  local w data
  # Socket paths are limited to 108 characters: keep the folder short.
  w="$(mktemp -d /tmp/dk.XXXXXX)"
  mkdir -p "$CACHE_ROOT"
  exec 9>"$CACHE_ROOT/lock"
  if [[ "${CZANN_DOCKER_FRESH:-}" != 1 ]] && flock -n 9; then
    data="$CACHE_ROOT/data"
  else
    exec 9>&-
    data="$w/data"
  fi
  echo "$data" >"$w/data-root"
  dockerd --data-root "$data" --exec-root "$w/exec" -H "unix://$w/docker.sock" \
    --pidfile "$w/dockerd.pid" --iptables=false --ip-forward=false --ip-masq=false \
    --bridge=none >"$w/dockerd.log" 2>&1 &
  echo "$!" >"$w/dockerd.launcher"
  exec 9>&-
  if ! wait_for 60 "$w/dockerd.log" dockerd /usr/bin/docker -H "unix://$w/docker.sock" version; then
    stop "$w"
    return 1
  fi
  echo "W=$w"
  echo "DOCKER_HOST=unix://$w/docker.sock"
}

stop() {
  local w="$1" pid=""
  [[ -d "$w" && "$w" == /tmp/dk.* ]] || { echo "not an engine folder: $w" >&2; return 1; }
  # A kept image store must not grow without bound: drop what no tag uses and old build cache,
  # keeping enough for the next build of both targets to be a cache hit.
  if [[ "$(cat "$w/data-root" 2>/dev/null)" != "$w/data" && -S "$w/docker.sock" ]]; then
    local docker=(/usr/bin/docker -H "unix://$w/docker.sock")
    "${docker[@]}" container prune -f >/dev/null 2>&1 || true
    "${docker[@]}" image prune -f >/dev/null 2>&1 || true
    "${docker[@]}" builder prune -f --keep-storage "${CZANN_DOCKER_KEEP:-4gb}" >/dev/null 2>&1 || true
  fi
  if [[ -s "$w/dockerd.pid" ]]; then pid="$(cat "$w/dockerd.pid")"; elif [[ -s "$w/dockerd.launcher" ]]; then pid="$(cat "$w/dockerd.launcher")"; fi
  stop_pid "$pid" 30
  umount "$w/exec/netns/default" 2>/dev/null || true
  rm -rf "$w"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:?engine folder}" ;;
  *) echo "usage: $0 start | stop <W>" >&2; exit 2 ;;
esac
