"""Command line and process life of smaug-plugin-network.

    smaug-plugin-network [--listen ADDR] [--cloud DIR] [--bank-root DIR]
                         [--tls-cert FILE --tls-key FILE
                          [--tls-client-ca FILE]]
                         [--log-level LEVEL] [--delay-ms N]
                         [--exit-with-parent]

ADDR is "host:port" (port 0 picks a free port; the log line
`msg=listening addr=HOST:PORT` tells which) or "unix:/path". Defaults come
from SMAUG_PLUGIN_LISTEN (else 127.0.0.1:7430), SMAUG_CLOUD, SMAUG_BANK_ROOT
(the only directory bank URIs may name; without it every bank URI is
refused), SMAUG_PLUGIN_TLS_CERT, SMAUG_PLUGIN_TLS_KEY and
SMAUG_PLUGIN_TLS_CLIENT_CA (TLS; with the CA, only callers whose client
certificate chains to it get in; the key must be 0600 or stricter),
SMAUG_LOG_LEVEL and SMAUG_SAMPLE_DELAY_MS (the delay_ms of requests without
that parameter, as in the C sample plugins). SIGTERM and SIGINT stop it gracefully: health turns
NOT_SERVING, no new calls are taken, in-flight calls get a grace period,
then running work is cancelled.
"""

import argparse
import ctypes
import os
import signal
import stat
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
    p.add_argument("--tls-cert", default=os.environ.get(
                       "SMAUG_PLUGIN_TLS_CERT"),
                   help="serve TLS with this certificate chain (PEM; env "
                   "SMAUG_PLUGIN_TLS_CERT); needs --tls-key")
    p.add_argument("--tls-key", default=os.environ.get("SMAUG_PLUGIN_TLS_KEY"),
                   help="the certificate's private key (PEM, mode 0600 or "
                   "stricter; env SMAUG_PLUGIN_TLS_KEY)")
    p.add_argument("--tls-client-ca", default=os.environ.get(
                       "SMAUG_PLUGIN_TLS_CLIENT_CA"),
                   help="accept only callers with a client certificate that "
                   "chains to this CA (PEM; env SMAUG_PLUGIN_TLS_CLIENT_CA)")
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


def secret_file_problem(path, what):
    """None when `path` is a regular file only its owner may read or write,
    else why it is refused (the words of runtime/rt_secret.c)."""
    try:
        st = os.stat(path)
    except OSError as e:
        return "%s %s: %s" % (what, path, e.strerror)
    if not stat.S_ISREG(st.st_mode):
        return "%s %s is not a regular file" % (what, path)
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077 == 0:
        return None
    return ("%s %s is group- or world-%s (mode %04o): a secret must be "
            "readable by its owner only (chmod 600 %s)" % (
                what, path, "readable" if mode & 0o044 else "writable", mode,
                path))


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def server_credentials(args):
    """The listener's credentials: None for plaintext, else TLS with the
    certificate and key, requiring a client certificate that chains to
    --tls-client-ca when it is given. Raises ValueError saying what is
    wrong with the flags or files."""
    if not args.tls_cert and not args.tls_key:
        if args.tls_client_ca:
            raise ValueError("--tls-client-ca needs --tls-cert and --tls-key")
        return None
    if not args.tls_cert or not args.tls_key:
        raise ValueError("--tls-cert and --tls-key go together")
    why = secret_file_problem(args.tls_key, "key file")
    if why:
        raise ValueError(why)
    try:
        cert = _read(args.tls_cert)
        key = _read(args.tls_key)
        ca = _read(args.tls_client_ca) if args.tls_client_ca else None
    except OSError as e:
        raise ValueError("%s: %s" % (e.filename, e.strerror))
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=bool(ca))


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
    try:
        creds = server_credentials(args)
    except ValueError as e:
        slog.log("error", "bad TLS settings", error=str(e))
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
    # A unix socket is made 0660 or stricter (the umask while it is
    # bound, then a chmod in case the umask let more through).
    sock = args.listen[len("unix:"):] if args.listen.startswith("unix:") \
        else None
    old_mask = os.umask(0o117) if sock else None
    try:
        port = server.add_secure_port(args.listen, creds) if creds else \
            server.add_insecure_port(args.listen)
    except RuntimeError as e:  # grpcio raises when it cannot bind
        port, why = 0, str(e)
    else:
        why = "address in use or invalid"
    finally:
        if old_mask is not None:
            os.umask(old_mask)
    if port == 0:
        slog.log("error", "cannot listen", addr=args.listen, error=why)
        return 1
    if sock:
        try:
            mode = stat.S_IMODE(os.stat(sock).st_mode)
            if mode & 0o117:
                os.chmod(sock, mode & 0o660)
        except OSError as e:
            slog.log("error", "cannot restrict the socket's mode", addr=sock,
                     error=e.strerror)
            return 1
    server.start()
    for name in ("",) + services:
        hs.set(name, health.SERVING)
    slog.log("info", "listening", addr=_bound_addr(args.listen, port),
             version=VERSION, cloud=args.cloud or "",
             bank_root=args.bank_root or "",
             tls="mtls" if args.tls_client_ca else
             "tls" if creds else "none")
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
