#!/usr/bin/env bash
# A full disk in the middle of a protect, through the smaug CLI. The data
# directory is a 2 MiB tmpfs (the test runs as root; a mount that is not
# permitted fails the test). Once the plugin's call trace shows the protect
# running, the disk is filled: the protect must end `error` with the
# store's reason as soon as its status can be written, which it can once
# space is freed; then the checkpoint is deleted and the plan protected
# again. New requests meanwhile answer INTERNAL naming the full disk.
#
#   full_disk.sh SMAUGD SMAUG FAKE_PLUGIN
set -u
. "$(dirname "$0")/lib.sh"
SMAUGD=$1
SMAUG=$2
PLUGIN=$3
tmp=$(mktemp -d)
data=$tmp/data
pid=
ppid_=
mounted=
cleanup() {
  stop "$pid"
  stop "$ppid_"
  [ -n "$mounted" ] && umount "$data"
  [ -n "${KEEP:-}" ] && cp "$tmp/log" "$KEEP"
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

mkdir -p "$data"
mount -t tmpfs -o size=2m tmpfs "$data" ||
  fail "cannot mount a 2 MiB tmpfs on $data (the test needs root)"
mounted=1

"$PLUGIN" --types t.vol --delay-ms 1500 --trace "$tmp/trace" \
  2>"$tmp/plugin.log" &
ppid_=$!
until_ok grep -q "msg=listening" "$tmp/plugin.log" || fail "plugin did not start"
paddr=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$tmp/plugin.log")

"$SMAUGD" --listen 127.0.0.1:0 --data-dir "$data" --bank "file://$tmp/bank" \
  --plugin "$paddr" 2>"$tmp/log" &
pid=$!
until_ok grep -q "msg=listening" "$tmp/log" || fail "smaugd did not start"
export SMAUG_SERVER=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$tmp/log")
until_ok "$SMAUG" plugin list 2>/dev/null | grep -q "SERVING\|serving" ||
  fail "plugin not serving: $("$SMAUG" plugin list 2>&1)"

cat >"$tmp/plan.json" <<'JSON'
{ "name": "disk",
  "resources": [{"type": "t.vol", "id": "v1"}, {"type": "t.vol", "id": "v2"},
                {"type": "t.vol", "id": "v3"}] }
JSON
plan=$("$SMAUG" plan create -f "$tmp/plan.json") || fail "plan create"
"$SMAUG" -o json protect "$plan" >"$tmp/p.json" || fail "protect"
ckp=$(jq -r .checkpoint_id "$tmp/p.json")
op=$(jq -r .operation_id "$tmp/p.json")

# Running: the plugin has been called for the protect.
until_ok grep -q "^P $op/" "$tmp/trace" || fail "the protect never ran"
"$SMAUG" -o json checkpoint show "$ckp" | jq -e '.checkpoint.status ==
  "CHECKPOINT_STATUS_PROTECTING"' >/dev/null || fail "not protecting"

# Fill the disk.
dd if=/dev/zero of="$data/fill" bs=16k 2>/dev/null
df -k "$data" | tail -1

# A new request is refused with the reason.
"$SMAUG" protect "$plan" 2>"$tmp/err" >/dev/null && fail "protect on a full disk"
grep -q "INTERNAL: store: no space left on device" "$tmp/err" ||
  fail "refusal: $(cat "$tmp/err")"

# The running protect is stopped as its records cannot be written.
until_ok grep -q "operation stopped: its records were lost.*op=$op" "$tmp/log" ||
  fail "the protect was not stopped"

# Free space: the final status gets written.
rm -f "$data/fill"
is_error() {
  "$SMAUG" -o json checkpoint show "$ckp" >"$tmp/c.json" 2>/dev/null &&
    jq -e '.checkpoint.status == "CHECKPOINT_STATUS_ERROR"' "$tmp/c.json" \
      >/dev/null
}
until_ok is_error || fail "checkpoint not error: $(cat "$tmp/c.json")"
jq -e '.checkpoint.reason | test("INTERNAL: store: no space left on device")' \
  "$tmp/c.json" >/dev/null || fail "reason: $(jq .checkpoint.reason "$tmp/c.json")"
"$SMAUG" watch "$op" >"$tmp/watch" 2>&1
grep -q "error" "$tmp/watch" || fail "watch: $(cat "$tmp/watch")"

# The user can delete it, and protect again.
"$SMAUG" checkpoint delete "$ckp" --wait >"$tmp/del" 2>&1 ||
  fail "delete: $(cat "$tmp/del")"
"$SMAUG" -o json checkpoint show "$ckp" | jq -e '.checkpoint.status ==
  "CHECKPOINT_STATUS_DELETED"' >/dev/null || fail "not deleted"
"$SMAUG" protect "$plan" --wait >"$tmp/again" 2>&1 ||
  fail "protect again: $(cat "$tmp/again")"
grep -q '^operation available' "$tmp/again" || fail "again: $(cat "$tmp/again")"

echo "1 passed, 0 failed"
