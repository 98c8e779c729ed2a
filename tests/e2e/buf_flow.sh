#!/usr/bin/env bash
# protect -> restore -> delete through `buf curl`, a real gRPC client that
# knows the API only through smaugd's server reflection; the event stream is
# watched from the start and resumed from a sequence number.
# Usage: buf_flow.sh BUF DIR   (binaries from $SMAUG_BIN, default build/bin)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${SMAUG_BIN:-$here/build/bin}
buf=$1
fail() { echo "buf_flow: FAILED: $*" >&2; exit 1; }
source "$here/scripts/stack.sh"
stack_init "${2:-$(mktemp -d /tmp/smaug-buf-flow.XXXXXX)}"
dir=$stack_dir
stack_cloud --volume-mib 2 --image-kib 64
stack_up

call() { # METHOD JSON
  "$buf" curl --protocol grpc --http2-prior-knowledge --emit-defaults \
    --unix-socket "$dir/run/smaugd.sock" -d "$2" \
    "http://localhost/smaug.v1.Orchestrator/$1"
}
py() { /usr/bin/python3 -c "$@"; }
field() { # JSON-FILE EXPR
  py "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}
# Watches an operation to its end; prints the final status, checks the
# sequence numbers, and checks that a resumed watch continues exactly.
watch() { # OP NAME
  call WatchOperation "{\"operation_id\": \"$1\"}" >"$dir/$2.watch" ||
    fail "watch $1"
  py '
import json, sys
text = open(sys.argv[1]).read()
dec, i, evs = json.JSONDecoder(), 0, []
while i < len(text):
    if text[i].isspace():
        i += 1
        continue
    obj, i = dec.raw_decode(text, i)
    evs.append(obj["event"])
seqs = [int(e["sequence"]) for e in evs]
assert seqs == list(range(1, len(seqs) + 1)), seqs
assert evs[-1]["kind"] == "EVENT_KIND_OPERATION_FINISHED", evs[-1]
print(evs[-1]["finalStatus"], len(evs))
' "$dir/$2.watch"
}

call CreatePlan '{"plan": {"name": "buf", "resources": [
  {"type": "smaug.project", "id": "proj-1", "extra": {"project": "proj-1"}}]}}' \
  >"$dir/plan.json" || fail "CreatePlan"
plan=$(field "$dir/plan.json" 'd["plan"]["id"]')

call Protect "{\"plan_id\": \"$plan\"}" >"$dir/protect.json" || fail "Protect"
ckp=$(field "$dir/protect.json" 'd["checkpointId"]')
op=$(field "$dir/protect.json" 'd["operationId"]')
read -r status n <<<"$(watch "$op" protect)"
[ "$status" = available ] || fail "protect ended $status"

# Resume: everything after sequence n-3 is exactly the last three events.
call WatchOperation "{\"operation_id\": \"$op\", \"after_sequence\": $((n - 3))}" \
  >"$dir/resume.watch" || fail "resumed watch"
got=$(grep -o '"sequence": *"[0-9]*"' "$dir/resume.watch" | grep -o '[0-9]*' | tr '\n' ' ')
[ "$got" = "$((n - 2)) $((n - 1)) $n " ] || fail "resumed watch gave sequences: $got"

call GetCheckpoint "{\"id\": \"$ckp\"}" >"$dir/ckp.json" || fail "GetCheckpoint"
[ "$(field "$dir/ckp.json" 'd["checkpoint"]["status"]')" = CHECKPOINT_STATUS_AVAILABLE ] ||
  fail "checkpoint is not available"

call Restore "{\"checkpoint_id\": \"$ckp\"}" >"$dir/restore.json" || fail "Restore"
read -r status _ <<<"$(watch "$(field "$dir/restore.json" 'd["operationId"]')" restore)"
[ "$status" = success ] || fail "restore ended $status"

call DeleteCheckpoint "{\"id\": \"$ckp\"}" >"$dir/delete.json" || fail "DeleteCheckpoint"
read -r status _ <<<"$(watch "$(field "$dir/delete.json" 'd["operationId"]')" delete)"
[ "$status" = deleted ] || fail "delete ended $status"

# A restore from a deleted checkpoint is refused with FAILED_PRECONDITION.
if call Restore "{\"checkpoint_id\": \"$ckp\"}" >"$dir/refused.json" 2>&1; then
  fail "restore of a deleted checkpoint was accepted"
fi
grep -q 'failed_precondition' "$dir/refused.json" ||
  fail "restore of a deleted checkpoint: $(cat "$dir/refused.json")"
echo "buf flow: 5 passed, 0 failed"
