#!/usr/bin/env bash
# A plugin's max_concurrency holds across concurrent operations, through
# the smaug CLI. The fake plugin announces max_concurrency 2 and traces
# every activity and ListDependents call it receives with the number in
# flight at once (--call-trace). Three protects that each discover their
# graph, and a `smaug flow` (a discovery of its own) while they run, go to
# smaugd together: every protect must end `available`, and the trace must
# never show more than 2 calls in flight (it must show 2: the operations
# did overlap).
#
#   limits_cli.sh SMAUGD SMAUG FAKE_PLUGIN
set -u
. "$(dirname "$0")/lib.sh"
SMAUGD=$1
SMAUG=$2
PLUGIN=$3
tmp=$(mktemp -d)
pid=
ppid_=
cleanup() {
  stop "$pid"
  stop "$ppid_"
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  echo "--- smaugd log (tail)"
  tail -n 40 "$tmp/log"
  echo "0 passed, 1 failed"
  exit 1
}

"$PLUGIN" --types t.server,t.volume --lists-dependents --max-concurrency 2 \
  --delay-ms 60 --list-delay-ms 60 --call-trace "$tmp/trace" \
  2>"$tmp/plugin.log" &
ppid_=$!
until_ok grep -q "msg=listening" "$tmp/plugin.log" || fail "plugin did not start"
paddr=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$tmp/plugin.log")

"$SMAUGD" --listen 127.0.0.1:0 --data-dir "$tmp/data" --bank "file://$tmp/bank" \
  --plugin "$paddr" 2>"$tmp/log" &
pid=$!
until_ok grep -q "msg=listening" "$tmp/log" || fail "smaugd did not start"
export SMAUG_SERVER=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$tmp/log")
until_ok "$SMAUG" plugin list 2>/dev/null | grep -q "SERVING\|serving" ||
  fail "plugin not serving: $("$SMAUG" plugin list 2>&1)"

plans=()
for k in 1 2 3; do
  cat >"$tmp/plan$k.json" <<JSON
{ "name": "limits-$k",
  "resources": [{"type": "t.server", "id": "s$k", "extra": {"children":
    "t.volume/v$k-1;t.volume/v$k-2;t.volume/v$k-3"}}] }
JSON
  plans+=("$("$SMAUG" plan create -f "$tmp/plan$k.json")") || fail "plan create $k"
done
ops=()
for plan in "${plans[@]}"; do
  "$SMAUG" -o json protect "$plan" >"$tmp/p.json" || fail "protect $plan"
  ops+=("$(jq -r .operation_id "$tmp/p.json")")
done
"$SMAUG" flow "${plans[0]}" >"$tmp/flow" 2>&1 || fail "flow: $(cat "$tmp/flow")"
for op in "${ops[@]}"; do
  "$SMAUG" watch "$op" >"$tmp/watch" 2>&1
  grep -q "available" "$tmp/watch" || fail "operation $op: $(tail -3 "$tmp/watch")"
done

# 3 protects x 4 resources x (P + S) activities; 4 protect discoveries of
# 4 nodes each, counting the flow's.
acts=$(grep -c '^+ [0-9]* A' "$tmp/trace")
lists=$(grep -c '^+ [0-9]* L' "$tmp/trace")
max=$(awk '$1 == "+" && $2 > m { m = $2 } END { print m + 0 }' "$tmp/trace")
[ "$acts" -eq 24 ] || fail "activity calls: $acts, want 24"
[ "$lists" -eq 16 ] || fail "ListDependents calls: $lists, want 16"
[ "$max" -le 2 ] || fail "calls in flight at the plugin at once: $max, want <= 2"
[ "$max" -eq 2 ] || fail "calls never overlapped (max $max): the test saw no concurrency"

echo "1 passed, 0 failed"
