#!/usr/bin/python3
"""The audit log and plugin identity pinning, from outside: grpcio and the
CLI against smaugd with --auth-tokens.

Tokens for an admin (ada), an operator (olga) and a viewer (vic) are made
with `smaugd token add`. Two fake plugins serve the same type t.vol on two
unix sockets: two plugin identities. Checked:
  * every call of a changing method is in ListAuditEvents with who, role,
    the objects it named and its outcome, refused ones included (a
    viewer's DeleteCheckpoint, an operator's RegisterPlugin --replace, a
    call without a token); reads are not;
  * only an admin lists the audit log (viewer and operator:
    PERMISSION_DENIED), filters by who, method and since work, pages do
    not overlap, and hostile filters are INVALID_ARGUMENT naming the
    field;
  * a checkpoint records the identity of the plugin that saved its type;
    once an admin replaced the plugin with one of another identity (the
    replacement and both identities are logged), Restore and
    DeleteCheckpoint are FAILED_PRECONDITION naming the type and both
    identities; `smaug restore --force` works and the audit shows
    force=true; a new checkpoint is pinned to the new plugin;
  * `smaug audit list` filters and limits, and refuses bad flags;
  * the log survives smaugd being killed (SIGKILL) and restarted;
  * without --auth-tokens the caller is "anonymous";
  * a TLS plugin's identity is its certificate's subject (openssl-made
    certificates): a rotated certificate with the same names keeps it, one
    with another subject from the same CA changes it.

    test_audit.py --smaugd bin/smaugd --plugin bin/fake-plugin \
        --tls-plugin bin/smaug-plugin-project --certs tests/runtime/tls_certs.sh \
        --gen share/network-py/gen --smaug bin/smaug

Prints "N passed, N failed" last and exits non-zero on any failure.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

ap = argparse.ArgumentParser()
ap.add_argument("--smaugd", required=True)
ap.add_argument("--plugin", required=True)
ap.add_argument("--tls-plugin", required=True)
ap.add_argument("--certs", required=True)
ap.add_argument("--gen", required=True)
ap.add_argument("--smaug", required=True)
ARGS, _rest = ap.parse_known_args()

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "api"))
import test_watch_memory as wm  # noqa: E402
from test_watch_memory import WAIT, grpc, pb, pbg, tp  # noqa: E402
from smaug.v1 import plugin_pb2 as ppb  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "auth"))
import tokens  # noqa: E402

OK = grpc.StatusCode.OK
UNAUTH = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECOND = grpc.StatusCode.FAILED_PRECONDITION


def token_cmd(*args):
    return tokens.token_cmd(ARGS.smaugd, *args, timeout=WAIT)


class Audit(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.file = os.path.join(cls.tmp, "tokens")
        cls.tok = {}
        for name, role in (("ada", "admin"), ("olga", "operator"),
                           ("vic", "viewer")):
            cls.tok[name] = token_cmd("add", "--tokens-file", cls.file,
                                      "--name", name, "--role", role)
        cls.sock = {}
        cls.plugs = {}
        for p in ("a", "b"):
            cls.sock[p] = os.path.join(cls.tmp, p + ".sock")
            cls.plugs[p] = wm.Smaugd(None, os.path.join(cls.tmp, p + ".log"), [
                ARGS.plugin, "--listen", "unix:" + cls.sock[p], "--types",
                "t.vol"])
        cls.ident = {p: f"unix:{cls.sock[p]} uid={os.getuid()}"
                     for p in cls.sock}
        cls.data = os.path.join(cls.tmp, "data")
        cls.start()

    @classmethod
    def start(cls):
        cls.d = wm.Smaugd(None, os.path.join(cls.tmp, "smaugd.log"), [
            ARGS.smaugd, "--listen", "127.0.0.1:0", "--data-dir", cls.data,
            "--auth-tokens", cls.file])
        cls.chan = grpc.insecure_channel(cls.d.addr)
        cls.stub = pbg.OrchestratorStub(cls.chan)

    @classmethod
    def stop(cls):
        cls.chan.close()
        cls.d.stop()

    @classmethod
    def tearDownClass(cls):
        cls.stop()
        for p in cls.plugs.values():
            p.stop()
        if cls.d.proc.returncode != 0:
            raise AssertionError(f"smaugd exited {cls.d.proc.returncode}: "
                                 + open(cls.d.log).read()[-4000:])
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # -- helpers

    @staticmethod
    def md(name):
        return (("authorization", "Bearer " + Audit.tok[name]),)

    def call(self, method, req, who=None):
        """Calls a unary method as `who`; returns (code, details, resp)."""
        return tokens.unary(grpc, self.stub, method, req,
                            self.md(who) if who else None, WAIT)

    def ok(self, method, req, who):
        c, d, r = self.call(method, req, who)
        self.assertEqual(c, OK, f"{method}: {d}")
        return r

    def refused(self, method, req, who, code, *why):
        c, d, _ = self.call(method, req, who)
        self.assertEqual(c, code, f"{method}: {d}")
        for w in why:
            self.assertIn(w, d)
        return d

    def audit(self, **kw):
        return list(self.ok("ListAuditEvents",
                            pb.ListAuditEventsRequest(**kw), "ada").events)

    def find(self, events, method, who, code, *objects):
        for e in events:
            if (e.method == method and e.who == who and e.code == code
                    and all(o in e.objects.split(" ") for o in objects)):
                return e
        self.fail(f"no {method} by {who} -> {code} with {objects} in:\n"
                  + "\n".join(f"{e.who} {e.method} {e.objects} {e.code}"
                              for e in events))

    def wait_op(self, op_id, final):
        last = None
        for r in self.stub.WatchOperation(
                pb.WatchOperationRequest(operation_id=op_id),
                metadata=self.md("vic"), timeout=WAIT):
            last = r.event
        self.assertEqual(last.final_status, final)

    def register(self, p, who="ada", replace=True):
        return self.call("RegisterPlugin", pb.RegisterPluginRequest(
            address="unix:" + self.sock[p], replace=replace), who)

    def protect(self):
        plan = self.ok("CreatePlan", pb.CreatePlanRequest(plan=pb.Plan(
            name="p", resources=[tp.Resource(type="t.vol", id="v1")])),
            "olga").plan
        op = self.ok("Protect", pb.ProtectRequest(plan_id=plan.id), "olga")
        self.wait_op(op.operation_id, "available")
        return plan.id, op.checkpoint_id

    def smaug(self, *args, who="ada"):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("SMAUG_")}
        env["SMAUG_TOKEN"] = self.tok[who]
        r = subprocess.run([ARGS.smaug, "--server", self.d.addr, *args],
                           capture_output=True, text=True, env=env,
                           timeout=WAIT)
        for t in self.tok.values():
            self.assertNotIn(t, r.stdout + r.stderr)
        return r

    # -- tests

    def test_1_calls_are_audited(self):
        self.assertEqual(self.register("a")[0], OK)
        plan_id, ckp = self.protect()
        self.ok("ListPlans", pb.ListPlansRequest(), "vic")
        self.ok("GetCheckpoint", pb.GetCheckpointRequest(id=ckp), "vic")
        self.refused("DeleteCheckpoint", pb.DeleteCheckpointRequest(id=ckp),
                     "vic", DENIED)
        self.refused("RegisterPlugin", pb.RegisterPluginRequest(
            address="unix:" + self.sock["b"], replace=True), "olga", DENIED)
        self.refused("Protect", pb.ProtectRequest(plan_id=plan_id), None,
                     UNAUTH)
        self.refused("CancelOperation", ppb.CancelOperationRequest(
            operation_id="op-nope"), "olga", grpc.StatusCode.NOT_FOUND)
        ev = self.audit()
        e = self.find(ev, "RegisterPlugin", "ada", "OK",
                      "address=unix:" + self.sock["a"], "replace=true")
        self.assertEqual(e.role, "admin")
        self.assertIn(f"plugin.identity='{self.ident['a']}'", e.objects)
        self.assertTrue(e.peer.startswith("ipv4:127.0.0.1:"), e.peer)
        self.assertGreater(e.time_ms, 0)
        self.find(ev, "CreatePlan", "olga", "OK", "plan.id=" + plan_id,
                  "plan.name=p")
        e = self.find(ev, "Protect", "olga", "OK", "plan_id=" + plan_id,
                      "checkpoint_id=" + ckp)
        self.assertEqual((e.role, e.tenant), ("operator", "default"))
        e = self.find(ev, "DeleteCheckpoint", "vic", "PERMISSION_DENIED",
                      "id=" + ckp)
        self.assertIn("needs operator", e.message)
        self.find(ev, "RegisterPlugin", "olga", "PERMISSION_DENIED",
                  "replace=true")
        self.find(ev, "Protect", "unauthenticated", "UNAUTHENTICATED",
                  "plan_id=" + plan_id)
        e = self.find(ev, "CancelOperation", "olga", "NOT_FOUND",
                      "operation_id=op-nope")
        self.assertIn("op-nope", e.message)
        reads = {"ListPlans", "GetCheckpoint", "WatchOperation",
                 "ListAuditEvents"}
        self.assertFalse(reads & {e.method for e in ev})
        # Newest first, sequences decreasing.
        seqs = [e.sequence for e in ev]
        self.assertEqual(seqs, sorted(seqs, reverse=True))
        # The structured log has each too.
        self.assertTrue(self.d.lines(
            r'comp=audit msg=call who="vic" .*method=DeleteCheckpoint .*'
            r'status=PERMISSION_DENIED'))

    def test_2_only_admin_and_filters(self):
        for who in ("vic", "olga"):
            self.refused("ListAuditEvents", pb.ListAuditEventsRequest(), who,
                         DENIED, "ListAuditEvents needs admin")
        self.refused("ListAuditEvents", pb.ListAuditEventsRequest(), None,
                     UNAUTH)
        ev = self.audit(who="olga")
        self.assertTrue(ev)
        self.assertEqual({e.who for e in ev}, {"olga"})
        ev = self.audit(method="Protect")
        self.assertEqual({e.method for e in ev}, {"Protect"})
        ev = self.audit(who="olga", method="CreatePlan")
        self.assertTrue(ev)
        self.assertEqual({(e.who, e.method) for e in ev},
                         {("olga", "CreatePlan")})
        future = int(time.time() * 1000) + 3600_000
        self.assertEqual(self.audit(since_ms=future), [])
        all_ev = self.audit()
        self.assertEqual(len(self.audit(since_ms=all_ev[-1].time_ms)),
                         len(all_ev))
        # Pages of two, no overlap, the same events in the same order.
        seen, token = [], ""
        while True:
            r = self.ok("ListAuditEvents", pb.ListAuditEventsRequest(
                page_size=2, page_token=token), "ada")
            self.assertLessEqual(len(r.events), 2)
            seen += [e.sequence for e in r.events]
            token = r.next_page_token
            if not token:
                break
        self.assertEqual(seen, [e.sequence for e in all_ev])
        # Hostile filters: INVALID_ARGUMENT naming the field.
        for req, field in (
                (pb.ListAuditEventsRequest(who="a\x01b"), "who:"),
                (pb.ListAuditEventsRequest(who="x" * 300), "who:"),
                (pb.ListAuditEventsRequest(who="\n"), "who:"),
                (pb.ListAuditEventsRequest(method="Nope"), "method:"),
                (pb.ListAuditEventsRequest(method="' OR 1=1 --"), "method:"),
                (pb.ListAuditEventsRequest(method="x" * 5000), "method:"),
                (pb.ListAuditEventsRequest(since_ms=-1), "since_ms:"),
                (pb.ListAuditEventsRequest(page_token="abc"), "page_token:"),
                (pb.ListAuditEventsRequest(page_token="-1"), "page_token:")):
            d = self.refused("ListAuditEvents", req, "ada", INVALID, field)
            self.assertNotIn("OR 1=1", d)
        # A who that matches nothing is just an empty list.
        self.assertEqual(self.audit(who="' OR 1=1 --"), [])

    def test_3_identity_pinned(self):
        self.assertEqual(self.register("a")[0], OK)
        _, ckp = self.protect()
        got = self.ok("GetCheckpoint", pb.GetCheckpointRequest(id=ckp), "vic")
        self.assertEqual(dict(got.checkpoint.plugin_identities),
                         {"t.vol": self.ident["a"]})
        r = self.smaug("checkpoint", "show", ckp, who="vic")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"plugins:    t.vol saved by {self.ident['a']}\n",
                      r.stdout)
        # The operator cannot hand t.vol to another plugin.
        self.assertEqual(self.register("b", "olga")[0], DENIED)
        pl = self.ok("ListPlugins", pb.ListPluginsRequest(), "vic").plugins
        self.assertEqual([p.identity for p in pl], [self.ident["a"]])
        # The admin can; the takeover is logged with both identities.
        c, d, r = self.register("b")
        self.assertEqual(c, OK, d)
        self.assertEqual(r.plugin.identity, self.ident["b"])
        self.assertTrue(self.d.lines(
            r'msg="plugin replaced by another identity".*identity="'
            + self.ident["a"] + '".*by_identity="' + self.ident["b"] + '"'))
        # Restore and delete refuse: the type's plugin is not the saver.
        for m, req in (("Restore", pb.RestoreRequest(checkpoint_id=ckp)),
                       ("DeleteCheckpoint", pb.DeleteCheckpointRequest(
                           id=ckp))):
            self.refused(m, req, "olga", PRECOND, ckp, "t.vol",
                         self.ident["a"], self.ident["b"], "force")
        # Through the CLI: refused, then forced.
        r = self.smaug("restore", ckp, who="olga")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("FAILED_PRECONDITION", r.stderr)
        self.assertIn(self.ident["a"], r.stderr)
        r = self.smaug("restore", ckp, "--force", "--wait", who="olga")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        ev = self.audit(method="Restore")
        self.find(ev, "Restore", "olga", "FAILED_PRECONDITION",
                  "checkpoint_id=" + ckp)
        e = self.find(ev, "Restore", "olga", "OK", "checkpoint_id=" + ckp,
                      "force=true")
        self.assertRegex(e.objects, r"restore_id=rst-\S+")
        self.assertTrue(self.d.lines(
            r'msg="plugin identity check overridden \(force\)".*checkpoint='
            + ckp))
        r = self.smaug("plugin", "list", who="vic")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("IDENTITY", r.stdout)
        self.assertIn(self.ident["b"], r.stdout)
        r = self.smaug("audit", "list", "--method", "Restore", "--who",
                       "olga")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("force=true", r.stdout)
        # A checkpoint taken now is pinned to the new plugin.
        _, ckp2 = self.protect()
        got = self.ok("GetCheckpoint", pb.GetCheckpointRequest(id=ckp2),
                      "vic")
        self.assertEqual(dict(got.checkpoint.plugin_identities),
                         {"t.vol": self.ident["b"]})
        op = self.ok("Restore", pb.RestoreRequest(checkpoint_id=ckp2), "olga")
        self.wait_op(op.operation_id, "success")
        # Forced delete of the old one, audited.
        r = self.smaug("checkpoint", "delete", ckp, "--force", "--wait",
                       who="olga")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.find(self.audit(method="DeleteCheckpoint"), "DeleteCheckpoint",
                  "olga", "OK", "id=" + ckp, "force=true")

    def test_4_cli(self):
        r = self.smaug("audit", "list", who="vic")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("PERMISSION_DENIED", r.stderr)
        r = self.smaug("audit", "list", "--since", "1h")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertTrue(lines[0].split()[:3] == ["TIME", "WHO", "TENANT"],
                        r.stdout)
        self.assertGreater(len(lines), 3)
        r = self.smaug("audit", "list", "--who", "olga", "--limit", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = r.stdout.splitlines()[1:]
        self.assertEqual(len(rows), 2, r.stdout)
        self.assertTrue(all(" olga " in row for row in rows), r.stdout)
        r = self.smaug("-o", "json", "audit", "list", "--limit", "1",
                       "--method", "Protect")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.count('"method": "Protect"'), 1, r.stdout)
        for bad in (("--limit", "0"), ("--limit", "x"), ("--since", "soon"),
                    ("--since", "-5m")):
            r = self.smaug("audit", "list", *bad)
            self.assertEqual(r.returncode, 2, f"{bad}: {r.stderr}")
        r = self.smaug("audit", "list", "--method", "Bogus")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("INVALID_ARGUMENT: method:", r.stderr)

    def test_5_survives_kill(self):
        before = self.audit()
        self.assertTrue(before)
        type(self).d.proc.send_signal(signal.SIGKILL)
        self.d.proc.wait()
        self.stop()
        self.start()
        self.assertEqual([e.sequence for e in self.audit()][:len(before)],
                         [e.sequence for e in before])

    def test_6_anonymous(self):
        log = os.path.join(self.tmp, "open.log")
        d = wm.Smaugd(None, log, [ARGS.smaugd, "--listen", "127.0.0.1:0",
                                  "--data-dir", os.path.join(self.tmp, "d2")])
        try:
            with grpc.insecure_channel(d.addr) as ch:
                stub = pbg.OrchestratorStub(ch)
                with self.assertRaises(grpc.RpcError) as e:
                    stub.UnregisterPlugin(pb.UnregisterPluginRequest(
                        name="ghost"), timeout=WAIT)
                self.assertEqual(e.exception.code(),
                                 grpc.StatusCode.NOT_FOUND)
                with self.assertRaises(grpc.RpcError) as e:
                    stub.CreatePlan(pb.CreatePlanRequest(plan=pb.Plan(
                        name="q")), timeout=WAIT)
                self.assertEqual(e.exception.code(), INVALID)
                ev = stub.ListAuditEvents(pb.ListAuditEventsRequest(),
                                          timeout=WAIT).events
                self.assertEqual(
                    [(e.who, e.method, e.code) for e in ev],
                    [("anonymous", "CreatePlan", "INVALID_ARGUMENT"),
                     ("anonymous", "UnregisterPlugin", "NOT_FOUND")])
                self.assertIn("at least one resource", ev[0].message)
        finally:
            d.stop()
        self.assertEqual(d.proc.returncode, 0, open(log).read()[-4000:])

    def test_7_tls_identity(self):
        c = os.path.join(self.tmp, "certs")
        os.mkdir(c)
        subprocess.run(["sh", ARGS.certs, c], check=True, timeout=WAIT)
        # Another subject from the same CA.
        subprocess.run(
            "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
            "-out imp.key 2>/dev/null && openssl req -new -key imp.key "
            "-out imp.csr -subj /CN=localhost/O=impostor && printf "
            "'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > imp.ext && "
            "openssl x509 -req -in imp.csr -CA ca.pem -CAkey ca.key "
            "-set_serial 0x4001 -days 1 -out imp.pem -extfile imp.ext "
            "2>/dev/null && chmod 600 imp.key", shell=True, cwd=c,
            check=True, timeout=WAIT)
        d = wm.Smaugd(None, os.path.join(self.tmp, "tls.log"), [
            ARGS.smaugd, "--listen", "127.0.0.1:0", "--data-dir",
            os.path.join(self.tmp, "d3"), "--plugin-tls-ca", c + "/ca.pem",
            "--plugin-tls-cert", c + "/client.pem", "--plugin-tls-key",
            c + "/client.key"])
        plugs = []
        try:
            with grpc.insecure_channel(d.addr) as ch:
                stub = pbg.OrchestratorStub(ch)

                def run(cert):
                    p = wm.Smaugd(None, os.path.join(self.tmp, cert + ".log"),
                                  [ARGS.tls_plugin, "--listen", "127.0.0.1:0",
                                   "--tls-cert", f"{c}/{cert}.pem",
                                   "--tls-key", f"{c}/{cert}.key",
                                   "--tls-client-ca", c + "/ca.pem"])
                    plugs.append(p)
                    r = stub.RegisterPlugin(pb.RegisterPluginRequest(
                        address=p.addr, replace=True), timeout=WAIT)
                    return r.plugin.identity

                first = run("server")
                self.assertTrue(first.startswith("cert:"), first)
                self.assertIn("CN=localhost", first)
                self.assertIn("O=smaug", first)
                self.assertEqual(run("server2"), first)  # a rotation
                other = run("imp")
                self.assertIn("O=impostor", other)
                self.assertNotEqual(other, first)
                self.assertTrue(d.lines(
                    r'msg="plugin replaced by another identity"'))
                self.assertEqual(len(d.lines(
                    r'msg="plugin replaced by another identity"')), 1)
        finally:
            for p in plugs:
                p.stop()
            d.stop()
        self.assertEqual(d.proc.returncode, 0, open(d.log).read()[-4000:])


if __name__ == "__main__":
    prog = unittest.main(argv=[sys.argv[0]] + _rest, exit=False,
                         verbosity=2)
    r = prog.result
    failed = len(r.failures) + len(r.errors)
    print(f"{r.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed or not r.wasSuccessful() else 0)
