/*
 * ops_run.c - running an operation: the graph build (with discovery for a
 * protect), the DAG, the executor with the activity runner, the seeding of
 * a resumed run, and what the plugins say about going away and coming
 * back. This is the one file of the core that asks the plugins, and only
 * through the plain-C table of ops_plugins.h (ops->plugins).
 */
#include "ops_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disc_proto.h"
#include "kv.h"
#include "rt_log.h"
#include "rt_wire.h"
#include "status.h"

/* Makes the runner context of a built op: its calls carry the op's
 * checkpoint and parameters (protect and delete: the plan's; a restore:
 * its own merged over them). Returns 0 or UV_ENOMEM. */
static int run_init(op_t *op) {
  ops_t *ops = op->ops;
  int restore = op->kind == DAG_OP_RESTORE;
  ops_calls_t c = {.bank_uri = ops->bank_uri,
                   .checkpoint_id = op->cp_id,
                   .params = restore ? op->plan_params : op->params,
                   .overrides = restore ? op->params : NULL,
                   .timeout_ms = ops->call_timeout_ms,
                   .stopping = &ops->closing,
                   .cancel_reason = op->cancel_reason};
  return ops->plugins.runner_new(ops->pdata, &c, &op->runner, &op->rctx);
}

void ops_run_free(op_t *op) {
  if (op->rctx != NULL)
    op->ops->plugins.runner_free(op->ops->pdata, op->rctx);
  op->rctx = NULL;
  op->runner = NULL;
}

int ops_check_plugins(const ops_t *ops, Smaug__V1__Resource *const *res,
                      size_t n, const char *field, char *msg, size_t len) {
  char why[1024];
  for (size_t i = 0; i < n; i++) {
    int err = ops->plugins.resolve(ops->pdata, res[i]->type, why, sizeof(why));
    if (err == UV_ENOENT) {
      snprintf(msg, len, "%s[%zu].type: %s", field, i, why);
      return OPS_EPRECOND;
    }
    if (err) {
      snprintf(msg, len, "%s", why);
      return OPS_EUNAVAIL;
    }
  }
  return 0;
}

/* Checks the health of the plugin serving `type` now, so that its retries
 * go as soon as it serves again (plugin_available). */
void ops_recheck_plugin(ops_t *ops, const char *type) {
  ops->plugins.recheck(ops->pdata, type);
}

/* ops_available_cb: a plugin serves again; the tasks waiting out a
 * backoff for it are retried now. */
static void plugin_available(const char *plugin, void *data) {
  ops_t *ops = data;
  for (op_t *op = ops->live; op; op = op->next)
    if (op->state == OP_RUNNING && op->x != NULL &&
        exec_op_retry_now(op->x, plugin) > 0)
      rt_log(RT_LOG_INFO, "api", "plugin serving again: retrying now",
             "op=%s plugin=%s", op->id, plugin);
}

void ops_run_attach(ops_t *ops, int on) {
  ops->plugins.on_available(ops->pdata, on ? plugin_available : NULL,
                            on ? ops : NULL);
}

static void on_exec_done(exec_op_t *x, exec_outcome_t outcome, void *data) {
  op_t *op = data;
  (void)outcome;
  exec_op_free(x);
  op->x = NULL;
  /* The DAG and graph go with the op, once the executor's handle closed. */
  op_bury(op, 1);
}

/* Restore and delete: hand each resource the metadata its protect saved. */
static int set_saved_metadata(op_t *op) {
  Smaug__V1__ResourceResult **rs;
  size_t n;
  int err = store_result_list(op->ops->store, op->cp_id, &rs, &n);
  if (err)
    return err;
  for (size_t i = 0; i < n && err == 0; i++) {
    const Smaug__V1__ResourceResult *r = rs[i];
    int64_t node = graph_find(op->g, r->resource->type, r->resource->id);
    if (node < 0 || r->n_metadata == 0)
      continue;
    kv_t md;
    kv_init(&md);
    for (size_t j = 0; j < r->n_metadata && err == 0; j++)
      err = kv_set(&md, r->metadata[j]->key, r->metadata[j]->value);
    if (err == 0)
      err = exec_op_set_saved_metadata(op->x, (uint32_t)node, &md);
    kv_free(&md);
  }
  store_msgs_free(rs, n);
  return err;
}

/* A graph build failed: gives each resource built so far a result in the
 * open batch, so that the checkpoint or restore says what became of it:
 * FAILED with its own reason (`failed[i]`, may be NULL) when listing it
 * failed, else SKIPPED with "not run: <why>". Each result also goes to the
 * watchers as a FAILED or SKIPPED event with the same reason (no
 * activity, attempt 0), before the OPERATION_FINISHED that follows. */
static void write_unbuilt_results(op_t *op, const graph_t *g,
                                  const char *const *failed, const char *why) {
  ops_t *ops = op->ops;
  char notrun[OPS_REASON_MAX + 16];
  snprintf(notrun, sizeof(notrun), "not run: %s", why);
  int64_t now = ops_now_ms();
  int err = g ? store_batch(ops->store) : 0;
  for (uint32_t i = 0; g && err == 0 && i < graph_count(g); i++) {
    int own = failed && failed[i];
    const char *reason = own ? failed[i] : notrun;
    exec_event_t ev = {.kind = own ? EXEC_EV_FAILED : EXEC_EV_SKIPPED,
                       .task = EXEC_NO_TASK,
                       .node = i,
                       .time_ms = now,
                       .unit = "",
                       .message = reason};
    if ((err = ops_emit_resource_event(op, g, &ev)) != 0)
      return; /* logged; the op ends with the store's error */
    Smaug__V1__Resource res;
    if ((err = disc_resource_of(graph_node(g, i), &res)) != 0)
      break;
    Smaug__V1__ResourceResult rr = SMAUG__V1__RESOURCE_RESULT__INIT;
    rr.resource = &res;
    rr.status = own ? SMAUG__V1__TASK_STATUS__TASK_STATUS_FAILED
                    : SMAUG__V1__TASK_STATUS__TASK_STATUS_SKIPPED;
    rr.reason = (char *)reason;
    rr.finished_at_ms = now;
    err = store_result_put(ops->store, op->owner, &rr);
    disc_resource_free(&res);
  }
  if (err)
    ops_log_store_error(ops, "result", err);
}

