#!/usr/bin/env bash
# The smaug client against a real smaugd on an ephemeral port with a
# temporary data dir and a minimal plugin (smaug-cli-test-plugin): health,
# plugin register/list, plan create/list/show/delete with -o json output
# parsed back (jq), protect --wait, checkpoint list/show and flow --dot,
# and the results of a checkpoint and a restore larger than one page.
# Both servers are stopped with SIGTERM at the end (killed if that fails).
set -u
SMAUG=$1
SMAUGD=$2
PLUGIN=$3
tmp=$(mktemp -d)
pid=
ppid_=
stop() {
  local p=$1
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p"
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  fi
}
cleanup() {
  stop "$pid"
  stop "$ppid_"
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  echo "--- smaugd log"
  cat "$tmp/log"
  exit 1
}

"$PLUGIN" >"$tmp/plugin.out" 2>"$tmp/plugin.log" &
ppid_=$!
pport=
for _ in $(seq 100); do
  pport=$(sed -n 's/^port=//p' "$tmp/plugin.out" 2>/dev/null)
  [ -n "$pport" ] && break
  sleep 0.1
done
[ -n "$pport" ] || fail "the test plugin did not start"

mkdir -p "$tmp/data"
"$SMAUGD" --listen 127.0.0.1:0 --data-dir "$tmp/data" 2>"$tmp/log" &
pid=$!
addr=
for _ in $(seq 100); do
  addr=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$tmp/log" 2>/dev/null | head -1)
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || fail "smaugd exited before listening"
  sleep 0.1
done
[ -n "$addr" ] || fail "smaugd did not log its address"
export SMAUG_SERVER=$addr

out=$("$SMAUG" health "$addr") || fail "health exit $?"
[ "$out" = SERVING ] || fail "health printed '$out'"

"$SMAUG" plugin register "127.0.0.1:$pport" >"$tmp/reg" ||
  fail "plugin register exit $?"
grep -q '^registered cli-test 1.0.0' "$tmp/reg" || fail "register: $(cat "$tmp/reg")"
"$SMAUG" -o json plugin list >"$tmp/plugins.json" || fail "plugin list exit $?"
jq -e '.plugins | length == 1 and .[0].info.name == "cli-test"' \
  "$tmp/plugins.json" >/dev/null ||
  fail "plugin list json: $(cat "$tmp/plugins.json")"

cat >"$tmp/plan.json" <<'JSON'
{ "name": "web",
  "resources": [{"type": "smaug.server", "id": "srv-1", "name": "Server 1"},
                {"type": "smaug.volume", "id": "vol-1"}],
  "edges": [{"parent": "smaug.server#srv-1", "child": "smaug.volume#vol-1"}],
  "parameters": {"smaug.volume": {"compress": "true"},
                 "smaug.volume#vol-1": {"compress": "false"}} }
JSON

id=$("$SMAUG" plan create -f "$tmp/plan.json") || fail "plan create exit $?"
case "$id" in pln-*) ;; *) fail "plan create printed '$id'" ;; esac

"$SMAUG" -o json plan show "$id" >"$tmp/show.json" || fail "plan show exit $?"
jq -e --arg id "$id" '.id == $id and .name == "web"
  and (.resources | length) == 2
  and .resources[0].name == "Server 1"
  and .edges[0].parent == "smaug.server#srv-1"
  and .edges[0].child == "smaug.volume#vol-1"
  and .parameters["smaug.volume#vol-1"].compress == "false"
  and .created_at_ms > 0' "$tmp/show.json" >/dev/null ||
  fail "plan show json: $(cat "$tmp/show.json")"

# What plan show -o json prints is a valid plan file.
id2=$("$SMAUG" plan create -f "$tmp/show.json") || fail "re-create exit $?"
[ "$id2" != "$id" ] || fail "re-created plan got the same id"

"$SMAUG" -o json plan list >"$tmp/list.json" || fail "plan list exit $?"
jq -e --arg a "$id" --arg b "$id2" '[.plans[].id] == [$a, $b]' \
  "$tmp/list.json" >/dev/null || fail "plan list json: $(cat "$tmp/list.json")"
"$SMAUG" plan list | grep -q "^$id  *web  *2 " || fail "plan list table"

"$SMAUG" plan delete "$id" >/dev/null || fail "plan delete exit $?"
"$SMAUG" plan show "$id" 2>"$tmp/err"
rc=$?
[ $rc = 1 ] || fail "show of a deleted plan exited $rc"
grep -q NOT_FOUND "$tmp/err" || fail "show of a deleted plan: $(cat "$tmp/err")"
"$SMAUG" -o json plan list | jq -e --arg b "$id2" '[.plans[].id] == [$b]' \
  >/dev/null || fail "plan list after delete"

# protect --wait against the plugin; not a terminal, so plain lines.
"$SMAUG" protect "$id2" --wait >"$tmp/protect" 2>"$tmp/err" ||
  fail "protect --wait exit $?: $(cat "$tmp/protect" "$tmp/err")"
