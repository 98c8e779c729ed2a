#!/usr/bin/env bash
# e2e_buf_curl.sh - a real gRPC client against a real smaugd: `buf curl`
# lists the services and methods through server reflection (v1 and
# v1alpha), decodes an Orchestrator response with the reflected
# descriptors, checks health, and watches health across a SIGTERM, which
# must end the Watch stream and then the daemon with exit code 0.
#
# usage: e2e_buf_curl.sh SMAUGD BUF
# smaugd listens on 127.0.0.1 port 0 and logs "msg=listening addr=H:P" on
# stderr; the port is read from that line. Everything started here is
# stopped and removed on exit. If grpcurl is installed it is tried too.
set -euo pipefail

SMAUGD=${1:?usage: e2e_buf_curl.sh SMAUGD BUF}
BUF=${2:?usage: e2e_buf_curl.sh SMAUGD BUF}

[ -x "$BUF" ] || {
  echo "FAIL: buf not found at $BUF (bash scripts/deps.sh installs it)" >&2
  exit 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/smaug-e2e-buf.XXXXXX")
server_pid=
watch_pid=

cleanup() {
  for pid in $watch_pid $server_pid; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  echo "--- smaugd stderr:" >&2
  cat "$tmp/smaugd.log" >&2 || true
  exit 1
}

# buf keeps a cache; keep it inside the test's directory.
export BUF_CACHE_DIR="$tmp/buf-cache"

: >"$tmp/smaugd.log" # the redirection below happens in the child, later
"$SMAUGD" --listen 127.0.0.1:0 --data-dir "$tmp/data" 2>"$tmp/smaugd.log" &
server_pid=$!

port=
for _ in $(seq 1 200); do
  port=$(sed -n 's/.* msg=listening addr=127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' \
    "$tmp/smaugd.log" | head -n 1)
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || fail "smaugd exited before listening"
  sleep 0.05
done
[ -n "$port" ] || fail "no 'msg=listening addr=127.0.0.1:PORT' line within 10 s"
url="http://127.0.0.1:$port"
echo "smaugd pid $server_pid on $url"

bcurl() {
  timeout 30 "$BUF" curl --protocol grpc --http2-prior-knowledge "$@"
}

# --- reflection: list_services
bcurl "$url" --list-services >"$tmp/services" || fail "--list-services failed"
printf '%s\n' grpc.health.v1.Health grpc.reflection.v1.ServerReflection \
  grpc.reflection.v1alpha.ServerReflection smaug.v1.Orchestrator \
  >"$tmp/services.want"
sort "$tmp/services" | diff -u "$tmp/services.want" - ||
  fail "--list-services: unexpected service list"

# --- reflection: file_containing_symbol with dependencies, both versions
for proto in grpc-v1 grpc-v1alpha; do
  bcurl --reflect-protocol "$proto" "$url" --list-methods \
    >"$tmp/methods.$proto" || fail "--list-methods ($proto) failed"
  for m in grpc.health.v1.Health/Check grpc.health.v1.Health/Watch \
    grpc.reflection.v1.ServerReflection/ServerReflectionInfo \
    smaug.v1.Orchestrator/ListPlugins smaug.v1.Orchestrator/Protect \
    smaug.v1.Orchestrator/WatchOperation; do
    grep -qx "$m" "$tmp/methods.$proto" ||
      fail "--list-methods ($proto): $m missing"
  done
done
cmp -s "$tmp/methods.grpc-v1" "$tmp/methods.grpc-v1alpha" ||
  fail "v1 and v1alpha reflection disagree"

# smaug.v1.ProtectionPlugin is not served by smaugd, but its descriptor is
# (orchestrator.proto imports plugin.proto): buf can only encode this JSON
# request after fetching the service's schema through reflection, and the
# call then reaches smaugd and is answered UNIMPLEMENTED. buf 1.47 has no
# `describe`; this is the same resolution done by a real client.
if bcurl "$url/smaug.v1.ProtectionPlugin/GetPluginInfo" \
  -d '{"protocol_major": 1}' >"$tmp/ppinfo" 2>&1; then
  fail "ProtectionPlugin/GetPluginInfo on smaugd succeeded: $(cat "$tmp/ppinfo")"
fi
grep -qi 'unimplemented' "$tmp/ppinfo" ||
  fail "ProtectionPlugin schema not resolved through reflection: $(cat "$tmp/ppinfo")"
bcurl "$url/smaug.v1.ProtectionPlugin/GetPluginInfo" -d '{"no_such_field": 1}' \
  >"$tmp/ppbad" 2>&1 && fail "an unknown field was accepted"
grep -qi 'unimplemented' "$tmp/ppbad" &&
  fail "buf did not check the request against the reflected schema"

# A response decoded through reflected descriptors (types.proto included).
bcurl "$url/smaug.v1.Orchestrator/ListPlugins" -d '{}' >"$tmp/plugins" ||
  fail "Orchestrator/ListPlugins failed: $(cat "$tmp/plugins")"

# --- health: Check
bcurl "$url/grpc.health.v1.Health/Check" >"$tmp/check" ||
  fail "Health/Check failed"
grep -q '"status": "SERVING"' "$tmp/check" ||
  fail "Health/Check: $(cat "$tmp/check")"

bcurl "$url/grpc.health.v1.Health/Check" \
  -d '{"service": "smaug.v1.Orchestrator"}' >"$tmp/check.svc" ||
  fail "Health/Check smaug.v1.Orchestrator failed"
grep -q '"status": "SERVING"' "$tmp/check.svc" ||
  fail "Health/Check smaug.v1.Orchestrator: $(cat "$tmp/check.svc")"

if bcurl "$url/grpc.health.v1.Health/Check" -d '{"service": "no.Such"}' \
  >"$tmp/check.unknown" 2>&1; then
  fail "Health/Check of an unknown service succeeded"
fi
grep -q '"code": "not_found"' "$tmp/check.unknown" ||
  fail "Health/Check unknown: $(cat "$tmp/check.unknown")"

# --- optional second client
if command -v grpcurl >/dev/null 2>&1; then
  timeout 30 grpcurl -plaintext "127.0.0.1:$port" list >"$tmp/grpcurl.list" ||
    fail "grpcurl list failed"
  grep -qx smaug.v1.Orchestrator "$tmp/grpcurl.list" ||
    fail "grpcurl list: $(cat "$tmp/grpcurl.list")"
  timeout 30 grpcurl -plaintext "127.0.0.1:$port" describe \
    smaug.v1.ProtectionPlugin >/dev/null || fail "grpcurl describe failed"
fi

# --- health: Watch across a graceful shutdown
bcurl "$url/grpc.health.v1.Health/Watch" >"$tmp/watch" 2>&1 &
watch_pid=$!
for _ in $(seq 1 200); do
  grep -q '"status": "SERVING"' "$tmp/watch" && break
  kill -0 "$watch_pid" 2>/dev/null || fail "Watch ended early: $(cat "$tmp/watch")"
  sleep 0.05
done
grep -q '"status": "SERVING"' "$tmp/watch" ||
  fail "Watch: no SERVING within 10 s: $(cat "$tmp/watch")"

kill -TERM "$server_pid"
# A daemon that ignores SIGTERM would hang the test: kill it after 30 s, so
# that the wait below returns and reports a signal exit.
(
  sleep 30 &
  sleep_pid=$!
  trap 'kill "$sleep_pid"; exit 0' TERM
  wait "$sleep_pid" && kill -KILL "$server_pid"
) >/dev/null 2>&1 </dev/null &
watchdog_pid=$!
server_rc=0
wait "$server_pid" || server_rc=$?
server_pid=
kill "$watchdog_pid" 2>/dev/null || true
wait "$watchdog_pid" 2>/dev/null || true
[ "$server_rc" -eq 0 ] || fail "smaugd exited with $server_rc after SIGTERM"

watch_rc=0
wait "$watch_pid" || watch_rc=$?
watch_pid=
[ "$watch_rc" -eq 0 ] ||
  fail "Watch exited with $watch_rc: $(cat "$tmp/watch")"
tr -d ' \n' <"$tmp/watch" |
  grep -q '^{"status":"SERVING"}{"status":"NOT_SERVING"}$' ||
  fail "Watch: want SERVING then NOT_SERVING, got: $(cat "$tmp/watch")"

echo "ok: buf curl list, describe (v1, v1alpha), call, health Check and Watch"
