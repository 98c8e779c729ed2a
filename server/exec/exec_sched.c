/*
 * exec_sched.c - the executor's scheduling (see exec_int.h): ready tasks
 * wait in per-type FIFOs and start under the operation's own limit and a
 * slot of the plugin limiter; an attempt ends in success (which releases
 * what waits on the task), a retry after a backoff, a failure (which skips
 * what is downstream, or stops everything under fail-fast) or a cancel.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec_int.h"

/* ---------------------------------------------------------- scheduling */

static void exec__enqueue(exec_op_t *op, uint32_t t) {
  exec_task_t *tk = &op->tasks[t];
  tk->status = EXEC_QUEUED;
  tk->flags |= TF_QUEUED;
  tk->next = NIL;
  uint32_t *head, *tail;
  if (dag_task_noop(op->dag, t)) {
    head = &op->noop_head;
    tail = &op->noop_tail;
  } else {
    exec_type_t *et =
        &op->types[graph_node(op->g, dag_task_node(t))->type_index];
    head = &et->head;
    tail = &et->tail;
  }
  if (*tail == NIL)
    *head = t;
  else
    op->tasks[*tail].next = t;
  *tail = t;
}

static uint32_t exec__dequeue(exec_op_t *op, uint32_t *head, uint32_t *tail) {
  uint32_t t = *head;
  *head = op->tasks[t].next;
  if (*head == NIL)
    *tail = NIL;
  op->tasks[t].next = NIL;
  op->tasks[t].flags &= ~TF_QUEUED;
  return t;
}

/* A task became ready. */
void exec__ready(exec_op_t *op, uint32_t t) {
  exec__enqueue(op, t);
  exec__emit(op, EXEC_EV_QUEUED, t, NULL, 0, 0);
}

/* Task t is done: release what waits on it. */
static void exec__release(exec_op_t *op, uint32_t t) {
  uint32_t node = dag_task_node(t);
  if (dag_task_activity(t) == DAG_PARALLEL) {
    uint32_t s = dag_task(node, DAG_SYNC);
    if (op->tasks[s].status == EXEC_PENDING && --op->tasks[s].deps_left == 0)
      exec__ready(op, s);
    return;
  }
  uint32_t np;
  const uint32_t *p = graph_parents(op->g, node, &np);
  for (uint32_t k = 0; k < np; k++) {
    uint32_t s = dag_task(p[k], DAG_SYNC);
    if (op->tasks[s].status == EXEC_PENDING && --op->tasks[s].deps_left == 0)
      exec__ready(op, s);
  }
}

static void exec__set_reason(exec_op_t *op, uint32_t node, char *reason) {
  exec_res_t *r = &op->res[node];
  if (r->reason == NULL)
    r->reason = reason;
  else
    free(reason);
}

static void exec__res_end(exec_op_t *op, uint32_t t) {
  exec_res_t *r = &op->res[dag_task_node(t)];
  if (r->finished_ms == 0 || dag_task_activity(t) == DAG_SYNC)
    r->finished_ms = exec__now(op);
}

/* Marks every pending task downstream of failed task t as skipped. */
void exec__skip_downstream(exec_op_t *op, uint32_t t) {
  char id[256];
  dag_task_id(op->dag, t, id, sizeof(id));
  char *msg = exec__fmt("upstream failed: %s", id);
  uint32_t sp = 0;
  op->stack[sp++] = t;
  while (sp > 0) {
    uint32_t u = op->stack[--sp];
    uint32_t node = dag_task_node(u);
    uint32_t np = 1;
    const uint32_t *p = &node;
    if (dag_task_activity(u) == DAG_SYNC)
      p = graph_parents(op->g, node, &np);
    for (uint32_t k = 0; k < np; k++) {
      uint32_t s = dag_task(p[k], DAG_SYNC);
      exec_task_t *tk = &op->tasks[s];
      if (tk->status != EXEC_PENDING)
        continue;
      tk->status = EXEC_SKIPPED;
      op->terminal++;
      exec__set_reason(op, p[k], msg ? strdup(msg) : NULL);
      exec__emit(op, EXEC_EV_SKIPPED, s, msg, 0, 0);
      op->stack[sp++] = s;
    }
  }
  free(msg);
}

static void exec__cancel_task(exec_op_t *op, uint32_t t) {
  op->tasks[t].status = EXEC_CANCELLED;
  op->terminal++;
  const char *why = op->stop_reason ? op->stop_reason : "cancelled";
  exec__set_reason(op, dag_task_node(t), strdup(why));
  exec__emit(op, EXEC_EV_CANCELLED, t, why, 0, 0);
}

