/*
 * ops_commit.c - the one commit path of the operations core: committing
 * what the store queued and then streaming what it held, what a failed
 * commit does, the final status of each operation and its retry, and the
 * pruning of old events. Every store commit of the core is made here.
 *
 * Events and results go through the store's asynchronous commit: the
 * flush timer asks for one (store_commit) and goes on; its callback marks
 * what it covered committed and streams it. One such commit runs at a
 * time, and whatever is written meanwhile goes in the next one, so a busy
 * store commits in groups. Each op remembers its last sequence when the
 * commit was asked (commit_seq): that is what the callback may stream.
 * Handlers that answer at once (ops_commit) and closing use the
 * synchronous store_flush(), which first calls back the running commit.
 *
 * A commit that fails (a full disk) fails the operations whose writes it
 * lost, with the store's error as the reason; an operation's final status
 * is written again every OPS_FINAL_RETRY_MS until a commit takes it, so
 * that nothing stays `protecting` once the disk has room again. Events of
 * finished operations older than the retention are pruned in the
 * background, OPS_PRUNE_BATCH at a time.
 */
#include "ops_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_log.h"
#include "rt_wire.h"

/* ----------------------------------------------------------- final state */

static const char *final_name(const op_t *op, exec_outcome_t outcome) {
  int ok = outcome == EXEC_SUCCEEDED;
  switch (op->kind) {
  case DAG_OP_PROTECT:
    return ok ? "available" : "error";
  case DAG_OP_DELETE:
    return ok ? "deleted" : "error-deleting";
  default:
    return ok ? "success" : "fail";
  }
}

void ops_summarize(const op_t *op, exec_outcome_t outcome, char *buf,
                   size_t len) {
  buf[0] = '\0';
  if (outcome == EXEC_SUCCEEDED)
    return;
  size_t k = 0;
  uint32_t failed = 0, total = op->g ? graph_count(op->g) : 0;
  if (outcome == EXEC_CANCELLED_OP)
    k += (size_t)snprintf(buf, len, "cancelled%s%s",
                          op->cancel_reason[0] ? ": " : "", op->cancel_reason);
  for (uint32_t i = 0; op->x && i < total; i++) {
    exec_resource_t r;
    exec_op_resource(op->x, i, &r);
    if (r.status != EXEC_FAILED)
      continue;
    failed++;
    if (k + 16 < len) {
      const graph_node_t *n = graph_node(op->g, i);
      int w = snprintf(buf + k, len - k, "%s%s#%s: %s", k ? "; " : "", n->type,
                       n->id, r.reason);
      if (w > 0)
        k += (size_t)w;
    }
  }
  if (k >= len)
    k = len - 1;
  if (outcome == EXEC_FAILED_OP && failed) {
    char head[96];
    snprintf(head, sizeof(head), "%u of %u resources failed: ", failed, total);
    size_t hl = strlen(head);
    if (hl + k + 1 > len)
      k = len - hl - 1;
    memmove(buf + hl, buf, k);
    memcpy(buf, head, hl);
    buf[hl + k] = '\0';
  }
  rt_utf8_repair(buf); /* the cuts above may split a character */
}

/* Queues the final status of the operation's object. The store applies
 * it to the latest version it has queued (on_built's graph included), so
 * nothing is read back: reads see committed state only. */
static int write_final(op_t *op, exec_outcome_t outcome, const char *reason) {
  ops_t *ops = op->ops;
  int err, ok = outcome == EXEC_SUCCEEDED;
  if (op->kind == DAG_OP_RESTORE)
    err = store_restore_set_status(
        ops->store, op->target_id,
        ok ? SMAUG__V1__RESTORE_STATUS__RESTORE_STATUS_SUCCESS
           : SMAUG__V1__RESTORE_STATUS__RESTORE_STATUS_FAIL,
        ops_now_ms(), reason);
  else if (op->kind == DAG_OP_PROTECT)
    err = store_checkpoint_set_status(
        ops->store, op->cp_id,
        ok ? SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_AVAILABLE
           : SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_ERROR,
        ops_now_ms(), reason);
  else
    err = store_checkpoint_set_status(
        ops->store, op->cp_id,
        ok ? SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_DELETED
           : SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_ERROR_DELETING,
        0, reason);
  if (err == 0)
    err = store_op_set_running(ops->store, op->id, 0);
  return err;
}

