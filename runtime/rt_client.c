/*
 * rt_client.c - the client half of the runtime: shared channels and
 * unary / server-streaming calls.
 *
 * Channels are shared per (target, credentials, credentials' reload
 * generation) and reference counted, so every caller talking to one plugin
 * multiplexes over one HTTP/2 connection, and a reload of the credentials
 * (rt_creds_reload) gives later callers a channel with the new files.
 * Headers from the credentials and from the call's options are sent with
 * the initial metadata. A unary
 * call is one batch of every op. A server-streaming call is two batches:
 * {send initial metadata, send message, half-close, receive initial
 * metadata, receive message} and {receive status}; each further response
 * message is one more receive batch, chained from the previous one. on_done
 * runs once every batch has completed, so it always follows the last on_msg.
 * The receive limit is per call, so it is checked here rather than in the
 * (shared) channel's arguments.
 */
#include <assert.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"

#define RT_DEFAULT_MAX_MESSAGE (4 * 1024 * 1024)

struct rt_channel_s {
  rt_t *rt;
  rt_channel_t *next;
  char *target;
  rt_creds_t *creds;  /* NULL: insecure; else a reference */
  unsigned creds_gen; /* of `creds` when the channel was made */
  grpc_channel *channel;
  int refs;
};

struct rt_client_call_s {
  rt_t *rt;
  rt_channel_t *ch;
  const rt_method_t *method;
  grpc_call *call;
  rt_client_msg_cb on_msg;
  rt_client_done_cb on_done;
  void *data;
  int refs; /* batches in flight */
  size_t max_message;

  rt_tag_t start_tag;
  rt_tag_t status_tag;
  rt_tag_t recv_tag;
  grpc_byte_buffer *send_bb;
  grpc_byte_buffer *recv_bb;
  grpc_metadata *send_md; /* the credentials' and the options' headers */
  size_t n_send_md;
  grpc_metadata_array initial_md;
  grpc_metadata_array trailing_md;
  grpc_status_code status;
  grpc_slice details;
  const char *error_string;

  unsigned cancelled : 1; /* by us */
  unsigned failed : 1;    /* local failure: fail_code / fail_msg win */
  unsigned done : 1;
  unsigned got_msg : 1;
  unsigned
      md_limit : 1; /* gRPC core refused the peer's metadata as too large */
  grpc_status_code fail_code;
  char fail_msg[512];
};

/* ------------------------------------------------------------ channels */

int rt_channel_get(rt_t *rt, const char *target, rt_channel_t **out) {
  return rt_channel_get_creds(rt, target, NULL, out);
}

void rt_set_channel_creds(rt_t *rt, rt_channel_creds_fn fn, void *data) {
  rt_client_state_t *st = rt__client(rt);
  st->choose = fn;
  st->choose_data = data;
}

const char *rt_channel_refusal(rt_t *rt) {
  return rt__client(rt)->refusal;
}

int rt_channel_get_creds(rt_t *rt, const char *target, rt_creds_t *creds,
                         rt_channel_t **out) {
  if (rt == NULL || target == NULL || *target == '\0' || out == NULL)
    return UV_EINVAL;
  rt_client_state_t *st = rt__client(rt);
  st->refusal[0] = '\0';
  if (creds == NULL && st->choose != NULL) {
    int err = st->choose(target, &creds, st->refusal, sizeof(st->refusal),
                         st->choose_data);
    if (err != 0)
      return err;
  }
  grpc_channel_credentials *tls = rt__creds_channel(creds);
  if (tls == NULL && rt_creds_is_tls(creds))
    return UV_EINVAL; /* server credentials */
  unsigned gen = rt__creds_gen(creds);
  for (rt_channel_t *ch = st->channels; ch != NULL; ch = ch->next) {
    if (ch->creds == creds && ch->creds_gen == gen &&
        strcmp(ch->target, target) == 0) {
      ch->refs++;
      *out = ch;
      return 0;
    }
  }
  rt_channel_t *ch = calloc(1, sizeof(*ch));
  if (ch == NULL)
    return UV_ENOMEM;
  ch->target = strdup(target);
  if (ch->target == NULL) {
    free(ch);
    return UV_ENOMEM;
  }
  /* Limits are per call (rt_call_opts_t), so the channel takes anything.
   * Reconnects back off from 100 ms to at most 500 ms (gRPC's default grows
   * to 2 min), so that a restarted peer is reached again within half a second:
   * a plugin restart then costs seconds of a task's retry budget, not
   * minutes. */
  grpc_arg args[5];
  args[0].type = GRPC_ARG_INTEGER;
  args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[0].value.integer = -1;
  args[1].type = GRPC_ARG_INTEGER;
  args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
  args[1].value.integer = -1;
  args[2].type = GRPC_ARG_INTEGER;
  args[2].key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS;
  args[2].value.integer = 100;
  args[3].type = GRPC_ARG_INTEGER;
  args[3].key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
  args[3].value.integer = 500;
  size_t n_args = 4;
  const char *name = rt__creds_server_name(creds);
  if (name != NULL) {
    args[4].type = GRPC_ARG_STRING;
    args[4].key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
    args[4].value.string = (char *)name;
    n_args = 5;
  }
  grpc_channel_args ca = {n_args, args};
  grpc_channel_credentials *plain =
      tls == NULL ? grpc_insecure_credentials_create() : NULL;
  ch->channel = grpc_channel_create(target, tls != NULL ? tls : plain, &ca);
  if (plain != NULL)
    grpc_channel_credentials_release(plain);
  if (ch->channel == NULL) {
    free(ch->target);
    free(ch);
    return UV_EINVAL;
  }
  ch->creds = rt_creds_ref(creds);
  ch->creds_gen = gen;
  ch->rt = rt;
  ch->refs = 1;
  ch->next = st->channels;
  st->channels = ch;
  rt__count_channel(rt, 1);
  *out = ch;
  return 0;
}

