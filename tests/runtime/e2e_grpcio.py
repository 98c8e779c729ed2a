#!/usr/bin/python3
"""e2e_grpcio.py - smaugd seen by Python grpcio, a generic gRPC client.

Strings (class Strings): a real smaugd, driven with hand-built bytes:
  * CreatePlan whose plan name is b"a\\0b" (protobuf-c alone would store
    "a") or b"\\xc0\\xaf" (an overlong "/") answers INVALID_ARGUMENT naming
    plan.name, and stores no plan;
  * a fake plugin, written here on grpcio, answers SyncActivity with
    invalid UTF-8 in a metadata value: the protect fails that resource with
    a reason naming the plugin and its address, the checkpoint stores no
    metadata for it, and it still decodes in Python.

Reflection docs (class Reflection): a raw grpc.reflection.v1 call fetches
smaug/v1/orchestrator.proto from smaugd, and its source_code_info holds
the proto comments of a service, a message and a field.

Plugin mTLS (class PluginMtls, needs --certs-sh): smaugd started with
--plugin-tls-ca/-cert/-key registers a fake plugin that serves mutual TLS
with a certificate from that CA, and the plugin sees smaugd's client
certificate (CN=smaug-client); a plugin whose certificate comes from
another CA, and a plugin that only trusts another CA's clients, are not
registered, and nothing reaches the second one's handlers.

usage: e2e_grpcio.py --smaugd PATH --proto-dir DIR --grpc-proto-dir DIR
                     [--certs-sh tls_certs.sh]
                     [unittest arguments, e.g. a class name]
The Python classes are generated with protoc into a temporary directory.
Every process started here is stopped on exit.
"""
import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from concurrent import futures

import grpc

ARGS = None
TMP = None
pb = {}  # module name -> generated module


def generate(proto_dir, grpc_proto_dir, out):
    protos = ["smaug/v1/types.proto", "smaug/v1/plugin.proto",
              "smaug/v1/orchestrator.proto",
              "grpc/reflection/v1/reflection.proto"]
    os.makedirs(out)
    subprocess.run(["protoc", "-I", proto_dir, "-I", grpc_proto_dir,
                    "-I", "/usr/include", "--python_out", out] + protos,
                   check=True)
    sys.path.insert(0, out)
    from smaug.v1 import orchestrator_pb2, plugin_pb2, types_pb2
    # "grpc" is grpcio's package: load this one by path. It imports nothing.
    path = os.path.join(out, "grpc/reflection/v1/reflection_pb2.py")
    spec = importlib.util.spec_from_file_location("reflection_pb2", path)
    reflection_pb2 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reflection_pb2)
    pb.update(o=orchestrator_pb2, p=plugin_pb2, t=types_pb2,
              r=reflection_pb2)


def raw_unary(channel, method):
    """A unary call that sends and returns bytes as they are."""
    return channel.unary_unary(method)


def typed_unary(channel, method, resp_cls):
    return channel.unary_unary(method,
                               request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=resp_cls.FromString)


