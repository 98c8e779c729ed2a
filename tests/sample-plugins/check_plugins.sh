#!/bin/bash
# Runs smaug-plugin-check against each sample plugin (the four in C and the
# Python one) on a generated cloud, and checks through a generic gRPC
# client that each refuses GetPluginInfo without a protocol_major.
# Usage: check_plugins.sh BIN_DIR
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
    --cloud "$dir/cloud" --bank-root "$dir/banks" "${extra[@]}" \
    --exit-with-parent \
    2>"$dir/$name.log" &
  pids+=($!)
  for _ in $(seq 100); do
    grep -q 'msg=listening' "$dir/$name.log" 2>/dev/null && break
    sleep 0.05
  done
  # delay_ms makes every activity long enough for the deadline and cancel
  # checks to catch it running.
  if ! "$bin/smaug-plugin-check" "unix:$dir/$name.sock" --type "$type" \
      --resource-id "$id" --bank "file://$dir/banks/bank-$name" \
      --outside-bank "file://$dir/outside-$name" \
      --param delay_ms=300; then
    echo "smaug-plugin-$name: checker failed; its log:" >&2
    cat "$dir/$name.log" >&2
    status=1
  fi
  # GetPluginInfo through a generic gRPC client (raw bytes, no stubs): an
  # empty request has protocol_major 0, which must be refused.
  if ! /usr/bin/python3 - "unix:$dir/$name.sock" <<'PY'; then
import sys
import grpc
with grpc.insecure_channel(sys.argv[1]) as ch:
    info = ch.unary_unary("/smaug.v1.ProtectionPlugin/GetPluginInfo")
    try:
        info(b"", timeout=10)
        sys.exit("protocol_major 0 was accepted")
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.FAILED_PRECONDITION or \
                "protocol_major is missing" not in e.details():
            sys.exit("protocol_major 0: %s %s" % (e.code(), e.details()))
    info(b"\x08\x01", timeout=10)  # protocol_major = 1
print("PASS protocol-major-0: refused with FAILED_PRECONDITION")
PY
    echo "smaug-plugin-$name: protocol_major 0 not refused" >&2
    status=1
  fi
done
exit $status
