#!/usr/bin/python3
"""smaugd with --auth-tokens, from outside: grpcio and `buf curl`.

Tokens for an admin, an operator and a viewer are made with `smaugd token
add`; smaugd and the fake plugin are started. Checked:
  * without a token every Orchestrator method answers UNAUTHENTICATED,
    through grpcio and buf curl, while health and reflection stay open;
  * a viewer reads but its DeleteCheckpoint is PERMISSION_DENIED and the
    checkpoint stays; an operator protects and deletes but cannot register
    or unregister a plugin; an admin can; the audit log, which only the
    admin reads, shows each of these calls and its outcome;
  * hostile credentials (empty, 'Bearer' alone, another scheme, huge, two
    authorization headers, bytes that are not UTF-8) are refused, the
    message never holds the token, and smaugd serves on;
  * the CLI sends SMAUG_TOKEN or --token-file, is refused without one,
    and never prints the token;
  * a revoked token works until SIGHUP and is refused after it (the log
    line of the reload is the trace waited for); a reload of a file that
    became group-readable keeps the previous tokens.

    test_auth_api.py --smaugd bin/smaugd --plugin bin/fake-plugin \
        --gen share/network-py/gen --buf tools/node_modules/.bin/buf \
        --smaug bin/smaug

Prints "N passed, N failed" last and exits non-zero on any failure.
"""

import argparse
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import unittest

ap = argparse.ArgumentParser()
ap.add_argument("--smaugd", required=True)
ap.add_argument("--plugin", required=True)
ap.add_argument("--gen", required=True)
ap.add_argument("--buf", required=True)
ap.add_argument("--smaug", required=True)
ARGS, _rest = ap.parse_known_args()

# The process helper and the generated stubs of the api suites.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "api"))
import test_watch_memory as wm  # noqa: E402
from test_watch_memory import WAIT, grpc, pb, pbg, tp  # noqa: E402
import tokens  # noqa: E402

grpc.__path__.append(os.path.join(ARGS.gen, "grpc"))
from grpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

UNAUTH = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED


def proc(argv, log):
    """Starts argv, its output in `log`, and waits for its listening line
    (the helper also gives an ASan build a small quarantine)."""
    return wm.Smaugd(None, log, argv)


def token_cmd(*args):
    return tokens.token_cmd(ARGS.smaugd, *args, timeout=WAIT)


