"""Structured logging in the format every smaug program writes.

One record per line on stderr, written with a single write(2) so that lines
from several threads never interleave:

    2026-01-02T03:04:05.678Z level=info comp=plugin msg=listening addr=...

Values with spaces, quotes or `=` are quoted. Records of Python's `logging`
module (grpcio logs there) are routed here with component "grpc".
"""

import logging
import os
import threading
import time

LEVELS = {"debug": 0, "info": 1, "warn": 2, "error": 3}
_NAMES = {v: k for k, v in LEVELS.items()}
_min_level = LEVELS["info"]
_lock = threading.Lock()


def set_level(name):
    """Sets the lowest level written. Raises ValueError on an unknown name."""
    global _min_level
    if name not in LEVELS:
        raise ValueError("unknown log level %r (debug, info, warn, error)" %
                         name)
    _min_level = LEVELS[name]


def enabled(level):
    return LEVELS[level] >= _min_level


def _escape(s, quoted):
    out = []
    for c in s:
        if c in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[c])
        elif ord(c) < 0x20 or c == "\x7f":
            out.append("\\x%02x" % ord(c))
        elif quoted and c in '"\\':
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


def _quote(value):
    """Quotes a value the way rt_log does: when a reader splitting on
    spaces and '=' would misread it."""
    s = str(value)
    if s == "" or any(c in ' "=' or ord(c) < 0x20 for c in s):
        return '"' + _escape(s, True) + '"'
    return _escape(s, False)


def log(level, msg, comp="plugin", **kv):
    """Writes one record at `level` ("debug".."error") if it is enabled."""
    if not enabled(level):
        return
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    parts = ["%s.%03dZ" % (stamp, int(now * 1000) % 1000),
             "level=" + level, "comp=" + comp, "msg=" + _quote(msg)]
    parts += ["%s=%s" % (k, _quote(v)) for k, v in kv.items()]
    line = (" ".join(parts) + "\n").encode("utf-8", "replace")
    with _lock:
        try:
            os.write(2, line)
        except OSError:
            pass  # stderr gone: nothing better to do with a log record


class _Handler(logging.Handler):
    def emit(self, record):
        if record.levelno >= logging.ERROR:
            level = "error"
        elif record.levelno >= logging.WARNING:
            level = "warn"
        elif record.levelno >= logging.INFO:
            level = "info"
        else:
            level = "debug"
        log(level, record.getMessage(), comp="grpc")


def route_python_logging():
    """Sends records of the `logging` module (grpcio's) through log()."""
    root = logging.getLogger()
    root.handlers[:] = [_Handler()]
    root.setLevel(logging.DEBUG if enabled("debug") else logging.INFO)
