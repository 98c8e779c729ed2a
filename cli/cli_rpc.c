/*
 * cli_rpc.c - blocking calls over the RPC runtime (see cli_rpc.h).
 */
#include "cli_rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_creds.h"

struct cli_rpc_s {
  uv_loop_t loop;
  rt_t *rt;
  rt_channel_t *ch;
  rt_client_call_t *call; /* in flight, or NULL */
  /* State of the call in flight. */
  int done;
  grpc_status_code code;
  char *message;
  ProtobufCMessage *resp; /* unary: the copied response */
  cli_rpc_msg_cb on_msg;
  void *on_msg_data;
};

static cli_rpc_security_t security;
static char last_why[512];

void cli_rpc_set_security(const cli_rpc_security_t *sec) {
  memset(&security, 0, sizeof(security));
  if (sec != NULL)
    security = *sec;
}

const char *cli_rpc_why(void) {
  return last_why;
}

/* The credentials of the security settings, or NULL for plain ones. */
static int make_creds(rt_creds_t **out) {
  *out = NULL;
  const cli_rpc_security_t *s = &security;
  int err = 0;
  if (s->tls_ca != NULL || s->tls_cert != NULL) {
    rt_tls_files_t f = {
        .ca = s->tls_ca, .cert = s->tls_cert, .key = s->tls_key};
    err = rt_creds_tls_client(&f, out, last_why, sizeof(last_why));
  } else if (s->token != NULL) {
    err = rt_creds_insecure(out);
  }
  if (err == 0 && s->token != NULL) {
    char bearer[4096];
    if ((size_t)snprintf(bearer, sizeof(bearer), "Bearer %s", s->token) >=
        sizeof(bearer))
      err = UV_E2BIG;
    else
      err = rt_creds_add_metadata(*out, "authorization", bearer);
    memset(bearer, 0, sizeof(bearer));
    if (err != 0)
      snprintf(last_why, sizeof(last_why),
               "the token cannot be sent (too long, or not printable ASCII)");
  }
  if (err != 0) {
    rt_creds_release(*out);
    *out = NULL;
  }
  return err;
}

int cli_rpc_new(const char *target, cli_rpc_t **out) {
  cli_rpc_t *r = calloc(1, sizeof(*r));
  rt_creds_t *creds = NULL;
  int rc;
  last_why[0] = '\0';
  if (r == NULL)
    return UV_ENOMEM;
  if ((rc = uv_loop_init(&r->loop)) != 0)
    goto fail_loop;
  if ((rc = rt_new(&r->loop, &r->rt)) != 0)
    goto fail_rt;
  if ((rc = make_creds(&creds)) != 0 ||
      (rc = rt_channel_get_creds(r->rt, target, creds, &r->ch)) != 0)
    goto fail_ch;
  rt_creds_release(creds); /* the channel holds its own */
  *out = r;
  return 0;
fail_ch:
  rt_creds_release(creds);
  rt_free(r->rt);
fail_rt:
  uv_run(&r->loop, UV_RUN_DEFAULT);
  uv_loop_close(&r->loop);
fail_loop:
  free(r);
  return rc;
}

static void close_cb(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

void cli_rpc_free(cli_rpc_t *r) {
  if (r == NULL)
    return;
  rt_channel_release(r->ch);
  rt_free(r->rt);
  /* Close whatever the runtime left open, then let close callbacks run. */
  uv_walk(&r->loop, close_cb, NULL);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  uv_loop_close(&r->loop);
  free(r->message);
  free(r);
}

uv_loop_t *cli_rpc_loop(cli_rpc_t *r) {
  return &r->loop;
}

const char *cli_rpc_message(const cli_rpc_t *r) {
  return r->message ? r->message : "";
}

void cli_rpc_cancel(cli_rpc_t *r) {
  if (r->call != NULL)
    rt_client_call_cancel(r->call);
}

static void on_unary_msg(rt_client_call_t *call, const ProtobufCMessage *msg,
                         void *data) {
  cli_rpc_t *r = data;
  if (r->resp != NULL)
    return; /* a unary call has one response */
  /* The runtime owns `msg` only until we return: keep a packed copy. */
  size_t n = protobuf_c_message_get_packed_size(msg);
  uint8_t *buf = malloc(n ? n : 1);
  if (buf == NULL)
    return; /* on_done then reports a missing response */
  protobuf_c_message_pack(msg, buf);
  r->resp = protobuf_c_message_unpack(msg->descriptor, NULL, n, buf);
  free(buf);
}

static void on_stream_msg(rt_client_call_t *call, const ProtobufCMessage *msg,
                          void *data) {
  cli_rpc_t *r = data;
  r->on_msg(msg, r->on_msg_data);
}

static void on_done(rt_client_call_t *call, grpc_status_code code,
                    const char *message, void *data) {
  cli_rpc_t *r = data;
  r->done = 1;
  r->code = code;
  r->call = NULL;
  free(r->message);
  r->message = strdup(message ? message : "");
}

static grpc_status_code run_call(cli_rpc_t *r, const rt_method_t *method,
                                 const ProtobufCMessage *req,
                                 int64_t timeout_ms, rt_client_msg_cb cb) {
  rt_call_opts_t opts = {.timeout_ms = timeout_ms};
  r->done = 0;
  int rc =
      rt_client_call_start(r->ch, method, req, &opts, cb, on_done, r, &r->call);
  if (rc != 0) {
    r->call = NULL;
    free(r->message);
    r->message = strdup(uv_strerror(rc));
    return r->code = GRPC_STATUS_INTERNAL;
  }
  while (!r->done)
    uv_run(&r->loop, UV_RUN_ONCE);
  return r->code;
}

grpc_status_code cli_rpc_unary(cli_rpc_t *r, const rt_method_t *method,
                               const ProtobufCMessage *req, int64_t timeout_ms,
                               ProtobufCMessage **resp) {
  r->resp = NULL;
  grpc_status_code code = run_call(r, method, req, timeout_ms, on_unary_msg);
  if (code == GRPC_STATUS_OK && r->resp == NULL) {
    free(r->message);
    r->message = strdup("no response message (or out of memory)");
    code = r->code = GRPC_STATUS_INTERNAL;
  }
  if (code != GRPC_STATUS_OK) {
    if (r->resp != NULL)
      protobuf_c_message_free_unpacked(r->resp, NULL);
    r->resp = NULL;
    return code;
  }
  *resp = r->resp;
  r->resp = NULL;
  return code;
}

grpc_status_code cli_rpc_stream(cli_rpc_t *r, const rt_method_t *method,
                                const ProtobufCMessage *req, int64_t timeout_ms,
                                cli_rpc_msg_cb on_msg, void *data) {
  r->on_msg = on_msg;
  r->on_msg_data = data;
  return run_call(r, method, req, timeout_ms, on_stream_msg);
}

int cli_rpc_exit_code(grpc_status_code code, const char *message) {
  if (code == GRPC_STATUS_OK)
    return CLI_EXIT_OK;
  if (code == GRPC_STATUS_DEADLINE_EXCEEDED)
    return CLI_EXIT_UNREACHABLE;
  if (code == GRPC_STATUS_UNAVAILABLE) {
    /* smaugd's own UNAVAILABLE names a plugin; gRPC's transport errors do
     * not ("failed to connect to all addresses", "Socket closed", ...). */
    if (message != NULL && strstr(message, "plugin") != NULL)
      return CLI_EXIT_FAILED;
    return CLI_EXIT_UNREACHABLE;
  }
  return CLI_EXIT_FAILED;
}
