/*
 * test_rt.c - the RPC runtime (rt.h): server and client calls of every
 * kind, asynchronous completion, deadlines, cancellation, limits, unknown
 * methods and shutdown.
 *
 * Every test owns a loop, a runtime and a server on 127.0.0.1 port 0 (or a
 * unix socket in a temporary directory). A test counts the events it waits
 * for; the last one shuts the server down, so uv_run returns by itself once
 * everything is released, and the test ends with uv_loop_close() == 0.
 * Client- and bidi-streaming calls are made by a plain blocking gRPC client
 * on its own thread, since rt.h only starts unary and server-streaming
 * calls.
 */
#include <criterion/criterion.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt.h"
#include "testsvc.smaug.h"

/* ------------------------------------------------------------ fixture */

typedef struct {
  uv_loop_t loop;
  rt_t *rt;
  rt_server_t *srv;
  rt_channel_t *ch;
  int port;
  char target[300];
  char tmpdir[64];
  int pending; /* events still expected before shutdown */
  int stopped; /* shutdown callback ran */
  int shut;    /* shutdown started */
  /* recorded by handlers and callbacks */
  int handled;
  int cancels;
  int dones;
  grpc_status_code code;
  char message[256];
  char text[64];
  int trace[256];
  int n_trace;
  rt_client_call_t *cc;
  rt_call_t *held[8];
  int n_held;
  int hold_target; /* shut down once this many "hang" calls arrived */
} fx_t;

static fx_t fx;

static void on_stopped(rt_server_t *srv, void *data) {
  fx_t *f = data;
  f->stopped++;
}

static void fx_shutdown(fx_t *f) {
  if (f->shut)
    return;
  f->shut = 1;
  rt_channel_release(f->ch);
  f->ch = NULL;
  cr_assert_eq(rt_server_shutdown(f->srv, on_stopped, f), 0);
}

/* One expected event happened; the last one stops the server. */
static void fx_event(fx_t *f) {
  if (--f->pending == 0)
    fx_shutdown(f);
}

