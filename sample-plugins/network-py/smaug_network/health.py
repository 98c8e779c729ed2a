"""grpc.health.v1.Health (Check and Watch), which Debian does not package
for Python.

Statuses are kept per service name ("" is the whole server). Check answers
NOT_FOUND for an unknown service; Watch sends the current status at once
(SERVICE_UNKNOWN for an unknown service) and then every change, until the
client leaves or the server shuts down (shutdown() ends every Watch).
"""

import threading

import grpc

from .gen import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class Health(health_pb2_grpc.HealthServicer):
    """Thread-safe: handlers run on the server's threads."""

    def __init__(self):
        self._cond = threading.Condition()
        self._status = {}
        self._closed = False

    def set(self, service, status):
        """Sets the status of `service` and wakes its watchers."""
        with self._cond:
            self._status[service] = status
            self._cond.notify_all()

    def shutdown(self):
        """Marks everything NOT_SERVING and ends every Watch stream."""
        with self._cond:
            for name in self._status:
                self._status[name] = NOT_SERVING
            self._closed = True
            self._cond.notify_all()

    def Check(self, request, context):
        with self._cond:
            status = self._status.get(request.service)
        if status is None:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          "unknown service %r" % request.service)
        return health_pb2.HealthCheckResponse(status=status)

    def Watch(self, request, context):
        context.add_callback(self._wake)
        last = None
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: (self._status.get(request.service,
                                              SERVICE_UNKNOWN) != last or
                             self._closed or not context.is_active()))
                status = self._status.get(request.service, SERVICE_UNKNOWN)
                closed = self._closed
            if not context.is_active():
                return
            if status != last:
                last = status
                yield health_pb2.HealthCheckResponse(status=status)
            if closed:
                return

    def _wake(self):
        with self._cond:
            self._cond.notify_all()
