#!/usr/bin/env bash
# Crash recovery at every moment: smaugd is killed (SIGKILL) during
# protect, restore and delete, then restarted on the same data directory,
# and every operation must still end well.
#
# The stack is the real one (scripts/stack.sh: smaugd, the five sample
# plugins, the CLI) on a small cloud: one project with one server, two
# volumes, one image and one network. Every activity of the sample plugins
# takes --delay-ms (SMAUG_SAMPLE_DELAY_MS) with progress meanwhile, and
# the volume copies go one at a time (SMAUG_QUEUE_COPY=1), so that a kill
# lands while activities, volume copies and queued copies are in flight.
#
# Kill points, for each operation kind: every "moment" of a reference run
# (the STARTED and DONE events of each task and the final
# OPERATION_FINISHED, the commit of the outcome), plus, for protect, the
# discovery (the project plugin is stopped with SIGSTOP so that its
# ListDependents cannot be answered; smaugd is killed once the protect has
# been accepted and before any event, then the plugin is continued).
# A kill is sent only once `smaug watch` has shown moment #k: events are
# committed before they are streamed.
#
# After each kill smaugd restarts on the same data directory and the
# operation must end `available` (protect) or `success` (restore, delete)
# on its own; a kill before the final commit must be resumed by the
# restarted smaugd (its final event comes after the kill). Then:
#   - protect: `smaug checkpoint verify` passes;
#   - restore (of the checkpoints the killed protects made): every volume
#     and image is byte-identical to its original, and no temporary file
#     (*.restore) is left in the cloud;
#   - delete (of those checkpoints): the checkpoint's bank section is gone.
# One more restore kills the volume plugin instead, in the middle of a copy
# (see below): the restarted plugin's copy must leave nothing behind.
# Prints "kill-matrix: N passed, M failed" and exits 1 on any failure.
# Usage: kill_matrix.sh DIR   (binaries from $SMAUG_BIN, default build/bin)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${SMAUG_BIN:-$here/build/bin}
helper="/usr/bin/python3 $here/tests/e2e/kill_matrix.py"
fail() { echo "kill-matrix: FAILED: $*" >&2; exit 1; }
source "$here/scripts/stack.sh"
stack_init "${1:-$(mktemp -d /tmp/smaug-kill-matrix.XXXXXX)}"
dir=$stack_dir
proj=$stack_cloud_dir/projects/proj-1
export SMAUG_SAMPLE_DELAY_MS=${KILL_MATRIX_DELAY_MS:-80}
export SMAUG_QUEUE_COPY=1
stack_cloud --servers 1 --volumes 2 --shared 0 --images 1 --networks 1 \
  --volume-mib 1 --image-kib 64
stack_up
# The plugins' pids, in stack_plugins order.
[ "${stack_plugins[0]}" = project ] && [ "${stack_plugins[2]}" = volume ] ||
  fail "stack_plugins changed"
project_pid=${stack_pids[0]} volume_pid=${stack_pids[2]}
disown "$stack_smaugd_pid" "$volume_pid"

cat >"$dir/plan.json" <<'JSON'
{ "name": "kill-matrix", "resources": [{"type": "smaug.project", "id": "proj-1"}] }
JSON
plan=$(smaug plan create -f "$dir/plan.json")

passed=0 failed=0 resumed=0 restarts=0 thaw=
declare -A resumed_of=() points_of=()
ckps=()
note_fail() { failed=$((failed + 1)); echo "FAIL $*"; }

# json FILE KEY: the first "KEY": "VALUE" of a JSON output.
json() { grep -o "\"$2\": *\"[^\"]*\"" "$1" | head -1 | sed 's/.*: *"//; s/"$//'; }

# smaugd is disowned, so that its deaths are not reported as jobs; gone
# waits until the shell has reaped it (its data directory is free then).
restart() {
  restarts=$((restarts + 1))
  stack_smaugd "smaugd-$restarts"
  disown "$stack_smaugd_pid"
}
gone() { # pid
  while kill -0 "$1" 2>/dev/null; do sleep 0.01; done
}

