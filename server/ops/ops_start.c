/*
 * ops_start.c - starting and cancelling operations (see ops.h): the
 * checks on what the store holds (the plan or checkpoint, its status, its
 * plugins, its bank), the first records of a new operation, and the one
 * answer to the caller once they are committed.
 *
 * Results are keyed by their owner: the checkpoint id for a protect, the
 * restore id for a restore, the operation id for a delete.
 */
#include "ops_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bank_saved.h"
#include "rt_log.h"

#define MSG_MAX 1024

/* Reports `err` with `msg` (or the ids of `op` on success) to `cb`. */
static void report(ops_done_cb cb, void *data, int err, const char *msg,
                   const op_t *op, uint32_t cancelled) {
  ops_result_t r = {.err = err, .msg = err ? msg : NULL};
  if (err == 0 && op) {
    r.operation_id = op->id;
    if (op->kind == DAG_OP_PROTECT)
      r.checkpoint_id = op->cp_id;
    if (op->kind == DAG_OP_RESTORE)
      r.restore_id = op->target_id;
  }
  r.cancelled = cancelled;
  cb(&r, data);
}

/* Reports a failed store lookup of `what` `id`: OPS_ENOTFOUND "<what>
 * <id> not found", or OPS_EINTERNAL with the error's text. */
static void report_lookup(ops_done_cb cb, void *data, const char *what,
                          const char *id, int err) {
  char msg[MSG_MAX];
  if (err == UV_ENOENT)
    snprintf(msg, sizeof(msg), "%s %s not found", what, id);
  else
    snprintf(msg, sizeof(msg), "%s %s %s", what, id, uv_strerror(err));
  report(cb, data, err == UV_ENOENT ? OPS_ENOTFOUND : OPS_EINTERNAL, msg, NULL,
         0);
}

int ops_protected_params(ops_t *ops, const char *op_id,
                         Smaug__V1__ParameterSet **out) {
  *out = NULL;
  if (op_id == NULL || *op_id == '\0')
    return 0;
  store_op_t *so;
  int err = store_op_get(ops->store, op_id, &so);
  if (err)
    return err == UV_ENOENT ? 0 : err;
  if (so->params_len) {
    *out = smaug__v1__parameter_set__unpack(NULL, so->params_len, so->params);
    if (*out == NULL)
      err = UV_ENOMEM;
  }
  store_op_free(so);
  return err;
}

/* Records a new running operation of `tenant` (the tenant of the plan or
 * checkpoint it works on) in the open batch; the caller commits. */
static int op_record(op_t *op, const Smaug__V1__ParameterSet *params,
                     const char *tenant) {
  store_op_t so = {.id = op->id,
                   .tenant = (char *)tenant,
                   .kind = op->kind,
                   .target_id = op->target_id,
                   .checkpoint_id = op->cp_id,
                   .running = 1,
                   .fail_fast = op->fail_fast,
                   .created_at_ms = ops_now_ms()};
  if (params) {
    ops_pack(&params->base, &so.params, &so.params_len);
    if (so.params == NULL)
      return UV_ENOMEM;
    op->params =
        smaug__v1__parameter_set__unpack(NULL, so.params_len, so.params);
    if (op->params == NULL) {
      free(so.params);
      return UV_ENOMEM;
    }
  }
  int err = store_op_put(op->ops->store, &so);
  free(so.params);
  return err;
}

/* Ends the start of a new operation whose first records were written in
 * the open batch, `err` being the result of those writes: commits them
 * and reports the op; the caller then queues it. On failure reports the
 * error, frees `op` and returns nonzero. */
static int op_launch(op_t *op, int err, ops_done_cb cb, void *data) {
  char msg[MSG_MAX];
  if ((err = ops_commit(op->ops, err, msg, sizeof(msg))) != 0) {
    report(cb, data, err, msg, NULL, 0);
    op_free(op);
    return err;
  }
  report(cb, data, 0, NULL, op, 0);
  return 0;
}

/* Reads checkpoint `id` after committing what is pending into `*cp`
 * (release with protobuf_c_message_free_unpacked). Returns 0, or nonzero
 * once it reported the failed lookup to `cb`. */
static int get_checkpoint(ops_t *ops, const char *id, ops_done_cb cb,
                          void *data, Smaug__V1__Checkpoint **cp) {
  ops_flush(ops);
  int err = store_checkpoint_get(ops->store, id, cp);
  if (err)
    report_lookup(cb, data, "checkpoint", id, err);
  return err;
}

