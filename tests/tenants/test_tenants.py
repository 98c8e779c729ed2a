#!/usr/bin/python3
"""Tenants from outside: smaugd with --auth-tokens, through grpcio and the
CLI.

Tokens are made with `smaugd token add`: operators alice (tenant a) and
bob (tenant b), viewer vic (tenant b) and admin ada (tenant ops). alice
makes a plan, protects it and restores the checkpoint. Checked:
  * every object carries its tenant: the plan alice's, the checkpoint
    its plan's, the restore its checkpoint's;
  * bob (and vic) cannot get, update, delete, protect, list, watch,
    cancel, restore, page the results of or draw the flow of any of
    alice's objects: each answers NOT_FOUND with the very message a
    random id of the same kind gets, so existence does not leak; lists
    leave them out, and asking a list for tenant a gives nothing;
  * alice can; ada (admin) sees every tenant, narrows a list to one
    tenant, restores and deletes alice's checkpoint, and what her restore
    makes stays in tenant a; ada's own plan is in tenant ops;
  * the CLI with SMAUG_TOKEN: bob's `plan show` and `checkpoint delete`
    fail NOT_FOUND, alice's `plan show` works;
  * a data directory of the schema-2 store (tests/store/schema2.db)
    opens with its rows in tenant default: an operator of tenant default
    sees its plan, alice does not;
  * hostile: a token file whose tenant does not match the id pattern
    keeps smaugd from starting, `smaugd token add` refuses one, and a
    list's tenant filter that is not an id is INVALID_ARGUMENT.

    test_tenants.py --smaugd bin/smaugd --plugin bin/fake-plugin \
        --gen share/network-py/gen --smaug bin/smaug --schema2 schema2.db

Prints "N passed, N failed" last and exits non-zero on any failure.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

ap = argparse.ArgumentParser()
ap.add_argument("--smaugd", required=True)
ap.add_argument("--plugin", required=True)
ap.add_argument("--gen", required=True)
ap.add_argument("--smaug", required=True)
ap.add_argument("--schema2", required=True)
ARGS, _rest = ap.parse_known_args()

# The process helper and the generated stubs of the api suites.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "api"))
import test_watch_memory as wm  # noqa: E402
from test_watch_memory import WAIT, grpc, pb, pbg, tp  # noqa: E402
from smaug.v1 import plugin_pb2 as pl  # noqa: E402

OK = grpc.StatusCode.OK
NOT_FOUND = grpc.StatusCode.NOT_FOUND
# Ids of the right shape that name nothing.
MISSING = {"plan": "pln-00000000000000000000000000000000",
           "checkpoint": "ckp-00000000000000000000000000000000",
           "restore": "rst-00000000000000000000000000000000",
           "operation": "op-00000000000000000000000000000000"}


def token_cmd(*args, check=True):
    r = subprocess.run([ARGS.smaugd, "token", *args], capture_output=True,
                       text=True, timeout=WAIT)
    if check and r.returncode != 0:
        raise AssertionError(f"smaugd token {args}: {r.stderr}")
    return r


def add_token(file, name, role, tenant):
    return token_cmd("add", "--tokens-file", file, "--name", name, "--role",
                     role, "--tenant", tenant).stdout.strip()


def start(tmp, data, tokens):
    argv = [ARGS.smaugd, "--listen", "127.0.0.1:0", "--data-dir", data,
            "--auth-tokens", tokens, "--bank", "file://" +
            os.path.join(tmp, "bank")]
    return wm.Smaugd(None, os.path.join(tmp, os.path.basename(data) + ".log"),
                     argv)


class Client:
    """Unary and streaming calls as one token."""

    def __init__(self, stub, token):
        self.stub = stub
        self.md = (("authorization", "Bearer " + token),)

    def call(self, method, req):
        """Returns (code, details, response)."""
        try:
            r = getattr(self.stub, method)(req, metadata=self.md,
                                           timeout=WAIT)
            return OK, "", r
        except grpc.RpcError as e:
            return e.code(), e.details() or "", None

    def ok(self, method, req):
        c, d, r = self.call(method, req)
        if c != OK:
            raise AssertionError(f"{method}: {c} {d}")
        return r

    def watch(self, op_id):
        """Every event of `op_id`: (code, details, events)."""
        evs = []
        try:
            for r in self.stub.WatchOperation(
                    pb.WatchOperationRequest(operation_id=op_id),
                    metadata=self.md, timeout=WAIT):
                evs.append(r.event)
            return OK, "", evs
        except grpc.RpcError as e:
            return e.code(), e.details() or "", evs


class Tenants(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.tokens = os.path.join(cls.tmp, "tokens")
        cls.tok = {}
        for name, role, tenant in (("alice", "operator", "a"),
                                   ("bob", "operator", "b"),
                                   ("vic", "viewer", "b"),
                                   ("dora", "operator", "default"),
                                   ("ada", "admin", "ops")):
            cls.tok[name] = add_token(cls.tokens, name, role, tenant)
        cls.plug = wm.Smaugd(None, os.path.join(cls.tmp, "plugin.log"),
                             [ARGS.plugin, "--listen", "127.0.0.1:0",
                              "--types", "t.vol"])
        cls.d = start(cls.tmp, os.path.join(cls.tmp, "data"), cls.tokens)
        cls.chan = grpc.insecure_channel(cls.d.addr)
        stub = pbg.OrchestratorStub(cls.chan)
        cls.c = {n: Client(stub, t) for n, t in cls.tok.items()}
        cls.c["ada"].ok("RegisterPlugin", pb.RegisterPluginRequest(
            address=cls.plug.addr))
        # alice's plan, checkpoint and restore.
        a = cls.c["alice"]
        cls.plan = a.ok("CreatePlan", pb.CreatePlanRequest(plan=pb.Plan(
            name="a's", resources=[tp.Resource(type="t.vol", id="v1")]))).plan
        p = a.ok("Protect", pb.ProtectRequest(plan_id=cls.plan.id))
        cls.ckp, cls.pop = p.checkpoint_id, p.operation_id
        code, d, evs = a.watch(cls.pop)
        assert code == OK and evs[-1].final_status == "available", (code, d)
        r = a.ok("Restore", pb.RestoreRequest(checkpoint_id=cls.ckp))
        cls.rst, cls.rop = r.restore_id, r.operation_id
        code, d, evs = a.watch(cls.rop)
        assert code == OK and evs[-1].final_status, (code, d)
        # bob's own plan.
        cls.bplan = cls.c["bob"].ok("CreatePlan", pb.CreatePlanRequest(
            plan=pb.Plan(name="b's", resources=[
                tp.Resource(type="t.vol", id="v2")]))).plan

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

    def hidden(self, who, method, make, kind, real):
        """`who` calling `method` on `real` (an id of `kind`) must answer
        exactly as on an id that does not exist."""
        c, d, _ = self.c[who].call(method, make(real))
        mc, md, _ = self.c[who].call(method, make(MISSING[kind]))
        self.assertEqual(mc, NOT_FOUND, f"{method} on a missing id: {md}")
        self.assertEqual(c, NOT_FOUND, f"{who} {method} {real}: {d}")
        self.assertEqual(d.replace(real, "ID"),
                         md.replace(MISSING[kind], "ID"), method)
        self.assertEqual(d, f"{kind} {real} not found")

    # -- tests

    def test_1_tenant_fields(self):
        a = self.c["alice"]
        self.assertEqual(self.plan.tenant, "a")
        self.assertEqual(self.bplan.tenant, "b")
        got = a.ok("GetCheckpoint", pb.GetCheckpointRequest(id=self.ckp))
        self.assertEqual(got.checkpoint.tenant, "a")
        got = a.ok("GetRestore", pb.GetRestoreRequest(id=self.rst))
        self.assertEqual(got.restore.tenant, "a")
        # The tenant is output only: a plan sent with another keeps its own.
        p = a.ok("UpdatePlan", pb.UpdatePlanRequest(plan=pb.Plan(
            id=self.plan.id, name="a's", tenant="b",
            resources=[tp.Resource(type="t.vol", id="v1")]))).plan
        self.assertEqual(p.tenant, "a")
        p = a.ok("CreatePlan", pb.CreatePlanRequest(plan=pb.Plan(
            name="x", tenant="b",
            resources=[tp.Resource(type="t.vol", id="v1")]))).plan
        self.assertEqual(p.tenant, "a")
        a.ok("DeletePlan", pb.DeletePlanRequest(id=p.id))

    def test_2_other_tenant_sees_nothing(self):
        plan_res = [tp.Resource(type="t.vol", id="v1")]
        for who in ("bob", "vic"):
            h = self.hidden
            h(who, "GetPlan", lambda i: pb.GetPlanRequest(id=i), "plan",
              self.plan.id)
            h(who, "GetFlow", lambda i: pb.GetFlowRequest(plan_id=i), "plan",
              self.plan.id)
            h(who, "GetCheckpoint", lambda i: pb.GetCheckpointRequest(id=i),
              "checkpoint", self.ckp)
            h(who, "GetFlow", lambda i: pb.GetFlowRequest(checkpoint_id=i),
              "checkpoint", self.ckp)
            h(who, "ListResourceResults",
              lambda i: pb.ListResourceResultsRequest(checkpoint_id=i),
              "checkpoint", self.ckp)
            h(who, "GetRestore", lambda i: pb.GetRestoreRequest(id=i),
              "restore", self.rst)
            h(who, "ListResourceResults",
              lambda i: pb.ListResourceResultsRequest(restore_id=i),
              "restore", self.rst)
            h(who, "ListResourceResults",
              lambda i: pb.ListResourceResultsRequest(operation_id=i),
              "operation", self.pop)
            # Lists leave a's objects out; asking for tenant a gives none.
            c = self.c[who]
            plans = c.ok("ListPlans", pb.ListPlansRequest()).plans
            self.assertEqual([p.id for p in plans], [self.bplan.id])
            self.assertEqual(len(c.ok("ListPlans", pb.ListPlansRequest(
                tenant="a")).plans), 0)
            for req, field in ((pb.ListCheckpointsRequest(), "checkpoints"),
                               (pb.ListCheckpointsRequest(
                                   plan_id=self.plan.id), "checkpoints"),
                               (pb.ListCheckpointsRequest(tenant="a"),
                                "checkpoints"),
                               (pb.ListRestoresRequest(), "restores"),
                               (pb.ListRestoresRequest(
                                   checkpoint_id=self.ckp), "restores"),
                               (pb.ListRestoresRequest(tenant="a"),
                                "restores")):
                method = "List" + field.capitalize()
                self.assertEqual(len(getattr(c.ok(method, req), field)), 0,
                                 f"{who} {method} {req}")
            # A watch of a's operations ends NOT_FOUND, with no event, as
            # on a missing id.
            for op in (self.pop, self.rop):
                code, d, evs = c.watch(op)
                mcode, md, _ = c.watch(MISSING["operation"])
                self.assertEqual((code, evs), (NOT_FOUND, []), d)
                self.assertEqual(d.replace(op, "ID"),
                                 md.replace(MISSING["operation"], "ID"))
        # The operator's changes, each refused the same way.
        h = self.hidden
        h("bob", "UpdatePlan", lambda i: pb.UpdatePlanRequest(plan=pb.Plan(
            id=i, name="taken", resources=plan_res)), "plan", self.plan.id)
        h("bob", "Protect", lambda i: pb.ProtectRequest(plan_id=i), "plan",
          self.plan.id)
        h("bob", "DeletePlan", lambda i: pb.DeletePlanRequest(id=i), "plan",
          self.plan.id)
        h("bob", "Restore", lambda i: pb.RestoreRequest(checkpoint_id=i),
          "checkpoint", self.ckp)
        h("bob", "DeleteCheckpoint",
          lambda i: pb.DeleteCheckpointRequest(id=i), "checkpoint", self.ckp)
        h("bob", "CancelOperation",
          lambda i: pl.CancelOperationRequest(operation_id=i), "operation",
          self.rop)
        # Nothing of a's changed: alice still has it all.
        a = self.c["alice"]
        self.assertEqual(a.ok("GetPlan", pb.GetPlanRequest(
            id=self.plan.id)).plan.name, "a's")
        got = a.ok("GetCheckpoint", pb.GetCheckpointRequest(id=self.ckp))
        self.assertEqual(got.checkpoint.status, pb.CHECKPOINT_STATUS_AVAILABLE)
        self.assertEqual([r.id for r in a.ok("ListRestores",
                                             pb.ListRestoresRequest()
                                             ).restores], [self.rst])

    def test_3_owner_sees_its_own(self):
        a = self.c["alice"]
        self.assertEqual([p.id for p in a.ok("ListPlans", pb.ListPlansRequest(
        )).plans], [self.plan.id])
        self.assertEqual([c.id for c in a.ok(
            "ListCheckpoints", pb.ListCheckpointsRequest()).checkpoints],
            [self.ckp])
        a.ok("GetFlow", pb.GetFlowRequest(plan_id=self.plan.id))
        a.ok("GetFlow", pb.GetFlowRequest(checkpoint_id=self.ckp))
        self.assertEqual(len(a.ok("ListResourceResults",
                                  pb.ListResourceResultsRequest(
                                      operation_id=self.pop)).results), 1)
        code, d, evs = a.watch(self.pop)
        self.assertEqual(code, OK, d)
        self.assertEqual(evs[-1].final_status, "available")
        # Cancelling a finished operation is refused for what it is.
        c, d, _ = a.call("CancelOperation", pl.CancelOperationRequest(
            operation_id=self.pop))
        self.assertEqual(c, grpc.StatusCode.FAILED_PRECONDITION, d)

    def test_4_admin_sees_every_tenant(self):
        ad = self.c["ada"]
        plans = {p.id: p.tenant for p in ad.ok("ListPlans",
                                               pb.ListPlansRequest()).plans}
        self.assertEqual(plans[self.plan.id], "a")
        self.assertEqual(plans[self.bplan.id], "b")
        self.assertEqual([p.id for p in ad.ok("ListPlans", pb.ListPlansRequest(
            tenant="b")).plans], [self.bplan.id])
        self.assertEqual([c.id for c in ad.ok("ListCheckpoints",
                                              pb.ListCheckpointsRequest(
                                                  tenant="a")).checkpoints],
                         [self.ckp])
        self.assertEqual(len(ad.ok("ListCheckpoints", pb.ListCheckpointsRequest(
            tenant="b")).checkpoints), 0)
        self.assertEqual(ad.ok("GetPlan", pb.GetPlanRequest(
            id=self.plan.id)).plan.tenant, "a")
        self.assertEqual(ad.ok("GetCheckpoint", pb.GetCheckpointRequest(
            id=self.ckp)).checkpoint.tenant, "a")
        self.assertEqual(ad.ok("GetRestore", pb.GetRestoreRequest(
            id=self.rst)).restore.tenant, "a")
        code, d, evs = ad.watch(self.rop)
        self.assertEqual(code, OK, d)
        # The admin's own plan is in its tenant.
        mine = ad.ok("CreatePlan", pb.CreatePlanRequest(plan=pb.Plan(
            name="ops", resources=[tp.Resource(type="t.vol", id="v9")]))).plan
        self.assertEqual(mine.tenant, "ops")
        self.hidden("alice", "GetPlan", lambda i: pb.GetPlanRequest(id=i),
                    "plan", mine.id)
        # A restore by the admin stays in the checkpoint's tenant.
        r = ad.ok("Restore", pb.RestoreRequest(checkpoint_id=self.ckp))
        code, d, evs = ad.watch(r.operation_id)
        self.assertEqual(code, OK, d)
        got = self.c["alice"].ok("GetRestore", pb.GetRestoreRequest(
            id=r.restore_id))
        self.assertEqual(got.restore.tenant, "a")
        self.hidden("bob", "GetRestore", lambda i: pb.GetRestoreRequest(id=i),
                    "restore", r.restore_id)
        # alice watches the admin's operation on her checkpoint.
        self.assertEqual(self.c["alice"].watch(r.operation_id)[0], OK)

    def test_5_cli(self):
        def smaug(who, *args):
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith("SMAUG_")}
            env["SMAUG_TOKEN"] = self.tok[who]
            return subprocess.run([ARGS.smaug, "--server", self.d.addr, *args],
                                  capture_output=True, text=True, env=env,
                                  timeout=WAIT)
        r = smaug("bob", "plan", "show", self.plan.id)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn(f"NOT_FOUND: plan {self.plan.id} not found", r.stderr)
        r = smaug("bob", "checkpoint", "delete", self.ckp)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn(f"NOT_FOUND: checkpoint {self.ckp} not found", r.stderr)
        r = smaug("bob", "plan", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(self.plan.id, r.stdout)
        self.assertIn(self.bplan.id, r.stdout)
        r = smaug("alice", "plan", "show", self.plan.id)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("a's", r.stdout)

    def test_6_migrated_rows_are_default(self):
        data = os.path.join(self.tmp, "old")
        os.makedirs(data, mode=0o700)
        shutil.copy(ARGS.schema2, os.path.join(data, "smaug.db"))
        d = start(self.tmp, data, self.tokens)
        try:
            with grpc.insecure_channel(d.addr) as ch:
                stub = pbg.OrchestratorStub(ch)
                dora = Client(stub, self.tok["dora"])
                alice = Client(stub, self.tok["alice"])
                p = dora.ok("GetPlan", pb.GetPlanRequest(id="pln-1")).plan
                self.assertEqual((p.name, p.tenant), ("v2 plan", "default"))
                self.assertEqual([x.id for x in dora.ok(
                    "ListPlans", pb.ListPlansRequest()).plans], ["pln-1"])
                c, det, _ = alice.call("GetPlan", pb.GetPlanRequest(
                    id="pln-1"))
                self.assertEqual((c, det), (NOT_FOUND,
                                            "plan pln-1 not found"))
                self.assertEqual(len(alice.ok("ListPlans",
                                              pb.ListPlansRequest()).plans), 0)
                # The operation it found running belongs to default too.
                self.assertEqual(dora.watch("op-1")[0], OK)
                self.assertEqual(alice.watch("op-1")[0], NOT_FOUND)
        finally:
            d.stop()
        self.assertEqual(d.proc.returncode, 0)

    def test_7_hostile_tenant(self):
        # A list's tenant filter that is not an id is refused, for anyone.
        for who in ("bob", "ada"):
            for method, req in (
                    ("ListPlans", pb.ListPlansRequest(tenant="../a")),
                    ("ListCheckpoints", pb.ListCheckpointsRequest(
                        tenant="a' OR 1=1 --")),
                    ("ListRestores", pb.ListRestoresRequest(
                        tenant="x" * 4096))):
                c, d, _ = self.c[who].call(method, req)
                self.assertEqual(c, grpc.StatusCode.INVALID_ARGUMENT, d)
                self.assertTrue(d.startswith("tenant: "), d)
        # `smaugd token add` refuses a tenant that is not an id.
        for bad in ("../a", "a/b", "-a", "", "a" * 129, "t\u00e9"):
            r = token_cmd("add", "--tokens-file", os.path.join(
                self.tmp, "bad-add"), "--name", "x", "--role", "operator",
                "--tenant", bad, check=False)
            self.assertNotEqual(r.returncode, 0, bad)
            self.assertIn("--tenant", r.stderr, bad)
        # A file edited by hand with one is refused at load: smaugd does
        # not start.
        h = "sha256:" + "ab" * 32
        for bad in ("../a", "a/b", "-a", "t\u00e9"):
            path = os.path.join(self.tmp, "bad-tokens")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, f"x operator {bad} {h}\n".encode())
            os.close(fd)
            r = subprocess.run([ARGS.smaugd, "--listen", "127.0.0.1:0",
                                "--data-dir", os.path.join(self.tmp, "bad"),
                                "--auth-tokens", path], capture_output=True,
                               text=True, timeout=WAIT, env=wm.asan_env())
            self.assertNotEqual(r.returncode, 0, bad)
            self.assertIn("the tenant does not match", r.stderr, bad)


if __name__ == "__main__":
    prog = unittest.main(argv=[sys.argv[0]] + _rest, exit=False,
                         verbosity=2)
    r = prog.result
    failed = len(r.failures) + len(r.errors)
    print(f"{r.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed or not r.wasSuccessful() else 0)
