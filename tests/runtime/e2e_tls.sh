#!/usr/bin/env bash
# e2e_tls.sh - smaugd's transport security seen from outside, with real
# certificates made by tls_certs.sh (openssl) in a temporary directory:
#   * with --tls-cert/--tls-key, `buf curl --cacert` lists the services and
#     calls; a plaintext client, a client trusting another CA and a server
#     with an expired certificate all fail;
#   * SIGHUP with new certificate files: a Health/Watch stream opened
#     before it stays open (it ends only at the SIGTERM, SERVING then
#     NOT_SERVING), new connections get the new certificate (its serial,
#     read with `openssl s_client`), and a reload of a bad key is refused
#     with the old certificate kept;
#   * with --tls-client-ca a client without a certificate, or with one from
#     another CA, is refused, and one from the CA is served;
#   * a private key readable by others is refused at start;
#   * a non-loopback --listen without TLS is refused before anything
#     listens; with --insecure smaugd serves it and logs a warning (inside
#     a network namespace of its own, so that nothing is exposed);
#   * with --plugin-tls-*, a plaintext plugin on TCP cannot be registered
#     and a plugin on a unix socket can.
#
# usage: e2e_tls.sh SMAUGD SMAUG BUF FAKE_PLUGIN TLS_CERTS_SH
# Everything started here is stopped and removed on exit.
set -euo pipefail

SMAUGD=${1:?usage: e2e_tls.sh SMAUGD SMAUG BUF FAKE_PLUGIN TLS_CERTS_SH}
SMAUG=${2:?}
BUF=${3:?}
FAKE=${4:?}
CERTS_SH=${5:?}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/smaug-e2e-tls.XXXXXX")
pids=()

