#!/usr/bin/env bash
# e2e_addr.sh - addresses seen from outside, through smaugd and the CLI:
#   * `smaugd --listen` refuses a port out of range and a malformed
#     address, and names the real cause of a bind failure (a missing
#     directory, an address that is not on this host) instead of "address
#     already in use"; each exits non-zero without listening anywhere;
#   * smaugd's unix socket is 0660 or stricter even under umask 000;
#   * `smaug plugin register` of a closed 127.0.0.1 port, a missing unix
#     socket and a malformed address fails with the cause (not
#     DEADLINE_EXCEEDED), and the plugin list stays empty;
#   * `smaug --server` refuses a port out of range (gRPC would wrap it and
#     connect to another port) and an address without host or port;
#   * a plugin named with `smaugd --plugin` that is not listening yet when
#     smaugd starts is registered once it comes up within the grace.
#
# usage: e2e_addr.sh SMAUGD SMAUG FAKE_PLUGIN
# Everything started here is stopped and removed on exit.
set -euo pipefail

SMAUGD=${1:?usage: e2e_addr.sh SMAUGD SMAUG}
SMAUG=${2:?usage: e2e_addr.sh SMAUGD SMAUG FAKE_PLUGIN}
FAKE=${3:?usage: e2e_addr.sh SMAUGD SMAUG FAKE_PLUGIN}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/smaug-e2e-addr.XXXXXX")
pids=()

