#!/usr/bin/python3
"""check_docs.py - the commands and parameters the docs show exist.

    check_docs.py ROOT BIN_DIR

Reads the shell code of ROOT/README.md and ROOT/docs/*.md (fenced blocks
and inline code) and checks:

- every `smaug ...` command line names a real subcommand: `smaug WORDS
  --help` exits 0 for its first one or two words (after the global
  options), as `smaug plugin register --help` does and `smaug plugin add
  --help` (exit 2) does not;
- every `-p TYPE:KEY=VALUE` of `smaug restore` names a KEY that the
  plugin serving TYPE declares in its restore schema; the sample plugins
  in BIN_DIR are started on unix sockets and asked with GetPluginInfo.

Prints each problem with its file and line; exits 1 if there is one.
"""
import glob
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

import grpc

GLOBAL_WITH_VALUE = {"-o", "--server", "--timeout"}
PLUGINS = ["smaug-plugin-volume", "smaug-plugin-image", "smaug-plugin-server",
           "smaug-plugin-project"]


def code_lines(path):
    """(line number, text) of the shell code in a Markdown file."""
    fenced = False
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            if fenced:
                yield n, line.strip()
            else:
                for span in re.findall(r"`([^`]+)`", line):
                    yield n, span


def smaug_commands(text):
    """Argument lists of the `smaug` commands in one line of shell."""
    text = re.sub(r"^\$ ", "", text)
    for seg in re.split(r"\$\(|\||;|&&|\)", text):
        try:
            words = shlex.split(seg, comments=True)
        except ValueError:
            words = seg.split()
        while words and "=" in words[0] and not words[0].startswith("-"):
            words = words[1:]  # VAR=value prefixes
        if words and words[0] == "smaug":
            yield words[1:]


def command_words(args):
    """The subcommand words after the global options; none for a usage
    synopsis ("smaug [--server ADDR] ...") or prose ("smaug (CLI)")."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in GLOBAL_WITH_VALUE else 1
    words = []
    for w in args[i:i + 2]:
        if not re.match(r"^[a-z][a-z-]*$", w):
            break
        words.append(w)
    return words


def command_exists(smaug, words):
    for k in (len(words), 1):
        r = subprocess.run([smaug] + words[:k] + ["--help"],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if r.returncode == 0:
            return True
    return False


def restore_keys(bin_dir, tmp):
    """{type: set of restore parameter names} of the sample plugins."""
    subprocess.check_call(["protoc", "-I", os.path.join(ROOT, "proto"),
                           "--python_out", tmp, "smaug/v1/types.proto",
                           "smaug/v1/plugin.proto"])
    sys.path.insert(0, tmp)
    from smaug.v1 import plugin_pb2
    keys = {}
    for name in PLUGINS:
        sock = os.path.join(tmp, name + ".sock")
        p = subprocess.Popen([os.path.join(bin_dir, name), "--listen",
                              "unix:" + sock], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            for _ in range(500):
                if os.path.exists(sock):
                    break
                time.sleep(0.01)
            with grpc.insecure_channel("unix:" + sock) as ch:
                info = ch.unary_unary(
                    "/smaug.v1.ProtectionPlugin/GetPluginInfo",
                    request_serializer=plugin_pb2.GetPluginInfoRequest.
                    SerializeToString,
                    response_deserializer=plugin_pb2.GetPluginInfoResponse.
                    FromString)(plugin_pb2.GetPluginInfoRequest(
                        protocol_major=1), timeout=10, wait_for_ready=True)
            for t in info.types:
                schema = json.loads(t.restore_schema or "{}")
                keys[t.type] = set(schema.get("properties", {}))
        finally:
            p.terminate()
            p.wait()
    return keys


def main():
    bin_dir = sys.argv[2]
    smaug = os.path.join(bin_dir, "smaug")
    docs = [os.path.join(ROOT, "README.md")] + sorted(
        glob.glob(os.path.join(ROOT, "docs", "*.md")))
    problems, params, commands = [], [], 0
    for path in docs:
        where = os.path.relpath(path, ROOT)
        for n, text in code_lines(path):
            for args in smaug_commands(text):
                words = command_words(args)
                if not words:
                    continue
                commands += 1
                if not command_exists(smaug, words):
                    problems.append("%s:%d: no such command: smaug %s" %
                                    (where, n, " ".join(words)))
                if words[0] != "restore":
                    continue
                for i, a in enumerate(args[:-1]):
                    m = re.match(r"([a-z][\w.]*)(#[^:]*)?:(\w+)=",
                                 args[i + 1]) if a == "-p" else None
                    if m:
                        params.append((where, n, m.group(1), m.group(3)))
    with tempfile.TemporaryDirectory() as tmp:
        keys = restore_keys(bin_dir, tmp)
    for where, n, rtype, key in params:
        if rtype not in keys:
            problems.append("%s:%d: no sample plugin serves %s" %
                            (where, n, rtype))
        elif key not in keys[rtype]:
            problems.append("%s:%d: %s has no restore parameter %s (it has "
                            "%s)" % (where, n, rtype, key,
                                     ", ".join(sorted(keys[rtype]))))
    for p in problems:
        print(p)
    print("%d smaug commands and %d restore parameters checked, %d problems"
          % (commands, len(params), len(problems)))
    return 1 if problems or commands == 0 or not params else 0


if __name__ == "__main__":
    ROOT = sys.argv[1]
    sys.exit(main())
