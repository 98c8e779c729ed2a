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

static void exec__act_closed(uv_handle_t *h) {
  exec_activity_t *a = h->data;
  a->timer_closed = 1;
  if (a->runner_done) {
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

/* Detaches `a` from its task and closes its timer. */
void exec__act_detach(exec_op_t *op, exec_activity_t *a) {
  exec_task_t *tk = &op->tasks[a->task];
  tk->busy = NULL;
  op->inflight--;
  a->orphan = 1;
  uv_timer_stop(&a->timer);
  uv_close((uv_handle_t *)&a->timer, exec__act_closed);
}

void exec__act_timer(uv_timer_t *timer) {
  exec_activity_t *a = timer->data;
  exec_op_t *op = a->op;
  uint64_t now = uv_now(op->loop);
  uint64_t due_deadline =
      op->opts.deadline_ms ? a->started + op->opts.deadline_ms : UINT64_MAX;
  uint64_t due_beat =
      op->opts.heartbeat_ms ? a->last_beat + op->opts.heartbeat_ms : UINT64_MAX;
  char msg[96];
  if (now >= due_deadline)
    snprintf(msg, sizeof(msg), "deadline of %u ms exceeded",
             op->opts.deadline_ms);
  else if (now >= due_beat)
    snprintf(msg, sizeof(msg), "no progress for %u ms: treated as hung",
             op->opts.heartbeat_ms);
  else {
    uint64_t due = due_deadline < due_beat ? due_deadline : due_beat;
    uv_timer_start(timer, exec__act_timer, due - now, 0);
    return;
  }
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
    if (a->timer_closed) {
      free(a->key);
      free(a);
    }
    return;
  }
  exec_op_t *op = a->op;
  uint32_t t = a->task;
  exec__act_detach(op, a);
  exec__attempt_end(op, t, code, msg, out);
  exec__act_release(a);
  exec__pump(op);
}

void exec_activity_complete(exec_activity_t *a, const exec_output_t *out) {
  exec__act_end(a, EXEC_CODE_OK, NULL, out);
}

void exec_activity_fail(exec_activity_t *a, int code, const char *message) {
  exec__act_end(a, code == EXEC_CODE_OK ? EXEC_CODE_UNKNOWN : code, message,
                NULL);
}
