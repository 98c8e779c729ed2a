/*
 * engine_fixture.c - fake runner, event recorder, random graphs (see
 * engine_fixture.h).
 */
#include "engine_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fx_record(const exec_event_t *ev, void *data) {
  fx_trace_t *tr = data;
  if (tr->n == tr->cap) {
    tr->cap = tr->cap ? tr->cap * 2 : 1024;
    tr->ev = realloc(tr->ev, tr->cap * sizeof(*tr->ev));
    cr_assert_not_null(tr->ev);
  }
  fx_event_t *e = &tr->ev[tr->n++];
  e->seq = ev->seq;
  e->kind = ev->kind;
  e->task = ev->task;
  e->attempt = ev->attempt;
  e->time_ms = ev->time_ms;
  e->code = ev->code;
  e->delay_ms = ev->delay_ms;
  snprintf(e->message, sizeof(e->message), "%s", ev->message);
}

void fx_trace_free(fx_trace_t *tr) {
  free(tr->ev);
  memset(tr, 0, sizeof(*tr));
}

void fx_runner_init(fx_runner_t *f, uv_loop_t *loop, const dag_t *dag) {
  memset(f, 0, sizeof(*f));
  f->loop = loop;
  f->dag = dag;
  f->ntasks = dag_task_count(dag);
  size_t n = f->ntasks;
  uint32_t nt = graph_type_count(dag_graph(dag));
  f->duration_ms = calloc(n, sizeof(uint32_t));
  f->fail_times = calloc(n, 1);
  f->fail_code = calloc(n, sizeof(int));
  f->hang = calloc(n, 1);
  f->progress_every_ms = calloc(n, sizeof(uint32_t));
  f->starts = calloc(n, sizeof(uint32_t));
  f->last_attempt = calloc(n, sizeof(uint32_t));
  f->last_key = calloc(n, sizeof(char *));
  f->type_inflight = calloc(nt + 1, sizeof(unsigned));
  f->type_max = calloc(nt + 1, sizeof(unsigned));
}

void fx_runner_free(fx_runner_t *f) {
  for (uint32_t t = 0; t < f->ntasks; t++)
    free(f->last_key[t]);
  free(f->duration_ms);
  free(f->fail_times);
  free(f->fail_code);
  free(f->hang);
  free(f->progress_every_ms);
  free(f->starts);
  free(f->last_attempt);
  free(f->last_key);
  free(f->type_inflight);
  free(f->type_max);
}

typedef struct fx_call_s {
  uv_timer_t timer;
  uv_timer_t beat;
  fx_runner_t *f;
  exec_activity_t *a;
  uint32_t task;
  uint32_t type;
  int closing;
  int cancelled;
  uint64_t sent;
} fx_call_t;

static void fx_call_closed(uv_handle_t *h) {
  fx_call_t *c = h->data;
  if (++c->closing == 3)
    free(c);
}

/* Ends the call (exactly once) and releases its handles. */
static void fx_call_end(fx_call_t *c, int code, const char *msg) {
  fx_runner_t *f = c->f;
  exec_activity_t *a = c->a;
  uint32_t t = c->task;
  c->a = NULL;
  f->inflight--;
  f->type_inflight[c->type]--;
  f->live--;
  uv_close((uv_handle_t *)&c->timer, fx_call_closed);
  uv_close((uv_handle_t *)&c->beat, fx_call_closed);
  c->closing++;
  if (c->closing == 3)
    free(c);
  if (code != 0) {
    exec_activity_fail(a, code, msg);
    return;
  }
  const graph_node_t *nd = graph_node(dag_graph(f->dag), dag_task_node(t));
  char buf[256];
  snprintf(buf, sizeof(buf), "st:%s#%s", nd->type, nd->id);
  kv_t meta;
  kv_init(&meta);
  kv_set(&meta, "id", nd->id);
  exec_output_t out = {0};
  if (dag_task_activity(t) == DAG_PARALLEL) {
    out.state = buf;
    out.state_len = strlen(buf);
  } else {
    out.metadata = &meta;
    snprintf(buf, sizeof(buf), "new-%s", nd->id);
    out.restored_id = buf;
  }
  exec_activity_complete(a, &out);
  kv_free(&meta);
}

static void fx_timer_cb(uv_timer_t *timer) {
  fx_call_t *c = timer->data;
  if (c->cancelled) {
    fx_call_end(c, EXEC_CODE_CANCELLED, "cancelled");
    return;
  }
  fx_runner_t *f = c->f;
  if (f->starts[c->task] <= f->fail_times[c->task]) {
    fx_call_end(c, f->fail_code[c->task], "scripted failure");
    return;
  }
  fx_call_end(c, 0, NULL);
}

static void fx_beat_cb(uv_timer_t *timer) {
  fx_call_t *c = timer->data;
  exec_activity_progress(c->a, ++c->sent, 0, "steps", "working");
}

