/*
 * runner.c - executor activities as plugin RPCs (see runner.h).
 *
 * Each call keeps the result message of its stream and reports it when
 * the stream ends with OK. Whatever a plugin sends is checked like user
 * input (valid.h): a progress or result field over its limit, a
 * restored id that is not a valid resource id, or a second result in one
 * stream is a protocol violation, which cancels the call and fails the
 * task with INTERNAL; so does a stream that ends OK without a result.
 * Failure messages name the plugin and its address, so that a resource's
 * reason says who failed.
 */
#include "runner.h"

#include <assert.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bank.h"
#include "discovery.h"
#include "rt_log.h"
#include "rt_wire.h"
#include "smaug/v1/plugin.smaug.h"
#include "valid.h"

#define CANCEL_TIMEOUT_MS 2000

typedef struct call_s {
  exec_activity_t *a;
  const reg_plugin_t *p;
  rt_client_call_t *rc;
  int cancelled;
  int have_result;
  int restore; /* a RESTORE: the Sync result must name a restored id */
  /* P result */
  uint8_t *state;
  size_t state_len;
  /* S result */
  kv_t metadata;
  char *restored_id;
  char *message;
  char violation[600]; /* the first protocol violation; "" if none */
} call_t;

int runner_bank_section(const char *checkpoint_id, const char *type,
                        const char *id, char *buf, size_t len) {
  int ok = bank_check_object(checkpoint_id) == 0 &&
           bank_check_object(type) == 0 && bank_check_object(id) == 0;
  assert(ok && "bank section from an unvalidated part");
  if (!ok)
    return UV_EINVAL;
  return snprintf(buf, len, "checkpoints/%s/%s/%s", checkpoint_id, type, id);
}

static void call_free(call_t *c) {
  free(c->state);
  kv_free(&c->metadata);
  free(c->restored_id);
  free(c->message);
  free(c);
}

static char *dup_or_null(const char *s) {
  return s && *s ? strdup(s) : NULL;
}

/* Records the first violation of the stream (a printf format) and cancels
 * the call; on_done reports it. Returns 1 when the stream is already
 * violated, so that the caller ignores the message. */
static int violated(call_t *c, const char *fmt, ...) {
  if (c->violation[0])
    return 1;
  if (fmt == NULL)
    return 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->violation, sizeof(c->violation), fmt, ap);
  va_end(ap);
  rt_client_call_cancel(c->rc);
  return 1;
}

/* Records a failed check (status `rc`, message `msg`) as a violation. */
static int check_failed(call_t *c, grpc_status_code rc, const char *msg) {
  return rc != GRPC_STATUS_OK && violated(c, "%s", msg);
}

static void on_progress(call_t *c, const Smaug__V1__Progress *pr) {
  char msg[512];
  if (pr == NULL || violated(c, NULL) ||
      check_failed(c,
                   valid_text("progress.unit", pr->unit, VALID_MAX_NAME_BYTES,
                              msg, sizeof(msg)),
                   msg) ||
      check_failed(c,
                   valid_text("progress.message", pr->message,
                              VALID_MAX_MESSAGE_BYTES, msg, sizeof(msg)),
                   msg))
    return;
  if (!c->cancelled)
    exec_activity_progress(c->a, pr->done, pr->total, pr->unit, pr->message);
}

/* Checks a result's common part: the only one of its stream, and its
 * message within limits. Returns 1 when the result is to be ignored. */
static int bad_result(call_t *c, const char *message) {
  char msg[512];
  if (violated(c, NULL))
    return 1;
  if (c->have_result)
    return violated(c, "protocol violation: a second result in one stream");
  return check_failed(c,
                      valid_text("result.message", message,
                                 VALID_MAX_MESSAGE_BYTES, msg, sizeof(msg)),
                      msg);
}

/* Checks a SyncResult's metadata (copied into c->metadata) and restored
 * id (required for a restore). Returns 1 when the result is to be
 * ignored. */
static int bad_sync_result(call_t *c, const Smaug__V1__SyncResult *res) {
  char msg[512];
  if (c->restore && (res->restored_id == NULL || *res->restored_id == '\0'))
    return violated(c, "protocol violation: result.restored_id: required "
                       "for a restore (the original id for a restore in "
                       "place)");
  if (check_failed(c,
                   valid_kv("result.metadata", &c->metadata, res->n_metadata,
                            msg, sizeof(msg)),
                   msg))
    return 1;
  if (res->restored_id && *res->restored_id &&
      check_failed(
          c,
          valid_key("result.restored_id", res->restored_id, msg, sizeof(msg)),
          msg))
    return 1;
  return 0;
}

