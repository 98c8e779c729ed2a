"""Idempotent activity jobs: one run of the work per idempotency key.

An activity call looks its key up here. The first call starts the work on a
thread of its own; a replay with the same key joins it while it runs, or
gets the stored outcome once it is done, with the same progress updates
from the start. The work never runs twice for one key.

Outcomes are kept when they are final: a result, or a permanent error. A
transient error (UNAVAILABLE, ABORTED, RESOURCE_EXHAUSTED) is dropped, so
the orchestrator's retry with the same key runs the work again; that work
never completed, so this is not doing it twice.

A caller that goes away (its connection dropped because the orchestrator
restarted, it cancelled the call, its deadline passed) only stops waiting:
the work goes on and its outcome is stored, so the replay with the same key
joins it or gets the outcome. Only CancelOperation (and shutdown) cancels
work: it cancels every running job of an operation and remembers the
operation, so later calls of it end with CANCELLED at once.
"""

import collections
import threading

import grpc

from . import slog

# Finished outcomes and cancelled operations kept for replays. An
# orchestrator replays a key within one operation, so a bounded memory of
# the most recent ones is enough.
MAX_FINISHED = 4096
MAX_CANCELLED_OPS = 1024
# A waiting call repeats the last progress update this often when the work
# is silent, so that the orchestrator's heartbeat window never expires.
HEARTBEAT_S = 1.0

_TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED,
              grpc.StatusCode.RESOURCE_EXHAUSTED)


class ActivityError(Exception):
    """An activity failure with the gRPC status to report."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class Cancelled(Exception):
    """Raised inside the work when its job has been cancelled."""


class Job:
    """One run of the work for one key. Only Table creates jobs."""

    def __init__(self, key, op_id):
        self.key = key
        self.op_id = op_id
        self.cond = threading.Condition()
        self.events = []  # Progress messages, in order
        self.done = False
        self.result = None  # the result message, on success
        self.error = None  # ActivityError, on failure
        self.waiters = 0
        self.cancel_reason = None

    # --- used by the work, on the job's thread

    def progress(self, progress):
        """Publishes a Progress message to every caller."""
        with self.cond:
            self.events.append(progress)
            self.cond.notify_all()

    def check(self):
        """Raises Cancelled once the job has been cancelled."""
        if self.cancel_reason is not None:
            raise Cancelled(self.cancel_reason)

    def sleep(self, seconds):
        """Waits `seconds`, or raises Cancelled as soon as cancelled."""
        with self.cond:
            self.cond.wait_for(lambda: self.cancel_reason is not None,
                               timeout=seconds)
        self.check()

    # --- used by Table and the callers

    def _cancel(self, reason):
        with self.cond:
            if self.done or self.cancel_reason is not None:
                return False
            self.cancel_reason = reason
            self.cond.notify_all()
            return True

    def _finish(self, result, error):
        with self.cond:
            self.result, self.error, self.done = result, error, True
            self.cond.notify_all()

    def wake(self):
        """Wakes the callers so that they notice their RPC has ended."""
        with self.cond:
            self.cond.notify_all()

    def follow(self, is_active):
        """Yields every Progress from the first, then returns once the job
        is done or `is_active()` turns false. While the work is silent it
        repeats the last update every HEARTBEAT_S as a heartbeat."""
        sent = 0
        while True:
            with self.cond:
                fresh = self.cond.wait_for(
                    lambda: (len(self.events) > sent or self.done or
                             not is_active()),
                    timeout=HEARTBEAT_S)
                batch = self.events[sent:]
                sent = len(self.events)
                finished = self.done
            if not is_active():
                return
            if batch:
                yield from batch
            elif not fresh and not finished:
                yield self.events[-1] if self.events else None
            if finished:
                return


class Table:
    """The jobs of one plugin process, by idempotency key. Thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._running = {}
        self._finished = collections.OrderedDict()
        self._cancelled_ops = collections.OrderedDict()

    def attach(self, key, op_id, work):
        """Returns the job for `key`, starting `work(job)` on a new thread if
        no job for it is running or finished. `work` returns the result
        message or raises ActivityError / Cancelled. The caller must call
        detach(job) when it stops waiting. Raises ActivityError(CANCELLED)
        when the operation was cancelled and no outcome is stored."""
        with self._lock:
            job = self._running.get(key) or self._finished.get(key)
            if job is None:
                if op_id in self._cancelled_ops:
                    raise ActivityError(grpc.StatusCode.CANCELLED,
                                        "operation %s was cancelled" % op_id)
                job = Job(key, op_id)
                self._running[key] = job
                started = True
            else:
                started = False
            job.waiters += 1
        if started:
            slog.log("debug", "activity started", key=key)
            threading.Thread(target=self._run, args=(job, work),
                             name="job " + key, daemon=True).start()
        else:
            slog.log("debug", "activity joined", key=key)
        return job

    def detach(self, job):
        """Ends one caller's wait. The job goes on without callers: a
        dropped call is not a cancel, and the replay of its key joins it."""
        with self._lock:
            job.waiters -= 1
            left = job.waiters == 0 and self._running.get(job.key) is job
        if left:
            slog.log("debug", "caller gone, work goes on", key=job.key)

    def cancel_operation(self, op_id, reason):
        """Cancels the running jobs of `op_id` and refuses its later calls.
        Returns how many jobs were told to stop."""
        n = 0
        with self._lock:
            self._cancelled_ops[op_id] = True
            while len(self._cancelled_ops) > MAX_CANCELLED_OPS:
                self._cancelled_ops.popitem(last=False)
            jobs = [j for j in self._running.values() if j.op_id == op_id]
        for job in jobs:
            if job._cancel("operation cancelled: " + (reason or "no reason")):
                n += 1
        return n

    def cancel_all(self, reason):
        """Cancels every running job (server shutdown)."""
        with self._lock:
            jobs = list(self._running.values())
        for job in jobs:
            job._cancel(reason)

    def _run(self, job, work):
        result = error = None
        try:
            job.check()
            result = work(job)
        except Cancelled as e:
            error = ActivityError(grpc.StatusCode.CANCELLED, str(e))
        except ActivityError as e:
            error = e
        except Exception as e:  # a bug: report it instead of hanging callers
            slog.log("error", "activity crashed", key=job.key,
                     error="%s: %s" % (type(e).__name__, e))
            error = ActivityError(grpc.StatusCode.INTERNAL,
                                  "%s: %s" % (type(e).__name__, e))
        with self._lock:
            if self._running.get(job.key) is job:
                del self._running[job.key]
                keep = error is None or error.code not in _TRANSIENT
                if keep:
                    self._finished[job.key] = job
                    while len(self._finished) > MAX_FINISHED:
                        self._finished.popitem(last=False)
        job._finish(result, error)
        if error is None:
            slog.log("debug", "activity done", key=job.key)
        else:
            slog.log("debug", "activity failed", key=job.key,
                     code=error.code.name, error=error.message)
