#!/usr/bin/python3
"""check_layers.py - the server's modules include only what sits below them.

    check_layers.py ROOT

Maps every header under ROOT/server/ to its folder, then reads the
#include "..." lines of every file under the folders named in BELOW and
fails, naming the file and the line, when one includes a header of a
folder that is not allowed there. server/plugins/ talks to the plugins for
the operations and the API, so it must never include the API (or the
operations core above it): that would make a circle.
"""
import os
import re
import sys

# folder -> the server folders whose headers it may include (its own too)
BELOW = {
    "common": {"common"},
    "graph": {"graph", "common"},
    "dag": {"dag", "graph", "common"},
    "exec": {"exec", "dag", "graph", "common", "plugins"},
    "plugins": {"plugins", "exec", "dag", "graph", "common", "registry"},
}
# headers of server/plugins/ that server/exec/ may include: the limiter only
EXEC_FROM_PLUGINS = {"limiter.h"}


def main():
    root = sys.argv[1]
    server = os.path.join(root, "server")
    owner = {}
    for folder in os.listdir(server):
        path = os.path.join(server, folder)
        if os.path.isdir(path):
            for name in os.listdir(path):
                if name.endswith(".h"):
                    owner[name] = folder
    bad = []
    checked = 0
    for folder, allowed in sorted(BELOW.items()):
        path = os.path.join(server, folder)
        for name in sorted(os.listdir(path)):
            if not name.endswith((".c", ".h")):
                continue
            checked += 1
            with open(os.path.join(path, name), encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                    if not m or m.group(1) not in owner:
                        continue
                    inc = m.group(1)
                    other = owner[inc]
                    if other not in allowed or (
                            folder == "exec" and other == "plugins"
                            and inc not in EXEC_FROM_PLUGINS):
                        bad.append("server/%s/%s:%d includes %s (server/%s/)"
                                   % (folder, name, n, inc, other))
    if checked == 0 or "api_valid.h" not in owner:
        print("check_layers: found nothing to check under %s" % server)
        return 1
    for b in bad:
        print(b)
    print("check_layers: %d files, %d bad includes" % (checked, len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
