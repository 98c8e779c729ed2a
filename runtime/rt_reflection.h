/*
 * rt_reflection.h - gRPC server reflection (grpc.reflection.v1 and
 * v1alpha) for every smaug server, so that `buf curl` and `grpcurl` can
 * list, describe and call its services with no .proto files at hand.
 *
 * The descriptors come from the FileDescriptorSet embedded at build time
 * (gen/smaug_descriptor_set.h); they are unpacked and indexed once. The
 * two protocol versions are wire-identical and share one implementation.
 * rt_server_new() creates one per server. All functions run on the loop
 * thread, except that an index made with a NULL server (for tests and
 * tools) may be used from any one thread at a time.
 */
#ifndef SMAUG_RT_REFLECTION_H
#define SMAUG_RT_REFLECTION_H

#include "rt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rt_reflection_s rt_reflection_t;

/* Indexes the embedded descriptor set (files by name; packages, messages
 * including nested ones, fields, enums, enum values, services and methods
 * "pkg.Service.Method" by full name) and registers
 * grpc.reflection.v1.ServerReflection and grpc.reflection.v1alpha
 * .ServerReflection on `srv`, which must not be started yet. `srv` may be
 * NULL: then nothing is registered and the index serves only
 * rt_reflection_answer(). On success `*out` is owned by the caller and must
 * outlive the server: free it with rt_reflection_free() after the server's
 * shutdown callback. Returns 0, UV_EINVAL, UV_ENOMEM, UV_EPROTO (the
 * embedded set does not parse) or the error of the registration. */
int rt_reflection_new(rt_server_t *srv, rt_reflection_t **out);

/* Adds `full_name` ("smaug.v1.ProtectionPlugin") to the answer of
 * list_services. The health and both reflection services are always
 * listed. A name already listed is ignored. `full_name` is copied.
 * Returns 0, UV_EINVAL or UV_ENOMEM. */
int rt_reflection_add_service(rt_reflection_t *r, const char *full_name);

/* Frees `r`. Every reflection stream must be over (the server's shutdown
 * callback has run). NULL is a no-op. */
void rt_reflection_free(rt_reflection_t *r);

/* ---------------------------------------------- answering, without gRPC */

/* The state of one ServerReflectionInfo stream: which files it has sent. */
typedef struct rt_reflection_stream_s rt_reflection_stream_t;

/* Starts a stream on `r`, which must outlive it. `*out` is owned by the
 * caller (rt_reflection_stream_free). Returns 0, UV_EINVAL or UV_ENOMEM. */
int rt_reflection_stream_new(rt_reflection_t *r, rt_reflection_stream_t **out);

/* NULL is a no-op. */
void rt_reflection_stream_free(rt_reflection_stream_t *s);

/* Answers one request, as the stream's next response. `req` is a
 * ServerReflectionRequest of grpc.reflection.v1 or v1alpha; `resp_desc` is
 * the ServerReflectionResponse descriptor of either version, the one the
 * answer is built as. The answer echoes the host as valid_host and the
 * request as original_request. file_by_filename and file_containing_symbol
 * send the file itself, then those of its transitive dependencies that the
 * stream has not sent yet (serialized FileDescriptorProtos). An unknown
 * name, and any extension lookup (no file declares extensions), gives an
 * error_response NOT_FOUND naming it; all_extension_numbers_of_type for a
 * known message gives an empty list. On success `*out` is owned by the
 * caller: free it with protobuf_c_message_free_unpacked(*out, NULL).
 * Returns 0, UV_EINVAL (a descriptor of neither version) or UV_ENOMEM;
 * on error the stream is unchanged. */
int rt_reflection_answer(rt_reflection_stream_t *s, const ProtobufCMessage *req,
                         const ProtobufCMessageDescriptor *resp_desc,
                         ProtobufCMessage **out);

#ifdef __cplusplus
}
#endif
#endif /* SMAUG_RT_REFLECTION_H */