class Smaugd:
    def __init__(self, path, tmp, *extra):
        self.sock = os.path.join(tmp, "smaugd.sock")
        self.log = open(os.path.join(tmp, "smaugd.log"), "w+")
        self.proc = subprocess.Popen(
            [path, "--listen", "unix:" + self.sock, "--data-dir",
             os.path.join(tmp, "data"), "--log-level", "debug"] + list(extra),
            stderr=self.log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            self.log.seek(0)
            if "msg=listening" in self.log.read():
                break
            if self.proc.poll() is not None:
                raise RuntimeError("smaugd exited: " + self.logs())
            time.sleep(0.05)
        else:
            raise RuntimeError("smaugd did not listen: " + self.logs())
        self.channel = grpc.insecure_channel("unix:" + self.sock)

    def logs(self):
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        self.channel.close()
        self.proc.kill()
        self.proc.wait()
        self.log.close()


class FakePlugin(grpc.GenericRpcHandler):
    """A plugin whose SyncActivity result carries invalid UTF-8."""
    NAME = "evil-py"
    TYPE = "evil.thing"
    BAD = b"\xc0\xaf"

    def __init__(self, creds=None):
        """`creds`: grpc server credentials; None: plaintext."""
        self.calls = []
        self.peers = []  # the client certificate's CN of each info call
        self.lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers((self,))
        self.port = (self.server.add_secure_port("127.0.0.1:0", creds)
                     if creds else self.server.add_insecure_port("127.0.0.1:0"))
        self.address = "127.0.0.1:%d" % self.port
        self.server.start()

    def stop(self):
        self.server.stop(None)

    def service(self, details):
        name = details.method.rsplit("/", 1)[-1]
        with self.lock:
            self.calls.append(name)
        if details.method == "/grpc.health.v1.Health/Check":
            return grpc.unary_unary_rpc_method_handler(
                lambda req, ctx: b"\x08\x01")  # status: SERVING
        if name == "GetPluginInfo":
            return grpc.unary_unary_rpc_method_handler(self.info)
        if name == "SyncActivity":
            return grpc.unary_stream_rpc_method_handler(self.sync)
        if name == "CancelOperation":
            return grpc.unary_unary_rpc_method_handler(lambda req, ctx: b"")
        return None

    def info(self, req, ctx):
        p, t = pb["p"], pb["t"]
        cn = ctx.auth_context().get("x509_common_name", [b""])[0]
        with self.lock:
            self.peers.append(cn.decode())
        ops = [p.OperationSupport(kind=k, parallel=False, sync=True)
               for k in (t.OPERATION_KIND_PROTECT, t.OPERATION_KIND_RESTORE,
                         t.OPERATION_KIND_DELETE)]
        return p.GetPluginInfoResponse(
            name=self.NAME, version="1", protocol_major=1,
            types=[p.ResourceTypeInfo(type=self.TYPE, operations=ops)]
        ).SerializeToString()

    def sync(self, req, ctx):
        p = pb["p"]
        msg = p.SyncActivityResponse(result=p.SyncResult(
            metadata={"size": "12", "label": "@@"}, message="done"))
        wire = msg.SerializeToString()
        assert wire.count(b"@@") == 1
        yield wire.replace(b"@@", self.BAD)


def plan_bytes(name_marker):
    """A serialized CreatePlanRequest whose name is `name_marker` (ASCII),
    to be replaced by raw bytes of the same length."""
    o, t = pb["o"], pb["t"]
    req = o.CreatePlanRequest(plan=o.Plan(
        name=name_marker, resources=[t.Resource(type="evil.thing", id="r1")]))
    return req.SerializeToString()


class WithSmaugd(unittest.TestCase):
    """Each test gets its own smaugd."""
    def setUp(self):
        self.smaugd = Smaugd(ARGS.smaugd, tempfile.mkdtemp(dir=TMP))
        self.addCleanup(self.smaugd.stop)


class Strings(WithSmaugd):

    def list_plans(self):
        o = pb["o"]
        return typed_unary(self.smaugd.channel,
                           "/smaug.v1.Orchestrator/ListPlans",
                           o.ListPlansResponse)(o.ListPlansRequest(),
                                                timeout=10).plans

    def create_raw(self, wire):
        call = raw_unary(self.smaugd.channel,
                         "/smaug.v1.Orchestrator/CreatePlan")
        with self.assertRaises(grpc.RpcError) as cm:
            call(wire, timeout=10)
        return cm.exception

    def test_nul_in_plan_name_is_invalid_argument(self):
        wire = plan_bytes("a?b").replace(b"a?b", b"a\x00b")
        err = self.create_raw(wire)
        self.assertEqual(err.code(), grpc.StatusCode.INVALID_ARGUMENT,
                         err.details())
        self.assertEqual(err.details(), "plan.name: embedded NUL at byte 1")
        self.assertEqual(len(self.list_plans()), 0, "a plan was stored")

    def test_overlong_in_plan_name_is_invalid_argument(self):
        wire = plan_bytes("??").replace(b"??", b"\xc0\xaf")
        err = self.create_raw(wire)
        self.assertEqual(err.code(), grpc.StatusCode.INVALID_ARGUMENT,
                         err.details())
        self.assertEqual(err.details(), "plan.name: invalid UTF-8 at byte 0")
        self.assertEqual(len(self.list_plans()), 0, "a plan was stored")

    def test_bad_id_in_a_repeated_field_names_it(self):
        o, t = pb["o"], pb["t"]
        req = o.CreatePlanRequest(plan=o.Plan(name="p", resources=[
            t.Resource(type="evil.thing", id="ok"),
            t.Resource(type="evil.thing", id="x#")]))
        wire = req.SerializeToString().replace(b"x#", b"x\xed")
        err = self.create_raw(wire)
        self.assertEqual(err.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(err.details(),
                         "plan.resources[1].id: invalid UTF-8 at byte 1")

    def test_plugin_sending_invalid_utf8_fails_the_resource(self):
        o, t = pb["o"], pb["t"]
        plugin = FakePlugin()
        self.addCleanup(plugin.stop)
        ch = self.smaugd.channel
        typed_unary(ch, "/smaug.v1.Orchestrator/RegisterPlugin",
                    o.RegisterPluginResponse)(
            o.RegisterPluginRequest(address=plugin.address), timeout=10)
        plan = typed_unary(ch, "/smaug.v1.Orchestrator/CreatePlan",
                           o.CreatePlanResponse)(o.CreatePlanRequest(
                               plan=o.Plan(name="p", resources=[t.Resource(
                                   type=FakePlugin.TYPE, id="r1")])),
                               timeout=10).plan
        ref = typed_unary(ch, "/smaug.v1.Orchestrator/Protect",
                          o.ProtectResponse)(
            o.ProtectRequest(plan_id=plan.id), timeout=10)
        get = typed_unary(ch, "/smaug.v1.Orchestrator/GetCheckpoint",
                          o.GetCheckpointResponse)
        deadline = time.monotonic() + 30
        while True:
            ckp = get(o.GetCheckpointRequest(id=ref.checkpoint_id),
                      timeout=10).checkpoint
            if ckp.status != o.CHECKPOINT_STATUS_PROTECTING:
                break
            self.assertLess(time.monotonic(), deadline,
                            "the protect did not end: " + str(ckp))
            time.sleep(0.05)
        self.assertIn("SyncActivity", plugin.calls)
        self.assertEqual(ckp.status, o.CHECKPOINT_STATUS_ERROR, str(ckp))
        self.assertEqual(len(ckp.results), 1, str(ckp))
        res = ckp.results[0]
        self.assertEqual(res.status, t.TASK_STATUS_FAILED, str(res))
        self.assertIn("plugin %s (%s)" % (FakePlugin.NAME, plugin.address),
                      res.reason)
        self.assertIn("the peer sent a bad string", res.reason)
        self.assertTrue(
            re.search(r"result\.metadata\[\d\]\.value: invalid UTF-8 at "
                      r"byte 0", res.reason), res.reason)
        self.assertEqual(dict(res.metadata), {}, "metadata was stored")
        # The whole checkpoint, as stored, is valid UTF-8 all through (it
        # decoded above); its listing decodes too.
        typed_unary(ch, "/smaug.v1.Orchestrator/ListCheckpoints",
                    o.ListCheckpointsResponse)(
            o.ListCheckpointsRequest(plan_id=plan.id), timeout=10)


class Reflection(WithSmaugd):
    FILE = "smaug/v1/orchestrator.proto"

    def fetch(self, **request):
        """One ServerReflectionInfo exchange; returns the FileDescriptorProto
        of FILE among the files of the answer."""
        from google.protobuf import descriptor_pb2
        r = pb["r"]
        call = self.smaugd.channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=r.ServerReflectionResponse.FromString)
        answers = list(call(iter([r.ServerReflectionRequest(**request)]),
                            timeout=10))
        self.assertEqual(len(answers), 1)
        self.assertTrue(answers[0].HasField("file_descriptor_response"),
                        str(answers[0]))
        files = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in
                 answers[0].file_descriptor_response.file_descriptor_proto]
        by_name = {f.name: f for f in files}
        self.assertIn(self.FILE, by_name)
        return by_name[self.FILE]

    def comments(self, fd):
        """Leading comments by path, as a dict of tuple -> text."""
        return {tuple(loc.path): loc.leading_comments.strip()
                for loc in fd.source_code_info.location
                if loc.leading_comments}

    def check(self, fd):
        c = self.comments(fd)
        self.assertTrue(c, "no source_code_info comments in " + fd.name)
        svc = [s.name for s in fd.service].index("Orchestrator")
        self.assertEqual(c.get((6, svc)), "The user-facing API of smaugd.")
        plan = [m.name for m in fd.message_type].index("Plan")
        self.assertEqual(
            c.get((4, plan)),
            "A protection plan: what to protect and with which parameters.")
        name = [f.name for f in fd.message_type[plan].field].index("name")
        self.assertEqual(c.get((4, plan, 2, name)),
                         "Display name, 1 to 255 bytes of UTF-8. Required.")

    def test_file_by_filename_has_the_comments(self):
        self.check(self.fetch(file_by_filename=self.FILE))

    def test_file_containing_symbol_has_the_comments(self):
        self.check(self.fetch(file_containing_symbol="smaug.v1.Orchestrator"))


