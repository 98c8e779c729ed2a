/*
 * rt.c - the runtime core: gRPC start-up and shutdown, and the bridge
 * between gRPC's completion queue and the libuv loop.
 *
 * gRPC 1.51 only makes I/O progress while some thread is blocked in
 * grpc_completion_queue_next, so a private thread does just that and
 * forwards each (tag, ok) into a mutex-protected queue, then wakes the loop
 * with uv_async_send (the only thread-safe libuv call). Wake-ups coalesce,
 * so the loop drains the whole queue each time. Everything else (every
 * grpc_call_start_batch, every handler and callback) runs on the loop
 * thread. Servers live in rt_server.c, client calls in rt_client.c.
 */
#include <assert.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/log.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"
#include "rt_log.h"
#include "rt_wire.h"

typedef struct {
  rt_tag_t *tag;
  int ok;
} rt_event_t;

typedef struct {
  rt_event_t *ev;
  size_t len, cap;
} rt_events_t;

struct rt_s {
  uv_loop_t *loop;
  grpc_completion_queue *cq;
  uv_thread_t thread;
  uv_mutex_t mu;
  uv_async_t async;
  rt_events_t pending;    /* guarded by mu */
  rt_events_t processing; /* loop thread only */
  int holds;              /* objects keeping the loop alive */
  /* Open channels, shared per target and credentials (rt_client.c). */
  rt_client_state_t client;
  int n_servers, n_client_calls, n_channels;
  int async_closed;
};

static int events_push(rt_events_t *q, rt_tag_t *tag, int ok) {
  if (q->len == q->cap) {
    size_t cap = q->cap ? q->cap * 2 : 64;
    rt_event_t *ev = realloc(q->ev, cap * sizeof(*ev));
    if (ev == NULL)
      return UV_ENOMEM;
    q->ev = ev;
    q->cap = cap;
  }
  q->ev[q->len].tag = tag;
  q->ev[q->len].ok = ok;
  q->len++;
  return 0;
}

static void push_or_abort(rt_t *rt, rt_tag_t *tag, int ok) {
  uv_mutex_lock(&rt->mu);
  int err = events_push(&rt->pending, tag, ok);
  uv_mutex_unlock(&rt->mu);
  if (err != 0)
    abort(); /* a lost completion would leave a call hanging forever */
  uv_async_send(&rt->async);
}

static void cq_thread(void *arg) {
  rt_t *rt = arg;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(
        rt->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN)
      break;
    if (ev.type == GRPC_OP_COMPLETE)
      push_or_abort(rt, ev.tag, ev.success);
  }
}

static void on_async(uv_async_t *h) {
  rt_t *rt = h->data;
  /* Swap the queues so that the CQ thread can keep pushing while the loop
   * runs callbacks, which may start batches and defer more tags. */
  for (;;) {
    uv_mutex_lock(&rt->mu);
    rt_events_t tmp = rt->pending;
    rt->pending = rt->processing;
    rt->processing = tmp;
    uv_mutex_unlock(&rt->mu);
    if (rt->processing.len == 0)
      return;
    for (size_t i = 0; i < rt->processing.len; i++) {
      rt_event_t ev = rt->processing.ev[i];
      ev.tag->fn(ev.tag, ev.ok);
    }
    rt->processing.len = 0;
  }
}

static void on_async_closed(uv_handle_t *h) {
  rt_t *rt = h->data;
  rt->async_closed = 1;
}

int rt_new(uv_loop_t *loop, rt_t **out) {
  if (loop == NULL || out == NULL)
    return UV_EINVAL;
  rt_t *rt = calloc(1, sizeof(*rt));
  if (rt == NULL)
    return UV_ENOMEM;
  rt->loop = loop;
  int err = uv_mutex_init(&rt->mu);
  if (err != 0)
    goto fail_mutex;
  err = uv_async_init(loop, &rt->async, on_async);
  if (err != 0)
    goto fail_async;
  rt->async.data = rt;
  uv_unref((uv_handle_t *)&rt->async);

  rt_log_route_grpc();
  grpc_init();
  rt->cq = grpc_completion_queue_create_for_next(NULL);
  if (rt->cq == NULL) {
    err = UV_ENOMEM;
    goto fail_cq;
  }
  err = uv_thread_create(&rt->thread, cq_thread, rt);
  if (err != 0)
    goto fail_thread;
  *out = rt;
  return 0;

fail_thread:
  grpc_completion_queue_shutdown(rt->cq);
  while (grpc_completion_queue_next(rt->cq, gpr_inf_future(GPR_CLOCK_REALTIME),
                                    NULL)
             .type != GRPC_QUEUE_SHUTDOWN)
    ;
  grpc_completion_queue_destroy(rt->cq);
fail_cq:
  grpc_shutdown();
  uv_close((uv_handle_t *)&rt->async, on_async_closed);
  while (!rt->async_closed)
    uv_run(loop, UV_RUN_ONCE);
fail_async:
  uv_mutex_destroy(&rt->mu);
fail_mutex:
  free(rt);
  return err;
}

