/*
 * chk_client.c - the protocol client behind smaug-plugin-check and the SDK
 * tests (chk_client.h): activity calls with their progress and result
 * copied out, GetPluginInfo, health, CancelOperation, and a minimal
 * blocking bidi call for the reflection service list.
 */
#include "chk_client.h"

/* The reflection call below makes its own gRPC channel, so it needs the
 * gRPC credentials behind an rt_creds_t (rt__creds_channel). */
#include "rt_internal.h"

#include "grpc/health/v1/health.smaug.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "smaug/v1/plugin.smaug.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_or_empty(const char *s) {
  return strdup(s != NULL ? s : "");
}

int chk_open_on(chk_t *c, rt_t *rt, const char *target) {
  memset(c, 0, sizeof(*c));
  c->rt = rt;
  c->loop = rt_loop(rt);
  return rt_channel_get(rt, target, &c->ch);
}

int chk_open(chk_t *c, const char *target) {
  return chk_open_creds(c, target, NULL);
}

int chk_open_creds(chk_t *c, const char *target, rt_creds_t *creds) {
  memset(c, 0, sizeof(*c));
  int err = uv_loop_init(&c->own_loop);
  if (err != 0)
    return err;
  rt_t *rt;
  if ((err = rt_new(&c->own_loop, &rt)) != 0) {
    uv_loop_close(&c->own_loop);
    return err;
  }
  err = creds != NULL ? rt_channel_get_creds(rt, target, creds, &c->ch)
                      : rt_channel_get(rt, target, &c->ch);
  c->rt = rt;
  c->loop = &c->own_loop;
  c->owns_rt = 1;
  c->creds = rt_creds_ref(creds);
  if (err != 0) {
    chk_close(c);
    return err;
  }
  return 0;
}

void chk_close(chk_t *c) {
  rt_channel_release(c->ch);
  c->ch = NULL;
  rt_creds_release(c->creds);
  c->creds = NULL;
  if (c->owns_rt) {
    rt_free(c->rt);
    uv_run(&c->own_loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->own_loop);
  }
  c->rt = NULL;
}

void chk_wait(chk_t *c, const int *flag) {
  while (!*flag)
    uv_run(c->loop, UV_RUN_ONCE);
}

/* ----------------------------------------------------------- activity */

static void log_progress(chk_act_t *a, const Smaug__V1__Progress *pr) {
  if (a->n_progress_log == CHK_MAX_PROGRESS_LOG)
    return;
  if (a->progress_log == NULL &&
      (a->progress_log = calloc(CHK_MAX_PROGRESS_LOG, sizeof(char *))) == NULL)
    return;
  char line[512];
  snprintf(line, sizeof(line), "%llu/%llu %s %s", (unsigned long long)pr->done,
           (unsigned long long)pr->total, pr->unit, pr->message);
  if ((a->progress_log[a->n_progress_log] = strdup(line)) != NULL)
    a->n_progress_log++;
}

static void on_act_msg(rt_client_call_t *call, const ProtobufCMessage *msg,
                       void *data) {
  chk_act_t *a = data;
  const Smaug__V1__Progress *pr = NULL;
  if (msg->descriptor == &smaug__v1__parallel_activity_response__descriptor) {
    const Smaug__V1__ParallelActivityResponse *m = (const void *)msg;
    if (m->event_case == SMAUG__V1__PARALLEL_ACTIVITY_RESPONSE__EVENT_PROGRESS)
      pr = m->progress;
    else if (m->result != NULL) {
      a->n_results++;
      a->has_result = 1;
      free(a->state);
      a->state = malloc(m->result->state.len + 1);
      if (a->state != NULL) {
        if (m->result->state.len > 0)
          memcpy(a->state, m->result->state.data, m->result->state.len);
        a->state_len = m->result->state.len;
      }
    }
  } else {
    const Smaug__V1__SyncActivityResponse *m = (const void *)msg;
    if (m->event_case == SMAUG__V1__SYNC_ACTIVITY_RESPONSE__EVENT_PROGRESS)
      pr = m->progress;
    else if (m->result != NULL) {
      a->n_results++;
      a->has_result = 1;
      const Smaug__V1__SyncResult *r = m->result;
      a->meta_k = calloc(r->n_metadata + 1, sizeof(char *));
      a->meta_v = calloc(r->n_metadata + 1, sizeof(char *));
      for (size_t i = 0; a->meta_k && a->meta_v && i < r->n_metadata; i++) {
        a->meta_k[i] = dup_or_empty(r->metadata[i]->key);
        a->meta_v[i] = dup_or_empty(r->metadata[i]->value);
        a->n_meta++;
      }
      free(a->restored_id);
      a->restored_id = dup_or_empty(r->restored_id);
    }
  }
  if (pr != NULL) {
    if (a->n_progress > 0 && pr->done < a->last_done)
      a->monotonic = 0;
    a->last_done = pr->done;
    a->n_progress++;
    log_progress(a, pr);
  }
}

