/*
 * rt_server.c - the server half of the runtime: registered services, the
 * calls they receive, and graceful shutdown.
 *
 * Every method of every service is registered with gRPC (so the payload
 * of unary and server-streaming calls arrives with the call), and one
 * request is kept pending per method. A generic request is also kept
 * pending so that a call to an unknown method gets UNIMPLEMENTED at once
 * rather than hanging until its deadline.
 *
 * A call is reference counted: one reference for the handler (dropped by
 * rt_call_finish) and one per batch in flight. GRPC_OP_RECV_CLOSE_ON_SERVER
 * is started as soon as the call arrives; its completion is how client
 * cancellation, deadline expiry and server shutdown are seen. Sends are
 * queued and chained, one send batch in flight at a time.
 */
#include <assert.h>
#include <errno.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt_addr.h"
#include "rt_health.h"
#include "rt_internal.h"
#include "rt_reflection.h"
#include "rt_wire.h"

#define RT_DEFAULT_MAX_MESSAGE (4 * 1024 * 1024)
#define RT_DEFAULT_GRACE_MS    5000
/* Requests kept pending per method: with one, a burst of calls waits for
 * the loop to re-request between each; a few let gRPC match them at once. */
#define RT_SLOTS 4

typedef struct rt_entry_s rt_entry_t;
typedef struct rt_slot_s rt_slot_t;

/* One registered service. */
struct rt_entry_s {
  const rt_service_t *svc;
  const void *impl;
  void *data;
  void **handles;   /* grpc_server_register_method results, per method */
  rt_slot_t *slots; /* RT_SLOTS pending requests per method */
};

/* A pending grpc_server_request_(registered_)call. */
struct rt_slot_s {
  rt_tag_t tag;
  rt_server_t *srv;
  rt_entry_t *entry; /* NULL: the generic (unknown method) slot */
  size_t method;
  grpc_call *call;
  gpr_timespec deadline;
  grpc_metadata_array md;
  grpc_byte_buffer *payload;
  grpc_call_details details; /* generic slot only */
};

/* An outgoing message waiting for the send op. */
typedef struct rt_out_s {
  struct rt_out_s *next;
  grpc_byte_buffer *bb;
} rt_out_t;

struct rt_call_s {
  rt_server_t *srv;
  rt_entry_t *entry;
  const rt_method_t *method;
  size_t method_index;
  grpc_call *call;
  int refs;
  int64_t deadline_ms;
  ProtobufCMessage *req;

  rt_tag_t close_tag;
  int cancelled_flag; /* written by RECV_CLOSE_ON_SERVER */
  unsigned closed : 1;
  unsigned cancelled : 1;
  unsigned finished : 1;
  unsigned cancel_cb_done : 1;
  unsigned initial_md_sent : 1;
  unsigned status_queued : 1;
  unsigned status_sent : 1;
  unsigned send_busy : 1;
  unsigned read_busy : 1;
  unsigned read_eof : 1;
  unsigned malformed : 1; /* a streamed request did not decode */
  char bad_string[256];   /* why, when it held a bad string; else "" */

  rt_call_cancel_cb cancel_cb;
  void *cancel_data;
  rt_tag_t cancel_tag; /* deferred cancel notification */

  rt_tag_t send_tag;
  rt_out_t *out_head, *out_tail;
  size_t n_out; /* messages queued, not counting in_flight */
  rt_call_sent_cb sent_cb;
  void *sent_data;
  grpc_byte_buffer *in_flight; /* the message of the send batch */
  grpc_status_code code;
  grpc_slice details;
  int details_set;

  rt_tag_t recv_tag;
  grpc_byte_buffer *recv_bb;
  rt_call_read_cb read_cb;
  void *read_data;
};

/* The answer to a call of an unknown method. */
typedef struct {
  rt_tag_t tag;
  rt_server_t *srv;
  grpc_call *call;
  int cancelled;
  grpc_slice details;
} rt_unknown_t;

struct rt_server_s {
  rt_t *rt;
  grpc_server *server;
  int max_message;
  int grace_ms;
  rt_entry_t *entries;
  size_t n_entries;
  rt_slot_t generic;

