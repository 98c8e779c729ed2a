/*
 * ops_recover.c - recovery after a restart (see ops_recover() in ops.h):
 * every operation the store still lists as running is rebuilt from its
 * record and either queued to resume (its done tasks are seeded from the
 * store when it runs, ops_events.c) or, when a plugin it needs is not
 * back, ended in error with the reason. Watchers that came before
 * recovery were parked; they follow the recovered operation, or end.
 */
#include "ops_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_log.h"

/* Rebuilds the op of record `so`, or NULL when out of memory. */
static op_t *op_of_record(ops_t *ops, const store_op_t *so) {
  op_t *op = op_new(ops, so->kind);
  if (op == NULL)
    return NULL;
  snprintf(op->id, sizeof(op->id), "%s", so->id);
  snprintf(op->cp_id, sizeof(op->cp_id), "%s", so->checkpoint_id);
  snprintf(op->target_id, sizeof(op->target_id), "%s", so->target_id);
  snprintf(op->owner, sizeof(op->owner), "%s",
           so->kind == DAG_OP_DELETE ? so->id : so->target_id);
  op->fail_fast = so->fail_fast;
  op->resume = 1;
  if (so->params_len)
    op->params =
        smaug__v1__parameter_set__unpack(NULL, so->params_len, so->params);
  store_event_last_seq(ops->store, op->id, &op->last_seq);
  op->committed_seq = op->last_seq;
  return op;
}

/* Resume only when every plugin the stored graph needs is back: 0, or an
 * error with why in msg. */
static int resumable(ops_t *ops, const op_t *op, char *msg, size_t len) {
  Smaug__V1__Checkpoint *cp = NULL;
  int err = store_checkpoint_get(ops->store, op->cp_id, &cp);
  if (err != 0) {
    snprintf(msg, len, "checkpoint %s: %s", op->cp_id, uv_strerror(err));
    return OPS_EINTERNAL;
  }
  err = ops_check_plugins(ops, cp->resources, cp->n_resources,
                          "checkpoint.resources", msg, len);
  protobuf_c_message_free_unpacked(&cp->base, NULL);
  return err;
}

void ops_recover(ops_t *ops) {
  store_op_t **sops;
  size_t n;
  int err = store_op_list_running(ops->store, &sops, &n);
  if (err) {
    ops_log_store_error(ops, "recovery", err);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    op_t *op = op_of_record(ops, sops[i]);
    if (op == NULL)
      break;
    char msg[1024];
    int rc = resumable(ops, op, msg, sizeof(msg));
    op->next = ops->live;
    ops->live = op;
    op->state = OP_QUEUED;
    ops_watchers_adopt(ops, op);
    if (rc) {
      char reason[OPS_REASON_MAX];
      snprintf(reason, sizeof(reason), "cannot resume after restart: %s", msg);
      rt_log(RT_LOG_WARN, "api", "operation not resumed", "op=%s reason=\"%s\"",
             op->id, reason);
      op_finish_early(op, EXEC_FAILED_OP, reason);
      continue;
    }
    rt_log(RT_LOG_INFO, "api", "resuming operation", "op=%s kind=%d", op->id,
           op->kind);
    ops_live_unlink(ops, op);
    op_enqueue(op);
  }
  store_ops_free(sops, n);
  ops->recovered = 1;
  for (ops_watcher_t *w = ops->watchers, *nx; w; w = nx) {
    nx = w->next;
    if (w->op == NULL && w->end == 0)
      ops_watcher_end(w, OPS_EINTERNAL, "operation was not recovered");
  }
  ops_flush(ops);
  ops_tick_cb(&ops->tick_timer); /* prune at start */
}
