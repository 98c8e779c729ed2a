/*
 * test_exec_props.c - executor properties checked on recorded traces over
 * many random DAGs (trees and shared children, depth 1-10, up to thousands
 * of resources, random durations, no-op sets, limits and failures).
 *
 * Every case derives from one 64-bit seed, printed in each failure message;
 * set SMAUG_PROP_SEED to replay a single case.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_fixture.h"

#define NCASES 24

typedef struct pcase_s {
  uint64_t seed;
  uint64_t rng;
  uv_loop_t loop;
  graph_t *g;
  dag_t *d;
  exec_op_t *op;
  fx_runner_t f;
  fx_trace_t tr;
  exec_opts_t opts;
  uint8_t noop[5][2]; /* per type, per activity */
  unsigned type_limit[5], plugin_limit[2];
  int done_calls;
  exec_outcome_t outcome;
  uint64_t cancel_at_done; /* cancel after this many DONE events; 0: never */
  uint64_t dones;
  uint64_t cancel_seq; /* sequence number when cancel was called */
  uv_timer_t cancel_timer;
} pcase_t;

static uint64_t case_seed(int i) {
  const char *env = getenv("SMAUG_PROP_SEED");
  if (env != NULL)
    return strtoull(env, NULL, 0);
  return 0x51a9u + (uint64_t)i * 7919u;
}

static int caps(void *data, const char *type, dag_op_t op, dag_activity_t act) {
  pcase_t *c = data;
  int t = type[1] - '0';
  return !c->noop[t][act == DAG_SYNC];
}

static void limits(void *data, const char *type, const char **plugin,
                   unsigned *plugin_limit, unsigned *type_limit) {
  pcase_t *c = data;
  int t = type[1] - '0';
  *plugin = (t % 2) ? "odd" : "even";
  *plugin_limit = c->plugin_limit[t % 2];
  *type_limit = c->type_limit[t];
}

static void on_done(exec_op_t *op, exec_outcome_t outcome, void *data) {
  pcase_t *c = data;
  c->done_calls++;
  c->outcome = outcome;
}

static void do_cancel(uv_timer_t *timer) {
  pcase_t *c = timer->data;
  /* Too late once every task ended: then the run simply succeeds. */
  uint64_t before = c->tr.ev[c->tr.n - 1].seq;
  if (exec_op_cancel(c->op, "test") == 0)
    c->cancel_seq = before;
  uv_close((uv_handle_t *)timer, NULL);
}

static void on_event(const exec_event_t *ev, void *data) {
  pcase_t *c = data;
  fx_record(ev, &c->tr);
  if (ev->kind == EXEC_EV_DONE && ++c->dones == c->cancel_at_done)
    uv_timer_start(&c->cancel_timer, do_cancel, 0, 0);
}

/* Builds a random case. `with_limits` draws limits; `fail_pct` is the
 * per-mille chance that a task fails permanently. */