cleanup() {
  for pid in "${pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

log=
fail() {
  echo "FAIL: $*" >&2
  if [ -n "$log" ]; then
    echo "--- $log:" >&2
    cat "$log" >&2 || true
  fi
  exit 1
}

export BUF_CACHE_DIR="$tmp/buf-cache"
c=$tmp/certs
mkdir -m 700 "$c"
sh "$CERTS_SH" "$c"
cp -p "$c/server.pem" "$c/live.pem"
cp -p "$c/server.key" "$c/live.key"

# start_smaugd LOG ARGS...: starts smaugd on 127.0.0.1:0 and sets $pid and
# $port once its log says where it listens.
start_smaugd() {
  log=$1
  shift
  : >"$log"
  "$SMAUGD" --listen 127.0.0.1:0 --data-dir "$tmp/data.$(basename "$log")" \
    "$@" 2>"$log" &
  pid=$!
  pids+=("$pid")
  port=
  for _ in $(seq 1 200); do
    port=$(sed -n 's/.* msg=listening addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' \
      "$log" | head -n 1)
    [ -n "$port" ] && return 0
    kill -0 "$pid" 2>/dev/null || fail "smaugd exited before listening"
    sleep 0.05
  done
  fail "smaugd did not listen within 10 s"
}

stop() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

bcurl() {
  timeout 30 "$BUF" curl --protocol grpc "$@"
}

# serial PORT: the serial of the certificate smaugd serves now.
serial() {
  timeout 10 openssl s_client -connect "127.0.0.1:$1" -CAfile "$c/ca.pem" \
    </dev/null 2>/dev/null | openssl x509 -noout -serial | sed 's/serial=//'
}

# --- TLS: list and call with the CA; refusals.
start_smaugd "$tmp/tls.log" --tls-cert "$c/live.pem" --tls-key "$c/live.key"
tls_pid=$pid
url=https://127.0.0.1:$port
grep -q "msg=listening addr=127.0.0.1:$port tls=on" "$log" ||
  fail "no 'tls=on' on the listening line"
bcurl --cacert "$c/ca.pem" "$url" --list-services >"$tmp/services" ||
  fail "buf curl --cacert --list-services failed"
grep -qx smaug.v1.Orchestrator "$tmp/services" ||
  fail "services: $(cat "$tmp/services")"
bcurl --cacert "$c/ca.pem" "$url/smaug.v1.Orchestrator/ListPlugins" -d '{}' \
  >"$tmp/plugins" || fail "ListPlugins over TLS: $(cat "$tmp/plugins")"
echo "ok: buf curl --cacert lists and calls over TLS"

if bcurl --http2-prior-knowledge "http://127.0.0.1:$port" --list-services \
  >"$tmp/plain" 2>&1; then
  fail "a plaintext client was served: $(cat "$tmp/plain")"
fi
echo "ok: a plaintext client fails ($(tail -n 1 "$tmp/plain"))"

if bcurl --cacert "$c/other-ca.pem" "$url" --list-services >"$tmp/wrong" 2>&1; then
  fail "a client trusting another CA was served"
fi
# The client's TLS alert, as smaugd logs it: the certificate, not a port.
for _ in $(seq 1 100); do
  grep -q "alert bad certificate" "$log" && break
  sleep 0.05
done
grep -q "alert bad certificate" "$log" || fail "wrong CA: $(cat "$tmp/wrong")"
echo "ok: a client trusting another CA fails ($(tail -n 1 "$tmp/wrong"))"

# --- SIGHUP: a running call stays, new connections see the new serial.
[ "$(serial "$port")" = 1001 ] || fail "serial before reload: $(serial "$port")"
bcurl --cacert "$c/ca.pem" "$url/grpc.health.v1.Health/Watch" \
  >"$tmp/watch" 2>&1 &
watch_pid=$!
pids+=("$watch_pid")
for _ in $(seq 1 200); do
  grep -q '"status": "SERVING"' "$tmp/watch" && break
  kill -0 "$watch_pid" 2>/dev/null || fail "Watch ended: $(cat "$tmp/watch")"
  sleep 0.05
done
grep -q '"status": "SERVING"' "$tmp/watch" || fail "Watch: no SERVING"

cp "$c/server2.pem" "$c/live.pem"
cp "$c/server2.key" "$c/live.key"
kill -HUP "$tls_pid"
for _ in $(seq 1 200); do
  grep -q 'msg="certificates reloaded" which=api' "$log" && break
  sleep 0.05
done
grep -q 'msg="certificates reloaded" which=api' "$log" ||
  fail "no 'certificates reloaded' after SIGHUP"
[ "$(serial "$port")" = 1002 ] || fail "serial after reload: $(serial "$port")"
kill -0 "$watch_pid" 2>/dev/null || fail "the Watch stream ended at SIGHUP"
bcurl --cacert "$c/ca.pem" "$url/grpc.health.v1.Health/Check" >"$tmp/check" ||
  fail "Check after reload failed"
echo "ok: SIGHUP: new connections get serial 1002, the open Watch goes on"

# A reload that fails keeps the certificate in use.
printf 'not a key\n' >"$c/live.key"
kill -HUP "$tls_pid"
for _ in $(seq 1 200); do
  grep -q 'msg="certificates not reloaded' "$log" && break
  sleep 0.05
done
grep -q 'msg="certificates not reloaded; the previous ones stay in use" which=api' \
  "$log" || fail "a bad key was not reported"
[ "$(serial "$port")" = 1002 ] || fail "serial after a bad reload: $(serial "$port")"
echo "ok: a reload with a bad key is refused, serial 1002 still served"

stop "$tls_pid"
wait "$watch_pid" || fail "Watch exited non-zero: $(cat "$tmp/watch")"
tr -d ' \n' <"$tmp/watch" |
  grep -q '^{"status":"SERVING"}{"status":"NOT_SERVING"}$' ||
  fail "Watch: want SERVING then NOT_SERVING, got: $(cat "$tmp/watch")"
echo "ok: the Watch opened before SIGHUP ran until the stop"

# --- an expired server certificate is refused by the client.
start_smaugd "$tmp/expired.log" --tls-cert "$c/expired.pem" \
  --tls-key "$c/expired.key"
if bcurl --cacert "$c/ca.pem" "https://127.0.0.1:$port" --list-services \
  >"$tmp/expired" 2>&1; then
  fail "a server with an expired certificate was trusted"
fi
# Why: what OpenSSL's own client says of the same handshake.
timeout 10 openssl s_client -connect "127.0.0.1:$port" -CAfile "$c/ca.pem" \
  </dev/null >"$tmp/expired.s_client" 2>&1 || true
grep -q "Verify return code: 10 (certificate has expired)" \
  "$tmp/expired.s_client" || fail "expired: $(cat "$tmp/expired.s_client")"
echo "ok: an expired server certificate is refused ($(tail -n 1 "$tmp/expired"))"
stop "$pid"

# --- mTLS: a client certificate from the CA is required.
start_smaugd "$tmp/mtls.log" --tls-cert "$c/server.pem" \
  --tls-key "$c/server.key" --tls-client-ca "$c/ca.pem"
grep -q "tls=mtls" "$log" || fail "no 'tls=mtls' on the listening line"
url=https://127.0.0.1:$port
if bcurl --cacert "$c/ca.pem" "$url" --list-services >"$tmp/nocert" 2>&1; then
  fail "a client without a certificate was served"
fi
if bcurl --cacert "$c/ca.pem" --cert "$c/other-client.pem" \
  --key "$c/other-client.key" "$url" --list-services >"$tmp/othercert" 2>&1; then
  fail "a client certificate from another CA was accepted"
fi
bcurl --cacert "$c/ca.pem" --cert "$c/client.pem" --key "$c/client.key" \
  "$url" --list-services >"$tmp/mtls" || fail "mTLS client refused"
grep -qx smaug.v1.Orchestrator "$tmp/mtls" || fail "mTLS: $(cat "$tmp/mtls")"
echo "ok: mTLS: no certificate and another CA's refused, the CA's served"
stop "$pid"

# --- start-up refusals: they exit before listening.
starts_refused() {
  local want=$1 rc=0
  shift
  log=$tmp/refused.log
  timeout 20 "$SMAUGD" --data-dir "$tmp/data.refused" "$@" >"$log" 2>&1 || rc=$?
  [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "$*: exit code $rc"
  grep -qF -- "$want" "$log" || fail "$*: expected '$want'"
  grep -q 'msg=listening' "$log" && fail "$*: it listened"
  echo "ok: refused: $want"
}
chmod 644 "$c/client.key"
starts_refused "is readable by its group or others (mode 0644)" \
  --listen 127.0.0.1:0 --tls-cert "$c/client.pem" --tls-key "$c/client.key"
chmod 600 "$c/client.key"
starts_refused "refusing to serve 0.0.0.0:0 without TLS" --listen 0.0.0.0:0
starts_refused "refusing to serve [::]:0 without TLS" --listen '[::]:0'
SMAUG_LISTEN=0.0.0.0:0 starts_refused "refusing to serve 0.0.0.0:0 without TLS"
starts_refused "--tls-cert and --tls-key go together" --tls-cert "$c/server.pem"

# --insecure: accepted with a warning, in a network namespace of its own
# (only its own loopback exists there, so 0.0.0.0 reaches nobody).
log=$tmp/insecure.log
: >"$log"
unshare -n "$SMAUGD" --listen 0.0.0.0:0 --insecure \
  --data-dir "$tmp/data.insecure" 2>"$log" &
pid=$!
pids+=("$pid")
for _ in $(seq 1 200); do
  grep -q 'msg=listening' "$log" && break
  kill -0 "$pid" 2>/dev/null || fail "smaugd --insecure exited"
  sleep 0.05
done
grep -q 'msg=listening addr=0.0.0.0:' "$log" || fail "--insecure did not listen"
grep -q 'level=warn comp=smaugd msg="--insecure: serving a network address without TLS' \
  "$log" || fail "--insecure: no warning"
stop "$pid"
echo "ok: --insecure serves 0.0.0.0 with a warning"

# --- smaugd -> plugins with --plugin-tls-*.
"$FAKE" --listen 127.0.0.1:0 --name plain --types t.plain \
  2>"$tmp/plain-plugin.log" &
pids+=($!)
"$FAKE" --listen "unix:$tmp/plugin.sock" --name local --types t.local \
  2>"$tmp/unix-plugin.log" &
pids+=($!)
paddr=
for _ in $(seq 1 200); do
  paddr=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' \
    "$tmp/plain-plugin.log" | head -n 1)
  [ -n "$paddr" ] && [ -S "$tmp/plugin.sock" ] && break
  sleep 0.05
done
[ -n "$paddr" ] || fail "the plaintext plugin did not start"
log=$tmp/plugins.log
: >"$log"
"$SMAUGD" --listen "unix:$tmp/smaugd.sock" --data-dir "$tmp/data.plugins" \
  --plugin-tls-ca "$c/ca.pem" --plugin-tls-cert "$c/client.pem" \
  --plugin-tls-key "$c/client.key" 2>"$log" &
pid=$!
pids+=("$pid")
for _ in $(seq 1 200); do
  grep -q 'msg=listening' "$log" && break
  sleep 0.05
done
export SMAUG_SERVER=unix:$tmp/smaugd.sock
if timeout 30 "$SMAUG" plugin register "$paddr" >"$tmp/reg.plain" 2>&1; then
  fail "a plaintext TCP plugin was registered with --plugin-tls-*"
fi
echo "ok: a plaintext TCP plugin is refused ($(tail -n 1 "$tmp/reg.plain"))"
timeout 30 "$SMAUG" plugin register "unix:$tmp/plugin.sock" >"$tmp/reg.unix" 2>&1 ||
  fail "a unix-socket plugin was refused: $(cat "$tmp/reg.unix")"
timeout 30 "$SMAUG" plugin list >"$tmp/list" 2>&1 || fail "plugin list failed"
grep -q local "$tmp/list" || fail "plugin list: $(cat "$tmp/list")"
grep -q plain "$tmp/list" && fail "the plaintext plugin is listed"
echo "ok: a unix-socket plugin is registered with --plugin-tls-*"
stop "$pid"

echo "ok: TLS end to end"
