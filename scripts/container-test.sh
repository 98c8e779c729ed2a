#!/usr/bin/env bash
# Builds the smaug images and runs deploy/compose.yaml on a private Docker
# engine: the `certs` service makes the CAs, certificates and admin token,
# smaugd serves TLS with tokens and dials the plugins with mutual TLS. The
# test copies the CA and the token out of the volume as the README says,
# drives a protect and a restore through the published port with the host's
# `smaug` CLI, and checks the refusals: a plaintext call, a call without a
# token, a direct call to a plugin without smaugd's client certificate (or
# with another certificate of the stack). It checks the files' modes and
# owner, that no plugin port is published, and that a second `up` keeps the
# certificates and the token. Needs root (it starts dockerd). Everything it
# creates lives under one temporary folder and is removed on exit.
#
# Registry pulls are impossible here, so the Debian 12 base image is made
# with debootstrap from the machine's own apt mirror and imported as
# debian:bookworm-slim, which the Dockerfile's FROM lines then resolve.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${SMAUG_BIN:-$here/build/bin}
work=$(mktemp -d /tmp/smaug-ct.XXXXXX)
sock=$work/docker.sock
export DOCKER_HOST=unix://$sock
export DOCKER_BUILDKIT=0 # the legacy builder needs no buildx plugin
project=smaugct$$
port="" # published on a free port that Docker picks; read back after up
dockerd_pid=""

log() { printf '[container-test] %s\n' "$*"; }
fail() { echo "container-test: FAILED: $*" >&2; exit 1; }