static void on_msg(rt_client_call_t *call, const ProtobufCMessage *msg,
                   void *data) {
  call_t *c = data;
  if (msg->descriptor == &smaug__v1__parallel_activity_response__descriptor) {
    const Smaug__V1__ParallelActivityResponse *r = (const void *)msg;
    if (r->event_case ==
        SMAUG__V1__PARALLEL_ACTIVITY_RESPONSE__EVENT_PROGRESS) {
      on_progress(c, r->progress);
    } else if (r->event_case ==
                   SMAUG__V1__PARALLEL_ACTIVITY_RESPONSE__EVENT_RESULT &&
               !bad_result(c, r->result->message)) {
      free(c->state);
      free(c->message);
      c->state = NULL;
      c->state_len = r->result->state.len;
      if (c->state_len) {
        c->state = malloc(c->state_len);
        if (c->state)
          memcpy(c->state, r->result->state.data, c->state_len);
      }
      c->message = dup_or_null(r->result->message);
      c->have_result = c->state_len == 0 || c->state != NULL;
    }
  } else {
    const Smaug__V1__SyncActivityResponse *r = (const void *)msg;
    if (r->event_case == SMAUG__V1__SYNC_ACTIVITY_RESPONSE__EVENT_PROGRESS) {
      on_progress(c, r->progress);
    } else if (r->event_case ==
                   SMAUG__V1__SYNC_ACTIVITY_RESPONSE__EVENT_RESULT &&
               !bad_result(c, r->result->message)) {
      const Smaug__V1__SyncResult *res = r->result;
      int err = 0;
      for (size_t i = 0;
           i < res->n_metadata && i <= VALID_MAX_MAP_ENTRIES && err == 0; i++)
        err = kv_set(&c->metadata, res->metadata[i]->key,
                     res->metadata[i]->value);
      if (err == 0 && bad_sync_result(c, res))
        return;
      free(c->restored_id);
      free(c->message);
      c->restored_id = dup_or_null(res->restored_id);
      c->message = dup_or_null(res->message);
      c->have_result = err == 0;
    }
  }
}

static void on_done(rt_client_call_t *call, grpc_status_code code,
                    const char *message, void *data) {
  call_t *c = data;
  char msg[1024];
  if (c->cancelled) {
    exec_activity_fail(c->a, EXEC_CODE_CANCELLED, "cancelled");
  } else if (c->violation[0]) {
    snprintf(msg, sizeof(msg), "plugin %s (%s): %s", reg_plugin_name(c->p),
             reg_plugin_address(c->p), c->violation);
    exec_activity_fail(c->a, EXEC_CODE_INTERNAL, msg);
  } else if (code == GRPC_STATUS_RESOURCE_EXHAUSTED &&
             rt_client_call_failed_here(call)) {
    /* smaugd refused the answer (over the receive limit): it would be as
     * large on every retry, unlike a plugin's own RESOURCE_EXHAUSTED. */
    snprintf(msg, sizeof(msg), "plugin %s (%s): protocol violation: %s",
             reg_plugin_name(c->p), reg_plugin_address(c->p), message);
    exec_activity_fail(c->a, EXEC_CODE_INTERNAL, msg);
  } else if (code != GRPC_STATUS_OK) {
    snprintf(msg, sizeof(msg), "plugin %s (%s): %s: %s", reg_plugin_name(c->p),
             reg_plugin_address(c->p), rt_status_name(code),
             message && *message ? message : "no message");
    if (code == GRPC_STATUS_UNIMPLEMENTED)
      snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
               " (configuration error: the plugin declared this activity "
               "but does not implement it)");
    rt_utf8_repair(msg); /* the plugin's message, maybe cut */
    exec_activity_fail(c->a, (int)code, msg);
  } else if (!c->have_result) {
    snprintf(msg, sizeof(msg), "plugin %s (%s): stream ended without a result",
             reg_plugin_name(c->p), reg_plugin_address(c->p));
    exec_activity_fail(c->a, EXEC_CODE_INTERNAL, msg);
  } else {
    exec_output_t out = {.state = c->state,
                         .state_len = c->state_len,
                         .metadata = &c->metadata,
                         .restored_id = c->restored_id,
                         .message = c->message};
    exec_activity_complete(c->a, &out);
  }
  call_free(c);
}

/* Map entries for a kv_t, borrowing its strings: one block holding the
 * pointer array and then the entries. NULL for an empty map. */
