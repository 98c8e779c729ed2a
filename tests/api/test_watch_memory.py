#!/usr/bin/python3
"""smaugd's memory under watchers that do not read, through grpcio.

A data directory is seeded (with Python's sqlite3 and the generated
messages) with one finished operation of many events and one of fewer.
smaugd is started on it, and N WatchOperation streams are opened on the
big operation and never read. The test waits until smaugd's debug log
shows every stream stopped waiting for its client (a trace, not a sleep),
then reads smaugd's resident set size from /proc: it must grow by a
bounded amount, far below the size of the events. After the streams are
cancelled (again waiting for the log) a second round must not grow it
further. Then a watcher that reads is checked to get every event, in
order, from the start and from an `after_sequence`, and that a watcher
of a running protect that stops reading until the protect has finished
(its stream full, so refilled from the store later) still gets every
event once, in order, ending with the final one.

    test_watch_memory.py --smaugd bin/smaugd --plugin bin/fake-plugin \
        --gen share/network-py/gen

Prints "N passed, N failed" last and exits non-zero on any failure.
"""

import argparse
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

ap = argparse.ArgumentParser()
ap.add_argument("--smaugd", required=True)
ap.add_argument("--plugin", required=True)
ap.add_argument("--gen", required=True)
ARGS, _rest = ap.parse_known_args()

sys.path.insert(0, ARGS.gen)
import grpc  # noqa: E402

from smaug.v1 import orchestrator_pb2 as pb  # noqa: E402
from smaug.v1 import orchestrator_pb2_grpc as pbg  # noqa: E402
from smaug.v1 import types_pb2 as tp  # noqa: E402

BIG_EVENTS = 150000
SMALL_EVENTS = 3000
WATCHERS = 10
# What N non-reading streams may cost at most. Before streams were paged,
# each held every event of the operation: 10 x 150k events of ~300 bytes
# took smaugd over 500 MB up.
GROWTH_LIMIT = 96 << 20
WAIT = 30


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def seed(db, op_id, n):
    """Writes a finished protect `op_id` with `n` events into `db`."""
    now = int(time.time() * 1000)
    db.execute(
        "INSERT INTO operations(id, kind, target_id, checkpoint_id, running,"
        " fail_fast, created_at_ms, params) VALUES(?, 1, ?, ?, 0, 0, ?, x'')",
        (op_id, "ckp-" + op_id, "ckp-" + op_id, now))
    res = tp.Resource(type="smaug.volume", id="vol-1")
    rows = []
    for seq in range(1, n + 1):
        ev = pb.OperationEvent(
            sequence=seq, operation_id=op_id,
            kind=pb.EVENT_KIND_PROGRESS if seq < n
            else pb.EVENT_KIND_OPERATION_FINISHED,
            time_ms=now, message="m" * 200)
        if seq < n:
            ev.resource.CopyFrom(res)
            ev.progress.done = seq
        else:
            ev.final_status = "available"
        rows.append((op_id, seq, ev.SerializeToString()))
    db.executemany("INSERT INTO events(op_id, seq, body) VALUES(?, ?, ?)",
                   rows)


def asan_env():
    """The environment for smaugd. Under AddressSanitizer a small
    quarantine, so that freed memory is reused as in a normal build and the
    resident size still tells a bounded server from one that buffers."""
    env = dict(os.environ)
    opts = env.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = (opts + ":" if opts else "") + \
        "quarantine_size_mb=4:thread_local_quarantine_size_kb=64"
    return env


