#!/usr/bin/env bash
# Modes of what smaug writes, through the binaries and the CLI, with the
# permissive umask 0 so that nothing passes by luck:
#   - smaugd's data directory is 0700 when smaugd makes it, and one made
#     before with 0755 is narrowed to 0700 (stderr says so);
#   - smaugd's and every sample plugin's unix socket is 0660 or stricter;
#   - after `smaug protect`, every directory of the bank is 0700 and every
#     file 0600.
# Usage: modes.sh DIR   (binaries from $SMAUG_BIN, default build/bin)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${SMAUG_BIN:-$here/build/bin}
fail() { echo "modes: FAILED: $*" >&2; exit 1; }
umask 0
source "$here/scripts/stack.sh"
stack_init "${1:-$(mktemp -d /tmp/smaug-modes.XXXXXX)}"
dir=$stack_dir
mode() { stat -c %a "$1"; }

# A data directory made before, open to everyone, is narrowed at start.
mkdir -m 0755 "$stack_dir/smaugd"
stack_cloud --volume-mib 1 --image-kib 64
stack_up
[ "$(mode "$stack_dir/smaugd")" = 700 ] ||
  fail "data dir $stack_dir/smaugd is $(mode "$stack_dir/smaugd"), want 700"
grep -q "data directory $stack_dir/smaugd was mode 0755, now 0700" \
  "$stack_dir/logs/smaugd.log" || fail "smaugd did not say it narrowed the data dir"

# Sockets: 0660 or stricter (no execute bit, nothing for others).
for s in "$stack_dir"/run/*.sock; do
  m=$(stat -c %a "$s")
  (( (8#$m & 8#117) == 0 )) || fail "socket $s is $m, want 0660 or stricter"
done
echo "ok: data dir 0700 (narrowed from 0755), $(ls "$stack_dir"/run/*.sock | wc -l) sockets 0660 or stricter"

# A fresh data directory is made 0700.
"$bin/smaugd" --listen "unix:$dir/fresh.sock" --data-dir "$dir/fresh" \
  >"$dir/logs/fresh.log" 2>&1 &
fresh=$!
stack_pids+=("$fresh")
for _ in $(seq 200); do
  grep -q 'msg=listening' "$dir/logs/fresh.log" && break
  sleep 0.05
done
[ "$(mode "$dir/fresh")" = 700 ] || fail "fresh data dir is $(mode "$dir/fresh"), want 700"
echo "ok: a new data dir is 0700"

# The bank after a protect through the CLI.
cat >"$dir/plan.json" <<'JSON'
{ "name": "modes", "resources": [{"type": "smaug.project", "id": "proj-1"}] }
JSON
plan=$(smaug plan create -f "$dir/plan.json")
smaug -o json protect "$plan" --wait >"$dir/protect.out" ||
  fail "protect: $(tail -3 "$dir/protect.out")"
grep -q '"available"\|AVAILABLE' "$dir/protect.out" ||
  fail "protect did not end available: $(tail -3 "$dir/protect.out")"
nd=$(find "$stack_bank" -type d | wc -l)
nf=$(find "$stack_bank" -type f | wc -l)
[ "$nf" -gt 10 ] || fail "only $nf files in the bank after protect"
bad=$(find "$stack_bank" \( -type d ! -perm 0700 \) -o \( -type f ! -perm 0600 \) | head -5)
[ -z "$bad" ] || fail "not private: $(for f in $bad; do echo "$f $(mode "$f")"; done)"
echo "ok: bank after protect: $nd directories 0700, $nf files 0600"
