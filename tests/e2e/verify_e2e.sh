#!/usr/bin/env bash
# Data that is gone from the bank, seen through the CLI: smaugd, the sample
# plugins and `smaug` on a generated cloud.
#   - one volume's manifest moved away: `smaug checkpoint verify` exits
#     non-zero naming that volume (text and -o json), and `smaug restore`
#     is refused with FAILED_PRECONDITION naming it;
#   - another volume's manifest put in its place: verify names the digest
#     the checkpoint recorded;
#   - the manifest put back: verify is OK and the restore succeeds;
#   - the network plugin's plain file (`object_sha256.network.json`)
#     removed: verify exits non-zero naming that network, and the restore
#     is refused naming it; put back with other contents: verify names the
#     recorded digest.
# Usage: verify_e2e.sh DIR   (binaries from $SMAUG_BIN, default build/bin)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${SMAUG_BIN:-$here/build/bin}
fail() { echo "verify_e2e: FAILED: $*" >&2; exit 1; }
source "$here/scripts/stack.sh"

# verify_names OUT WHAT PATTERN: `smaug checkpoint verify` of $ckp exits
# non-zero (output in $dir/OUT.out) with exactly one MISSING line, and it
# matches PATTERN; WHAT says what is gone, for the failure messages.
verify_names() {
  local out=$dir/$1.out
  if smaug checkpoint verify "$ckp" >"$out" 2>&1; then
    fail "verify passed with $2: $(cat "$out")"
  fi
  grep -q "$3" "$out" || fail "verify does not name $2: $(cat "$out")"
  [ "$(grep -c '^MISSING' "$out")" -eq 1 ] ||
    fail "verify names more than $2: $(cat "$out")"
}

# restore_refused OUT NAME: `smaug restore` of $ckp is refused with
# FAILED_PRECONDITION naming NAME (type#id); output in $dir/OUT.out.
restore_refused() {
  local out=$dir/$1.out
  if smaug restore "$ckp" >"$out" 2>&1; then
    fail "restore started with $2's data gone: $(cat "$out")"
  fi
  grep -q 'FAILED_PRECONDITION' "$out" ||
    fail "restore not refused with FAILED_PRECONDITION: $(cat "$out")"
  grep -q "$2" "$out" || fail "restore refusal does not name $2: $(cat "$out")"
}
stack_init "${1:-$(mktemp -d /tmp/smaug-verify-e2e.XXXXXX)}"
dir=$stack_dir
stack_cloud --volume-mib 2
stack_up

cat >"$dir/plan.json" <<'JSON'
{ "name": "verify-e2e", "resources": [{"type": "smaug.project", "id": "proj-1"}] }
JSON
plan=$(smaug plan create -f "$dir/plan.json")
smaug -o json protect "$plan" --wait >"$dir/protect.out" ||
  fail "protect: $(tail -3 "$dir/protect.out")"
ckp=$(grep -o 'ckp-[0-9a-f]*' "$dir/protect.out" | head -1)
smaug checkpoint verify "$ckp" >"$dir/verify0.out" ||
  fail "a fresh checkpoint does not verify: $(cat "$dir/verify0.out")"
passed=1

sec=$stack_bank/manifests/checkpoints/$ckp/smaug.volume
manifest=$sec/p1-vol-2/data.manifest.json
[ -f "$manifest" ] || fail "no manifest $manifest"
mv "$manifest" "$dir/moved.manifest.json"

# verify: non-zero, naming the volume, in text and in JSON.
verify_names verify1 "p1-vol-2's manifest gone" '^MISSING  smaug.volume#p1-vol-2: '
if smaug -o json checkpoint verify "$ckp" >"$dir/verify1.json"; then
  fail "verify -o json passed with p1-vol-2's manifest gone"
fi
/usr/bin/python3 - "$dir/verify1.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
assert v["ok"] is False, v
assert v["missing_objects"] == 1, v
m = v["missing"][0]
assert (m["type"], m["id"]) == ("smaug.volume", "p1-vol-2"), m
assert m["section"].endswith("/smaug.volume/p1-vol-2"), m
PY
passed=$((passed + 1))

# restore: refused before it starts, naming the volume.
restore_refused restore1 smaug.volume#p1-vol-2
passed=$((passed + 1))

# Another object in its place: present, but not what the checkpoint saved.
cp "$sec/p1-vol-1/data.manifest.json" "$manifest"
verify_names verify2 "p1-vol-1's manifest in p1-vol-2's place" \
  '^MISSING  smaug.volume#p1-vol-2: .*manifest sha256 [0-9a-f]*, the checkpoint recorded'
passed=$((passed + 1))

# Put back: verify OK, restore works.
mv "$dir/moved.manifest.json" "$manifest"
smaug checkpoint verify "$ckp" >"$dir/verify3.out" ||
  fail "verify fails once the manifest is back: $(cat "$dir/verify3.out")"
grep -q ': OK$' "$dir/verify3.out" || fail "verify not OK: $(cat "$dir/verify3.out")"
smaug -o json restore "$ckp" --wait >"$dir/restore2.out" ||
  fail "restore once the manifest is back: $(tail -3 "$dir/restore2.out")"
rst=$(grep -o 'rst-[0-9a-f]*' "$dir/restore2.out" | head -1)
smaug -o json restore show "$rst" >"$dir/restore2.json"
grep -q '"status": "RESTORE_STATUS_SUCCESS"' "$dir/restore2.json" ||
  fail "restore $rst did not succeed: $(cat "$dir/restore2.json")"
passed=$((passed + 1))

# The network plugin keeps a plain file, not a manifest: removing it is
# caught the same way.
netfile=$(ls "$stack_bank/checkpoints/$ckp/smaug.network"/*/network.json | head -1)
[ -f "$netfile" ] || fail "no network file under $stack_bank/checkpoints/$ckp"
net=$(basename "$(dirname "$netfile")")
smaug -o json checkpoint show "$ckp" >"$dir/show.json"
grep -q '"object_sha256.network.json"' "$dir/show.json" ||
  fail "the checkpoint does not record object_sha256.network.json for $net"
mv "$netfile" "$dir/moved.network.json"
verify_names verify4 "$net's network.json gone" \
  "^MISSING  smaug.network#$net: file checkpoints/$ckp/smaug.network/$net/network.json: not in the bank"
if smaug -o json checkpoint verify "$ckp" >"$dir/verify4.json"; then
  fail "verify -o json passed with $net's network.json gone"
fi
/usr/bin/python3 - "$dir/verify4.json" "$net" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
assert v["ok"] is False and v["missing_objects"] == 1, v
m = v["missing"][0]
assert (m["type"], m["id"], m["object"]) == (
    "smaug.network", sys.argv[2], "network.json"), m
PY
restore_refused restore3 "smaug.network#$net"
passed=$((passed + 1))

# Other contents in its place: present, but not what was saved.
printf '{"id": "%s", "cidr": "10.9.9.0/24"}\n' "$net" >"$netfile"
verify_names verify5 "$net's network.json replaced" \
  "^MISSING  smaug.network#$net: .*sha256 [0-9a-f]*, the checkpoint recorded"
mv "$dir/moved.network.json" "$netfile"
smaug checkpoint verify "$ckp" >"$dir/verify6.out" ||
  fail "verify fails once network.json is back: $(cat "$dir/verify6.out")"
passed=$((passed + 1))
echo "verify e2e: $passed passed, 0 failed"
