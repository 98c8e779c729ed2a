/*
 * rt_call.c - one server-side call: its references, the send queue, reads
 * of a streamed request, cancellation and the final status.
 *
 * It knows nothing of the server that accepted the call: rt_server.c hands
 * over a grpc_call with rt__call_start() and is told through the `gone`
 * callback when the runtime has freed it. Health, reflection and every
 * service handler use these functions, so they sit above this file and not
 * above the server core.
 *
 * A call is reference counted: one reference for the handler (dropped by
 * rt_call_finish) and one per batch in flight. GRPC_OP_RECV_CLOSE_ON_SERVER
 * is started as soon as the call arrives; its completion is how client
 * cancellation, deadline expiry and server shutdown are seen. Sends are
 * queued and chained, one send batch in flight at a time.
 */
#include <assert.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"
#include "rt_wire.h"

/* A string an accessor handed out; freed with the call. */
typedef struct rt_str_s {
  struct rt_str_s *next;
  char s[];
} rt_str_t;

/* An outgoing message waiting for the send op. */
typedef struct rt_out_s {
  struct rt_out_s *next;
  grpc_byte_buffer *bb;
} rt_out_t;

struct rt_call_s {
  rt_t *rt;
  rt_call_gone_fn gone; /* told once the call is freed */
  void *owner;
  void *data; /* the service's `data` */
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
  rt_call_finish_cb finish_cb; /* rt_call_on_finish */
  void *finish_data;
  grpc_byte_buffer *in_flight; /* the message of the send batch */
  grpc_status_code code;
  grpc_slice details;
  int details_set;

  rt_tag_t recv_tag;
  grpc_byte_buffer *recv_bb;
  rt_call_read_cb read_cb;
  void *read_data;

  grpc_metadata_array md; /* the request headers */
  rt_str_t *strs;         /* strings handed out by the accessors */
  rt_peer_t *peer;        /* read on first use */
};

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
  rt_call_gone_fn gone = c->gone;
  void *owner = c->owner;
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
  grpc_metadata_array_destroy(&c->md);
  for (rt_str_t *p = c->strs, *next; p != NULL; p = next) {
    next = p->next;
    free(p);
  }
  if (c->peer != NULL)
    free((void *)c->peer->sans);
  free(c->peer);
  free(c);
  gone(owner);
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
    rt__defer(c->rt, &c->send_tag, 0);
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
  if (call->finish_cb != NULL) {
    rt_call_finish_cb cb = call->finish_cb;
    call->finish_cb = NULL;
    if (call->cancelled)
      cb(call, GRPC_STATUS_CANCELLED, "cancelled before the call ended", final,
         call->finish_data);
    else if (call->malformed)
      cb(call, code,
         call->bad_string[0] != '\0' ? call->bad_string : "malformed request",
         NULL, call->finish_data);
    else
      cb(call, code, message ? message : "", final, call->finish_data);
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

void rt_call_on_finish(rt_call_t *call, rt_call_finish_cb cb, void *data) {
  call->finish_cb = cb;
  call->finish_data = data;
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
    rt__defer(call->rt, &call->recv_tag, 0);
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
  return call->data;
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
    rt__defer(call->rt, &call->cancel_tag, 1);
  }
}

/* ------------------------------------------------ headers and the peer */

/* Keeps a copy of `len` bytes of `p` with the call; NULL on no memory. */
static const char *keep(rt_call_t *c, const char *p, size_t len) {
  rt_str_t *s = malloc(sizeof(*s) + len + 1);
  if (s == NULL)
    return NULL;
  memcpy(s->s, p, len);
  s->s[len] = '\0';
  s->next = c->strs;
  c->strs = s;
  return s->s;
}

