/*
 * ops.c - the lifecycle of the operations core (see ops.h): creating and
 * freeing it, the queue of operations waiting for a slot, the live and
 * dead lists, and the small helpers every file uses (ids, times, status
 * names).
 *
 * An operation goes QUEUED -> BUILDING (graph) -> RUNNING (executor) ->
 * DONE. At most max_operations are BUILDING or RUNNING; the others wait in
 * FIFO order. A finished op moves to the dead list, where it stays until
 * its last events are committed and streamed and its executor handle has
 * closed (ops_commit.c frees it).
 */
#include "ops_int.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt_log.h"

/* ------------------------------------------------------------- helpers */

int ops_err_status(int err) {
  if (err == 0)
    return 0;
  switch (err) {
#define OPS_ERR_CASE(name, code, status, sname)                                \
  case name:                                                                   \
    return status;
    OPS_ERRORS(OPS_ERR_CASE)
#undef OPS_ERR_CASE
  default:
    return 13; /* INTERNAL */
  }
}

void ops_new_id(const char *prefix, char *buf, size_t len) {
  unsigned char r[16];
  if (RAND_bytes(r, sizeof(r)) != 1) {
    /* Never expected; fall back to time and address bits, still unique
     * enough within one process. */
    uint64_t t = (uint64_t)ops_now_ms() ^ (uint64_t)(uintptr_t)buf;
    for (size_t i = 0; i < sizeof(r); i++)
      r[i] = (unsigned char)(t >> (8 * (i % 8))) ^ (unsigned char)rand();
  }
  int k = snprintf(buf, len, "%s-", prefix);
  for (size_t i = 0; i < sizeof(r) && k > 0 && (size_t)k + 2 < len; i++)
    k += snprintf(buf + k, len - (size_t)k, "%02x", r[i]);
}

int64_t ops_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *ops_checkpoint_status_name(int status) {
  switch (status) {
  case SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_PROTECTING:
    return "protecting";
  case SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_AVAILABLE:
    return "available";
  case SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_ERROR:
    return "error";
  case SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_DELETING:
    return "deleting";
  case SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_DELETED:
    return "deleted";
  case SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_ERROR_DELETING:
    return "error-deleting";
  default:
    return "unspecified";
  }
}

const char *ops_restore_status_name(int status) {
  switch (status) {
  case SMAUG__V1__RESTORE_STATUS__RESTORE_STATUS_IN_PROGRESS:
    return "in_progress";
  case SMAUG__V1__RESTORE_STATUS__RESTORE_STATUS_SUCCESS:
    return "success";
  case SMAUG__V1__RESTORE_STATUS__RESTORE_STATUS_FAIL:
    return "fail";
  default:
    return "unspecified";
  }
}

void ops_pack(const ProtobufCMessage *m, uint8_t **buf, size_t *len) {
  *len = protobuf_c_message_get_packed_size(m);
  *buf = malloc(*len ? *len : 1);
  if (*buf)
    protobuf_c_message_pack(m, *buf);
}

void ops_log_store_error(ops_t *ops, const char *what, int err) {
  rt_log(RT_LOG_ERROR, "api", "store write failed",
         "what=%s error=\"%s\" detail=\"%s\"", what, uv_strerror(err),
         store_errmsg(ops->store));
}

/* ------------------------------------------------------------ lifecycle */

op_t *op_find(const ops_t *ops, const char *id) {
  for (op_t *op = ops->live; op; op = op->next)
    if (strcmp(op->id, id) == 0)
      return op;
  return NULL;
}

int ops_checkpoint_busy(const ops_t *ops, const char *checkpoint_id) {
  for (op_t *op = ops->live; op; op = op->next)
    if (!op->finished && strcmp(op->cp_id, checkpoint_id) == 0)
      return 1;
  return 0;
}

