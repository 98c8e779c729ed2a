#!/bin/bash
# Runs smaug-plugin-check against each sample plugin (the four in C and the
# Python one) on a generated cloud. Usage: check_plugins.sh BIN_DIR
set -euo pipefail
bin=$1
dir=$(mktemp -d /tmp/spt-check-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
"$bin/smaug-cloud-gen" --dir "$dir/cloud" --volume-mib 2 --image-kib 64 >/dev/null
status=0
for spec in project:smaug.project:proj-1 server:smaug.server:p1-srv-1 \
            volume:smaug.volume:p1-vol-1 image:smaug.image:p1-img-1 \
            network:smaug.network:p1-net-1; do
  IFS=: read -r name type id <<<"$spec"
  extra=(--work-dir "$dir")
  [ "$name" != network ] || extra=() # the Python plugin keeps no work files
  # setsid: its own process group, safe from other tests' clean-up.
  setsid "$bin/smaug-plugin-$name" --listen "unix:$dir/$name.sock" \
    --cloud "$dir/cloud" "${extra[@]}" --exit-with-parent \
    2>"$dir/$name.log" &
  pids+=($!)
  for _ in $(seq 100); do
    grep -q 'msg=listening' "$dir/$name.log" 2>/dev/null && break
    sleep 0.05
  done
  # delay_ms makes every activity long enough for the deadline and cancel
  # checks to catch it running.
  if ! "$bin/smaug-plugin-check" "unix:$dir/$name.sock" --type "$type" \
      --resource-id "$id" --bank "file://$dir/bank-$name" \
      --param delay_ms=300; then
    echo "smaug-plugin-$name: checker failed; its log:" >&2
    cat "$dir/$name.log" >&2
    status=1
  fi
done
exit $status