# Waits for operation $1 to end after the restart; checks its final status
# is $2 and whether it was resumed. Sets `how`.
await() { # op want kill_ms label
  local out=$dir/watch-$restarts.out
  smaug -o json watch "$1" >"$out" 2>"$dir/watch-$restarts.err" || true
  local res
  res=$($helper outcome "$out" "$3") || { note_fail "$4: no final event: $(tail -2 "$dir/watch-$restarts.err")"; return 1; }
  how=${res#* }
  [ "${res%% *}" = "$2" ] || { note_fail "$4: ended ${res%% *}, want $2"; return 1; }
  return 0
}

# run_point KIND K LABEL WANT CMD...: starts an operation with CMD (the
# CLI with -o json and --wait), kills smaugd at moment K, restarts it and
# waits for the end. Sets op, start (the start response's file) and how.
run_point() {
  local kind=$1 k=$2 label=$3 want=$4 kill_line
  shift 4
  start=$dir/start-$label.out
  how=
  if ! $helper follow "$k" "$stack_smaugd_pid" "$@" >"$start"; then
    note_fail "$label: $(tail -1 "$start")"
    kill -KILL "$stack_smaugd_pid" 2>/dev/null || true
    gone "$stack_smaugd_pid"
    [ -z "$thaw" ] || kill -CONT "$thaw"
    restart
    return 1
  fi
  gone "$stack_smaugd_pid"
  [ -z "$thaw" ] || kill -CONT "$thaw"
  op=$(json "$start" operation_id)
  kill_line=$(tail -1 "$start")
  kill_ms=${kill_line%% *}
  restart
  await "$op" "$want" "$kill_ms" "$label" || return 1
  points_of[$kind]=$((${points_of[$kind]:-0} + 1))
  if [ "$how" = resumed ]; then
    resumed=$((resumed + 1))
    resumed_of[$kind]=$((${resumed_of[$kind]:-0} + 1))
  fi
  echo "  $label: killed after ${kill_line#* }: $how"
  return 0
}

# frozen_point KIND LABEL WANT CMD...: the same with the volume plugin
# stopped (SIGSTOP) until smaugd is dead: the kill lands once the first
# volume activity has started and cannot have ended, so the operation is
# necessarily resumed, with volume copies queued or running.
frozen_point() {
  local kind=$1 label=$2 want=$3 act=SYNC rc=0
  shift 3
  [ "$kind" = protect ] && act=PARALLEL
  kill -STOP "$volume_pid"
  thaw=$volume_pid # continued as soon as smaugd is dead
  run_point "$kind" "smaug.volume:$act" "$label" "$want" "$@" || rc=1
  thaw=
  [ "$rc" = 0 ] || return 1
  [ "$how" = resumed ] || { note_fail "$label: not resumed"; return 1; }
}

check_protect() { # label
  ckp=$(json "$start" checkpoint_id)
  if smaug checkpoint verify "$ckp" >"$dir/verify.out" 2>&1; then
    passed=$((passed + 1))
    ckps+=("$ckp")
  else
    note_fail "$1: verify $ckp: $(tail -3 "$dir/verify.out")"
  fi
}

# ------------------------------------------------------------------ protect
smaug -o json protect "$plan" --wait >"$dir/ref-protect.out" ||
  fail "reference protect: $(tail -3 "$dir/ref-protect.out")"
total=$($helper count "$dir/ref-protect.out")
want_protect=$($helper outcome "$dir/ref-protect.out" 0 | cut -d' ' -f1)
ref_ckp=$(json "$dir/ref-protect.out" checkpoint_id)
echo "protect: $total moments, plus discovery and a frozen volume plugin"

# Discovery: the project plugin is stopped, so ListDependents cannot be
# answered. The protect has been accepted (its checkpoint is recorded as
# protecting) and has no event: smaugd is killed while it discovers.
kill -STOP "$project_pid"
start=$dir/start-discovery.out
smaug -o json protect "$plan" >"$start" || fail "protect: $(cat "$start")"
op=$(json "$start" operation_id)
ckp=$(json "$start" checkpoint_id)
smaug -o json checkpoint show "$ckp" >"$dir/ckp.json" || fail "checkpoint show $ckp"
grep -q 'CHECKPOINT_STATUS_PROTECTING' "$dir/ckp.json" ||
  fail "protect@discovery: $(cat "$dir/ckp.json")"
kill -KILL "$stack_smaugd_pid"
gone "$stack_smaugd_pid"
kill_ms=$(($(date +%s%N) / 1000000))
kill -CONT "$project_pid"
restart
if await "$op" "$want_protect" "$kill_ms" protect@discovery; then
  echo "  protect@discovery: killed while the project plugin was stopped: $how"
  points_of[protect]=1
  if [ "$how" != resumed ]; then
    note_fail "protect@discovery: not resumed"
  elif [ "$($helper count "$dir/watch-$restarts.out")" != "$total" ]; then
    note_fail "protect@discovery: the resumed run has not $total moments"
  else
    resumed=$((resumed + 1))
    resumed_of[protect]=1
    check_protect protect@discovery
  fi
fi

frozen_point protect protect@frozen "$want_protect" \
  "$bin/smaug" -o json protect "$plan" --wait && check_protect protect@frozen
for k in $(seq 1 "$total"); do
  run_point protect "$k" "protect@$k" "$want_protect" \
    "$bin/smaug" -o json protect "$plan" --wait && check_protect "protect@$k"
done

# ------------------------------------------------------------------ restore
# Byte-identical restores of the checkpoints the killed protects made.
check_restore() { # label rst
  smaug -o json restore show "$2" >"$dir/restore.json" ||
    { note_fail "$1: restore show $2"; return; }
  if /usr/bin/python3 - "$dir/restore.json" "$proj" <<'PY'; then
import filecmp, json, os, sys
restore = json.load(open(sys.argv[1]))["restore"]
proj = sys.argv[2]
bad = []
for r in restore["results"]:
    t, i = r["resource"]["type"], r["resource"]["id"]
    new = r.get("restored_id")
    if not new:
        bad.append("%s#%s: no restored id" % (t, i))
        continue
    kind = {"smaug.volume": ("volumes", ".raw"),
            "smaug.image": ("images", ".img")}.get(t)
    if kind is None:
        continue
    a = os.path.join(proj, kind[0], i + kind[1])
    b = os.path.join(proj, kind[0], new + kind[1])
    if not filecmp.cmp(a, b, shallow=False):
        bad.append("%s differs from %s" % (b, a))
left = [os.path.join(d, f) for d, _, fs in os.walk(proj) for f in fs
        if f.endswith(".restore") or ".tmp" in f]
bad += ["left behind: " + p for p in left]
if bad:
    print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
    passed=$((passed + 1))
  else
    note_fail "$1: restore $2 is not byte-identical"
  fi
  # Remove the restored copies: later protects must not discover them.
  find "$proj" -name '*-r[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f].*' -delete
}

smaug -o json restore "$ref_ckp" --wait >"$dir/ref-restore.out" ||
  fail "reference restore: $(tail -3 "$dir/ref-restore.out")"
total=$($helper count "$dir/ref-restore.out")
want_restore=$($helper outcome "$dir/ref-restore.out" 0 | cut -d' ' -f1)
check_restore restore@reference "$(json "$dir/ref-restore.out" restore_id)"
echo "restore: $total moments, plus a frozen volume plugin"
i=0
restore_src() { # the next checkpoint a killed protect made
  src=${ckps[$((i % ${#ckps[@]}))]}
  i=$((i + 1))
}
restore_src
frozen_point restore restore@frozen "$want_restore" \
  "$bin/smaug" -o json restore "$src" --wait &&
  check_restore restore@frozen "$(json "$start" restore_id)"
for k in $(seq 1 "$total"); do
  restore_src
  run_point restore "$k" "restore@$k" "$want_restore" \
    "$bin/smaug" -o json restore "$src" --wait &&
    check_restore "restore@$k" "$(json "$start" restore_id)"
done

# A killed plugin: the volume plugin dies in the middle of a restore copy,
# with the bank's temporary copy (*.restore) in the cloud. The copy is
# held there by a FIFO in place of one of its chunks (opening it blocks),
# so the kill lands once the temporary file exists. smaugd retries the
# Sync on the restarted plugin, which restarts the lost copy: the restore
# ends well, byte-identical, and the dead process's temporary file is gone.
restore_src
manifest=$(find "$stack_bank/manifests/checkpoints/$src/smaug.volume/p1-vol-1" \
  -name '*.manifest.json' | head -1)
chunk=$(/usr/bin/python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))["chunks"][0]["sha256"])' "$manifest")
chunk=$stack_bank/chunks/${chunk:0:2}/$chunk
mv "$chunk" "$chunk.aside"
mkfifo "$chunk"
smaug -o json restore "$src" >"$dir/start-plugin-killed.out" ||
  fail "restore: $(cat "$dir/start-plugin-killed.out")"
op=$(json "$dir/start-plugin-killed.out" operation_id)
rst=$(json "$dir/start-plugin-killed.out" restore_id)
for _ in $(seq 3000); do # the copy is blocked: the file stays
  temp=$(find "$proj/volumes" -name 'p1-vol-1-r*.restore' | head -1)
  [ -n "$temp" ] && break
  sleep 0.01
done
[ -n "$temp" ] || fail "restore@volume-plugin-killed: no temporary copy appeared"
kill -KILL "$volume_pid"
gone "$volume_pid"
rm "$chunk"
mv "$chunk.aside" "$chunk"
stack_plugin volume plugin-volume-2
volume_pid=$stack_plugin_pid
disown "$volume_pid"
smaug -o json watch "$op" >"$dir/watch-plugin-killed.out" 2>&1 || true
res=$($helper outcome "$dir/watch-plugin-killed.out" 0 || true)
if [ "${res%% *}" != "$want_restore" ]; then
  note_fail "restore@volume-plugin-killed: ended ${res%% *}, want $want_restore: $(tail -1 "$dir/watch-plugin-killed.out" | cut -c1-300)"
elif [ -e "$temp" ]; then
  note_fail "restore@volume-plugin-killed: $temp is still there"
else
  echo "  restore@volume-plugin-killed: killed with ${temp##*/} in the cloud: removed"
  check_restore restore@volume-plugin-killed "$rst"
fi

# ------------------------------------------------------------------- delete
check_delete() { # label checkpoint
  if [ -e "$stack_bank/manifests/checkpoints/$2" ]; then
    note_fail "$1: the bank still holds $2"
  else
    passed=$((passed + 1))
  fi
}

smaug -o json checkpoint delete "$ref_ckp" --wait >"$dir/ref-delete.out" ||
  fail "reference delete: $(tail -3 "$dir/ref-delete.out")"
total=$($helper count "$dir/ref-delete.out")
want_delete=$($helper outcome "$dir/ref-delete.out" 0 | cut -d' ' -f1)
check_delete delete@reference "$ref_ckp"
echo "delete: $total moments, plus a frozen volume plugin"
delete_point() { # label k|frozen
  [ "${#ckps[@]}" -gt 0 ] || { note_fail "$1: no checkpoint left"; return; }
  victim=${ckps[0]}
  ckps=("${ckps[@]:1}")
  if [ "$2" = frozen ]; then
    frozen_point delete "$1" "$want_delete" \
      "$bin/smaug" -o json checkpoint delete "$victim" --wait
  else
    run_point delete "$2" "$1" "$want_delete" \
      "$bin/smaug" -o json checkpoint delete "$victim" --wait
  fi && check_delete "$1" "$victim"
}
delete_point delete@frozen frozen
for k in $(seq 1 "$total"); do
  delete_point "delete@$k" "$k"
done

# ------------------------------------------------------------------ summary
for kind in protect restore delete; do
  echo "$kind: ${points_of[$kind]:-0} kill points ended well," \
    "${resumed_of[$kind]:-0} resumed by the restarted smaugd"
done
echo "kill-matrix: $passed passed, $failed failed ($restarts restarts of smaugd, $resumed resumed)"
[ "$failed" -eq 0 ]