static void channel_unref(rt_channel_t *ch) {
  assert(ch->refs > 0);
  if (--ch->refs > 0)
    return;
  for (rt_channel_t **p = &rt__client(ch->rt)->channels; *p != NULL;
       p = &(*p)->next) {
    if (*p == ch) {
      *p = ch->next;
      break;
    }
  }
  grpc_channel_destroy(ch->channel);
  rt_creds_release(ch->creds);
  rt__count_channel(ch->rt, -1);
  free(ch->target);
  free(ch);
}

void rt_channel_release(rt_channel_t *ch) {
  if (ch != NULL)
    channel_unref(ch);
}

const char *rt_channel_target(const rt_channel_t *ch) {
  return ch->target;
}

/* --------------------------------------------------------------- calls */

static void call_fail(rt_client_call_t *c, grpc_status_code code,
                      const char *fmt, const char *arg) {
  if (c->failed || c->cancelled)
    return;
  c->failed = 1;
  c->fail_code = code;
  snprintf(c->fail_msg, sizeof(c->fail_msg), fmt, arg);
  grpc_call_cancel_with_status(c->call, code, c->fail_msg, NULL);
}

static void send_md_free(rt_client_call_t *c) {
  for (size_t i = 0; i < c->n_send_md; i++) {
    grpc_slice_unref(c->send_md[i].key);
    grpc_slice_unref(c->send_md[i].value);
  }
  free(c->send_md);
  c->send_md = NULL;
  c->n_send_md = 0;
}

/* The headers of a new call: the channel's credentials' first, then the
 * options'. Returns 0 or UV_ENOMEM. */
static int send_md_make(rt_client_call_t *c, const rt_call_opts_t *opts) {
  const char *const *cm;
  size_t n_creds = rt__creds_metadata(c->ch->creds, &cm);
  size_t n_opts = opts != NULL && opts->metadata != NULL ? opts->n_metadata : 0;
  if (n_creds + n_opts == 0)
    return 0;
  c->send_md = calloc(n_creds + n_opts, sizeof(*c->send_md));
  if (c->send_md == NULL)
    return UV_ENOMEM;
  for (size_t i = 0; i < n_creds + n_opts; i++) {
    const char *k = i < n_creds ? cm[2 * i] : opts->metadata[i - n_creds].key;
    const char *v =
        i < n_creds ? cm[2 * i + 1] : opts->metadata[i - n_creds].value;
    c->send_md[i].key = grpc_slice_from_copied_string(k);
    c->send_md[i].value = grpc_slice_from_copied_string(v);
    c->n_send_md++;
  }
  return 0;
}

static void call_release(rt_client_call_t *c) {
  assert(c->refs > 0);
  if (--c->refs > 0)
    return;
  rt_t *rt = c->rt;
  grpc_status_code code = c->status;
  char *msg = NULL;
  const char *text;
  if (c->cancelled) {
    code = GRPC_STATUS_CANCELLED;
    text = "cancelled by the caller";
  } else if (c->failed) {
    code = c->fail_code;
    text = c->fail_msg;
  } else if (code == GRPC_STATUS_OK && !c->got_msg &&
             c->method->kind == RT_UNARY) {
    code = GRPC_STATUS_INTERNAL;
    text = "response: none for a unary call";
  } else {
    msg = grpc_slice_to_c_string(c->details);
    text = msg;
    /* gRPC core's own words when the peer's headers or status are over
     * the metadata limit; core gives no other sign that it decided. */
    c->md_limit = code == GRPC_STATUS_RESOURCE_EXHAUSTED && msg != NULL &&
                  strstr(msg, "metadata size exceeds limit") != NULL;
  }
  c->done = 1;
  c->on_done(c, code, text, c->data);
  gpr_free(msg);
  grpc_slice_unref(c->details);
  grpc_metadata_array_destroy(&c->initial_md);
  grpc_metadata_array_destroy(&c->trailing_md);
  send_md_free(c);
  gpr_free((void *)c->error_string);
  grpc_call_unref(c->call);
  channel_unref(c->ch);
  free(c);
  rt__count_client_call(rt, -1);
  rt__unhold(rt);
}