static void case_init(pcase_t *c, uint64_t seed, int with_limits,
                      unsigned fail_permille) {
  memset(c, 0, sizeof(*c));
  c->seed = seed;
  c->rng = seed;
  cr_assert_eq(uv_loop_init(&c->loop), 0);
  uint32_t n = 1 + (uint32_t)(fx_rand(&c->rng) % 2500);
  uint32_t depth = 1 + (uint32_t)(fx_rand(&c->rng) % 10);
  uint32_t ntypes = 1 + (uint32_t)(fx_rand(&c->rng) % 5);
  unsigned share = (unsigned)(fx_rand(&c->rng) % 40);
  c->g = fx_random_graph(&c->rng, n, depth, ntypes, share);
  for (int t = 0; t < 5; t++) {
    c->noop[t][0] = fx_rand(&c->rng) % 4 == 0;
    c->noop[t][1] = fx_rand(&c->rng) % 4 == 0;
    c->type_limit[t] = with_limits ? (unsigned)(fx_rand(&c->rng) % 6) : 0;
  }
  for (int p = 0; p < 2; p++)
    c->plugin_limit[p] = with_limits ? (unsigned)(fx_rand(&c->rng) % 8) : 0;
  cr_assert_eq(dag_new(c->g, DAG_OP_PROTECT, caps, c, &c->d), 0);
  fx_runner_init(&c->f, &c->loop, c->d);
  uint32_t nt = dag_task_count(c->d);
  for (uint32_t t = 0; t < nt; t++) {
    /* Under limits calls are serialised, so keep them mostly instant. */
    c->f.duration_ms[t] = with_limits ? (fx_rand(&c->rng) % 16 == 0)
                                      : (uint32_t)(fx_rand(&c->rng) % 4);
    if (fx_rand(&c->rng) % 1000 < fail_permille) {
      c->f.fail_times[t] = 1;
      c->f.fail_code[t] = EXEC_CODE_FAILED_PRECONDITION;
    }
  }
  exec_opts_init(&c->opts);
  c->opts.jitter_seed = seed;
  if (with_limits) {
    c->opts.max_in_flight = (unsigned)(fx_rand(&c->rng) % 50);
    c->opts.limits = limits;
    c->opts.limits_data = c;
  }
  uv_timer_init(&c->loop, &c->cancel_timer);
  c->cancel_timer.data = c;
}

static void case_run(pcase_t *c) {
  cr_assert_eq(exec_op_new(&c->loop, c->d, "prop", &c->opts, &fx_runner_vtable,
                           &c->f, &c->op),
               0);
  exec_op_set_event_cb(c->op, on_event, c);
  cr_assert_eq(exec_op_start(c->op, on_done, c), 0);
  uv_run(&c->loop, UV_RUN_DEFAULT);
  cr_assert_eq(c->done_calls, 1, "seed %#llx", (unsigned long long)c->seed);
}

static void case_free(pcase_t *c) {
  exec_op_free(c->op);
  if (!uv_is_closing((uv_handle_t *)&c->cancel_timer))
    uv_close((uv_handle_t *)&c->cancel_timer, NULL);
  fx_loop_finish(&c->loop);
  fx_runner_free(&c->f);
  fx_trace_free(&c->tr);
  dag_free(c->d);
  graph_free(c->g);
}

/* Checks that hold on every trace: contiguous sequence numbers ending with
 * OPERATION_FINISHED, S(r) starting only after P(r) and every S(child) are
 * done, no task starting twice without a retry, no-op tasks never reaching
 * the runner (asserted in the runner), and data passing intact. */
static void check_common(pcase_t *c) {
  unsigned long long seed = (unsigned long long)c->seed;
  uint32_t nt = dag_task_count(c->d);
  uint8_t *done = calloc(nt, 1);
  uint32_t *started = calloc(nt, sizeof(uint32_t));
  for (size_t i = 0; i < c->tr.n; i++) {
    const fx_event_t *e = &c->tr.ev[i];
    cr_assert_eq(e->seq, i + 1, "seed %#llx: sequence gap", seed);
    if (e->kind == EXEC_EV_OPERATION_FINISHED) {
      cr_assert_eq(i, c->tr.n - 1, "seed %#llx", seed);
      continue;
    }
    uint32_t t = e->task;
    if (e->kind == EXEC_EV_DONE)
      done[t] = 1;
    if (e->kind != EXEC_EV_STARTED)
      continue;
    started[t]++;
    cr_assert_not(done[t], "seed %#llx: task %u started after done", seed, t);
    if (dag_task_activity(t) == DAG_SYNC) {
      uint32_t node = dag_task_node(t), nc;
      cr_assert(done[t - 1], "seed %#llx: S(%u) before P", seed, node);
      const uint32_t *ch = graph_children(c->g, node, &nc);
      for (uint32_t k = 0; k < nc; k++)
        cr_assert(done[dag_task(ch[k], DAG_SYNC)],
                  "seed %#llx: S(%u) before S(child %u)", seed, node, ch[k]);
    }
  }
  cr_assert_eq(c->tr.ev[c->tr.n - 1].kind, EXEC_EV_OPERATION_FINISHED,
               "seed %#llx", seed);
  for (uint32_t t = 0; t < nt; t++) {
    cr_assert_leq(started[t], 1, "seed %#llx: task %u ran twice", seed, t);
    if (!dag_task_noop(c->d, t))
      cr_assert_eq(c->f.starts[t], started[t], "seed %#llx", seed);
  }
  cr_assert_eq(c->f.errors, 0, "seed %#llx: data passing", seed);
  cr_assert_eq(c->f.live, 0, "seed %#llx: calls left running", seed);
  free(done);
  free(started);
}

