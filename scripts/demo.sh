#!/usr/bin/env bash
# The smaug demo, and the system's end-to-end test (with --check).
#
# 1. creates a sample cloud: 1 project, 3 servers, 5 volumes (one shared by
#    two servers), 2 images, 1 network;
# 2. starts smaugd on the embedded default (SQLite + a local file:// bank)
#    and the five sample plugins (four in C, one in Python) on unix sockets
#    (mode 0660) in a folder only this user may enter (0700): nothing
#    listens on the network, so no certificate or token is needed, and no
#    other local user can reach smaugd or drive a plugin;
# 3. protects the project, with a live progress bar on a terminal;
# 4. damages the cloud: deletes a server, corrupts a volume;
# 5. restores the checkpoint;
# 6. verifies that every restored volume and image is byte-identical to the
#    original and that the restored servers point at the restored volumes
#    and image;
# 7. prints a summary and the flow as DOT (and a PNG with Graphviz);
# 8. deletes the checkpoint, then stops everything.
#
#   scripts/demo.sh [--check] [--dir DIR] [--volume-mib N]
#
# --check: quiet, for tests; the exit status says whether every check held.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${SMAUG_BIN:-$here/build/bin}
dir=$here/demo-data
check=""
volume_mib=32
py=/usr/bin/python3
while [ $# -gt 0 ]; do
  case "$1" in
  --check) check=1 ;;
  --dir) dir=$2; shift ;;
  --volume-mib) volume_mib=$2; shift ;;
  *) echo "usage: $0 [--check] [--dir DIR] [--volume-mib N]" >&2; exit 2 ;;
  esac
  shift
done

