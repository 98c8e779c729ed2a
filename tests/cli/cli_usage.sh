#!/usr/bin/env bash
# Usage errors of the smaug binary: each case must exit 2 and say why on
# stderr. Also: a malformed plan file is reported with line:column, and an
# unknown key by name. No server is needed; none of these reach the network.
set -u
SMAUG=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

# expect CODE PATTERN ARGS...: exit CODE, stderr matching PATTERN (grep -E).
expect() {
  local code=$1 pat=$2
  shift 2
  "$SMAUG" "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [ "$got" != "$code" ] || ! grep -Eq -- "$pat" "$tmp/err"; then
    echo "FAIL: smaug $* -> exit $got (want $code), stderr:"
    sed 's/^/  /' "$tmp/err"
    fails=$((fails + 1))
  fi
}

# Unreachable on purpose, so a case that wrongly makes a call exits 3.
export SMAUG_SERVER=127.0.0.1:1

expect 2 'usage: smaug'
expect 2 'unknown command "frobnicate"' frobnicate
expect 2 '"plan" needs a subcommand' plan
expect 2 'unknown command "plan explode"' plan explode
expect 2 'unknown option --bogus' --bogus plan list
expect 2 'unknown option --nope' plan list --nope
expect 2 'wrong number of arguments' plan show
expect 2 'wrong number of arguments' plan show a b
expect 2 '-f FILE is required' plan create
expect 2 'option --file needs a value' plan create -f
expect 2 'option --wait takes no value' protect pln-1 --wait=yes
expect 2 '--output must be table or json' -o yaml plan list
expect 2 '--timeout takes milliseconds' --timeout 0 plan list
expect 2 'neither a plan \(pln-\) nor a checkpoint \(ckp-\)' flow abc
expect 2 'unknown kind "sideways"' flow pln-1 --kind sideways
expect 2 'unknown status "shiny"' checkpoint list --status shiny
expect 2 'expected \[TYPE\[#ID\]:\]KEY=VALUE' restore ckp-1 -p novalue

# Help is not an error.
"$SMAUG" --help >"$tmp/out" || { echo "FAIL: --help"; fails=$((fails + 1)); }
grep -q 'checkpoint verify' "$tmp/out" || { echo "FAIL: help lists commands"; fails=$((fails + 1)); }
"$SMAUG" plan create --help >"$tmp/out" || { echo "FAIL: plan create --help"; fails=$((fails + 1)); }

# Plan files.
printf '{\n  "name": "web",\n  "resources": [\n    {"type": "a" "id": "1"}\n  ]\n}\n' >"$tmp/bad.json"
expect 2 "bad.json:4:" plan create -f "$tmp/bad.json"
printf '{"name": "web", "resources": [{"type": "a", "id": "1", "nmae": "x"}]}' >"$tmp/key.json"
expect 2 'resources\[0\]: unknown key "nmae"' plan create -f "$tmp/key.json"
printf '{"name": "web", "resources": [{"type": "a", "id": "1"}], "edges": [{"parent": "a1", "child": "b#2"}]}' >"$tmp/edge.json"
expect 2 'edges\[0\].parent: expected "type#id"' plan create -f "$tmp/edge.json"
expect 2 'No such file or directory' plan create -f "$tmp/missing.json"
echo '{"name": "x", "resources": [' | "$SMAUG" plan create -f - 2>"$tmp/err"
[ $? = 2 ] && grep -q '<stdin>:' "$tmp/err" || { echo "FAIL: stdin plan"; fails=$((fails + 1)); }

# A valid plan file gets past parsing and then finds no server: exit 3.
printf '{"name": "web", "resources": [{"type": "a", "id": "1"}]}' >"$tmp/ok.json"
expect 3 'unreachable' --timeout 2000 plan create -f "$tmp/ok.json"

if [ "$fails" -ne 0 ]; then
  echo "$fails case(s) failed"
  exit 1
fi
echo "all usage cases passed"
