#!/usr/bin/env bash
# smaugd's data directory at start-up, through the binary: the lock that
# keeps a second smaugd out (its message names the directory and the
# holder's pid; the first keeps serving; a SIGKILLed holder frees it), a zero-length smaug.db (a new
# store with a warning naming the file when it is alone; refused when a
# bank or write-ahead log is beside it) and a file that is not a SQLite
# database (named, with what to do, exit 1).
#
#   datadir.sh SMAUGD SMAUG
set -u
. "$(dirname "$0")/lib.sh"
SMAUGD=$1
SMAUG=$2
tmp=$(mktemp -d)
pid=
passed=0
failed=0
cleanup() {
  stop "$pid"
  rm -rf "$tmp"
}
trap cleanup EXIT
check() { # NAME CONDITION-EXIT-CODE DETAIL
  if [ "$2" -eq 0 ]; then
    passed=$((passed + 1))
    echo "ok: $1"
  else
    failed=$((failed + 1))
    echo "FAIL: $1: $3"
  fi
}
# Starts smaugd on data dir $1 in the background; sets pid and addr.
start() {
  "$SMAUGD" --listen 127.0.0.1:0 --data-dir "$1" 2>"$tmp/log" &
  pid=$!
  addr=
  for _ in $(seq 100); do
    addr=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$tmp/log" | head -1)
    [ -n "$addr" ] && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# Runs smaugd in the foreground on data dir $1 (it must exit by itself);
# sets rc and err (its stderr).
run() {
  timeout 20 "$SMAUGD" --listen 127.0.0.1:0 --data-dir "$1" 2>"$tmp/err"
  rc=$?
  err=$(cat "$tmp/err")
}

# --- two smaugd on one data dir
d=$tmp/shared
start "$d"
check "first smaugd starts" $? "$(cat "$tmp/log")"
run "$d"
[ "$rc" -eq 1 ]
check "second smaugd exits 1" $? "rc=$rc"
echo "$err" | grep -qF "data directory $d is in use by another smaugd (pid $pid"
check "second names the directory and the holder's pid" $? "$err"
out=$("$SMAUG" --server "$addr" plan list 2>&1)
check "first keeps serving" $? "$out"
kill -0 "$pid" 2>/dev/null
check "first still runs" $? ""
stop "$pid"
pid=
start "$d"
check "the lock is released when the holder stops" $? "$(cat "$tmp/log")"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
pid=
start "$d"
check "the lock goes with a killed holder" $? "$(cat "$tmp/log")"
stop "$pid"
pid=

# --- zero-length smaug.db alone: a new store, with a warning
d=$tmp/empty
mkdir -p "$d"
: >"$d/smaug.db"
start "$d"
check "zero-length smaug.db alone starts" $? "$(cat "$tmp/log")"
grep -q "level=warn .*store file is empty; starting a new store.* file=$d/smaug.db" "$tmp/log"
check "zero-length smaug.db is warned about, by name" $? "$(cat "$tmp/log")"
out=$("$SMAUG" --server "$addr" plan list 2>&1)
check "the new store serves" $? "$out"
stop "$pid"
pid=

# --- zero-length smaug.db beside a bank: refused
d=$tmp/emptybank
mkdir -p "$d/bank/checkpoints"
: >"$d/smaug.db"
run "$d"
[ "$rc" -eq 1 ]
check "zero-length smaug.db beside a bank exits 1" $? "rc=$rc $err"
echo "$err" | grep -qF "$d/smaug.db is empty (0 bytes) but $d holds other data (bank/)"
check "the refusal names the file and the data beside it" $? "$err"
[ ! -s "$d/smaug.db" ]
check "the empty file is left as it was" $? "$(ls -l "$d")"

# --- a file that is not a SQLite database
d=$tmp/corrupt
mkdir -p "$d"
head -c 16384 /dev/urandom >"$d/smaug.db"
cp "$d/smaug.db" "$tmp/corrupt.orig"
run "$d"
[ "$rc" -eq 1 ]
check "corrupt smaug.db exits 1" $? "rc=$rc $err"
echo "$err" | grep -qF "$d/smaug.db is not a valid SQLite database or is corrupt"
check "corrupt smaug.db is named as such" $? "$err"
echo "$err" | grep -qF "restore it from a backup"
check "the operator is told what to do" $? "$err"
echo "$err" | grep -qi "i/o error"
[ $? -ne 0 ]
check "no bare i/o error" $? "$err"
cmp -s "$d/smaug.db" "$tmp/corrupt.orig"
check "the corrupt file is not touched" $? ""

# --- a database whose pages are damaged after its header
d=$tmp/damaged
start "$d"
"$SMAUG" --server "$addr" plan list >/dev/null 2>&1
stop "$pid"
pid=
size=$(stat -c %s "$d/smaug.db")
dd if=/dev/urandom of="$d/smaug.db" bs=1 seek=100 count=$((size - 100)) \
  conv=notrunc 2>/dev/null
rm -f "$d/smaug.db-wal" "$d/smaug.db-shm"
run "$d"
[ "$rc" -eq 1 ]
check "damaged smaug.db exits 1" $? "rc=$rc $err"
echo "$err" | grep -qF "$d/smaug.db is not a valid SQLite database or is corrupt"
check "damaged smaug.db is named as corrupt" $? "$err"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