  int n_calls;   /* live rt_call_t and rt_unknown_t */
  int n_slots;   /* requests pending in gRPC */
  int n_handles; /* uv handles not yet closed */
  unsigned started : 1;
  unsigned shutting_down : 1;
  unsigned shutdown_tag_done : 1;
  unsigned stopped : 1;
  unsigned signals_on : 1;

  rt_tag_t shutdown_tag;
  uv_timer_t grace;
  uv_signal_t sigint, sigterm;
  rt_server_stopped_cb stopped_cb;
  void *stopped_data;
  rt_server_stopped_cb signal_cb;
  void *signal_data;
  rt_health_t *health;
  rt_reflection_t *reflection;
};

static void server_maybe_stopped(rt_server_t *srv);
static void call_pump_send(rt_call_t *c);

/* ------------------------------------------------------------ helpers */

static int64_t deadline_to_ms(uv_loop_t *loop, gpr_timespec deadline) {
  if (gpr_time_cmp(deadline, gpr_inf_future(deadline.clock_type)) == 0)
    return INT64_MAX;
  gpr_timespec mono = gpr_convert_clock_type(deadline, GPR_CLOCK_MONOTONIC);
  gpr_timespec left = gpr_time_sub(mono, gpr_now(GPR_CLOCK_MONOTONIC));
  int64_t ms = gpr_time_to_millis(left);
  if (ms < 0)
    ms = 0;
  return (int64_t)uv_now(loop) + ms;
}

/* --------------------------------------------------------- call refs */

static void call_release(rt_call_t *c) {
  assert(c->refs > 0);
  if (--c->refs > 0)
    return;
  rt_server_t *srv = c->srv;
  grpc_call_unref(c->call);
  if (c->req != NULL)
    protobuf_c_message_free_unpacked(c->req, NULL);
  for (rt_out_t *o = c->out_head, *next; o != NULL; o = next) {
    next = o->next;
    grpc_byte_buffer_destroy(o->bb);
    free(o);
  }
  if (c->details_set)
    grpc_slice_unref(c->details);
  free(c);
  srv->n_calls--;
  server_maybe_stopped(srv);
}

static void call_notify_cancel(rt_call_t *c) {
  if (c->cancel_cb == NULL || c->cancel_cb_done || c->finished)
    return;
  c->cancel_cb_done = 1;
  c->cancel_cb(c, c->cancel_data);
}

static void on_deferred_cancel(rt_tag_t *tag, int ok) {
  rt_call_t *c = (rt_call_t *)((char *)tag - offsetof(rt_call_t, cancel_tag));
  call_notify_cancel(c);
  call_release(c);
}

static void drop_queue(rt_call_t *c) {
  for (rt_out_t *o = c->out_head, *next; o != NULL; o = next) {
    next = o->next;
    grpc_byte_buffer_destroy(o->bb);
    free(o);
  }
  c->out_head = c->out_tail = NULL;
  c->n_out = 0;
}

static void on_close(rt_tag_t *tag, int ok) {
  rt_call_t *c = (rt_call_t *)((char *)tag - offsetof(rt_call_t, close_tag));
  c->closed = 1;
  /* A call that ends before we sent its status was cancelled, whatever
   * the flag says. */
  if (c->cancelled_flag || !c->status_sent) {
    c->cancelled = 1;
    drop_queue(c);
    call_notify_cancel(c);
  }
  call_release(c);
}

/* ------------------------------------------------------------ sending */

static void on_send(rt_tag_t *tag, int ok) {
  rt_call_t *c = (rt_call_t *)((char *)tag - offsetof(rt_call_t, send_tag));
  c->send_busy = 0;
  if (c->in_flight != NULL) {
    grpc_byte_buffer_destroy(c->in_flight);
    c->in_flight = NULL;
  }
  if (!ok) {
    c->cancelled = 1;
    drop_queue(c);
  } else {
    call_pump_send(c);
    if (c->sent_cb != NULL && !c->finished && !c->cancelled)
      c->sent_cb(c, c->sent_data);
  }
  call_release(c);
}

