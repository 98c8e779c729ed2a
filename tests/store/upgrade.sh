#!/usr/bin/env bash
# smaugd started on a database the schema-2 store wrote (tests/store/
# schema2.db): it migrates it to the current schema on start, serves its
# plan through the CLI, ends the operation it finds running (its
# checkpoint is not in the file) instead of leaving it running, and stops
# cleanly. The task outputs are then in columns, read back with Python's
# sqlite3. Every plan, checkpoint, restore and operation is then in tenant
# `default`, with the indexes on the tenant (a checkpoint and a restore
# are added to the copy first, in the schema-2 shape: the fixture has
# none); the CLI shows and lists them.
#
#   upgrade.sh SMAUGD SMAUG FIXTURE
set -u
. "$(dirname "$0")/../api/lib.sh"
SMAUGD=$1
SMAUG=$2
FIXTURE=$3
tmp=$(mktemp -d)
pid=
cleanup() {
  stop "$pid"
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

mkdir -p "$tmp/data"
cp "$FIXTURE" "$tmp/data/smaug.db"
/usr/bin/python3 - "$tmp/data/smaug.db" <<'PY' || fail "fixture not extended"
import sqlite3, sys
def s(field, v):  # a protobuf string field
    return bytes([field << 3 | 2, len(v)]) + v.encode()
db = sqlite3.connect(sys.argv[1])
# Checkpoint: id, plan_id, status 2 (available). Restore: id, checkpoint_id,
# status 2 (success).
db.execute("INSERT INTO checkpoints(id, plan_id, status, created_at_ms, body)"
           " VALUES('ckp-9', 'pln-1', 2, 5, ?)",
           (s(1, "ckp-9") + s(2, "pln-1") + bytes([3 << 3, 2]),))
db.execute("INSERT INTO restores(id, checkpoint_id, body) VALUES('rst-9',"
           " 'ckp-9', ?)", (s(1, "rst-9") + s(2, "ckp-9") + bytes([3 << 3, 2]),))
db.commit()
PY
"$SMAUGD" --listen 127.0.0.1:0 --data-dir "$tmp/data" \
  --bank "file://$tmp/bank" 2>"$tmp/log" &
pid=$!
until_ok grep -q "msg=listening" "$tmp/log" || fail "smaugd did not start"
export SMAUG_SERVER=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$tmp/log")

"$SMAUG" -o json plan show pln-1 >"$tmp/plan.json" || fail "plan show"
grep -q '"v2 plan"' "$tmp/plan.json" || fail "plan lost: $(cat "$tmp/plan.json")"
"$SMAUG" plan list | grep -q pln-1 || fail "plan not listed"
"$SMAUG" -o json checkpoint show ckp-9 >"$tmp/ckp.json" || fail "checkpoint show"
grep -q '"plan_id": *"pln-1"' "$tmp/ckp.json" ||
  fail "checkpoint lost: $(cat "$tmp/ckp.json")"
"$SMAUG" checkpoint list | grep -q ckp-9 || fail "checkpoint not listed"
"$SMAUG" -o json restore show rst-9 >"$tmp/rst.json" || fail "restore show"
grep -q '"checkpoint_id": *"ckp-9"' "$tmp/rst.json" ||
  fail "restore lost: $(cat "$tmp/rst.json")"

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ "$rc" = 0 ] || fail "smaugd exited $rc on SIGTERM"

/usr/bin/python3 - "$tmp/data/smaug.db" <<'PY' || fail "database not migrated"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
v = db.execute("SELECT max(version) FROM schema_version").fetchone()[0]
assert v == 5, v
for t, n in (("plans", 1), ("checkpoints", 1), ("restores", 1),
             ("operations", 1)):
    got = db.execute(f"SELECT tenant, count(*) FROM {t} GROUP BY tenant")
    assert got.fetchall() == [("default", n)], t
idx = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE "
                                "type = 'index' AND name LIKE '%_tenant'")}
assert idx == {"plans_tenant", "checkpoints_tenant", "restores_tenant",
               "operations_tenant"}, idx
rows = sorted(db.execute(
    "SELECT activity, rtype, rid, started_at_ms, finished_at_ms, "
    "CAST(payload AS TEXT) FROM tasks WHERE op_id = 'op-1'"))
assert rows == [(1, "smaug.volume", "v1", 1700000000123, 1700000000456,
                 "state"),
                (2, "smaug.server", "s#1", 5, 6, "boom")], rows
running = db.execute("SELECT running FROM operations WHERE id = 'op-1'")
assert running.fetchone()[0] == 0, "op-1 left running"
PY
echo "1 passed, 0 failed"