static void **kv_entries(const kv_t *kv, size_t entry_size,
                         void (*init)(void *), int key_off, int val_off) {
  size_t n = kv ? kv->n : 0;
  if (n == 0)
    return NULL;
  void **ptrs = malloc(n * (sizeof(void *) + entry_size));
  if (ptrs == NULL)
    return NULL;
  char *ents = (char *)(ptrs + n);
  for (size_t i = 0; i < n; i++) {
    void *e = ents + i * entry_size;
    init(e);
    *(char **)((char *)e + key_off) = kv->items[i].key;
    *(char **)((char *)e + val_off) = kv->items[i].val;
    ptrs[i] = e;
  }
  return ptrs;
}

#define KV_ENTRIES(kv, T, init)                                                \
  ((T **)kv_entries((kv), sizeof(T), (void (*)(void *))(init),                 \
                    (int)offsetof(T, key), (int)offsetof(T, value)))

static int run_start(void *rdata, exec_activity_t *a) {
  runner_ctx_t *ctx = rdata;
  const graph_node_t *node = exec_activity_node(a);
  const Smaug__V1__ResourceTypeInfo *ti;
  char msg[600];
  reg_plugin_t *p = reg_find_type(ctx->reg, node->type, &ti);
  if (p == NULL) {
    snprintf(msg, sizeof(msg), "no plugin provides resource type %s",
             node->type);
    exec_activity_fail(a, EXEC_CODE_FAILED_PRECONDITION, msg);
    return 0;
  }
  if (!reg_plugin_available(p)) {
    snprintf(msg, sizeof(msg), "plugin %s (%s) is unavailable: %s",
             reg_plugin_name(p), reg_plugin_address(p), reg_plugin_reason(p));
    exec_activity_fail(a, EXEC_CODE_UNAVAILABLE, msg);
    return 0;
  }
  char section[1024];
  if (runner_bank_section(ctx->checkpoint_id, node->type, node->id, section,
                          sizeof(section)) < 0) {
    snprintf(msg, sizeof(msg), "refused to build a bank section for %s#%s",
             node->type, node->id);
    exec_activity_fail(a, EXEC_CODE_INTERNAL, msg);
    return 0;
  }
  const char *key = exec_activity_idempotency_key(a);
  call_t *c = calloc(1, sizeof(*c));
  if (c == NULL || key == NULL) {
    free(c);
    return UV_ENOMEM;
  }
  c->a = a;
  c->p = p;
  c->restore = exec_activity_kind(a) == DAG_OP_RESTORE;
  kv_init(&c->metadata);

  int err = 0;
  Smaug__V1__OperationRef opref = SMAUG__V1__OPERATION_REF__INIT;
  opref.id = (char *)exec_activity_op_id(a);
  opref.kind = (Smaug__V1__OperationKind)exec_activity_kind(a);
  opref.checkpoint_id = (char *)ctx->checkpoint_id;

  Smaug__V1__Resource res = SMAUG__V1__RESOURCE__INIT;
  kv_t params;
  kv_init(&params);
  Smaug__V1__ActivityRequest req = SMAUG__V1__ACTIVITY_REQUEST__INIT;
  Smaug__V1__ChildResult *kids = NULL, **kidp = NULL;
  Smaug__V1__Resource *kres = NULL;
  size_t nk = 0;
  Smaug__V1__ActivityRequest__ParametersEntry **pe = NULL;
  Smaug__V1__ActivityRequest__SavedMetadataEntry **sm = NULL;

  if ((err = disc_resource_of(node, &res)) != 0)
    goto out;
  if ((err = valid_params_merge(ctx->params, node->type, node->id, &params)) ||
      (err = valid_params_merge(ctx->overrides, node->type, node->id, &params)))
    goto out;
  req.operation = &opref;
  req.resource = &res;
  req.bank_uri = (char *)ctx->bank_uri;
  req.bank_section = section;
  req.attempt = exec_activity_attempt(a);
  req.idempotency_key = (char *)key;
  req.activity = (Smaug__V1__Activity)exec_activity_activity(a);
  pe = KV_ENTRIES(&params, Smaug__V1__ActivityRequest__ParametersEntry,
                  smaug__v1__activity_request__parameters_entry__init);
  if (params.n && pe == NULL) {
    err = UV_ENOMEM;
    goto out;
  }
  req.n_parameters = params.n;
  req.parameters = pe;
  const kv_t *saved = exec_activity_saved_metadata(a);
  sm = KV_ENTRIES(saved, Smaug__V1__ActivityRequest__SavedMetadataEntry,
                  smaug__v1__activity_request__saved_metadata_entry__init);
  if (saved && saved->n && sm == NULL) {
    err = UV_ENOMEM;
    goto out;
  }
  req.n_saved_metadata = saved ? saved->n : 0;
  req.saved_metadata = sm;

  if (exec_activity_activity(a) == DAG_SYNC) {
    size_t len;
    const void *st = exec_activity_state(a, &len);
    req.state.data = (uint8_t *)st;
    req.state.len = st ? len : 0;
    nk = exec_activity_child_count(a);
    if (nk) {
      kids = calloc(nk, sizeof(*kids));
      kidp = calloc(nk, sizeof(*kidp));
      kres = calloc(nk, sizeof(*kres));
      if (!kids || !kidp || !kres) {
        err = UV_ENOMEM;
        goto out;
      }
      for (size_t i = 0; i < nk; i++) {
        const kv_t *md;
        const char *rid;
        const graph_node_t *cn = exec_activity_child(a, i, &md, &rid);
        smaug__v1__child_result__init(&kids[i]);
        smaug__v1__resource__init(&kres[i]);
        kres[i].type = (char *)cn->type;
        kres[i].id = cn->id;
        kres[i].name = cn->name;
        kids[i].resource = &kres[i];
        kids[i].restored_id = (char *)rid;
        kids[i].metadata =
            KV_ENTRIES(md, Smaug__V1__ChildResult__MetadataEntry,
                       smaug__v1__child_result__metadata_entry__init);
        kids[i].n_metadata = kids[i].metadata ? md->n : 0;
        kidp[i] = &kids[i];
      }
      req.n_children = nk;
      req.children = kidp;
    }
  }

  rt_call_opts_t o = {.timeout_ms = ctx->timeout_ms};
  if (exec_activity_activity(a) == DAG_PARALLEL)
    err = smaug_v1_protection_plugin_parallel_activity(
        reg_plugin_channel(p), &req, &o, on_msg, on_done, c, &c->rc);
  else
    err = smaug_v1_protection_plugin_sync_activity(
        reg_plugin_channel(p), &req, &o, on_msg, on_done, c, &c->rc);
  if (err == 0)
    exec_activity_set_data(a, c);

out:
  for (size_t i = 0; kids && i < nk; i++)
    free(kids[i].metadata);
  free(kids);
  free(kidp);
  free(kres);
  free(pe);
  free(sm);
  disc_resource_free(&res);
  kv_free(&params);
  if (err)
    call_free(c);
  return err;
}