/* Writes the final status kept in the op and its OPERATION_FINISHED event
 * into the open batch. Should the write or its commit fail, final_retry
 * stays set and the tick writes them again. */
void op_final(op_t *op) {
  ops_t *ops = op->ops;
  const char *reason = op->final_reason ? op->final_reason : "out of memory";
  op->final_retry = 1;
  int err = store_batch(ops->store);
  if (err == 0)
    err = write_final(op, op->final_outcome, reason);
  if (err) {
    ops_log_store_error(ops, "final status", err);
    return;
  }
  Smaug__V1__OperationEvent e = SMAUG__V1__OPERATION_EVENT__INIT;
  e.sequence = ++op->last_seq;
  e.operation_id = op->id;
  e.kind = SMAUG__V1__EVENT_KIND__EVENT_KIND_OPERATION_FINISHED;
  e.time_ms = ops_now_ms();
  e.message = (char *)reason;
  e.final_status = (char *)final_name(op, op->final_outcome);
  if (op_emit(op, &e) == 0)
    op->final_seq = e.sequence;
}

/* ---------------------------------------------------------------- commit */

/* After a failed commit: the writes of every op that had some queued are
 * lost (the store discards what was queued before it reported the
 * failure). Running ones are stopped and will end in error with the
 * store's message; a lost final status is written again later. */
static void commit_failed(op_t *list, int err) {
  for (op_t *op = list; op; op = op->next) {
    if (op->last_seq == op->committed_seq && !op->final_retry)
      continue;
    op->last_seq = op->committed_seq; /* rolled back */
    op->final_seq = 0;
    op_store_lost(op, err);
  }
}

/* Marks committed, for each op, its sequences up to `all` ? last_seq :
 * commit_seq (what the commit that called back covered). */
static void committed(op_t *list, int all) {
  for (op_t *op = list; op; op = op->next) {
    uint64_t upto = all ? op->last_seq : op->commit_seq;
    if (upto > op->committed_seq)
      op->committed_seq = upto;
    if (op->final_retry && op->final_seq &&
        op->final_seq <= op->committed_seq) {
      op->final_retry = 0;
      rt_log(RT_LOG_INFO, "api", "operation finished",
             "op=%s status=%s events=%" PRIu64 " reason=\"%s\"", op->id,
             final_name(op, op->final_outcome), op->final_seq,
             op->final_reason ? op->final_reason : "");
    }
  }
}

/* Accounts for a commit that ended with `err` (`all`: it covered every
 * write, else what commit_seq says) and streams what it made durable. */
static void commit_settled(ops_t *ops, int err, int all) {
  if (err) {
    ops_log_store_error(ops, "commit", err);
    commit_failed(ops->live, err);
    commit_failed(ops->dead, err);
  } else {
    committed(ops->live, all);
    committed(ops->dead, all);
  }
  for (op_t *op = ops->live; op; op = op->next) {
    ops_deliver(op, err != 0);
    if (op->store_err[0] && !op->store_stopped && op->state == OP_RUNNING &&
        op->x) {
      op->store_stopped = 1;
      exec_op_cancel(op->x, op->store_err);
    }
  }
  for (op_t *op = ops->dead; op; op = op->next)
    ops_deliver(op, err != 0);
}

int ops_flush(ops_t *ops) {
  int err = 0;
  if (store_in_batch(ops->store))
    err = store_flush(ops->store); /* calls commit_done() first, if due */
  commit_settled(ops, err, 1);
  return err;
}