static void fx_run(fx_t *f) {
  cr_assert_eq(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  cr_assert_eq(f->stopped, 1, "the server did not stop");
  rt_server_free(f->srv);
  f->srv = NULL;
  rt_free(f->rt);
  f->rt = NULL;
  cr_assert_eq(uv_loop_close(&f->loop), 0);
  if (f->tmpdir[0] != '\0')
    rmdir(f->tmpdir);
}

/* --------------------------------------------------------- test server */

typedef struct {
  uv_timer_t timer;
  uv_work_t work;
  rt_call_t *call;
  char text[64];
} pending_reply_t;

static void reply_text(rt_call_t *call, const char *text) {
  Rttest__EchoReply r = RTTEST__ECHO_REPLY__INIT;
  r.text = (char *)text;
  rt_call_reply(call, &r.base);
}

static void on_timer_closed(uv_handle_t *h) {
  free(h->data);
}

static void on_reply_timer(uv_timer_t *t) {
  pending_reply_t *p = t->data;
  reply_text(p->call, "timer");
  uv_close((uv_handle_t *)t, on_timer_closed);
}

static void work_fn(uv_work_t *w) {
  pending_reply_t *p = w->data;
  snprintf(p->text, sizeof(p->text), "work");
}

static void after_work(uv_work_t *w, int status) {
  pending_reply_t *p = w->data;
  reply_text(p->call, status == 0 ? p->text : "cancelled");
  free(p);
}

static void on_hang_cancel(rt_call_t *call, void *data) {
  fx_t *f = data;
  f->cancels++;
  rt_call_fail(call, GRPC_STATUS_CANCELLED, "cancelled");
  fx_event(f);
}

static void h_echo(rt_call_t *call, const Rttest__EchoRequest *req,
                   void *data) {
  fx_t *f = data;
  f->handled++;
  const char *mode = req->mode;
  if (strcmp(mode, "timer") == 0) {
    pending_reply_t *p = calloc(1, sizeof(*p));
    p->call = call;
    uv_timer_init(&f->loop, &p->timer);
    p->timer.data = p;
    uv_timer_start(&p->timer, on_reply_timer, 5, 0);
  } else if (strcmp(mode, "work") == 0) {
    pending_reply_t *p = calloc(1, sizeof(*p));
    p->call = call;
    p->work.data = p;
    cr_assert_eq(uv_queue_work(&f->loop, &p->work, work_fn, after_work), 0);
  } else if (strcmp(mode, "hang") == 0 || strcmp(mode, "hang-cancel") == 0) {
    rt_call_on_cancel(call, on_hang_cancel, f);
    if (f->n_held < 8)
      f->held[f->n_held++] = call;
    if (strcmp(mode, "hang-cancel") == 0)
      rt_client_call_cancel(f->cc);
    if (f->hold_target > 0 && f->n_held == f->hold_target)
      fx_shutdown(f); /* the shutdown test: every call has arrived */
  } else if (req->reply_bytes > 0) {
    Rttest__EchoReply r = RTTEST__ECHO_REPLY__INIT;
    r.blob.len = (size_t)req->reply_bytes;
    r.blob.data = calloc(1, r.blob.len);
    rt_call_reply(call, &r.base);
    free(r.blob.data);
  } else {
    reply_text(call, req->text);
  }
}

static void h_count(rt_call_t *call, const Rttest__CountRequest *req,
                    void *data) {
  for (int i = 0; i < req->n; i++) {
    Rttest__CountReply r = RTTEST__COUNT_REPLY__INIT;
    r.i = i;
    cr_assert_eq(rt_call_send(call, &r.base), 0);
  }
  rt_call_finish(call, GRPC_STATUS_OK, NULL, NULL);
}

typedef struct {
  int64_t sum;
} sum_t;

static void on_sum_read(rt_call_t *call, const ProtobufCMessage *msg,
                        void *data) {
  sum_t *s = data;
  if (msg == NULL) {
    Rttest__Num r = RTTEST__NUM__INIT;
    r.v = s->sum;
    free(s);
    rt_call_reply(call, &r.base);
    return;
  }
  s->sum += ((const Rttest__Num *)msg)->v;
  cr_assert_eq(rt_call_read(call, on_sum_read, s), 0);
}

static void h_sum(rt_call_t *call, void *data) {
  sum_t *s = calloc(1, sizeof(*s));
  cr_assert_eq(rt_call_read(call, on_sum_read, s), 0);
}

static void on_chat_read(rt_call_t *call, const ProtobufCMessage *msg,
                         void *data) {
  if (msg == NULL) {
    rt_call_finish(call, GRPC_STATUS_OK, NULL, NULL);
    return;
  }
  Rttest__EchoReply r = RTTEST__ECHO_REPLY__INIT;
  r.text = ((const Rttest__EchoRequest *)msg)->text;
  cr_assert_eq(rt_call_send(call, &r.base), 0);
  cr_assert_eq(rt_call_read(call, on_chat_read, data), 0);
}

static void h_chat(rt_call_t *call, void *data) {
  cr_assert_eq(rt_call_read(call, on_chat_read, NULL), 0);
}

static const rttest_test_handlers_t handlers = {
    .echo = h_echo, .count = h_count, .sum = h_sum, .chat = h_chat};

static void fx_start(fx_t *f, const rt_server_opts_t *opts, int on_unix) {
  memset(f, 0, sizeof(*f));
  cr_assert_eq(uv_loop_init(&f->loop), 0);
  cr_assert_eq(rt_new(&f->loop, &f->rt), 0);
  cr_assert_eq(rt_server_new(f->rt, opts, &f->srv), 0);
  cr_assert_eq(rttest_test_register(f->srv, &handlers, f), 0);
  if (on_unix) {
    strcpy(f->tmpdir, "/tmp/smaug-rt-XXXXXX");
    cr_assert_not_null(mkdtemp(f->tmpdir));
    snprintf(f->target, sizeof(f->target), "unix:%s/sock", f->tmpdir);
    cr_assert_eq(rt_server_listen(f->srv, f->target, &f->port), 0);
    cr_assert_eq(f->port, 0);
  } else {
    cr_assert_eq(rt_server_listen(f->srv, "127.0.0.1:0", &f->port), 0);
    cr_assert_gt(f->port, 0);
    snprintf(f->target, sizeof(f->target), "127.0.0.1:%d", f->port);
  }
  cr_assert_eq(rt_server_start(f->srv), 0);
  cr_assert_eq(rt_channel_get(f->rt, f->target, &f->ch), 0);
}

/* ------------------------------------------------------- client side */

static void on_echo_msg(rt_client_call_t *call, const ProtobufCMessage *msg,
                        void *data) {
  fx_t *f = data;
  const Rttest__EchoReply *r = (const Rttest__EchoReply *)msg;
  snprintf(f->text, sizeof(f->text), "%s", r->text);
}

static void on_done(rt_client_call_t *call, grpc_status_code code,
                    const char *message, void *data) {
  fx_t *f = data;
  f->dones++;
  f->code = code;
  snprintf(f->message, sizeof(f->message), "%s", message ? message : "");
  if (call == f->cc)
    f->cc = NULL;
  fx_event(f);
}

static void echo(fx_t *f, const char *text, const char *mode,
                 const rt_call_opts_t *opts, rt_client_call_t **out) {
  Rttest__EchoRequest req = RTTEST__ECHO_REQUEST__INIT;
  req.text = (char *)text;
  req.mode = (char *)mode;
  cr_assert_eq(
      rttest_test_echo(f->ch, &req, opts, on_echo_msg, on_done, f, out), 0);
}

/* ------------------------------------------------------- raw client */

/* A blocking gRPC client on its own thread, for client-streaming, bidi
 * and unregistered paths. Results are read after uv_run returns. */
typedef struct {
  fx_t *f;
  const char *path;
  grpc_byte_buffer *send[8];
  int n_send;
  char recv[8][64];
  grpc_byte_buffer *recv_raw[8];
  int n_recv;
  grpc_status_code status;
  char details[256];
  gpr_timespec started, finished;
  uv_thread_t thread;
  uv_async_t async;
} raw_t;

static void pluck(grpc_completion_queue *cq, grpc_call *call, grpc_op *ops,
                  size_t n, void *tag) {
  cr_assert_eq(grpc_call_start_batch(call, ops, n, tag, NULL), GRPC_CALL_OK);
  grpc_event ev = grpc_completion_queue_pluck(
      cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  cr_assert_eq(ev.type, GRPC_OP_COMPLETE);
}

static void raw_thread(void *arg) {
  raw_t *r = arg;
  grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
  grpc_channel_credentials *cr = grpc_insecure_credentials_create();
  grpc_channel *ch = grpc_channel_create(r->f->target, cr, NULL);
  grpc_channel_credentials_release(cr);
  gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                       gpr_time_from_seconds(5, GPR_TIMESPAN));
  r->started = gpr_now(GPR_CLOCK_MONOTONIC);
  grpc_call *call = grpc_channel_create_call(
      ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
      grpc_slice_from_static_string(r->path), NULL, deadline, NULL);
  grpc_metadata_array md, trailing;
  grpc_metadata_array_init(&md);
  grpc_metadata_array_init(&trailing);
  grpc_slice details;
  grpc_op op;
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_SEND_INITIAL_METADATA;
  pluck(cq, call, &op, 1, &op);
  for (int i = 0; i < r->n_send; i++) {
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = r->send[i];
    pluck(cq, call, &op, 1, &op);
    grpc_byte_buffer_destroy(r->send[i]);
  }
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  pluck(cq, call, &op, 1, &op);
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_RECV_INITIAL_METADATA;
  op.data.recv_initial_metadata.recv_initial_metadata = &md;
  pluck(cq, call, &op, 1, &op);
  for (;;) {
    grpc_byte_buffer *bb = NULL;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &bb;
    pluck(cq, call, &op, 1, &op);
    if (bb == NULL || r->n_recv == 8) {
      if (bb != NULL)
        grpc_byte_buffer_destroy(bb);
      break;
    }
    r->recv_raw[r->n_recv++] = bb;
  }
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  op.data.recv_status_on_client.trailing_metadata = &trailing;
  op.data.recv_status_on_client.status = &r->status;
  op.data.recv_status_on_client.status_details = &details;
  pluck(cq, call, &op, 1, &op);
  r->finished = gpr_now(GPR_CLOCK_MONOTONIC);
  char *d = grpc_slice_to_c_string(details);
  snprintf(r->details, sizeof(r->details), "%s", d);
  gpr_free(d);
  grpc_slice_unref(details);
  grpc_metadata_array_destroy(&md);
  grpc_metadata_array_destroy(&trailing);
  grpc_call_unref(call);
  grpc_channel_destroy(ch);
  grpc_completion_queue_shutdown(cq);
  while (grpc_completion_queue_pluck(cq, NULL,
                                     gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
             .type != GRPC_QUEUE_SHUTDOWN)
    ;
  grpc_completion_queue_destroy(cq);
  uv_async_send(&r->async);
}

static void on_raw_closed(uv_handle_t *h) {
  raw_t *r = h->data;
  fx_event(r->f);
}

static void on_raw_done(uv_async_t *a) {
  raw_t *r = a->data;
  uv_thread_join(&r->thread);
  uv_close((uv_handle_t *)a, on_raw_closed);
}

static void raw_add(raw_t *r, const ProtobufCMessage *msg) {
  size_t len = protobuf_c_message_get_packed_size(msg);
  grpc_slice s = grpc_slice_malloc(len);
  protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
  r->send[r->n_send++] = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
}

static void raw_start(raw_t *r, fx_t *f, const char *path) {
  r->f = f;
  r->path = path;
  cr_assert_eq(uv_async_init(&f->loop, &r->async, on_raw_done), 0);
  r->async.data = r;
  cr_assert_eq(uv_thread_create(&r->thread, raw_thread, r), 0);
}

static ProtobufCMessage *raw_msg(raw_t *r, int i,
                                 const ProtobufCMessageDescriptor *d) {
  grpc_byte_buffer_reader rd;
  cr_assert(grpc_byte_buffer_reader_init(&rd, r->recv_raw[i]));
  grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
  grpc_byte_buffer_reader_destroy(&rd);
  ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(s),
                                                  GRPC_SLICE_START_PTR(s));
  grpc_slice_unref(s);
  grpc_byte_buffer_destroy(r->recv_raw[i]);
  cr_assert_not_null(m);
  return m;
}

/* -------------------------------------------------------------- tests */

Test(rt, unary_echo, .timeout = 10) {
  fx_start(&fx, NULL, 0);
  fx.pending = 1;
  echo(&fx, "hello", "", NULL, NULL);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_OK, "%s", fx.message);
  cr_assert_str_eq(fx.text, "hello");
  cr_assert_eq(fx.handled, 1);
}

