#!/usr/bin/env bash
# The smaug client against a real smaugd on an ephemeral port with a
# temporary data dir: health, plugin list, and plan create/list/show/delete
# with -o json output parsed back (jq). smaugd is stopped with SIGTERM at
# the end, and killed if the script dies early.
set -u
SMAUG=$1
SMAUGD=$2
tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  echo "--- smaugd log"
  cat "$tmp/log"
  exit 1
}

mkdir -p "$tmp/data"
"$SMAUGD" --listen 127.0.0.1:0 --data-dir "$tmp/data" 2>"$tmp/log" &
pid=$!
addr=
for _ in $(seq 100); do
  addr=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$tmp/log" | head -1)
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || fail "smaugd exited before listening"
  sleep 0.1
done
[ -n "$addr" ] || fail "smaugd did not log its address"
export SMAUG_SERVER=$addr

out=$("$SMAUG" health "$addr") || fail "health exit $?"
[ "$out" = SERVING ] || fail "health printed '$out'"

"$SMAUG" -o json plugin list >"$tmp/plugins.json" || fail "plugin list exit $?"
jq -e '.plugins | length == 0' "$tmp/plugins.json" >/dev/null ||
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

echo "smaugd end-to-end passed"