class Auth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.file = os.path.join(cls.tmp, "tokens")
        cls.tok = {}
        for name, role in (("ada", "admin"), ("olga", "operator"),
                           ("vic", "viewer"), ("val", "viewer")):
            cls.tok[name] = token_cmd("add", "--tokens-file", cls.file,
                                      "--name", name, "--role", role)
        cls.plug = proc([ARGS.plugin, "--listen", "127.0.0.1:0", "--types",
                         "t.vol"], os.path.join(cls.tmp, "plugin.log"))
        cls.d = proc([ARGS.smaugd, "--listen", "127.0.0.1:0", "--data-dir",
                      os.path.join(cls.tmp, "data"), "--auth-tokens",
                      cls.file], os.path.join(cls.tmp, "smaugd.log"))
        cls.loads = 1
        cls.chan = grpc.insecure_channel(cls.d.addr)
        cls.stub = pbg.OrchestratorStub(cls.chan)

    @classmethod
    def tearDownClass(cls):
        cls.chan.close()
        cls.d.stop()
        cls.plug.stop()
        if cls.d.proc.returncode != 0:
            raise AssertionError(f"smaugd exited {cls.d.proc.returncode}: "
                                 + open(cls.d.log).read()[-4000:])
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # -- helpers

    @staticmethod
    def md(name):
        return (("authorization", "Bearer " + Auth.tok[name]),)

    def call(self, method, req, md=None):
        """Calls a unary method; returns (code, details, response)."""
        return tokens.unary(grpc, self.stub, method, req, md, WAIT)

    def refused(self, method, req, md, code, why=""):
        c, details, _ = self.call(method, req, md)
        self.assertEqual(c, code, f"{method}: {details}")
        for t in self.tok.values():
            self.assertNotIn(t, details)
            self.assertNotIn(t[6:20], details)
        self.assertIn(why, details)
        return details

    def reload(self):
        """SIGHUP, then waits for the reload's log line (either outcome)."""
        type(self).loads += 1
        self.d.proc.send_signal(signal.SIGHUP)
        self.d.wait_log(r"comp=auth msg=\"tokens (loaded|not reloaded)",
                        self.loads)

    def buf(self, *args, token=None):
        argv = [ARGS.buf, "curl", "--protocol", "grpc",
                "--http2-prior-knowledge", *args]
        if token is not None:
            argv[2:2] = ["-H", "authorization: Bearer " + token]
        return subprocess.run(argv, capture_output=True, text=True,
                              timeout=WAIT)

    def admin_plugin(self):
        self.assertEqual(self.call("RegisterPlugin", pb.RegisterPluginRequest(
            address=self.plug.addr, replace=True), self.md("ada"))[0],
            grpc.StatusCode.OK)

    # -- tests

    def test_1_no_token(self):
        reqs = {"ListPlans": pb.ListPlansRequest(),
                "GetPlan": pb.GetPlanRequest(id="p"),
                "ListPlugins": pb.ListPluginsRequest(),
                "RegisterPlugin": pb.RegisterPluginRequest(
                    address=self.plug.addr),
                "DeleteCheckpoint": pb.DeleteCheckpointRequest(id="c"),
                "Protect": pb.ProtectRequest(plan_id="p")}
        for m, req in reqs.items():
            self.refused(m, req, None, UNAUTH, "needs a token")
        # A server stream too.
        with self.assertRaises(grpc.RpcError) as e:
            list(self.stub.WatchOperation(
                pb.WatchOperationRequest(operation_id="x"), timeout=WAIT))
        self.assertEqual(e.exception.code(), UNAUTH)
        # Health is open.
        h = health_pb2_grpc.HealthStub(self.chan).Check(
            health_pb2.HealthCheckRequest(service="smaug.v1.Orchestrator"),
            timeout=WAIT)
        self.assertEqual(h.status, health_pb2.HealthCheckResponse.SERVING)
        # buf curl: reflection is open, the call is not.
        url = f"http://{self.d.addr}"
        r = self.buf("--list-methods", url)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("smaug.v1.Orchestrator/ListPlans", r.stdout)
        r = self.buf("-d", "{}", f"{url}/smaug.v1.Orchestrator/ListPlans")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("unauthenticated", r.stderr)
        r = self.buf("-d", "{}", f"{url}/smaug.v1.Orchestrator/ListPlans",
                     token=self.tok["vic"])
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_2_roles(self):
        self.admin_plugin()
        # The operator makes a plan and a checkpoint.
        c, d, plan = self.call("CreatePlan", pb.CreatePlanRequest(
            plan=pb.Plan(name="p", resources=[
                tp.Resource(type="t.vol", id="v1")])), self.md("olga"))
        self.assertEqual(c, grpc.StatusCode.OK, d)
        c, d, op = self.call("Protect", pb.ProtectRequest(
            plan_id=plan.plan.id), self.md("olga"))
        self.assertEqual(c, grpc.StatusCode.OK, d)
        last = None
        for r in self.stub.WatchOperation(
                pb.WatchOperationRequest(operation_id=op.operation_id),
                metadata=self.md("vic"), timeout=WAIT):
            last = r.event
        self.assertEqual(last.final_status, "available")
        ckp = op.checkpoint_id
        # The viewer reads, but cannot delete, protect or plan.
        c, d, got = self.call("GetCheckpoint", pb.GetCheckpointRequest(
            id=ckp), self.md("vic"))
        self.assertEqual(c, grpc.StatusCode.OK, d)
        self.refused("DeleteCheckpoint", pb.DeleteCheckpointRequest(
            id=ckp), self.md("vic"), DENIED,
            "token vic has the role viewer; DeleteCheckpoint needs operator")
        self.refused("Protect", pb.ProtectRequest(plan_id=plan.plan.id),
                     self.md("vic"), DENIED)
        self.refused("CreatePlan", pb.CreatePlanRequest(plan=pb.Plan(
            name="q")), self.md("vic"), DENIED)
        c, d, got = self.call("GetCheckpoint", pb.GetCheckpointRequest(
            id=ckp), self.md("vic"))
        self.assertEqual(got.checkpoint.status,
                         pb.CHECKPOINT_STATUS_AVAILABLE)
        # The operator cannot register or unregister a plugin.
        self.refused("RegisterPlugin", pb.RegisterPluginRequest(
            address=self.plug.addr, replace=True), self.md("olga"), DENIED,
            "RegisterPlugin needs admin")
        self.refused("UnregisterPlugin", pb.UnregisterPluginRequest(
            name="fake"), self.md("olga"), DENIED)
        c, d, pl = self.call("ListPlugins", pb.ListPluginsRequest(),
                             self.md("olga"))
        self.assertEqual(c, grpc.StatusCode.OK, d)
        self.assertEqual(len(pl.plugins), 1)
        # The admin can; the operator can delete the checkpoint.
        self.admin_plugin()
        c, d, _ = self.call("DeleteCheckpoint", pb.DeleteCheckpointRequest(
            id=ckp), self.md("olga"))
        self.assertEqual(c, grpc.StatusCode.OK, d)
        # The audit log shows each of these calls, allowed or refused, and
        # only the admin reads it.
        self.refused("ListAuditEvents", pb.ListAuditEventsRequest(),
                     self.md("olga"), DENIED, "ListAuditEvents needs admin")
        c, d, a = self.call("ListAuditEvents", pb.ListAuditEventsRequest(),
                            self.md("ada"))
        self.assertEqual(c, grpc.StatusCode.OK, d)
        seen = [(e.who, e.method, e.code) for e in reversed(a.events)]
        want = [("ada", "RegisterPlugin", "OK"),
                ("olga", "CreatePlan", "OK"),
                ("olga", "Protect", "OK"),
                ("vic", "DeleteCheckpoint", "PERMISSION_DENIED"),
                ("vic", "Protect", "PERMISSION_DENIED"),
                ("vic", "CreatePlan", "PERMISSION_DENIED"),
                ("olga", "RegisterPlugin", "PERMISSION_DENIED"),
                ("olga", "UnregisterPlugin", "PERMISSION_DENIED"),
                ("ada", "RegisterPlugin", "OK"),
                ("olga", "DeleteCheckpoint", "OK")]
        self.assertEqual(seen[-len(want):], want)
        self.assertIn("id=" + ckp, a.events[0].objects.split(" "))

    def test_3_hostile(self):
        req = pb.ListPlansRequest()
        long = "Bearer smaug_" + "A" * 2000
        for md, why in (
                ((("authorization", ""),), "malformed"),
                ((("authorization", "Bearer"),), "malformed"),
                ((("authorization", "Bearer "),), "malformed"),
                ((("authorization", "Basic YWRhOmFkYQ=="),), "malformed"),
                ((("authorization", self.tok["ada"]),), "malformed"),
                ((("authorization", long),), "malformed"),
                ((("authorization", "Bearer " + self.tok["ada"] + "x"),),
                 "unknown or revoked token"),
                ((("authorization", "Bearer " + self.tok["ada"]),
                  ("authorization", "Bearer " + self.tok["ada"])),
                 "more than one authorization header"),
                ((("authorization", "Bearer " + self.tok["vic"]),
                  ("authorization", "Bearer " + self.tok["ada"])),
                 "more than one authorization header")):
            d = self.refused("ListPlans", req, md, UNAUTH, why)
            self.assertNotIn("AAAAAAAA", d)
        # Over gRPC core's metadata limit: refused before smaugd's code,
        # which may close that connection, so on a channel of its own.
        with grpc.insecure_channel(
                self.d.addr, options=[("grpc.use_local_subchannel_pool", 1)
                                      ]) as ch:
            with self.assertRaises(grpc.RpcError) as e:
                pbg.OrchestratorStub(ch).ListPlans(req, timeout=WAIT, metadata=(
                    ("authorization", "Bearer smaug_" + "A" * 40000),))
            self.assertNotIn("AAAAAAAA", e.exception.details() or "")
        # Bytes that are not UTF-8 (obs-text), sent by buf curl.
        url = f"http://{self.d.addr}/smaug.v1.Orchestrator/ListPlans"
        r = subprocess.run(
            [ARGS.buf.encode(), b"curl", b"--protocol", b"grpc",
             b"--http2-prior-knowledge", b"-H",
             b"authorization: Bearer smaug_\xff\xfe\x80", b"-d", b"{}",
             url.encode()], capture_output=True, timeout=WAIT)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"unauthenticated", r.stderr)
        self.assertNotIn(b"\xff\xfe", r.stderr)
        # smaugd serves on.
        c, d, _ = self.call("ListPlans", req, self.md("vic"))
        self.assertEqual(c, grpc.StatusCode.OK, d)

    def test_4_revoke_and_reload(self):
        req = pb.ListPlansRequest()
        token_cmd("revoke", "--tokens-file", self.file, "--name", "val")
        # Until smaugd re-reads the file the token still works.
        self.assertEqual(self.call("ListPlans", req, self.md("val"))[0],
                         grpc.StatusCode.OK)
        self.reload()
        self.assertEqual(self.d.lines(r"msg=\"tokens loaded\".*tokens=(\d+)")
                         [-1].group(1), "3")
        self.refused("ListPlans", req, self.md("val"), UNAUTH,
                     "unknown or revoked token")
        self.assertEqual(self.call("ListPlans", req, self.md("vic"))[0],
                         grpc.StatusCode.OK)
        # A new token is known after the next reload, not before.
        self.tok["new"] = token_cmd("add", "--tokens-file", self.file,
                                    "--name", "new", "--role", "admin")
        self.refused("ListPlans", req, self.md("new"), UNAUTH)
        self.reload()
        self.assertEqual(self.call("ListPlans", req, self.md("new"))[0],
                         grpc.StatusCode.OK)
        # A file that became group-readable is not loaded; the previous
        # tokens stay, and the log says why.
        token_cmd("revoke", "--tokens-file", self.file, "--name", "vic")
        os.chmod(self.file, 0o640)
        self.reload()
        self.assertTrue(self.d.lines(
            r"tokens not reloaded.*readable or writable by group or others"))
        self.assertEqual(self.call("ListPlans", req, self.md("vic"))[0],
                         grpc.StatusCode.OK)
        os.chmod(self.file, stat.S_IRUSR | stat.S_IWUSR)
        self.reload()
        self.refused("ListPlans", req, self.md("vic"), UNAUTH)
        # The log never holds a token.
        with open(self.d.log, errors="replace") as f:
            text = f.read()
        for t in self.tok.values():
            self.assertNotIn(t, text)

    def test_5_cli(self):
        def smaug(*args, token=None, env_file=None):
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith("SMAUG_")}
            if token is not None:
                env["SMAUG_TOKEN"] = token
            if env_file is not None:
                env["SMAUG_TOKEN_FILE"] = env_file
            r = subprocess.run([ARGS.smaug, "--server", self.d.addr, *args],
                               capture_output=True, text=True, env=env,
                               timeout=WAIT)
            for t in self.tok.values():
                self.assertNotIn(t, r.stdout + r.stderr)
            return r
        r = smaug("plan", "list")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("UNAUTHENTICATED", r.stderr)
        r = smaug("plan", "list", token=self.tok["olga"])
        self.assertEqual(r.returncode, 0, r.stderr)
        path = os.path.join(self.tmp, "olga.token")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, (self.tok["olga"] + "\n").encode())
        os.close(fd)
        r = smaug("--token-file", path, "plugin", "register", self.plug.addr,
                  "--replace")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("PERMISSION_DENIED: token olga has the role operator; "
                      "RegisterPlugin needs admin", r.stderr)
        r = smaug("plugin", "register", self.plug.addr, "--replace",
                  token=self.tok["ada"])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = smaug("checkpoint", "delete", "c1", env_file=path,
                  token="")
        self.assertNotIn("UNAUTHENTICATED", r.stderr)
        self.assertNotIn("PERMISSION_DENIED", r.stderr)
        r = smaug("plan", "list", token=self.tok["ada"] + "x")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown or revoked token", r.stderr)


if __name__ == "__main__":
    prog = unittest.main(argv=[sys.argv[0]] + _rest, exit=False,
                         verbosity=2)
    r = prog.result
    failed = len(r.failures) + len(r.errors)
    print(f"{r.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed or not r.wasSuccessful() else 0)