/* ---------------------------------------------------------------- protect */

int ops_protect(ops_t *ops, const char *plan_id, const ops_params_t *params,
                ops_done_cb cb, void *data) {
  if (ops == NULL || plan_id == NULL || cb == NULL)
    return UV_EINVAL;
  char msg[MSG_MAX];
  ops_flush(ops);
  Smaug__V1__Plan *plan;
  int err = store_plan_get(ops->store, plan_id, &plan);
  if (err) {
    report_lookup(cb, data, "plan", plan_id, err);
    return 0;
  }
  if ((err = ops_check_plugins(ops, plan->resources, plan->n_resources,
                               "plan.resources", msg, sizeof(msg)))) {
    protobuf_c_message_free_unpacked(&plan->base, NULL);
    report(cb, data, err, msg, NULL, 0);
    return 0;
  }
  op_t *op = op_new(ops, DAG_OP_PROTECT);
  if (op == NULL) {
    protobuf_c_message_free_unpacked(&plan->base, NULL);
    report(cb, data, OPS_ENOMEM, "out of memory", NULL, 0);
    return 0;
  }
  ops_new_id("op", op->id, sizeof(op->id));
  ops_new_id("ckp", op->cp_id, sizeof(op->cp_id));
  snprintf(op->target_id, sizeof(op->target_id), "%s", op->cp_id);
  snprintf(op->owner, sizeof(op->owner), "%s", op->cp_id);
  op->fail_fast = params ? params->fail_fast : 0;

  /* The checkpoint starts with the plan's roots and edges; the full graph
   * replaces them once built, and a resume rebuilds from what is there. */
  Smaug__V1__Checkpoint cp = SMAUG__V1__CHECKPOINT__INIT;
  cp.id = op->cp_id;
  cp.plan_id = plan->id;
  cp.status = SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_PROTECTING;
  cp.operation_id = op->id;
  cp.n_resources = plan->n_resources;
  cp.resources = plan->resources;
  cp.n_edges = plan->n_edges;
  cp.edges = plan->edges;
  cp.created_at_ms = ops_now_ms();
  cp.bank_uri = ops->bank_uri;
  cp.tenant = plan->tenant;
  if ((err = store_batch(ops->store)) == 0 &&
      (err = store_checkpoint_put(ops->store, &cp)) == 0)
    err = op_record(op, plan->parameters, plan->tenant);
  protobuf_c_message_free_unpacked(&plan->base, NULL);
  if (op_launch(op, err, cb, data))
    return 0;
  rt_log(RT_LOG_INFO, "api", "protect started", "op=%s checkpoint=%s plan=%s",
         op->id, op->cp_id, plan_id);
  op_enqueue(op);
  return 0;
}

/* ---------------------------------------------------------------- restore */

/* Restore: appends each missing object to the message (bank_missing_cb). */
static void restore_missing(void *data, const char *type, const char *id,
                            const char *section, const char *object,
                            const char *msg) {
  char *buf = data;
  size_t len = strlen(buf);
  (void)section;
  (void)object;
  snprintf(buf + len, MSG_MAX - len, "; %s#%s: %s", type, id, msg);
}

/* Restore: refuses (OPS_EPRECOND) a checkpoint whose catalogued objects
 * are not all in its bank (bank_saved.h, presence only: stats, never
 * chunk data). A bank that does not exist holds nothing, which only
 * matters if the checkpoint claims objects; a bank smaugd cannot open as
 * a file:// bank is not checked (the plugins read it). `msg` holds
 * MSG_MAX bytes. */
