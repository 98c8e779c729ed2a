#!/usr/bin/python3
"""check_layers.py - the server's modules include only what sits below them.

    check_layers.py ROOT [FLAGS]

Maps every header under ROOT/server/ to its folder, then reads the
#include "..." lines of every file under the folders named in BELOW and
fails, naming the file and the line, when one includes a header of a
folder that is not allowed there. server/plugins/ talks to the plugins for
the operations and the API, so it must never include the API (or the
operations core above it): that would make a circle. Its one exception is
the seam it implements for the core (ops_plugins.h), as server/exec/ may
include the limiter only.

With FLAGS (a file the build writes: the C compiler, then one include
directory per line, of the smaug_ops target), it also runs the compiler
with -M over every .c and .h file under server/ops/ and fails when any
header it pulls, directly or through another header, is a gRPC one (a
path under a grpc/ folder): the operations core is plain C and reaches the
plugins only through ops_plugins.h. A probe that includes rt.h with the
same flags must be caught, so the check cannot pass by seeing nothing.
"""
import os
import re
import subprocess
import sys
import tempfile

# folder -> the server folders whose headers it may include (its own too)
BELOW = {
    "common": {"common"},
    "graph": {"graph", "common"},
    "dag": {"dag", "graph", "common"},
    "exec": {"exec", "dag", "graph", "common", "plugins"},
    "plugins": {"plugins", "exec", "dag", "graph", "common", "registry",
                "ops"},
    "ops": {"ops", "store", "exec", "dag", "graph", "common", "plugins"},
}
# (folder, other folder) -> the only headers of `other` that `folder` may
# include: exec, the limiter; the core, the plain-C parts of plugins/; and
# plugins/, the seam of the core that it implements.
ONLY = {
    ("exec", "plugins"): {"limiter.h"},
    ("ops", "plugins"): {"limiter.h", "disc_proto.h"},
    ("plugins", "ops"): {"ops_plugins.h"},
}
GRPC_DIR = re.compile(r"(^|/)grpc(pp)?/")


def header_deps(cc, incs, path):
    """The files the compiler reads for `path` (-M), or raises."""
    args = [cc, "-M", "-std=gnu11"] + ["-I" + i for i in incs]
    if path.endswith(".h"):
        args += ["-x", "c"]
    r = subprocess.run(args + [path], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s -M %s failed:\n%s" % (cc, path, r.stderr))
    return r.stdout.replace("\\\n", " ").split()[1:]


def grpc_free(root, flags):
    """Lines naming each server/ops/ file that pulls a gRPC header."""
    with open(flags, encoding="utf-8") as f:
        lines = [l.strip() for l in f if l.strip()]
    cc, incs = lines[0], lines[1:]
    bad = []
    ops = os.path.join(root, "server", "ops")
    names = sorted(n for n in os.listdir(ops) if n.endswith((".c", ".h")))
    with tempfile.TemporaryDirectory() as tmp:
        probe = os.path.join(tmp, "probe.c")
        with open(probe, "w", encoding="utf-8") as f:
            f.write('#include "ops.h"\n#include "rt.h"\n')
        deps = header_deps(cc, incs + [os.path.join(root, "runtime")], probe)
        if not any(GRPC_DIR.search(d) for d in deps):
            bad.append("check_layers: a probe including rt.h pulls no gRPC "
                       "header with these flags: the check sees nothing")
    for name in names:
        try:
            deps = header_deps(cc, incs, os.path.join(ops, name))
        except RuntimeError as e:  # a header off the core's include path
            bad.append(str(e).strip())
            continue
        g = [d for d in deps if GRPC_DIR.search(d)]
        if g:
            bad.append("server/ops/%s pulls gRPC headers: %s"
                       % (name, ", ".join(g[:3])))
    print("check_layers: %d files of server/ops/ compiled with -M, %d bad"
          % (len(names), len(bad)))
    return bad


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
                    only = ONLY.get((folder, other))
                    if other not in allowed or (only is not None
                                                and inc not in only):
                        bad.append("server/%s/%s:%d includes %s (server/%s/)"
                                   % (folder, name, n, inc, other))
    if checked == 0 or "api_valid.h" not in owner:
        print("check_layers: found nothing to check under %s" % server)
        return 1
    print("check_layers: %d files, %d bad includes" % (checked, len(bad)))
    if len(sys.argv) > 2:
        bad += grpc_free(root, sys.argv[2])
    for b in bad:
        print(b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