static void call_pump_send(rt_call_t *c) {
  if (c->send_busy || c->status_sent || c->cancelled)
    return;
  int has_msg = c->out_head != NULL;
  /* The status rides with the last queued message, if any. */
  int has_status =
      c->status_queued && (c->out_head == NULL || c->out_head->next == NULL);
  if (!has_msg && !has_status)
    return; /* initial metadata waits for the first message or status */
  grpc_op ops[3];
  size_t n = 0;
  memset(ops, 0, sizeof(ops));
  if (!c->initial_md_sent) {
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    c->initial_md_sent = 1;
  }
  if (has_msg) {
    rt_out_t *o = c->out_head;
    c->out_head = o->next;
    if (c->out_head == NULL)
      c->out_tail = NULL;
    c->n_out--;
    c->in_flight = o->bb;
    free(o);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = c->in_flight;
    n++;
  }
  if (has_status) {
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = c->code;
    ops[n].data.send_status_from_server.status_details =
        c->details_set ? &c->details : NULL;
    n++;
    c->status_sent = 1;
  }
  c->send_busy = 1;
  c->refs++;
  if (grpc_call_start_batch(c->call, ops, n, &c->send_tag, NULL) !=
      GRPC_CALL_OK) {
    /* Cannot happen with one op of each type in flight; treat the call as
     * broken rather than hang. */
    rt__defer(c->srv->rt, &c->send_tag, 0);
  }
}

static int call_queue(rt_call_t *call, const ProtobufCMessage *msg) {
  rt_out_t *o = malloc(sizeof(*o));
  if (o == NULL)
    return UV_ENOMEM;
  o->bb = rt__pack(msg);
  o->next = NULL;
  if (call->out_tail != NULL)
    call->out_tail->next = o;
  else
    call->out_head = o;
  call->out_tail = o;
  call->n_out++;
  return 0;
}

int rt_call_send(rt_call_t *call, const ProtobufCMessage *msg) {
  if (call == NULL || msg == NULL || call->finished)
    return UV_EINVAL;
  if (call->cancelled || call->malformed)
    return UV_ECANCELED;
  int err = call_queue(call, msg);
  if (err == 0)
    call_pump_send(call);
  return err;
}

size_t rt_call_send_queued(const rt_call_t *call) {
  return call->n_out + (call->in_flight != NULL);
}

void rt_call_on_sent(rt_call_t *call, rt_call_sent_cb cb, void *data) {
  call->sent_cb = cb;
  call->sent_data = data;
}

void rt_call_finish(rt_call_t *call, grpc_status_code code, const char *message,
                    const ProtobufCMessage *final) {
  assert(call != NULL && !call->finished && "rt_call_finish: twice");
  call->finished = 1;
  if (call->malformed) {
    code = GRPC_STATUS_INVALID_ARGUMENT;
    message = NULL;
    final = NULL;
  } else if (code == GRPC_STATUS_OK && final == NULL &&
             call->method->kind == RT_UNARY) {
    code = GRPC_STATUS_INTERNAL;
    message = "handler returned no response";
  }
  if (!call->cancelled) {
    if (final != NULL && call_queue(call, final) != 0) {
      code = GRPC_STATUS_INTERNAL;
      message = "cannot queue the response";
    }
    call->code = code;
    if (call->malformed) {
      char buf[256];
      snprintf(buf, sizeof(buf), "request: malformed %s",
               call->method->input->name);
      call->details = grpc_slice_from_copied_string(
          call->bad_string[0] != '\0' ? call->bad_string : buf);
      call->details_set = 1;
    } else if (message != NULL && *message != '\0') {
      call->details = grpc_slice_from_copied_string(message);
      call->details_set = 1;
    }
    call->status_queued = 1;
    call_pump_send(call);
  }
  call_release(call);
}

void rt_call_reply(rt_call_t *call, const ProtobufCMessage *resp) {
  rt_call_finish(call, GRPC_STATUS_OK, NULL, resp);
}

void rt_call_fail(rt_call_t *call, grpc_status_code code, const char *fmt,
                  ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  rt_utf8_repair(buf); /* a cut or a peer's text: still UTF-8 */
  rt_call_finish(call, code, buf, NULL);
}

/* ------------------------------------------------------------ reading */

