/*
 * exec_activity.c - one call in flight (see exec_int.h): its deadline and
 * heartbeat, what the runner reads of it (exec.h, "activities"), its
 * progress, and its end, which hands the outcome to the scheduler.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec_int.h"

/* ------------------------------------------------------------ activities */

void exec__act_free_if_done(exec_activity_t *a) {
  if (a->runner_done && a->orphan) {
    free(a->key);
    free(a);
  }
}

/* Gives back the limiter slot of `a`, if it still holds one. The slot is
 * held until the runner ended the call, after the task's own event, so
 * that a call started with it comes after that event and after the plugin
 * answered. */
void exec__act_release(exec_activity_t *a) {
  lim_key_t *k = a->slot;
  a->slot = NULL;
  if (k != NULL)
    lim_release(k);
}

/* The due time (loop ms) of the deadline or heartbeat of `a`. */
static uint64_t exec__dl_due(const exec_op_t *op, const exec_activity_t *a) {
  return a->started + op->opts.deadline_ms;
}

static uint64_t exec__hb_due(const exec_op_t *op, const exec_activity_t *a) {
  return a->last_beat + op->opts.heartbeat_ms;
}

/* Arms the watch for the earliest head, when it is not armed already and
 * a list holds a call. An armed watch is never late: calls join the lists
 * at their tails, with dues no earlier than the heads'. */
static void exec__watch_arm(exec_op_t *op) {
  if (uv_is_active((uv_handle_t *)&op->watch))
    return;
  uint64_t due = UINT64_MAX;
  if (op->dl_head != NULL)
    due = exec__dl_due(op, op->dl_head);
  if (op->hb_head != NULL && exec__hb_due(op, op->hb_head) < due)
    due = exec__hb_due(op, op->hb_head);
  if (due == UINT64_MAX)
    return;
  uint64_t now = uv_now(op->loop);
  uv_timer_start(&op->watch, exec__watch_fire, due > now ? due - now : 0, 0);
}

