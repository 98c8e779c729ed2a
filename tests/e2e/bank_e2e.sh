#!/usr/bin/env bash
# The chunk store seen through the whole system: smaugd, the sample plugins
# and the CLI on a generated cloud.
#   - an unchanged cloud protected again adds under 1% to the bank;
#   - deleting a checkpoint keeps the chunks another checkpoint shares, and
#     frees the ones nobody references any more;
#   - a corrupted chunk is named by `smaug checkpoint verify`, and a restore
#     fails that volume with a reason naming the chunk, skips what depends
#     on it, and restores every other resource.
# Usage: bank_e2e.sh DIR   (binaries from $SMAUG_BIN, default build/bin)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${SMAUG_BIN:-$here/build/bin}
fail() { echo "bank_e2e: FAILED: $*" >&2; exit 1; }
source "$here/scripts/stack.sh"
stack_init "${1:-$(mktemp -d /tmp/smaug-bank-e2e.XXXXXX)}"
dir=$stack_dir
proj=$stack_cloud_dir/projects/proj-1
stack_cloud --volume-mib 8
stack_up

chunk_bytes() { du -sb "$stack_bank/chunks" | cut -f1; }
chunk_count() { find "$stack_bank/chunks" -type f | wc -l; }
protect() { # -> checkpoint id
  smaug -o json protect "$plan" --wait >"$dir/protect.out" ||
    fail "protect: $(tail -3 "$dir/protect.out")"
  grep -o 'ckp-[0-9a-f]*' "$dir/protect.out" | head -1
}
delete() {
  smaug -o json checkpoint delete "$1" --wait >"$dir/delete.out" ||
    fail "delete $1: $(tail -3 "$dir/delete.out")"
}

cat >"$dir/plan.json" <<'JSON'
{ "name": "bank-e2e", "resources": [{"type": "smaug.project", "id": "proj-1"}] }
JSON
plan=$(smaug plan create -f "$dir/plan.json")

ckp1=$(protect)
b1=$(chunk_bytes)
n1=$(chunk_count)
ckp2=$(protect)
b2=$(chunk_bytes)
growth=$(awk -v a="$b1" -v b="$b2" 'BEGIN { printf "%.4f", (b - a) * 100 / a }')
awk -v g="$growth" 'BEGIN { exit !(g < 1) }' ||
  fail "second protect of an unchanged cloud grew the chunks by $growth%"
echo "re-protect of the unchanged cloud: chunks $b1 -> $b2 bytes (+$growth%)"

# ckp2 shares every chunk with ckp1: deleting ckp1 must free none of them.
delete "$ckp1"
[ "$(chunk_count)" -eq "$n1" ] || fail "deleting $ckp1 freed chunks $ckp2 uses"
smaug checkpoint verify "$ckp2" >"$dir/verify.out" ||
  fail "$ckp2 no longer verifies after deleting $ckp1: $(cat "$dir/verify.out")"

# New data in one volume gives new chunks; deleting that checkpoint frees
# exactly those again.
dd if=/dev/urandom of="$proj/volumes/p1-vol-2.raw" bs=1M count=2 conv=notrunc status=none
ckp3=$(protect)
n3=$(chunk_count)
[ "$n3" -gt "$n1" ] || fail "changed data added no chunks ($n1 -> $n3)"
delete "$ckp3"
[ "$(chunk_count)" -eq "$n1" ] ||
  fail "deleting $ckp3 left $(( $(chunk_count) - n1 )) unreferenced chunks"
echo "delete keeps shared chunks ($n1) and frees unreferenced ones ($n3 -> $n1)"

# Corrupt one chunk of volume p1-vol-3 in ckp2.
manifest=$(find "$stack_bank/manifests/checkpoints/$ckp2/smaug.volume/p1-vol-3" \
  -name '*.manifest.json' | head -1)
[ -n "$manifest" ] || fail "no manifest for p1-vol-3 in $ckp2"
chunk=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["chunks"][0]["sha256"])' "$manifest")
chunk_file=$stack_bank/chunks/${chunk:0:2}/$chunk
[ -f "$chunk_file" ] || fail "chunk file $chunk_file missing"
printf 'rot' | dd of="$chunk_file" bs=1 seek=20 conv=notrunc status=none

if smaug checkpoint verify "$ckp2" >"$dir/verify.out"; then
  fail "verify missed the corrupted chunk"
fi
grep -q "$chunk" "$dir/verify.out" || fail "verify does not name chunk $chunk: $(cat "$dir/verify.out")"

if smaug -o json restore "$ckp2" --wait >"$dir/restore.out"; then
  fail "restore from a corrupted checkpoint succeeded"
fi
rst=$(grep -o 'rst-[0-9a-f]*' "$dir/restore.out" | head -1)
smaug -o json restore show "$rst" >"$dir/restore.json"
/usr/bin/python3 - "$dir/restore.json" "$chunk" <<'PY'
import json, sys
restore = json.load(open(sys.argv[1]))["restore"]
chunk = sys.argv[2]
st = {(r["resource"]["type"], r["resource"]["id"]): r for r in restore["results"]}
def status(t, i):
    return st[(t, i)]["status"]
assert restore["status"] == "RESTORE_STATUS_FAIL", restore["status"]
bad = st[("smaug.volume", "p1-vol-3")]
assert bad["status"] == "TASK_STATUS_FAILED", bad
assert chunk in bad["reason"], "reason does not name the chunk: " + bad["reason"]
# p1-srv-3 uses p1-vol-3; the project depends on everything.
for dep in (("smaug.server", "p1-srv-3"), ("smaug.project", "proj-1")):
    assert status(*dep) == "TASK_STATUS_SKIPPED", (dep, st[dep])
for (t, i), r in st.items():
    if (t, i) in (("smaug.volume", "p1-vol-3"), ("smaug.server", "p1-srv-3"),
                  ("smaug.project", "proj-1")):
        continue
    assert r["status"] == "TASK_STATUS_DONE", ((t, i), r)
    assert r["restored_id"], ((t, i), r)
print("corrupted chunk: p1-vol-3 failed (%s); p1-srv-3 and proj-1 skipped; "
      "%d others restored" % (bad["reason"][:60], len(st) - 3))
PY
echo "bank e2e: 4 passed, 0 failed"