void rt_free(rt_t *rt) {
  if (rt == NULL)
    return;
  assert(rt->n_servers == 0 && "rt_free: a server is still alive");
  assert(rt->n_channels == 0 && "rt_free: a channel is still referenced");
  assert(rt->n_client_calls == 0 && "rt_free: a client call is in flight");
  grpc_completion_queue_shutdown(rt->cq);
  uv_thread_join(&rt->thread);
  /* Completions forwarded before the shutdown still run on the loop. */
  on_async(&rt->async);
  grpc_completion_queue_destroy(rt->cq);
  uv_close((uv_handle_t *)&rt->async, on_async_closed);
  while (!rt->async_closed)
    uv_run(rt->loop, UV_RUN_ONCE);
  grpc_shutdown();
  uv_mutex_destroy(&rt->mu);
  free(rt->pending.ev);
  free(rt->processing.ev);
  free(rt);
}

uv_loop_t *rt_loop(rt_t *rt) {
  return rt->loop;
}

grpc_completion_queue *rt__cq(rt_t *rt) {
  return rt->cq;
}

void rt__defer(rt_t *rt, rt_tag_t *tag, int ok) {
  push_or_abort(rt, tag, ok);
}

rt_client_state_t *rt__client(rt_t *rt) {
  return &rt->client;
}

void rt__hold(rt_t *rt) {
  if (rt->holds++ == 0)
    uv_ref((uv_handle_t *)&rt->async);
}

void rt__unhold(rt_t *rt) {
  assert(rt->holds > 0);
  if (--rt->holds == 0)
    uv_unref((uv_handle_t *)&rt->async);
}

void rt__count_server(rt_t *rt, int delta) {
  rt->n_servers += delta;
}

void rt__count_client_call(rt_t *rt, int delta) {
  rt->n_client_calls += delta;
}

void rt__count_channel(rt_t *rt, int delta) {
  rt->n_channels += delta;
}

int rt__call_error(grpc_call_error e) {
  switch (e) {
  case GRPC_CALL_OK:
    return 0;
  case GRPC_CALL_ERROR_TOO_MANY_OPERATIONS:
  case GRPC_CALL_ERROR_ALREADY_INVOKED:
  case GRPC_CALL_ERROR_ALREADY_ACCEPTED:
  case GRPC_CALL_ERROR_ALREADY_FINISHED:
    return UV_EBUSY;
  case GRPC_CALL_ERROR_NOT_ON_SERVER:
  case GRPC_CALL_ERROR_NOT_ON_CLIENT:
  case GRPC_CALL_ERROR_INVALID_FLAGS:
  case GRPC_CALL_ERROR_INVALID_METADATA:
  case GRPC_CALL_ERROR_INVALID_MESSAGE:
  case GRPC_CALL_ERROR_PAYLOAD_TYPE_MISMATCH:
  case GRPC_CALL_ERROR_NOT_SERVER_COMPLETION_QUEUE:
  case GRPC_CALL_ERROR_COMPLETION_QUEUE_SHUTDOWN:
    return UV_EINVAL;
  default:
    return UV_EIO;
  }
}

grpc_byte_buffer *rt__pack(const ProtobufCMessage *msg) {
  size_t len = protobuf_c_message_get_packed_size(msg);
  grpc_slice s = grpc_slice_malloc(len);
  protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  return bb;
}

int rt__unpack(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb,
               ProtobufCMessage **out, char *why, size_t why_len) {
  *out = NULL;
  grpc_byte_buffer_reader r;
  if (!grpc_byte_buffer_reader_init(&r, bb))
    return UV_EINVAL;
  grpc_slice s = grpc_byte_buffer_reader_readall(&r);
  grpc_byte_buffer_reader_destroy(&r);
  const uint8_t *data = GRPC_SLICE_START_PTR(s);
  size_t len = GRPC_SLICE_LENGTH(s);
  int err = 0;
  ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL, len, data);
  if (msg == NULL) {
    err = UV_EINVAL;
  } else if ((err = rt_wire_check(desc, data, len, why, why_len)) != 0) {
    protobuf_c_message_free_unpacked(msg, NULL);
    msg = NULL;
    if (err != UV_EILSEQ)
      err = UV_EINVAL; /* cannot happen: protobuf-c parsed it */
  }
  grpc_slice_unref(s);
  *out = msg;
  return err;
}

const char *rt_status_name(grpc_status_code code) {
  static const char *const names[] = {"OK",
                                      "CANCELLED",
                                      "UNKNOWN",
                                      "INVALID_ARGUMENT",
                                      "DEADLINE_EXCEEDED",
                                      "NOT_FOUND",
                                      "ALREADY_EXISTS",
                                      "PERMISSION_DENIED",
                                      "RESOURCE_EXHAUSTED",
                                      "FAILED_PRECONDITION",
                                      "ABORTED",
                                      "OUT_OF_RANGE",
                                      "UNIMPLEMENTED",
                                      "INTERNAL",
                                      "UNAVAILABLE",
                                      "DATA_LOSS",
                                      "UNAUTHENTICATED"};
  if ((unsigned)code < sizeof(names) / sizeof(names[0]))
    return names[code];
  return "UNKNOWN_STATUS";
}
