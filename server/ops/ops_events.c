/*
 * ops_events.c - the event sequence of an operation: each executor event
 * becomes an OperationEvent numbered after the last one, appended to the
 * open store batch together with the per-resource result and the task
 * output it changes, and queued (packed) for the watchers until its
 * commit. Task outputs are keyed by operation id, each payload prefixed
 * with the task's start and end times; resume reads them back here too
 * (ops_seed_tasks), so their format lives in one file.
 *
 * Progress events are coalesced per task: one stored per OPS_PROGRESS_MS
 * at most, the latest value winning, and the last one always stored
 * before the task's next state change; every other event is stored.
 */
#include "ops_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disc_proto.h"
#include "kv.h"
#include "rt_log.h"

static void pend_push(op_t *op, const Smaug__V1__OperationEvent *ev) {
  size_t len = protobuf_c_message_get_packed_size(&ev->base);
  ops_pend_t *p = malloc(sizeof(*p) + len);
  if (p == NULL)
    return; /* the watcher reads it back from the store */
  p->next = NULL;
  p->seq = ev->sequence;
  p->len = len;
  protobuf_c_message_pack(&ev->base, p->data);
  if (op->pend_tail)
    op->pend_tail->next = p;
  else
    op->pend_head = p;
  op->pend_tail = p;
}

/* Marks a running op whose records the store lost with `err`: the next
 * flush stops it (never from inside an executor callback), and it ends in
 * error with the store's message as the reason. */
void op_store_lost(op_t *op, int err) {
  if (op->finished || op->store_err[0])
    return;
  snprintf(op->store_err, sizeof(op->store_err), "store: %s", uv_strerror(err));
  rt_log(RT_LOG_ERROR, "api", "operation stopped: its records were lost",
         "op=%s error=\"%s\"", op->id, op->store_err);
  ops_schedule_flush(op->ops);
}

/* On failure the event is neither kept nor streamed, its sequence is
 * given back, and the op is stopped. */
int op_emit(op_t *op, Smaug__V1__OperationEvent *ev) {
  ops_t *ops = op->ops;
  int err = store_batch(ops->store);
  if (err == 0)
    err = store_event_append(ops->store, ev);
  if (err) {
    ops_log_store_error(ops, "event", err);
    op->last_seq--;
    op_store_lost(op, err);
    return err;
  }
  if (op->n_watchers)
    pend_push(op, ev);
  ops_schedule_flush(ops);
  return 0;
}

static void result_write(op_t *op, uint32_t node) {
  exec_resource_t r;
  exec_op_resource(op->x, node, &r);
  Smaug__V1__Resource res;
  Smaug__V1__ResourceResult rr = SMAUG__V1__RESOURCE_RESULT__INIT;
  if (disc_resource_of(graph_node(op->g, node), &res) != 0)
    return;
  size_t nm = r.metadata ? r.metadata->n : 0;
  Smaug__V1__ResourceResult__MetadataEntry *me = calloc(nm + 1, sizeof(*me));
  Smaug__V1__ResourceResult__MetadataEntry **mp = calloc(nm + 1, sizeof(*mp));
  if (me && mp) {
    for (size_t i = 0; i < nm; i++) {
      smaug__v1__resource_result__metadata_entry__init(&me[i]);
      me[i].key = r.metadata->items[i].key;
      me[i].value = r.metadata->items[i].val;
      mp[i] = &me[i];
    }
    rr.resource = &res;
    rr.status = (Smaug__V1__TaskStatus)r.status;
    rr.reason = (char *)(r.reason ? r.reason : "");
    rr.n_metadata = nm;
    rr.metadata = mp;
    rr.restored_id = (char *)(r.restored_id ? r.restored_id : "");
    rr.started_at_ms = r.started_ms;
    rr.finished_at_ms = r.finished_ms;
    int err = store_result_put(op->ops->store, op->owner, &rr);
    if (err)
      ops_log_store_error(op->ops, "result", err);
  }
  free(me);
  free(mp);
  disc_resource_free(&res);
}

/* ---------------------------------------------------------- task outputs */

/* Queues the output of `task`: its times and status in their columns,
 * and as payload the P state, the packed SyncResult or the failure's
 * reason. */