static void exec__wait_closed(uv_handle_t *h) {
  free(h->data);
}

/* Stops the run: nothing new starts, waiting tasks are cancelled, calls in
 * flight are asked to stop. */
void exec__stop(exec_op_t *op, exec_outcome_t outcome, const char *reason) {
  if (op->stopping)
    return;
  op->stopping = 1;
  op->outcome = outcome;
  op->stop_reason = strdup(reason);
  op->noop_head = op->noop_tail = NIL;
  for (uint32_t ty = 0; ty < op->ntypes; ty++) {
    op->types[ty].head = op->types[ty].tail = NIL;
    lim_waiter_stop(&op->types[ty].wait);
  }
  for (uint32_t t = 0; t < op->ntasks; t++) {
    exec_task_t *tk = &op->tasks[t];
    if (tk->status == EXEC_PENDING || tk->status == EXEC_QUEUED) {
      tk->flags &= ~TF_QUEUED;
      exec__cancel_task(op, t);
    } else if (tk->status == EXEC_RUNNING && (tk->flags & TF_BACKOFF)) {
      exec_wait_t *w = tk->busy;
      uv_timer_stop(&w->timer);
      uv_close((uv_handle_t *)&w->timer, exec__wait_closed);
      tk->busy = NULL;
      tk->flags &= ~TF_BACKOFF;
      op->waiting--;
      exec__cancel_task(op, t);
    }
  }
  /* Ask the runner to stop each call; it may answer at once, which changes
   * tasks[] under us, so look each one up afresh. */
  if (op->runner.cancel != NULL)
    for (uint32_t t = 0; t < op->ntasks; t++) {
      exec_task_t *tk = &op->tasks[t];
      if (tk->status == EXEC_RUNNING && tk->busy != NULL &&
          !(tk->flags & TF_BACKOFF))
        op->runner.cancel(op->rdata, tk->busy);
    }
  if (op->runner.cancel_operation != NULL)
    op->runner.cancel_operation(op->rdata, op->id);
}

/* Ends the backoff `w` (its timer stopped or fired): the task is ready
 * again. The caller pumps. */
static void exec__backoff_end(exec_wait_t *w) {
  exec_op_t *op = w->op;
  exec_task_t *tk = &op->tasks[w->task];
  tk->busy = NULL;
  tk->flags &= ~TF_BACKOFF;
  op->waiting--;
  exec__enqueue(op, w->task);
  uv_close((uv_handle_t *)&w->timer, exec__wait_closed);
}

static void exec__backoff_fire(uv_timer_t *timer) {
  exec_wait_t *w = timer->data;
  exec_op_t *op = w->op;
  exec__backoff_end(w);
  exec__pump(op);
}

unsigned exec_op_retry_now(exec_op_t *op, const char *plugin) {
  unsigned n = 0;
  if (op == NULL || plugin == NULL || op->stopping || op->waiting == 0)
    return 0;
  for (uint32_t t = 0; t < op->ntasks && op->waiting > 0; t++) {
    exec_task_t *tk = &op->tasks[t];
    if (!(tk->flags & TF_BACKOFF))
      continue;
    const exec_type_t *et =
        &op->types[graph_node(op->g, dag_task_node(t))->type_index];
    const char *served = et->key ? lim_key_plugin(et->key) : NULL;
    if (served == NULL || strcmp(served, plugin) != 0)
      continue;
    exec_wait_t *w = tk->busy;
    uv_timer_stop(&w->timer);
    exec__backoff_end(w);
    n++;
  }
  if (n > 0)
    exec__pump(op);
  return n;
}

/* The end of one attempt of task t: success, retry, failure or cancel.
 * `msg` may be NULL. */