Test(exec_props, unlimited_runs_are_ordered_and_fully_parallel,
     .timeout = 120) {
  for (int i = 0; i < NCASES; i++) {
    pcase_t c;
    case_init(&c, case_seed(i), 0, 0);
    case_run(&c);
    unsigned long long seed = (unsigned long long)c.seed;
    check_common(&c);
    cr_assert_eq(c.outcome, EXEC_SUCCEEDED, "seed %#llx", seed);
    /* Every P starts before any call completes: nothing waits for it. */
    size_t first_call_done = c.tr.n;
    for (size_t k = 0; k < c.tr.n && first_call_done == c.tr.n; k++)
      if (c.tr.ev[k].kind == EXEC_EV_DONE &&
          !dag_task_noop(c.d, c.tr.ev[k].task))
        first_call_done = k;
    uint32_t p_started = 0;
    for (size_t k = 0; k < first_call_done; k++)
      p_started += c.tr.ev[k].kind == EXEC_EV_STARTED &&
                   dag_task_activity(c.tr.ev[k].task) == DAG_PARALLEL;
    cr_assert_eq(p_started, graph_count(c.g), "seed %#llx: a P task waited",
                 seed);
    /* A shared child's tasks ran once (checked in check_common) and all
     * tasks completed. */
    for (uint32_t t = 0; t < dag_task_count(c.d); t++)
      cr_assert_eq(exec_op_task_status(c.op, t), EXEC_DONE, "seed %#llx", seed);
    case_free(&c);
  }
}

Test(exec_props, limits_are_never_exceeded, .timeout = 120) {
  for (int i = 0; i < NCASES; i++) {
    pcase_t c;
    case_init(&c, case_seed(i) ^ 0xabcdef, 1, 0);
    case_run(&c);
    unsigned long long seed = (unsigned long long)c.seed;
    check_common(&c);
    cr_assert_eq(c.outcome, EXEC_SUCCEEDED, "seed %#llx", seed);
    /* Rebuild concurrency from the trace: calls only (no-ops use no slot). */
    unsigned cur_type[5] = {0}, cur_plugin[2] = {0}, cur = 0;
    for (size_t k = 0; k < c.tr.n; k++) {
      const fx_event_t *e = &c.tr.ev[k];
      if (e->task == EXEC_NO_TASK || dag_task_noop(c.d, e->task))
        continue;
      const char *type = graph_node(c.g, dag_task_node(e->task))->type;
      int t = type[1] - '0';
      int delta = e->kind == EXEC_EV_STARTED ? 1
                  : e->kind == EXEC_EV_DONE  ? -1
                                             : 0;
      cur += delta;
      cur_type[t] += delta;
      cur_plugin[t % 2] += delta;
      if (c.opts.max_in_flight)
        cr_assert_leq(cur, c.opts.max_in_flight, "seed %#llx", seed);
      if (c.type_limit[t])
        cr_assert_leq(cur_type[t], c.type_limit[t], "seed %#llx", seed);
      if (c.plugin_limit[t % 2])
        cr_assert_leq(cur_plugin[t % 2], c.plugin_limit[t % 2], "seed %#llx",
                      seed);
    }
    if (c.opts.max_in_flight)
      cr_assert_leq(c.f.max_inflight, c.opts.max_in_flight, "seed %#llx", seed);
    case_free(&c);
  }
}

