#!/usr/bin/env bash
# Installs everything smaug needs to build, test and run, from Debian 12
# packages and the npm registry. Idempotent: packages already present are
# not fetched again, so `make deps` is cheap on a prepared machine.
#
#   scripts/deps.sh            build + test dependencies (default)
#   scripts/deps.sh runtime    only the shared libraries smaugd needs to run
set -euo pipefail

mode=${1:-all}

runtime_pkgs=(libgrpc29 libprotobuf-c1 libuv1 libsqlite3-0 libssl3 libzstd1
  libjansson4 ca-certificates)
build_pkgs=(build-essential cmake pkg-config libgrpc-dev protobuf-compiler
  protobuf-c-compiler libprotobuf-c-dev libprotoc-dev libprotobuf-dev grpc-proto
  libuv1-dev libcriterion-dev libsqlite3-dev libssl-dev libzstd-dev
  libjansson-dev python3-grpcio python3-protobuf protobuf-compiler-grpc
  clang-format valgrind graphviz)
# The machine's own Node.js is used when present; Debian's npm conflicts with
# a non-Debian node, so it is only installed where there is none.
command -v npm >/dev/null 2>&1 || build_pkgs+=(nodejs npm)

case "$mode" in
runtime) want=("${runtime_pkgs[@]}") ;;
all) want=("${runtime_pkgs[@]}" "${build_pkgs[@]}") ;;
*) echo "usage: $0 [all|runtime]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# buf (lint, curl) comes from npm; it is pinned in tools/package.json.
if [ "$mode" = all ]; then
  here=$(cd "$(dirname "$0")/.." && pwd)
  if [ ! -x "$here/tools/node_modules/.bin/buf" ]; then
    (cd "$here/tools" && npm install --no-audit --no-fund --silent)
  fi
fi
