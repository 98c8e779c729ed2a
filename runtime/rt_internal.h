/*
 * rt_internal.h - what the runtime's own files (rt.c, rt_server.c,
 * rt_call.c, rt_client.c) share: the completion-queue bridge and message
 * helpers. Nothing outside runtime/ includes it.
 *
 * Every grpc_call_start_batch tag is an rt_tag_t embedded in the object
 * that started the batch. The completion-queue thread forwards (tag, ok)
 * to the loop, which calls tag->fn(tag, ok) there.
 */
#ifndef SMAUG_RT_INTERNAL_H
#define SMAUG_RT_INTERNAL_H

#include "rt_creds.h"

typedef struct rt_tag_s rt_tag_t;
typedef void (*rt_tag_fn)(rt_tag_t *tag, int ok);
struct rt_tag_s {
  rt_tag_fn fn;
};

/* The completion queue shared by every server and client call of `rt`. */
grpc_completion_queue *rt__cq(rt_t *rt);

/* Runs tag->fn(tag, ok) on the loop on a later iteration (never from
 * inside this call). Loop thread. Aborts on out-of-memory: a lost
 * completion would hang a call forever. */
void rt__defer(rt_t *rt, rt_tag_t *tag, int ok);

/* Counts objects that keep the loop alive (started servers, client calls
 * in flight). Loop thread. */
void rt__hold(rt_t *rt);
void rt__unhold(rt_t *rt);

/* What rt_client.c keeps per runtime: the open channels and the chooser
 * of credentials for channels asked for without any. */
typedef struct rt_client_state_s {
  rt_channel_t *channels;
  rt_channel_creds_fn choose;
  void *choose_data;
  char refusal[512]; /* the chooser's last refusal */
} rt_client_state_t;
rt_client_state_t *rt__client(rt_t *rt);

/* Bookkeeping checked by rt_free(). Loop thread. */
void rt__count_server(rt_t *rt, int delta);
void rt__count_client_call(rt_t *rt, int delta);
void rt__count_channel(rt_t *rt, int delta);

/* Maps a grpc_call_error to a negative UV_E* code (0 for GRPC_CALL_OK). */
int rt__call_error(grpc_call_error e);

/* Serialises `msg` into a new byte buffer that the caller owns (released
 * with grpc_byte_buffer_destroy). Returns NULL on allocation failure. */
grpc_byte_buffer *rt__pack(const ProtobufCMessage *msg);

/* Decodes `bb` as `desc` into `*out`, which the caller frees with
 * protobuf_c_message_free_unpacked. Returns 0; UV_EINVAL if it does not
 * parse; UV_EILSEQ if a string field holds a NUL or invalid UTF-8
 * (rt_wire_check), with `why` set to "<field path>: <what>". `*out` is
 * NULL on error. `bb` is not consumed. */
int rt__unpack(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb,
               ProtobufCMessage **out, char *why, size_t why_len);

/* Told once, on the loop, when the runtime has freed a server-side call
 * (never from inside rt__call_start). */
typedef void (*rt_call_gone_fn)(void *owner);

/* What rt_server.c hands to rt_call.c for a call gRPC has matched. */
typedef struct rt_call_start_s {
  rt_t *rt;
  grpc_call *call;         /* consumed */
  const rt_service_t *svc; /* the service and its method index */
  const void *impl;        /* the typed handler table */
  void *data;              /* the service's `data` */
  size_t method;
  gpr_timespec deadline;
  grpc_byte_buffer *payload; /* consumed; NULL for streamed requests */
  grpc_metadata_array *md;   /* the request headers: taken (left empty)
                                on success, untouched on error */
  rt_call_gone_fn gone;
  void *owner;
} rt_call_start_t;

/* Makes an rt_call_t of `s->call`, starts RECV_CLOSE_ON_SERVER, decodes
 * the first request of a unary or server-streaming call (answering
 * INVALID_ARGUMENT itself when it does not decode) and dispatches it to
 * the handler. Returns 0, after which `s->gone(s->owner)` runs exactly once
 * when the call is freed; or UV_ENOMEM, after which the gRPC call has been
 * cancelled and released and `gone` never runs. Loop thread. */
int rt__call_start(const rt_call_start_t *s);

/* ------------------------------------------------ credentials (rt_creds.c) */

/* One listener's hold on server credentials: what its certificate fetcher
 * last gave gRPC. Freed by the server after grpc_server_destroy. */
typedef struct rt_listener_s rt_listener_t;

/* gRPC server credentials for a new listener: insecure for NULL or
 * insecure `c` (`*listener` NULL); for TLS, credentials whose fetcher reads
 * `c` at each handshake, and `*listener` to free with rt__listener_free
 * once gRPC is done with the server. Returns 0, UV_EINVAL (client
 * credentials) or UV_ENOMEM. */
int rt__creds_server(rt_creds_t *c, grpc_server_credentials **out,
                     rt_listener_t **listener);
void rt__listener_free(rt_listener_t *l); /* NULL is a no-op */

/* The current gRPC channel credentials of client TLS credentials (borrowed;
 * gRPC channels take their own reference), NULL for insecure ones. */
grpc_channel_credentials *rt__creds_channel(rt_creds_t *c);
/* The name to check in the server certificate instead of the target's
 * host, or NULL. */
const char *rt__creds_server_name(const rt_creds_t *c);
/* Moves on at each successful reload: part of a channel's cache key. */
unsigned rt__creds_gen(const rt_creds_t *c);
/* The metadata for every call: sets `*md` to key, value, key, value... and
 * returns the number of pairs. Freezes rt_creds_add_metadata. */
size_t rt__creds_metadata(rt_creds_t *c, const char *const **md);

#endif