say() { [ -n "$check" ] || printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { echo "demo: FAILED: $*" >&2; exit 1; }

source "$here/scripts/stack.sh"
stack_init "$dir"
chmod 700 "$dir" # the sockets, the bank and the logs: this user's only
cloud=$stack_cloud_dir

say "creating a sample cloud in $cloud"
stack_cloud --volume-mib "$volume_mib"
[ -n "$check" ] || cat "$dir/logs/cloud-gen.log"
proj=$cloud/projects/proj-1

# Checksums of the originals, before anything is damaged.
(cd "$proj" && sha256sum volumes/* images/* servers/* networks/*) >"$dir/original.sha256"
cp -r "$proj/servers" "$dir/servers.original"

# Follows an operation to its end: a live progress bar on a terminal, plain
# lines into a file with --check. Fails unless it ends available/success.
follow() { # OP NAME
  if [ -n "$check" ]; then
    smaug watch "$1" >"$dir/$2.watch" || { tail -5 "$dir/$2.watch" >&2; fail "$2 failed"; }
  else
    smaug watch "$1" || fail "$2 failed"
  fi
}

say "starting the sample plugins, then smaugd (SQLite and a file:// bank under $dir/smaugd)"
stack_up
[ -n "$check" ] || smaug plugin list
# Only this user can reach the stack: the folder is 0700, the sockets
# 0660 or stricter.
[ "$(stat -c %a "$dir")" = 700 ] || fail "$dir is not 0700"
for sock in "$dir"/run/*.sock; do
  case $(stat -c %a "$sock") in 600 | 660) ;; *) fail "$sock has mode $(stat -c %a "$sock")" ;; esac
done

cat >"$dir/plan.json" <<'JSON'
{ "name": "demo",
  "resources": [{"type": "smaug.project", "id": "proj-1", "name": "Project 1",
                 "extra": {"project": "proj-1"}}] }
JSON
plan=$(smaug plan create -f "$dir/plan.json")
say "plan $plan created; protecting"
smaug flow "$plan" --dot >"$dir/flow.dot"

smaug protect "$plan" >"$dir/protect.out" || fail "protect: $(cat "$dir/protect.out")"
ckp=$(grep -o 'ckp-[0-9a-f]*' "$dir/protect.out" | head -1)
[ -n "$ckp" ] || fail "no checkpoint id"
follow "$(grep -o 'op-[0-9a-f]*' "$dir/protect.out" | head -1)" protect
bank_before=$(du -sb "$dir/smaugd/bank" | cut -f1)
say "verifying checkpoint $ckp in the bank (no restore)"
if [ -n "$check" ]; then
  smaug checkpoint verify "$ckp" >"$dir/verify.txt" || { cat "$dir/verify.txt" >&2; fail "verify"; }
else
  smaug checkpoint verify "$ckp"
fi

say "damaging the cloud: deleting server p1-srv-2, corrupting volume p1-vol-1"
rm "$proj/servers/p1-srv-2.json"
dd if=/dev/urandom of="$proj/volumes/p1-vol-1.raw" bs=4096 count=16 seek=3 \
  conv=notrunc status=none

say "restoring $ckp"
smaug restore "$ckp" >"$dir/restore.out" || fail "restore: $(cat "$dir/restore.out")"
rst=$(grep -o 'rst-[0-9a-f]*' "$dir/restore.out" | head -1)
[ -n "$rst" ] || fail "no restore id"
follow "$(grep -o 'op-[0-9a-f]*' "$dir/restore.out" | head -1)" restore
smaug -o json restore show "$rst" >"$dir/restore.json"
[ -n "$check" ] || smaug restore show "$rst"

say "verifying the restored resources"
"$py" - "$dir/restore.json" "$proj" "$dir/original.sha256" "$dir/servers.original" <<'PY'
import hashlib, json, os, sys
path, proj, sums, orig_servers = sys.argv[1:5]
restore = json.load(open(path))["restore"]
if restore["status"] != "RESTORE_STATUS_SUCCESS":
    sys.exit("demo: restore status %s: %s" % (restore["status"], restore.get("reason")))
original = {}
for line in open(sums):
    digest, path = line.split(None, 1)
    original[path.strip()] = digest
new_id = {}
for r in restore["results"]:
    res = r["resource"]
    new_id[(res["type"], res["id"])] = r["restored_id"]
def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
checked = 0
for (kind, folder, ext) in (("smaug.volume", "volumes", ".raw"), ("smaug.image", "images", ".img")):
    for (t, old), new in new_id.items():
        if t != kind:
            continue
        path = os.path.join(proj, folder, new + ext)
        want = original["%s/%s%s" % (folder, old, ext)]
        if not os.path.exists(path):
            sys.exit("demo: restored %s %s missing at %s" % (kind, old, path))
        if sha(path) != want:
            sys.exit("demo: restored %s %s (%s) differs from the original" % (kind, old, new))
        checked += 1
servers = 0
for (t, old), new in new_id.items():
    if t != "smaug.server":
        continue
    desc = json.load(open(os.path.join(proj, "servers", new + ".json")))
    orig = json.load(open(os.path.join(orig_servers, old + ".json")))
    want_vols = [new_id[("smaug.volume", v)] for v in orig["volumes"]]
    if desc["volumes"] != want_vols:
        sys.exit("demo: restored server %s has volumes %s, want the restored %s"
                 % (new, desc["volumes"], want_vols))
    if desc.get("image") != new_id[("smaug.image", orig["image"])]:
        sys.exit("demo: restored server %s boots %s, want the restored %s"
                 % (new, desc.get("image"), new_id[("smaug.image", orig["image"])]))
    servers += 1
if checked < 7 or servers < 3:
    sys.exit("demo: expected 5 volumes, 2 images and 3 servers restored, got %d data files and %d servers" % (checked, servers))
print("verified: %d volumes and images byte-identical, %d servers re-created against restored volumes and images" % (checked, servers))
PY

say "flow of the protect (DOT in $dir/flow.dot)"
if command -v dot >/dev/null; then
  dot -Tpng "$dir/flow.dot" -o "$dir/flow.png" && [ -n "$check" ] || echo "picture: $dir/flow.png"
fi
[ -n "$check" ] || head -20 "$dir/flow.dot"

say "deleting checkpoint $ckp"
smaug -o json checkpoint delete "$ckp" --wait >"$dir/delete.jsonl" || fail "delete did not end deleted"
bank_after=$(du -sb "$dir/smaugd/bank" | cut -f1)

say "summary"
echo "checkpoint $ckp: protected, restored, verified, deleted"
echo "bank bytes after protect: $bank_before; after delete: $bank_after"
echo "logs: $dir/logs"