/* store_commit_cb of the flush timer's commit. */
static void commit_done(store_t *st, int status, void *data) {
  ops_t *ops = data;
  (void)st;
  ops->commit_running = 0;
  commit_settled(ops, status, 0);
  /* What was written meanwhile, and the dead ops to reap. */
  ops_schedule_flush(ops);
}

/* Asks the store to commit everything queued, unless a commit runs (its
 * callback schedules the next one). Returns 1 when a commit was asked. */
static int commit_start(ops_t *ops) {
  if (ops->commit_running)
    return 1;
  if (!store_in_batch(ops->store))
    return 0;
  for (op_t *op = ops->live; op; op = op->next)
    op->commit_seq = op->last_seq;
  for (op_t *op = ops->dead; op; op = op->next)
    op->commit_seq = op->last_seq;
  if (store_commit(ops->store, commit_done, ops) != 0)
    return 0; /* out of memory: the caller flushes */
  ops->commit_running = 1;
  return 1;
}

int ops_commit(ops_t *ops, int err, char *msg, size_t len) {
  if (err) {
    store_flush(ops->store); /* ends the batch the failed writes opened */
    snprintf(msg, len, "store: %s", uv_strerror(err));
    return OPS_EINTERNAL;
  }
  if ((err = ops_flush(ops)) != 0) {
    snprintf(msg, len, "store: %s: %s", uv_strerror(err),
             store_errmsg(ops->store));
    return OPS_EINTERNAL;
  }
  return 0;
}

static void flush_timer_cb(uv_timer_t *t) {
  ops_t *ops = t->data;
  ops->flush_armed = 0;
  if (!commit_start(ops))
    ops_flush(ops); /* nothing to commit: stream what is committed */
  /* Ops that died before this iteration: their executor handle has
   * closed by now, so the DAG and graph can go. One whose final status
   * still waits for a commit stays for the retry tick. */
  op_t *keep = NULL;
  int again = 0;
  for (op_t *op = ops->dead, *n; op; op = n) {
    n = op->next;
    if (op->n_watchers == 0 && op->pend_head == NULL && !op->final_retry &&
        op->reap++ > 0) {
      op_free(op);
      continue;
    }
    again |= !op->final_retry;
    op->next = keep;
    keep = op;
  }
  ops->dead = keep;
  if (again && !ops->flush_armed) {
    ops->flush_armed = 1;
    uv_timer_start(&ops->flush_timer, flush_timer_cb, 1, 0);
  }
}

void ops_schedule_flush(ops_t *ops) {
  if (ops->flush_armed || ops->closing)
    return;
  ops->flush_armed = 1;
  uv_timer_start(&ops->flush_timer, flush_timer_cb, 0, 0);
}

/* Once a second: final statuses that a failed commit lost are written
 * again, and every OPS_PRUNE_EVERY ticks (at once while more is left) the
 * events of old finished operations are pruned, a batch at a time. */
void ops_tick_cb(uv_timer_t *t) {
  ops_t *ops = t->data;
  int retried = 0;
  for (op_t *op = ops->dead; op; op = op->next)
    if (op->final_retry && op->final_seq == 0) {
      op_final(op);
      retried = 1;
    }
  if (retried && ops_flush(ops) == 0)
    ops_schedule_flush(ops); /* reap what is done */
  if (ops->event_retention_ms <= 0 || ops->ticks++ % OPS_PRUNE_EVERY != 0)
    return;
  ops_flush(ops);
  uint32_t deleted = 0;
  int err =
      store_event_prune(ops->store, ops_now_ms() - ops->event_retention_ms,
                        OPS_PRUNE_BATCH, &deleted);
  if (err)
    ops_log_store_error(ops, "event pruning", err);
  else if (deleted)
    rt_log(RT_LOG_INFO, "api", "events pruned", "count=%u", deleted);
  if (err == 0 && deleted == OPS_PRUNE_BATCH)
    ops->ticks = 0; /* more left: go on at the next tick */
}
