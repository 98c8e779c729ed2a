"""hostile.py - what the hostile tests share: a real smaugd, stubs generated
with protoc, typed and raw unary calls, and a fake plugin on grpcio whose
every answer a test can make lie.

Every process started here is stopped by the test's cleanup, also when the
test fails. smaugd listens on a unix socket in a temporary folder; the fake
plugin on 127.0.0.1, port 0.
"""
import importlib.util
import os
import subprocess
import sys
import threading
import time
import unittest
from concurrent import futures

import grpc

pb = {}  # "o", "p", "t": orchestrator_pb2, plugin_pb2, types_pb2
ARGS = None  # set by the runner: smaugd, smaug (paths), tmp (folder)

ORCH = "/smaug.v1.Orchestrator/"


def generate(proto_dir, out):
    """Generates the Python classes of the smaug protos into `out`."""
    protos = ["smaug/v1/types.proto", "smaug/v1/plugin.proto",
              "smaug/v1/orchestrator.proto"]
    os.makedirs(out, exist_ok=True)
    subprocess.run(["protoc", "-I", proto_dir, "-I", "/usr/include",
                    "--python_out", out] + protos, check=True)
    sys.path.insert(0, out)
    from smaug.v1 import orchestrator_pb2, plugin_pb2, types_pb2
    pb.update(o=orchestrator_pb2, p=plugin_pb2, t=types_pb2)


class Smaugd:
    """smaugd on a unix socket, its data dir and log in `tmp`."""

    def __init__(self, tmp, data=None, extra=(), wait=True):
        self.tmp = tmp
        self.sock = os.path.join(tmp, "smaugd.sock")
        self.data = data or os.path.join(tmp, "data")
        self.logpath = os.path.join(tmp, "smaugd-%d.log" % time.monotonic_ns())
        self.log = open(self.logpath, "w+")
        self.proc = subprocess.Popen(
            [ARGS.smaugd, "--listen", "unix:" + self.sock, "--data-dir",
             self.data, "--log-level", "debug"] + list(extra),
            stderr=self.log, stdout=self.log)
        self.channel = None
        if wait:
            self.wait_listening()

    def wait_listening(self):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if "msg=listening" in self.logs():
                self.channel = grpc.insecure_channel(
                    "unix:" + self.sock,
                    options=[("grpc.max_receive_message_length", 64 << 20)])
                return
            if self.proc.poll() is not None:
                raise RuntimeError("smaugd exited: " + self.logs())
            time.sleep(0.05)
        raise RuntimeError("smaugd did not listen: " + self.logs())

    def logs(self):
        with open(self.logpath) as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        if self.channel:
            self.channel.close()
            self.channel = None
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def stop(self):
        """SIGTERM (so that a sanitizer build reports leaks), SIGKILL after
        10 s."""
        if self.channel:
            self.channel.close()
            self.channel = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        self.log.close()

    # ------------------------------------------------------------- calls
    def call(self, method, req, timeout=10):
        """A typed unary call: the response class is <method>Response."""
        resp = getattr(pb["o"], method + "Response", None) or \
            getattr(pb["p"], method + "Response")
        return self.channel.unary_unary(
            ORCH + method,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=resp.FromString)(req, timeout=timeout)

    def raw(self, method, wire, timeout=10):
        """A unary call with the request's bytes as given; returns bytes."""
        return self.channel.unary_unary(ORCH + method)(wire, timeout=timeout)

    def error(self, method, req, raw=False, timeout=10):
        """Calls and returns the grpc.RpcError it must raise."""
        try:
            if raw:
                self.raw(method, req, timeout)
            else:
                self.call(method, req, timeout)
        except grpc.RpcError as e:
            return e
        raise AssertionError("%s succeeded" % method)

    def watch(self, op, after=0, timeout=30):
        o = pb["o"]
        call = self.channel.unary_stream(
            ORCH + "WatchOperation",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=o.WatchOperationResponse.FromString)
        return call(o.WatchOperationRequest(operation_id=op,
                                            after_sequence=after),
                    timeout=timeout)

    def register(self, address):
        o = pb["o"]
        return self.call("RegisterPlugin",
                         o.RegisterPluginRequest(address=address))

    def plan(self, resources, name="p", params=None):
        o, t = pb["o"], pb["t"]
        plan = o.Plan(name=name, resources=[t.Resource(type=ty, id=i)
                                            for ty, i in resources])
        for ty, kv in (params or {}).items():
            plan.parameters.entries[ty].values.update(kv)
        return self.call("CreatePlan", o.CreatePlanRequest(plan=plan)).plan

    def protect(self, plan_id):
        o = pb["o"]
        return self.call("Protect", o.ProtectRequest(plan_id=plan_id))

    def checkpoint(self, cid):
        o = pb["o"]
        return self.call("GetCheckpoint",
                         o.GetCheckpointRequest(id=cid)).checkpoint

    def wait_checkpoint(self, cid, busy, timeout=30):
        """Polls until the checkpoint's status is no longer `busy`."""
        deadline = time.monotonic() + timeout
        while True:
            ckp = self.checkpoint(cid)
            if ckp.status != busy:
                return ckp
            if time.monotonic() > deadline:
                raise AssertionError("still busy: " + str(ckp))
            time.sleep(0.05)

    def restore_(self, rid):
        o = pb["o"]
        return self.call("GetRestore", o.GetRestoreRequest(id=rid)).restore

    def wait_restore(self, rid, timeout=30):
        o = pb["o"]
        deadline = time.monotonic() + timeout
        while True:
            r = self.restore_(rid)
            if r.status != o.RESTORE_STATUS_IN_PROGRESS:
                return r
            if time.monotonic() > deadline:
                raise AssertionError("still busy: " + str(r))
            time.sleep(0.05)