static void on_count_msg(rt_client_call_t *call, const ProtobufCMessage *msg,
                         void *data) {
  fx_t *f = data;
  if (f->n_trace < 256)
    f->trace[f->n_trace++] = ((const Rttest__CountReply *)msg)->i;
}

Test(rt, server_streaming_keeps_order, .timeout = 10) {
  fx_start(&fx, NULL, 0);
  fx.pending = 1;
  Rttest__CountRequest req = RTTEST__COUNT_REQUEST__INIT;
  req.n = 200;
  cr_assert_eq(
      rttest_test_count(fx.ch, &req, NULL, on_count_msg, on_done, &fx, NULL),
      0);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_OK, "%s", fx.message);
  cr_assert_eq(fx.n_trace, 200);
  for (int i = 0; i < 200; i++)
    cr_assert_eq(fx.trace[i], i, "message %d out of order", i);
}

Test(rt, reply_from_timer, .timeout = 10) {
  fx_start(&fx, NULL, 0);
  fx.pending = 1;
  echo(&fx, "x", "timer", NULL, NULL);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_OK, "%s", fx.message);
  cr_assert_str_eq(fx.text, "timer");
}

Test(rt, reply_from_work_after_callback, .timeout = 10) {
  fx_start(&fx, NULL, 0);
  fx.pending = 1;
  echo(&fx, "x", "work", NULL, NULL);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_OK, "%s", fx.message);
  cr_assert_str_eq(fx.text, "work");
}

Test(rt, deadline_cancels_server_call, .timeout = 10) {
  fx_start(&fx, NULL, 0);
  fx.pending = 2; /* client done + server cancel callback */
  rt_call_opts_t opts = {.timeout_ms = 100};
  echo(&fx, "x", "hang", &opts, &fx.cc);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_DEADLINE_EXCEEDED, "%s",
               rt_status_name(fx.code));
  cr_assert_eq(fx.cancels, 1);
}

static int64_t seen_deadline;
static void h_deadline(rt_call_t *call, const Rttest__EchoRequest *req,
                       void *data) {
  fx_t *f = data;
  seen_deadline = rt_call_deadline_ms(call) - (int64_t)uv_now(&f->loop);
  reply_text(call, "ok");
}

