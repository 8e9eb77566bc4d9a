#!/usr/bin/env bash
# Start or stop a private image registry on 127.0.0.1 (Debian's docker-registry package: the CNCF
# distribution registry), the stand-in for ghcr.io in the tests and the start-up bench.
#
#   registry.sh start      -> prints "R=<dir>" and "ADDRESS=127.0.0.1:<port>"
#   registry.sh stop <R>   -> stops that registry and removes <dir> (its storage included)
#
# A Docker engine treats a registry on 127.0.0.1 as insecure-allowed, so it pushes and pulls there
# over plain HTTP without any daemon configuration.
set -euo pipefail
# shellcheck source=tests/container/process.sh
source "$(dirname "${BASH_SOURCE[0]}")/process.sh"

start() {
  local r port
  command -v docker-registry >/dev/null || { echo "docker-registry is not installed (apt-get install docker-registry)" >&2; return 1; }
  r="$(mktemp -d /tmp/czann-registry.XXXXXX)"
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  cat >"$r/config.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $r/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YAML
  docker-registry serve "$r/config.yml" >"$r/registry.log" 2>&1 &
  echo "$!" >"$r/registry.pid"
  if ! wait_for 10 "$r/registry.log" "the registry" curl -fsS "http://127.0.0.1:$port/v2/"; then
    stop "$r"
    return 1
  fi
  echo "R=$r"
  echo "ADDRESS=127.0.0.1:$port"
}

stop() {
  local r="$1"
  [[ -d "$r" && "$r" == /tmp/czann-registry.* ]] || { echo "not a registry folder: $r" >&2; return 1; }
  stop_pid "$(cat "$r/registry.pid" 2>/dev/null || true)" 5
  rm -rf "$r"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:?registry folder}" ;;
  *) echo "usage: $0 start | stop <R>" >&2; exit 2 ;;
esac