void exec__attempt_end(exec_op_t *op, uint32_t t, int code, const char *msg,
                       const exec_output_t *out) {
  exec_task_t *tk = &op->tasks[t];
  uint32_t node = dag_task_node(t);
  if (code == EXEC_CODE_OK) {
    int rc = exec__store_output(op, t, out);
    if (rc == 0) {
      tk->status = EXEC_DONE;
      op->terminal++;
      exec__res_end(op, t);
      exec__emit(op, EXEC_EV_DONE, t, out ? out->message : NULL, 0, 0);
      exec__release(op, t);
      return;
    }
    code = EXEC_CODE_INTERNAL;
    msg = "out of memory storing the result";
  }
  if (op->stopping) {
    exec__cancel_task(op, t);
    exec__res_end(op, t);
    return;
  }
  uint32_t limit = 1; /* attempts; 0: no count limit */
  int timed = 0;      /* within the retry budget */
  switch (code) {
  case EXEC_CODE_UNAVAILABLE:
  case EXEC_CODE_RESOURCE_EXHAUSTED:
  case EXEC_CODE_ABORTED:
    limit = op->opts.max_attempts;
    timed = 1;
    break;
  case EXEC_CODE_DEADLINE_EXCEEDED:
    limit = op->opts.max_attempts != 0 &&
                    op->opts.max_attempts < op->opts.max_deadline_attempts
                ? op->opts.max_attempts
                : op->opts.max_deadline_attempts;
    break;
  }
  uint64_t now = uv_now(op->loop), used = 0, left = UINT64_MAX;
  if (timed) {
    if (tk->streak++ == 0)
      tk->retry_since = now;
    used = now - tk->retry_since;
    left =
        used < op->opts.retry_budget_ms ? op->opts.retry_budget_ms - used : 0;
  }
  exec_wait_t *w = NULL;
  if ((limit == 0 || tk->attempt < limit) && tk->attempt < UINT16_MAX &&
      left > 0 && (w = malloc(sizeof(*w))) != NULL) {
    uint64_t d = op->opts.backoff_base_ms;
    uint32_t n = timed ? tk->streak : tk->attempt;
    for (uint32_t k = 1; k < n && d < op->opts.backoff_max_ms; k++)
      d *= 2;
    if (d > op->opts.backoff_max_ms)
      d = op->opts.backoff_max_ms;
    /* Equal jitter: half fixed, half random, so retries spread out but
     * still back off. The last retry lands at the end of the budget. */
    uint64_t j = d / 2 + exec__rand(op) % (d / 2 + 1);
    uint32_t delay = (uint32_t)(j < left ? j : left);
    char *m = exec__fmt("%s: %s", exec_code_name(code), msg ? msg : "");
    exec__emit(op, EXEC_EV_RETRIED, t, m, code, delay);
    free(m);
    w->op = op;
    w->task = t;
    uv_timer_init(op->loop, &w->timer);
    w->timer.data = w;
    uv_timer_start(&w->timer, exec__backoff_fire, delay, 0);
    tk->flags |= TF_BACKOFF;
    tk->busy = w;
    op->waiting++;
    return;
  }
  char id[256];
  dag_task_id(op->dag, t, id, sizeof(id));
  char *reason;
  if (code == EXEC_CODE_UNIMPLEMENTED)
    reason = exec__fmt("%s: configuration error: the plugin does not "
                       "implement this activity: %s",
                       id, msg ? msg : "");
  else if (timed && tk->attempt > 1)
    reason = exec__fmt("%s: %s after %u attempts in %.1f s (retry budget "
                       "%.1f s): %s",
                       id, exec_code_name(code), tk->attempt, used / 1000.0,
                       op->opts.retry_budget_ms / 1000.0, msg ? msg : "");
  else if (tk->attempt > 1)
    reason = exec__fmt("%s: %s after %u attempts: %s", id, exec_code_name(code),
                       tk->attempt, msg ? msg : "");
  else
    reason = exec__fmt("%s: %s: %s", id, exec_code_name(code), msg ? msg : "");
  tk->status = EXEC_FAILED;
  op->terminal++;
  op->failed = 1;
  exec__res_end(op, t);
  /* The reason is recorded before the event, so that an event consumer
   * reading exec_op_resource() sees it. */
  exec__set_reason(op, node, reason ? strdup(reason) : NULL);
  exec__emit(op, EXEC_EV_FAILED, t, reason, code, 0);
  free(reason);
  exec__skip_downstream(op, t);
  if (op->opts.fail_fast)
    exec__stop(op, EXEC_FAILED_OP, "cancelled: fail-fast after a failure");
}

