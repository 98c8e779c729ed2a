/*
 * api_op.c - the operation handlers of the Orchestrator service (see
 * api_op.h): request checks, then the operations core; its reports become
 * the gRPC answers.
 */
#include "api_op.h"

#include <stdlib.h>

#include "api_ident.h"
#include "api_valid.h"

static grpc_status_code status_of(int err) {
  return (grpc_status_code)ops_err_status(err);
}

/* The OPS_ERRORS code for a status a check answered with. */
static int err_of(grpc_status_code code) {
#define API_OPS_ERR_OF(name, uv, status, sname)                                \
  if ((int)code == (status))                                                   \
    return name;
  OPS_ERRORS(API_OPS_ERR_OF)
#undef API_OPS_ERR_OF
  return code == GRPC_STATUS_OK ? 0 : OPS_EINTERNAL;
}

/* An ops_* call that returned an error: it never reports. */
static void fail_start(rt_call_t *call, int err) {
  if (err)
    rt_call_fail(call, status_of(err), "%s", uv_strerror(err));
}

/* The ops_done_cb of each handler: `data` is the call. An error fails
 * the call with the core's status and message. */
static int failed(rt_call_t *call, const ops_result_t *r) {
  if (r->err)
    rt_call_fail(call, status_of(r->err), "%s", r->msg);
  return r->err;
}

/* A Protect waiting for its checkpoint. */
typedef struct protect_call_s {
  rt_call_t *call;
  store_t *st;
  const reg_t *reg;
} protect_call_t;

static void protect_done(const ops_result_t *r, void *data) {
  protect_call_t pc = *(protect_call_t *)data;
  Smaug__V1__ProtectResponse resp = SMAUG__V1__PROTECT_RESPONSE__INIT;
  free(data);
  if (failed(pc.call, r))
    return;
  api_ident_record(pc.st, pc.reg, r->checkpoint_id); /* failure: logged */
  resp.checkpoint_id = (char *)r->checkpoint_id;
  resp.operation_id = (char *)r->operation_id;
  rt_call_reply(pc.call, &resp.base);
}

static void restore_done(const ops_result_t *r, void *data) {
  Smaug__V1__RestoreResponse resp = SMAUG__V1__RESTORE_RESPONSE__INIT;
  if (failed(data, r))
    return;
  resp.restore_id = (char *)r->restore_id;
  resp.operation_id = (char *)r->operation_id;
  rt_call_reply(data, &resp.base);
}

static void delete_done(const ops_result_t *r, void *data) {
  Smaug__V1__DeleteCheckpointResponse resp =
      SMAUG__V1__DELETE_CHECKPOINT_RESPONSE__INIT;
  if (failed(data, r))
    return;
  resp.operation_id = (char *)r->operation_id;
  rt_call_reply(data, &resp.base);
}

static void cancel_done(const ops_result_t *r, void *data) {
  Smaug__V1__CancelOperationResponse resp =
      SMAUG__V1__CANCEL_OPERATION_RESPONSE__INIT;
  if (failed(data, r))
    return;
  resp.cancelled = r->cancelled;
  rt_call_reply(data, &resp.base);
}

