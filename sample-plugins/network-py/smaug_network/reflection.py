"""gRPC server reflection, v1 and v1alpha, which Debian does not package for
Python.

Descriptors come from the default protobuf descriptor pool, which the
generated stubs fill when imported. The files the stubs embed carry no
`json_name` (protoc leaves it out of Python output), so each file is sent
with every field's json_name filled in from the pool's descriptors: clients
that build JSON from reflection (buf curl, grpcurl) then print the same
camelCase names as for any other server. Each stream answers list_services,
file_by_filename and file_containing_symbol; a file is sent with those of
its transitive dependencies not yet sent on the same stream. Unknown names
get an error_response with NOT_FOUND; the two extension queries are
answered as for a server without extensions. v1 and v1alpha are
wire-identical, so one class serves both with their own message types.
"""

import threading

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool

from .gen import (refl_v1_grpc, refl_v1_pb2, refl_v1alpha_grpc,
                  refl_v1alpha_pb2)


class _Reflection:
    def __init__(self, pb2, services):
        self._pb2 = pb2
        self._services = sorted(services)
        self._pool = descriptor_pool.Default()

    def ServerReflectionInfo(self, request_iterator, context):
        sent = set()
        for req in request_iterator:
            yield self._answer(req, sent)

    def _answer(self, req, sent):
        pb2 = self._pb2
        resp = pb2.ServerReflectionResponse(valid_host=req.host,
                                            original_request=req)
        which = req.WhichOneof("message_request")
        try:
            if which == "list_services":
                resp.list_services_response.service.extend(
                    pb2.ServiceResponse(name=n) for n in self._services)
            elif which == "file_by_filename":
                self._send(resp, self._pool.FindFileByName(
                    req.file_by_filename), sent)
            elif which == "file_containing_symbol":
                self._send(resp, self._pool.FindFileContainingSymbol(
                    req.file_containing_symbol), sent)
            elif which == "all_extension_numbers_of_type":
                name = req.all_extension_numbers_of_type
                self._pool.FindMessageTypeByName(name)  # KeyError if unknown
                resp.all_extension_numbers_response.base_type_name = name
            elif which == "file_containing_extension":
                ext = req.file_containing_extension
                raise KeyError("no extension %d of %s" %
                               (ext.extension_number, ext.containing_type))
            else:
                resp.error_response.error_code = \
                    grpc.StatusCode.INVALID_ARGUMENT.value[0]
                resp.error_response.error_message = "empty request"
        except KeyError:
            resp.ClearField("message_response")
            resp.error_response.error_code = grpc.StatusCode.NOT_FOUND.value[0]
            resp.error_response.error_message = "not found: %s" % (
                getattr(req, which) if which != "file_containing_extension"
                else req.file_containing_extension.containing_type)
        return resp

    def _send(self, resp, fd, sent):
        """The file first, then its unsent dependencies, depth first."""
        out = resp.file_descriptor_response.file_descriptor_proto
        out.append(_with_json_names(fd))
        sent.add(fd.name)
        todo = list(fd.dependencies)
        while todo:
            dep = todo.pop()
            if dep.name in sent:
                continue
            sent.add(dep.name)
            out.append(_with_json_names(dep))
            todo.extend(dep.dependencies)


_json_files = {}  # file name -> serialized FileDescriptorProto
_json_lock = threading.Lock()


def _fill_json_names(msgs, descs):
    """Sets json_name on every field of the DescriptorProtos `msgs` from the
    matching Descriptors `descs` (by name), nested messages included."""
    for m in msgs:
        d = descs[m.name]
        for f in m.field:
            f.json_name = d.fields_by_name[f.name].json_name
        _fill_json_names(m.nested_type, d.nested_types_by_name)


def _with_json_names(fd):
    """The serialized FileDescriptorProto of `fd` with json names."""
    with _json_lock:
        raw = _json_files.get(fd.name)
        if raw is None:
            proto = descriptor_pb2.FileDescriptorProto.FromString(
                fd.serialized_pb)
            _fill_json_names(proto.message_type, fd.message_types_by_name)
            raw = _json_files[fd.name] = proto.SerializeToString()
        return raw


class ReflectionV1(_Reflection, refl_v1_grpc.ServerReflectionServicer):
    def __init__(self, services):
        super().__init__(refl_v1_pb2, services)


class ReflectionV1Alpha(_Reflection,
                        refl_v1alpha_grpc.ServerReflectionServicer):
    def __init__(self, services):
        super().__init__(refl_v1alpha_pb2, services)


SERVICE_NAMES = (
    refl_v1_pb2.DESCRIPTOR.services_by_name["ServerReflection"].full_name,
    refl_v1alpha_pb2.DESCRIPTOR.services_by_name["ServerReflection"].full_name,
)


def add_to_server(server, services):
    """Registers both versions; `services` are the names list_services
    returns (include the reflection services themselves)."""
    refl_v1_grpc.add_ServerReflectionServicer_to_server(
        ReflectionV1(services), server)
    refl_v1alpha_grpc.add_ServerReflectionServicer_to_server(
        ReflectionV1Alpha(services), server)