static int start_recv(rt_client_call_t *c) {
  grpc_op op;
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &c->recv_bb;
  c->refs++;
  int err = rt__call_error(
      grpc_call_start_batch(c->call, &op, 1, &c->recv_tag, NULL));
  if (err != 0)
    c->refs--;
  return err;
}

/* Handles one received message; returns nonzero to keep reading. */
static int deliver(rt_client_call_t *c) {
  if (c->recv_bb == NULL)
    return 0; /* end of stream */
  grpc_byte_buffer *bb = c->recv_bb;
  c->recv_bb = NULL;
  int more = 0;
  if (c->cancelled || c->failed) {
    /* Drop it: the caller has already been told the call is over. */
  } else if (grpc_byte_buffer_length(bb) > c->max_message) {
    call_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED,
              "response: larger than the %s limit", "receive");
  } else {
    ProtobufCMessage *msg;
    char why[256];
    int err = rt__unpack(c->method->output, bb, &msg, why, sizeof(why));
    if (err == UV_EILSEQ) {
      /* Whoever reports the failure names the peer: say it sent this. */
      call_fail(c, GRPC_STATUS_INTERNAL,
                "response: the peer sent a bad string: %s", why);
    } else if (err != 0) {
      call_fail(c, GRPC_STATUS_INTERNAL, "response: malformed %s",
                c->method->output->name);
    } else {
      c->got_msg = 1;
      c->on_msg(c, msg, c->data);
      protobuf_c_message_free_unpacked(msg, NULL);
      more = !c->cancelled && !c->failed;
    }
  }
  grpc_byte_buffer_destroy(bb);
  return more;
}

static void on_recv(rt_tag_t *tag, int ok) {
  rt_client_call_t *c =
      (rt_client_call_t *)((char *)tag - offsetof(rt_client_call_t, recv_tag));
  if (ok && deliver(c) && c->method->kind == RT_SERVER_STREAMING) {
    if (start_recv(c) != 0)
      call_fail(c, GRPC_STATUS_INTERNAL, "cannot %s", "read the response");
  } else if (c->recv_bb != NULL) {
    grpc_byte_buffer_destroy(c->recv_bb);
    c->recv_bb = NULL;
  }
  call_release(c);
}

static void on_start(rt_tag_t *tag, int ok) {
  rt_client_call_t *c =
      (rt_client_call_t *)((char *)tag - offsetof(rt_client_call_t, start_tag));
  grpc_byte_buffer_destroy(c->send_bb);
  c->send_bb = NULL;
  /* The first message came with this batch. */
  on_recv(&c->recv_tag, ok);
}

static void on_status(rt_tag_t *tag, int ok) {
  rt_client_call_t *c =
      (rt_client_call_t *)((char *)tag -
                           offsetof(rt_client_call_t, status_tag));
  call_release(c);
}

