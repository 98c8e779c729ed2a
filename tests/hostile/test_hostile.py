#!/usr/bin/python3
"""test_hostile.py - smaugd attacked from outside: a generic gRPC client
(Python grpcio, hand-built bytes) and the smaug CLI against a real smaugd
and a fake plugin on grpcio that lies.

Paging (class Paging):
  * two plans that are each legal but together larger than one gRPC
    message: ListPlans (and `smaug plan list`) still answer, in pages that
    each fit, and the tokens walk through every plan once;
  * page tokens that are not what smaugd writes (" 1", "+1", a number
    beyond 64 bits) answer INVALID_ARGUMENT naming page_token.

ResultPages (class ResultPages): a checkpoint and a restore of more
resources than GetCheckpoint and GetRestore carry (1000): both say
results_truncated with the right total, and ListResourceResults, by
checkpoint, restore or operation id and at any page size, joins to the
full set in (type, id) order with no resource twice and none missing,
and after a delete that fails for two resources the checkpoint's pages
carry the delete outcome; with a 64 KiB message limit, GetCheckpoint
leaves out a graph that does not fit (graph_omitted) and pages are cut to
fit, and `smaug checkpoint show` still lists every result; page tokens smaugd never wrote, page sizes over the maximum, no id or two
ids answer INVALID_ARGUMENT naming the field, unknown ids NOT_FOUND.

LyingPlugin (class LyingPlugin): a plugin whose ListDependents names
"../" ids or a cycle, whose SyncActivity sends a result then an error, or
two results, or a restored_id with "../" (or none for a restore), or
answers over smaugd's receive limit or with a status message over the
metadata limit (failed at once, while its own RESOURCE_EXHAUSTED is
retried), or fails with a long message of two-byte characters (which
smaugd's bounded reasons must not cut in two): the operation ends with a reason naming the plugin and the field,
nothing bad is stored, every reader still decodes it, smaugd stays up.

Parameters (class Parameters): through the smaug CLI, restore parameters
that a plugin's schema declares integer but that are written " 5", "+5",
"0x10" or "1e3" answer INVALID_ARGUMENT naming the parameter, before any
restore starts (a plugin would refuse them later, mid-restore).

Cancel (class Cancel): a cancel reason longer than 255 bytes whose cut
would split a UTF-8 character is refused (INVALID_ARGUMENT naming
reason), not cut into invalid UTF-8 that then breaks every reader of the
checkpoint and its events; a valid one reaches the plugin unchanged, and
the checkpoint, its events (grpcio) and `smaug -o json checkpoint show`
all decode.

Refusals (class Refusals): a plan that lists the same edge twice, and a
plugin whose GetPluginInfo declares an operation kind 0 or 77, are
refused with INVALID_ARGUMENT naming the field (and the plugin address).
GetFlow of a checkpoint (or plan) whose type's plugin was unregistered is
FAILED_PRECONDITION naming the type, not INVALID_ARGUMENT.

FullDisk (class FullDisk): the data dir on a 3 MiB tmpfs (the test runs
as root) that a plugin's large results fill: every protect ends `error`
with "no space left on device", and no write of a batch that SQLite rolled
back is committed on its own (no "UNIQUE constraint failed" on events
written again, no COMMIT without a transaction).

usage: test_hostile.py --smaugd PATH --smaug PATH --proto-dir DIR [class]
"""
import os
import subprocess
import threading
import sys

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile  # noqa: E402
from hostile import WithSmaugd, pb  # noqa: E402