static int check_saved(ops_t *ops, const Smaug__V1__Checkpoint *cp, char *msg) {
  const char *uri =
      cp->bank_uri && *cp->bank_uri ? cp->bank_uri : ops->bank_uri;
  bank_t *bank = NULL;
  bank_err_t err = {0};
  int rc = bank_open_ex(uri, BANK_OPEN_EXISTING, &bank, &err);
  if (rc == UV_EINVAL) {
    rt_log(RT_LOG_DEBUG, "api", "restore: bank not checked", "bank=%s why=%s",
           uri, err.msg);
    return 0;
  }
  if (rc != 0 && rc != UV_ENOENT) {
    snprintf(msg, MSG_MAX, "checkpoint %s: bank %s: %s", cp->id, uri, err.msg);
    return OPS_EPRECOND;
  }
  Smaug__V1__ResourceResult **rs;
  size_t n, missing = 0;
  if ((rc = store_result_list(ops->store, cp->id, &rs, &n)) != 0) {
    bank_close(bank);
    snprintf(msg, MSG_MAX, "checkpoint %s: reading its results: %s", cp->id,
             uv_strerror(rc));
    return OPS_EINTERNAL;
  }
  snprintf(msg, MSG_MAX, "checkpoint %s: data missing from the bank", cp->id);
  rc = bank_saved_check(bank, cp->id, rs, n, 0, restore_missing, msg, &missing,
                        &err);
  store_msgs_free(rs, n);
  bank_close(bank);
  if (rc == UV_ENOENT)
    return OPS_EPRECOND;
  if (rc != 0) {
    snprintf(msg, MSG_MAX, "checkpoint %s: checking its bank %s: %s", cp->id,
             uri, err.msg[0] ? err.msg : uv_strerror(rc));
    return OPS_EPRECOND;
  }
  return 0;
}

int ops_restore(ops_t *ops, const char *checkpoint_id,
                const ops_params_t *params, ops_done_cb cb, void *data) {
  if (ops == NULL || checkpoint_id == NULL || cb == NULL)
    return UV_EINVAL;
  char msg[MSG_MAX];
  const Smaug__V1__ParameterSet *ps = params ? params->parameters : NULL;
  Smaug__V1__Checkpoint *cp;
  if (get_checkpoint(ops, checkpoint_id, cb, data, &cp))
    return 0;
  int err = 0;
  if (cp->status != SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_AVAILABLE) {
    snprintf(msg, sizeof(msg),
             "checkpoint %s is %s; only an available checkpoint can be "
             "restored",
             cp->id, ops_checkpoint_status_name(cp->status));
    err = OPS_EPRECOND;
  }
  if (err == 0)
    err = ops_check_plugins(ops, cp->resources, cp->n_resources,
                            "checkpoint.resources", msg, sizeof(msg));
  if (err == 0 && params && params->check)
    err = params->check(params->check_data, ps, cp->resources, cp->n_resources,
                        msg, sizeof(msg));
  if (err == 0)
    err = check_saved(ops, cp, msg);
  /* The restore is in the checkpoint's tenant, never another. */
  char *tenant = err ? NULL : strdup(cp->tenant);
  protobuf_c_message_free_unpacked(&cp->base, NULL);
  if (err) {
    report(cb, data, err, msg, NULL, 0);
    return 0;
  }
  op_t *op = tenant ? op_new(ops, DAG_OP_RESTORE) : NULL;
  if (op == NULL) {
    free(tenant);
    report(cb, data, OPS_ENOMEM, "out of memory", NULL, 0);
    return 0;
  }
  ops_new_id("op", op->id, sizeof(op->id));
  ops_new_id("rst", op->target_id, sizeof(op->target_id));
  snprintf(op->cp_id, sizeof(op->cp_id), "%s", checkpoint_id);
  snprintf(op->owner, sizeof(op->owner), "%s", op->target_id);
  op->fail_fast = params ? params->fail_fast : 0;
  Smaug__V1__Restore r = SMAUG__V1__RESTORE__INIT;
  r.id = op->target_id;
  r.checkpoint_id = op->cp_id;
  r.status = SMAUG__V1__RESTORE_STATUS__RESTORE_STATUS_IN_PROGRESS;
  r.operation_id = op->id;
  r.parameters = (Smaug__V1__ParameterSet *)ps;
  r.created_at_ms = ops_now_ms();
  r.tenant = tenant;
  Smaug__V1__ParameterSet empty = SMAUG__V1__PARAMETER_SET__INIT;
  if ((err = store_batch(ops->store)) == 0 &&
      (err = store_restore_put(ops->store, &r)) == 0)
    err = op_record(op, ps ? ps : &empty, tenant);
  free(tenant);
  if (op_launch(op, err, cb, data))
    return 0;
  rt_log(RT_LOG_INFO, "api", "restore started",
         "op=%s restore=%s checkpoint=%s", op->id, op->target_id, op->cp_id);
  op_enqueue(op);
  return 0;
}

/* ----------------------------------------------------------------- delete */