static void on_act_done(rt_client_call_t *call, grpc_status_code code,
                        const char *message, void *data) {
  chk_act_t *a = data;
  a->code = code;
  a->message = dup_or_empty(message);
  a->call = NULL;
  a->done = 1;
}

int chk_act_start(chk_t *c, const chk_req_t *q, int64_t timeout_ms,
                  chk_act_t *out) {
  memset(out, 0, sizeof(*out));
  out->monotonic = 1;
  Smaug__V1__OperationRef op = SMAUG__V1__OPERATION_REF__INIT;
  op.id = (char *)(q->op_id ? q->op_id : "");
  op.kind = (Smaug__V1__OperationKind)q->op_kind;
  op.checkpoint_id = (char *)(q->checkpoint_id ? q->checkpoint_id : "");
  Smaug__V1__Resource res = SMAUG__V1__RESOURCE__INIT;
  res.type = (char *)(q->type ? q->type : "");
  res.id = (char *)(q->id ? q->id : "");
  Smaug__V1__ActivityRequest req = SMAUG__V1__ACTIVITY_REQUEST__INIT;
  req.operation = &op;
  req.resource = &res;
  req.bank_uri = (char *)(q->bank_uri ? q->bank_uri : "");
  req.bank_section = (char *)(q->section ? q->section : "");
  req.idempotency_key = (char *)(q->key ? q->key : "");
  req.attempt = 1;
  req.activity = q->sync ? SMAUG__V1__ACTIVITY__ACTIVITY_SYNC
                         : SMAUG__V1__ACTIVITY__ACTIVITY_PARALLEL;
  req.state.data = (uint8_t *)q->state;
  req.state.len = q->state_len;
  Smaug__V1__ActivityRequest__ParametersEntry pe[CHK_MAX_KV], *pp[CHK_MAX_KV];
  Smaug__V1__ActivityRequest__SavedMetadataEntry se[CHK_MAX_KV],
      *sp[CHK_MAX_KV];
  for (size_t i = 0; i < q->n_params && i < CHK_MAX_KV; i++) {
    smaug__v1__activity_request__parameters_entry__init(&pe[i]);
    pe[i].key = (char *)q->param_k[i];
    pe[i].value = (char *)q->param_v[i];
    pp[i] = &pe[i];
  }
  req.n_parameters = q->n_params;
  req.parameters = pp;
  for (size_t i = 0; i < q->n_saved && i < CHK_MAX_KV; i++) {
    smaug__v1__activity_request__saved_metadata_entry__init(&se[i]);
    se[i].key = (char *)q->saved_k[i];
    se[i].value = (char *)q->saved_v[i];
    sp[i] = &se[i];
  }
  req.n_saved_metadata = q->n_saved;
  req.saved_metadata = sp;
  rt_call_opts_t opts = {.timeout_ms = timeout_ms, .wait_for_ready = 1};
  if (q->sync)
    return smaug_v1_protection_plugin_sync_activity(
        c->ch, &req, &opts, on_act_msg, on_act_done, out, &out->call);
  return smaug_v1_protection_plugin_parallel_activity(
      c->ch, &req, &opts, on_act_msg, on_act_done, out, &out->call);
}

void chk_act_cancel(chk_act_t *a) {
  if (!a->done && a->call != NULL)
    rt_client_call_cancel(a->call);
}

void chk_act_clear(chk_act_t *a) {
  for (size_t i = 0; i < a->n_meta; i++) {
    free(a->meta_k[i]);
    free(a->meta_v[i]);
  }
  free(a->meta_k);
  free(a->meta_v);
  free(a->state);
  free(a->message);
  free(a->restored_id);
  for (size_t i = 0; i < a->n_progress_log; i++)
    free(a->progress_log[i]);
  free(a->progress_log);
  memset(a, 0, sizeof(*a));
}

