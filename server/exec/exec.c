/*
 * exec.c - the event-driven DAG executor (see exec.h): the operation, from
 * creation and seeding to start, cancel and the queries.
 *
 * State is a few flat arrays (exec_int.h): one small record per task
 * (status, pending dependency count, attempt, queue link, call in flight)
 * and one per resource (outputs and timings). Ready tasks wait in per-type
 * FIFOs linked through the task records; no-op tasks go to their own FIFO.
 * All state changes funnel into exec__pump() (exec_sched.c), which is
 * guarded against re-entry, so a runner that completes synchronously, or a
 * long chain of no-op tasks, never recurses. A call in flight is an
 * exec_activity_t (exec_activity.c).
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec_int.h"
#include "status.h"

const char *exec_code_name(int code) {
  return status_name(code);
}

void exec_opts_init(exec_opts_t *o) {
  memset(o, 0, sizeof(*o));
  o->deadline_ms = 3600000;
  o->retry_budget_ms = 30000;
  o->max_attempts = 0;
  o->max_deadline_attempts = 3;
  o->backoff_base_ms = 100;
  o->backoff_max_ms = 5000;
  o->jitter_seed = 0x5eed;
}

char *exec__fmt(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *s = malloc((size_t)n + 1);
  if (s == NULL)
    return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

int64_t exec__now(const exec_op_t *op) {
  if (op->opts.now_ms)
    return op->opts.now_ms(op->opts.clock_data);
  return (int64_t)uv_now(op->loop) + op->clock_offset;
}

uint64_t exec__rand(exec_op_t *op) {
  /* splitmix64 */
  uint64_t z = (op->rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* --------------------------------------------------------------- events */

void exec__emit(exec_op_t *op, exec_event_kind_t kind, uint32_t t,
                const char *msg, int code, uint32_t delay) {
  op->seq++;
  if (op->on_event == NULL)
    return;
  exec_event_t ev = {0};
  ev.seq = op->seq;
  ev.kind = kind;
  ev.task = t;
  ev.node = t == NIL ? NIL : dag_task_node(t);
  ev.activity = t == NIL ? 0 : dag_task_activity(t);
  ev.attempt = t == NIL ? 0 : op->tasks[t].attempt;
  ev.time_ms = exec__now(op);
  ev.unit = "";
  ev.message = msg ? msg : "";
  ev.code = code;
  ev.delay_ms = delay;
  ev.outcome = op->outcome;
  op->on_event(&ev, op->event_data);
}

/* ------------------------------------------------------------ lifecycle */

static void exec__op_closed(uv_handle_t *h) {
  exec_op_t *op = h->data;
  if (--op->open_handles == 0)
    free(op);
}

void exec_op_free(exec_op_t *op) {
  if (op == NULL)
    return;
  assert(!op->started || op->finished);
  for (uint32_t i = 0; i < op->ntasks / 2; i++) {
    exec_res_t *r = &op->res[i];
    kv_free(&r->meta);
    free(r->restored_id);
    free(r->reason);
    free(r->state);
    if (r->saved) {
      kv_free(r->saved);
      free(r->saved);
    }
  }
  for (uint32_t ty = 0; op->types && ty < op->ntypes; ty++)
    lim_waiter_stop(&op->types[ty].wait);
  lim_free(op->own_lim);
  free(op->types);
  free(op->res);
  free(op->tasks);
  free(op->stack);
  free(op->id);
  free(op->stop_reason);
  op->kick.data = op;
  op->watch.data = op;
  uv_close((uv_handle_t *)&op->kick, exec__op_closed);
  uv_close((uv_handle_t *)&op->watch, exec__op_closed);
}

int exec_op_new(uv_loop_t *loop, const dag_t *dag, const char *op_id,
                const exec_opts_t *opts, const exec_runner_t *runner,
                void *rdata, exec_op_t **out) {
  if (loop == NULL || dag == NULL || op_id == NULL || runner == NULL ||
      runner->start == NULL)
    return UV_EINVAL;
  exec_op_t *op = calloc(1, sizeof(*op));
  if (op == NULL)
    return UV_ENOMEM;
  int rc = uv_timer_init(loop, &op->kick);
  if (rc != 0) {
    free(op);
    return rc;
  }
  op->kick.data = op;
  op->open_handles = 1;
  if ((rc = uv_timer_init(loop, &op->watch)) != 0) {
    uv_close((uv_handle_t *)&op->kick, exec__op_closed); /* frees op */
    return rc;
  }
  op->watch.data = op;
  op->open_handles = 2;
  op->loop = loop;
  op->dag = dag;
  op->g = dag_graph(dag);
  if (opts)
    op->opts = *opts;
  else
    exec_opts_init(&op->opts);
  op->runner = *runner;
  op->rdata = rdata;
  op->rng = op->opts.jitter_seed;
  op->ntasks = dag_task_count(dag);
  op->ntypes = graph_type_count(op->g);
  op->noop_head = op->noop_tail = NIL;
  op->id = strdup(op_id);
  op->tasks = calloc(op->ntasks, sizeof(*op->tasks));
  op->res = calloc(op->ntasks / 2, sizeof(*op->res));
  op->types = calloc(op->ntypes ? op->ntypes : 1, sizeof(*op->types));
  if (op->id == NULL || op->tasks == NULL || op->res == NULL ||
      op->types == NULL)
    goto nomem;
  for (uint32_t t = 0; t < op->ntasks; t++) {
    op->tasks[t].status = EXEC_PENDING;
    op->tasks[t].next = NIL;
  }
  lim_t *lim = op->opts.limiter;
  if (lim == NULL && op->opts.limits != NULL) {
    if (lim_new(&op->own_lim) != 0)
      goto nomem;
    lim = op->own_lim;
  }
  for (uint32_t ty = 0; ty < op->ntypes; ty++) {
    exec_type_t *et = &op->types[ty];
    et->head = et->tail = NIL;
    et->op = op;
    if (lim == NULL)
      continue;
    const char *plugin = NULL;
    unsigned plimit = 0, tlimit = 0;
    if (op->opts.limits != NULL)
      op->opts.limits(op->opts.limits_data, graph_type_name(op->g, ty), &plugin,
                      &plimit, &tlimit);
    et->key = lim_key(lim, plugin, plimit, graph_type_name(op->g, ty), tlimit);
    if (et->key == NULL)
      goto nomem;
    lim_waiter_init(&et->wait, et->key, exec__granted, et, op);
  }
  *out = op;
  return 0;
nomem:
  exec_op_free(op);
  return UV_ENOMEM;
}

void exec_op_set_event_cb(exec_op_t *op, exec_event_cb cb, void *data) {
  op->on_event = cb;
  op->event_data = data;
}

int exec_op_set_saved_metadata(exec_op_t *op, uint32_t node, const kv_t *m) {
  if (node >= op->ntasks / 2)
    return UV_EINVAL;
  if (op->started)
    return UV_EBUSY;
  exec_res_t *r = &op->res[node];
  if (r->saved == NULL) {
    r->saved = calloc(1, sizeof(*r->saved));
    if (r->saved == NULL)
      return UV_ENOMEM;
  }
  return kv_copy(r->saved, m);
}

/* Stores a successful output on the resource. */
int exec__store_output(exec_op_t *op, uint32_t t, const exec_output_t *out) {
  exec_res_t *r = &op->res[dag_task_node(t)];
  if (out == NULL)
    return 0;
  if (dag_task_activity(t) == DAG_PARALLEL) {
    void *s = NULL;
    if (out->state_len > 0) {
      s = malloc(out->state_len);
      if (s == NULL)
        return UV_ENOMEM;
      memcpy(s, out->state, out->state_len);
    }
    free(r->state);
    r->state = s;
    r->state_len = out->state_len;
    return 0;
  }
  char *rid = NULL;
  if (out->restored_id != NULL && out->restored_id[0] != '\0') {
    rid = strdup(out->restored_id);
    if (rid == NULL)
      return UV_ENOMEM;
  }
  int rc = kv_copy(&r->meta, out->metadata);
  if (rc != 0) {
    free(rid);
    return rc;
  }
  free(r->restored_id);
  r->restored_id = rid;
  return 0;
}

int exec_op_seed_done(exec_op_t *op, uint32_t task, const exec_output_t *out,
                      int64_t started_ms, int64_t finished_ms) {
  if (task >= op->ntasks)
    return UV_EINVAL;
  if (op->started)
    return UV_EBUSY;
  int rc = exec__store_output(op, task, out);
  if (rc != 0)
    return rc;
  exec_task_t *tk = &op->tasks[task];
  if (tk->status != EXEC_DONE)
    op->terminal++;
  tk->status = EXEC_DONE;
  exec_res_t *r = &op->res[dag_task_node(task)];
  if (started_ms && (r->started_ms == 0 || started_ms < r->started_ms))
    r->started_ms = started_ms;
  if (dag_task_activity(task) == DAG_SYNC)
    r->finished_ms = finished_ms;
  return 0;
}

int exec_op_seed_failed(exec_op_t *op, uint32_t task, int code,
                        const char *reason) {
  if (task >= op->ntasks)
    return UV_EINVAL;
  if (op->started)
    return UV_EBUSY;
  exec_res_t *r = &op->res[dag_task_node(task)];
  char *s = exec__fmt("%s: %s", exec_code_name(code), reason ? reason : "");
  if (s == NULL)
    return UV_ENOMEM;
  free(r->reason);
  r->reason = s;
  exec_task_t *tk = &op->tasks[task];
  if (tk->status != EXEC_FAILED)
    op->terminal++;
  tk->status = EXEC_FAILED;
  return 0;
}

int exec_op_seed_inflight(exec_op_t *op, uint32_t task, uint32_t attempt) {
  if (task >= op->ntasks || attempt > UINT16_MAX - 1)
    return UV_EINVAL;
  if (op->started)
    return UV_EBUSY;
  if (op->tasks[task].status != EXEC_PENDING)
    return UV_EINVAL;
  op->tasks[task].attempt = (uint16_t)attempt;
  return 0;
}

static void exec__kick_cb(uv_timer_t *timer) {
  exec__pump(timer->data);
}

int exec_op_start(exec_op_t *op, exec_done_cb cb, void *data) {
  if (op->started)
    return UV_EBUSY;
  op->stack = malloc((op->ntasks ? op->ntasks : 1) * sizeof(*op->stack));
  if (op->stack == NULL)
    return UV_ENOMEM;
  op->started = 1;
  op->on_done = cb;
  op->done_data = data;
  /* Event times are loop time shifted to Unix time: no syscall each. */
  uv_timeval64_t tv;
  if (uv_gettimeofday(&tv) == 0)
    op->clock_offset =
        tv.tv_sec * 1000 + tv.tv_usec / 1000 - (int64_t)uv_now(op->loop);
  /* Dependency counters, counting seeded outcomes. */
  for (uint32_t t = 0; t < op->ntasks; t++)
    op->tasks[t].deps_left = dag_task_ndeps(op->dag, t);
  for (uint32_t t = 0; t < op->ntasks; t++)
    if (op->tasks[t].status == EXEC_DONE) {
      uint32_t node = dag_task_node(t);
      if (dag_task_activity(t) == DAG_PARALLEL) {
        op->tasks[t + 1].deps_left--;
      } else {
        uint32_t np;
        const uint32_t *p = graph_parents(op->g, node, &np);
        for (uint32_t k = 0; k < np; k++)
          op->tasks[dag_task(p[k], DAG_SYNC)].deps_left--;
      }
    }
  for (uint32_t t = 0; t < op->ntasks; t++)
    if (op->tasks[t].status == EXEC_FAILED) {
      op->failed = 1;
      exec__skip_downstream(op, t);
    }
  for (uint32_t t = 0; t < op->ntasks; t++)
    if (op->tasks[t].status == EXEC_PENDING && op->tasks[t].deps_left == 0)
      exec__ready(op, t);
  op->kick.data = op;
  return uv_timer_start(&op->kick, exec__kick_cb, 0, 0);
}

int exec_op_cancel(exec_op_t *op, const char *reason) {
  if (!op->started)
    return UV_EINVAL;
  if (op->stopping || op->finishing)
    return UV_EALREADY;
  char *r = exec__fmt("cancelled: %s", reason ? reason : "by request");
  exec__stop(op, EXEC_CANCELLED_OP, r ? r : "cancelled");
  free(r);
  exec__pump(op);
  return 0;
}

const char *exec_op_id(const exec_op_t *op) {
  return op->id;
}

const dag_t *exec_op_dag(const exec_op_t *op) {
  return op->dag;
}

exec_outcome_t exec_op_outcome(const exec_op_t *op) {
  return op->outcome;
}

exec_status_t exec_op_task_status(const exec_op_t *op, uint32_t task) {
  assert(task < op->ntasks);
  return op->tasks[task].status;
}

uint32_t exec_op_task_attempts(const exec_op_t *op, uint32_t task) {
  assert(task < op->ntasks);
  return op->tasks[task].attempt;
}

void exec_op_resource(const exec_op_t *op, uint32_t node,
                      exec_resource_t *out) {
  assert(node < op->ntasks / 2);
  const exec_res_t *r = &op->res[node];
  exec_status_t p = op->tasks[node * 2].status;
  exec_status_t s = op->tasks[node * 2 + 1].status;
  exec_status_t st;
  if (p == EXEC_FAILED || s == EXEC_FAILED)
    st = EXEC_FAILED;
  else if (s == EXEC_DONE)
    st = EXEC_DONE;
  else if (p == EXEC_CANCELLED || s == EXEC_CANCELLED)
    st = EXEC_CANCELLED;
  else if (s == EXEC_SKIPPED)
    st = EXEC_SKIPPED;
  else if (p == EXEC_RUNNING || s == EXEC_RUNNING)
    st = EXEC_RUNNING;
  else if (p == EXEC_QUEUED || s == EXEC_QUEUED)
    st = EXEC_QUEUED;
  else
    st = p == EXEC_DONE ? EXEC_RUNNING : EXEC_PENDING;
  out->status = st;
  out->reason = (st == EXEC_DONE || r->reason == NULL) ? "" : r->reason;
  out->metadata = &r->meta;
  out->restored_id = r->restored_id ? r->restored_id : "";
  out->state = r->state;
  out->state_len = r->state_len;
  out->started_ms = r->started_ms;
  out->finished_ms =
      (st == EXEC_RUNNING || st == EXEC_QUEUED || st == EXEC_PENDING)
          ? 0
          : r->finished_ms;
}