ckp=$(sed -n 's/^checkpoint  *//p' "$tmp/protect")
case "$ckp" in ckp-*) ;; *) fail "protect printed: $(cat "$tmp/protect")" ;; esac
grep -q 'smaug.volume#vol-1  done  *done' "$tmp/protect" ||
  fail "protect summary: $(cat "$tmp/protect")"
grep -q '^operation available' "$tmp/protect" ||
  fail "protect outcome: $(cat "$tmp/protect")"

"$SMAUG" -o json checkpoint list --plan "$id2" >"$tmp/ckps.json" ||
  fail "checkpoint list exit $?"
jq -e --arg c "$ckp" '.checkpoints[0].id == $c and
  .checkpoints[0].status == "CHECKPOINT_STATUS_AVAILABLE"' "$tmp/ckps.json" \
  >/dev/null || fail "checkpoint list json: $(cat "$tmp/ckps.json")"
"$SMAUG" checkpoint show "$ckp" >"$tmp/show" || fail "checkpoint show exit $?"
grep -q '^status: *available' "$tmp/show" || fail "checkpoint show: $(cat "$tmp/show")"

# restore --wait, then restore show for the restored ids.
"$SMAUG" restore "$ckp" --wait >"$tmp/restore" 2>"$tmp/err" ||
  fail "restore --wait exit $?: $(cat "$tmp/restore" "$tmp/err")"
rst=$(grep -o 'rst-[0-9a-f]*' "$tmp/restore" | head -1)
[ -n "$rst" ] || fail "restore printed no id: $(cat "$tmp/restore")"
"$SMAUG" -o json restore show "$rst" >"$tmp/rst.json" || fail "restore show exit $?"
jq -e --arg c "$ckp" '.restore.checkpoint_id == $c and
  .restore.status == "RESTORE_STATUS_SUCCESS" and
  (.restore.results | length > 0)' "$tmp/rst.json" \
  >/dev/null || fail "restore show json: $(cat "$tmp/rst.json")"
"$SMAUG" restore show rst-0000 2>"$tmp/err"
rc=$?
[ $rc = 1 ] || fail "restore show of an unknown id exited $rc"
grep -q NOT_FOUND "$tmp/err" || fail "restore show unknown: $(cat "$tmp/err")"

"$SMAUG" flow "$ckp" --dot >"$tmp/flow.dot" || fail "flow --dot exit $?"
grep -q 'digraph' "$tmp/flow.dot" || fail "flow --dot: $(cat "$tmp/flow.dot")"

# More resources than GetCheckpoint and GetRestore carry (1000) and than
# one ListResourceResults page (500): show, restore --wait and verify
# follow the pages, and the pages join to every resource once, in order.
n=1234
jq -n --argjson n $n '{name: "many", resources: [range($n) |
  {type: "smaug.volume", id: ("v\(. + 100000)")}]}' >"$tmp/many.json"
many=$("$SMAUG" plan create -f "$tmp/many.json") || fail "plan create many"
"$SMAUG" protect "$many" --wait >"$tmp/protect" 2>"$tmp/err" ||
  fail "protect many exit $?: $(tail "$tmp/protect" "$tmp/err")"
ckp=$(sed -n 's/^checkpoint  *//p' "$tmp/protect")
want=$(jq -c '[.resources[].id]' "$tmp/many.json")
"$SMAUG" -o json checkpoint show "$ckp" >"$tmp/ckp.json" ||
  fail "checkpoint show many exit $?"
jq -e --argjson w "$want" '[.checkpoint.results[].resource.id] == $w and
  (.results_truncated | not) and .results_total == ($w | length)' \
  "$tmp/ckp.json" >/dev/null ||
  fail "checkpoint show -o json: $(jq -c '[.results_truncated,
    .results_total, (.checkpoint.results | length)]' "$tmp/ckp.json")"
rows=$("$SMAUG" checkpoint show "$ckp" | grep -c '^smaug.volume#v1[0-9]* *done ')
[ "$rows" = $n ] || fail "checkpoint show printed $rows of $n results"
"$SMAUG" -o json checkpoint verify "$ckp" >"$tmp/verify.json" ||
  fail "checkpoint verify exit $?: $(cat "$tmp/verify.json")"
"$SMAUG" restore "$ckp" --wait >"$tmp/restore" 2>"$tmp/err" ||
  fail "restore many exit $?: $(tail "$tmp/restore" "$tmp/err")"
rst=$(grep -o 'rst-[0-9a-f]*' "$tmp/restore" | head -1)
rows=$(grep -c '^smaug.volume#v1[0-9]*  *done  *[^ ]' "$tmp/restore")
[ "$rows" -ge $n ] || fail "restore --wait printed $rows of $n results"
"$SMAUG" -o json restore show "$rst" >"$tmp/rst.json" ||
  fail "restore show many exit $?"
jq -e --argjson w "$want" '[.restore.results[].resource.id] == $w and
  ([.restore.results[].status | select(. == "TASK_STATUS_DONE")] | length) ==
  ($w | length)' "$tmp/rst.json" >/dev/null ||
  fail "restore show -o json: $(jq -c '.restore.results | length' "$tmp/rst.json")"

echo "smaugd end-to-end passed"