static void task_write(op_t *op, uint32_t task, exec_status_t status,
                       const char *reason) {
  exec_resource_t r;
  uint32_t node = dag_task_node(task);
  exec_op_resource(op->x, node, &r);
  uint8_t *body = NULL;
  size_t blen = 0;
  if (status == EXEC_FAILED) {
    blen = strlen(reason ? reason : "");
    body = malloc(blen + 1);
    if (body)
      memcpy(body, reason ? reason : "", blen);
  } else if (dag_task_activity(task) == DAG_PARALLEL) {
    blen = r.state ? r.state_len : 0;
    body = malloc(blen + 1);
    if (body && blen)
      memcpy(body, r.state, blen);
  } else {
    Smaug__V1__SyncResult sr = SMAUG__V1__SYNC_RESULT__INIT;
    size_t nm = r.metadata ? r.metadata->n : 0;
    Smaug__V1__SyncResult__MetadataEntry *me = calloc(nm + 1, sizeof(*me));
    Smaug__V1__SyncResult__MetadataEntry **mp = calloc(nm + 1, sizeof(*mp));
    if (me && mp) {
      for (size_t i = 0; i < nm; i++) {
        smaug__v1__sync_result__metadata_entry__init(&me[i]);
        me[i].key = r.metadata->items[i].key;
        me[i].value = r.metadata->items[i].val;
        mp[i] = &me[i];
      }
      sr.n_metadata = nm;
      sr.metadata = mp;
      sr.restored_id = (char *)(r.restored_id ? r.restored_id : "");
      ops_pack(&sr.base, &body, &blen);
    }
    free(me);
    free(mp);
  }
  if (body == NULL) {
    ops_log_store_error(op->ops, "task", UV_ENOMEM);
    return;
  }
  const graph_node_t *n = graph_node(op->g, node);
  store_task_t t = {.activity = (int)dag_task_activity(task),
                    .type = n->type,
                    .id = n->id,
                    .status = (int)status,
                    .started_at_ms = r.started_ms,
                    .finished_at_ms = r.finished_ms,
                    .payload = body,
                    .len = blen};
  int err = store_task_put(op->ops->store, op->id, &t);
  if (err)
    ops_log_store_error(op->ops, "task", err);
  free(body);
}

/* store_task_each callback: seeds the executor with one stored task. */
static void seed_task(const store_task_t *t, void *data) {
  op_t *op = data;
  uint32_t task;
  if (dag_task_find(op->dag, (dag_activity_t)t->activity, t->type, t->id,
                    &task) != 0)
    return; /* not in this graph */
  dag_activity_t act = dag_task_activity(task);
  const uint8_t *payload = t->payload;
  size_t len = t->len;
  int status = t->status;
  if (status == EXEC_FAILED) {
    char reason[OPS_REASON_MAX];
    snprintf(reason, sizeof(reason), "%.*s", (int)len, (const char *)payload);
    exec_op_seed_failed(op->x, task, EXEC_CODE_UNKNOWN, reason);
    return;
  }
  if (status != EXEC_DONE)
    return;
  exec_output_t out = {0};
  kv_t md;
  kv_init(&md);
  Smaug__V1__SyncResult *sr = NULL;
  if (act == DAG_PARALLEL) {
    out.state = payload;
    out.state_len = len;
  } else {
    sr = smaug__v1__sync_result__unpack(NULL, len, payload);
    if (sr == NULL)
      return;
    for (size_t i = 0; i < sr->n_metadata; i++)
      kv_set(&md, sr->metadata[i]->key, sr->metadata[i]->value);
    out.metadata = &md;
    out.restored_id = sr->restored_id;
  }
  exec_op_seed_done(op->x, task, &out, t->started_at_ms, t->finished_at_ms);
  kv_free(&md);
  if (sr)
    protobuf_c_message_free_unpacked(&sr->base, NULL);
}

int ops_seed_tasks(op_t *op) {
  return store_task_each(op->ops->store, op->id, seed_task, op);
}

/* ---------------------------------------------------------------- events */

int ops_emit_resource_event(op_t *op, const graph_t *g,
                            const exec_event_t *ev) {
  Smaug__V1__OperationEvent e = SMAUG__V1__OPERATION_EVENT__INIT;
  Smaug__V1__Resource res = SMAUG__V1__RESOURCE__INIT;
  Smaug__V1__Progress pr = SMAUG__V1__PROGRESS__INIT;
  int err = disc_resource_of(graph_node(g, ev->node), &res);
  if (err != 0)
    return err;
  e.sequence = ++op->last_seq;
  e.operation_id = op->id;
  e.kind = (Smaug__V1__EventKind)ev->kind;
  e.attempt = ev->attempt;
  e.time_ms = ev->time_ms;
  e.message = (char *)ev->message;
  e.resource = &res;
  e.activity = (Smaug__V1__Activity)ev->activity;
  if (ev->kind == EXEC_EV_PROGRESS) {
    pr.done = ev->done;
    pr.total = ev->total;
    pr.unit = (char *)ev->unit;
    pr.message = (char *)ev->message;
    e.progress = &pr;
  }
  err = op_emit(op, &e);
  disc_resource_free(&res);
  return err;
}