class PluginMtls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = os.path.join(TMP, "certs")
        os.mkdir(cls.certs, 0o700)
        subprocess.run(["sh", ARGS.certs_sh, cls.certs], check=True)

    def c(self, name):
        return os.path.join(self.certs, name)

    def read(self, name):
        with open(self.c(name), "rb") as f:
            return f.read()

    def setUp(self):
        self.smaugd = Smaugd(
            ARGS.smaugd, tempfile.mkdtemp(dir=TMP),
            "--plugin-tls-ca", self.c("ca.pem"),
            "--plugin-tls-cert", self.c("client.pem"),
            "--plugin-tls-key", self.c("client.key"))
        self.addCleanup(self.smaugd.stop)

    def plugin(self, cert, client_ca):
        creds = grpc.ssl_server_credentials(
            [(self.read(cert + ".key"), self.read(cert + ".pem"))],
            root_certificates=self.read(client_ca),
            require_client_auth=True)
        plugin = FakePlugin(creds)
        self.addCleanup(plugin.stop)
        return plugin

    def register(self, plugin):
        o = pb["o"]
        call = typed_unary(self.smaugd.channel,
                           "/smaug.v1.Orchestrator/RegisterPlugin",
                           o.RegisterPluginResponse)
        return call(o.RegisterPluginRequest(address=plugin.address),
                    timeout=30)

    def test_a_plugin_of_the_ca_is_registered_and_sees_smaugd(self):
        plugin = self.plugin("server", "ca.pem")
        self.register(plugin)
        self.assertIn("smaug-client", plugin.peers)

    def test_a_plugin_certificate_of_another_ca_is_refused(self):
        plugin = self.plugin("other-server", "ca.pem")
        with self.assertRaises(grpc.RpcError) as cm:
            self.register(plugin)
        self.assertNotEqual(cm.exception.code(), grpc.StatusCode.OK)
        self.assertEqual(plugin.peers, [])

    def test_a_plugin_that_trusts_another_ca_refuses_smaugd(self):
        plugin = self.plugin("server", "other-ca.pem")
        with self.assertRaises(grpc.RpcError):
            self.register(plugin)
        self.assertEqual(plugin.calls, [], "a call reached the plugin")


def main():
    global ARGS, TMP
    ap = argparse.ArgumentParser()
    ap.add_argument("--smaugd", required=True)
    ap.add_argument("--proto-dir", required=True)
    ap.add_argument("--grpc-proto-dir", required=True)
    ap.add_argument("--certs-sh")
    ARGS, rest = ap.parse_known_args()
    TMP = tempfile.mkdtemp(prefix="smaug-e2e-grpcio.")
    try:
        generate(ARGS.proto_dir, ARGS.grpc_proto_dir,
                 os.path.join(TMP, "gen"))
        prog = unittest.main(argv=[sys.argv[0]] + rest, exit=False,
                             verbosity=2)
        ok = prog.result.wasSuccessful() and prog.result.testsRun > 0
        if prog.result.testsRun == 0:
            print("no test ran")
        return 0 if ok else 1
    finally:
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
