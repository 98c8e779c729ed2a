#!/usr/bin/python3
"""Helpers of kill_matrix.sh, which kills smaugd at every moment of an
operation. Reads the CLI's JSON Lines (`smaug -o json watch` / `--wait`).

  kill_matrix.py count FILE
      The number of kill points of a finished run: its "moments" are the
      events STARTED and DONE of every task and OPERATION_FINISHED.
  kill_matrix.py follow K PID CMD...
      Runs CMD (the CLI starting an operation with `-o json ... --wait`,
      which streams its events) and sends SIGKILL to PID as soon as the
      K-th moment has been seen (events are committed before they are
      streamed, so the store holds it). K may also be TYPE:ACTIVITY, the
      first STARTED event of that type and activity. Prints the start
      response, then the kill time in ms since the epoch and the moment.
      Exit 1 if the operation ended first.
  kill_matrix.py outcome FILE KILL_MS
      Reads a full event stream of the operation after the restart and
      prints "<final_status> resumed|finished-before-kill": resumed when
      the final event was committed after the kill (by the restarted
      smaugd). Exit 1 if the stream has no final event.
"""

import json
import os
import signal
import subprocess
import sys
import time

MOMENTS = ("EVENT_KIND_STARTED", "EVENT_KIND_DONE",
           "EVENT_KIND_OPERATION_FINISHED")


def events(lines):
    """The OperationEvent objects of a JSON Lines stream (the start
    response and the final restore document are skipped)."""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if isinstance(e, dict) and "sequence" in e and "kind" in e:
            yield e


def describe(e):
    r = e.get("resource") or {}
    what = "%s#%s %s" % (r.get("type"), r.get("id"),
                         e.get("activity", "").replace("ACTIVITY_", ""))
    if e["kind"] == "EVENT_KIND_OPERATION_FINISHED":
        what = "operation"
    return "seq=%d %s %s" % (e["sequence"], e["kind"].replace("EVENT_KIND_",
                                                               ""), what)


def count(path):
    with open(path) as f:
        print(sum(1 for e in events(f) if e["kind"] in MOMENTS))
    return 0


def is_target(e, k, seen):
    if ":" not in k:
        return seen == int(k)
    t, act = k.split(":")
    r = e.get("resource") or {}
    return (e["kind"] == "EVENT_KIND_STARTED" and r.get("type") == t and
            e.get("activity") == "ACTIVITY_" + act)


def follow(k, pid, cmd):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, bufsize=1)
    seen = 0
    try:
        first = proc.stdout.readline()
        print(first.strip())
        sys.stdout.flush()
        for e in events(proc.stdout):
            if e["kind"] not in MOMENTS:
                continue
            seen += 1
            if is_target(e, k, seen):
                os.kill(pid, signal.SIGKILL)
                print("%d %s" % (int(time.time() * 1000), describe(e)))
                return 0
    finally:
        proc.kill()
        proc.wait()
    print("0 the operation ended after %d moments, before moment %s" %
          (seen, k))
    return 1


def outcome(path, kill_ms):
    with open(path) as f:
        final = [e for e in events(f)
                 if e["kind"] == "EVENT_KIND_OPERATION_FINISHED"]
    if not final:
        print("no-final-event")
        return 1
    e = final[-1]
    how = "resumed" if e["time_ms"] > kill_ms else "finished-before-kill"
    print("%s %s" % (e.get("final_status") or "?", how))
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "count":
        return count(argv[2])
    if len(argv) > 4 and argv[1] == "follow":
        return follow(argv[2], int(argv[3]), argv[4:])
    if len(argv) == 4 and argv[1] == "outcome":
        return outcome(argv[2], int(argv[3]))
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
