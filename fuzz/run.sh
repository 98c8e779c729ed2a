#!/usr/bin/env bash
# Runs every libFuzzer target of a SMAUG_FUZZ build for a bounded time.
#
#   fuzz/run.sh BUILD_DIR [SECONDS [RSS_MB]]
#
# Each fuzz/corpus/<name>/ must have its binary BUILD_DIR/bin/fuzz-<name>
# (and each binary a corpus). The committed corpus is read only; inputs the
# fuzzer finds go to BUILD_DIR/fuzz-work/<name>/corpus, and a crashing
# input to BUILD_DIR/fuzz-work/<name>/crash-* (with the log next to it).
# Exits 1 when any target crashed, leaked, ran out of memory or timed out:
# fix it, and keep the input as fuzz/corpus/<name>/crash-<what>.
set -uo pipefail

build=${1:?usage: $0 BUILD_DIR [SECONDS [RSS_MB]]}
seconds=${2:-30}
rss=${3:-2048}
here=$(cd "$(dirname "$0")" && pwd)

failed=()
for dir in "$here"/corpus/*/; do
  name=$(basename "$dir")
  bin=$build/bin/fuzz-$name
  work=$build/fuzz-work/$name
  if [ ! -x "$bin" ]; then
    echo "fuzz-$name: no binary $bin (is the target in fuzz/CMakeLists.txt?)"
    failed+=("$name")
    continue
  fi
  mkdir -p "$work/corpus"
  echo "fuzz-$name: ${seconds}s"
  if ! "$bin" -max_total_time="$seconds" -rss_limit_mb="$rss" -timeout=10 \
      -print_final_stats=1 -artifact_prefix="$work/" \
      "$work/corpus" "$dir" >"$work/log" 2>&1; then
    echo "fuzz-$name: FAILED; log $work/log, input:" "$work"/crash-* \
      "$work"/leak-* "$work"/oom-* "$work"/timeout-* 2>/dev/null
    tail -n 40 "$work/log"
    failed+=("$name")
    continue
  fi
  grep -E '^stat::number_of_executed_units|^Done ' "$work/log" | tail -n 1
done
for bin in "$build"/bin/fuzz-*; do
  [ -e "$bin" ] || continue
  name=${bin##*/fuzz-}
  if [ ! -d "$here/corpus/$name" ]; then
    echo "fuzz-$name: no corpus fuzz/corpus/$name/"
    failed+=("$name")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}"
  exit 1
fi
echo "fuzz: every target ran ${seconds}s without a failure"