Test(rt, server_sees_deadline, .timeout = 10) {
  static const rttest_test_handlers_t h = {.echo = h_deadline};
  memset(&fx, 0, sizeof(fx));
  cr_assert_eq(uv_loop_init(&fx.loop), 0);
  cr_assert_eq(rt_new(&fx.loop, &fx.rt), 0);
  cr_assert_eq(rt_server_new(fx.rt, NULL, &fx.srv), 0);
  cr_assert_eq(rttest_test_register(fx.srv, &h, &fx), 0);
  cr_assert_eq(rt_server_listen(fx.srv, "127.0.0.1:0", &fx.port), 0);
  snprintf(fx.target, sizeof(fx.target), "127.0.0.1:%d", fx.port);
  cr_assert_eq(rt_server_start(fx.srv), 0);
  cr_assert_eq(rt_channel_get(fx.rt, fx.target, &fx.ch), 0);
  fx.pending = 1;
  rt_call_opts_t opts = {.timeout_ms = 3000};
  echo(&fx, "x", "", &opts, NULL);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_OK, "%s", fx.message);
  cr_assert(seen_deadline > 1000 && seen_deadline <= 3000, "left: %lld",
            (long long)seen_deadline);
}

Test(rt, client_cancel_reaches_server, .timeout = 10) {
  fx_start(&fx, NULL, 0);
  fx.pending = 2; /* client done + server cancel callback */
  echo(&fx, "x", "hang-cancel", NULL, &fx.cc);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_CANCELLED, "%s", rt_status_name(fx.code));
  cr_assert_eq(fx.cancels, 1);
}

Test(rt, unknown_method_is_unimplemented_at_once, .timeout = 10) {
  fx_start(&fx, NULL, 0);
  fx.pending = 1;
  static raw_t r;
  memset(&r, 0, sizeof(r));
  Rttest__EchoRequest req = RTTEST__ECHO_REQUEST__INIT;
  raw_add(&r, &req.base);
  raw_start(&r, &fx, "/rttest.Test/NoSuchMethod");
  fx_run(&fx);
  cr_assert_eq(r.status, GRPC_STATUS_UNIMPLEMENTED, "%s",
               rt_status_name(r.status));
  /* The raw client's deadline is 5 s; the answer must not wait for it. */
  int64_t ms = gpr_time_to_millis(gpr_time_sub(r.finished, r.started));
  cr_assert_lt(ms, 2000);
}

Test(rt, null_handler_is_unimplemented, .timeout = 10) {
  fx_start(&fx, NULL, 0);
  fx.pending = 1;
  Rttest__EchoRequest req = RTTEST__ECHO_REQUEST__INIT;
  cr_assert_eq(
      rttest_test_missing(fx.ch, &req, NULL, on_echo_msg, on_done, &fx, NULL),
      0);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_UNIMPLEMENTED, "%s",
               rt_status_name(fx.code));
}

Test(rt, oversized_request_is_resource_exhausted, .timeout = 10) {
  rt_server_opts_t opts = {.size = sizeof(opts), .max_message_bytes = 1024};
  fx_start(&fx, &opts, 0);
  fx.pending = 1;
  Rttest__EchoRequest req = RTTEST__ECHO_REQUEST__INIT;
  uint8_t blob[4096] = {0};
  req.blob.data = blob;
  req.blob.len = sizeof(blob);
  cr_assert_eq(
      rttest_test_echo(fx.ch, &req, NULL, on_echo_msg, on_done, &fx, NULL), 0);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_RESOURCE_EXHAUSTED, "%s",
               rt_status_name(fx.code));
  cr_assert_eq(fx.handled, 0);
}

Test(rt, oversized_response_is_resource_exhausted, .timeout = 10) {
  fx_start(&fx, NULL, 0);
  fx.pending = 1;
  Rttest__EchoRequest req = RTTEST__ECHO_REQUEST__INIT;
  req.reply_bytes = 8192;
  rt_call_opts_t opts = {.max_message_bytes = 1024};
  cr_assert_eq(
      rttest_test_echo(fx.ch, &req, &opts, on_echo_msg, on_done, &fx, NULL), 0);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_RESOURCE_EXHAUSTED, "%s",
               rt_status_name(fx.code));
}

Test(rt, shutdown_with_calls_in_flight, .timeout = 20) {
  rt_server_opts_t opts = {.size = sizeof(opts), .shutdown_grace_ms = 50};
  fx_start(&fx, &opts, 0);
  fx.pending = 8; /* 4 client dones + 4 server cancels */
  fx.hold_target = 4;
  for (int i = 0; i < 4; i++)
    echo(&fx, "x", "hang", NULL, NULL);
  fx_run(&fx);
  cr_assert_eq(fx.n_held, 4);
  cr_assert_eq(fx.cancels, 4);
  cr_assert_eq(fx.dones, 4);
  cr_assert_neq(fx.code, GRPC_STATUS_OK);
}

Test(rt, unix_socket_listener, .timeout = 10) {
  fx_start(&fx, NULL, 1);
  fx.pending = 1;
  echo(&fx, "over unix", "", NULL, NULL);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_OK, "%s", fx.message);
  cr_assert_str_eq(fx.text, "over unix");
}