int rt_client_call_start(rt_channel_t *ch, const rt_method_t *method,
                         const ProtobufCMessage *req,
                         const rt_call_opts_t *opts, rt_client_msg_cb on_msg,
                         rt_client_done_cb on_done, void *data,
                         rt_client_call_t **out) {
  if (ch == NULL || method == NULL || req == NULL || on_msg == NULL ||
      on_done == NULL)
    return UV_EINVAL;
  if (method->kind != RT_UNARY && method->kind != RT_SERVER_STREAMING)
    return UV_ENOTSUP;
  if (req->descriptor != method->input)
    return UV_EINVAL;
  rt_client_call_t *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return UV_ENOMEM;
  c->rt = ch->rt;
  c->ch = ch;
  c->method = method;
  c->on_msg = on_msg;
  c->on_done = on_done;
  c->data = data;
  c->max_message = RT_DEFAULT_MAX_MESSAGE;
  if (opts != NULL && opts->max_message_bytes > 0)
    c->max_message = (size_t)opts->max_message_bytes;
  c->start_tag.fn = on_start;
  c->status_tag.fn = on_status;
  c->recv_tag.fn = on_recv;
  c->details = grpc_empty_slice();
  grpc_metadata_array_init(&c->initial_md);
  grpc_metadata_array_init(&c->trailing_md);

  gpr_timespec deadline = gpr_inf_future(GPR_CLOCK_MONOTONIC);
  if (opts != NULL && opts->timeout_ms > 0)
    deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                     gpr_time_from_millis(opts->timeout_ms, GPR_TIMESPAN));
  c->call = grpc_channel_create_call(
      ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS, rt__cq(ch->rt),
      grpc_slice_from_static_string(method->path), NULL, deadline, NULL);
  if (c->call == NULL) {
    grpc_metadata_array_destroy(&c->initial_md);
    grpc_metadata_array_destroy(&c->trailing_md);
    free(c);
    return UV_ENOMEM;
  }
  c->send_bb = rt__pack(req);

  grpc_op ops[6];
  memset(ops, 0, sizeof(ops));
  grpc_call_error e = GRPC_CALL_ERROR;
  if (send_md_make(c, opts) != 0)
    goto fail;
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = c->n_send_md;
  ops[0].data.send_initial_metadata.metadata = c->send_md;
  if (opts != NULL && opts->wait_for_ready)
    ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY |
                   GRPC_INITIAL_METADATA_WAIT_FOR_READY_EXPLICITLY_SET;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = c->send_bb;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &c->initial_md;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &c->recv_bb;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &c->trailing_md;
  ops[5].data.recv_status_on_client.status = &c->status;
  ops[5].data.recv_status_on_client.status_details = &c->details;
  ops[5].data.recv_status_on_client.error_string = &c->error_string;
  /* A unary call is one batch (one completion); a stream receives its
   * status in a batch of its own while messages are read one by one. */
  int unary = method->kind == RT_UNARY;
  e = grpc_call_start_batch(c->call, ops, unary ? 6 : 5, &c->start_tag, NULL);
  if (e != GRPC_CALL_OK)
    goto fail;
  if (unary) {
    c->refs = 1;
    ch->refs++;
    rt__count_client_call(c->rt, 1);
    rt__hold(c->rt);
    if (out != NULL)
      *out = c;
    return 0;
  }

  e = grpc_call_start_batch(c->call, &ops[5], 1, &c->status_tag, NULL);
  if (e != GRPC_CALL_OK) {
    /* The first batch is in flight: it must complete before we free. */
    grpc_call_cancel(c->call, NULL);
    c->refs = 1;
    rt__count_client_call(c->rt, 1);
    rt__hold(c->rt);
    ch->refs++;
    call_fail(c, GRPC_STATUS_INTERNAL, "cannot %s", "start the call");
    if (out != NULL)
      *out = c;
    return 0;
  }
  c->refs = 2;
  ch->refs++;
  rt__count_client_call(c->rt, 1);
  rt__hold(c->rt);
  if (out != NULL)
    *out = c;
  return 0;

fail:
  grpc_byte_buffer_destroy(c->send_bb);
  send_md_free(c);
  grpc_call_unref(c->call);
  grpc_metadata_array_destroy(&c->initial_md);
  grpc_metadata_array_destroy(&c->trailing_md);
  free(c);
  return rt__call_error(e);
}

int rt_client_call_peer_subject(rt_client_call_t *call, char *out, size_t len) {
  static const char *const names[] = {GRPC_X509_SUBJECT_PROPERTY_NAME,
                                      GRPC_X509_CN_PROPERTY_NAME};
  int rc = UV_ENOENT;
  if (len > 0)
    out[0] = '\0';
  grpc_auth_context *ctx = grpc_call_auth_context(call->call);
  if (ctx == NULL)
    return UV_ENOENT;
  for (size_t i = 0; i < 2 && rc != 0; i++) {
    grpc_auth_property_iterator it =
        grpc_auth_context_find_properties_by_name(ctx, names[i]);
    const grpc_auth_property *p = grpc_auth_property_iterator_next(&it);
    if (p != NULL && p->value_length > 0 && len > 0) {
      size_t n = p->value_length < len - 1 ? p->value_length : len - 1;
      memcpy(out, p->value, n);
      out[n] = '\0';
      rc = 0;
    }
  }
  grpc_auth_context_release(ctx);
  return rc;
}

int rt_client_call_failed_here(const rt_client_call_t *call) {
  return call != NULL && ((call->failed && !call->cancelled) || call->md_limit);
}

void rt_client_call_cancel(rt_client_call_t *call) {
  if (call == NULL || call->done || call->cancelled)
    return;
  call->cancelled = 1;
  grpc_call_cancel(call->call, NULL);
}