cleanup() {
  set +e
  if [ -n "$dockerd_pid" ]; then
    (cd "$here/deploy" && SMAUG_PORT="" docker-compose -p "$project" down -v --timeout 20) >/dev/null 2>&1
    docker rmi -f smaug:test smaug-network:test smaug-certs:test debian:bookworm-slim >/dev/null 2>&1
    kill "$dockerd_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$dockerd_pid" 2>/dev/null
  fi
  # overlay mounts of a killed engine would keep rm from working
  grep -o "$work[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || { echo "container-test: needs root to run dockerd" >&2; exit 1; }
for t in dockerd docker docker-compose debootstrap; do
  command -v $t >/dev/null || { echo "container-test: $t missing (run make deps)" >&2; exit 1; }
done
[ -x "$bin/smaug" ] || { echo "container-test: $bin/smaug missing (run make build)" >&2; exit 1; }

log "starting a private Docker engine in $work"
dockerd --data-root "$work/root" --exec-root "$work/exec" --host "unix://$sock" \
  --pidfile "$work/docker.pid" >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
docker info >/dev/null 2>&1 || { cat "$work/dockerd.log" >&2; exit 1; }

log "building the Debian 12 base image with debootstrap"
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
mirror=${mirror:-http://deb.debian.org/debian}
debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log" >&2; exit 1; }
# The image uses the same apt sources as this machine (updates, security).
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  cp /etc/apt/sources.list.d/debian.sources "$work/rootfs/etc/apt/sources.list.d/"
  rm -f "$work/rootfs/etc/apt/sources.list"
fi
tar -C "$work/rootfs" -c . | docker import - debian:bookworm-slim >/dev/null
rm -rf "$work/rootfs"

log "building images"
docker build -q -t smaug:test --target smaugd "$here" >/dev/null
docker build -q -t smaug-network:test --target plugin-network "$here" >/dev/null

log "starting the stack"
cd "$here/deploy"
export SMAUG_PORT=$port SMAUG_IMAGE=smaug:test SMAUG_NETWORK_IMAGE=smaug-network:test \
  SMAUG_CERTS_IMAGE=smaug-certs:test
dc() { docker-compose -p "$project" "$@"; }
dc build -q certs >/dev/null
dc up -d
port=$(dc port smaugd 7420 | sed 's/.*://')
[ -n "$port" ] || { dc logs >&2; exit 1; }

# The CA and the admin token, out of the certs volume: no token on a
# command line, the token file 0600 (the CLI refuses it otherwise).
# (docker-compose 1.x has no `cp`: docker cp from the exited container, and
# the README's other way, the volume mounted in a throw-away container.)
certs_ctr=$(dc ps -q certs)
docker cp "$certs_ctr:/var/lib/smaug/pki/ca.crt" "$work/ca.crt"
(umask 077 && docker run --rm -v "${project}_certs:/pki:ro" --entrypoint cat smaug:test \
  /pki/admin.token >"$work/admin.token")
[ -s "$work/admin.token" ] || fail "no admin token in the certs volume"
export SMAUG_SERVER=127.0.0.1:$port SMAUG_TLS_CA=$work/ca.crt SMAUG_TOKEN_FILE=$work/admin.token
smaug() { "$bin/smaug" "$@"; }

ok=""
for _ in $(seq 120); do
  if smaug health >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.5
done
[ -n "$ok" ] || { dc logs >&2; exit 1; }
log "stack up; smaugd SERVING TLS on 127.0.0.1:$port"
# smaugd dials every plugin with mutual TLS: all five must be SERVING.
n=0
for _ in $(seq 60); do
  n=$({ smaug -o json plugin list 2>/dev/null || true; } | grep -c 'PLUGIN_HEALTH_SERVING' || true)
  [ "$n" -ge 5 ] && break
  sleep 0.5
done
[ "$n" -ge 5 ] || { smaug plugin list >&2; dc logs smaugd >&2; fail "plugins not all serving over mTLS"; }
smaug plugin list
unhealthy=$(dc ps | grep -c 'unhealthy' || true)
# No plaintext anywhere: no insecure switch given, the API listens with TLS.
grep -q 'INSECURE' compose.yaml && fail "compose.yaml still sets an INSECURE switch"
dc logs smaugd >"$work/smaugd.log"
grep -q 'insecure:' "$work/smaugd.log" && fail "smaugd runs with --insecure or --plugin-insecure"
grep -q 'msg=listening addr=0.0.0.0:7420 tls=on' "$work/smaugd.log" || fail "smaugd does not listen with TLS"

log "checking files: keys and secrets 0600, owned by the services' uid"
# Every file a service mounts: mode 600, owner 10001 (the image's user).
for s in smaugd plugin-project plugin-server plugin-volume plugin-image plugin-network; do
  modes=$(dc exec -T "$s" sh -c 'stat -c "%a %u %n" /var/lib/smaug/tls /var/lib/smaug/tls/*' </dev/null | tr -d '\r')
  printf '%s\n' "$modes" | sed "s/^/  $s: /"
  printf '%s\n' "$modes" | awk '!(($1 == "600" || $1 == "700") && $2 == 10001) {bad=1} END {exit bad}' ||
    fail "$s: a TLS file is not 0600/0700 owned by 10001"
done
# A plugin's volume holds its own key and the client CA only: not smaugd's
# client key, not the CA keys, not the admin token.
files=$(dc exec -T plugin-volume ls /var/lib/smaug/tls </dev/null | tr -d '\r' | sort | tr '\n' ' ')
[ "$files" = "client-ca.crt server.crt server.key " ] || fail "plugin-volume sees: $files"
files=$(dc exec -T smaugd ls /var/lib/smaug/tls </dev/null | tr -d '\r' | sort | tr '\n' ' ')
[ "$files" = "ca.crt client.crt client.key server.crt server.key tokens " ] || fail "smaugd sees: $files"
dc exec -T smaugd cat /var/lib/smaug/tls/tokens </dev/null | tr -d '\r' >"$work/tokens"
grep -q '^admin admin default sha256:' "$work/tokens" || fail "smaugd's token file has no admin hash"
grep -qF -f "$work/admin.token" "$work/tokens" && fail "the token file holds the token in clear"

log "checking refusals"
# Plaintext to smaugd's TLS port: refused (the handshake never completes).
if SMAUG_TLS_CA= smaug plan list >"$work/plain.out" 2>&1; then
  fail "a plaintext call succeeded: $(cat "$work/plain.out")"
fi
log "plaintext API call refused: $(head -1 "$work/plain.out")"
# TLS without a token: UNAUTHENTICATED.
if SMAUG_TOKEN_FILE= smaug plan list >"$work/notoken.out" 2>&1; then
  fail "a call without a token succeeded"
fi
grep -q UNAUTHENTICATED "$work/notoken.out" || fail "no token: $(cat "$work/notoken.out")"
log "call without a token: $(head -1 "$work/notoken.out")"
# A wrong token: UNAUTHENTICATED as well.
(umask 077 && echo smaug_not-a-real-token >"$work/bad.token")
if SMAUG_TOKEN_FILE=$work/bad.token smaug plan list >"$work/badtoken.out" 2>&1; then
  fail "a call with a wrong token succeeded"
fi
grep -q UNAUTHENTICATED "$work/badtoken.out" || fail "wrong token: $(cat "$work/badtoken.out")"

# No plugin port on the host: only smaugd publishes one.
for s in plugin-project plugin-server plugin-volume plugin-image plugin-network; do
  bound=$(docker inspect -f '{{range $p, $b := .NetworkSettings.Ports}}{{if $b}}{{$p}} {{end}}{{end}}' "$(dc ps -q "$s")")
  [ -z "$bound" ] || fail "$s publishes $bound on the host"
done
# Direct calls to a plugin from inside the stack's network (from smaugd's
# container, which holds the CA): with smaugd's client certificate the
# plugin answers; in plaintext, with TLS but no client certificate, or with
# a certificate of the server CA (as every plugin holds), it refuses.
# smaugd's SMAUG_TLS_CERT/KEY (its API certificate) are also the CLI's
# client certificate variables: unset, so that each call sends exactly the
# credentials it names.
t=/var/lib/smaug/tls
cli() { # SERVICE ADDR [ARGS...]: smaug health from inside the stack
  local s=$1 addr=$2
  shift 2
  dc exec -T "$s" env -u SMAUG_TLS_CERT -u SMAUG_TLS_KEY -u SMAUG_TLS_CA \
    smaug health "$@" "$addr" </dev/null 2>&1 | tr -d '\r'
}
direct() { cli smaugd plugin-volume:7433 "$@"; }
out=$(direct --tls-ca $t/ca.crt --tls-cert $t/client.crt --tls-key $t/client.key) ||
  fail "plugin-volume refused smaugd's client certificate: $out"
[ "$out" = SERVING ] || fail "plugin-volume with smaugd's certificate: $out"
out=$(direct) && fail "a plaintext call to plugin-volume succeeded: $out"
log "plaintext call to a plugin refused: $out"
out=$(direct --tls-ca $t/ca.crt) && fail "a call to plugin-volume without a client certificate succeeded"
log "call to a plugin without a client certificate refused: $out"
out=$(direct --tls-ca $t/ca.crt --tls-cert $t/server.crt --tls-key $t/server.key) &&
  fail "plugin-volume accepted a server certificate as a client"
log "call to a plugin with another certificate of the stack refused: $out"
# The same for the Python plugin.
out=$(cli smaugd plugin-network:7430 --tls-ca $t/ca.crt --tls-cert $t/client.crt --tls-key $t/client.key)
[ "$out" = SERVING ] || fail "plugin-network with smaugd's certificate: $out"
out=$(cli smaugd plugin-network:7430 --tls-ca $t/ca.crt) &&
  fail "plugin-network accepted a call without a client certificate"
out=$(cli smaugd plugin-network:7430) && fail "plugin-network accepted a plaintext call"
# And a plugin's own certificate opens no other plugin: plugin-image's,
# copied into smaugd's container for the call.
docker cp "$(dc ps -q plugin-image):$t/server.crt" "$work/pi.crt"
docker cp "$(dc ps -q plugin-image):$t/server.key" "$work/pi.key"
ctr=$(dc ps -q smaugd)
docker cp "$work/pi.crt" "$ctr:/tmp/pi.crt"
docker cp "$work/pi.key" "$ctr:/tmp/pi.key"
dc exec -T -u 0 smaugd chown smaug /tmp/pi.crt /tmp/pi.key </dev/null
out=$(direct --tls-ca $t/ca.crt --tls-cert /tmp/pi.crt --tls-key /tmp/pi.key) &&
  fail "plugin-volume accepted plugin-image's certificate as a client"
log "call to a plugin with another plugin's certificate refused: $out"

log "protect and restore over TLS with the admin token"
cat >"$work/plan.json" <<'JSON'
{ "name": "container", "resources": [
    {"type": "smaug.project", "id": "proj-1", "extra": {"project": "proj-1"}} ] }
JSON
plan=$(smaug -o json plan create -f "$work/plan.json" | sed -n 's/.*"id": *"\(pln-[^"]*\)".*/\1/p' | head -1)
[ -n "$plan" ] || fail "plan create failed"
ckp_out=$(smaug -o json protect "$plan" --wait)
ckp=$(printf '%s' "$ckp_out" | sed -n 's/.*"\(ckp-[0-9a-f]*\)".*/\1/p' | head -1)
printf '%s\n' "$ckp_out" | grep -q '"available"' || { echo "$ckp_out" >&2; exit 1; }
log "protected: checkpoint $ckp available"
rst_out=$(smaug -o json restore "$ckp" --wait)
printf '%s\n' "$rst_out" | grep -q '"success"' || { echo "$rst_out" >&2; exit 1; }
log "restored from $ckp"

log "a second up keeps the certificates and the token"
sums() { docker run --rm -v "${project}_certs:/pki:ro" --entrypoint sh smaug:test -c 'sha256sum /pki/*'; }
before=$(sums)
dc up -d
[ "$(docker inspect -f '{{.State.ExitCode}}' "$certs_ctr")" = 0 ] || { dc logs certs >&2; fail "certs failed on the second run"; }
dc logs certs | grep -c 'certs: ready' | grep -qx 2 || { dc logs certs >&2; fail "certs did not run twice"; }
after=$(sums)
[ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after") >&2; fail "the second run changed the material"; }
smaug plan list >/dev/null || fail "the admin token no longer works after a second up"

log "an operator token, added as docs/security.md shows"
(umask 077 && dc run --rm -T --entrypoint smaugd certs token add \
  --tokens-file /var/lib/smaug/pki/tokens --name ci --role operator --tenant default \
  </dev/null >"$work/ci.token")
grep -q '^smaug_' "$work/ci.token" || fail "token add printed no token: $(cat "$work/ci.token")"
dc run --rm -T certs </dev/null >/dev/null
dc kill -s SIGHUP smaugd
for _ in $(seq 100); do
  dc logs smaugd | grep -q 'msg="tokens loaded".* tokens=2' && break
  sleep 0.1
done
dc logs smaugd | grep -q 'msg="tokens loaded".* tokens=2' || fail "smaugd did not reload the token file"
SMAUG_TOKEN_FILE=$work/ci.token smaug plan list >/dev/null || fail "the operator token is refused"
if SMAUG_TOKEN_FILE=$work/ci.token smaug plugin register plugin-volume:7433 --replace \
  >"$work/takeover.out" 2>&1; then
  fail "an operator replaced a plugin"
fi
grep -q PERMISSION_DENIED "$work/takeover.out" || fail "operator register: $(cat "$work/takeover.out")"
log "operator's plugin register refused: $(head -1 "$work/takeover.out")"

log "stopping the stack gracefully"
dc stop --timeout 20
codes=$(dc ps -q | xargs -r docker inspect -f '{{.Name}} {{.State.ExitCode}}')
printf '%s\n' "$codes"
if printf '%s\n' "$codes" | awk '$2 != 0 {bad=1} END {exit !bad}'; then
  echo "container-test: a container did not exit 0 on SIGTERM" >&2
  exit 1
fi
[ "$unhealthy" -eq 0 ] || { echo "container-test: unhealthy containers" >&2; exit 1; }
log "1 passed, 0 failed"