op_t *op_new(ops_t *ops, int kind) {
  op_t *op = calloc(1, sizeof(*op));
  if (op == NULL)
    return NULL;
  op->ops = ops;
  op->kind = kind;
  return op;
}

void op_free(op_t *op) {
  exec_op_free(op->x); /* normally already freed; NULL-safe */
  dag_free(op->dag);
  graph_free(op->g);
  if (op->params)
    protobuf_c_message_free_unpacked(&op->params->base, NULL);
  if (op->plan_params)
    protobuf_c_message_free_unpacked(&op->plan_params->base, NULL);
  for (ops_pend_t *p = op->pend_head, *n; p; p = n) {
    n = p->next;
    free(p);
  }
  ops_prog_free(op);
  ops_run_free(op);
  free(op->final_reason);
  free(op);
}

void ops_live_unlink(ops_t *ops, op_t *op) {
  for (op_t **pp = &ops->live; *pp; pp = &(*pp)->next)
    if (*pp == op) {
      *pp = op->next;
      return;
    }
}

void op_enqueue(op_t *op) {
  ops_t *ops = op->ops;
  op->next = ops->live;
  ops->live = op;
  op->state = OP_QUEUED;
  if (ops->running < ops->max_operations) {
    op_start(op);
    return;
  }
  op->qnext = NULL;
  if (ops->qtail)
    ops->qtail->qnext = op;
  else
    ops->qhead = op;
  ops->qtail = op;
}

void ops_queue_remove(ops_t *ops, op_t *op) {
  op_t *prev = NULL;
  for (op_t *q = ops->qhead; q; prev = q, q = q->qnext)
    if (q == op) {
      if (prev)
        prev->qnext = q->qnext;
      else
        ops->qhead = q->qnext;
      if (ops->qtail == q)
        ops->qtail = prev;
      return;
    }
}

/* Called when an operation stops using a slot. */
static void slot_released(ops_t *ops) {
  ops->running--;
  while (!ops->closing && ops->qhead && ops->running < ops->max_operations) {
    op_t *op = ops->qhead;
    ops->qhead = op->qnext;
    if (ops->qhead == NULL)
      ops->qtail = NULL;
    op_start(op);
  }
}

void op_bury(op_t *op, int held_slot) {
  ops_t *ops = op->ops;
  op->state = OP_DONE;
  ops_live_unlink(ops, op);
  op->next = ops->dead;
  ops->dead = op;
  if (held_slot && !ops->closing)
    slot_released(ops);
  ops_schedule_flush(ops);
}

void op_finish_early(op_t *op, exec_outcome_t outcome, const char *reason) {
  int held = op->state == OP_BUILDING || op->state == OP_RUNNING;
  op->finished = 1;
  op->final_outcome = outcome;
  free(op->final_reason);
  op->final_reason = strdup(reason);
  op_final(op);
  op_bury(op, held);
}

/* -------------------------------------------------------------- results */

int ops_checkpoint_results(ops_t *ops, const Smaug__V1__Checkpoint *cp,
                           Smaug__V1__ResourceResult ***out, size_t *n) {
  Smaug__V1__ResourceResult **rs;
  size_t k;
  int err = store_result_list(ops->store, cp->id, &rs, &k);
  if (err)
    return err;
  int del =
      cp->status == SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_DELETING ||
      cp->status == SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_DELETED ||
      cp->status ==
          SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_ERROR_DELETING;
  Smaug__V1__ResourceResult **ds = NULL;
  size_t nd = 0;
  if (del && cp->operation_id && *cp->operation_id &&
      store_result_list(ops->store, cp->operation_id, &ds, &nd) == 0) {
    /* Both lists are ordered by (type, id): merge the delete outcome. */
    size_t j = 0;
    for (size_t i = 0; i < k; i++) {
      Smaug__V1__Resource *a = rs[i]->resource;
      while (j < nd) {
        Smaug__V1__Resource *b = ds[j]->resource;
        int c = strcmp(b->type, a->type);
        if (c == 0)
          c = strcmp(b->id, a->id);
        if (c >= 0) {
          if (c == 0) {
            rs[i]->status = ds[j]->status;
            char *t = rs[i]->reason;
            rs[i]->reason = ds[j]->reason;
            ds[j]->reason = t;
            rs[i]->started_at_ms = ds[j]->started_at_ms;
            rs[i]->finished_at_ms = ds[j]->finished_at_ms;
          }
          break;
        }
        j++;
      }
    }
    store_msgs_free(ds, nd);
  }
  *out = rs;
  *n = k;
  return 0;
}

