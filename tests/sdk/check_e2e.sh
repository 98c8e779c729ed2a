#!/usr/bin/env bash
# Runs smaug-plugin-check against a plugin process and checks the outcome.
#   check_e2e.sh CHECKER EXPECT PLUGIN [PLUGIN ARGS...]
# EXPECT is "pass" (every check passes, exit 0) or the name of a check that
# must be reported as FAIL (and the checker must exit 1).
set -u
checker=$1 expect=$2
shift 2
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
"$@" --listen 127.0.0.1:0 2>"$dir/plugin.log" &
pid=$!
addr=
for _ in $(seq 1 100); do
  addr=$(grep -o 'msg=listening addr=[^ ]*' "$dir/plugin.log" | head -1 | cut -d= -f3)
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$addr" ] || { echo "plugin did not start"; cat "$dir/plugin.log"; exit 1; }
# The bank-root check needs a bank outside the plugin's root: the example
# plugin has no root, so it must fail there.
extra=()
[ "$expect" != bank-root ] || extra=(--outside-bank "file://$dir/outside")
"$checker" "$addr" "${extra[@]}" >"$dir/out" 2>&1
rc=$?
cat "$dir/out"
if [ "$expect" = pass ]; then
  [ $rc -eq 0 ] || { echo "want exit 0, got $rc"; exit 1; }
  grep -q '^FAIL' "$dir/out" && { echo "a check failed"; exit 1; }
  grep -q ' 0 failed$' "$dir/out" || exit 1
else
  [ $rc -eq 1 ] || { echo "want exit 1, got $rc"; exit 1; }
  grep -q "^FAIL $expect:" "$dir/out" || { echo "check $expect did not fail"; exit 1; }
fi
kill -TERM "$pid"
wait "$pid"
prc=$?
if [ "$expect" = pass ] && [ $prc -ne 0 ]; then
  echo "plugin exited with $prc"; cat "$dir/plugin.log"; exit 1
fi
echo ok