static void on_recv(rt_tag_t *tag, int ok) {
  rt_call_t *c = (rt_call_t *)((char *)tag - offsetof(rt_call_t, recv_tag));
  c->read_busy = 0;
  rt_call_read_cb cb = c->read_cb;
  void *data = c->read_data;
  c->read_cb = NULL;
  ProtobufCMessage *msg = NULL;
  if (ok && c->recv_bb != NULL &&
      rt__unpack(c->method->input, c->recv_bb, &msg, c->bad_string,
                 sizeof(c->bad_string)) != 0)
    c->malformed = 1;
  if (c->recv_bb != NULL) {
    grpc_byte_buffer_destroy(c->recv_bb);
    c->recv_bb = NULL;
  }
  if (msg == NULL)
    c->read_eof = 1;
  if (!c->finished)
    cb(c, msg, data);
  if (msg != NULL)
    protobuf_c_message_free_unpacked(msg, NULL);
  call_release(c);
}

int rt_call_read(rt_call_t *call, rt_call_read_cb cb, void *data) {
  if (call == NULL || cb == NULL || call->finished)
    return UV_EINVAL;
  if (call->read_busy)
    return UV_EBUSY;
  if (call->method->kind != RT_CLIENT_STREAMING &&
      call->method->kind != RT_BIDI_STREAMING)
    return UV_EINVAL;
  if (call->read_eof) {
    /* Still asynchronous: report end of stream on a later iteration. */
    call->read_busy = 1;
    call->read_cb = cb;
    call->read_data = data;
    call->refs++;
    rt__defer(call->srv->rt, &call->recv_tag, 0);
    return 0;
  }
  grpc_op op;
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &call->recv_bb;
  call->read_busy = 1;
  call->read_cb = cb;
  call->read_data = data;
  call->refs++;
  int err = rt__call_error(
      grpc_call_start_batch(call->call, &op, 1, &call->recv_tag, NULL));
  if (err != 0) {
    call->read_busy = 0;
    call->read_cb = NULL;
    call->refs--;
    return err;
  }
  return 0;
}

/* ------------------------------------------------------ call accessors */

void *rt_call_server_data(const rt_call_t *call) {
  return call->entry->data;
}

const rt_method_t *rt_call_method(const rt_call_t *call) {
  return call->method;
}

int64_t rt_call_deadline_ms(const rt_call_t *call) {
  return call->deadline_ms;
}

int rt_call_is_cancelled(const rt_call_t *call) {
  return call->cancelled;
}

void rt_call_on_cancel(rt_call_t *call, rt_call_cancel_cb cb, void *data) {
  call->cancel_cb = cb;
  call->cancel_data = data;
  if (cb != NULL && call->cancelled && !call->cancel_cb_done &&
      !call->finished) {
    call->refs++;
    rt__defer(call->srv->rt, &call->cancel_tag, 1);
  }
}

/* --------------------------------------------------- incoming calls */

static void slot_request(rt_slot_t *s);

static void call_start(rt_slot_t *s) {
  rt_server_t *srv = s->srv;
  rt_entry_t *e = s->entry;
  const rt_method_t *m = &e->svc->methods[s->method];
  rt_call_t *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    /* No memory for the call: drop it; the client sees CANCELLED. */
    grpc_call_cancel(s->call, NULL);
    grpc_call_unref(s->call);
    if (s->payload != NULL)
      grpc_byte_buffer_destroy(s->payload);
    return;
  }
  c->srv = srv;
  c->entry = e;
  c->method = m;
  c->method_index = s->method;
  c->call = s->call;
  c->deadline_ms = deadline_to_ms(rt_loop(srv->rt), s->deadline);
  c->close_tag.fn = on_close;
  c->send_tag.fn = on_send;
  c->recv_tag.fn = on_recv;
  c->cancel_tag.fn = on_deferred_cancel;
  c->refs = 2; /* the handler and RECV_CLOSE_ON_SERVER */
  srv->n_calls++;

  grpc_op op;
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  op.data.recv_close_on_server.cancelled = &c->cancelled_flag;
  if (grpc_call_start_batch(c->call, &op, 1, &c->close_tag, NULL) !=
      GRPC_CALL_OK)
    rt__defer(srv->rt, &c->close_tag, 0);

  int reads_first = m->kind == RT_UNARY || m->kind == RT_SERVER_STREAMING;
  grpc_byte_buffer *payload = s->payload;
  s->payload = NULL;
  if (reads_first) {
    int missing = payload == NULL;
    int err = UV_EINVAL;
    if (!missing) {
      err = rt__unpack(m->input, payload, &c->req, c->bad_string,
                       sizeof(c->bad_string));
      grpc_byte_buffer_destroy(payload);
    }
    if (err == UV_EILSEQ) {
      /* A string with a NUL or bad UTF-8: name the field. */
      rt_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, c->bad_string, NULL);
      return;
    }
    if (err != 0) {
      rt_call_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "request: %s %s",
                   missing ? "missing" : "malformed", m->input->name);
      return;
    }
  } else if (payload != NULL) {
    grpc_byte_buffer_destroy(payload);
  }
  e->svc->dispatch(c, c->req, e->impl, s->method, e->data);
}

