#!/usr/bin/env bash
# A C sample plugin (on the SDK) started with a --listen it cannot use
# exits at once with status 1 and says what really failed:
#   unix:/nonexistent/dir/s.sock  "directory /nonexistent/dir does not exist"
#   127.0.0.1:99999 and :99999    "port 99999 is out of range"
#   1.2.3.4:0                     "1.2.3.4 is not an address of this host"
# Each start is bounded by `timeout`, so a plugin that listens somewhere
# else instead (and would run on) fails the test rather than hanging it.
# Usage: listen_errors.sh BIN_DIR
set -euo pipefail
bin=${1:?usage: listen_errors.sh BIN_DIR}
tmp=$(mktemp -d /tmp/smaug-listen-errors.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "listen_errors: FAILED: $*" >&2; exit 1; }

cases=(
  "unix:/nonexistent/dir/s.sock|directory /nonexistent/dir does not exist"
  "127.0.0.1:99999|port 99999 is out of range"
  ":99999|port 99999 is out of range"
  "1.2.3.4:0|1.2.3.4 is not an address of this host"
)
passed=0
for plugin in smaug-plugin-volume smaug-plugin-image smaug-plugin-server \
              smaug-plugin-project; do
  [ -x "$bin/$plugin" ] || fail "$bin/$plugin is missing"
  for c in "${cases[@]}"; do
    addr=${c%%|*} want=${c#*|}
    rc=0
    timeout 10 "$bin/$plugin" --listen "$addr" --cloud "$tmp" \
      >"$tmp/out" 2>"$tmp/err" || rc=$?
    [ "$rc" -eq 1 ] ||
      fail "$plugin --listen $addr: exit $rc, want 1: $(cat "$tmp/err")"
    grep -q "msg=\"cannot listen\" addr=$addr error=\"$want" "$tmp/err" ||
      fail "$plugin --listen $addr does not say \"$want\": $(cat "$tmp/err")"
    passed=$((passed + 1))
  done
done
echo "listen errors: $passed passed, 0 failed"
