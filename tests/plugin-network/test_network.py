#!/usr/bin/python3
"""End-to-end tests of smaug-plugin-network, through real gRPC clients.

Starts the plugin on 127.0.0.1:0 with a temporary cloud and bank, and drives
it with the Python stubs the build generated: protect P+S, restore, delete,
idempotent replays, cancellation, deadlines and dropped calls (the work goes
on for the replay), INVALID_ARGUMENT cases, health, and reflection (a bidi stream, and `buf curl --list-services`). Ordering
properties are read from the plugin's debug log (a recorded trace), never
from sleeps.

    test_network.py --plugin bin/smaug-plugin-network \
        --gen share/network-py/gen --buf tools/node_modules/.bin/buf

Prints "N passed, N failed" last and exits non-zero on any failure.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import unittest
import uuid

ap = argparse.ArgumentParser()
ap.add_argument("--plugin", required=True)
ap.add_argument("--gen", required=True)
ap.add_argument("--buf", required=True)
ARGS, _rest = ap.parse_known_args()

sys.path.insert(0, ARGS.gen)
import grpc  # noqa: E402

grpc.__path__.append(os.path.join(ARGS.gen, "grpc"))
from grpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from grpc.reflection.v1 import reflection_pb2 as r1  # noqa: E402
from grpc.reflection.v1 import reflection_pb2_grpc as r1g  # noqa: E402
from grpc.reflection.v1alpha import reflection_pb2 as r1a  # noqa: E402
from grpc.reflection.v1alpha import reflection_pb2_grpc as r1ag  # noqa: E402
from smaug.v1 import plugin_pb2 as pb  # noqa: E402
from smaug.v1 import plugin_pb2_grpc as pbg  # noqa: E402
from smaug.v1 import types_pb2 as tp  # noqa: E402

RPC_TIMEOUT = 20
WAIT = 20  # upper bound on waiting for a log record or a process
NET = {"id": "net-1", "name": "front", "cidr": "10.0.0.0/24"}
NET_BYTES = (json.dumps(NET) + "\n").encode()
LISTEN_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=info "
                       r"comp=plugin msg=listening addr=(\S+)")


class Plugin:
    """A plugin process whose stderr is collected line by line."""

    def __init__(self, listen, cloud, extra=(), wrap=()):
        cmd = list(wrap) + [ARGS.plugin, "--listen", listen, "--cloud", cloud,
                            "--bank-root", BANK, "--log-level",
                            "debug"] + list(extra)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.lines = []
        self.eof = False
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        m = LISTEN_RE.match(self.wait_line(r"msg=listening"))
        self.addr = m.group(1)

    def _read(self):
        for raw in self.proc.stderr:
            with self.cond:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_line(self, pattern, timeout=WAIT):
        """Returns the first log line matching `pattern`, waiting for it."""
        rx = re.compile(pattern)
        with self.cond:
            ok = self.cond.wait_for(
                lambda: self.eof or any(rx.search(x) for x in self.lines),
                timeout)
            found = [x for x in self.lines if rx.search(x)]
        if not ok or not found:
            raise AssertionError("no log line matches %r; log:\n%s" %
                                 (pattern, "\n".join(self.lines)))
        return found[0]

    def wait_eof(self, timeout=WAIT):
        with self.cond:
            return self.cond.wait_for(lambda: self.eof, timeout)

    def count(self, pattern):
        rx = re.compile(pattern)
        with self.cond:
            return sum(1 for x in self.lines if rx.search(x))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


def setUpModule():
    global TMP, CLOUD, BANK, PLUGIN, CHANNEL, STUB
    TMP = tempfile.mkdtemp(prefix="smaug-netpy-")
    CLOUD = os.path.join(TMP, "cloud")
    BANK = os.path.join(TMP, "bank")
    nets = os.path.join(CLOUD, "projects", "p1", "networks")
    os.makedirs(nets)
    os.makedirs(BANK)
    with open(os.path.join(nets, "net-1.json"), "wb") as f:
        f.write(NET_BYTES)
    PLUGIN = Plugin("127.0.0.1:0", CLOUD)
    CHANNEL = grpc.insecure_channel(PLUGIN.addr)
    STUB = pbg.ProtectionPluginStub(CHANNEL)


def tearDownModule():
    CHANNEL.close()
    PLUGIN.stop()
    shutil.rmtree(TMP, ignore_errors=True)


def new_op():
    return uuid.uuid4().hex


def request(op, kind, activity, rid="net-1", section=None, **kw):
    """A well-formed ActivityRequest; keyword arguments override fields."""
    name = "parallel" if activity == tp.ACTIVITY_PARALLEL else "sync"
    r = pb.ActivityRequest(
        operation=tp.OperationRef(id=op, kind=kind, checkpoint_id="cp-" + op),
        resource=tp.Resource(type="smaug.network", id=rid,
                             extra={"project": "p1"}),
        bank_uri="file://" + BANK,
        bank_section=section or "checkpoints/%s/smaug.network/%s" % (op, rid),
        attempt=1, activity=activity,
        idempotency_key="%s/smaug.network/%s/%s" % (op, rid, name))
    for k, v in kw.items():
        if isinstance(v, dict):
            getattr(r, k).update(v)
        else:
            setattr(r, k, v)
    return r


def run(method, req, timeout=RPC_TIMEOUT):
    """Calls a streaming activity; returns (progress list, result)."""
    progress, results = [], []
    for msg in method(req, timeout=timeout):
        if msg.HasField("result"):
            results.append(msg.result)
        else:
            progress.append(msg.progress)
    assert len(results) == 1, "want exactly one result, got %d" % len(results)
    return progress, results[0]


def protect(op):
    """Protect P then S of net-1; returns (P result, S result, section)."""
    req = request(op, tp.OPERATION_KIND_PROTECT, tp.ACTIVITY_PARALLEL)
    _, pres = run(STUB.ParallelActivity, req)
    sreq = request(op, tp.OPERATION_KIND_PROTECT, tp.ACTIVITY_SYNC,
                   state=pres.state)
    _, sres = run(STUB.SyncActivity, sreq)
    return pres, sres, os.path.join(BANK, req.bank_section)


class InfoTest(unittest.TestCase):
    def test_info_declares_type_and_protocol(self):
        info = STUB.GetPluginInfo(pb.GetPluginInfoRequest(protocol_major=1),
                                  timeout=RPC_TIMEOUT)
        self.assertEqual(info.protocol_major, 1)
        self.assertEqual([t.type for t in info.types], ["smaug.network"])
        ops = {o.kind: (o.parallel, o.sync) for o in info.types[0].operations}
        self.assertEqual(ops, {tp.OPERATION_KIND_PROTECT: (True, True),
                               tp.OPERATION_KIND_RESTORE: (False, True),
                               tp.OPERATION_KIND_DELETE: (False, True)})

    def test_options_schema_is_json_schema(self):
        info = STUB.GetPluginInfo(pb.GetPluginInfoRequest(protocol_major=1),
                                  timeout=RPC_TIMEOUT)
        schema = json.loads(info.types[0].options_schema)
        self.assertEqual(schema["type"], "object")
        self.assertIn("delay_ms", schema["properties"])

    def test_other_protocol_major_is_refused(self):
        with self.assertRaises(grpc.RpcError) as cm:
            STUB.GetPluginInfo(pb.GetPluginInfoRequest(protocol_major=2),
                               timeout=RPC_TIMEOUT)
        self.assertEqual(cm.exception.code(),
                         grpc.StatusCode.FAILED_PRECONDITION)

    def test_missing_protocol_major_is_refused(self):
        with self.assertRaises(grpc.RpcError) as cm:
            STUB.GetPluginInfo(pb.GetPluginInfoRequest(), timeout=RPC_TIMEOUT)
        self.assertEqual(cm.exception.code(),
                         grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("protocol_major is missing", cm.exception.details())

    def test_list_dependents_is_empty(self):
        resp = STUB.ListDependents(pb.ListDependentsRequest(
            resource=tp.Resource(type="smaug.network", id="net-1")),
            timeout=RPC_TIMEOUT)
        self.assertEqual(len(resp.dependents), 0)


class ProtectTest(unittest.TestCase):
    def test_parallel_saves_descriptor_in_bank(self):
        req = request(new_op(), tp.OPERATION_KIND_PROTECT, tp.ACTIVITY_PARALLEL)
        progress, res = run(STUB.ParallelActivity, req)
        with open(os.path.join(BANK, req.bank_section, "network.json"),
                  "rb") as f:
            self.assertEqual(f.read(), NET_BYTES)
        self.assertGreaterEqual(len(progress), 1)
        self.assertEqual(json.loads(res.state)["sha256"],
                         hashlib.sha256(NET_BYTES).hexdigest())

    def test_sync_returns_digest_metadata(self):
        _, sres, _ = protect(new_op())
        # object_sha256.<name>: the plain file smaug checkpoint verify and
        # smaugd's restore check look for (docs/bank.md).
        self.assertEqual(dict(sres.metadata), {
            "sha256": hashlib.sha256(NET_BYTES).hexdigest(),
            "bytes": str(len(NET_BYTES)),
            "object_sha256.network.json":
                hashlib.sha256(NET_BYTES).hexdigest()})

    def test_sync_rejects_a_damaged_bank_copy(self):
        op = new_op()
        req = request(op, tp.OPERATION_KIND_PROTECT, tp.ACTIVITY_PARALLEL)
        _, pres = run(STUB.ParallelActivity, req)
        with open(os.path.join(BANK, req.bank_section, "network.json"),
                  "ab") as f:
            f.write(b" ")
        sreq = request(op, tp.OPERATION_KIND_PROTECT, tp.ACTIVITY_SYNC,
                       state=pres.state)
        with self.assertRaises(grpc.RpcError) as cm:
            run(STUB.SyncActivity, sreq)
        self.assertEqual(cm.exception.code(),
                         grpc.StatusCode.FAILED_PRECONDITION)

    def test_missing_network_is_not_found(self):
        req = request(new_op(), tp.OPERATION_KIND_PROTECT, tp.ACTIVITY_PARALLEL,
                      rid="net-404")
        with self.assertRaises(grpc.RpcError) as cm:
            run(STUB.ParallelActivity, req)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertIn("net-404.json", cm.exception.details())

    def test_progress_precedes_result(self):
        req = request(new_op(), tp.OPERATION_KIND_PROTECT, tp.ACTIVITY_PARALLEL,
                      parameters={"delay_ms": "300"})
        kinds = [m.WhichOneof("event") for m in
                 STUB.ParallelActivity(req, timeout=RPC_TIMEOUT)]
        self.assertEqual(kinds[-1], "result")
        self.assertGreaterEqual(kinds.count("progress"), 2)
        self.assertNotIn("result", kinds[:-1])


class IdempotencyTest(unittest.TestCase):
    def test_replay_returns_stored_result_without_rewriting(self):
        req = request(new_op(), tp.OPERATION_KIND_PROTECT, tp.ACTIVITY_PARALLEL)
        _, first = run(STUB.ParallelActivity, req)
        path = os.path.join(BANK, req.bank_section, "network.json")
        st1 = os.stat(path)
        _, again = run(STUB.ParallelActivity, req)
        st2 = os.stat(path)
        self.assertEqual(first, again)
        self.assertEqual((st1.st_ino, st1.st_mtime_ns),
                         (st2.st_ino, st2.st_mtime_ns))
        key = re.escape(req.idempotency_key)
        self.assertEqual(PLUGIN.count(r'msg="activity started" key=%s$' % key),
                         1)

    def test_concurrent_replay_joins_running_call(self):
        req = request(new_op(), tp.OPERATION_KIND_PROTECT, tp.ACTIVITY_PARALLEL,
                      parameters={"delay_ms": "3000"})
        first = STUB.ParallelActivity(req, timeout=RPC_TIMEOUT)
        next(first)  # the work is running
        _, joined = run(STUB.ParallelActivity, req)
        results = [m.result for m in first if m.HasField("result")]
        self.assertEqual(results, [joined])
        key = re.escape(req.idempotency_key)
        self.assertEqual(PLUGIN.count(r'msg="activity started" key=%s$' % key),
                         1)
        self.assertEqual(PLUGIN.count(r'msg="activity joined" key=%s$' % key),
                         1)


class RestoreDeleteTest(unittest.TestCase):
    def test_restore_recreates_under_new_id(self):
        op = new_op()
        _, sres, section = protect(op)
        rop = new_op()
        req = request(rop, tp.OPERATION_KIND_RESTORE, tp.ACTIVITY_SYNC,
                      section=os.path.relpath(section, BANK),
                      saved_metadata=dict(sres.metadata))
        _, res = run(STUB.SyncActivity, req)
        self.assertEqual(res.restored_id, "net-1-r" + rop[:8])
        nets = os.path.join(CLOUD, "projects", "p1", "networks")
        with open(os.path.join(nets, res.restored_id + ".json")) as f:
            doc = json.load(f)
        self.assertEqual(doc, dict(NET, id=res.restored_id))
        with open(os.path.join(nets, "net-1.json"), "rb") as f:
            self.assertEqual(f.read(), NET_BYTES)

    def test_restore_removes_what_a_killed_restore_left(self):
        _, sres, section = protect(new_op())
        rop = new_op()
        nets = os.path.join(CLOUD, "projects", "p1", "networks")
        gone = subprocess.Popen(["/bin/true"])
        gone.wait()  # reaped: its pid names no process
        dest = os.path.join(nets, "net-1-r%s.json" % rop[:8])
        dead = "%s.tmp-%d-140001" % (dest, gone.pid)
        other = os.path.join(nets, "net-9.json.tmp-%d-1" % gone.pid)
        live = os.path.join(nets, "net-8.json.tmp-%d-1" % os.getpid())
        for path in (dead, other, live):
            with open(path, "w") as f:
                f.write("partial")
        req = request(rop, tp.OPERATION_KIND_RESTORE, tp.ACTIVITY_SYNC,
                      section=os.path.relpath(section, BANK),
                      saved_metadata=dict(sres.metadata))
        _, res = run(STUB.SyncActivity, req)
        self.assertTrue(os.path.exists(dest))
        self.assertFalse(os.path.exists(dead))
        self.assertFalse(os.path.exists(other))
        self.assertTrue(os.path.exists(live), "a live process's file")
        os.unlink(live)
        PLUGIN.wait_line(r'msg="removed a temporary file of a killed '
                         r'restore" path=%s' % re.escape(dead))

    def test_restore_again_keeps_restored_file(self):
        _, sres, section = protect(new_op())
        rop = new_op()
        req = request(rop, tp.OPERATION_KIND_RESTORE, tp.ACTIVITY_SYNC,
                      section=os.path.relpath(section, BANK))
        _, res = run(STUB.SyncActivity, req)
        path = os.path.join(CLOUD, "projects", "p1", "networks",
                            res.restored_id + ".json")
        st1 = os.stat(path)
        req.idempotency_key += "-after-plugin-restart"  # a key it never saw
        _, again = run(STUB.SyncActivity, req)
        st2 = os.stat(path)
        self.assertEqual(again.restored_id, res.restored_id)
        self.assertEqual((st1.st_ino, st1.st_mtime_ns),
                         (st2.st_ino, st2.st_mtime_ns))

    def test_restore_refuses_copy_not_matching_checkpoint(self):
        _, _, section = protect(new_op())
        req = request(new_op(), tp.OPERATION_KIND_RESTORE, tp.ACTIVITY_SYNC,
                      section=os.path.relpath(section, BANK),
                      saved_metadata={"sha256": "00" * 32})
        with self.assertRaises(grpc.RpcError) as cm:
            run(STUB.SyncActivity, req)
        self.assertEqual(cm.exception.code(),
                         grpc.StatusCode.FAILED_PRECONDITION)

    def test_delete_removes_bank_copy(self):
        _, sres, section = protect(new_op())
        req = request(new_op(), tp.OPERATION_KIND_DELETE, tp.ACTIVITY_SYNC,
                      section=os.path.relpath(section, BANK),
                      saved_metadata=dict(sres.metadata))
        run(STUB.SyncActivity, req)
        self.assertFalse(os.path.exists(os.path.join(section, "network.json")))

    def test_delete_of_missing_copy_succeeds(self):
        req = request(new_op(), tp.OPERATION_KIND_DELETE, tp.ACTIVITY_SYNC)
        _, res = run(STUB.SyncActivity, req)
        self.assertEqual(res.message, "already deleted")

    def test_parallel_restore_is_unimplemented(self):
        req = request(new_op(), tp.OPERATION_KIND_RESTORE,
                      tp.ACTIVITY_PARALLEL)
        with self.assertRaises(grpc.RpcError) as cm:
            run(STUB.ParallelActivity, req)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)


class InvalidArgumentTest(unittest.TestCase):
    def check(self, field, **kw):
        req = request(new_op(), tp.OPERATION_KIND_PROTECT, tp.ACTIVITY_PARALLEL)
        for k, v in kw.items():
            if k == "resource_id":
                req.resource.id = v
            elif k == "resource_type":
                req.resource.type = v
            elif k == "project":
                req.resource.extra["project"] = v
            elif k == "op_id":
                req.operation.id = v
            else:
                setattr(req, k, v)
        with self.assertRaises(grpc.RpcError) as cm:
            run(STUB.ParallelActivity, req)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn(field, cm.exception.details())

    def test_missing_resource_id(self):
        self.check("resource.id", resource_id="")

    def test_wrong_resource_type(self):
        self.check("resource.type", resource_type="smaug.volume")

    def test_missing_bank_uri(self):
        self.check("bank_uri", bank_uri="")

    def test_unsupported_bank_scheme(self):
        self.check("bank_uri", bank_uri="s3://bucket/bank")

    def test_bank_section_with_dotdot(self):
        self.check("bank_section", bank_section="checkpoints/../../etc")

    def test_absolute_bank_section(self):
        self.check("bank_section", bank_section="/etc")

    def test_invalid_project(self):
        self.check("resource.extra[project]", project="../etc")

    def test_missing_project_is_looked_up(self):
        req = request(new_op(), tp.OPERATION_KIND_PROTECT, tp.ACTIVITY_PARALLEL)
        del req.resource.extra["project"]
        _, result = run(STUB.ParallelActivity, req)
        self.assertIn(b"sha256", result.state)

    def test_missing_project_and_unknown_network(self):
        req = request(new_op(), tp.OPERATION_KIND_PROTECT, tp.ACTIVITY_PARALLEL)
        del req.resource.extra["project"]
        req.resource.id = "no-such-net"
        with self.assertRaises(grpc.RpcError) as cm:
            run(STUB.ParallelActivity, req)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertIn("no-such-net", cm.exception.details())

    def test_missing_operation_id(self):
        self.check("operation.id", op_id="")

    def test_bad_delay_parameter(self):
        req = request(new_op(), tp.OPERATION_KIND_PROTECT, tp.ACTIVITY_PARALLEL,
                      parameters={"delay_ms": "soon"})
        with self.assertRaises(grpc.RpcError) as cm:
            run(STUB.ParallelActivity, req)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("parameters[delay_ms]", cm.exception.details())


class CancelTest(unittest.TestCase):
    def test_cancel_operation_ends_running_call(self):
        op = new_op()
        req = request(op, tp.OPERATION_KIND_PROTECT, tp.ACTIVITY_PARALLEL,
                      parameters={"delay_ms": "30000"})
        call = STUB.ParallelActivity(req, timeout=RPC_TIMEOUT)
        next(call)  # the work is running
        resp = STUB.CancelOperation(pb.CancelOperationRequest(
            operation_id=op, reason="test"), timeout=RPC_TIMEOUT)
        self.assertEqual(resp.cancelled, 1)
        with self.assertRaises(grpc.RpcError) as cm:
            for _ in call:
                pass
        self.assertEqual(cm.exception.code(), grpc.StatusCode.CANCELLED)
        self.assertFalse(os.path.exists(
            os.path.join(BANK, req.bank_section, "network.json")))

    def test_cancelled_operation_refuses_new_calls(self):
        op = new_op()
        STUB.CancelOperation(pb.CancelOperationRequest(operation_id=op),
                             timeout=RPC_TIMEOUT)
        req = request(op, tp.OPERATION_KIND_PROTECT, tp.ACTIVITY_PARALLEL)
        with self.assertRaises(grpc.RpcError) as cm:
            run(STUB.ParallelActivity, req)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.CANCELLED)

    def _replay_joins(self, end_first_call):
        """Starts a slow Parallel, ends its call with `end_first_call(req)`
        (the work must go on), then replays the key: the replay joins the
        running work and gets its result; the work ran once."""
        req = request(new_op(), tp.OPERATION_KIND_PROTECT, tp.ACTIVITY_PARALLEL,
                      parameters={"delay_ms": "1500"})
        key = re.escape(req.idempotency_key)
        end_first_call(req)
        PLUGIN.wait_line(r'msg="caller gone, work goes on" key=%s' % key)
        self.assertEqual(PLUGIN.count(
            r'msg="activity failed" key=%s' % key), 0)
        _, res = run(STUB.ParallelActivity, req)
        self.assertTrue(res.state)
        self.assertEqual(PLUGIN.count(
            r'msg="activity started" key=%s$' % key), 1)
        self.assertEqual(PLUGIN.count(
            r'msg="activity joined" key=%s$' % key), 1)
        self.assertEqual(PLUGIN.count(
            r'msg="activity failed" key=%s' % key), 0)
        self.assertTrue(os.path.exists(
            os.path.join(BANK, req.bank_section, "network.json")))

    def test_deadline_leaves_the_work_for_the_replay(self):
        def past_deadline(req):
            with self.assertRaises(grpc.RpcError) as cm:
                run(STUB.ParallelActivity, req, timeout=0.3)
            self.assertEqual(cm.exception.code(),
                             grpc.StatusCode.DEADLINE_EXCEEDED)
        self._replay_joins(past_deadline)

    def test_dropped_call_leaves_the_work_for_the_replay(self):
        def dropped(req):
            # Its own channel, closed under the running call: the
            # connection goes away as when smaugd is killed.
            ch = grpc.insecure_channel(PLUGIN.addr)
            call = pbg.ProtectionPluginStub(ch).ParallelActivity(
                req, timeout=RPC_TIMEOUT)
            next(call)  # the work is running
            ch.close()
        self._replay_joins(dropped)


class HealthTest(unittest.TestCase):
    def setUp(self):
        self.stub = health_pb2_grpc.HealthStub(CHANNEL)

    def test_check_serving(self):
        for name in ("", "smaug.v1.ProtectionPlugin"):
            resp = self.stub.Check(health_pb2.HealthCheckRequest(service=name),
                                   timeout=RPC_TIMEOUT)
            self.assertEqual(resp.status,
                             health_pb2.HealthCheckResponse.SERVING)

    def test_check_unknown_service_not_found(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.Check(health_pb2.HealthCheckRequest(service="no.Such"),
                            timeout=RPC_TIMEOUT)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_watch_sends_current_status(self):
        call = self.stub.Watch(health_pb2.HealthCheckRequest(service=""),
                               timeout=RPC_TIMEOUT)
        self.assertEqual(next(call).status,
                         health_pb2.HealthCheckResponse.SERVING)
        call.cancel()


def reflect(version, requests):
    """Sends `requests` on one reflection stream; returns the responses."""
    pb2, grpc_mod = (r1, r1g) if version == "v1" else (r1a, r1ag)
    stub = grpc_mod.ServerReflectionStub(CHANNEL)
    reqs = [pb2.ServerReflectionRequest(**r) for r in requests]
    return list(stub.ServerReflectionInfo(iter(reqs), timeout=RPC_TIMEOUT))


def file_names(resp):
    from google.protobuf import descriptor_pb2
    names = []
    for raw in resp.file_descriptor_response.file_descriptor_proto:
        names.append(descriptor_pb2.FileDescriptorProto.FromString(raw).name)
    return names


class ReflectionTest(unittest.TestCase):
    WANT = {"smaug.v1.ProtectionPlugin", "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"}

    def test_list_services_v1(self):
        [resp] = reflect("v1", [{"list_services": ""}])
        self.assertEqual({s.name for s in
                          resp.list_services_response.service}, self.WANT)

    def test_list_services_v1alpha(self):
        [resp] = reflect("v1alpha", [{"list_services": ""}])
        self.assertEqual({s.name for s in
                          resp.list_services_response.service}, self.WANT)

    def test_symbol_sends_file_with_dependencies_once(self):
        a, b = reflect("v1", [
            {"file_containing_symbol": "smaug.v1.ProtectionPlugin"},
            {"file_containing_symbol": "smaug.v1.Resource"}])
        self.assertEqual(file_names(a), ["smaug/v1/plugin.proto",
                                         "smaug/v1/types.proto"])
        self.assertEqual(file_names(b), ["smaug/v1/types.proto"])

    def test_unknown_names_get_not_found(self):
        a, b = reflect("v1alpha", [{"file_containing_symbol": "no.Such"},
                                   {"file_by_filename": "no/such.proto"}])
        for resp in (a, b):
            self.assertEqual(resp.error_response.error_code,
                             grpc.StatusCode.NOT_FOUND.value[0])

    def test_buf_curl_lists_services(self):
        out = subprocess.run(
            [ARGS.buf, "curl", "--protocol", "grpc",
             "--http2-prior-knowledge", "http://" + PLUGIN.addr,
             "--list-services"], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("smaug.v1.ProtectionPlugin", out.stdout.split())

    def test_buf_curl_calls_through_reflection(self):
        out = subprocess.run(
            [ARGS.buf, "curl", "--protocol", "grpc",
             "--http2-prior-knowledge", "-d", '{"protocol_major": 1}',
             "http://%s/smaug.v1.ProtectionPlugin/GetPluginInfo" % PLUGIN.addr],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        info = json.loads(out.stdout)
        self.assertEqual(info["name"], "smaug-plugin-network")
        # buf builds its JSON from the reflected descriptors: camelCase
        # json names, as for every other server.
        self.assertEqual(info["protocolMajor"], 1)
        self.assertIn("maxConcurrency", info)
        self.assertIn("optionsSchema", info["types"][0])

    def test_reflected_fields_carry_json_names(self):
        from google.protobuf import descriptor_pb2
        [resp] = reflect("v1", [
            {"file_containing_symbol": "smaug.v1.ProtectionPlugin"}])
        files = {}
        for raw in resp.file_descriptor_response.file_descriptor_proto:
            f = descriptor_pb2.FileDescriptorProto.FromString(raw)
            files[f.name] = f
        msgs = {m.name: m for m in files["smaug/v1/plugin.proto"].message_type}
        names = {f.name: f.json_name
                 for f in msgs["GetPluginInfoRequest"].field}
        self.assertEqual(names, {"protocol_major": "protocolMajor"})
        names = {f.name: f.json_name for f in msgs["ActivityRequest"].field}
        self.assertEqual(names["idempotency_key"], "idempotencyKey")
        # Nested messages (map entries) too, and the dependency file.
        entry = {m.name: m for m in msgs["ActivityRequest"].nested_type}
        self.assertTrue(all(f.json_name for m in entry.values()
                            for f in m.field))
        for m in files["smaug/v1/types.proto"].message_type:
            for f in m.field:
                self.assertTrue(f.json_name, "%s.%s" % (m.name, f.name))


class ProcessTest(unittest.TestCase):
    def test_listening_line_names_bound_port(self):
        host, port = PLUGIN.addr.rsplit(":", 1)
        self.assertEqual(host, "127.0.0.1")
        self.assertGreater(int(port), 0)

    def test_busy_port_fails_to_start(self):
        out = subprocess.run([ARGS.plugin, "--listen", PLUGIN.addr],
                             capture_output=True, text=True, timeout=WAIT)
        self.assertEqual(out.returncode, 1)
        self.assertIn('msg="cannot listen" addr=%s' % PLUGIN.addr, out.stderr)

    def test_sigterm_stops_gracefully_on_unix_socket(self):
        sock = os.path.join(TMP, "plugin.sock")
        p = Plugin("unix:" + sock, CLOUD)
        self.assertEqual(p.addr, "unix:" + sock)
        with grpc.insecure_channel("unix:" + sock) as ch:
            resp = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT)
        self.assertEqual(resp.status, health_pb2.HealthCheckResponse.SERVING)
        self.assertEqual(p.stop(), 0)
        p.wait_line(r"msg=stopped")

    def test_sigterm_tells_watchers_not_serving(self):
        p = Plugin("127.0.0.1:0", CLOUD)
        with grpc.insecure_channel(p.addr) as ch:
            watch = health_pb2_grpc.HealthStub(ch).Watch(
                health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT)
            self.assertEqual(next(watch).status,
                             health_pb2.HealthCheckResponse.SERVING)
            p.proc.send_signal(signal.SIGTERM)
            self.assertEqual([m.status for m in watch],
                             [health_pb2.HealthCheckResponse.NOT_SERVING])
        self.assertEqual(p.stop(), 0)

    def test_exits_with_parent(self):
        # A parent that starts the plugin and lives until its stdin closes.
        parent = ["/usr/bin/python3", "-c",
                  "import subprocess, sys; subprocess.Popen(sys.argv[1:], "
                  "stdin=subprocess.DEVNULL); sys.stdin.read()"]
        p = Plugin("127.0.0.1:0", CLOUD, extra=["--exit-with-parent"],
                   wrap=parent)
        p.proc.stdin.close()  # the parent exits; the plugin must follow
        self.assertEqual(p.proc.wait(WAIT), 0)
        self.assertTrue(p.wait_eof(), "plugin still running")
        p.wait_line(r"msg=stopped")


def main():
    suite = unittest.defaultTestLoader.loadTestsFromModule(
        sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    failed = (len(result.failures) + len(result.errors) +
              len(result.unexpectedSuccesses) + len(result.skipped))
    print("%d passed, %d failed" % (result.testsRun - failed, failed))
    return 1 if failed or result.testsRun == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