/* Starts a call for queued task t. */
static void exec__dispatch(exec_op_t *op, uint32_t t) {
  exec_task_t *tk = &op->tasks[t];
  exec_activity_t *a = calloc(1, sizeof(*a));
  tk->attempt++;
  if (a == NULL) {
    lim_key_t *k =
        op->types[graph_node(op->g, dag_task_node(t))->type_index].key;
    if (k != NULL)
      lim_release(k);
    tk->status = EXEC_RUNNING;
    exec__emit(op, EXEC_EV_STARTED, t, NULL, 0, 0);
    exec__attempt_end(op, t, EXEC_CODE_INTERNAL, "out of memory", NULL);
    return;
  }
  exec_res_t *r = &op->res[dag_task_node(t)];
  a->op = op;
  a->task = t;
  a->attempt = tk->attempt;
  a->started = a->last_beat = uv_now(op->loop);
  tk->status = EXEC_RUNNING;
  tk->busy = a;
  a->slot = op->types[graph_node(op->g, dag_task_node(t))->type_index].key;
  op->inflight++;
  if (r->started_ms == 0)
    r->started_ms = exec__now(op);
  exec__act_watch(op, a);
  exec__emit(op, EXEC_EV_STARTED, t, NULL, 0, 0);
  int rc = op->runner.start(op->rdata, a);
  if (rc != 0) {
    a->runner_done = 1;
    exec__act_detach(op, a);
    char m[128];
    snprintf(m, sizeof(m), "the runner could not start the call: %s",
             uv_strerror(rc));
    exec__attempt_end(op, t, EXEC_CODE_INTERNAL, m, NULL);
    exec__act_release(a);
    exec__act_free_if_done(a);
  }
}

/* Whether a call of type `et` may start now: under the operation's own
 * limit, and with a slot of the plugin's limiter taken for it (or, when
 * none is free, with the type queued for one: exec__granted). */
static int exec__can_dispatch(const exec_op_t *op, exec_type_t *et) {
  if (op->opts.max_in_flight && op->inflight >= op->opts.max_in_flight)
    return 0;
  return et->key == NULL || lim_take(&et->wait);
}

static void exec__finish_cb(uv_timer_t *timer) {
  exec_op_t *op = timer->data;
  char summary[160];
  uint32_t nfail = 0, nskip = 0, ncanc = 0;
  for (uint32_t t = 0; t < op->ntasks; t++) {
    nfail += op->tasks[t].status == EXEC_FAILED;
    nskip += op->tasks[t].status == EXEC_SKIPPED;
    ncanc += op->tasks[t].status == EXEC_CANCELLED;
  }
  /* A stop set the outcome already (cancel, or fail-fast). */
  if (!op->stopping)
    op->outcome = op->failed ? EXEC_FAILED_OP : EXEC_SUCCEEDED;
  snprintf(summary, sizeof(summary),
           "%u tasks: %u done, %u failed, %u skipped, %u cancelled", op->ntasks,
           op->ntasks - nfail - nskip - ncanc, nfail, nskip, ncanc);
  op->finished = 1;
  exec__emit(op, EXEC_EV_OPERATION_FINISHED, NIL, summary, 0, 0);
  op->on_done(op, op->outcome, op->done_data);
}

void exec__pump(exec_op_t *op) {
  if (op->pumping || op->finishing)
    return;
  op->pumping = 1;
  for (;;) {
    int progress = 0;
    while (op->noop_head != NIL) {
      uint32_t t = exec__dequeue(op, &op->noop_head, &op->noop_tail);
      exec_task_t *tk = &op->tasks[t];
      tk->attempt++;
      tk->status = EXEC_RUNNING;
      exec_res_t *r = &op->res[dag_task_node(t)];
      if (r->started_ms == 0)
        r->started_ms = exec__now(op);
      exec__emit(op, EXEC_EV_STARTED, t, NULL, 0, 0);
      static const exec_output_t noop_out = {.message = "no-op"};
      exec__attempt_end(op, t, EXEC_CODE_OK, NULL, &noop_out);
      progress = 1;
    }
    if (op->stopping)
      break;
    for (uint32_t k = 0; k < op->ntypes && op->noop_head == NIL; k++) {
      uint32_t ty = (op->rr + k) % op->ntypes;
      exec_type_t *et = &op->types[ty];
      while (et->head != NIL && !op->stopping && exec__can_dispatch(op, et)) {
        exec__dispatch(op, exec__dequeue(op, &et->head, &et->tail));
        progress = 1;
      }
    }
    op->rr++;
    if (!progress)
      break;
  }
  op->pumping = 0;
  if (op->terminal == op->ntasks && op->inflight == 0 && op->waiting == 0) {
    op->finishing = 1;
    op->kick.data = op;
    uv_timer_start(&op->kick, exec__finish_cb, 0, 0);
  }
}

/* The limiter granted a slot to type `data`'s ready FIFO: start a call
 * with it, or give it back when there is nothing left to start. */
void exec__granted(lim_waiter_t *w, void *data) {
  exec_type_t *et = data;
  exec__pump(et->op);
  if (et->head == NIL)
    lim_waiter_stop(w);
}