const char *chk_act_meta(const chk_act_t *a, const char *key) {
  for (size_t i = 0; i < a->n_meta; i++)
    if (strcmp(a->meta_k[i], key) == 0)
      return a->meta_v[i];
  return NULL;
}

int chk_act_run(chk_t *c, const chk_req_t *req, int64_t timeout_ms,
                chk_act_t *out) {
  int err = chk_act_start(c, req, timeout_ms, out);
  if (err == 0)
    chk_wait(c, &out->done);
  return err;
}

/* ---------------------------------------------------------- unary calls */

typedef struct {
  int done;
  grpc_status_code code;
  ProtobufCMessage *copy;
} unary_t;

static void on_unary_msg(rt_client_call_t *call, const ProtobufCMessage *msg,
                         void *data) {
  unary_t *u = data;
  ProtobufCMessage *copy;
  if (rt_msg_copy(msg, &copy) != 0)
    return; /* the caller sees no response */
  if (u->copy != NULL)
    protobuf_c_message_free_unpacked(u->copy, NULL);
  u->copy = copy;
}

static void on_unary_done(rt_client_call_t *call, grpc_status_code code,
                          const char *message, void *data) {
  unary_t *u = data;
  u->code = code;
  u->done = 1;
}

int chk_info(chk_t *c, Smaug__V1__GetPluginInfoResponse **out,
             grpc_status_code *code, int64_t timeout_ms) {
  Smaug__V1__GetPluginInfoRequest req =
      SMAUG__V1__GET_PLUGIN_INFO_REQUEST__INIT;
  req.protocol_major = 1;
  rt_call_opts_t opts = {.timeout_ms = timeout_ms, .wait_for_ready = 1};
  unary_t u = {0};
  int err = smaug_v1_protection_plugin_get_plugin_info(
      c->ch, &req, &opts, on_unary_msg, on_unary_done, &u, NULL);
  if (err != 0)
    return err;
  chk_wait(c, &u.done);
  *code = u.code;
  if (u.code == GRPC_STATUS_OK && u.copy != NULL) {
    *out = (Smaug__V1__GetPluginInfoResponse *)u.copy;
  } else {
    *out = NULL;
    if (u.copy != NULL)
      protobuf_c_message_free_unpacked(u.copy, NULL);
  }
  return 0;
}

int chk_health(chk_t *c, const char *service, int *serving,
               grpc_status_code *code) {
  Grpc__Health__V1__HealthCheckRequest req =
      GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  req.service = (char *)service;
  rt_call_opts_t opts = {.timeout_ms = 5000, .wait_for_ready = 1};
  unary_t u = {0};
  int err = grpc_health_v1_health_check(c->ch, &req, &opts, on_unary_msg,
                                        on_unary_done, &u, NULL);
  if (err != 0)
    return err;
  chk_wait(c, &u.done);
  *code = u.code;
  *serving = 0;
  if (u.copy != NULL) {
    *serving = ((Grpc__Health__V1__HealthCheckResponse *)u.copy)->status;
    protobuf_c_message_free_unpacked(u.copy, NULL);
  }
  return 0;
}

int chk_cancel_op(chk_t *c, const char *op_id, unsigned *cancelled,
                  grpc_status_code *code) {
  Smaug__V1__CancelOperationRequest req =
      SMAUG__V1__CANCEL_OPERATION_REQUEST__INIT;
  req.operation_id = (char *)op_id;
  req.reason = "smaug-plugin-check";
  rt_call_opts_t opts = {.timeout_ms = 5000, .wait_for_ready = 1};
  unary_t u = {0};
  int err = smaug_v1_protection_plugin_cancel_operation(
      c->ch, &req, &opts, on_unary_msg, on_unary_done, &u, NULL);
  if (err != 0)
    return err;
  chk_wait(c, &u.done);
  *code = u.code;
  *cancelled = 0;
  if (u.copy != NULL) {
    *cancelled = ((Smaug__V1__CancelOperationResponse *)u.copy)->cancelled;
    protobuf_c_message_free_unpacked(u.copy, NULL);
  }
  return 0;
}

/* ---------------------------------------------------------- reflection */