class FakePlugin(grpc.GenericRpcHandler):
    """A ProtectionPlugin on grpcio that a test makes lie.

    Each attribute below is a hook a test may replace:
      info()                         -> GetPluginInfoResponse
      dependents(resource)           -> list of (type, id)
      parallel(req, ctx)             -> iterator of ParallelActivityResponse
      sync(req, ctx)                 -> iterator of SyncActivityResponse
    Every request is recorded in `calls` as (method, message) in order;
    `cancels` holds the CancelOperation requests; `event(name)` is a
    threading.Event set when `name` is first called.
    """
    NAME = "hostile-py"
    TYPE = "hostile.thing"

    def __init__(self, name=None, types=None):
        self.name = name or self.NAME
        self.types = types or [self.TYPE]
        self.calls = []
        self.cancels = []
        self.lock = threading.Lock()
        self.events = {}
        self.cancelled = threading.Event()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=32),
                                  options=[("grpc.max_send_message_length",
                                            64 << 20)])
        self.server.add_generic_rpc_handlers((self,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.address = "127.0.0.1:%d" % self.port
        self.server.start()

    def stop(self):
        self.server.stop(None)

    def event(self, name):
        with self.lock:
            return self.events.setdefault(name, threading.Event())

    def record(self, name, msg):
        with self.lock:
            self.calls.append((name, msg))
        self.event(name).set()

    def count(self, name):
        with self.lock:
            return sum(1 for n, _ in self.calls if n == name)

    # ------------------------------------------------------------ service
    def service(self, details):
        p = pb["p"]
        name = details.method.rsplit("/", 1)[-1]
        if details.method == "/grpc.health.v1.Health/Check":
            return grpc.unary_unary_rpc_method_handler(
                lambda req, ctx: b"\x08\x01")  # status: SERVING
        if not details.method.startswith("/smaug.v1.ProtectionPlugin/"):
            return None

        def unary(fn, req_cls):
            def h(raw, ctx):
                req = req_cls.FromString(raw)
                self.record(name, req)
                return fn(req, ctx).SerializeToString()
            return grpc.unary_unary_rpc_method_handler(h)

        def stream(fn):
            def h(raw, ctx):
                req = p.ActivityRequest.FromString(raw)
                self.record(name, req)
                for m in fn(req, ctx):
                    yield m if isinstance(m, bytes) else m.SerializeToString()
            return grpc.unary_stream_rpc_method_handler(h)

        if name == "GetPluginInfo":
            return unary(lambda req, ctx: self.info(), p.GetPluginInfoRequest)
        if name == "ListDependents":
            return unary(self._dependents, p.ListDependentsRequest)
        if name == "CancelOperation":
            return unary(self._cancel, p.CancelOperationRequest)
        if name == "ParallelActivity":
            return stream(self.parallel)
        if name == "SyncActivity":
            return stream(self.sync)
        return None

    def _cancel(self, req, ctx):
        with self.lock:
            self.cancels.append(req)
        self.cancelled.set()
        return pb["p"].CancelOperationResponse(cancelled=1)

    def _dependents(self, req, ctx):
        t = pb["t"]
        return pb["p"].ListDependentsResponse(dependents=[
            t.Resource(type=ty, id=i)
            for ty, i in self.dependents(req.resource)])

    # -------------------------------------------------------------- hooks
    def info(self):
        p, t = pb["p"], pb["t"]
        ops = [p.OperationSupport(kind=k, parallel=True, sync=True)
               for k in (t.OPERATION_KIND_PROTECT, t.OPERATION_KIND_RESTORE,
                         t.OPERATION_KIND_DELETE)]
        return p.GetPluginInfoResponse(
            name=self.name, version="1", protocol_major=1,
            types=[p.ResourceTypeInfo(type=ty, operations=ops,
                                      lists_dependents=True)
                   for ty in self.types])

    def dependents(self, resource):
        return []

    def parallel(self, req, ctx):
        p = pb["p"]
        yield p.ParallelActivityResponse(result=p.ParallelResult(
            message="ok"))

    def sync(self, req, ctx):
        p = pb["p"]
        rid = ""
        if req.operation.kind == pb["t"].OPERATION_KIND_RESTORE:
            rid = req.resource.id + "-restored"
        yield p.SyncActivityResponse(result=p.SyncResult(
            metadata={"k": "v"}, restored_id=rid, message="ok"))


class WithSmaugd(unittest.TestCase):
    """Each test gets its own smaugd in its own folder."""
    smaugd_args = ()

    def setUp(self):
        import tempfile
        self.dir = tempfile.mkdtemp(dir=ARGS.tmp)
        self.smaugd = Smaugd(self.dir, extra=self.smaugd_args)
        self.addCleanup(self.assertNoSanitizerReport)
        self.addCleanup(self.smaugd.stop)

    def assertNoSanitizerReport(self):
        """Under the sanitizer build, smaugd's log holds no report."""
        logs = self.smaugd.logs()
        for mark in ("ERROR: AddressSanitizer", "runtime error:",
                     "ERROR: LeakSanitizer"):
            self.assertNotIn(mark, logs, logs[-4000:])

    def fake(self, **kw):
        plugin = FakePlugin(**kw)
        self.addCleanup(plugin.stop)
        return plugin

    def assertAlive(self):
        self.assertTrue(self.smaugd.alive(), "smaugd died:\n" +
                        self.smaugd.logs()[-3000:])
        # It still answers.
        self.smaugd.call("ListPlans", pb["o"].ListPlansRequest())

    def assertStatus(self, err, code, *needles):
        self.assertEqual(err.code(), code, err.details())
        for n in needles:
            self.assertIn(n, err.details())


def main(argv):
    """Runs the unittest classes of __main__ named in argv (all if none)."""
    import argparse
    import shutil
    import tempfile
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--smaugd", required=True)
    ap.add_argument("--smaug", required=True)
    ap.add_argument("--proto-dir", required=True)
    args, rest = ap.parse_known_args(argv[1:])
    args.tmp = tempfile.mkdtemp(prefix="smaug-hostile.")
    ARGS = args
    try:
        generate(args.proto_dir, os.path.join(args.tmp, "gen"))
        prog = unittest.main(module="__main__", argv=[argv[0]] + rest,
                             exit=False, verbosity=2)
        if prog.result.testsRun == 0:
            print("no test ran")
            return 1
        return 0 if prog.result.wasSuccessful() else 1
    finally:
        shutil.rmtree(args.tmp, ignore_errors=True)
