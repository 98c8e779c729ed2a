#!/bin/bash
# auth_tls.sh SMAUGD BUF CERTS_SH - tokens together with TLS: over TLS a
# call needs its token (buf curl --cacert, with and without one); on a
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