Test(rt, channel_is_shared_per_target, .timeout = 10) {
  fx_start(&fx, NULL, 0);
  rt_channel_t *a = NULL, *b = NULL, *c = NULL;
  cr_assert_eq(rt_channel_get(fx.rt, fx.target, &a), 0);
  cr_assert_eq(rt_channel_get(fx.rt, fx.target, &b), 0);
  cr_assert_eq(rt_channel_get(fx.rt, "127.0.0.1:1", &c), 0);
  cr_assert_eq(a, fx.ch);
  cr_assert_eq(a, b);
  cr_assert_neq(a, c);
  cr_assert_str_eq(rt_channel_target(a), fx.target);
  rt_channel_release(a);
  rt_channel_release(b);
  rt_channel_release(c);
  fx.pending = 1;
  echo(&fx, "still open", "", NULL, NULL);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_OK, "%s", fx.message);
}

Test(rt, client_streaming_sum, .timeout = 10) {
  fx_start(&fx, NULL, 0);
  fx.pending = 1;
  static raw_t r;
  memset(&r, 0, sizeof(r));
  for (int i = 1; i <= 5; i++) {
    Rttest__Num n = RTTEST__NUM__INIT;
    n.v = i;
    raw_add(&r, &n.base);
  }
  raw_start(&r, &fx, "/rttest.Test/Sum");
  fx_run(&fx);
  cr_assert_eq(r.status, GRPC_STATUS_OK, "%s", rt_status_name(r.status));
  cr_assert_eq(r.n_recv, 1);
  Rttest__Num *sum = (Rttest__Num *)raw_msg(&r, 0, &rttest__num__descriptor);
  cr_assert_eq(sum->v, 15);
  protobuf_c_message_free_unpacked(&sum->base, NULL);
}

Test(rt, bidi_echoes_each_message, .timeout = 10) {
  fx_start(&fx, NULL, 0);
  fx.pending = 1;
  static raw_t r;
  memset(&r, 0, sizeof(r));
  const char *words[] = {"a", "b", "c"};
  for (int i = 0; i < 3; i++) {
    Rttest__EchoRequest m = RTTEST__ECHO_REQUEST__INIT;
    m.text = (char *)words[i];
    raw_add(&r, &m.base);
  }
  raw_start(&r, &fx, "/rttest.Test/Chat");
  fx_run(&fx);
  cr_assert_eq(r.status, GRPC_STATUS_OK, "%s", rt_status_name(r.status));
  cr_assert_eq(r.n_recv, 3);
  for (int i = 0; i < 3; i++) {
    Rttest__EchoReply *m =
        (Rttest__EchoReply *)raw_msg(&r, i, &rttest__echo_reply__descriptor);
    cr_assert_str_eq(m->text, words[i]);
    protobuf_c_message_free_unpacked(&m->base, NULL);
  }
}

Test(rt, malformed_request_is_invalid_argument, .timeout = 10) {
  fx_start(&fx, NULL, 0);
  fx.pending = 1;
  static raw_t r;
  memset(&r, 0, sizeof(r));
  /* Field 1 (string) with a length running past the end. */
  uint8_t junk[] = {0x0a, 0x7f, 'x'};
  grpc_slice s = grpc_slice_from_copied_buffer((const char *)junk, 3);
  r.send[r.n_send++] = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  raw_start(&r, &fx, "/rttest.Test/Echo");
  fx_run(&fx);
  cr_assert_eq(r.status, GRPC_STATUS_INVALID_ARGUMENT, "%s",
               rt_status_name(r.status));
  cr_assert_str_eq(r.details, "request: malformed rttest.EchoRequest");
  cr_assert_eq(fx.handled, 0);
}

Test(rt, malformed_streamed_request_is_invalid_argument, .timeout = 10) {
  fx_start(&fx, NULL, 0);
  fx.pending = 1;
  static raw_t r;
  memset(&r, 0, sizeof(r));
  Rttest__Num n = RTTEST__NUM__INIT;
  n.v = 1;
  raw_add(&r, &n.base);
  uint8_t junk[] = {0x08}; /* a varint key with no value */
  grpc_slice s = grpc_slice_from_copied_buffer((const char *)junk, 1);
  r.send[r.n_send++] = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  raw_start(&r, &fx, "/rttest.Test/Sum");
  fx_run(&fx);
  cr_assert_eq(r.status, GRPC_STATUS_INVALID_ARGUMENT, "%s",
               rt_status_name(r.status));
  cr_assert_str_eq(r.details, "request: malformed rttest.Num");
}

/* The client decodes Echo's reply as a CountReply: field 1 has the wrong
 * wire type, so the reply does not parse. */
static const rt_method_t echo_as_count = {"/rttest.Test/Echo", "Echo", RT_UNARY,
                                          &rttest__echo_request__descriptor,
                                          &rttest__count_reply__descriptor};

Test(rt, malformed_response_is_internal, .timeout = 10) {
  fx_start(&fx, NULL, 0);
  fx.pending = 1;
  Rttest__EchoRequest req = RTTEST__ECHO_REQUEST__INIT;
  req.text = "not a count";
  cr_assert_eq(rt_client_call_start(fx.ch, &echo_as_count, &req.base, NULL,
                                    on_echo_msg, on_done, &fx, NULL),
               0);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_INTERNAL, "%s", rt_status_name(fx.code));
  cr_assert_str_eq(fx.message, "response: malformed rttest.CountReply");
}

/* A raw request body: field 1 (text) holding `text[0..n)`. */
static void raw_text(raw_t *r, const char *text, size_t n) {
  uint8_t b[64];
  cr_assert_lt(n, sizeof(b) - 2);
  b[0] = 0x0a;
  b[1] = (uint8_t)n;
  memcpy(b + 2, text, n);
  grpc_slice s = grpc_slice_from_copied_buffer((const char *)b, n + 2);
  r->send[r->n_send++] = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
}

