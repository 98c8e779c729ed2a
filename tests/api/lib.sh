# lib.sh - shell helpers of the tests/api scripts (sourced).

# stop PID: SIGTERM, up to 5 s to exit, then SIGKILL. Empty or gone: no-op.
stop() {
  local p=$1
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p"
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  fi
}

# until_ok CMD...: runs CMD every 0.1 s until it succeeds, up to 30 s.
until_ok() {
  for _ in $(seq 300); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}