static void on_unknown_done(rt_tag_t *tag, int ok) {
  rt_unknown_t *u = (rt_unknown_t *)tag;
  rt_server_t *srv = u->srv;
  grpc_call_unref(u->call);
  grpc_slice_unref(u->details);
  free(u);
  srv->n_calls--;
  server_maybe_stopped(srv);
}

static void unknown_start(rt_slot_t *s) {
  rt_server_t *srv = s->srv;
  rt_unknown_t *u = calloc(1, sizeof(*u));
  if (u == NULL) {
    grpc_call_cancel(s->call, NULL);
    grpc_call_unref(s->call);
    return;
  }
  u->tag.fn = on_unknown_done;
  u->srv = srv;
  u->call = s->call;
  char *method = grpc_slice_to_c_string(s->details.method);
  char buf[512];
  snprintf(buf, sizeof(buf), "unknown method %s", method);
  gpr_free(method);
  u->details = grpc_slice_from_copied_string(buf);
  srv->n_calls++;
  grpc_op ops[3];
  memset(ops, 0, sizeof(ops));
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[1].data.recv_close_on_server.cancelled = &u->cancelled;
  ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[2].data.send_status_from_server.status = GRPC_STATUS_UNIMPLEMENTED;
  ops[2].data.send_status_from_server.status_details = &u->details;
  if (grpc_call_start_batch(u->call, ops, 3, &u->tag, NULL) != GRPC_CALL_OK)
    rt__defer(srv->rt, &u->tag, 0);
}

static void on_slot(rt_tag_t *tag, int ok) {
  rt_slot_t *s = (rt_slot_t *)tag;
  rt_server_t *srv = s->srv;
  srv->n_slots--;
  /* Take the call out of the slot and re-arm the slot first, so that gRPC
   * can match the next call while this one runs. */
  rt_slot_t got = *s;
  s->call = NULL;
  s->payload = NULL;
  grpc_metadata_array_destroy(&s->md);
  if (ok && !srv->shutting_down)
    slot_request(s);
  if (ok && got.call != NULL) {
    if (got.entry != NULL)
      call_start(&got);
    else
      unknown_start(&got);
  } else if (got.payload != NULL) {
    grpc_byte_buffer_destroy(got.payload);
  }
  if (got.entry == NULL)
    grpc_call_details_destroy(&got.details);
  server_maybe_stopped(srv);
}

static void slot_request(rt_slot_t *s) {
  rt_server_t *srv = s->srv;
  grpc_completion_queue *cq = rt__cq(srv->rt);
  grpc_metadata_array_init(&s->md);
  grpc_call_error e;
  if (s->entry != NULL) {
    const rt_method_t *m = &s->entry->svc->methods[s->method];
    int reads_first = m->kind == RT_UNARY || m->kind == RT_SERVER_STREAMING;
    e = grpc_server_request_registered_call(
        srv->server, s->entry->handles[s->method], &s->call, &s->deadline,
        &s->md, reads_first ? &s->payload : NULL, cq, cq, &s->tag);
  } else {
    grpc_call_details_init(&s->details);
    e = grpc_server_request_call(srv->server, &s->call, &s->details, &s->md, cq,
                                 cq, &s->tag);
  }
  srv->n_slots++;
  if (e != GRPC_CALL_OK)
    rt__defer(srv->rt, &s->tag, 0);
}

/* ------------------------------------------------------------- server */

