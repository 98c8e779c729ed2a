#!/usr/bin/env bash
# Installs what smaug needs, from Debian 12 packages and the npm registry.
# Idempotent: packages already present are not fetched again, so `make deps`
# is cheap on a prepared machine. The Dockerfile uses the same script.
#
#   scripts/deps.sh [all]    build + test + container-test dependencies
#   scripts/deps.sh build    what a build needs (used by the image's build stage)
#   scripts/deps.sh runtime  the shared libraries smaugd and the plugins load
set -euo pipefail

mode=${1:-all}

runtime_pkgs=(libgrpc29 libprotobuf-c1 libuv1 libsqlite3-0 libssl3 libzstd1 zstd
  libjansson4 ca-certificates)
build_pkgs=(build-essential cmake pkg-config libgrpc-dev protobuf-compiler
  protobuf-c-compiler libprotobuf-c-dev libprotoc-dev libprotobuf-dev grpc-proto
  protobuf-compiler-grpc libuv1-dev libsqlite3-dev libssl-dev libzstd-dev
  libjansson-dev libcriterion-dev)
python_pkgs=(python3 python3-grpcio python3-protobuf)
# Tests also need: the formatter, valgrind, Graphviz for the flow picture,
# clang with its runtime libraries for the libFuzzer targets (`make fuzz`),
# and a Docker engine with debootstrap for the container test.
test_pkgs=(clang-format valgrind graphviz jq clang-14 libclang-rt-14-dev
  docker.io docker-compose containerd runc iptables debootstrap)

case "$mode" in
runtime) want=("${runtime_pkgs[@]}") ;;
build) want=("${runtime_pkgs[@]}" "${build_pkgs[@]}") ;;
all) want=("${runtime_pkgs[@]}" "${build_pkgs[@]}" "${python_pkgs[@]}" "${test_pkgs[@]}")
  # The machine's own Node.js is used when present: Debian's npm conflicts
  # with a non-Debian node, so it is only installed where there is none.
  command -v npm >/dev/null 2>&1 || want+=(nodejs npm) ;;
*) echo "usage: $0 [all|build|runtime]" >&2; exit 2 ;;
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

# buf (lint, curl) comes from npm, pinned in tools/package.json.
if [ "$mode" = all ]; then
  here=$(cd "$(dirname "$0")/.." && pwd)
  if [ ! -x "$here/tools/node_modules/.bin/buf" ]; then
    (cd "$here/tools" && npm install --no-audit --no-fund --silent)
  fi
fi
