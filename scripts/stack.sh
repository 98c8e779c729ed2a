# scripts/stack.sh - sourced, not run: starts and stops a local smaug stack
# (the five sample plugins and smaugd on unix sockets, SQLite and a file://
# bank under one folder). Used by the demo and the end-to-end tests.
#
#   bin=build/bin; source scripts/stack.sh
#   stack_init DIR            fresh folder: DIR/{cloud,run,logs,smaugd}
#   stack_cloud [ARGS...]     smaug-cloud-gen into DIR/cloud
#   stack_up                  plugins, then smaugd; exports SMAUG_SERVER
#   stack_smaugd [NAME]       (re)start smaugd alone on the same data dir,
#                             logging to DIR/logs/NAME.log (default smaugd)
#   stack_plugin P [NAME]     (re)start sample plugin P (volume, ...) alone,
#                             logging to DIR/logs/NAME.log (default plugin-P)
#   smaug ARGS...             the CLI against that smaugd
# The stack stops (SIGTERM, then SIGKILL after 10 s) when the shell exits.
# Callers define fail() to report errors; a default is provided.

stack_pids=()

stack_down() {
  set +e
  for p in "${stack_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${stack_pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  wait 2>/dev/null
  stack_pids=()
}

declare -F fail >/dev/null || fail() { echo "FAILED: $*" >&2; exit 1; }

stack_init() {
  stack_dir=$1
  rm -rf "$stack_dir"
  mkdir -p "$stack_dir/run" "$stack_dir/logs"
  stack_cloud_dir=$stack_dir/cloud
  stack_bank=$stack_dir/smaugd/bank
  export SMAUG_CLOUD=$stack_cloud_dir
  trap stack_down EXIT
}

stack_cloud() {
  "$bin/smaug-cloud-gen" --dir "$stack_cloud_dir" "$@" >"$stack_dir/logs/cloud-gen.log"
}

stack_start() { # name command...
  local name=$1
  shift
  "$@" >"$stack_dir/logs/$name.log" 2>&1 &
  stack_pids+=($!)
}

stack_wait_listening() { # name
  local log=$stack_dir/logs/$1.log
  for _ in $(seq 600); do # 30 s: slow under sanitizers and valgrind
    grep -q 'msg=listening' "$log" 2>/dev/null && return 0
    sleep 0.05
  done
  cat "$log" >&2
  fail "$1 did not start"
}

smaug() { "$bin/smaug" "$@"; }

stack_plugins=(project server volume image network)

stack_smaugd() { # [log name]; sets stack_smaugd_pid
  local name=${1:-smaugd} run=$stack_dir/run plugins=() p
  for p in "${stack_plugins[@]}"; do plugins+=(--plugin "unix:$run/$p.sock"); done
  stack_start "$name" "$bin/smaugd" --listen "unix:$run/smaugd.sock" \
    --data-dir "$stack_dir/smaugd" "${plugins[@]}"
  stack_smaugd_pid=${stack_pids[-1]}
  stack_wait_listening "$name"
}

stack_plugin_start() { # plugin [log name]; does not wait
  stack_start "${2:-plugin-$1}" "$bin/smaug-plugin-$1" \
    --listen "unix:$stack_dir/run/$1.sock" --cloud "$stack_cloud_dir" \
    --bank-root "$stack_bank" --exit-with-parent
}

stack_plugin() { # plugin [log name]; sets stack_plugin_pid
  stack_plugin_start "$@"
  stack_plugin_pid=${stack_pids[-1]}
  stack_wait_listening "${2:-plugin-$1}"
}

stack_up() {
  local p n=0
  for p in "${stack_plugins[@]}"; do
    stack_plugin_start "$p"
  done
  for p in "${stack_plugins[@]}"; do
    stack_wait_listening "plugin-$p"
  done
  stack_smaugd smaugd
  export SMAUG_SERVER=unix:$stack_dir/run/smaugd.sock
  for _ in $(seq 300); do
    n=$({ smaug -o json plugin list 2>/dev/null || true; } | grep -c 'PLUGIN_HEALTH_SERVING' || true)
    [ "$n" -ge 5 ] && return 0
    sleep 0.1
  done
  smaug plugin list >&2
  fail "plugins are not all registered"
}