cleanup() {
  for pid in "${pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# --- smaugd --listen ADDR must fail, exit non-zero, and say WANT.
listen_fails() {
  local addr=$1 want=$2 in_use=${3:-} rc=0
  timeout 20 "$SMAUGD" --listen "$addr" --data-dir "$tmp/data-refused" \
    >"$tmp/out" 2>&1 || rc=$?
  [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] ||
    fail "--listen $addr: exit code $rc, expected a start-up failure"
  grep -q 'msg="cannot listen"' "$tmp/out" ||
    fail "--listen $addr: no 'cannot listen' line: $(cat "$tmp/out")"
  grep -qF "error=\"$want\"" "$tmp/out" ||
    fail "--listen $addr: expected error=\"$want\", got: $(grep 'cannot listen' "$tmp/out")"
  if [ -z "$in_use" ] && grep -q 'already in use' "$tmp/out"; then
    fail "--listen $addr: still says 'already in use'"
  fi
  echo "ok: --listen $addr -> $want"
}

listen_fails :99999 "port 99999 is out of range (0-65535)"
listen_fails 127.0.0.1:65536 "port 65536 is out of range (0-65535)"
listen_fails 127.0.0.1:x1 "port 'x1' is not a number"
listen_fails 127.0.0.1 "missing port: expected host:port or unix:/path"
listen_fails unix:/nonexistent/dir/sock \
  "directory /nonexistent/dir does not exist"
listen_fails 1.2.3.4:0 "1.2.3.4 is not an address of this host"

# --- a port really in use is still reported as such.
python3 - "$tmp/busy.port" <<'EOF' &
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(60)
EOF
pids+=($!)
for _ in $(seq 1 100); do [ -s "$tmp/busy.port" ] && break; sleep 0.05; done
busy=$(cat "$tmp/busy.port")
listen_fails "127.0.0.1:$busy" "port $busy is already in use on 127.0.0.1" in-use

# --- a real smaugd on a unix socket, started under umask 000.
sock=$tmp/smaugd.sock
: >"$tmp/smaugd.log"
(umask 000 && exec "$SMAUGD" --listen "unix:$sock" --data-dir "$tmp/data") \
  2>"$tmp/smaugd.log" &
pids+=($!)
for _ in $(seq 1 200); do
  grep -q 'msg=listening' "$tmp/smaugd.log" && break
  kill -0 "${pids[-1]}" 2>/dev/null || fail "smaugd exited: $(cat "$tmp/smaugd.log")"
  sleep 0.05
done
grep -q 'msg=listening' "$tmp/smaugd.log" || fail "smaugd did not listen"
mode=$(stat -c %a "$sock")
[ $((8#$mode & 8#117)) -eq 0 ] ||
  fail "socket mode $mode under umask 000; expected 0660 or stricter"
echo "ok: socket mode $mode under umask 000"

# --- the CLI refuses a server address it would otherwise wrap or guess.
for bad in "127.0.0.1:99999|port 99999 is out of range (0-65535)" \
  ":7420|missing host" "smaugd.example|missing port"; do
  addr=${bad%%|*} want=${bad#*|} rc=0
  timeout 20 "$SMAUG" --server "$addr" plugin list >"$tmp/out" 2>&1 || rc=$?
  [ "$rc" -eq 2 ] || fail "--server $addr: exit code $rc: $(cat "$tmp/out")"
  grep -qF "server address $addr: $want" "$tmp/out" ||
    fail "--server $addr: expected '$want', got: $(cat "$tmp/out")"
  echo "ok: --server $addr -> $want"
done

export SMAUG_SERVER=unix:$sock

# --- plugin register: each fails with its cause.
register_fails() {
  local addr=$1 want=$2 rc=0
  timeout 20 "$SMAUG" plugin register "$addr" >"$tmp/out" 2>&1 || rc=$?
  [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] ||
    fail "register $addr: exit code $rc: $(cat "$tmp/out")"
  grep -qF "$want" "$tmp/out" ||
    fail "register $addr: expected '$want', got: $(cat "$tmp/out")"
  if grep -q DEADLINE_EXCEEDED "$tmp/out"; then
    fail "register $addr: still DEADLINE_EXCEEDED"
  fi
  echo "ok: register $addr -> $(cat "$tmp/out")"
}

# A closed port: bound but not listening, so the kernel refuses and nothing
# else can take it while the test runs.
python3 - "$tmp/closed.port" <<'EOF' &
import socket, sys, time, os
s = socket.socket()
s.bind(("127.0.0.1", 0))
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(60)
EOF
pids+=($!)
for _ in $(seq 1 100); do [ -s "$tmp/closed.port" ] && break; sleep 0.05; done
closed=$(cat "$tmp/closed.port")

register_fails "127.0.0.1:$closed" \
  "UNAVAILABLE: plugin at 127.0.0.1:$closed: connection refused"
register_fails "unix:$tmp/missing.sock" \
  "UNAVAILABLE: plugin at unix:$tmp/missing.sock: no such socket file"
register_fails "not-an-address" \
  "INVALID_ARGUMENT: plugin at not-an-address: bad address: missing port"
register_fails "127.0.0.1:70000" \
  "INVALID_ARGUMENT: plugin at 127.0.0.1:70000: bad address: port 70000 is out of range (0-65535)"

"$SMAUG" -o json plugin list >"$tmp/plugins"
if grep -q address "$tmp/plugins"; then
  fail "a plugin was registered: $(cat "$tmp/plugins")"
fi
echo "ok: no plugin registered"

# --- a plugin named at start that comes up a moment later. It is started
# only once smaugd's log shows the first attempt refused.
late=$tmp/late.sock
"$SMAUGD" --listen "unix:$tmp/late-smaugd.sock" --data-dir "$tmp/data-late" \
  --log-level debug --plugin "unix:$late" 2>"$tmp/late.log" &
pids+=($!)
for _ in $(seq 1 200); do
  grep -q 'plugin not reachable yet' "$tmp/late.log" && break
  sleep 0.05
done
grep -q 'plugin not reachable yet' "$tmp/late.log" ||
  fail "no refused first attempt: $(cat "$tmp/late.log")"
"$FAKE" --listen "unix:$late" --name late --types t.late 2>"$tmp/fake.log" &
pids+=($!)
for _ in $(seq 1 200); do
  grep -q 'msg="plugin registered" plugin=late' "$tmp/late.log" && break
  sleep 0.05
done
grep -q 'msg="plugin registered" plugin=late' "$tmp/late.log" ||
  fail "the late plugin was not registered: $(cat "$tmp/late.log")"
echo "ok: a plugin that starts after smaugd is registered"
echo "PASS"