/* Marks every task downstream of `t` (excluding t) in `down`. */
static void mark_downstream(const dag_t *d, uint32_t t, uint8_t *down,
                            uint32_t *stack) {
  const graph_t *g = dag_graph(d);
  uint32_t sp = 0;
  stack[sp++] = t;
  while (sp > 0) {
    uint32_t u = stack[--sp], node = dag_task_node(u);
    uint32_t np = 1;
    const uint32_t *p = &node;
    if (dag_task_activity(u) == DAG_SYNC)
      p = graph_parents(g, node, &np);
    for (uint32_t k = 0; k < np; k++) {
      uint32_t s = dag_task(p[k], DAG_SYNC);
      if (!down[s]) {
        down[s] = 1;
        stack[sp++] = s;
      }
    }
  }
}

Test(exec_props, failures_skip_exactly_their_dependents, .timeout = 120) {
  for (int i = 0; i < NCASES; i++) {
    pcase_t c;
    case_init(&c, case_seed(i) ^ 0xfa11, i % 2, 8);
    case_run(&c);
    unsigned long long seed = (unsigned long long)c.seed;
    check_common(&c);
    uint32_t nt = dag_task_count(c.d);
    uint8_t *down = calloc(nt, 1);
    uint32_t *stack = malloc(nt * sizeof(uint32_t) + 4);
    int any = 0;
    for (uint32_t t = 0; t < nt; t++)
      if (c.f.fail_times[t] && !dag_task_noop(c.d, t)) {
        mark_downstream(c.d, t, down, stack);
        any = 1;
      }
    for (uint32_t t = 0; t < nt; t++) {
      exec_status_t want = down[t] ? EXEC_SKIPPED
                           : (c.f.fail_times[t] && !dag_task_noop(c.d, t))
                               ? EXEC_FAILED
                               : EXEC_DONE;
      cr_assert_eq(exec_op_task_status(c.op, t), want,
                   "seed %#llx: task %u status %d, want %d", seed, t,
                   exec_op_task_status(c.op, t), want);
    }
    cr_assert_eq(c.outcome, any ? EXEC_FAILED_OP : EXEC_SUCCEEDED, "seed %#llx",
                 seed);
    free(down);
    free(stack);
    case_free(&c);
  }
}

Test(exec_props, cancel_leaves_nothing_running, .timeout = 120) {
  for (int i = 0; i < NCASES; i++) {
    pcase_t c;
    case_init(&c, case_seed(i) ^ 0xcace1, i % 2, 0);
    uint32_t n = graph_count(c.g);
    c.cancel_at_done = 1 + fx_rand(&c.rng) % (n + 1);
    case_run(&c);
    unsigned long long seed = (unsigned long long)c.seed;
    check_common(&c);
    if (c.cancel_seq == 0) { /* finished before the cancel took effect */
      cr_assert_eq(c.outcome, EXEC_SUCCEEDED, "seed %#llx", seed);
      case_free(&c);
      continue;
    }
    cr_assert_eq(c.outcome, EXEC_CANCELLED_OP, "seed %#llx", seed);
    cr_assert_eq(c.f.cancel_ops, 1, "seed %#llx", seed);
    for (size_t k = 0; k < c.tr.n; k++)
      if (c.tr.ev[k].seq > c.cancel_seq)
        cr_assert_neq(c.tr.ev[k].kind, EXEC_EV_STARTED,
                      "seed %#llx: start after cancel", seed);
    for (uint32_t t = 0; t < dag_task_count(c.d); t++) {
      exec_status_t st = exec_op_task_status(c.op, t);
      cr_assert(st == EXEC_DONE || st == EXEC_CANCELLED,
                "seed %#llx: task %u left in %d", seed, t, st);
    }
    case_free(&c);
  }
}