int rt_server_new(rt_t *rt, const rt_server_opts_t *opts, rt_server_t **out) {
  if (rt == NULL || out == NULL)
    return UV_EINVAL;
  if (opts != NULL && opts->size < sizeof(*opts))
    return UV_EINVAL;
  rt_server_t *srv = calloc(1, sizeof(*srv));
  if (srv == NULL)
    return UV_ENOMEM;
  srv->rt = rt;
  srv->max_message = RT_DEFAULT_MAX_MESSAGE;
  srv->grace_ms = RT_DEFAULT_GRACE_MS;
  if (opts != NULL && opts->max_message_bytes > 0)
    srv->max_message = opts->max_message_bytes;
  if (opts != NULL && opts->shutdown_grace_ms > 0)
    srv->grace_ms = opts->shutdown_grace_ms;

  grpc_arg args[3];
  args[0].type = GRPC_ARG_INTEGER;
  args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[0].value.integer = srv->max_message;
  args[1].type = GRPC_ARG_INTEGER;
  args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
  args[1].value.integer = srv->max_message;
  /* gRPC turns SO_REUSEPORT on by default, so a second server on a busy
   * port would bind "successfully" and share its traffic. */
  args[2].type = GRPC_ARG_INTEGER;
  args[2].key = GRPC_ARG_ALLOW_REUSEPORT;
  args[2].value.integer = 0;
  grpc_channel_args ca = {3, args};
  srv->server = grpc_server_create(&ca, NULL);
  if (srv->server == NULL) {
    free(srv);
    return UV_ENOMEM;
  }
  grpc_server_register_completion_queue(srv->server, rt__cq(rt), NULL);
  srv->generic.tag.fn = on_slot;
  srv->generic.srv = srv;
  srv->shutdown_tag.fn = NULL;
  rt__count_server(rt, 1);

  int err = rt_health_new(srv, &srv->health);
  if (err != 0)
    goto fail;
  err = rt_reflection_new(srv, &srv->reflection);
  if (err != 0)
    goto fail;
  *out = srv;
  return 0;

fail:
  rt_health_free(srv->health);
  for (size_t i = 0; i < srv->n_entries; i++) {
    free(srv->entries[i].handles);
    free(srv->entries[i].slots);
  }
  free(srv->entries);
  grpc_server_destroy(srv->server);
  rt__count_server(rt, -1);
  free(srv);
  return err;
}

int rt_server_add_service(rt_server_t *srv, const rt_service_t *svc,
                          const void *impl, void *data) {
  if (srv == NULL || svc == NULL || impl == NULL || svc->dispatch == NULL)
    return UV_EINVAL;
  if (srv->started || srv->shutting_down)
    return UV_EBUSY;
  for (size_t i = 0; i < srv->n_entries; i++)
    if (strcmp(srv->entries[i].svc->name, svc->name) == 0)
      return UV_EEXIST;
  rt_entry_t *entries =
      realloc(srv->entries, (srv->n_entries + 1) * sizeof(*entries));
  if (entries == NULL)
    return UV_ENOMEM;
  srv->entries = entries;
  rt_entry_t *e = &entries[srv->n_entries];
  memset(e, 0, sizeof(*e));
  e->handles = calloc(svc->n_methods ? svc->n_methods : 1, sizeof(void *));
  e->slots = calloc((svc->n_methods ? svc->n_methods : 1) * RT_SLOTS,
                    sizeof(rt_slot_t));
  if (e->handles == NULL || e->slots == NULL) {
    free(e->handles);
    free(e->slots);
    return UV_ENOMEM;
  }
  e->svc = svc;
  e->impl = impl;
  e->data = data;
  for (size_t i = 0; i < svc->n_methods; i++) {
    const rt_method_t *m = &svc->methods[i];
    int reads_first = m->kind == RT_UNARY || m->kind == RT_SERVER_STREAMING;
    /* The path strings are static (generated), so they outlive gRPC. */
    e->handles[i] = grpc_server_register_method(
        srv->server, m->path, NULL,
        reads_first ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER
                    : GRPC_SRM_PAYLOAD_NONE,
        0);
    if (e->handles[i] == NULL) {
      /* Another service already owns this path. Methods registered so far
       * stay with gRPC but are never requested, so they are harmless. */
      free(e->handles);
      free(e->slots);
      return UV_EEXIST;
    }
  }
  /* Health and reflection register themselves before `reflection` is set;
   * it lists those on its own. */
  if (srv->reflection != NULL) {
    int err = rt_reflection_add_service(srv->reflection, svc->name);
    if (err != 0) {
      free(e->handles);
      free(e->slots);
      return err;
    }
  }
  srv->n_entries++;
  /* Entries moved: re-point the slots. */
  for (size_t i = 0; i < srv->n_entries; i++)
    for (size_t j = 0; j < srv->entries[i].svc->n_methods * RT_SLOTS; j++)
      srv->entries[i].slots[j].entry = &srv->entries[i];
  return 0;
}