class Paging(WithSmaugd):

    def big_plan(self, name, n, idlen):
        """A plan of n resources whose ids are idlen bytes long."""
        o, t = pb["o"], pb["t"]
        ty = hostile.FakePlugin.TYPE
        res = [t.Resource(type=ty, id=("%d-" % i).ljust(idlen, "x"))
               for i in range(n)]
        return self.smaugd.call("CreatePlan", o.CreatePlanRequest(
            plan=o.Plan(name=name, resources=res)), timeout=60).plan

    def test_plans_larger_than_a_message_are_paged(self):
        o = pb["o"]
        self.smaugd.register(self.fake().address)
        # About 2.6 MB each: both fit one request; together they do not
        # fit one answer (4 MiB).
        ids = {self.big_plan("big%d" % k, 20000, 120).id for k in range(2)}
        ids.add(self.smaugd.plan([(hostile.FakePlugin.TYPE, "r1")]).id)
        seen, token, pages = [], "", 0
        while True:
            resp = self.smaugd.call("ListPlans", o.ListPlansRequest(
                page_token=token), timeout=60)
            pages += 1
            self.assertGreater(len(resp.plans), 0, "an empty page")
            seen += [p.id for p in resp.plans]
            token = resp.next_page_token
            if not token:
                break
            self.assertLess(pages, 10, "the pages do not end")
        self.assertEqual(sorted(seen), sorted(ids), "plans lost or repeated")
        self.assertGreater(pages, 1)
        # The CLI lists them too (it follows the tokens).
        env = dict(os.environ, SMAUG_SERVER="unix:" + self.smaugd.sock)
        out = subprocess.run([hostile.ARGS.smaug, "plan", "list"], env=env,
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        for k in range(2):
            self.assertIn("big%d" % k, out.stdout)
        self.assertAlive()

    def test_page_tokens_smaugd_never_wrote_are_refused(self):
        o = pb["o"]
        reqs = {"ListPlans": lambda tok: o.ListPlansRequest(page_token=tok),
                "ListCheckpoints":
                    lambda tok: o.ListCheckpointsRequest(page_token=tok),
                "ListRestores":
                    lambda tok: o.ListRestoresRequest(page_token=tok)}
        for method, req in reqs.items():
            for tok in (" 1", "+1", "\t7", "99999999999999999999999",
                        "18446744073709551616"):
                with self.subTest(method=method, token=tok):
                    err = self.smaugd.error(method, req(tok))
                    self.assertStatus(err, grpc.StatusCode.INVALID_ARGUMENT,
                                      "page_token: invalid token")
            # The largest token smaugd could write is still a token.
            self.smaugd.call(method, req("18446744073709551615"))
        self.assertAlive()


class ResultPages(WithSmaugd):
    """Results of more resources than one answer carries."""
    N = 1100  # over the 1000 that GetCheckpoint and GetRestore carry

    def pages(self, size, **ids):
        """Every page of ListResourceResults; returns the (type, id) keys
        in order, and the results."""
        o = pb["o"]
        keys, results, token, calls = [], [], "", 0
        while True:
            resp = self.smaugd.call("ListResourceResults",
                                    o.ListResourceResultsRequest(
                                        page_size=size, page_token=token,
                                        **ids))
            calls += 1
            self.assertLessEqual(len(resp.results), size or 500)
            self.assertGreater(len(resp.results), 0, "an empty page")
            keys += [(r.resource.type, r.resource.id) for r in resp.results]
            results += list(resp.results)
            token = resp.next_page_token
            if not token:
                return keys, results
            self.assertLess(calls, 2 * self.N, "the pages do not end")

    def assertWhole(self, keys, want):
        self.assertEqual(len(keys), len(set(keys)), "a resource twice")
        self.assertEqual(keys, sorted(keys), "not in (type, id) order")
        self.assertEqual(set(keys), want, "resources missing or unknown")

    def test_pages_join_to_every_result_once(self):
        o = pb["o"]
        plugin = self.fake()
        self.smaugd.register(plugin.address)
        ty = hostile.FakePlugin.TYPE
        want = {(ty, "r%04d" % i) for i in range(self.N)}
        plan = self.smaugd.plan(sorted(want))
        started = self.smaugd.protect(plan.id)
        cid = started.checkpoint_id
        self.smaugd.wait_checkpoint(cid, o.CHECKPOINT_STATUS_PROTECTING,
                                    timeout=120)
        got = self.smaugd.call("GetCheckpoint",
                               o.GetCheckpointRequest(id=cid))
        self.assertEqual(got.checkpoint.status, o.CHECKPOINT_STATUS_AVAILABLE)
        self.assertTrue(got.results_truncated)
        self.assertEqual(got.results_total, self.N)
        self.assertEqual(len(got.checkpoint.results), 1000)
        # The inline results are the first page of the same order.
        first = [(r.resource.type, r.resource.id)
                 for r in got.checkpoint.results]
        for size in (7, 0, 1000, 5000):
            with self.subTest(page_size=size):
                keys, _ = self.pages(size, checkpoint_id=cid)
                self.assertWhole(keys, want)
                self.assertEqual(keys[:1000], first)
        keys, _ = self.pages(333, operation_id=started.operation_id)
        self.assertWhole(keys, want)

        rs = self.smaugd.call("Restore", o.RestoreRequest(checkpoint_id=cid))
        r = self.smaugd.wait_restore(rs.restore_id, timeout=120)
        self.assertEqual(r.status, o.RESTORE_STATUS_SUCCESS, r.reason)
        got = self.smaugd.call("GetRestore",
                               o.GetRestoreRequest(id=rs.restore_id))
        self.assertTrue(got.results_truncated)
        self.assertEqual(got.results_total, self.N)
        keys, results = self.pages(250, restore_id=rs.restore_id)
        self.assertWhole(keys, want)
        for res in results:
            self.assertEqual(res.restored_id, res.resource.id + "-restored")
        keys, _ = self.pages(0, operation_id=rs.operation_id)
        self.assertWhole(keys, want)

        # After a delete, the checkpoint's pages carry the delete outcome:
        # two resources, on two different pages, fail to be deleted.
        t = pb["t"]
        sync, refused = plugin.sync, {"r0005", "r1050"}

        def refusing_sync(req, ctx):
            if req.operation.kind == t.OPERATION_KIND_DELETE and \
                    req.resource.id in refused:
                ctx.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "will not delete " + req.resource.id)
            yield from sync(req, ctx)
        plugin.sync = refusing_sync
        self.smaugd.call("DeleteCheckpoint",
                         o.DeleteCheckpointRequest(id=cid))
        ckp = self.smaugd.wait_checkpoint(cid, o.CHECKPOINT_STATUS_DELETING,
                                          timeout=120)
        self.assertEqual(ckp.status, o.CHECKPOINT_STATUS_ERROR_DELETING)
        keys, results = self.pages(7, checkpoint_id=cid)
        self.assertWhole(keys, want)
        failed = {r.resource.id for r in results
                  if r.status == t.TASK_STATUS_FAILED}
        self.assertEqual(failed, refused)
        for r in results:
            if r.resource.id in refused:
                self.assertIn("will not delete", r.reason)
        self.assertAlive()

    def test_small_messages_leave_out_the_graph_and_cut_pages(self):
        """smaugd with a 64 KiB message limit and a checkpoint of 2001
        discovered resources: GetCheckpoint leaves out the graph (140 KB)
        and says so, pages are cut to fit, and `smaug checkpoint show`
        still lists every resource."""
        import tempfile
        o, t = pb["o"], pb["t"]
        self.smaugd.stop()
        self.smaugd = hostile.Smaugd(tempfile.mkdtemp(dir=self.dir), extra=[
            "--max-message-bytes", "65536"])
        self.addCleanup(self.smaugd.stop)
        plugin = self.fake()
        kids = [(plugin.TYPE, "kid-%04d" % i) for i in range(2000)]
        plugin.dependents = lambda r: kids if r.id == "root" else []
        self.smaugd.register(plugin.address)
        plan = self.smaugd.plan([(plugin.TYPE, "root")])
        cid = self.smaugd.protect(plan.id).checkpoint_id
        self.smaugd.wait_checkpoint(cid, o.CHECKPOINT_STATUS_PROTECTING,
                                    timeout=120)
        got = self.smaugd.call("GetCheckpoint", o.GetCheckpointRequest(id=cid))
        self.assertEqual(got.checkpoint.status, o.CHECKPOINT_STATUS_AVAILABLE)
        self.assertTrue(got.graph_omitted)
        self.assertEqual(len(got.checkpoint.resources), 0)
        self.assertEqual(len(got.checkpoint.edges), 0)
        self.assertTrue(got.results_truncated)
        self.assertEqual(got.results_total, 2001)
        self.assertGreater(len(got.checkpoint.results), 0)
        self.assertLessEqual(got.ByteSize(), 65536)
        keys, _ = self.pages(5000, checkpoint_id=cid)
        self.assertWhole(keys, set(kids) | {(plugin.TYPE, "root")})
        env = dict(os.environ, SMAUG_SERVER="unix:" + self.smaugd.sock)
        out = subprocess.run([hostile.ARGS.smaug, "checkpoint", "show", cid],
                             env=env, capture_output=True, text=True,
                             timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        rows = [ln for ln in out.stdout.splitlines()
                if ln.startswith(plugin.TYPE + "#")]
        self.assertEqual(len(rows), 2001)
        self.assertAlive()

    def test_hostile_requests_are_refused(self):
        o = pb["o"]
        self.smaugd.register(self.fake().address)
        ty = hostile.FakePlugin.TYPE
        plan = self.smaugd.plan([(ty, "a"), (ty, "b")])
        cid = self.smaugd.protect(plan.id).checkpoint_id
        self.smaugd.wait_checkpoint(cid, o.CHECKPOINT_STATUS_PROTECTING)
        bad = grpc.StatusCode.INVALID_ARGUMENT
        req = o.ListResourceResultsRequest
        cases = [
            (req(checkpoint_id=cid, page_size=5001), bad, "page_size"),
            (req(checkpoint_id=cid, page_size=0xffffffff), bad, "page_size"),
            (req(), bad, "exactly one"),
            (req(checkpoint_id=cid, restore_id="rst-x"), bad, "exactly one"),
            (req(checkpoint_id="x" * 300), bad, "checkpoint_id"),
            (req(restore_id="x" * 300), bad, "restore_id"),
            (req(operation_id="x" * 300), bad, "operation_id"),
            (req(checkpoint_id="ckp-nope"), grpc.StatusCode.NOT_FOUND,
             "ckp-nope"),
            (req(restore_id="rst-nope"), grpc.StatusCode.NOT_FOUND,
             "rst-nope"),
            (req(operation_id="op-nope"), grpc.StatusCode.NOT_FOUND,
             "op-nope"),
        ]
        for tok in ("garbage", "#", "a#", "#b", "../x#y", "a#b#c", " a#b",
                    "a#b ", "x" * 300 + "#y", "a#" + "y" * 129, "%00#a",
                    "18446744073709551615"):
            cases.append((req(checkpoint_id=cid, page_token=tok), bad,
                           "page_token"))
        for r, code, needle in cases:
            with self.subTest(req=str(r)[:80]):
                err = self.smaugd.error("ListResourceResults", r)
                self.assertStatus(err, code, needle)
        # A token with a NUL or bytes that are not UTF-8, on the wire.
        for tok in (b"a\x00#b", b"\xff#b"):
            wire = req(checkpoint_id=cid).SerializeToString() + \
                bytes([0x2a, len(tok)]) + tok
            err = self.smaugd.error("ListResourceResults", wire, raw=True)
            self.assertEqual(err.code(), bad, err.details())
        # A well-formed token continues after the resource it names, even
        # one that does not exist; past the end is an empty last page.
        resp = self.smaugd.call("ListResourceResults", req(
            checkpoint_id=cid, page_token=ty + "#a"))
        self.assertEqual([r.resource.id for r in resp.results], ["b"])
        self.assertEqual(resp.next_page_token, "")
        resp = self.smaugd.call("ListResourceResults", req(
            checkpoint_id=cid, page_token="zzz#zzz"))
        self.assertEqual(len(resp.results), 0)
        self.assertEqual(resp.next_page_token, "")
        self.assertAlive()


class LyingPlugin(WithSmaugd):
    TY = hostile.FakePlugin.TYPE

    def protect(self, plugin, resources=(("hostile.thing", "r1"),)):
        o = pb["o"]
        self.smaugd.register(plugin.address)
        plan = self.smaugd.plan(list(resources))
        ref = self.smaugd.protect(plan.id)
        return self.smaugd.wait_checkpoint(ref.checkpoint_id,
                                           o.CHECKPOINT_STATUS_PROTECTING)

    def assertFailedNaming(self, ckp, plugin, *needles):
        o = pb["o"]
        self.assertEqual(ckp.status, o.CHECKPOINT_STATUS_ERROR, str(ckp))
        failed = [r for r in ckp.results
                  if r.status == pb["t"].TASK_STATUS_FAILED]
        self.assertTrue(failed, str(ckp))
        for n in ("plugin %s (%s)" % (plugin.name, plugin.address),) + needles:
            self.assertIn(n, failed[0].reason)
        self.assertAlive()

    def test_dependents_with_dotdot_fail_the_resource(self):
        plugin = self.fake()
        plugin.dependents = lambda r: [(self.TY, "../../../var/evil")]
        ckp = self.protect(plugin)
        self.assertFailedNaming(ckp, plugin, "dependents[0].id",
                                "does not match")
        self.assertEqual(plugin.count("SyncActivity"), 0)
        self.assertEqual(plugin.count("ParallelActivity"), 0)

    def test_cycle_through_dependents_runs_nothing(self):
        o = pb["o"]
        plugin = self.fake()
        plugin.dependents = lambda r: [
            (self.TY, {"r1": "r2", "r2": "r3", "r3": "r1"}[r.id])]
        ckp = self.protect(plugin)
        self.assertEqual(ckp.status, o.CHECKPOINT_STATUS_ERROR, str(ckp))
        self.assertIn("cycle", ckp.reason)
        self.assertIn("hostile.thing#r3 -> hostile.thing#r1", ckp.reason)
        self.assertEqual(len(ckp.results), 3, str(ckp))
        self.assertEqual(plugin.count("ParallelActivity"), 0)
        self.assertAlive()

    def test_result_then_error_fails_the_resource(self):
        p = pb["p"]

        def sync(req, ctx):
            yield p.SyncActivityResponse(result=p.SyncResult(
                metadata={"k": "v"}))
            ctx.abort(grpc.StatusCode.INTERNAL, "boom after the result")
        plugin = self.fake()
        plugin.sync = sync
        ckp = self.protect(plugin)
        self.assertFailedNaming(ckp, plugin, "boom after the result")
        self.assertEqual(dict(ckp.results[0].metadata), {})

    def test_two_results_fail_the_resource(self):
        p = pb["p"]

        def sync(req, ctx):
            for m in ("one", "two"):
                yield p.SyncActivityResponse(result=p.SyncResult(message=m))
        plugin = self.fake()
        plugin.sync = sync
        self.assertFailedNaming(self.protect(plugin), plugin,
                                "a second result in one stream")

    def test_long_error_messages_are_not_cut_into_bad_utf8(self):
        o = pb["o"]

        def sync(req, ctx):  # r0..r3: the cut lands on every byte offset
            n = int(req.resource.id[1:])
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT,
                      "a" * n + "\u00e9" * 1150)
            yield
        plugin = self.fake()
        plugin.sync = sync
        ckp = self.protect(plugin, [(self.TY, "r%d" % n) for n in range(4)])
        # It decoded (Python refuses invalid UTF-8); every reason is cut.
        self.assertEqual(ckp.status, o.CHECKPOINT_STATUS_ERROR, str(ckp))
        self.assertEqual(len(ckp.results), 4)
        for r in ckp.results:
            self.assertIn("\u00e9\u00e9", r.reason)
            self.assertLess(len(r.reason.encode()), 2300)
        self.assertIn("4 of 4 resources failed", ckp.reason)
        events = list(self.smaugd.watch(ckp.operation_id, timeout=10))
        self.assertEqual(events[-1].event.kind, o.EVENT_KIND_OPERATION_FINISHED)
        env = dict(os.environ, SMAUG_SERVER="unix:" + self.smaugd.sock)
        out = subprocess.run([hostile.ARGS.smaug, "-o", "json", "checkpoint",
                              "show", ckp.id], env=env, capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertAlive()

    def test_long_list_dependents_errors_are_not_cut_into_bad_utf8(self):
        o = pb["o"]
        plugin = self.fake()
        self.smaugd.register(plugin.address)
        for n in range(2):  # the cut lands on either byte of a character
            def fail(req, ctx, n=n):
                ctx.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "a" * n + "\u00e9" * 1150)
            plugin._dependents = fail
            plan = self.smaugd.plan([(self.TY, "r1")])
            ref = self.smaugd.protect(plan.id)
            ckp = self.smaugd.wait_checkpoint(ref.checkpoint_id,
                                              o.CHECKPOINT_STATUS_PROTECTING)
            self.assertEqual(ckp.status, o.CHECKPOINT_STATUS_ERROR, str(ckp))
            self.assertIn("ListDependents of hostile.thing#r1 failed: plugin "
                          "%s (%s)" % (plugin.name, plugin.address),
                          ckp.reason)
            self.assertIn("\u00e9\u00e9", ckp.results[0].reason)
        self.assertAlive()

    def test_long_get_plugin_info_errors_are_not_cut_into_bad_utf8(self):
        for n in range(2):
            plugin = self.fake()

            def svc(details, orig=plugin.service, n=n):
                if details.method.endswith("/GetPluginInfo"):
                    return grpc.unary_unary_rpc_method_handler(
                        lambda req, ctx: ctx.abort(
                            grpc.StatusCode.FAILED_PRECONDITION,
                            "b" * n + "\u00e9" * 1150))
                return orig(details)
            plugin.service = svc
            err = self.smaugd.error("RegisterPlugin", pb["o"].RegisterPluginRequest(
                address=plugin.address))
            self.assertStatus(err, grpc.StatusCode.FAILED_PRECONDITION,
                              plugin.address, "\u00e9\u00e9")
            # grpcio shows a status message that is not UTF-8 as Latin-1.
            self.assertNotIn("\u00c3", err.details())
        self.assertAlive()

    def restore_failing(self, result, *needles):
        """Protects with a fake plugin, then restores with its Sync
        answering `result` (a SyncResult): the restore must fail that
        resource with a reason naming the plugin and `needles`."""
        o, p, t = pb["o"], pb["p"], pb["t"]
        plugin = self.fake()
        ckp = self.protect(plugin)
        self.assertEqual(ckp.status, o.CHECKPOINT_STATUS_AVAILABLE, str(ckp))

        def sync(req, ctx):
            yield p.SyncActivityResponse(result=result)
        plugin.sync = sync
        rr = self.smaugd.call("Restore",
                              o.RestoreRequest(checkpoint_id=ckp.id))
        r = self.smaugd.wait_restore(rr.restore_id)
        self.assertEqual(r.status, o.RESTORE_STATUS_FAIL, str(r))
        self.assertEqual(r.results[0].status, t.TASK_STATUS_FAILED)
        self.assertEqual(r.results[0].restored_id, "")
        for n in ("plugin %s (%s)" % (plugin.name, plugin.address),) + needles:
            self.assertIn(n, r.results[0].reason)
        self.assertAlive()
        return plugin

    def test_restored_id_with_dotdot_fails_the_restore(self):
        self.restore_failing(pb["p"].SyncResult(restored_id="../../etc/x"),
                             "result.restored_id", "does not match")

    def test_restore_without_restored_id_fails_the_resource(self):
        t = pb["t"]
        plugin = self.restore_failing(
            pb["p"].SyncResult(metadata={"k": "v"},
                               message="restored, id forgotten"),
            "result.restored_id", "required for a restore")
        # Not retried: one restore Sync call.
        self.assertEqual(sum(
            1 for n, m in plugin.calls if n == "SyncActivity" and
            m.operation.kind == t.OPERATION_KIND_RESTORE), 1)

    def test_answer_over_the_receive_limit_is_not_retried(self):
        o, p, t = pb["o"], pb["p"], pb["t"]
        plugin = self.fake()
        big = os.urandom(5 << 20)  # over smaugd's 4 MiB receive limit

        def parallel(req, ctx):
            yield p.ParallelActivityResponse(result=p.ParallelResult(
                state=big, message="too big"))
        plugin.parallel = parallel
        ckp = self.protect(plugin)
        self.assertFailedNaming(ckp, plugin, "protocol violation",
                                "larger than the receive limit")
        # Failed at once: one attempt, not the whole retry budget.
        self.assertEqual(plugin.count("ParallelActivity"), 1)
        self.assertEqual(plugin.count("SyncActivity"), 0)

    def test_status_message_over_the_metadata_limit_is_not_retried(self):
        plugin = self.fake()

        def parallel(req, ctx):
            ctx.abort(grpc.StatusCode.INTERNAL, "x" * 40000)
            yield
        plugin.parallel = parallel
        ckp = self.protect(plugin)
        self.assertFailedNaming(ckp, plugin, "protocol violation",
                                "metadata size exceeds limit")
        self.assertEqual(plugin.count("ParallelActivity"), 1)

    def test_plugins_own_resource_exhausted_is_retried(self):
        o, p = pb["o"], pb["p"]
        plugin = self.fake()
        first = threading.Event()

        def parallel(req, ctx):
            if not first.is_set():
                first.set()
                ctx.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy, later")
            yield p.ParallelActivityResponse(result=p.ParallelResult(
                message="ok"))
        plugin.parallel = parallel
        ckp = self.protect(plugin)
        self.assertEqual(ckp.status, o.CHECKPOINT_STATUS_AVAILABLE, str(ckp))
        self.assertEqual(plugin.count("ParallelActivity"), 2)
        self.assertAlive()