int ops_delete(ops_t *ops, const char *checkpoint_id, ops_done_cb cb,
               void *data) {
  if (ops == NULL || checkpoint_id == NULL || cb == NULL)
    return UV_EINVAL;
  char msg[MSG_MAX];
  Smaug__V1__Checkpoint *cp;
  if (get_checkpoint(ops, checkpoint_id, cb, data, &cp))
    return 0;
  int err = 0, st = cp->status;
  if (st != SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_AVAILABLE &&
      st != SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_ERROR &&
      st != SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_ERROR_DELETING) {
    snprintf(msg, sizeof(msg), "checkpoint %s is %s and cannot be deleted now",
             cp->id, ops_checkpoint_status_name(st));
    err = OPS_EPRECOND;
  } else if (ops_checkpoint_busy(ops, cp->id)) {
    snprintf(msg, sizeof(msg),
             "checkpoint %s is in use by a running operation (restore)",
             cp->id);
    err = OPS_EPRECOND;
  }
  if (err == 0)
    err = ops_check_plugins(ops, cp->resources, cp->n_resources,
                            "checkpoint.resources", msg, sizeof(msg));
  op_t *op = err ? NULL : op_new(ops, DAG_OP_DELETE);
  if (err == 0 && op == NULL) {
    err = OPS_ENOMEM;
    snprintf(msg, sizeof(msg), "out of memory");
  }
  if (err) {
    protobuf_c_message_free_unpacked(&cp->base, NULL);
    report(cb, data, err, msg, NULL, 0);
    return 0;
  }
  ops_new_id("op", op->id, sizeof(op->id));
  snprintf(op->cp_id, sizeof(op->cp_id), "%s", cp->id);
  snprintf(op->target_id, sizeof(op->target_id), "%s", cp->id);
  snprintf(op->owner, sizeof(op->owner), "%s", op->id);
  /* The delete runs with the parameters of the protect (or of the last
   * delete, which recorded them), before the checkpoint forgets it. */
  Smaug__V1__ParameterSet *pp = NULL;
  err = ops_protected_params(ops, cp->operation_id, &pp);
  cp->status = SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_DELETING;
  char *old_op = cp->operation_id, *old_reason = cp->reason;
  cp->operation_id = op->id;
  cp->reason = "";
  if (err == 0 && (err = store_batch(ops->store)) == 0 &&
      (err = store_checkpoint_put(ops->store, cp)) == 0)
    err = op_record(op, pp, cp->tenant);
  if (pp)
    protobuf_c_message_free_unpacked(&pp->base, NULL);
  cp->operation_id = old_op;
  cp->reason = old_reason;
  protobuf_c_message_free_unpacked(&cp->base, NULL);
  if (op_launch(op, err, cb, data))
    return 0;
  rt_log(RT_LOG_INFO, "api", "delete started", "op=%s checkpoint=%s", op->id,
         op->cp_id);
  op_enqueue(op);
  return 0;
}

/* ----------------------------------------------------------------- cancel */

int ops_cancel(ops_t *ops, const char *op_id, const char *reason,
               ops_done_cb cb, void *data) {
  if (ops == NULL || op_id == NULL || cb == NULL)
    return UV_EINVAL;
  char msg[MSG_MAX];
  op_t *op = op_find(ops, op_id);
  if (op == NULL || op->finished) {
    store_op_t *sop;
    int err = store_op_get(ops->store, op_id, &sop);
    if (err) {
      report_lookup(cb, data, "operation", op_id, err);
      return 0;
    }
    store_op_free(sop);
    snprintf(msg, sizeof(msg), "operation %s has already finished", op_id);
    report(cb, data, OPS_EPRECOND, msg, NULL, 0);
    return 0;
  }
  snprintf(op->cancel_reason, sizeof(op->cancel_reason), "%s",
           reason && *reason ? reason : "requested by a client");
  uint32_t count = 0;
  if (op->state == OP_QUEUED) {
    char why[400];
    ops_queue_remove(ops, op);
    snprintf(why, sizeof(why), "cancelled: %s", op->cancel_reason);
    op_finish_early(op, EXEC_CANCELLED_OP, why);
    count = 1;
  } else if (op->state == OP_BUILDING) {
    op->cancel_requested = 1;
    count = 1;
  } else if (op->state == OP_RUNNING && op->x) {
    for (uint32_t t = 0; t < dag_task_count(op->dag); t++)
      count += exec_op_task_status(op->x, t) == EXEC_RUNNING;
    exec_op_cancel(op->x, op->cancel_reason);
  }
  int err = ops_commit(ops, 0, msg, sizeof(msg));
  report(cb, data, err, msg, NULL, err ? 0 : count);
  return 0;
}