void api_ops_protect(ops_t *ops, const api_scope_t *sc, const reg_t *reg,
                     rt_call_t *call, const Smaug__V1__ProtectRequest *req) {
  if (api_fail_bad_id(call, "plan_id", req->plan_id) ||
      api_scope_fail(sc, call, STORE_PLAN, req->plan_id))
    return;
  protect_call_t *pc = malloc(sizeof(*pc));
  if (pc == NULL) {
    rt_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  *pc = (protect_call_t){.call = call, .st = sc->store, .reg = reg};
  ops_params_t p = {.fail_fast = req->fail_fast};
  int err = ops_protect(ops, req->plan_id, &p, protect_done, pc);
  if (err)
    free(pc);
  fail_start(call, err);
}

/* ops_check_fn of a restore: the parameters against the restore schemas
 * of the checkpoint's types. `data` is the registry. */
static int check_restore_params(void *data, const Smaug__V1__ParameterSet *ps,
                                Smaug__V1__Resource *const *res, size_t n,
                                char *msg, size_t len) {
  return err_of(api_check_params(data, ps, res, n, 1, "parameters", msg, len));
}

void api_ops_restore(ops_t *ops, const api_scope_t *sc, reg_t *reg,
                     rt_call_t *call, const Smaug__V1__RestoreRequest *req) {
  if (api_fail_bad_id(call, "checkpoint_id", req->checkpoint_id) ||
      api_scope_fail(sc, call, STORE_CHECKPOINT, req->checkpoint_id))
    return;
  /* After every check that the caller may see the checkpoint: the
   * refusal names its plugins. */
  if (api_ident_refused(sc->store, reg, call, req->checkpoint_id, req->force))
    return;
  ops_params_t p = {.fail_fast = req->fail_fast,
                    .parameters = req->parameters,
                    .check = check_restore_params,
                    .check_data = reg};
  fail_start(call,
             ops_restore(ops, req->checkpoint_id, &p, restore_done, call));
}

void api_ops_delete_checkpoint(ops_t *ops, const api_scope_t *sc,
                               const reg_t *reg, rt_call_t *call,
                               const Smaug__V1__DeleteCheckpointRequest *req) {
  if (api_fail_bad_id(call, "id", req->id) ||
      api_scope_fail(sc, call, STORE_CHECKPOINT, req->id))
    return;
  if (api_ident_refused(sc->store, reg, call, req->id, req->force))
    return; /* after the visibility checks, as in a restore */
  fail_start(call, ops_delete(ops, req->id, delete_done, call));
}

void api_ops_cancel(ops_t *ops, const api_scope_t *sc, rt_call_t *call,
                    const Smaug__V1__CancelOperationRequest *req) {
  if (api_fail_bad_id(call, "operation_id", req->operation_id) ||
      api_scope_fail(sc, call, STORE_OPERATION, req->operation_id))
    return;
  /* Refused, not cut: a cut could split a UTF-8 character, and the reason
   * goes into events, results and the plugins' CancelOperation. */
  char msg[256];
  grpc_status_code rc =
      valid_text("reason", req->reason, VALID_MAX_NAME_BYTES, msg, sizeof(msg));
  if (rc) {
    rt_call_fail(call, rc, "%s", msg);
    return;
  }
  fail_start(
      call, ops_cancel(ops, req->operation_id, req->reason, cancel_done, call));
}

/* ------------------------------------------------------------------ watch */

/* One WatchOperation stream: the sink of an ops watcher. */
typedef struct watch_s {
  rt_call_t *call;
  ops_watcher_t *w; /* NULL until ops_watch() returned it */
  int batch;        /* max_batch was set: messages carry `events` */
} watch_t;

static void watch_send(void *data, Smaug__V1__OperationEvent *const *evs,
                       size_t n) {
  watch_t *x = data;
  Smaug__V1__WatchOperationResponse r =
      SMAUG__V1__WATCH_OPERATION_RESPONSE__INIT;
  if (x->batch) {
    r.n_events = n;
    r.events = (Smaug__V1__OperationEvent **)evs;
  } else {
    r.event = evs[0];
  }
  rt_call_send(x->call, &r.base);
}

static size_t watch_queued(void *data) {
  return rt_call_send_queued(((watch_t *)data)->call);
}

static void watch_end(void *data, int err, const char *msg) {
  watch_t *x = data;
  rt_call_on_sent(x->call, NULL, NULL);
  rt_call_finish(x->call, status_of(err), msg, NULL);
  free(x);
}

static const ops_sink_t watch_sink = {
    .send = watch_send, .queued = watch_queued, .end = watch_end};

static void watch_sent(rt_call_t *call, void *data) {
  (void)call;
  ops_watch_sent(((watch_t *)data)->w);
}

static void watch_cancelled(rt_call_t *call, void *data) {
  (void)call;
  ops_watch_cancel(((watch_t *)data)->w);
}

void api_ops_watch(ops_t *ops, const api_scope_t *sc, rt_call_t *call,
                   const Smaug__V1__WatchOperationRequest *req) {
  if (api_fail_bad_id(call, "operation_id", req->operation_id) ||
      api_scope_fail(sc, call, STORE_OPERATION, req->operation_id))
    return;
  watch_t *x = calloc(1, sizeof(*x));
  if (x == NULL) {
    rt_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  x->call = call;
  x->batch = req->max_batch != 0;
  ops_watcher_t *w;
  int err = ops_watch(ops, req->operation_id, req->after_sequence,
                      req->max_batch, &watch_sink, x, &w);
  if (err) {
    free(x);
    fail_start(call, err);
    return;
  }
  if (w == NULL)
    return; /* ended already; `x` is gone */
  x->w = w;
  rt_call_on_cancel(call, watch_cancelled, x);
  rt_call_on_sent(call, watch_sent, x);
}
