#!/usr/bin/env bash
# Builds the smaug images and runs deploy/compose.yaml on a private Docker
# engine, then drives a protect and a restore through the published port
# with the host's `smaug` CLI. Needs root (it starts dockerd). Everything it
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

cleanup() {
  set +e
  if [ -n "$dockerd_pid" ]; then
    (cd "$here/deploy" && SMAUG_PORT="" docker-compose -p "$project" down -v --timeout 20) >/dev/null 2>&1
    docker rmi -f smaug:test smaug-network:test debian:bookworm-slim >/dev/null 2>&1
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
export SMAUG_PORT=$port SMAUG_IMAGE=smaug:test SMAUG_NETWORK_IMAGE=smaug-network:test
docker-compose -p "$project" up -d
port=$(docker-compose -p "$project" port smaugd 7420 | sed 's/.*://')
[ -n "$port" ] || { docker-compose -p "$project" logs >&2; exit 1; }
ok=""
for _ in $(seq 120); do
  if "$bin/smaug" health "127.0.0.1:$port" >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.5
done
[ -n "$ok" ] || { docker-compose -p "$project" logs >&2; exit 1; }
unhealthy=$(docker-compose -p "$project" ps | grep -c 'unhealthy' || true)
log "stack up; smaugd SERVING on 127.0.0.1:$port"

export SMAUG_SERVER=127.0.0.1:$port
"$bin/smaug" plugin list
cat >"$work/plan.json" <<'JSON'
{ "name": "container", "resources": [
    {"type": "smaug.project", "id": "proj-1", "extra": {"project": "proj-1"}} ] }
JSON
plan=$("$bin/smaug" -o json plan create -f "$work/plan.json" | sed -n 's/.*"id": *"\(pln-[^"]*\)".*/\1/p' | head -1)
[ -n "$plan" ] || { echo "container-test: plan create failed" >&2; exit 1; }
ckp_out=$("$bin/smaug" -o json protect "$plan" --wait)
ckp=$(printf '%s' "$ckp_out" | sed -n 's/.*"\(ckp-[0-9a-f]*\)".*/\1/p' | head -1)
printf '%s\n' "$ckp_out" | grep -q '"available"' || { echo "$ckp_out" >&2; exit 1; }
log "protected: checkpoint $ckp available"
rst_out=$("$bin/smaug" -o json restore "$ckp" --wait)
printf '%s\n' "$rst_out" | grep -q '"success"' || { echo "$rst_out" >&2; exit 1; }
log "restored from $ckp"

log "stopping the stack gracefully"
docker-compose -p "$project" stop --timeout 20
codes=$(docker-compose -p "$project" ps -q | xargs -r docker inspect -f '{{.Name}} {{.State.ExitCode}}')
printf '%s\n' "$codes"
if printf '%s\n' "$codes" | awk '$2 != 0 {bad=1} END {exit !bad}'; then
  echo "container-test: a container did not exit 0 on SIGTERM" >&2
  exit 1
fi
[ "$unhealthy" -eq 0 ] || { echo "container-test: unhealthy containers" >&2; exit 1; }
log "1 passed, 0 failed"
