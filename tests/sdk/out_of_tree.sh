#!/usr/bin/env bash
# Installs the SDK component into a temporary prefix and builds the example
# plugin out of tree with nothing but pkg-config, then runs it briefly and
# checks that the library exports exactly the functions its headers declare
# (no runtime, gRPC or generated protobuf symbols).
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
# The exports are exactly the functions the installed headers declare:
# preprocess every header (no comments, no macros), take each smaug_ name
# followed by "(" that is not a callback typedef's "(*name)", and compare
# with the library's defined dynamic symbols.
for h in "$dir/prefix/include/smaug/"*.h; do
  echo "#include <smaug/$(basename "$h")>"
done | cc -E -P -I"$dir/prefix/include" -x c - | tr '\n' ' ' |
  grep -oE '[^(]smaug_[A-Za-z0-9_]+ *\(' | grep -oE 'smaug_[A-Za-z0-9_]+' |
  sort -u >"$dir/declared"
nm -D --defined-only "$libdir/libsmaug-plugin.so" | awk '{print $3}' |
  sed 's/@.*//' | grep -vx 'SMAUG_0' | sort -u >"$dir/exported"
[ "$(wc -l <"$dir/declared")" -ge 60 ] ||
  { echo "found only $(wc -l <"$dir/declared") declarations"; exit 1; }
if ! diff -u "$dir/declared" "$dir/exported" >"$dir/exports.diff"; then
  echo "exports differ from the public headers (- declared only, + exported only):"
  grep '^[-+][^-+]' "$dir/exports.diff"
  exit 1
fi
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