Test(rt, nul_in_a_request_string_is_invalid_argument, .timeout = 10) {
  fx_start(&fx, NULL, 0);
  fx.pending = 1;
  static raw_t r;
  memset(&r, 0, sizeof(r));
  raw_text(&r, "a\0b", 3); /* protobuf-c alone would hand out "a" */
  raw_start(&r, &fx, "/rttest.Test/Echo");
  fx_run(&fx);
  cr_assert_eq(r.status, GRPC_STATUS_INVALID_ARGUMENT, "%s",
               rt_status_name(r.status));
  cr_assert_str_eq(r.details, "text: embedded NUL at byte 1");
  cr_assert_eq(fx.handled, 0);
}

Test(rt, bad_utf8_in_a_streamed_request_is_invalid_argument, .timeout = 10) {
  fx_start(&fx, NULL, 0);
  fx.pending = 1;
  static raw_t r;
  memset(&r, 0, sizeof(r));
  raw_text(&r, "fine", 4);
  raw_text(&r, "\xc0\xaf", 2);
  raw_text(&r, "never read", 10);
  raw_start(&r, &fx, "/rttest.Test/Chat");
  fx_run(&fx);
  cr_assert_eq(r.status, GRPC_STATUS_INVALID_ARGUMENT, "%s",
               rt_status_name(r.status));
  cr_assert_str_eq(r.details, "text: invalid UTF-8 at byte 0");
  cr_assert_leq(r.n_recv, 1, "only the good message may be answered");
  for (int i = 0; i < r.n_recv; i++)
    protobuf_c_message_free_unpacked(
        raw_msg(&r, i, &rttest__echo_reply__descriptor), NULL);
}

/* The client decodes Echo's reply as an EchoRequest: the reply's blob (2,
 * bytes) becomes `mode` (2, string), and a blob of zeros holds NULs. */
static const rt_method_t echo_as_request = {
    "/rttest.Test/Echo", "Echo", RT_UNARY, &rttest__echo_request__descriptor,
    &rttest__echo_request__descriptor};

static void on_never(rt_client_call_t *call, const ProtobufCMessage *msg,
                     void *data) {
  cr_assert_fail("a response with a bad string reached the caller");
}

Test(rt, bad_string_in_a_response_fails_the_call, .timeout = 10) {
  fx_start(&fx, NULL, 0);
  fx.pending = 1;
  Rttest__EchoRequest req = RTTEST__ECHO_REQUEST__INIT;
  req.reply_bytes = 3;
  cr_assert_eq(rt_client_call_start(fx.ch, &echo_as_request, &req.base, NULL,
                                    on_never, on_done, &fx, NULL),
               0);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_INTERNAL, "%s", rt_status_name(fx.code));
  cr_assert_str_eq(fx.message, "response: the peer sent a bad string: mode: "
                               "embedded NUL at byte 0");
}

/* Count with n = 0 ends OK with no message: wrong for a unary call. */
static const rt_method_t count_as_unary = {
    "/rttest.Test/Count", "Count", RT_UNARY, &rttest__count_request__descriptor,
    &rttest__count_reply__descriptor};

Test(rt, unary_without_response_is_internal, .timeout = 10) {
  fx_start(&fx, NULL, 0);
  fx.pending = 1;
  Rttest__CountRequest req = RTTEST__COUNT_REQUEST__INIT;
  cr_assert_eq(rt_client_call_start(fx.ch, &count_as_unary, &req.base, NULL,
                                    on_count_msg, on_done, &fx, NULL),
               0);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_INTERNAL, "%s", rt_status_name(fx.code));
}

Test(rt, oversized_reply_from_server_is_resource_exhausted, .timeout = 10) {
  rt_server_opts_t opts = {.size = sizeof(opts), .max_message_bytes = 1024};
  fx_start(&fx, &opts, 0);
  fx.pending = 1;
  Rttest__EchoRequest req = RTTEST__ECHO_REQUEST__INIT;
  req.reply_bytes = 8192;
  cr_assert_eq(
      rttest_test_echo(fx.ch, &req, NULL, on_echo_msg, on_done, &fx, NULL), 0);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_RESOURCE_EXHAUSTED, "%s",
               rt_status_name(fx.code));
}

static void on_never_started(rt_server_t *srv, void *data) {
  (*(int *)data)++;
}

Test(rt, shutdown_of_a_server_never_started, .timeout = 10) {
  uv_loop_t loop;
  rt_t *rt;
  rt_server_t *srv;
  int stopped = 0;
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(rt_new(&loop, &rt), 0);
  cr_assert_eq(rt_server_new(rt, NULL, &srv), 0);
  cr_assert_eq(rt_server_shutdown(srv, on_never_started, &stopped), 0);
  cr_assert_eq(stopped, 0, "the callback ran inside the call");
  cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  cr_assert_eq(stopped, 1);
  rt_server_free(srv);
  rt_free(rt);
  cr_assert_eq(uv_loop_close(&loop), 0);
}

static void on_signal_stop(rt_server_t *srv, void *data) {
  fx_t *f = data;
  f->stopped++;
  rt_channel_release(f->ch);
  f->ch = NULL;
}

static void h_raise(rt_call_t *call, const Rttest__EchoRequest *req,
                    void *data) {
  reply_text(call, "raised");
  raise(SIGTERM);
}

Test(rt, sigterm_stops_the_server, .timeout = 10) {
  static const rttest_test_handlers_t h = {.echo = h_raise};
  memset(&fx, 0, sizeof(fx));
  cr_assert_eq(uv_loop_init(&fx.loop), 0);
  cr_assert_eq(rt_new(&fx.loop, &fx.rt), 0);
  cr_assert_eq(rt_server_new(fx.rt, NULL, &fx.srv), 0);
  cr_assert_eq(rttest_test_register(fx.srv, &h, &fx), 0);
  cr_assert_eq(rt_server_listen(fx.srv, "127.0.0.1:0", &fx.port), 0);
  snprintf(fx.target, sizeof(fx.target), "127.0.0.1:%d", fx.port);
  cr_assert_eq(rt_server_stop_on_signals(fx.srv, on_signal_stop, &fx), 0);
  cr_assert_eq(rt_server_start(fx.srv), 0);
  cr_assert_eq(rt_channel_get(fx.rt, fx.target, &fx.ch), 0);
  fx.pending = 1000; /* only the signal stops this one */
  echo(&fx, "x", "", NULL, NULL);
  fx_run(&fx);
  cr_assert_eq(fx.dones, 1);
}

