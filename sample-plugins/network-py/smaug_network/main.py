"""Command line and process life of smaug-plugin-network.

    smaug-plugin-network [--listen ADDR] [--cloud DIR] [--bank-root DIR]
                         [--log-level LEVEL] [--delay-ms N]
                         [--exit-with-parent]

ADDR is "host:port" (port 0 picks a free port; the log line
`msg=listening addr=HOST:PORT` tells which) or "unix:/path". Defaults come
from SMAUG_PLUGIN_LISTEN (else 127.0.0.1:7430), SMAUG_CLOUD, SMAUG_BANK_ROOT
(the only directory bank URIs may name; without it every bank URI is
refused), SMAUG_LOG_LEVEL and SMAUG_SAMPLE_DELAY_MS (the delay_ms of requests without
that parameter, as in the C sample plugins). SIGTERM and SIGINT stop it gracefully: health turns
NOT_SERVING, no new calls are taken, in-flight calls get a grace period,
then running work is cancelled.
"""

import argparse
import ctypes
import os
import signal
import sys
import threading
from concurrent import futures

import grpc

from . import VERSION, health, network, reflection, slog
from .gen import health_pb2, health_pb2_grpc, plugin_pb2, plugin_pb2_grpc
from .jobs import Table
from .service import SERVER_THREADS, ProtectionPlugin

DEFAULT_LISTEN = "127.0.0.1:7430"
GRACE_S = 5.0
PR_SET_PDEATHSIG = 1


def _args(argv):
    p = argparse.ArgumentParser(
        prog="smaug-plugin-network",
        description="smaug protection plugin for smaug.network resources")
    p.add_argument("--listen", default=os.environ.get("SMAUG_PLUGIN_LISTEN")
                   or DEFAULT_LISTEN,
                   help="host:port or unix:/path (env SMAUG_PLUGIN_LISTEN)")
    p.add_argument("--cloud", default=os.environ.get("SMAUG_CLOUD"),
                   help="the sample cloud's root folder (env SMAUG_CLOUD)")
    p.add_argument("--log-level", default=os.environ.get("SMAUG_LOG_LEVEL")
                   or "info", choices=sorted(slog.LEVELS, key=slog.LEVELS.get),
                   help="debug, info, warn or error (env SMAUG_LOG_LEVEL)")
    p.add_argument("--delay-ms", default=os.environ.get(
                       "SMAUG_SAMPLE_DELAY_MS") or "0",
                   help="delay_ms of requests without that parameter "
                   "(env SMAUG_SAMPLE_DELAY_MS)")
    p.add_argument("--bank-root", default=os.environ.get("SMAUG_BANK_ROOT"),
                   help="the only directory bank URIs may name (env "
                   "SMAUG_BANK_ROOT; default none: every bank URI is "
                   "refused with PERMISSION_DENIED)")
    p.add_argument("--exit-with-parent", action="store_true",
                   help="stop when the parent process exits")
    p.add_argument("--version", action="version", version=VERSION)
    return p.parse_args(argv)


def _exit_with_parent(stop):
    """Asks the kernel for SIGTERM when the parent dies, and checks that the
    parent did not die before that request took effect."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl")
    except (OSError, AttributeError) as e:
        slog.log("warn", "cannot watch the parent process", error=e)
        return
    if os.getppid() != parent or parent == 1:
        stop.set()


def _bound_addr(listen, port):
    if listen.startswith("unix:"):
        return listen
    host = listen.rsplit(":", 1)[0]
    return "%s:%d" % (host, port)


def main(argv=None):
    args = _args(sys.argv[1:] if argv is None else argv)
    slog.set_level(args.log_level)
    slog.route_python_logging()
    if args.cloud and not os.path.isdir(args.cloud):
        slog.log("error", "cloud directory missing", cloud=args.cloud)
        return 2

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.exit_with_parent:
        _exit_with_parent(stop)

    jobs = Table()
    hs = health.Health()
    services = (plugin_pb2.DESCRIPTOR.services_by_name["ProtectionPlugin"]
                .full_name,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
                ) + reflection.SERVICE_NAMES
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=SERVER_THREADS,
                                   thread_name_prefix="rpc"),
        # gRPC Python sets SO_REUSEPORT by default, which lets a second
        # process bind a port already in use without an error.
        options=[("grpc.so_reuseport", 0)],
        # Beyond this, calls get RESOURCE_EXHAUSTED (retried by the
        # orchestrator) instead of queueing for a thread until their
        # deadline.
        maximum_concurrent_rpcs=SERVER_THREADS)
    network.DEFAULT_DELAY_MS = args.delay_ms
    network.BANK_ROOT = args.bank_root or None
    plugin_pb2_grpc.add_ProtectionPluginServicer_to_server(
        ProtectionPlugin(args.cloud, jobs), server)
    health_pb2_grpc.add_HealthServicer_to_server(hs, server)
    reflection.add_to_server(server, services)

    if args.listen.startswith("unix:"):
        try:
            os.unlink(args.listen[len("unix:"):])
        except FileNotFoundError:
            pass
        except OSError as e:
            slog.log("error", "cannot replace socket", addr=args.listen,
                     error=e.strerror)
            return 1
    try:
        port = server.add_insecure_port(args.listen)
    except RuntimeError as e:  # grpcio raises when it cannot bind
        port, why = 0, str(e)
    else:
        why = "address in use or invalid"
    if port == 0:
        slog.log("error", "cannot listen", addr=args.listen, error=why)
        return 1
    server.start()
    for name in ("",) + services:
        hs.set(name, health.SERVING)
    slog.log("info", "listening", addr=_bound_addr(args.listen, port),
             version=VERSION, cloud=args.cloud or "",
             bank_root=args.bank_root or "")
    if not args.bank_root:
        slog.log("warn", "no bank root: every bank URI is refused "
                 "(--bank-root DIR or SMAUG_BANK_ROOT)")

    while not stop.wait(1.0):
        pass
    slog.log("info", "stopping", grace_s=GRACE_S)
    hs.shutdown()
    done = server.stop(GRACE_S)
    # Calls still running after the grace are cancelled by stop(), and
    # their work with them (see jobs.Table.detach); work nobody waits for
    # any more is cancelled here.
    done.wait()
    jobs.cancel_all("server stopped")
    slog.log("info", "stopped")
    return 0
