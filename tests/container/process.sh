# Sourced by engine.sh and registry.sh: stop one process we started, by its PID.
#   stop_pid PID SECONDS   TERM, wait up to SECONDS for it to leave, then KILL
stop_pid() {
  local pid="$1" tries=$(( $2 * 10 )) i
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid"
  for (( i = 0; i < tries; i++ )); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

#   wait_for SECONDS LOG WHAT COMMAND...   run COMMAND every 0.1 s until it succeeds; after
#   SECONDS, say WHAT did not come up, show the end of LOG and fail
wait_for() {
  local tries=$(( $1 * 10 )) log="$2" what="$3" i
  shift 3
  for (( i = 0; i < tries; i++ )); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "$what did not come up; log follows" >&2
  tail -n 30 "$log" >&2 || true
  return 1
}