/* Turns one executor event into store writes in the open batch. */
static void op_event(op_t *op, const exec_event_t *ev) {
  ops_t *ops = op->ops;
  if (ev->kind == EXEC_EV_RETRIED && ev->code == EXEC_CODE_UNAVAILABLE)
    ops_recheck_plugin(ops, graph_node(op->g, ev->node)->type);
  if (store_batch(ops->store) != 0)
    ops_log_store_error(ops, "batch", UV_EIO);

  if (ev->kind == EXEC_EV_OPERATION_FINISHED) {
    char reason[OPS_REASON_MAX];
    exec_outcome_t outcome = ev->outcome;
    ops_summarize(op, outcome, reason, sizeof(reason));
    if (op->store_err[0]) {
      /* The run was stopped because its records could not be written. */
      outcome = EXEC_FAILED_OP;
      snprintf(reason, sizeof(reason), "INTERNAL: %s", op->store_err);
    }
    op->finished = 1;
    op->final_outcome = outcome;
    free(op->final_reason);
    op->final_reason = strdup(reason);
    op_final(op);
    return;
  }

  if (ops_emit_resource_event(op, op->g, ev) != 0)
    return;

  switch (ev->kind) {
  case EXEC_EV_DONE:
    task_write(op, ev->task, EXEC_DONE, NULL);
    result_write(op, ev->node);
    break;
  case EXEC_EV_FAILED:
    task_write(op, ev->task, EXEC_FAILED, ev->message);
    result_write(op, ev->node);
    break;
  case EXEC_EV_STARTED:
  case EXEC_EV_SKIPPED:
  case EXEC_EV_CANCELLED:
    result_write(op, ev->node);
    break;
  default:
    break;
  }
}

/* ------------------------------------------------------------- progress */

static void prog_clear(ops_prog_t *pg) {
  pg->held = 0;
  free(pg->unit);
  free(pg->message);
  pg->unit = pg->message = NULL;
}

void ops_prog_free(op_t *op) {
  for (uint32_t i = 0; i < op->n_prog; i++)
    prog_clear(&op->prog[i]);
  free(op->prog);
  op->prog = NULL;
  op->n_prog = 0;
}

/* Stores the progress `pg` holds, if any. */
static void prog_store(op_t *op, ops_prog_t *pg, int64_t now) {
  if (!pg->held)
    return;
  exec_event_t ev = pg->ev;
  ev.unit = pg->unit ? pg->unit : "";
  ev.message = pg->message ? pg->message : "";
  pg->last_ms = now;
  op_event(op, &ev);
  prog_clear(pg);
}

static void prog_timer_cb(uv_timer_t *t) {
  ops_t *ops = t->data;
  int64_t now = (int64_t)uv_now(t->loop);
  int64_t next = -1;
  ops->prog_armed = 0;
  for (op_t *op = ops->live; op; op = op->next)
    for (uint32_t i = 0; i < op->n_prog && !op->finished; i++) {
      ops_prog_t *pg = &op->prog[i];
      if (!pg->held)
        continue;
      int64_t due = pg->last_ms + OPS_PROGRESS_MS - now;
      if (due <= 0)
        prog_store(op, pg, now);
      else if (next < 0 || due < next)
        next = due;
    }
  if (next >= 0) {
    ops->prog_armed = 1;
    uv_timer_start(&ops->prog_timer, prog_timer_cb, (uint64_t)next, 0);
  }
}

/* Keeps `ev` as the task's latest progress, to be stored when its turn
 * comes. Returns 0, or UV_ENOMEM (the event is then dropped). */
static int prog_hold(ops_t *ops, ops_prog_t *pg, const exec_event_t *ev,
                     int64_t now) {
  char *unit = strdup(ev->unit), *msg = strdup(ev->message);
  if (unit == NULL || msg == NULL) {
    free(unit);
    free(msg);
    return UV_ENOMEM;
  }
  prog_clear(pg);
  pg->ev = *ev;
  pg->unit = unit;
  pg->message = msg;
  pg->held = 1;
  if (!ops->prog_armed && !ops->closing) {
    ops->prog_armed = 1;
    int64_t due = pg->last_ms + OPS_PROGRESS_MS - now;
    uv_timer_start(&ops->prog_timer, prog_timer_cb, due > 0 ? (uint64_t)due : 0,
                   0);
  }
  return 0;
}

void ops_exec_event(const exec_event_t *ev, void *data) {
  op_t *op = data;
  ops_t *ops = op->ops;
  if (ops->closing)
    return; /* stopping: the next start resumes from the store */
  ops_prog_t *pg = ev->task < op->n_prog ? &op->prog[ev->task] : NULL;
  int64_t now = (int64_t)uv_now(ops->loop);
  if (pg && ev->kind == EXEC_EV_PROGRESS) {
    if (pg->last_ms && now - pg->last_ms < OPS_PROGRESS_MS) {
      prog_hold(ops, pg, ev, now);
      return;
    }
    prog_clear(pg); /* an older value the timer has not stored yet */
    pg->last_ms = now;
  } else if (pg) {
    prog_store(op, pg, now); /* the latest value before the state change */
  }
  op_event(op, ev);
}
