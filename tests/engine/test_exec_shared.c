/*
 * test_exec_shared.c - operations that share one plugin limiter
 * (exec_opts_t.limiter): the plugin's limit holds for the sum of their
 * calls, they take turns, and an operation cancelled while it waits for
 * a slot leaves the limiter's FIFO. In-flight calls are counted on the
 * events of all the operations together (a call's slot is given back only
 * after its DONE event, so STARTED/DONE bracket it).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "engine_fixture.h"

#define NOPS 3

typedef struct shared_s {
  uv_loop_t loop;
  lim_t *lim;
  graph_t *g[NOPS];
  dag_t *d[NOPS];
  fx_runner_t f[NOPS];
  exec_op_t *op[NOPS];
  exec_opts_t opts;
  int done[NOPS];
  exec_outcome_t outcome[NOPS];
  unsigned inflight, peak;
  char starts[64]; /* the operation of each STARTED, '0'.. in order */
  size_t n_starts;
} shared_t;

typedef struct ref_s {
  shared_t *s;
  int i;
} ref_t;

static ref_t refs[NOPS];

static void limits(void *data, const char *type, const char **plugin,
                   unsigned *plugin_limit, unsigned *type_limit) {
  *plugin = "p";
  *plugin_limit = *(unsigned *)data;
  *type_limit = 0;
}

static void on_event(const exec_event_t *ev, void *data) {
  ref_t *r = data;
  shared_t *s = r->s;
  if (ev->kind == EXEC_EV_STARTED) {
    s->inflight++;
    if (s->inflight > s->peak)
      s->peak = s->inflight;
    if (s->n_starts + 1 < sizeof(s->starts))
      s->starts[s->n_starts++] = (char)('0' + r->i);
  } else if (ev->kind == EXEC_EV_DONE || ev->kind == EXEC_EV_FAILED ||
             ev->kind == EXEC_EV_RETRIED ||
             (ev->kind == EXEC_EV_CANCELLED && ev->attempt > 0)) {
    s->inflight--;
  }
}

static void on_done(exec_op_t *op, exec_outcome_t outcome, void *data) {
  ref_t *r = data;
  r->s->done[r->i]++;
  r->s->outcome[r->i] = outcome;
}

static unsigned plugin_limit;

/* NOPS operations of the seed graph, each call taking `ms`, sharing one
 * limiter with plugin limit `limit`. */
static void shared_init(shared_t *s, unsigned limit, uint32_t ms) {
  memset(s, 0, sizeof(*s));
  cr_assert_eq(uv_loop_init(&s->loop), 0);
  cr_assert_eq(lim_new(&s->lim), 0);
  plugin_limit = limit;
  exec_opts_init(&s->opts);
  s->opts.limits = limits;
  s->opts.limits_data = &plugin_limit;
  s->opts.limiter = s->lim;
  for (int i = 0; i < NOPS; i++) {
    s->g[i] = fx_seed_graph();
    cr_assert_eq(dag_new(s->g[i], DAG_OP_PROTECT, NULL, NULL, &s->d[i]), 0);
    fx_runner_init(&s->f[i], &s->loop, s->d[i]);
    for (uint32_t t = 0; t < s->f[i].ntasks; t++)
      s->f[i].duration_ms[t] = ms;
    char id[16];
    snprintf(id, sizeof(id), "op%d", i);
    cr_assert_eq(exec_op_new(&s->loop, s->d[i], id, &s->opts, &fx_runner_vtable,
                             &s->f[i], &s->op[i]),
                 0);
    refs[i] = (ref_t){s, i};
    exec_op_set_event_cb(s->op[i], on_event, &refs[i]);
  }
}

static void shared_free(shared_t *s) {
  for (int i = 0; i < NOPS; i++)
    exec_op_free(s->op[i]);
  fx_loop_finish(&s->loop);
  for (int i = 0; i < NOPS; i++) {
    fx_runner_free(&s->f[i]);
    dag_free(s->d[i]);
    graph_free(s->g[i]);
  }
  lim_free(s->lim);
}

Test(exec_shared, plugin_limit_holds_across_operations, .timeout = 10) {
  shared_t s;
  shared_init(&s, 2, 2);
  for (int i = 0; i < NOPS; i++)
    cr_assert_eq(exec_op_start(s.op[i], on_done, &refs[i]), 0);
  uv_run(&s.loop, UV_RUN_DEFAULT);
  for (int i = 0; i < NOPS; i++) {
    cr_assert_eq(s.done[i], 1);
    cr_expect_eq(s.outcome[i], EXEC_SUCCEEDED, "op %d", i);
    cr_expect_eq(s.f[i].errors, 0);
  }
  cr_expect_eq(s.peak, 2, "calls in flight at once across operations: %u",
               s.peak);
  cr_expect_eq(s.inflight, 0);
  /* Turns: after op0's first two calls, each waiting operation gets one
   * slot in FIFO order. */
  s.starts[s.n_starts] = '\0';
  cr_expect(strncmp(s.starts, "00012", 5) == 0, "starts: %s", s.starts);
  shared_free(&s);
}

static void cancel_later(uv_timer_t *t) {
  shared_t *s = t->data;
  cr_expect_eq(exec_op_cancel(s->op[1], "user asked"), 0);
  uv_close((uv_handle_t *)t, NULL);
}

Test(exec_shared, cancelled_operation_leaves_the_queue, .timeout = 10) {
  shared_t s;
  shared_init(&s, 1, 20);
  for (int i = 0; i < NOPS; i++)
    cr_assert_eq(exec_op_start(s.op[i], on_done, &refs[i]), 0);
  /* op1 waits behind op0's first call: cancel it there. */
  uv_timer_t t;
  uv_timer_init(&s.loop, &t);
  t.data = &s;
  uv_timer_start(&t, cancel_later, 5, 0);
  uv_run(&s.loop, UV_RUN_DEFAULT);
  cr_expect_eq(s.outcome[0], EXEC_SUCCEEDED);
  cr_expect_eq(s.outcome[1], EXEC_CANCELLED_OP);
  cr_expect_eq(s.outcome[2], EXEC_SUCCEEDED);
  for (uint32_t k = 0; k < s.f[1].ntasks; k++)
    cr_expect_eq(s.f[1].starts[k], 0, "op1 task %u started", k);
  cr_expect_eq(s.peak, 1);
  cr_expect_eq(s.inflight, 0);
  /* op0 queued first (after its first call took the only slot), then
   * op1 and op2: the turns go op0, op0, then op2, not op1. */
  s.starts[s.n_starts] = '\0';
  cr_expect(strncmp(s.starts, "002", 3) == 0, "starts: %s", s.starts);
  shared_free(&s);
}
