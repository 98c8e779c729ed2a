#!/usr/bin/env bash
# Installs the SDK component into a temporary prefix and builds the example
# plugin out of tree with nothing but pkg-config, then runs it briefly and
# checks that the library exports only smaug_* symbols.
#   out_of_tree.sh BUILD_DIR EXAMPLE_C SANITIZE(ON|OFF)
set -eu
build=$1 example=$2 sanitize=$3
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
pid=
cmake --install "$build" --component smaug-plugin --prefix "$dir/prefix" >/dev/null
libdir=$(dirname "$(find "$dir/prefix" -name smaug-plugin.pc | head -1)")/..
export PKG_CONFIG_PATH=$libdir/pkgconfig
flags=
[ "$sanitize" = ON ] && flags="-fsanitize=address,undefined"
# The public headers must stand alone: no runtime, gRPC or protobuf-c.
if grep -rn 'rt\.h\|grpc/\|protobuf-c' "$dir/prefix/include/smaug"; then
  echo "public headers expose internals"; exit 1
fi
cc -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Wno-unused-parameter -Werror $flags "$example" \
  $(pkg-config --cflags --libs smaug-plugin) -o "$dir/plugin"
bad=$(nm -D --defined-only "$libdir/libsmaug-plugin.so" | awk '{print $3}' |
      grep -v '^smaug_' | grep -v '^SMAUG_0$' || true)
[ -z "$bad" ] || { echo "unexpected exports: $bad"; exit 1; }
readelf -d "$libdir/libsmaug-plugin.so" | grep -q 'SONAME.*libsmaug-plugin.so.0'
LD_LIBRARY_PATH=$libdir "$dir/plugin" --listen "unix:$dir/p.sock" 2>"$dir/log" &
pid=$!
for _ in $(seq 1 100); do
  grep -q 'msg=listening' "$dir/log" && break
  sleep 0.1
done
grep -q "msg=listening addr=unix:$dir/p.sock" "$dir/log"
kill -TERM "$pid"
wait "$pid"
pid=
grep -q 'msg=stopped' "$dir/log"
echo ok