/* ---------------------------------------------------------- create/free */

int ops_new(const ops_config_t *cfg, ops_t **out) {
  if (cfg->loop == NULL || cfg->store == NULL || cfg->plugins == NULL)
    return UV_EINVAL;
  ops_t *ops = calloc(1, sizeof(*ops));
  if (ops == NULL)
    return UV_ENOMEM;
  ops->loop = cfg->loop;
  ops->store = cfg->store;
  ops->plugins = *cfg->plugins;
  ops->pdata = cfg->plugins_data;
  ops->limiter = cfg->limiter;
  ops->max_operations = cfg->max_operations > 0 ? cfg->max_operations : 16;
  ops->call_timeout_ms =
      cfg->call_timeout_ms > 0 ? cfg->call_timeout_ms : OPS_TIMEOUT_DEFAULT_MS;
  ops->heartbeat_ms = cfg->heartbeat_ms;
  /* 0 keeps exec's default budget; negative: not retried. */
  ops->retry_budget_ms = cfg->retry_budget_ms == 0  ? -1
                         : cfg->retry_budget_ms < 0 ? 0
                         : cfg->retry_budget_ms > UINT32_MAX
                             ? UINT32_MAX
                             : cfg->retry_budget_ms;
  if ((ops->bank_uri = strdup(cfg->bank_uri ? cfg->bank_uri : "")) == NULL) {
    free(ops);
    return UV_ENOMEM;
  }
  ops->event_retention_ms = cfg->event_retention_ms;
  ops_run_attach(ops, 1);
  uv_timer_init(ops->loop, &ops->flush_timer);
  ops->flush_timer.data = ops;
  uv_timer_init(ops->loop, &ops->prog_timer);
  ops->prog_timer.data = ops;
  uv_timer_init(ops->loop, &ops->tick_timer);
  ops->tick_timer.data = ops;
  uv_timer_start(&ops->tick_timer, ops_tick_cb, OPS_FINAL_RETRY_MS,
                 OPS_FINAL_RETRY_MS);
  uv_unref((uv_handle_t *)&ops->tick_timer);
  *out = ops;
  return 0;
}

void ops_close(ops_t *ops) {
  if (ops == NULL || ops->closing)
    return;
  ops_flush(ops);
  ops->closing = 1;
  ops_run_attach(ops, 0);
  uv_close((uv_handle_t *)&ops->flush_timer, NULL);
  uv_close((uv_handle_t *)&ops->prog_timer, NULL);
  uv_close((uv_handle_t *)&ops->tick_timer, NULL);
  ops_watchers_end_all(ops, OPS_EUNAVAIL, "smaugd is stopping");
  for (op_t *op = ops->live; op; op = op->next)
    if (op->state == OP_RUNNING && op->x)
      exec_op_cancel(op->x, "smaugd is stopping");
}

void ops_free(ops_t *ops) {
  if (ops == NULL)
    return;
  if (ops->commit_running)
    store_flush(ops->store); /* its callback needs the ops */
  for (op_t *op = ops->live, *n; op; op = n) {
    n = op->next;
    op_free(op);
  }
  for (op_t *op = ops->dead, *n; op; op = n) {
    n = op->next;
    op_free(op);
  }
  free(ops->bank_uri);
  free(ops);
}
