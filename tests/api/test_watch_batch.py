#!/usr/bin/python3
"""Batched watch streams (WatchOperationRequest.max_batch) over the wire,
through grpcio.

smaugd and the fake plugin are started, and a protect of 500 volumes is
run to its end (about 3,000 events). Checked:
  * a watcher that asks for batches gets every event exactly once, in
    order, in `events` (never `event`), several to a message, from the
    start and from an `after_sequence`;
  * one that does not ask gets one event per message in `event`;
  * hostile max_batch: 1 gives one event per message in `events`;
    4294967295, and a varint too large for a uint32 sent as raw bytes, are
    capped at 64 events per message (protobuf reads the low 32 bits of
    the varint);
  * a batched watcher of a running protect gets every event once, in
    order, ending with the final one.

    test_watch_batch.py --smaugd bin/smaugd --plugin bin/fake-plugin \
        --gen share/network-py/gen

Prints "N passed, N failed" last and exits non-zero on any failure.
"""

import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Parses the same arguments and imports the generated stubs.
import test_watch_memory as wm  # noqa: E402
from test_watch_memory import WAIT, grpc, pb, pbg, tp  # noqa: E402

CAP = 64  # smaugd's cap of max_batch (docs/operations.md)
METHOD = "/smaug.v1.Orchestrator/WatchOperation"


class WatchBatch(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.plug = wm.Smaugd(None, os.path.join(cls.tmp, "plugin.log"),
                             [wm.ARGS.plugin, "--types", "t.vol"])
        cls.d = wm.Smaugd(os.path.join(cls.tmp, "data"),
                          os.path.join(cls.tmp, "smaugd.log"))
        cls.chan = grpc.insecure_channel(cls.d.addr)
        cls.stub = pbg.OrchestratorStub(cls.chan)
        # RegisterPlugin answers once the plugin is registered and
        # available, so protects can start at once.
        cls.stub.RegisterPlugin(
            pb.RegisterPluginRequest(address=cls.plug.addr), timeout=WAIT)
        cls.done = cls.protect(500)
        cls.events = 0
        for r in cls.stub.WatchOperation(pb.WatchOperationRequest(
                operation_id=cls.done), timeout=WAIT):  # to its end
            cls.events = r.event.sequence

    @classmethod
    def tearDownClass(cls):
        cls.chan.close()
        cls.d.stop()
        cls.plug.stop()
        # A clean exit on SIGTERM (under ASan: no leak, no error report).
        if cls.d.proc.returncode != 0:
            raise AssertionError(f"smaugd exited {cls.d.proc.returncode}: "
                                 + open(cls.d.log).read()[-4000:])
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def protect(cls, n):
        """Starts a protect of `n` volumes; returns its operation id."""
        vols = [tp.Resource(type="t.vol", id=f"v{i}") for i in range(n)]
        plan_id = cls.stub.CreatePlan(pb.CreatePlanRequest(
            plan=pb.Plan(name="batch", resources=vols)), timeout=WAIT).plan.id
        return cls.stub.Protect(pb.ProtectRequest(plan_id=plan_id),
                                timeout=WAIT).operation_id

    def messages(self, op, after=0, max_batch=0):
        return list(self.stub.WatchOperation(
            pb.WatchOperationRequest(operation_id=op, after_sequence=after,
                                     max_batch=max_batch), timeout=WAIT))

    def flatten(self, msgs, batched, limit=CAP):
        """The events of `msgs`, each message checked for its shape."""
        evs = []
        for i, m in enumerate(msgs):
            if batched:
                self.assertFalse(m.HasField("event"), f"message {i}")
                self.assertTrue(1 <= len(m.events) <= limit,
                                f"message {i}: {len(m.events)} events")
                evs.extend(m.events)
            else:
                self.assertTrue(m.HasField("event"), f"message {i}")
                self.assertEqual(len(m.events), 0, f"message {i}")
                evs.append(m.event)
        return evs

    def test_1_batched_from_start_and_after(self):
        self.assertGreater(self.events, 6 * 500)
        for after in (0, 1234, self.events - 1):
            msgs = self.messages(self.done, after, CAP)
            evs = self.flatten(msgs, True)
            self.assertEqual([e.sequence for e in evs],
                             list(range(after + 1, self.events + 1)))
            self.assertEqual(evs[-1].final_status, "available")
            # All committed: full messages but the last.
            self.assertEqual(len(msgs), -(-(self.events - after) // CAP))
        self.assertEqual(self.messages(self.done, self.events, CAP), [])

    def test_2_unbatched_one_event_per_message(self):
        msgs = self.messages(self.done, 1000)
        evs = self.flatten(msgs, False)
        self.assertEqual([e.sequence for e in evs],
                         list(range(1001, self.events + 1)))

    def test_3_hostile_max_batch(self):
        for mb, size in ((1, 1), (7, 7), (4294967295, CAP)):
            msgs = self.messages(self.done, 0, mb)
            evs = self.flatten(msgs, True, size)
            self.assertEqual([e.sequence for e in evs],
                             list(range(1, self.events + 1)),
                             f"max_batch {mb}")
            self.assertEqual(max(len(m.events) for m in msgs), size)
        # Field 3 as a 10-byte varint (2^64 - 1): not a valid uint32.
        raw = (pb.WatchOperationRequest(operation_id=self.done)
               .SerializeToString() + b"\x18" + b"\xff" * 9 + b"\x01")
        call = self.chan.unary_stream(
            METHOD, request_serializer=lambda b: b,
            response_deserializer=pb.WatchOperationResponse.FromString)
        msgs = list(call(raw, timeout=WAIT))
        evs = self.flatten(msgs, True)
        self.assertEqual([e.sequence for e in evs],
                         list(range(1, self.events + 1)))
        self.assertEqual(max(len(m.events) for m in msgs), CAP)

    def test_4_running_protect(self):
        op = self.protect(300)
        msgs = self.messages(op, 0, CAP)
        evs = self.flatten(msgs, True)
        self.assertEqual([e.sequence for e in evs],
                         list(range(1, len(evs) + 1)))
        self.assertGreater(len(evs), 4 * 300)
        self.assertEqual(evs[-1].kind, pb.EVENT_KIND_OPERATION_FINISHED)
        self.assertEqual(evs[-1].final_status, "available")
        print(f"running protect: {len(evs)} events in {len(msgs)} messages",
              file=sys.stderr)
        self.assertLess(len(msgs), len(evs))
        # The same events as a watcher without max_batch gets.
        again = self.flatten(self.messages(op), False)
        self.assertEqual([(e.sequence, e.kind) for e in again],
                         [(e.sequence, e.kind) for e in evs])


if __name__ == "__main__":
    runner = unittest.TextTestRunner(verbosity=2, stream=sys.stdout)
    res = runner.run(unittest.defaultTestLoader.loadTestsFromTestCase(
        WatchBatch))
    bad = len(res.failures) + len(res.errors)
    print(f"{max(res.testsRun - bad, 0)} passed, {bad} failed")
    sys.exit(1 if bad or res.testsRun == 0 else 0)