class Parameters(WithSmaugd):
    SCHEMA = ('{"type": "object", "properties": {"delay_ms": '
              '{"type": "integer", "minimum": 0, "maximum": 600000}, '
              '"ratio": {"type": "number"}}}')

    def smaug(self, *args):
        env = dict(os.environ, SMAUG_SERVER="unix:" + self.smaugd.sock)
        return subprocess.run([hostile.ARGS.smaug] + list(args), env=env,
                              capture_output=True, text=True, timeout=60)

    def test_numbers_a_plugin_would_refuse_are_refused_first(self):
        o = pb["o"]
        plugin = self.fake()
        info = plugin.info

        def with_schema():
            i = info()
            i.types[0].options_schema = self.SCHEMA
            i.types[0].restore_schema = self.SCHEMA
            return i
        plugin.info = with_schema
        self.smaugd.register(plugin.address)
        plan = self.smaugd.plan([(hostile.FakePlugin.TYPE, "r1")])
        ref = self.smaugd.protect(plan.id)
        ckp = self.smaugd.wait_checkpoint(ref.checkpoint_id,
                                          o.CHECKPOINT_STATUS_PROTECTING)
        self.assertEqual(ckp.status, o.CHECKPOINT_STATUS_AVAILABLE, str(ckp))
        ty = hostile.FakePlugin.TYPE
        for key, value in (("delay_ms", " 5"), ("delay_ms", "+5"),
                           ("delay_ms", "5 "), ("delay_ms", "0x10"),
                           ("delay_ms", "1e3"), ("ratio", " 0.5"),
                           ("ratio", "+1"), ("ratio", "0x1p3"),
                           ("ratio", "inf")):
            with self.subTest(key=key, value=value):
                out = self.smaug("restore", ckp.id, "-p",
                                 "%s:%s=%s" % (ty, key, value))
                self.assertNotEqual(out.returncode, 0, out.stdout)
                self.assertIn("INVALID_ARGUMENT: parameters[%s].%s: must be "
                              "of type" % (ty, key), out.stderr)
        self.assertEqual(len(self.smaugd.call("ListRestores", o.ListRestoresRequest(
            checkpoint_id=ckp.id)).restores), 0, "a restore started")
        # What a JSON number looks like still passes.
        out = self.smaug("restore", ckp.id, "-p", "%s:delay_ms=5" % ty,
                         "-p", "%s:ratio=-0.5" % ty)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertAlive()


