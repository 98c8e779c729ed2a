"""The smaug.v1.ProtectionPlugin service of the network plugin.

Handlers check the request (INVALID_ARGUMENT names the field), hand the
work to the idempotent job table and stream its progress, then exactly one
result or the failure status. Each handler runs on a gRPC server thread;
the work runs on the job's own thread.
"""

import grpc

from . import VERSION, network, slog
from .gen import plugin_pb2, plugin_pb2_grpc, types_pb2
from .jobs import ActivityError

NAME = "smaug-plugin-network"
PROTOCOL_MAJOR = 1
PROTOCOL_MINOR = 0
# Activity calls in flight at once. Each holds a server thread while it
# streams, and the server has SERVER_THREADS: the rest stay free for health,
# reflection and CancelOperation.
MAX_CONCURRENCY = 16
SERVER_THREADS = 32


def plugin_info():
    """The GetPluginInfo response."""
    ops = []
    for kind in (network.PROTECT, network.RESTORE, network.DELETE):
        ops.append(plugin_pb2.OperationSupport(
            kind=kind, parallel=(kind, network.PARALLEL) in network.WORK,
            sync=(kind, network.SYNC) in network.WORK))
    return plugin_pb2.GetPluginInfoResponse(
        name=NAME, version=VERSION, protocol_major=PROTOCOL_MAJOR,
        protocol_minor=PROTOCOL_MINOR, max_concurrency=MAX_CONCURRENCY,
        types=[plugin_pb2.ResourceTypeInfo(
            type=network.TYPE, operations=ops,
            options_schema=network.OPTIONS_SCHEMA,
            restore_schema=network.RESTORE_SCHEMA, lists_dependents=True)])


class ProtectionPlugin(plugin_pb2_grpc.ProtectionPluginServicer):
    """Serves one cloud directory (may be None: protect and restore then
    fail with FAILED_PRECONDITION) with the job table `jobs`."""

    def __init__(self, cloud, jobs):
        self.cloud = cloud
        self.jobs = jobs

    def GetPluginInfo(self, request, context):
        # 0 is an unset field: a caller that does not say which protocol
        # it speaks is refused like one that speaks another.
        if request.protocol_major == 0:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          "protocol_major is missing (0); this plugin "
                          "speaks %d" % PROTOCOL_MAJOR)
        if request.protocol_major != PROTOCOL_MAJOR:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          "protocol_major %d is not supported; this plugin "
                          "speaks %d" % (request.protocol_major,
                                         PROTOCOL_MAJOR))
        return plugin_info()

    def ListDependents(self, request, context):
        try:
            if not request.HasField("resource"):
                raise ActivityError(grpc.StatusCode.INVALID_ARGUMENT,
                                    "resource is required")
            network.check_resource(request.resource)
        except ActivityError as e:
            context.abort(e.code, e.message)
        return plugin_pb2.ListDependentsResponse()  # networks have none

    def CancelOperation(self, request, context):
        if not request.operation_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "operation_id is required")
        n = self.jobs.cancel_operation(request.operation_id, request.reason)
        slog.log("info", "operation cancelled", op=request.operation_id,
                 reason=request.reason, cancelled=n)
        return plugin_pb2.CancelOperationResponse(cancelled=n)

    def ParallelActivity(self, request, context):
        return self._activity(request, context, network.PARALLEL,
                              plugin_pb2.ParallelActivityResponse)

    def SyncActivity(self, request, context):
        return self._activity(request, context, network.SYNC,
                              plugin_pb2.SyncActivityResponse)

    def _activity(self, request, context, activity, response):
        try:
            r = network.Request(request, activity, self.cloud)
            work = network.WORK.get((r.kind, activity))
            if work is None:
                raise ActivityError(
                    grpc.StatusCode.UNIMPLEMENTED,
                    "%s is not implemented for %s of %s" % (
                        "ParallelActivity" if activity == network.PARALLEL
                        else "SyncActivity",
                        types_pb2.OperationKind.Name(r.kind), network.TYPE))
            job = self.jobs.attach(r.key, request.operation.id,
                                   lambda job: work(r, job))
        except ActivityError as e:
            slog.log("debug", "activity refused", code=e.code.name,
                     error=e.message)
            context.abort(e.code, e.message)
        context.add_callback(job.wake)
        try:
            for p in job.follow(context.is_active):
                yield response(progress=p or types_pb2.Progress(
                    message="working"))
            if not context.is_active():
                return
            if job.error is not None:
                context.abort(job.error.code, job.error.message)
            yield response(result=job.result)
        finally:
            self.jobs.detach(job)
