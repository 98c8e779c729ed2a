/*
 * exec.c - the event-driven DAG executor (see exec.h).
 *
 * State is a few flat arrays: one small record per task (status, pending
 * dependency count, attempt, queue link, call in flight) and one per
 * resource (outputs and timings). Ready tasks wait in per-type FIFOs
 * linked through the task records; no-op tasks go to their own FIFO. All
 * state changes funnel into exec__pump(), which is guarded against
 * re-entry, so a runner that completes synchronously, or a long chain of
 * no-op tasks, never recurses.
 */
#include "exec.h"
#include "status.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NIL UINT32_MAX

enum {
  TF_BACKOFF = 1, /* `busy` is an exec_wait_t */
  TF_QUEUED = 2   /* in a ready FIFO */
};

typedef struct exec_task_s {
  uint32_t deps_left;
  uint32_t next; /* FIFO link */
  uint8_t status;
  uint8_t flags;
  uint16_t attempt;
  uint16_t streak;      /* transient failures since the last progress */
  uint64_t retry_since; /* loop ms of the streak's first failure */
  void *busy; /* exec_activity_t while running, exec_wait_t in backoff */
} exec_task_t;

typedef struct exec_res_s {
  kv_t meta;
  char *restored_id;
  char *reason;
  void *state;
  size_t state_len;
  kv_t *saved;
  int64_t started_ms;
  int64_t finished_ms;
} exec_res_t;

typedef struct exec_type_s {
  uint32_t head, tail; /* ready FIFO */
  lim_key_t *key;      /* the type's plugin slots; NULL: no limits */
  lim_waiter_t wait;   /* the ready FIFO's place in the limiter */
  exec_op_t *op;
} exec_type_t;

struct exec_op_s {
  uv_loop_t *loop;
  const dag_t *dag;
  const graph_t *g;
  char *id;
  exec_opts_t opts;
  exec_runner_t runner;
  void *rdata;
  exec_event_cb on_event;
  void *event_data;
  exec_done_cb on_done;
  void *done_data;

  uint32_t ntasks;
  exec_task_t *tasks;
  exec_res_t *res;
  exec_type_t *types;
  uint32_t ntypes;
  lim_t *own_lim; /* limits without a shared limiter: this op's own */
  uint32_t noop_head, noop_tail;
  uint32_t rr; /* round-robin start over types */

  unsigned inflight; /* calls in flight (counted against max_in_flight) */
  unsigned waiting;  /* tasks in backoff */
  uint32_t terminal; /* tasks done, failed, skipped or cancelled */
  uint64_t seq;
  uint64_t rng;
  int64_t clock_offset;
  uint32_t *stack; /* scratch for skipping */

  uv_timer_t kick; /* first pump and the final callback */
  int started, stopping, finishing, finished, pumping, failed;
  exec_outcome_t outcome;
  char *stop_reason;
};

struct exec_activity_s {
  uv_timer_t timer; /* deadline and heartbeat checks */
  exec_op_t *op;
  uint32_t task;
  uint32_t attempt;
  uint64_t started; /* loop time */
  uint64_t last_beat;
  char *key;
  void *data;
  lim_key_t *slot; /* the limiter slot the call holds; NULL: none */
  uint8_t runner_done, timer_closed, orphan;
};

typedef struct exec_wait_s {
  uv_timer_t timer;
  exec_op_t *op;
  uint32_t task;
} exec_wait_t;

static void exec__pump(exec_op_t *op);
static void exec__granted(lim_waiter_t *w, void *data);

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

static char *exec__fmt(const char *fmt, ...) {
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

static int64_t exec__now(const exec_op_t *op) {
  if (op->opts.now_ms)
    return op->opts.now_ms(op->opts.clock_data);
  return (int64_t)uv_now(op->loop) + op->clock_offset;
}

static uint64_t exec__rand(exec_op_t *op) {
  /* splitmix64 */
  uint64_t z = (op->rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* --------------------------------------------------------------- events */

static void exec__emit(exec_op_t *op, exec_event_kind_t kind, uint32_t t,
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
  free(h->data);
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
  uv_close((uv_handle_t *)&op->kick, exec__op_closed);
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
static int exec__store_output(exec_op_t *op, uint32_t t,
                              const exec_output_t *out) {
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
static void exec__ready(exec_op_t *op, uint32_t t) {
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
static void exec__skip_downstream(exec_op_t *op, uint32_t t) {
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
static void exec__stop(exec_op_t *op, exec_outcome_t outcome,
                       const char *reason) {
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
static void exec__act_release(exec_activity_t *a) {
  lim_key_t *k = a->slot;
  a->slot = NULL;
  if (k != NULL)
    lim_release(k);
}

/* Detaches `a` from its task and closes its timer. */
static void exec__act_detach(exec_op_t *op, exec_activity_t *a) {
  exec_task_t *tk = &op->tasks[a->task];
  tk->busy = NULL;
  op->inflight--;
  a->orphan = 1;
  uv_timer_stop(&a->timer);
  uv_close((uv_handle_t *)&a->timer, exec__act_closed);
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
static void exec__attempt_end(exec_op_t *op, uint32_t t, int code,
                              const char *msg, const exec_output_t *out) {
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

static void exec__act_timer(uv_timer_t *timer) {
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
  uv_timer_init(op->loop, &a->timer);
  a->timer.data = a;
  uint64_t first = op->opts.deadline_ms;
  if (op->opts.heartbeat_ms && (first == 0 || op->opts.heartbeat_ms < first))
    first = op->opts.heartbeat_ms;
  if (first)
    uv_timer_start(&a->timer, exec__act_timer, first, 0);
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

static void exec__pump(exec_op_t *op) {
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
static void exec__granted(lim_waiter_t *w, void *data) {
  exec_type_t *et = data;
  exec__pump(et->op);
  if (et->head == NIL)
    lim_waiter_stop(w);
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