int rt_server_listen(rt_server_t *srv, const char *addr, int *port_out) {
  return rt_server_listen_ex(srv, addr, port_out, NULL, 0);
}

int rt_server_listen_ex(rt_server_t *srv, const char *addr, int *port_out,
                        char *why, size_t why_len) {
  if (why_len > 0)
    why[0] = '\0';
  if (srv == NULL || addr == NULL)
    return UV_EINVAL;
  if (srv->started || srv->shutting_down)
    return UV_EBUSY;
  /* gRPC reports every failure as "address already in use": find the
   * real cause with a plain socket first. */
  int err = rt_addr_check_listen(addr, why, why_len);
  if (err != 0)
    return err;
  rt_addr_t a;
  rt_addr_parse(addr, &a, NULL, 0);
  if (a.is_unix) {
    struct stat st;
    if (stat(a.path, &st) == 0 && unlink(a.path) != 0) {
      int e = -errno;
      snprintf(why, why_len, "cannot replace %s: %s", a.path, uv_strerror(e));
      return e;
    }
  }
  grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
  /* The socket file gets its mode from the umask: keep it to 0660. */
  mode_t old_mask = a.is_unix ? umask(0117) : 0;
  int port = grpc_server_add_http2_port(srv->server, addr, creds);
  if (a.is_unix)
    umask(old_mask);
  grpc_server_credentials_release(creds);
  if (port <= 0) {
    snprintf(why, why_len, "cannot listen on %s", addr);
    return UV_EADDRINUSE;
  }
  if (a.is_unix) {
    struct stat st;
    if (stat(a.path, &st) != 0 ||
        ((st.st_mode & 0117) != 0 && chmod(a.path, st.st_mode & 0660) != 0)) {
      int e = -errno;
      snprintf(why, why_len, "cannot restrict the mode of %s: %s", a.path,
               uv_strerror(e));
      return e;
    }
  }
  if (port_out != NULL)
    *port_out = a.is_unix ? 0 : port;
  return 0;
}

int rt_server_start(rt_server_t *srv) {
  if (srv == NULL)
    return UV_EINVAL;
  if (srv->started || srv->shutting_down)
    return UV_EBUSY;
  grpc_server_start(srv->server);
  srv->started = 1;
  rt__hold(srv->rt);
  for (size_t i = 0; i < srv->n_entries; i++) {
    rt_entry_t *e = &srv->entries[i];
    for (size_t j = 0; j < e->svc->n_methods * RT_SLOTS; j++) {
      e->slots[j].tag.fn = on_slot;
      e->slots[j].srv = srv;
      e->slots[j].entry = e;
      e->slots[j].method = j / RT_SLOTS;
      slot_request(&e->slots[j]);
    }
  }
  slot_request(&srv->generic);
  rt_health_set(srv->health, "", 1);
  for (size_t i = 0; i < srv->n_entries; i++)
    rt_health_set(srv->health, srv->entries[i].svc->name, 1);
  return 0;
}

void rt_server_set_serving(rt_server_t *srv, const char *service, int serving) {
  if (srv != NULL && srv->health != NULL)
    rt_health_set(srv->health, service ? service : "", serving);
}

static void on_handle_closed(uv_handle_t *h) {
  rt_server_t *srv = h->data;
  srv->n_handles--;
  server_maybe_stopped(srv);
}

static void close_signals(rt_server_t *srv) {
  if (!srv->signals_on)
    return;
  srv->signals_on = 0;
  uv_close((uv_handle_t *)&srv->sigint, on_handle_closed);
  uv_close((uv_handle_t *)&srv->sigterm, on_handle_closed);
}