void chk_strv_free(char **v) {
  if (v == NULL)
    return;
  for (char **p = v; *p != NULL; p++)
    free(*p);
  free(v);
}

/* One request, one response: enough for list_services. The stream is
 * bidi on the wire, so the runtime's unary client cannot make it. */
int chk_reflection_list(const char *target, rt_creds_t *creds,
                        int64_t timeout_ms, char ***out, const char **why) {
  Grpc__Reflection__V1__ServerReflectionRequest rq =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  rq.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
  rq.list_services = "";
  size_t len = protobuf_c_message_get_packed_size(&rq.base);
  uint8_t buf[64];
  if (len > sizeof(buf))
    return UV_ENOMEM;
  protobuf_c_message_pack(&rq.base, buf);
  grpc_slice s = grpc_slice_from_copied_buffer((const char *)buf, len);
  grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);

  grpc_channel_credentials *tls = rt__creds_channel(creds); /* borrowed */
  grpc_channel_credentials *plain =
      tls == NULL ? grpc_insecure_credentials_create() : NULL;
  grpc_arg name_arg = {.type = GRPC_ARG_STRING,
                       .key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
                       .value.string = (char *)rt__creds_server_name(creds)};
  grpc_channel_args args = {name_arg.value.string != NULL ? 1 : 0, &name_arg};
  grpc_channel *ch =
      grpc_channel_create(target, tls != NULL ? tls : plain, &args);
  if (plain != NULL)
    grpc_channel_credentials_release(plain);
  grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
  gpr_timespec deadline =
      gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                   gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
  grpc_slice method = grpc_slice_from_static_string(
      "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo");
  grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS,
                                             cq, method, NULL, deadline, NULL);
  grpc_metadata_array md, trailing;
  grpc_metadata_array_init(&md);
  grpc_metadata_array_init(&trailing);
  grpc_byte_buffer *recv = NULL;
  grpc_status_code status = GRPC_STATUS_UNKNOWN;
  grpc_slice details = grpc_empty_slice();
  grpc_op ops[6];
  memset(ops, 0, sizeof(ops));
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = send;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &md;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &recv;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
  ops[5].data.recv_status_on_client.status = &status;
  ops[5].data.recv_status_on_client.status_details = &details;
  int rc = UV_EIO;
  *why = "the call could not start";
  static int tag;
  if (grpc_call_start_batch(call, ops, 6, &tag, NULL) == GRPC_CALL_OK) {
    grpc_event ev = grpc_completion_queue_next(
        cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    *why = "no response";
    if (ev.type == GRPC_OP_COMPLETE && status == GRPC_STATUS_OK &&
        recv != NULL) {
      grpc_byte_buffer_reader rd;
      grpc_byte_buffer_reader_init(&rd, recv);
      grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
      grpc_byte_buffer_reader_destroy(&rd);
      Grpc__Reflection__V1__ServerReflectionResponse *resp =
          grpc__reflection__v1__server_reflection_response__unpack(
              NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
      grpc_slice_unref(all);
      *why = "no list_services_response";
      if (resp != NULL && resp->list_services_response != NULL) {
        Grpc__Reflection__V1__ListServiceResponse *l =
            resp->list_services_response;
        char **v = calloc(l->n_service + 1, sizeof(char *));
        rc = v != NULL ? 0 : UV_ENOMEM;
        for (size_t i = 0; v != NULL && i < l->n_service; i++)
          if ((v[i] = strdup(l->service[i]->name)) == NULL)
            rc = UV_ENOMEM;
        if (rc == 0)
          *out = v;
        else
          chk_strv_free(v);
      }
      if (resp != NULL)
        grpc__reflection__v1__server_reflection_response__free_unpacked(resp,
                                                                        NULL);
    } else if (status != GRPC_STATUS_OK) {
      *why = "the reflection call failed";
    }
  }
  if (recv != NULL)
    grpc_byte_buffer_destroy(recv);
  grpc_byte_buffer_destroy(send);
  grpc_slice_unref(details);
  grpc_metadata_array_destroy(&md);
  grpc_metadata_array_destroy(&trailing);
  grpc_call_unref(call);
  grpc_channel_destroy(ch);
  grpc_completion_queue_shutdown(cq);
  while (
      grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
          .type != GRPC_QUEUE_SHUTDOWN)
    ;
  grpc_completion_queue_destroy(cq);
  return rc;
}