/* Polls (once per loop iteration, no sleeping) until the held call has
 * seen its cancellation, then registers the cancel callback late. */
static int late_cb_ran, late_cb_inline;
static void on_late_cancel(rt_call_t *call, void *data) {
  late_cb_ran++;
  rt_call_fail(call, GRPC_STATUS_CANCELLED, "late");
  fx_event(&fx);
}

static void on_check(uv_check_t *c) {
  if (fx.n_held == 0 || !rt_call_is_cancelled(fx.held[0]))
    return;
  uv_check_stop(c);
  uv_close((uv_handle_t *)c, NULL);
  rt_call_on_cancel(fx.held[0], on_late_cancel, NULL);
  late_cb_inline = late_cb_ran;
}

static void h_hold(rt_call_t *call, const Rttest__EchoRequest *req,
                   void *data) {
  fx_t *f = data;
  f->held[f->n_held++] = call;
  rt_client_call_cancel(f->cc);
}

Test(rt, cancel_callback_set_after_cancel_still_runs, .timeout = 10) {
  static const rttest_test_handlers_t h = {.echo = h_hold};
  static uv_check_t check;
  memset(&fx, 0, sizeof(fx));
  late_cb_ran = late_cb_inline = 0;
  cr_assert_eq(uv_loop_init(&fx.loop), 0);
  cr_assert_eq(rt_new(&fx.loop, &fx.rt), 0);
  cr_assert_eq(rt_server_new(fx.rt, NULL, &fx.srv), 0);
  cr_assert_eq(rttest_test_register(fx.srv, &h, &fx), 0);
  cr_assert_eq(rt_server_listen(fx.srv, "127.0.0.1:0", &fx.port), 0);
  snprintf(fx.target, sizeof(fx.target), "127.0.0.1:%d", fx.port);
  cr_assert_eq(rt_server_start(fx.srv), 0);
  cr_assert_eq(rt_channel_get(fx.rt, fx.target, &fx.ch), 0);
  cr_assert_eq(uv_check_init(&fx.loop, &check), 0);
  cr_assert_eq(uv_check_start(&check, on_check), 0);
  fx.pending = 2; /* client done + late cancel callback */
  echo(&fx, "x", "", NULL, &fx.cc);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_CANCELLED);
  cr_assert_eq(late_cb_inline, 0, "ran inside rt_call_on_cancel");
  cr_assert_eq(late_cb_ran, 1);
}

static void on_count_cancel_msg(rt_client_call_t *call,
                                const ProtobufCMessage *msg, void *data) {
  fx_t *f = data;
  f->trace[f->n_trace++] = ((const Rttest__CountReply *)msg)->i;
  if (f->n_trace == 3)
    rt_client_call_cancel(call);
}

Test(rt, cancel_mid_stream_stops_messages, .timeout = 10) {
  fx_start(&fx, NULL, 0);
  fx.pending = 1;
  Rttest__CountRequest req = RTTEST__COUNT_REQUEST__INIT;
  req.n = 10000;
  cr_assert_eq(rttest_test_count(fx.ch, &req, NULL, on_count_cancel_msg,
                                 on_done, &fx, NULL),
               0);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_CANCELLED, "%s", rt_status_name(fx.code));
  cr_assert_eq(fx.n_trace, 3, "messages after cancel: %d", fx.n_trace - 3);
}

Test(rt, listen_on_a_port_in_use_fails, .timeout = 10) {
  fx_start(&fx, NULL, 0);
  rt_server_t *other;
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", fx.port);
  cr_assert_eq(rt_server_new(fx.rt, NULL, &other), 0);
  cr_assert_eq(rt_server_listen(other, addr, NULL), UV_EADDRINUSE);
  rt_server_free(other); /* never started: no shutdown needed */
  fx.pending = 1;
  echo(&fx, "x", "", NULL, NULL);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_OK, "%s", fx.message);
}

Test(rt, services_are_added_before_start_only, .timeout = 10) {
  fx_start(&fx, NULL, 0);
  cr_assert_eq(rttest_test_register(fx.srv, &handlers, &fx), UV_EBUSY);
  cr_assert_eq(rt_server_listen(fx.srv, "127.0.0.1:0", NULL), UV_EBUSY);
  fx.pending = 1;
  echo(&fx, "x", "", NULL, NULL);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_OK, "%s", fx.message);
}

Test(rt, a_service_is_registered_once, .timeout = 10) {
  uv_loop_t loop;
  rt_t *rt;
  rt_server_t *srv;
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(rt_new(&loop, &rt), 0);
  cr_assert_eq(rt_server_new(rt, NULL, &srv), 0);
  cr_assert_eq(rttest_test_register(srv, &handlers, NULL), 0);
  cr_assert_eq(rttest_test_register(srv, &handlers, NULL), UV_EEXIST);
  rt_server_free(srv);
  rt_free(rt);
  cr_assert_eq(uv_loop_close(&loop), 0);
}

static rt_channel_t *dead_ch;

static void on_dead_done(rt_client_call_t *call, grpc_status_code code,
                         const char *message, void *data) {
  rt_channel_release(dead_ch);
  dead_ch = NULL;
  on_done(call, code, message, data);
}