static int fx_start(void *rdata, exec_activity_t *a) {
  fx_runner_t *f = rdata;
  uint32_t t = exec_activity_task(a);
  const graph_t *g = dag_graph(f->dag);
  const graph_node_t *nd = exec_activity_node(a);
  cr_assert(!dag_task_noop(f->dag, t), "no-op task %u reached the runner", t);
  f->starts[t]++;
  f->last_attempt[t] = exec_activity_attempt(a);
  free(f->last_key[t]);
  f->last_key[t] = strdup(exec_activity_idempotency_key(a));
  /* Data passing checks. */
  if (exec_activity_activity(a) == DAG_SYNC) {
    uint32_t node = dag_task_node(t);
    size_t len;
    const void *st = exec_activity_state(a, &len);
    char want[256];
    snprintf(want, sizeof(want), "st:%s#%s", nd->type, nd->id);
    if (dag_task_noop(f->dag, dag_task(node, DAG_PARALLEL))) {
      if (len != 0)
        f->errors++;
    } else if (len != strlen(want) || memcmp(st, want, len) != 0) {
      f->errors++;
    }
    uint32_t nc;
    graph_children(g, node, &nc);
    if (exec_activity_child_count(a) != nc)
      f->errors++;
    for (size_t i = 0; i < nc; i++) {
      const kv_t *m;
      const char *rid;
      const graph_node_t *cn = exec_activity_child(a, i, &m, &rid);
      int child_noop = dag_task_noop(
          f->dag, dag_task((uint32_t)(cn - graph_node(g, 0)), DAG_SYNC));
      const char *id = kv_get(m, "id");
      if (child_noop ? id != NULL : (id == NULL || strcmp(id, cn->id) != 0))
        f->errors++;
    }
  }
  fx_call_t *c = calloc(1, sizeof(*c));
  c->f = f;
  c->a = a;
  c->task = t;
  c->type = nd->type_index;
  exec_activity_set_data(a, c);
  f->inflight++;
  f->live++;
  if (f->inflight > f->max_inflight)
    f->max_inflight = f->inflight;
  if (++f->type_inflight[c->type] > f->type_max[c->type])
    f->type_max[c->type] = f->type_inflight[c->type];
  uv_timer_init(f->loop, &c->timer);
  uv_timer_init(f->loop, &c->beat);
  c->timer.data = c;
  c->beat.data = c;
  if (!f->hang[t])
    uv_timer_start(&c->timer, fx_timer_cb, f->duration_ms[t], 0);
  if (f->progress_every_ms[t])
    uv_timer_start(&c->beat, fx_beat_cb, f->progress_every_ms[t],
                   f->progress_every_ms[t]);
  return 0;
}

static void fx_cancel(void *rdata, exec_activity_t *a) {
  fx_runner_t *f = rdata;
  fx_call_t *c = exec_activity_data(a);
  f->cancels++;
  /* Answer asynchronously, as a plugin would. */
  c->cancelled = 1;
  uv_timer_stop(&c->beat);
  uv_timer_start(&c->timer, fx_timer_cb, 0, 0);
}

static void fx_cancel_op(void *rdata, const char *op_id) {
  fx_runner_t *f = rdata;
  f->cancel_ops++;
}

const exec_runner_t fx_runner_vtable = {fx_start, fx_cancel, fx_cancel_op};

void fx_loop_finish(uv_loop_t *loop) {
  uv_run(loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(loop), 0, "handles left open");
}

uint64_t fx_rand(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

graph_t *fx_random_graph(uint64_t *rng, uint32_t n, uint32_t depth,
                         uint32_t ntypes, unsigned share_pct) {
  graph_t *g;
  cr_assert_eq(graph_new(&g), 0);
  if (depth > n)
    depth = n;
  /* Level boundaries: level k holds nodes [start[k], start[k+1]). */
  uint32_t *start = calloc(depth + 1, sizeof(uint32_t));
  for (uint32_t k = 0; k <= depth; k++)
    start[k] = (uint32_t)((uint64_t)n * k / depth);
  for (uint32_t k = 1; k <= depth; k++)
    if (start[k] <= start[k - 1])
      start[k] = start[k - 1] + 1;
  char type[16], id[32];
  for (uint32_t i = 0; i < n; i++) {
    snprintf(type, sizeof(type), "t%u", (unsigned)(fx_rand(rng) % ntypes));
    snprintf(id, sizeof(id), "r%u", i);
    cr_assert_eq(graph_add_node(g, type, id, NULL, NULL, NULL, NULL, NULL, 0),
                 0);
  }
  for (uint32_t k = 1; k < depth; k++)
    for (uint32_t i = start[k]; i < start[k + 1] && i < n; i++) {
      uint32_t lo = start[k - 1], hi = start[k];
      uint32_t p = lo + (uint32_t)(fx_rand(rng) % (hi - lo));
      cr_assert_eq(graph_add_edge(g, p, i), 0);
      if (fx_rand(rng) % 100 < share_pct) {
        uint32_t q = (uint32_t)(fx_rand(rng) % start[k]);
        cr_assert_eq(graph_add_edge(g, q, i), 0);
      }
    }
  free(start);
  char err[256];
  cr_assert_eq(graph_validate(g, NULL, NULL, err, sizeof(err)), 0, "%s", err);
  return g;
}

graph_t *fx_seed_graph(void) {
  graph_t *g;
  cr_assert_eq(graph_new(&g), 0);
  const char *nodes[][2] = {{"smaug.project", "p1"},
                            {"smaug.server", "s1"},
                            {"smaug.volume", "v1"},
                            {"smaug.volume", "v2"},
                            {"smaug.image", "i1"}};
  for (int i = 0; i < 5; i++)
    cr_assert_eq(graph_add_node(g, nodes[i][0], nodes[i][1], NULL, NULL, NULL,
                                NULL, NULL, 0),
                 0);
  char err[128];
  cr_assert_eq(graph_add_edge_by_key(g, "smaug.project", "p1", "smaug.server",
                                     "s1", err, sizeof(err)),
               0);
  cr_assert_eq(graph_add_edge_by_key(g, "smaug.server", "s1", "smaug.volume",
                                     "v1", err, sizeof(err)),
               0);
  cr_assert_eq(graph_add_edge_by_key(g, "smaug.server", "s1", "smaug.volume",
                                     "v2", err, sizeof(err)),
               0);
  cr_assert_eq(graph_add_edge_by_key(g, "smaug.server", "s1", "smaug.image",
                                     "i1", err, sizeof(err)),
               0);
  cr_assert_eq(graph_validate(g, NULL, NULL, err, sizeof(err)), 0, "%s", err);
  return g;
}