static void run_cancel(void *rdata, exec_activity_t *a) {
  call_t *c = exec_activity_data(a);
  if (c == NULL || c->cancelled)
    return;
  c->cancelled = 1;
  rt_client_call_cancel(c->rc);
}

static void cancel_msg(rt_client_call_t *call, const ProtobufCMessage *msg,
                       void *data) {}

static void cancel_done(rt_client_call_t *call, grpc_status_code code,
                        const char *message, void *data) {
  if (code != GRPC_STATUS_OK)
    rt_log(RT_LOG_DEBUG, "api", "CancelOperation failed", "addr=%s code=%s",
           (const char *)data, rt_status_name(code));
  free(data);
}

static void run_cancel_operation(void *rdata, const char *op_id) {
  runner_ctx_t *ctx = rdata;
  if (ctx->stopping && *ctx->stopping)
    return; /* the next start resumes: let the plugins keep their work */
  Smaug__V1__CancelOperationRequest req =
      SMAUG__V1__CANCEL_OPERATION_REQUEST__INIT;
  req.operation_id = (char *)op_id;
  req.reason = ctx->cancel_reason && *ctx->cancel_reason
                   ? (char *)ctx->cancel_reason
                   : "cancelled through smaugd";
  rt_call_opts_t o = {.timeout_ms = CANCEL_TIMEOUT_MS};
  for (size_t i = 0; i < reg_count(ctx->reg); i++) {
    reg_plugin_t *p = reg_at(ctx->reg, i);
    char *addr = strdup(reg_plugin_address(p));
    if (addr == NULL)
      continue;
    if (smaug_v1_protection_plugin_cancel_operation(reg_plugin_channel(p), &req,
                                                    &o, cancel_msg, cancel_done,
                                                    addr, NULL))
      free(addr);
  }
}

static const exec_runner_t runner = {run_start, run_cancel,
                                     run_cancel_operation};

const exec_runner_t *runner_rpc(void) {
  return &runner;
}
