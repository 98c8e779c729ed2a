#!/usr/bin/env bash
# A plugin restart within the retry budget does not fail the operation:
# smaugd, the sample plugins and the CLI on a generated cloud.
#   - protect the sample cloud; once the event trace shows a volume task
#     running, the project plugin is killed (SIGKILL);
#   - the project's SyncActivity, which runs last, then fails UNAVAILABLE
#     and is retried; the plugin is started again only once the trace shows
#     its 6th retry, about 2 s after the kill (the old budget of 5 attempts
#     failed the task before that);
#   - the protect ends `available`, the project's S succeeded on a later
#     attempt, and `checkpoint verify` passes. Prints how long the retry
#     took after the restart.
# Usage: retry_e2e.sh DIR   (binaries from $SMAUG_BIN, default build/bin)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${SMAUG_BIN:-$here/build/bin}
fail() { echo "retry_e2e: FAILED: $*" >&2; exit 1; }
source "$here/scripts/stack.sh"
stack_init "${1:-$(mktemp -d /tmp/smaug-retry-e2e.XXXXXX)}"
dir=$stack_dir
run=$dir/run
stack_cloud --volume-mib 32
stack_up
project_pid=${stack_pids[0]} # stack_up starts the project plugin first
grep -q "unix:$run/project.sock" "/proc/$project_pid/cmdline" 2>/dev/null ||
  tr '\0' ' ' <"/proc/$project_pid/cmdline" | grep -q project.sock ||
  fail "pid $project_pid is not the project plugin"

cat >"$dir/plan.json" <<'JSON'
{ "name": "retry-e2e", "resources": [{"type": "smaug.project", "id": "proj-1"}] }
JSON
plan=$(smaug plan create -f "$dir/plan.json")
# One client starts the protect and follows its events from the first one
# (a separate `watch` would start late).
smaug -o json protect "$plan" --wait >"$dir/events.jsonl" 2>"$dir/protect.err" &
watch_pid=$!

# Waits (bounded) until the trace has a line matching all the patterns;
# fails if the operation finishes first.
wait_event() { # what pattern...
  local what=$1 p line finished
  shift
  for _ in $(seq 1200); do # 60 s
    # Read "finished" first: a scan after it sees every event.
    finished=0
    grep -q EVENT_KIND_OPERATION_FINISHED "$dir/events.jsonl" && finished=1
    while IFS= read -r line; do
      for p in "$@"; do [[ $line == *"$p"* ]] || continue 2; done
      return 0
    done <"$dir/events.jsonl"
    [ "$finished" = 0 ] ||
      fail "the operation finished before $what: $(tail -3 "$dir/events.jsonl")"
    sleep 0.05
  done
  fail "no $what in the trace: $(tail -3 "$dir/events.jsonl")"
}

wait_event "the protect's start" '"checkpoint_id"'
ckp=$(grep -o 'ckp-[0-9a-f]*' "$dir/events.jsonl" | head -1)
wait_event "a running volume task" '"kind":"EVENT_KIND_STARTED"' '"type":"smaug.volume"'
kill -KILL "$project_pid"
killed=$(date +%s%N)
wait_event "the project's 6th retry" '"kind":"EVENT_KIND_RETRIED"' \
  '"type":"smaug.project"' '"attempt":6,'
down_ms=$(( ($(date +%s%N) - killed) / 1000000 ))
restarted=$(date +%s%N)
stack_start plugin-project-2 "$bin/smaug-plugin-project" \
  --listen "unix:$run/project.sock" --cloud "$stack_cloud_dir" \
  --bank-root "$stack_bank" --exit-with-parent
wait_event "the end of the operation" '"kind":"EVENT_KIND_OPERATION_FINISHED"'
wait "$watch_pid" || fail "protect --wait: $(cat "$dir/protect.err")"
done_ms=$(( ($(date +%s%N) - restarted) / 1000000 ))

smaug -o json checkpoint show "$ckp" >"$dir/checkpoint.json"
/usr/bin/python3 - "$dir/checkpoint.json" "$dir/events.jsonl" <<'PY'
import json, sys
cp = json.load(open(sys.argv[1]))["checkpoint"]
assert cp["status"] == "CHECKPOINT_STATUS_AVAILABLE", (cp["status"], cp.get("reason"))
for r in cp["results"]:
    assert r["status"] == "TASK_STATUS_DONE", r
events = [json.loads(l) for l in open(sys.argv[2]) if l.startswith('{"sequence"')]
proj = [e for e in events if (e.get("resource") or {}).get("type") == "smaug.project"
        and e["activity"] == "ACTIVITY_SYNC"]
retried = [e for e in proj if e["kind"] == "EVENT_KIND_RETRIED"]
done = [e for e in proj if e["kind"] == "EVENT_KIND_DONE"]
assert len(retried) >= 6, [e["kind"] for e in proj]
assert all("UNAVAILABLE" in e["message"] for e in retried), retried
assert len(done) == 1 and done[0]["attempt"] > 6, done
print("project S: %d retries, done at attempt %d" % (len(retried), done[0]["attempt"]))
PY
smaug checkpoint verify "$ckp" >"$dir/verify.out" ||
  fail "verify after the restart: $(cat "$dir/verify.out")"
echo "project plugin down ${down_ms} ms; the operation ended available ${done_ms} ms after its restart"
echo "retry e2e: 1 passed, 0 failed"