class Smaugd:
    def __init__(self, data, log, argv=None):
        self.log = log
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen(
            argv or [ARGS.smaugd, "--listen", "127.0.0.1:0", "--data-dir",
                     data, "--log-level", "debug", "--event-retention", "0"],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf,
            env=asan_env())
        m = self.wait_log(r"msg=listening addr=(\S+)", 1)
        self.addr = m[0]

    def lines(self, pattern):
        with open(self.log) as f:
            return [m for m in (re.search(pattern, ln) for ln in f) if m]

    def wait_log(self, pattern, count):
        """Waits for `count` lines matching `pattern`; returns the last's
        groups."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            found = self.lines(pattern)
            if len(found) >= count:
                return found[count - 1].groups()
            if self.proc.poll() is not None:
                raise AssertionError("smaugd exited: " + open(self.log).read())
            time.sleep(0.05)
        raise AssertionError(f"no {count} x {pattern!r} in smaugd's log")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()


class WatchMemory(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        data = os.path.join(cls.tmp, "data")
        first = Smaugd(data, os.path.join(cls.tmp, "first.log"))  # schema
        first.stop()
        db = sqlite3.connect(os.path.join(data, "smaug.db"))
        seed(db, "op-big", BIG_EVENTS)
        seed(db, "op-small", SMALL_EVENTS)
        db.commit()
        db.close()
        cls.d = Smaugd(data, os.path.join(cls.tmp, "smaugd.log"))
        # The fake plugin logs its listening line like smaugd.
        cls.plug = Smaugd(None, os.path.join(cls.tmp, "plugin.log"),
                          [ARGS.plugin, "--types", "t.vol"])
        cls.chan = grpc.insecure_channel(cls.d.addr)
        cls.stub = pbg.OrchestratorStub(cls.chan)
        cls.waits = 0    # "watch waits" lines seen so far
        cls.cancels = 0  # "watch cancelled" lines seen so far

    @classmethod
    def tearDownClass(cls):
        cls.chan.close()
        cls.d.stop()
        cls.plug.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def open_idle_watchers(self):
        """N streams on the big op, each on its own channel (so that one
        does not hold back another), never read. Returns peak RSS."""
        chans = [grpc.insecure_channel(self.d.addr) for _ in range(WATCHERS)]
        calls = [pbg.OrchestratorStub(c).WatchOperation(
            pb.WatchOperationRequest(operation_id="op-big"))
            for c in chans]
        type(self).waits += WATCHERS
        self.d.wait_log(r"msg=\"watch waits for the client\" op=op-big",
                        self.waits)
        peak = max(rss(self.d.proc.pid) for _ in range(10)
                   if time.sleep(0.05) is None)
        for c in calls:
            c.cancel()
        type(self).cancels += WATCHERS
        self.d.wait_log(r"msg=\"watch cancelled\" op=op-big", self.cancels)
        for c in chans:
            c.close()
        return peak

    def test_1_idle_watchers_bounded(self):
        base = rss(self.d.proc.pid)
        peak1 = self.open_idle_watchers()
        after1 = rss(self.d.proc.pid)
        peak2 = self.open_idle_watchers()
        after2 = rss(self.d.proc.pid)
        print(f"rss MiB: base {base >> 20} peak {peak1 >> 20} after "
              f"{after1 >> 20} peak2 {peak2 >> 20} after2 {after2 >> 20}",
              file=sys.stderr)
        self.assertLess(peak1 - base, GROWTH_LIMIT)
        self.assertLess(peak2 - base, GROWTH_LIMIT)
        # Released on cancel: a second round reuses what the first freed.
        self.assertLess(after2, after1 + (16 << 20))
        self.assertLessEqual(after1, peak1 + (8 << 20))

    def collect(self, op, after=0):
        seqs, final = [], None
        for r in self.stub.WatchOperation(
                pb.WatchOperationRequest(operation_id=op,
                                         after_sequence=after),
                timeout=WAIT):
            seqs.append(r.event.sequence)
            if r.event.kind == pb.EVENT_KIND_OPERATION_FINISHED:
                final = r.event.final_status
        return seqs, final

    def test_2_reader_gets_every_event_in_order(self):
        seqs, final = self.collect("op-small")
        self.assertEqual(seqs, list(range(1, SMALL_EVENTS + 1)))
        self.assertEqual(final, "available")
        seqs, final = self.collect("op-small", after=1234)
        self.assertEqual(seqs, list(range(1235, SMALL_EVENTS + 1)))
        self.assertEqual(final, "available")
        seqs, _ = self.collect("op-small", after=SMALL_EVENTS)
        self.assertEqual(seqs, [])

    def test_3_slow_reader_resumes_where_it_stopped(self):
        it = self.stub.WatchOperation(
            pb.WatchOperationRequest(operation_id="op-small"), timeout=WAIT)
        first = [next(it).event.sequence for _ in range(10)]
        # The server fills this stream only as it drains: reading on gets
        # the rest, from the store, without a gap.
        rest = [r.event.sequence for r in it]
        self.assertEqual(first + rest, list(range(1, SMALL_EVENTS + 1)))

    def test_4_lagging_watcher_of_a_running_protect(self):
        self.stub.RegisterPlugin(
            pb.RegisterPluginRequest(address=self.plug.addr), timeout=WAIT)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:  # until registered and serving
            ps = self.stub.ListPlugins(pb.ListPluginsRequest(), timeout=WAIT)
            if ps.plugins and all(p.health == pb.PLUGIN_HEALTH_SERVING
                                  for p in ps.plugins):
                break
            time.sleep(0.05)
        plan = pb.Plan(name="lag", resources=[
            tp.Resource(type="t.vol", id=f"v{i}") for i in range(300)])
        plan = self.stub.CreatePlan(pb.CreatePlanRequest(plan=plan),
                                    timeout=WAIT).plan
        p = self.stub.Protect(pb.ProtectRequest(plan_id=plan.id),
                              timeout=WAIT)
        it = self.stub.WatchOperation(
            pb.WatchOperationRequest(operation_id=p.operation_id),
            timeout=WAIT)
        first = [next(it).event for _ in range(3)]
        # Stop reading until the protect is over: the stream fills up,
        # and the rest must come from the store.
        while time.monotonic() < deadline:
            cp = self.stub.GetCheckpoint(
                pb.GetCheckpointRequest(id=p.checkpoint_id),
                timeout=WAIT).checkpoint
            if cp.status == pb.CHECKPOINT_STATUS_AVAILABLE:
                break
            time.sleep(0.05)
        self.assertEqual(cp.status, pb.CHECKPOINT_STATUS_AVAILABLE)
        evs = first + [r.event for r in it]
        self.assertEqual([e.sequence for e in evs],
                         list(range(1, len(evs) + 1)))
        self.assertGreater(len(evs), 4 * 300)
        self.assertEqual(evs[-1].kind, pb.EVENT_KIND_OPERATION_FINISHED)
        self.assertEqual(evs[-1].final_status, "available")
        # The trace shows the stream filled up while the protect ran.
        self.assertTrue(self.d.lines(
            r"msg=\"watch waits for the client\" op=" + p.operation_id),
            "the stream never filled up")


if __name__ == "__main__":
    runner = unittest.TextTestRunner(verbosity=2, stream=sys.stdout)
    res = runner.run(unittest.defaultTestLoader.loadTestsFromTestCase(
        WatchMemory))
    bad = len(res.failures) + len(res.errors)
    print(f"{max(res.testsRun - bad, 0)} passed, {bad} failed")
    sys.exit(1 if bad or res.testsRun == 0 else 0)
