#!/bin/bash
# auth_tls.sh SMAUGD BUF CERTS_SH - tokens together with TLS: over TLS a
# call needs its token (buf curl --cacert, with and without one); with
# mTLS a cert: line gives a client certificate its role (and revoking it
# with SIGHUP ends that), while a token sent beside it decides; on a
# non-loopback address TLS alone is refused, naming --auth-tokens, while
# TLS with --auth-tokens is served without --insecure (in a network
# namespace of its own, so 0.0.0.0 reaches nobody).
set -u
SMAUGD=$1
BUF=$2
CERTS_SH=$3
T=$(mktemp -d)
PIDS=()
. "$(dirname "$0")/../api/lib.sh"
cleanup() {
  for p in "${PIDS[@]}"; do stop "$p"; done
  rm -rf "$T"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

mkdir "$T/c"
sh "$CERTS_SH" "$T/c" || { echo "cannot make certificates"; exit 1; }
TLS=(--tls-cert "$T/c/server.pem" --tls-key "$T/c/server.key")
TOKEN=$("$SMAUGD" token add --tokens-file "$T/tokens" --name ada \
  --role admin 2>/dev/null) || fail "token add"

# start_log LOG CMD...: starts CMD, waits for its listening line.
start_log() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 200); do
    grep -q 'msg=listening' "$log" && return 0
    kill -0 "${PIDS[-1]}" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# TLS on loopback with tokens: the token is still needed.
start_log "$T/d.log" "$SMAUGD" --listen 127.0.0.1:0 --data-dir "$T/d" \
  "${TLS[@]}" --auth-tokens "$T/tokens" || fail "smaugd: $(cat "$T/d.log")"
port=$(grep -o 'msg=listening addr=127.0.0.1:[0-9]*' "$T/d.log" | cut -d: -f2)
url=https://localhost:$port/smaug.v1.Orchestrator/ListPlans
bc() { "$BUF" curl --protocol grpc --cacert "$T/c/ca.pem" "$@"; }
bc -d '{}' "$url" >"$T/out" 2>&1 && fail "TLS without a token served"
grep -q unauthenticated "$T/out" && ok "TLS without a token: unauthenticated" ||
  fail "TLS without a token: $(cat "$T/out")"
bc -H "authorization: Bearer $TOKEN" -d '{}' "$url" >"$T/out" 2>&1 &&
  ok "TLS with the token: served" || fail "TLS with a token: $(cat "$T/out")"
grep -qF "$TOKEN" "$T/d.log" && fail "the token is in smaugd's log"

# mTLS: a cert: line gives the client certificate (SAN
# spiffe://smaug/client) a role without a token; a token still decides
# when one is sent; revoking the line stops it after SIGHUP.
"$SMAUGD" token add --tokens-file "$T/tokens" --name svc --role operator \
  --cert spiffe://smaug/client >"$T/out" 2>&1 || fail "add --cert: $(cat "$T/out")"
grep -q "^smaug_" "$T/out" && fail "add --cert printed a token"
grep -q '^svc operator default cert:spiffe://smaug/client$' "$T/tokens" ||
  fail "cert line: $(cat "$T/tokens")"
start_log "$T/m.log" "$SMAUGD" --listen 127.0.0.1:0 --data-dir "$T/m" \
  "${TLS[@]}" --tls-client-ca "$T/c/ca.pem" --auth-tokens "$T/tokens" ||
  fail "smaugd mTLS: $(cat "$T/m.log")"
mpid=${PIDS[-1]}
port=$(grep -o 'msg=listening addr=127.0.0.1:[0-9]*' "$T/m.log" | cut -d: -f2)
base=https://localhost:$port/smaug.v1.Orchestrator
mc() { bc --cert "$T/c/client.pem" --key "$T/c/client.key" "$@"; }
mc -d '{}' "$base/ListPlans" >"$T/out" 2>&1 &&
  ok "mTLS certificate without a token: served" ||
  fail "mTLS certificate without a token: $(cat "$T/out")"
mc -d '{"address":"127.0.0.1:1"}' "$base/RegisterPlugin" >"$T/out" 2>&1
grep -q "certificate svc has the role operator; RegisterPlugin needs admin" \
  "$T/out" && ok "the certificate's role: operator" ||
  fail "mTLS RegisterPlugin: $(cat "$T/out")"
mc -H "authorization: Bearer ${TOKEN}x" -d '{}' "$base/ListPlans" \
  >"$T/out" 2>&1
grep -q "unknown or revoked token" "$T/out" &&
  ok "a bad token is refused beside a known certificate" ||
  fail "bad token with mTLS: $(cat "$T/out")"
"$SMAUGD" token revoke --tokens-file "$T/tokens" --name svc 2>/dev/null ||
  fail "revoke svc"
kill -HUP "$mpid"
for _ in $(seq 1 200); do
  [ "$(grep -c 'msg="tokens loaded"' "$T/m.log")" -ge 2 ] && break
  sleep 0.05
done
mc -d '{}' "$base/ListPlans" >"$T/out" 2>&1
grep -q unauthenticated "$T/out" && ok "revoked certificate line: refused" ||
  fail "revoked certificate: $(cat "$T/out")"
# A clean exit on SIGTERM (under ASan: no leak or error report).
stop "$mpid"
wait "$mpid"
rc=$?
[ $rc -eq 0 ] || fail "smaugd exited $rc: $(tail -20 "$T/m.log")"

# A network address: TLS alone is refused, naming --auth-tokens.
"$SMAUGD" --listen 0.0.0.0:0 --data-dir "$T/d2" "${TLS[@]}" >"$T/r.log" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "without authentication.*--auth-tokens" "$T/r.log" &&
  ! grep -q 'msg=listening' "$T/r.log" &&
  ok "0.0.0.0 with TLS and no tokens refused" ||
  fail "0.0.0.0 with TLS, no tokens: $rc $(cat "$T/r.log")"
# TLS and tokens: served, without --insecure and without its warning.
start_log "$T/n.log" unshare -n "$SMAUGD" --listen 0.0.0.0:0 \
  --data-dir "$T/d3" "${TLS[@]}" --auth-tokens "$T/tokens" &&
  grep -q 'msg=listening addr=0.0.0.0:' "$T/n.log" &&
  ! grep -q 'insecure' "$T/n.log" &&
  ok "0.0.0.0 with TLS and tokens served" ||
  fail "0.0.0.0 with TLS and tokens: $(cat "$T/n.log")"

echo "$fails failed"
[ $fails -eq 0 ]
