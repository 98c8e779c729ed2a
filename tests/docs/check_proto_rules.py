#!/usr/bin/python3
"""check_proto_rules.py - the proto comments state the rules the code applies.

    check_proto_rules.py ROOT

Reads the rules from the sources (VALID_ID_PATTERN in
server/common/valid.h, OPS_PROGRESS_MS in server/ops/ops_int.h,
API_RESULTS_* in server/api/api_results.h) and
checks that the comment above each field or enum value that they govern,
in ROOT/proto/smaug/v1/*.proto, states them:

- the resource id pattern on Resource.type and .id, on
  ListDependentsResponse.dependents and on SyncResult.restored_id;
- the restore parameter precedence (plan type, plan type#id, request
  type, request type#id; later wins) on RestoreRequest.parameters,
  ActivityRequest.parameters and ParameterSet;
- the progress coalescing (at most N stored per second per task, the
  newest value wins) on EVENT_KIND_PROGRESS;
- the result page bounds (API_RESULTS_* in server/api/api_results.h):
  how many results GetCheckpoint and GetRestore carry, and the default
  and maximum page_size of ListResourceResults.

Prints each problem; exits 1 if there is one.
"""
import os
import re
import sys


def read(root, rel):
    with open(os.path.join(root, rel), encoding="utf-8") as f:
        return f.read()


def comment_above(text, block, decl):
    """The comment lines right above `decl` (a regex) inside `block` (the
    regex of the message or enum that holds it; "" for the top level),
    joined with spaces."""
    if block:
        m = re.search(block + r"\s*\{", text)
        if m is None:
            return None
        text = text[m.end():]
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if re.match(r"\s*" + decl, line):
            out = []
            j = i - 1
            while j >= 0 and lines[j].strip().startswith("//"):
                out.insert(0, lines[j].strip()[2:].strip())
                j -= 1
            return " ".join(out)
    return None


def main():
    root = sys.argv[1]
    pattern = re.search(r'#define VALID_ID_PATTERN\s+"([^"]+)"',
                        read(root, "server/common/valid.h")).group(1)
    interval = int(re.search(r"#define OPS_PROGRESS_MS\s+(\d+)",
                             read(root, "server/ops/ops_int.h")).group(1))
    per_second = 1000 // interval
    res_h = read(root, "server/api/api_results.h")
    lim = {k: "{:,}".format(int(re.search(
        r"#define API_RESULTS_%s\s+(\d+)" % k, res_h).group(1))).replace(
            ",", ",?")
        for k in ("INLINE", "PAGE_DEFAULT", "PAGE_MAX")}
    protos = {name: read(root, "proto/smaug/v1/%s.proto" % name)
              for name in ("types", "plugin", "orchestrator")}
    order = [r"plan's entry for the type", r"plan's \"type#id\" entry",
             r"(request's|this request's) entry for the type",
             r"(request's|this request's) \"type#id\" entry"]
    precedence = r".*?".join(order)
    checks = [
        ("types", r"message Resource", r"string type = 1;", [re.escape(pattern)]),
        ("types", r"message Resource", r"string id = 2;", [re.escape(pattern)]),
        ("plugin", r"message ListDependentsResponse",
         r"repeated Resource dependents = 1;", [re.escape(pattern)]),
        ("plugin", r"message SyncResult", r"string restored_id = 2;",
         [re.escape(pattern)]),
        ("plugin", r"message ActivityRequest",
         r"map<string, string> parameters = 3;", [precedence, "winning|wins"]),
        ("orchestrator", r"message RestoreRequest",
         r"ParameterSet parameters = 2;", [precedence, "later wins"]),
        ("orchestrator", "", r"message ParameterSet", [precedence,
                                                       "later entry wins"]),
        ("orchestrator", r"message Checkpoint",
         r"repeated ResourceResult results = 7;",
         [r"at most the first %s\b" % lim["INLINE"]]),
        ("orchestrator", r"message Restore",
         r"repeated ResourceResult results = 6;",
         [r"at most the first %s\b" % lim["INLINE"]]),
        ("orchestrator", r"message ListResourceResultsRequest",
         r"uint32 page_size = 4;",
         [r"server default \(%s\)" % lim["PAGE_DEFAULT"],
          r"maximum\s+\(%s\)" % lim["PAGE_MAX"]]),
        ("orchestrator", r"enum EventKind", r"EVENT_KIND_PROGRESS = 3;",
         [r"at most %d .*per second per task" % per_second,
          r"newest value wins"]),
    ]
    problems = 0
    for name, block, decl, wants in checks:
        c = comment_above(protos[name], block, decl)
        if c is None:
            print("%s.proto: %s %s: not found" % (name, block, decl))
            problems += 1
            continue
        for want in wants:
            if re.search(want, c) is None:
                print("%s.proto: the comment of %s %s does not say /%s/: %s"
                      % (name, block, decl, want, c))
                problems += 1
    if problems:
        return 1
    print("proto rules: %d comments checked, 0 problems" % len(checks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