#define LIST_UNLINK(op, a, pre)                                                \
  do {                                                                         \
    if ((a)->pre##_prev)                                                       \
      (a)->pre##_prev->pre##_next = (a)->pre##_next;                           \
    else                                                                       \
      (op)->pre##_head = (a)->pre##_next;                                      \
    if ((a)->pre##_next)                                                       \
      (a)->pre##_next->pre##_prev = (a)->pre##_prev;                           \
    else                                                                       \
      (op)->pre##_tail = (a)->pre##_prev;                                      \
    (a)->pre##_prev = (a)->pre##_next = NULL;                                  \
  } while (0)

#define LIST_APPEND(op, a, pre)                                                \
  do {                                                                         \
    (a)->pre##_next = NULL;                                                    \
    (a)->pre##_prev = (op)->pre##_tail;                                        \
    if ((op)->pre##_tail)                                                      \
      (op)->pre##_tail->pre##_next = (a);                                      \
    else                                                                       \
      (op)->pre##_head = (a);                                                  \
    (op)->pre##_tail = (a);                                                    \
  } while (0)

void exec__act_watch(exec_op_t *op, exec_activity_t *a) {
  if (op->opts.deadline_ms == 0 && op->opts.heartbeat_ms == 0)
    return;
  a->watched = 1;
  if (op->opts.deadline_ms)
    LIST_APPEND(op, a, dl);
  if (op->opts.heartbeat_ms)
    LIST_APPEND(op, a, hb);
  exec__watch_arm(op);
}

/* Takes `a` out of the watch; the watch stops with the last call. */
static void exec__act_unwatch(exec_op_t *op, exec_activity_t *a) {
  if (!a->watched)
    return;
  a->watched = 0;
  if (op->opts.deadline_ms)
    LIST_UNLINK(op, a, dl);
  if (op->opts.heartbeat_ms)
    LIST_UNLINK(op, a, hb);
  if (op->dl_head == NULL && op->hb_head == NULL)
    uv_timer_stop(&op->watch);
}

void exec__act_detach(exec_op_t *op, exec_activity_t *a) {
  exec_task_t *tk = &op->tasks[a->task];
  tk->busy = NULL;
  op->inflight--;
  a->orphan = 1;
  exec__act_unwatch(op, a);
}

/* Ends call `a`, past its deadline or heartbeat (`msg` says which). */
static void exec__act_expire(exec_op_t *op, exec_activity_t *a,
                             const char *msg) {
  uint32_t t = a->task;
  exec__act_detach(op, a);
  exec__attempt_end(op, t, EXEC_CODE_DEADLINE_EXCEEDED, msg, NULL);
  /* The plugin may still be running the call: a shared limiter keeps its
   * slot until the runner ends it; the operation's own limiter, which
   * goes with the operation, does not. */
  if (op->own_lim != NULL)
    exec__act_release(a);
  if (op->runner.cancel != NULL)
    op->runner.cancel(op->rdata, a);
  exec__pump(op);
}

void exec__watch_fire(uv_timer_t *timer) {
  exec_op_t *op = timer->data;
  uint64_t now = uv_now(op->loop);
  char msg[96];
  /* Earliest due first, a deadline before a heartbeat due at the same
   * time. Each end may end other calls (fail-fast, a runner that answers
   * a cancel at once), so the heads are read afresh every time. */
  for (;;) {
    exec_activity_t *d = op->dl_head, *h = op->hb_head;
    uint64_t dd = d ? exec__dl_due(op, d) : UINT64_MAX;
    uint64_t hd = h ? exec__hb_due(op, h) : UINT64_MAX;
    if (dd <= now && dd <= hd) {
      snprintf(msg, sizeof(msg), "deadline of %u ms exceeded",
               op->opts.deadline_ms);
      exec__act_expire(op, d, msg);
    } else if (hd <= now) {
      /* A call past both reports its deadline, as it always did. */
      if (op->opts.deadline_ms && exec__dl_due(op, h) <= now)
        snprintf(msg, sizeof(msg), "deadline of %u ms exceeded",
                 op->opts.deadline_ms);
      else
        snprintf(msg, sizeof(msg), "no progress for %u ms: treated as hung",
                 op->opts.heartbeat_ms);
      exec__act_expire(op, h, msg);
    } else {
      break;
    }
  }
  exec__watch_arm(op);
}

/* --------------------------------------------------- activity accessors */

exec_op_t *exec_activity_op(const exec_activity_t *a) {
  return a->op;
}

const char *exec_activity_op_id(const exec_activity_t *a) {
  return a->op->id;
}

dag_op_t exec_activity_kind(const exec_activity_t *a) {
  return dag_op(a->op->dag);
}

uint32_t exec_activity_task(const exec_activity_t *a) {
  return a->task;
}

dag_activity_t exec_activity_activity(const exec_activity_t *a) {
  return dag_task_activity(a->task);
}

const graph_node_t *exec_activity_node(const exec_activity_t *a) {
  return graph_node(a->op->g, dag_task_node(a->task));
}

uint32_t exec_activity_attempt(const exec_activity_t *a) {
  return a->attempt;
}

const char *exec_activity_idempotency_key(exec_activity_t *a) {
  if (a->key == NULL) {
    const graph_node_t *nd = exec_activity_node(a);
    a->key = exec__fmt("%s/%s/%s/%s", a->op->id, nd->type, nd->id,
                       dag_task_activity(a->task) == DAG_PARALLEL ? "parallel"
                                                                  : "sync");
  }
  return a->key;
}

const void *exec_activity_state(const exec_activity_t *a, size_t *len) {
  const exec_res_t *r = &a->op->res[dag_task_node(a->task)];
  if (dag_task_activity(a->task) != DAG_SYNC) {
    *len = 0;
    return NULL;
  }
  *len = r->state_len;
  return r->state;
}

size_t exec_activity_child_count(const exec_activity_t *a) {
  if (dag_task_activity(a->task) != DAG_SYNC)
    return 0;
  uint32_t nc;
  graph_children(a->op->g, dag_task_node(a->task), &nc);
  return nc;
}

const graph_node_t *exec_activity_child(const exec_activity_t *a, size_t i,
                                        const kv_t **metadata,
                                        const char **restored_id) {
  uint32_t nc;
  const uint32_t *c = graph_children(a->op->g, dag_task_node(a->task), &nc);
  assert(i < nc);
  const exec_res_t *r = &a->op->res[c[i]];
  if (metadata)
    *metadata = &r->meta;
  if (restored_id)
    *restored_id = r->restored_id ? r->restored_id : "";
  return graph_node(a->op->g, c[i]);
}

const kv_t *exec_activity_saved_metadata(const exec_activity_t *a) {
  static const kv_t empty;
  const exec_res_t *r = &a->op->res[dag_task_node(a->task)];
  return r->saved ? r->saved : &empty;
}

void exec_activity_set_data(exec_activity_t *a, void *data) {
  a->data = data;
}

void *exec_activity_data(const exec_activity_t *a) {
  return a->data;
}

void exec_activity_progress(exec_activity_t *a, uint64_t done, uint64_t total,
                            const char *unit, const char *message) {
  if (a->orphan)
    return;
  exec_op_t *op = a->op;
  a->last_beat = uv_now(op->loop);
  if (a->watched && op->opts.heartbeat_ms && op->hb_tail != a) {
    LIST_UNLINK(op, a, hb);
    LIST_APPEND(op, a, hb);
  }
  op->tasks[a->task].streak = 0; /* the plugin answers: a new budget */
  op->seq++;
  if (op->on_event == NULL)
    return;
  exec_event_t ev = {0};
  ev.seq = op->seq;
  ev.kind = EXEC_EV_PROGRESS;
  ev.task = a->task;
  ev.node = dag_task_node(a->task);
  ev.activity = dag_task_activity(a->task);
  ev.attempt = a->attempt;
  ev.time_ms = exec__now(op);
  ev.done = done;
  ev.total = total;
  ev.unit = unit ? unit : "";
  ev.message = message ? message : "";
  op->on_event(&ev, op->event_data);
}

/* The runner ended `a`. */
static void exec__act_end(exec_activity_t *a, int code, const char *msg,
                          const exec_output_t *out) {
  assert(!a->runner_done);
  a->runner_done = 1;
  if (a->orphan) {
    exec__act_release(a);
    exec__act_free_if_done(a);
    return;
  }
  exec_op_t *op = a->op;
  uint32_t t = a->task;
  exec__act_detach(op, a);
  exec__attempt_end(op, t, code, msg, out);
  exec__act_release(a);
  exec__act_free_if_done(a);
  exec__pump(op);
}

void exec_activity_complete(exec_activity_t *a, const exec_output_t *out) {
  exec__act_end(a, EXEC_CODE_OK, NULL, out);
}

void exec_activity_fail(exec_activity_t *a, int code, const char *message) {
  exec__act_end(a, code == EXEC_CODE_OK ? EXEC_CODE_UNKNOWN : code, message,
                NULL);
}