static int key_is(grpc_slice k, const char *key) {
  size_t n = strlen(key);
  if (GRPC_SLICE_LENGTH(k) != n)
    return 0;
  const char *p = (const char *)GRPC_SLICE_START_PTR(k);
  for (size_t i = 0; i < n; i++) {
    char a = p[i], b = key[i];
    if (a >= 'A' && a <= 'Z')
      a = (char)(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z')
      b = (char)(b - 'A' + 'a');
    if (a != b)
      return 0;
  }
  return 1;
}

const char *rt_call_metadata(rt_call_t *call, const char *key) {
  if (call == NULL || key == NULL)
    return NULL;
  size_t klen = strlen(key);
  if (klen >= 4 && strcmp(key + klen - 4, "-bin") == 0)
    return NULL;
  for (size_t i = 0; i < call->md.count; i++) {
    const grpc_metadata *m = &call->md.metadata[i];
    if (!key_is(m->key, key))
      continue;
    const char *v = (const char *)GRPC_SLICE_START_PTR(m->value);
    size_t len = GRPC_SLICE_LENGTH(m->value);
    if (memchr(v, '\0', len) != NULL)
      return NULL;
    return keep(call, v, len);
  }
  return NULL;
}

size_t rt_call_metadata_count(const rt_call_t *call, const char *key) {
  size_t n = 0;
  for (size_t i = 0; call != NULL && key != NULL && i < call->md.count; i++)
    n += key_is(call->md.metadata[i].key, key);
  return n;
}

/* The first value of auth context property `name`, kept with the call. */
static const char *auth_prop(rt_call_t *c, grpc_auth_context *ctx,
                             const char *name) {
  grpc_auth_property_iterator it =
      grpc_auth_context_find_properties_by_name(ctx, name);
  const grpc_auth_property *p = grpc_auth_property_iterator_next(&it);
  return p != NULL ? keep(c, p->value, p->value_length) : NULL;
}

const rt_peer_t *rt_call_peer(rt_call_t *call) {
  static const rt_peer_t unknown = {.address = "unknown"};
  if (call->peer != NULL)
    return call->peer;
  rt_peer_t *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return &unknown;
  call->peer = p;
  char *addr = grpc_call_get_peer(call->call);
  p->address = addr != NULL ? keep(call, addr, strlen(addr)) : NULL;
  gpr_free(addr);
  if (p->address == NULL)
    p->address = "unknown";
  p->is_unix = strncmp(p->address, "unix:", 5) == 0;
  grpc_auth_context *ctx = grpc_call_auth_context(call->call);
  if (ctx == NULL)
    return p;
  const char *type =
      auth_prop(call, ctx, GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
  p->tls =
      type != NULL && (strcmp(type, GRPC_SSL_TRANSPORT_SECURITY_TYPE) == 0 ||
                       strcmp(type, GRPC_TLS_TRANSPORT_SECURITY_TYPE) == 0);
  /* A client certificate is only in the context when it was verified
   * against the listener's client CA (rt_creds_tls_server). */
  if (p->tls && grpc_auth_context_peer_is_authenticated(ctx)) {
    p->subject = auth_prop(call, ctx, GRPC_X509_SUBJECT_PROPERTY_NAME);
    p->common_name = auth_prop(call, ctx, GRPC_X509_CN_PROPERTY_NAME);
    size_t n = 0;
    grpc_auth_property_iterator it = grpc_auth_context_find_properties_by_name(
        ctx, GRPC_X509_SAN_PROPERTY_NAME);
    while (grpc_auth_property_iterator_next(&it) != NULL)
      n++;
    const char **sans = n > 0 ? calloc(n, sizeof(*sans)) : NULL;
    it = grpc_auth_context_find_properties_by_name(ctx,
                                                   GRPC_X509_SAN_PROPERTY_NAME);
    const grpc_auth_property *prop;
    while (sans != NULL && (prop = grpc_auth_property_iterator_next(&it)) &&
           p->n_sans < n) {
      const char *v = keep(call, prop->value, prop->value_length);
      if (v != NULL)
        sans[p->n_sans++] = v;
    }
    p->sans = sans;
    p->authenticated = p->subject != NULL || p->common_name != NULL;
  }
  grpc_auth_context_release(ctx);
  return p;
}

/* ------------------------------------------------------- a new call */

int rt__call_start(const rt_call_start_t *s) {
  const rt_method_t *m = &s->svc->methods[s->method];
  rt_call_t *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    /* No memory for the call: drop it; the client sees CANCELLED. */
    grpc_call_cancel(s->call, NULL);
    grpc_call_unref(s->call);
    if (s->payload != NULL)
      grpc_byte_buffer_destroy(s->payload);
    return UV_ENOMEM;
  }
  c->rt = s->rt;
  c->gone = s->gone;
  c->owner = s->owner;
  c->data = s->data;
  c->method = m;
  c->method_index = s->method;
  c->call = s->call;
  c->deadline_ms = deadline_to_ms(rt_loop(s->rt), s->deadline);
  c->close_tag.fn = on_close;
  c->send_tag.fn = on_send;
  c->recv_tag.fn = on_recv;
  c->cancel_tag.fn = on_deferred_cancel;
  c->refs = 2; /* the handler and RECV_CLOSE_ON_SERVER */
  if (s->md != NULL) {
    c->md = *s->md;
    memset(s->md, 0, sizeof(*s->md));
  }

  grpc_op op;
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  op.data.recv_close_on_server.cancelled = &c->cancelled_flag;
  if (grpc_call_start_batch(c->call, &op, 1, &c->close_tag, NULL) !=
      GRPC_CALL_OK)
    rt__defer(c->rt, &c->close_tag, 0);

  int reads_first = m->kind == RT_UNARY || m->kind == RT_SERVER_STREAMING;
  grpc_byte_buffer *payload = s->payload;
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
      return 0;
    }
    if (err != 0) {
      rt_call_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "request: %s %s",
                   missing ? "missing" : "malformed", m->input->name);
      return 0;
    }
  } else if (payload != NULL) {
    grpc_byte_buffer_destroy(payload);
  }
  s->svc->dispatch(c, c->req, s->impl, s->method, s->data);
  return 0;
}
