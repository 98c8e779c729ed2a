#!/usr/bin/env bash
# What enters smaugd, driven from outside with the smaug client against a
# real smaugd (127.0.0.1:0, temporary data dir) and the fake plugin, which
# records every activity request it gets:
#  - CreatePlan with a path or an empty string for a resource id is
#    refused with INVALID_ARGUMENT naming the field (`smaug plan create`,
#    and `buf curl` for the empty id, which the client itself refuses);
#  - the plan's parameters reach each activity of protect, and
#    `restore -p TYPE:KEY=VALUE` / `-p TYPE#ID:KEY=VALUE` win over them;
#  - a plugin whose name is 3 MB is refused at register, naming its address
#    and the field, and `plugin list` keeps working.
# Every process is stopped at exit, also when a check fails.
set -u
SMAUG=$1
SMAUGD=$2
PLUGIN=$3
BUF=$4
tmp=$(mktemp -d)
export BUF_CACHE_DIR="$tmp/buf-cache"
pids=()
stop() {
  local p=$1
  if kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p"
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  fi
}
cleanup() {
  for p in "${pids[@]}"; do stop "$p"; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  echo "--- smaugd log"
  cat "$tmp/smaugd.log" 2>/dev/null
  exit 1
}
# Waits for "msg=listening addr=..." in log $1 and prints the address.
listening() {
  local a=
  for _ in $(seq 150); do
    a=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$1" 2>/dev/null | head -1)
    [ -n "$a" ] && break
    sleep 0.1
  done
  echo "$a"
}

"$PLUGIN" --types t.server,t.volume --request-trace "$tmp/req.trace" \
  2>"$tmp/plugin.log" &
pids+=($!)
paddr=$(listening "$tmp/plugin.log")
[ -n "$paddr" ] || fail "the fake plugin did not start"

mkdir -p "$tmp/data"
"$SMAUGD" --listen 127.0.0.1:0 --data-dir "$tmp/data" --plugin "$paddr" \
  2>"$tmp/smaugd.log" &
pids+=($!)
addr=$(listening "$tmp/smaugd.log")
[ -n "$addr" ] || fail "smaugd did not log its address"
export SMAUG_SERVER=$addr
for _ in $(seq 100); do
  "$SMAUG" plugin list 2>/dev/null | grep -q fake && break
  sleep 0.1
done

# Ids: a path and an empty string, refused by smaugd naming the field.
bad='{"name": "bad", "resources": [{"type": "t.server", "id": "s1"},
  {"type": "t.volume", "id": "%s"}]}'
printf "$bad" '../../../etc/passwd' >"$tmp/bad.json"
"$SMAUG" plan create -f "$tmp/bad.json" >/dev/null 2>"$tmp/err" &&
  fail "a plan with a path for an id was accepted"
grep -qF 'INVALID_ARGUMENT' "$tmp/err" || fail "path id: $(cat "$tmp/err")"
grep -qF 'plan.resources[1].id: "../../../etc/passwd" does not match' \
  "$tmp/err" || fail "path id: the field is not named: $(cat "$tmp/err")"
for id in '../../../etc/passwd' ''; do
  want='required'
  [ -n "$id" ] && want="does not match"
  timeout 30 "$BUF" curl --protocol grpc --http2-prior-knowledge \
    "http://$addr/smaug.v1.Orchestrator/CreatePlan" \
    -d "{\"plan\": $(printf "$bad" "$id")}" >"$tmp/out" 2>"$tmp/err" &&
    fail "buf curl: a plan with id '$id' was accepted: $(cat "$tmp/out")"
  grep -qi 'invalid_argument' "$tmp/err" ||
    fail "buf curl, id '$id': $(cat "$tmp/err")"
  grep -qF "plan.resources[1].id: " "$tmp/err" &&
    grep -qF "$want" "$tmp/err" ||
    fail "buf curl, id '$id': the field is not named: $(cat "$tmp/err")"
done

cat >"$tmp/plan.json" <<'JSON'
{ "name": "params",
  "resources": [{"type": "t.server", "id": "s1"},
                {"type": "t.volume", "id": "v1"},
                {"type": "t.volume", "id": "v2"}],
  "edges": [{"parent": "t.server#s1", "child": "t.volume#v1"},
            {"parent": "t.server#s1", "child": "t.volume#v2"}],
  "parameters": {"t.volume": {"a": "1", "b": "plan"},
                 "t.volume#v2": {"b": "v2"},
                 "t.server": {"s": "1"}} }
JSON
plan=$("$SMAUG" plan create -f "$tmp/plan.json") || fail "plan create exit $?"
"$SMAUG" protect "$plan" --wait >"$tmp/protect" 2>"$tmp/err" ||
  fail "protect --wait exit $?: $(cat "$tmp/protect" "$tmp/err")"
ckp=$(sed -n 's/^checkpoint  *//p' "$tmp/protect")
case "$ckp" in ckp-*) ;; *) fail "protect printed: $(cat "$tmp/protect")" ;; esac
"$SMAUG" restore "$ckp" -p t.volume:b=restore -p t.volume:r=1 \
  -p 't.server#s1:s=2' --wait >"$tmp/restore" 2>"$tmp/err" ||
  fail "restore --wait exit $?: $(cat "$tmp/restore" "$tmp/err")"

# One line per activity: "A <P|S> <op> <type>#<id> <section> <params>".
expect() { # op type id params
  for act in P S; do
    line="A $act $1 $2#$3 checkpoints/$ckp/$2/$3 $4"
    n=$(grep -cxF "$line" "$tmp/req.trace")
    [ "$n" = 1 ] || fail "want once, got $n: $line; trace:
$(cat "$tmp/req.trace")"
  done
}
expect protect t.server s1 s=1
expect protect t.volume v1 a=1,b=plan
expect protect t.volume v2 a=1,b=v2
expect restore t.server s1 s=2
expect restore t.volume v1 a=1,b=restore,r=1
expect restore t.volume v2 a=1,b=restore,r=1
[ "$(grep -c '^A ' "$tmp/req.trace")" = 12 ] ||
  fail "unexpected calls: $(cat "$tmp/req.trace")"

# A plugin named with 3 MB: refused, naming its address and the field.
"$PLUGIN" --types t.big --name-bytes 3000000 2>"$tmp/big.log" &
pids+=($!)
baddr=$(listening "$tmp/big.log")
[ -n "$baddr" ] || fail "the big plugin did not start"
"$SMAUG" plugin register "$baddr" >/dev/null 2>"$tmp/err" &&
  fail "a 3 MB plugin name was registered"
grep -q INVALID_ARGUMENT "$tmp/err" || fail "register: $(cat "$tmp/err")"
grep -qF "$baddr" "$tmp/err" || fail "register: no address: $(cat "$tmp/err")"
grep -q 'GetPluginInfo.name' "$tmp/err" ||
  fail "register: no field: $(cat "$tmp/err")"
"$SMAUG" plugin list >"$tmp/list" 2>"$tmp/err" ||
  fail "plugin list exit $?: $(cat "$tmp/err")"
grep -q fake "$tmp/list" || fail "plugin list: $(cat "$tmp/list")"
[ "$(wc -c <"$tmp/list")" -lt 10000 ] || fail "plugin list holds the big name"

echo "input through the client passed"