class Cancel(WithSmaugd):

    def test_cancel_reasons_stay_valid_utf8(self):
        import threading
        o, p = pb["o"], pb["p"]
        plugin = self.fake()
        gate = threading.Event()
        self.addCleanup(gate.set)

        def sync(req, ctx):
            gate.wait(30)
            yield p.SyncActivityResponse(result=p.SyncResult())
        plugin.sync = sync
        self.smaugd.register(plugin.address)
        plan = self.smaugd.plan([(hostile.FakePlugin.TYPE, "r1")])
        ref = self.smaugd.protect(plan.id)
        self.assertTrue(plugin.event("SyncActivity").wait(10))
        cancel = p.CancelOperationRequest(operation_id=ref.operation_id,
                                          reason="x" * 254 + "\u00e9\u00e9")
        err = self.smaugd.error("CancelOperation", cancel)
        self.assertStatus(err, grpc.StatusCode.INVALID_ARGUMENT,
                          "reason: 258 bytes, more than the limit of 255")
        self.assertEqual(self.smaugd.checkpoint(ref.checkpoint_id).status,
                         o.CHECKPOINT_STATUS_PROTECTING)
        reason = "stop \u00e9" + "\u00e9" * 120  # 247 bytes
        self.smaugd.call("CancelOperation", p.CancelOperationRequest(
            operation_id=ref.operation_id, reason=reason))
        self.assertTrue(plugin.cancelled.wait(10))
        self.assertEqual(plugin.cancels[0].reason, reason)
        gate.set()
        ckp = self.smaugd.wait_checkpoint(ref.checkpoint_id,
                                          o.CHECKPOINT_STATUS_PROTECTING)
        self.assertEqual(ckp.status, o.CHECKPOINT_STATUS_ERROR, str(ckp))
        self.assertEqual(ckp.reason, "cancelled: " + reason)
        events = list(self.smaugd.watch(ref.operation_id, timeout=10))
        self.assertEqual(events[-1].event.message, "cancelled: " + reason)
        env = dict(os.environ, SMAUG_SERVER="unix:" + self.smaugd.sock)
        out = subprocess.run([hostile.ARGS.smaug, "-o", "json", "checkpoint",
                              "show", ckp.id], env=env, capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("stop \u00e9", out.stdout)
        self.assertAlive()


class Refusals(WithSmaugd):
    """Requests and plugin answers that are well-formed protobuf but
    wrong: each is refused at the door, naming the field."""

    def test_duplicate_plan_edges_are_refused(self):
        o, t = pb["o"], pb["t"]
        ty = hostile.FakePlugin.TYPE
        self.smaugd.register(self.fake().address)
        res = [t.Resource(type=ty, id=i) for i in ("a", "b", "c")]
        edge = dict(parent_type=ty, parent_id="a", child_type=ty,
                    child_id="b")
        edges = [t.ResourceEdge(**edge),
                 t.ResourceEdge(parent_type=ty, parent_id="a",
                                child_type=ty, child_id="c"),
                 t.ResourceEdge(**edge)]
        err = self.smaugd.error("CreatePlan", o.CreatePlanRequest(
            plan=o.Plan(name="dup", resources=res, edges=edges)))
        self.assertStatus(err, grpc.StatusCode.INVALID_ARGUMENT,
                          "plan.edges[2]", "duplicate edge",
                          "%s#a -> %s#b" % (ty, ty), "plan.edges[0]")
        self.assertEqual(len(self.smaugd.call(
            "ListPlans", o.ListPlansRequest()).plans), 0)
        # The same edges once each make a plan.
        self.smaugd.call("CreatePlan", o.CreatePlanRequest(
            plan=o.Plan(name="ok", resources=res, edges=edges[:2])))
        self.assertAlive()

    def test_unknown_operation_kinds_are_refused_at_registration(self):
        p = pb["p"]
        for kind in (0, 77):
            with self.subTest(kind=kind):
                plugin = self.fake()
                ops = [p.OperationSupport(kind=1, parallel=True, sync=True),
                       p.OperationSupport(kind=kind, sync=True)]
                plugin.info = lambda: p.GetPluginInfoResponse(
                    name=plugin.name, version="1", protocol_major=1,
                    types=[p.ResourceTypeInfo(type=plugin.TYPE,
                                              operations=ops)])
                err = self.smaugd.error("RegisterPlugin",
                                        pb["o"].RegisterPluginRequest(
                                            address=plugin.address))
                self.assertStatus(err, grpc.StatusCode.INVALID_ARGUMENT,
                                  plugin.address,
                                  "types[0].operations[1].kind",
                                  "unknown operation kind %d" % kind)
        resp = self.smaugd.call("ListPlugins", pb["o"].ListPluginsRequest())
        self.assertEqual(len(resp.plugins), 0, str(resp))
        self.assertAlive()

    def test_flow_of_a_checkpoint_whose_plugin_left(self):
        o, t = pb["o"], pb["t"]
        plugin = self.fake()
        self.smaugd.register(plugin.address)
        plan = self.smaugd.plan([(plugin.TYPE, "r1")])
        ref = self.smaugd.protect(plan.id)
        ckp = self.smaugd.wait_checkpoint(ref.checkpoint_id,
                                          o.CHECKPOINT_STATUS_PROTECTING)
        self.assertEqual(ckp.status, o.CHECKPOINT_STATUS_AVAILABLE, str(ckp))
        self.smaugd.call("UnregisterPlugin",
                         o.UnregisterPluginRequest(name=plugin.name))
        for kind in (t.OPERATION_KIND_RESTORE, t.OPERATION_KIND_DELETE):
            with self.subTest(kind=kind):
                err = self.smaugd.error("GetFlow", o.GetFlowRequest(
                    checkpoint_id=ckp.id, kind=kind))
                self.assertStatus(err, grpc.StatusCode.FAILED_PRECONDITION,
                                  "no plugin for resource type",
                                  plugin.TYPE + "#r1")
        # The plan's flow too: the stored plan is valid, the plugin gone.
        err = self.smaugd.error("GetFlow", o.GetFlowRequest(plan_id=plan.id))
        self.assertStatus(err, grpc.StatusCode.FAILED_PRECONDITION,
                          plugin.TYPE)
        # Through the CLI.
        env = dict(os.environ, SMAUG_SERVER="unix:" + self.smaugd.sock)
        out = subprocess.run([hostile.ARGS.smaug, "flow", ckp.id], env=env,
                             capture_output=True, text=True, timeout=60)
        self.assertNotEqual(out.returncode, 0, out.stdout)
        self.assertIn(plugin.TYPE + "#r1", out.stderr)
        self.assertNotIn("INVALID_ARGUMENT", out.stderr)
        self.assertAlive()


class FullDisk(WithSmaugd):

    def setUp(self):
        import tempfile
        self.dir = tempfile.mkdtemp(dir=hostile.ARGS.tmp)
        data = os.path.join(self.dir, "data")
        os.mkdir(data)
        # Not a skip: a test that cannot mount would prove nothing.
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs",
                        data], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", data])
        self.smaugd = hostile.Smaugd(self.dir, data=data)
        self.addCleanup(self.assertNoSanitizerReport)
        self.addCleanup(self.smaugd.stop)

    def test_a_full_disk_fails_operations_with_enospc(self):
        o, p = pb["o"], pb["p"]
        plugin = self.fake()

        def sync(req, ctx):  # about 3.6 MB of metadata per resource
            yield p.SyncActivityResponse(result=p.SyncResult(metadata={
                "k%d" % i: "v" * 60000 for i in range(60)}))
        plugin.sync = sync
        self.smaugd.register(plugin.address)
        plan = self.smaugd.plan([(hostile.FakePlugin.TYPE, "r%d" % i)
                                 for i in range(10)])
        refs = [self.smaugd.protect(plan.id) for _ in range(3)]
        for ref in refs:
            ckp = self.smaugd.wait_checkpoint(
                ref.checkpoint_id, o.CHECKPOINT_STATUS_PROTECTING, 60)
            self.assertEqual(ckp.status, o.CHECKPOINT_STATUS_ERROR, str(ckp))
            self.assertIn("no space left on device", ckp.reason)
        logs = self.smaugd.logs()
        self.assertIn("database or disk is full", logs)
        self.assertNotIn("UNIQUE constraint failed", logs)
        self.assertNotIn("no transaction is active", logs)
        self.assertAlive()


if __name__ == "__main__":
    sys.exit(hostile.main(sys.argv))