static void server_maybe_stopped(rt_server_t *srv) {
  if (!srv->shutting_down || srv->stopped)
    return;
  if (srv->started && !srv->shutdown_tag_done)
    return;
  if (srv->n_calls > 0 || srv->n_slots > 0)
    return;
  if (!uv_is_closing((uv_handle_t *)&srv->grace)) {
    uv_close((uv_handle_t *)&srv->grace, on_handle_closed);
    return; /* back here once it is closed */
  }
  if (srv->n_handles > 0)
    return;
  srv->stopped = 1;
  if (srv->started)
    rt__unhold(srv->rt);
  if (srv->stopped_cb != NULL)
    srv->stopped_cb(srv, srv->stopped_data);
}

static void on_shutdown_tag(rt_tag_t *tag, int ok) {
  rt_server_t *srv =
      (rt_server_t *)((char *)tag - offsetof(rt_server_t, shutdown_tag));
  srv->shutdown_tag_done = 1;
  uv_timer_stop(&srv->grace);
  server_maybe_stopped(srv);
}

static void on_grace(uv_timer_t *t) {
  rt_server_t *srv = t->data;
  if (srv->started) {
    grpc_server_cancel_all_calls(srv->server);
  } else {
    server_maybe_stopped(srv);
  }
}

int rt_server_shutdown(rt_server_t *srv, rt_server_stopped_cb cb, void *data) {
  if (srv == NULL)
    return UV_EINVAL;
  if (srv->shutting_down)
    return UV_EALREADY;
  int err = uv_timer_init(rt_loop(srv->rt), &srv->grace);
  if (err != 0)
    return err;
  srv->grace.data = srv;
  srv->n_handles++;
  srv->shutting_down = 1;
  srv->stopped_cb = cb;
  srv->stopped_data = data;
  close_signals(srv);
  /* Ends Watch streams now rather than after the grace period. */
  rt_health_shutdown(srv->health);
  if (srv->started) {
    srv->shutdown_tag.fn = on_shutdown_tag;
    grpc_server_shutdown_and_notify(srv->server, rt__cq(srv->rt),
                                    &srv->shutdown_tag);
    uv_timer_start(&srv->grace, on_grace, (uint64_t)srv->grace_ms, 0);
  } else {
    /* Never started: nothing in flight; report on the next iteration. */
    uv_timer_start(&srv->grace, on_grace, 0, 0);
  }
  return 0;
}

void rt_server_free(rt_server_t *srv) {
  if (srv == NULL)
    return;
  assert((srv->stopped || !srv->shutting_down) &&
         "rt_server_free: before the shutdown callback");
  assert(!srv->started || srv->stopped);
  rt_reflection_free(srv->reflection);
  rt_health_free(srv->health);
  grpc_server_destroy(srv->server);
  for (size_t i = 0; i < srv->n_entries; i++) {
    free(srv->entries[i].handles);
    free(srv->entries[i].slots);
  }
  free(srv->entries);
  rt__count_server(srv->rt, -1);
  free(srv);
}

static void on_signal(uv_signal_t *h, int signum) {
  rt_server_t *srv = h->data;
  if (srv->shutting_down)
    return;
  rt_server_shutdown(srv, srv->signal_cb, srv->signal_data);
}

int rt_server_stop_on_signals(rt_server_t *srv, rt_server_stopped_cb cb,
                              void *data) {
  if (srv == NULL)
    return UV_EINVAL;
  if (srv->signals_on || srv->shutting_down)
    return UV_EBUSY;
  uv_loop_t *loop = rt_loop(srv->rt);
  int err = uv_signal_init(loop, &srv->sigint);
  if (err != 0)
    return err;
  err = uv_signal_init(loop, &srv->sigterm);
  if (err != 0) {
    srv->n_handles++;
    srv->sigint.data = srv;
    uv_close((uv_handle_t *)&srv->sigint, on_handle_closed);
    return err;
  }
  srv->sigint.data = srv;
  srv->sigterm.data = srv;
  srv->n_handles += 2;
  srv->signals_on = 1;
  srv->signal_cb = cb;
  srv->signal_data = data;
  if ((err = uv_signal_start(&srv->sigint, on_signal, SIGINT)) != 0 ||
      (err = uv_signal_start(&srv->sigterm, on_signal, SIGTERM)) != 0) {
    close_signals(srv);
    return err;
  }
  /* Signal handles must not keep the loop alive by themselves. */
  uv_unref((uv_handle_t *)&srv->sigint);
  uv_unref((uv_handle_t *)&srv->sigterm);
  return 0;
}