static void call_dead_target(const rt_call_opts_t *opts) {
  fx_start(&fx, NULL, 0);
  fx.pending = 1;
  /* Port 1 on loopback: nothing listens there. */
  cr_assert_eq(rt_channel_get(fx.rt, "127.0.0.1:1", &dead_ch), 0);
  Rttest__EchoRequest req = RTTEST__ECHO_REQUEST__INIT;
  cr_assert_eq(rttest_test_echo(dead_ch, &req, opts, on_echo_msg, on_dead_done,
                                &fx, NULL),
               0);
  fx_run(&fx);
}

Test(rt, unreachable_target_is_unavailable, .timeout = 10) {
  rt_call_opts_t opts = {.timeout_ms = 5000};
  call_dead_target(&opts);
  cr_assert_eq(fx.code, GRPC_STATUS_UNAVAILABLE, "%s", rt_status_name(fx.code));
}

Test(rt, wait_for_ready_waits_until_the_deadline, .timeout = 10) {
  rt_call_opts_t opts = {.timeout_ms = 200, .wait_for_ready = 1};
  call_dead_target(&opts);
  cr_assert_eq(fx.code, GRPC_STATUS_DEADLINE_EXCEEDED, "%s",
               rt_status_name(fx.code));
}

/* ------------------------------------------------ rt_call_on_finish */

/* What the finish observer saw. */
static struct {
  int runs;
  grpc_status_code code;
  char message[128];
  char final_text[64];
  int inline_run; /* ran inside rt_call_on_finish */
  int setting;
} fin;

static void on_finished(rt_call_t *call, grpc_status_code code,
                        const char *message, const ProtobufCMessage *final,
                        void *data) {
  cr_assert_eq(data, &fx);
  cr_assert_str_eq(rt_call_method(call)->name, "Echo"); /* still readable */
  fin.inline_run |= fin.setting;
  fin.runs++;
  fin.code = code;
  snprintf(fin.message, sizeof(fin.message), "%s", message);
  snprintf(fin.final_text, sizeof(fin.final_text), "%s",
           final ? ((const Rttest__EchoReply *) final)->text : "(none)");
}

static void h_echo_observed(rt_call_t *call, const Rttest__EchoRequest *req,
                            void *data) {
  fin.setting = 1;
  rt_call_on_finish(call, on_finished, data);
  fin.setting = 0;
  if (strcmp(req->mode, "fail") == 0)
    rt_call_fail(call, GRPC_STATUS_NOT_FOUND, "no %s", req->text);
  else if (strcmp(req->mode, "none") == 0)
    rt_call_finish(call, GRPC_STATUS_OK, NULL, NULL);
  else
    h_echo(call, req, data);
}

static void finish_fixture(void) {
  static const rttest_test_handlers_t h = {.echo = h_echo_observed};
  memset(&fx, 0, sizeof(fx));
  memset(&fin, 0, sizeof(fin));
  cr_assert_eq(uv_loop_init(&fx.loop), 0);
  cr_assert_eq(rt_new(&fx.loop, &fx.rt), 0);
  cr_assert_eq(rt_server_new(fx.rt, NULL, &fx.srv), 0);
  cr_assert_eq(rttest_test_register(fx.srv, &h, &fx), 0);
  cr_assert_eq(rt_server_listen(fx.srv, "127.0.0.1:0", &fx.port), 0);
  snprintf(fx.target, sizeof(fx.target), "127.0.0.1:%d", fx.port);
  cr_assert_eq(rt_server_start(fx.srv), 0);
  cr_assert_eq(rt_channel_get(fx.rt, fx.target, &fx.ch), 0);
}

Test(rt, finish_observer_sees_the_reply, .timeout = 10) {
  finish_fixture();
  fx.pending = 1;
  echo(&fx, "hi", "", NULL, NULL);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_OK, "%s", fx.message);
  cr_assert_eq(fin.runs, 1);
  cr_assert_eq(fin.inline_run, 0);
  cr_assert_eq(fin.code, GRPC_STATUS_OK);
  cr_assert_str_eq(fin.message, "");
  cr_assert_str_eq(fin.final_text, "hi");
}

Test(rt, finish_observer_sees_a_failure, .timeout = 10) {
  finish_fixture();
  fx.pending = 1;
  echo(&fx, "thing", "fail", NULL, NULL);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_NOT_FOUND);
  cr_assert_eq(fin.runs, 1);
  cr_assert_eq(fin.code, GRPC_STATUS_NOT_FOUND);
  cr_assert_str_eq(fin.message, "no thing");
  cr_assert_str_eq(fin.final_text, "(none)");
}

/* The observer is told what the client gets, not what the handler said. */
Test(rt, finish_observer_sees_the_runtime_s_correction, .timeout = 10) {
  finish_fixture();
  fx.pending = 1;
  echo(&fx, "x", "none", NULL, NULL);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_INTERNAL);
  cr_assert_eq(fin.code, GRPC_STATUS_INTERNAL);
  cr_assert_str_eq(fin.message, "handler returned no response");
}

Test(rt, finish_observer_sees_a_cancel, .timeout = 10) {
  finish_fixture();
  fx.pending = 2; /* client done + the server's cancel callback */
  echo(&fx, "x", "hang-cancel", NULL, &fx.cc);
  fx_run(&fx);
  cr_assert_eq(fx.code, GRPC_STATUS_CANCELLED);
  cr_assert_eq(fx.cancels, 1);
  cr_assert_eq(fin.runs, 1);
  cr_assert_eq(fin.code, GRPC_STATUS_CANCELLED); /* the handler said so too */
  cr_assert_str_eq(fin.message, "cancelled before the call ended");
}