/* Creates and starts the executor of a built op. Returns 0 or an error. */
static int run_graph(op_t *op) {
  ops_t *ops = op->ops;
  int err = 0;
  if (op->kind == DAG_OP_PROTECT) {
    /* The full graph is what restore and delete will use. */
    Smaug__V1__Checkpoint *cp;
    if ((err = store_checkpoint_get(ops->store, op->cp_id, &cp)) == 0) {
      Smaug__V1__Checkpoint copy = *cp;
      if ((err = disc_to_proto(op->g, &copy)) == 0) {
        if ((err = store_batch(ops->store)) == 0)
          err = store_checkpoint_put(ops->store, &copy);
        disc_proto_free(&copy);
      }
      protobuf_c_message_free_unpacked(&cp->base, NULL);
    }
  }
  exec_opts_t o;
  exec_opts_init(&o);
  o.max_in_flight = 512;
  o.limits = ops->plugins.limits;
  o.limits_data = ops->pdata;
  o.limiter = ops->limiter;
  o.deadline_ms = (uint32_t)ops->call_timeout_ms;
  o.heartbeat_ms = ops->heartbeat_ms;
  if (ops->retry_budget_ms >= 0)
    o.retry_budget_ms = (uint32_t)ops->retry_budget_ms;
  o.fail_fast = op->fail_fast;
  if (err == 0)
    err = dag_new(op->g, (dag_op_t)op->kind, ops->plugins.implemented,
                  ops->pdata, &op->dag);
  if (err == 0) {
    op->n_prog = dag_task_count(op->dag);
    op->prog = calloc(op->n_prog + 1, sizeof(*op->prog));
    if (op->prog == NULL) {
      op->n_prog = 0;
      err = UV_ENOMEM;
    }
  }
  if (err == 0)
    err = run_init(op);
  if (err == 0)
    err = exec_op_new(ops->loop, op->dag, op->id, &o, op->runner, op->rctx,
                      &op->x);
  if (err == 0) {
    exec_op_set_event_cb(op->x, ops_exec_event, op);
    if (op->kind != DAG_OP_PROTECT)
      err = set_saved_metadata(op);
  }
  if (err == 0 && op->resume)
    err = ops_seed_tasks(op);
  if (err == 0) {
    op->state = OP_RUNNING;
    err = exec_op_start(op->x, on_exec_done, op);
  }
  return err;
}

/* ops_built_cb of the op's graph build. */
static void on_built(graph_t *g, int code, const char *msg,
                     const char *const *failed, void *data) {
  op_t *op = data;
  ops_t *ops = op->ops;
  char reason[OPS_REASON_MAX];
  if (ops->closing) {
    graph_free(g);
    op_bury(op, 0);
    return;
  }
  if (code != EXEC_CODE_OK) {
    snprintf(reason, sizeof(reason), "%s: %s", status_name(code), msg);
    rt_utf8_repair(reason); /* a plugin's message, maybe cut on the way */
    write_unbuilt_results(op, g, failed, reason);
    graph_free(g);
    op_finish_early(op, EXEC_FAILED_OP, reason);
    return;
  }
  op->g = g;
  if (op->store_err[0]) {
    snprintf(reason, sizeof(reason), "INTERNAL: %s", op->store_err);
    op_finish_early(op, EXEC_FAILED_OP, reason);
    return;
  }
  if (op->cancel_requested) {
    snprintf(reason, sizeof(reason), "cancelled: %s", op->cancel_reason);
    op_finish_early(op, EXEC_CANCELLED_OP, reason);
    return;
  }
  int err = run_graph(op);
  if (err) {
    snprintf(reason, sizeof(reason), "INTERNAL: cannot start: %s",
             uv_strerror(err));
    exec_op_free(op->x);
    op->x = NULL;
    op_finish_early(op, EXEC_FAILED_OP, reason);
  }
}

void op_start(op_t *op) {
  ops_t *ops = op->ops;
  char reason[OPS_REASON_MAX];
  ops->running++;
  op->state = OP_BUILDING;
  if (op->cancel_requested) {
    snprintf(reason, sizeof(reason), "cancelled: %s", op->cancel_reason);
    op_finish_early(op, EXEC_CANCELLED_OP, reason);
    return;
  }
  Smaug__V1__Checkpoint *cp = NULL;
  int err = store_checkpoint_get(ops->store, op->cp_id, &cp);
  if (err == 0 && op->kind == DAG_OP_RESTORE && op->plan_params == NULL)
    err = ops_protected_params(ops, cp->operation_id, &op->plan_params);
  if (err == 0) {
    int discover = op->kind == DAG_OP_PROTECT && cp->n_edges == 0;
    err = ops->plugins.build(ops->pdata, cp->resources, cp->n_resources,
                             cp->edges, cp->n_edges, op->params, discover,
                             on_built, op);
  }
  if (cp)
    protobuf_c_message_free_unpacked(&cp->base, NULL);
  if (err) {
    snprintf(reason, sizeof(reason), "INTERNAL: cannot start: %s",
             uv_strerror(err));
    op_finish_early(op, EXEC_FAILED_OP, reason);
  }
}
