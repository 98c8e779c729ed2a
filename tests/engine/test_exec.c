/*
 * test_exec.c - executor behaviours one at a time: data passing, retries
 * and backoff, deadlines and heartbeats, failure and skip, fail-fast,
 * cancel, limits, and resume from a mid-run snapshot.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "engine_fixture.h"

static int64_t loop_clock(void *data) {
  return (int64_t)uv_now(data);
}

typedef struct run_s {
  uv_loop_t loop;
  graph_t *g;
  dag_t *d;
  exec_op_t *op;
  fx_runner_t f;
  fx_trace_t tr;
  exec_opts_t opts;
  int done_calls;
  exec_outcome_t outcome;
} run_t;

static void run_init(run_t *r, graph_t *g, dag_op_t kind) {
  memset(r, 0, sizeof(*r));
  cr_assert_eq(uv_loop_init(&r->loop), 0);
  r->g = g;
  cr_assert_eq(dag_new(g, kind, NULL, NULL, &r->d), 0);
  fx_runner_init(&r->f, &r->loop, r->d);
  exec_opts_init(&r->opts);
  r->opts.now_ms = loop_clock;
  r->opts.clock_data = &r->loop;
  r->opts.backoff_base_ms = 4;
  r->opts.backoff_max_ms = 16;
}

static void on_done(exec_op_t *op, exec_outcome_t outcome, void *data) {
  run_t *r = data;
  r->done_calls++;
  r->outcome = outcome;
}

static void run_start(run_t *r) {
  cr_assert_eq(exec_op_new(&r->loop, r->d, "op1", &r->opts, &fx_runner_vtable,
                           &r->f, &r->op),
               0);
  exec_op_set_event_cb(r->op, fx_record, &r->tr);
  cr_assert_eq(exec_op_start(r->op, on_done, r), 0);
  cr_assert_eq(r->done_calls, 0, "done must not run inside start");
}

static void run_go(run_t *r) {
  run_start(r);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  cr_assert_eq(r->done_calls, 1);
}

static void run_free(run_t *r) {
  exec_op_free(r->op);
  fx_loop_finish(&r->loop);
  fx_runner_free(&r->f);
  fx_trace_free(&r->tr);
  dag_free(r->d);
  graph_free(r->g);
}

static uint32_t count_kind(const run_t *r, uint32_t task,
                           exec_event_kind_t kind) {
  uint32_t n = 0;
  for (size_t i = 0; i < r->tr.n; i++)
    n += r->tr.ev[i].task == task && r->tr.ev[i].kind == kind;
  return n;
}

Test(exec, data_passes_from_p_to_s_and_children_to_parent, .timeout = 10) {
  run_t r;
  run_init(&r, fx_seed_graph(), DAG_OP_RESTORE);
  run_go(&r);
  cr_assert_eq(r.outcome, EXEC_SUCCEEDED);
  cr_assert_eq(r.f.errors, 0, "data-passing violations");
  exec_resource_t res;
  exec_op_resource(r.op, 1, &res);
  cr_assert_eq(res.status, EXEC_DONE);
  cr_assert_str_eq(res.restored_id, "new-s1");
  cr_assert_str_eq(kv_get(res.metadata, "id"), "s1");
  cr_assert_eq(res.state_len, strlen("st:smaug.server#s1"));
  cr_assert_gt(res.finished_ms, 0);
  cr_assert_leq(res.started_ms, res.finished_ms);
  /* The last event ends the operation; sequence numbers are 1, 2, ... */
  for (size_t i = 0; i < r.tr.n; i++)
    cr_assert_eq(r.tr.ev[i].seq, i + 1);
  cr_assert_eq(r.tr.ev[r.tr.n - 1].kind, EXEC_EV_OPERATION_FINISHED);
  run_free(&r);
}

/* A runner that checks restore inputs: saved metadata and children's
 * restored ids. */
typedef struct restore_probe_s {
  int saw_saved;
  int saw_child_rid;
} restore_probe_t;

static restore_probe_t probe;

static int probe_start(void *rdata, exec_activity_t *a) {
  const graph_node_t *nd = exec_activity_node(a);
  const char *saved = kv_get(exec_activity_saved_metadata(a), "path");
  if (saved && strcmp(saved, nd->id) == 0)
    probe.saw_saved++;
  if (exec_activity_activity(a) == DAG_SYNC && strcmp(nd->id, "s1") == 0)
    for (size_t i = 0; i < exec_activity_child_count(a); i++) {
      const char *rid;
      const graph_node_t *c = exec_activity_child(a, i, NULL, &rid);
      char want[32];
      snprintf(want, sizeof(want), "re-%s", c->id);
      probe.saw_child_rid += strcmp(rid, want) == 0;
    }
  char rid[32];
  snprintf(rid, sizeof(rid), "re-%s", nd->id);
  exec_output_t out = {.restored_id = rid};
  exec_activity_complete(a, &out); /* synchronously, from inside start */
  return 0;
}

static const exec_runner_t probe_runner = {probe_start, NULL, NULL};

static void count_done(exec_op_t *op, exec_outcome_t outcome, void *data) {
  ++*(int *)data;
}

Test(exec, restore_gets_saved_metadata_and_restored_child_ids, .timeout = 10) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  graph_t *g = fx_seed_graph();
  dag_t *d;
  dag_new(g, DAG_OP_RESTORE, NULL, NULL, &d);
  exec_op_t *op;
  cr_assert_eq(exec_op_new(&loop, d, "r1", NULL, &probe_runner, NULL, &op), 0);
  for (uint32_t i = 0; i < 5; i++) {
    kv_t m;
    kv_init(&m);
    kv_set(&m, "path", graph_node(g, i)->id);
    cr_assert_eq(exec_op_set_saved_metadata(op, i, &m), 0);
    kv_free(&m);
  }
  memset(&probe, 0, sizeof(probe));
  int done = 0;
  cr_assert_eq(exec_op_start(op, count_done, &done), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(done, 1);
  cr_assert_eq(exec_op_outcome(op), EXEC_SUCCEEDED);
  cr_assert_eq(probe.saw_saved, 10, "every activity got its saved metadata");
  cr_assert_eq(probe.saw_child_rid, 3, "server saw its children's new ids");
  exec_op_free(op);
  fx_loop_finish(&loop);
  dag_free(d);
  graph_free(g);
}

Test(exec, transient_errors_retry_with_backoff_and_same_key, .timeout = 10) {
  run_t r;
  run_init(&r, fx_seed_graph(), DAG_OP_PROTECT);
  uint32_t t = dag_task(2, DAG_PARALLEL); /* P(v1) */
  r.f.fail_times[t] = 3;
  r.f.fail_code[t] = EXEC_CODE_UNAVAILABLE;
  run_go(&r);
  cr_assert_eq(r.outcome, EXEC_SUCCEEDED);
  cr_assert_eq(r.f.starts[t], 4);
  cr_assert_eq(r.f.last_attempt[t], 4);
  cr_assert_str_eq(r.f.last_key[t], "op1/smaug.volume/v1/parallel");
  /* RETRIED events: attempts 1..3, delay within [d/2, d] with d doubling
   * from 4 ms and capped at 16 ms, and the next start waits it out. */
  uint32_t want_d[] = {4, 8, 16};
  int k = 0;
  for (size_t i = 0; i < r.tr.n; i++) {
    fx_event_t *e = &r.tr.ev[i];
    if (e->task != t || e->kind != EXEC_EV_RETRIED)
      continue;
    cr_assert_eq(e->attempt, (uint32_t)k + 1);
    cr_assert_eq(e->code, EXEC_CODE_UNAVAILABLE);
    cr_assert_geq(e->delay_ms, want_d[k] / 2);
    cr_assert_leq(e->delay_ms, want_d[k]);
    size_t j = i + 1;
    while (r.tr.ev[j].task != t || r.tr.ev[j].kind != EXEC_EV_STARTED)
      j++;
    cr_assert_eq(r.tr.ev[j].attempt, (uint32_t)k + 2);
    cr_assert_geq(r.tr.ev[j].time_ms - e->time_ms, e->delay_ms);
    k++;
  }
  cr_assert_eq(k, 3);
  run_free(&r);
}

Test(exec, retries_are_bounded, .timeout = 10) {
  run_t r;
  run_init(&r, fx_seed_graph(), DAG_OP_PROTECT);
  r.opts.max_attempts = 3;
  uint32_t t = dag_task(4, DAG_SYNC); /* S(i1) */
  r.f.fail_times[t] = 100;
  r.f.fail_code[t] = EXEC_CODE_RESOURCE_EXHAUSTED;
  run_go(&r);
  cr_assert_eq(r.outcome, EXEC_FAILED_OP);
  cr_assert_eq(r.f.starts[t], 3);
  exec_resource_t res;
  exec_op_resource(r.op, 4, &res);
  cr_assert_eq(res.status, EXEC_FAILED);
  cr_assert(strstr(res.reason, "RESOURCE_EXHAUSTED after 3 attempts"), "%s",
            res.reason);
  run_free(&r);
}

/* Time since the first RETRIED event of `task` to its last event. */
static int64_t retry_span(const run_t *r, uint32_t task) {
  int64_t first = -1, last = -1;
  for (size_t i = 0; i < r->tr.n; i++) {
    if (r->tr.ev[i].task != task)
      continue;
    if (first < 0 && r->tr.ev[i].kind == EXEC_EV_RETRIED)
      first = r->tr.ev[i].time_ms;
    last = r->tr.ev[i].time_ms;
  }
  cr_assert_geq(first, 0, "no RETRIED event");
  return last - first;
}

Test(exec, transient_retries_are_bounded_by_time_not_count, .timeout = 10) {
  run_t r;
  run_init(&r, fx_seed_graph(), DAG_OP_PROTECT);
  r.opts.retry_budget_ms = 150;
  uint32_t t = dag_task(2, DAG_PARALLEL); /* P(v1) */
  r.f.fail_times[t] = 255;
  r.f.fail_code[t] = EXEC_CODE_UNAVAILABLE;
  run_go(&r);
  cr_assert_eq(r.outcome, EXEC_FAILED_OP);
  /* 150 ms of backoffs of 2..16 ms: far more than a count of 5. */
  uint32_t retried = count_kind(&r, t, EXEC_EV_RETRIED);
  cr_assert_gt(retried, 9, "%u retries", retried);
  cr_assert_eq(r.f.starts[t], retried + 1);
  /* Every delay stays within the cap and, summed, within the budget; the
   * last attempt is made once the budget is used up, not before. */
  uint64_t sum = 0;
  for (size_t i = 0; i < r.tr.n; i++)
    if (r.tr.ev[i].task == t && r.tr.ev[i].kind == EXEC_EV_RETRIED) {
      cr_assert_leq(r.tr.ev[i].delay_ms, 16);
      sum += r.tr.ev[i].delay_ms;
    }
  cr_assert_leq(sum, 150);
  cr_assert_geq(retry_span(&r, t), 150);
  exec_resource_t res;
  exec_op_resource(r.op, 2, &res);
  cr_assert(strstr(res.reason, "UNAVAILABLE after"), "%s", res.reason);
  cr_assert(strstr(res.reason, "(retry budget 0.1 s)") ||
                strstr(res.reason, "(retry budget 0.2 s)"),
            "%s", res.reason);
  run_free(&r);
}

Test(exec, zero_retry_budget_does_not_retry, .timeout = 10) {
  run_t r;
  run_init(&r, fx_seed_graph(), DAG_OP_PROTECT);
  r.opts.retry_budget_ms = 0;
  uint32_t t = dag_task(2, DAG_PARALLEL);
  r.f.fail_times[t] = 1;
  r.f.fail_code[t] = EXEC_CODE_UNAVAILABLE;
  run_go(&r);
  cr_assert_eq(r.outcome, EXEC_FAILED_OP);
  cr_assert_eq(r.f.starts[t], 1);
  cr_assert_eq(count_kind(&r, t, EXEC_EV_RETRIED), 0);
  run_free(&r);
}

Test(exec, default_budget_is_30_s_with_backoff_from_100_ms_to_5_s) {
  exec_opts_t o;
  exec_opts_init(&o);
  cr_assert_eq(o.retry_budget_ms, 30000);
  cr_assert_eq(o.max_attempts, 0);
  cr_assert_eq(o.backoff_base_ms, 100);
  cr_assert_eq(o.backoff_max_ms, 5000);
}

Test(exec, progress_restarts_the_retry_budget, .timeout = 10) {
  run_t r;
  run_init(&r, fx_seed_graph(), DAG_OP_PROTECT);
  r.opts.retry_budget_ms = 30;
  uint32_t t = dag_task(2, DAG_PARALLEL);
  /* Each attempt runs 12 ms with progress every 3 ms, then fails: the
   * plugin was reachable each time, so 20 failures (far past 30 ms) are
   * all retried and the 21st attempt succeeds. */
  r.f.fail_times[t] = 20;
  r.f.fail_code[t] = EXEC_CODE_UNAVAILABLE;
  r.f.duration_ms[t] = 12;
  r.f.progress_every_ms[t] = 3;
  run_go(&r);
  cr_assert_eq(r.outcome, EXEC_SUCCEEDED);
  cr_assert_eq(r.f.starts[t], 21);
  cr_assert_gt(retry_span(&r, t), 30);
  /* Without progress the same failures use up the budget. */
  run_free(&r);
  run_init(&r, fx_seed_graph(), DAG_OP_PROTECT);
  r.opts.retry_budget_ms = 30;
  r.f.fail_times[t] = 20;
  r.f.fail_code[t] = EXEC_CODE_UNAVAILABLE;
  r.f.duration_ms[t] = 12;
  run_go(&r);
  cr_assert_eq(r.outcome, EXEC_FAILED_OP);
  cr_assert_lt(r.f.starts[t], 21);
  run_free(&r);
}

/* Wakes the task from its backoff on the loop turn after RETRIED (the
 * event comes before the backoff is set up), as the registry does when a
 * plugin is serving again. */
typedef struct wake_s {
  run_t *r;
  uv_timer_t timer;
  unsigned other, woken, calls;
} wake_t;

static void wake_fire(uv_timer_t *timer) {
  wake_t *w = timer->data;
  w->other += exec_op_retry_now(w->r->op, "compute");
  w->woken += exec_op_retry_now(w->r->op, "storage");
  w->calls++;
}

static void wake_on_retried(const exec_event_t *ev, void *data) {
  wake_t *w = data;
  fx_record(ev, &w->r->tr);
  if (ev->kind == EXEC_EV_RETRIED)
    uv_timer_start(&w->timer, wake_fire, 0, 0);
}

static void limits(void *data, const char *type, const char **plugin,
                   unsigned *plugin_limit, unsigned *type_limit);

Test(exec, retry_now_ends_the_backoff_of_that_plugins_tasks, .timeout = 10) {
  run_t r;
  run_init(&r, fx_seed_graph(), DAG_OP_PROTECT);
  r.opts.limits = limits;
  r.opts.backoff_base_ms = 60000; /* the test would time out waiting */
  r.opts.backoff_max_ms = 60000;
  uint32_t t = dag_task(2, DAG_PARALLEL); /* P(v1): plugin "storage" */
  r.f.fail_times[t] = 2;
  r.f.fail_code[t] = EXEC_CODE_UNAVAILABLE;
  wake_t w = {.r = &r};
  uv_timer_init(&r.loop, &w.timer);
  w.timer.data = &w;
  cr_assert_eq(
      exec_op_new(&r.loop, r.d, "op1", &r.opts, &fx_runner_vtable, &r.f, &r.op),
      0);
  exec_op_set_event_cb(r.op, wake_on_retried, &w);
  cr_assert_eq(exec_op_start(r.op, on_done, &r), 0);
  uv_run(&r.loop, UV_RUN_DEFAULT);
  cr_assert_eq(r.done_calls, 1);
  cr_assert_eq(r.outcome, EXEC_SUCCEEDED);
  cr_assert_eq(r.f.starts[t], 3);
  cr_assert_eq(w.calls, 2);
  cr_assert_eq(w.woken, 2, "each backoff of P(v1) ended early");
  cr_assert_eq(w.other, 0, "another plugin's name wakes nothing");
  /* Each next attempt started long before its planned delay. */
  for (size_t i = 0; i < r.tr.n; i++)
    if (r.tr.ev[i].task == t && r.tr.ev[i].kind == EXEC_EV_RETRIED) {
      cr_assert_geq(r.tr.ev[i].delay_ms, 30000);
      size_t j = i + 1;
      while (r.tr.ev[j].task != t || r.tr.ev[j].kind != EXEC_EV_STARTED)
        j++;
      cr_assert_lt(r.tr.ev[j].time_ms - r.tr.ev[i].time_ms, 1000);
    }
  uv_close((uv_handle_t *)&w.timer, NULL);
  run_free(&r);
}

Test(exec, deadline_exceeded_from_plugin_retries_a_few_times, .timeout = 10) {
  run_t r;
  run_init(&r, fx_seed_graph(), DAG_OP_PROTECT);
  r.opts.max_deadline_attempts = 2;
  uint32_t t = dag_task(3, DAG_PARALLEL);
  r.f.fail_times[t] = 100;
  r.f.fail_code[t] = EXEC_CODE_DEADLINE_EXCEEDED;
  run_go(&r);
  cr_assert_eq(r.f.starts[t], 2);
  cr_assert_eq(exec_op_task_status(r.op, t), EXEC_FAILED);
  run_free(&r);
}

Test(exec, permanent_error_is_not_retried, .timeout = 10) {
  run_t r;
  run_init(&r, fx_seed_graph(), DAG_OP_PROTECT);
  uint32_t t = dag_task(3, DAG_PARALLEL);
  r.f.fail_times[t] = 1;
  r.f.fail_code[t] = EXEC_CODE_INVALID_ARGUMENT;
  run_go(&r);
  cr_assert_eq(r.f.starts[t], 1);
  cr_assert_eq(count_kind(&r, t, EXEC_EV_RETRIED), 0);
  cr_assert_eq(count_kind(&r, t, EXEC_EV_FAILED), 1);
  run_free(&r);
}

Test(exec, unimplemented_is_a_configuration_error, .timeout = 10) {
  run_t r;
  run_init(&r, fx_seed_graph(), DAG_OP_PROTECT);
  uint32_t t = dag_task(0, DAG_SYNC);
  r.f.fail_times[t] = 1;
  r.f.fail_code[t] = EXEC_CODE_UNIMPLEMENTED;
  run_go(&r);
  exec_resource_t res;
  exec_op_resource(r.op, 0, &res);
  cr_assert(strstr(res.reason, "S:smaug.project#p1: configuration error"), "%s",
            res.reason);
  run_free(&r);
}

Test(exec, failure_skips_exactly_the_dependents, .timeout = 10) {
  run_t r;
  run_init(&r, fx_seed_graph(), DAG_OP_PROTECT);
  uint32_t t = dag_task(2, DAG_PARALLEL); /* P(v1) */
  r.f.fail_times[t] = 1;
  r.f.fail_code[t] = EXEC_CODE_NOT_FOUND;
  run_go(&r);
  cr_assert_eq(r.outcome, EXEC_FAILED_OP);
  exec_status_t want[10] = {EXEC_DONE,   EXEC_SKIPPED, /* p1 */
                            EXEC_DONE,   EXEC_SKIPPED, /* s1 */
                            EXEC_FAILED, EXEC_SKIPPED, /* v1 */
                            EXEC_DONE,   EXEC_DONE,    /* v2 */
                            EXEC_DONE,   EXEC_DONE};   /* i1 */
  for (uint32_t k = 0; k < 10; k++)
    cr_assert_eq(exec_op_task_status(r.op, k), want[k], "task %u", k);
  exec_resource_t res;
  exec_op_resource(r.op, 1, &res);
  cr_assert_eq(res.status, EXEC_SKIPPED);
  cr_assert_str_eq(res.reason, "upstream failed: P:smaug.volume#v1");
  exec_op_resource(r.op, 2, &res);
  cr_assert_str_eq(res.reason,
                   "P:smaug.volume#v1: NOT_FOUND: scripted failure");
  run_free(&r);
}

Test(exec, fail_fast_cancels_everything_else, .timeout = 10) {
  run_t r;
  run_init(&r, fx_seed_graph(), DAG_OP_PROTECT);
  r.opts.fail_fast = 1;
  for (uint32_t t = 0; t < 10; t++)
    r.f.duration_ms[t] = 50;
  uint32_t bad = dag_task(2, DAG_PARALLEL);
  r.f.duration_ms[bad] = 1;
  r.f.fail_times[bad] = 1;
  r.f.fail_code[bad] = EXEC_CODE_INTERNAL;
  run_go(&r);
  cr_assert_eq(r.outcome, EXEC_FAILED_OP);
  cr_assert_eq(r.f.live, 0);
  cr_assert_eq(r.f.cancel_ops, 1);
  cr_assert_eq(exec_op_task_status(r.op, bad), EXEC_FAILED);
  for (uint32_t t = 0; t < 10; t++)
    if (t != bad)
      cr_assert(exec_op_task_status(r.op, t) == EXEC_CANCELLED ||
                    exec_op_task_status(r.op, t) == EXEC_SKIPPED,
                "task %u", t);
  run_free(&r);
}

Test(exec, deadline_fails_a_hung_call_and_cancels_it, .timeout = 10) {
  run_t r;
  run_init(&r, fx_seed_graph(), DAG_OP_PROTECT);
  r.opts.deadline_ms = 20;
  r.opts.max_deadline_attempts = 1;
  uint32_t t = dag_task(4, DAG_PARALLEL);
  r.f.hang[t] = 1;
  run_go(&r);
  cr_assert_eq(exec_op_task_status(r.op, t), EXEC_FAILED);
  cr_assert_eq(r.f.cancels, 1, "the runner was told to stop the call");
  exec_resource_t res;
  exec_op_resource(r.op, 4, &res);
  cr_assert(strstr(res.reason, "DEADLINE_EXCEEDED: deadline of 20 ms"), "%s",
            res.reason);
  cr_assert_geq(res.finished_ms - res.started_ms, 20);
  run_free(&r);
}

Test(exec, silence_past_heartbeat_window_fails, .timeout = 10) {
  run_t r;
  run_init(&r, fx_seed_graph(), DAG_OP_PROTECT);
  r.opts.heartbeat_ms = 15;
  r.opts.max_deadline_attempts = 1;
  uint32_t t = dag_task(1, DAG_PARALLEL);
  r.f.hang[t] = 1;
  run_go(&r);
  cr_assert_eq(exec_op_task_status(r.op, t), EXEC_FAILED);
  exec_resource_t res;
  exec_op_resource(r.op, 1, &res);
  cr_assert(strstr(res.reason, "no progress for 15 ms"), "%s", res.reason);
  run_free(&r);
}

Test(exec, progress_keeps_a_long_call_alive, .timeout = 10) {
  run_t r;
  run_init(&r, fx_seed_graph(), DAG_OP_PROTECT);
  r.opts.heartbeat_ms = 30;
  uint32_t t = dag_task(1, DAG_PARALLEL);
  r.f.duration_ms[t] = 120;
  r.f.progress_every_ms[t] = 5;
  run_go(&r);
  cr_assert_eq(r.outcome, EXEC_SUCCEEDED);
  cr_assert_gt(count_kind(&r, t, EXEC_EV_PROGRESS), 5);
  run_free(&r);
}

/* The first event `kind` of `task`; NULL: none. */
static const fx_event_t *event_of(const run_t *r, uint32_t task,
                                  exec_event_kind_t kind) {
  for (size_t i = 0; i < r->tr.n; i++)
    if (r->tr.ev[i].task == task && r->tr.ev[i].kind == kind)
      return &r->tr.ev[i];
  return NULL;
}

/* Its sequence number; 0: none. */
static uint64_t seq_of(const run_t *r, uint32_t task, exec_event_kind_t kind) {
  const fx_event_t *ev = event_of(r, task, kind);
  return ev ? ev->seq : 0;
}

/* One watch serves every call of the operation: the silent calls end in
 * the order they started, each as soon as it is due, while a call that
 * reports progress (and so moves behind them) keeps running. */
Test(exec, watch_ends_silent_calls_in_start_order_and_spares_beating_ones,
     .timeout = 10) {
  run_t r;
  run_init(&r, fx_seed_graph(), DAG_OP_PROTECT);
  r.opts.heartbeat_ms = 20;
  r.opts.max_deadline_attempts = 1;
  uint32_t beating = dag_task(1, DAG_PARALLEL);
  r.f.duration_ms[beating] = 100;
  r.f.progress_every_ms[beating] = 5;
  uint32_t silent[] = {dag_task(0, DAG_PARALLEL), dag_task(2, DAG_PARALLEL),
                       dag_task(3, DAG_PARALLEL), dag_task(4, DAG_PARALLEL)};
  for (size_t i = 0; i < 4; i++)
    r.f.hang[silent[i]] = 1;
  run_go(&r);
  cr_assert_eq(exec_op_task_status(r.op, beating), EXEC_DONE);
  uint64_t done = seq_of(&r, beating, EXEC_EV_DONE);
  for (size_t i = 0; i < 4; i++) {
    uint32_t t = silent[i];
    cr_assert_eq(exec_op_task_status(r.op, t), EXEC_FAILED, "task %u", t);
    uint64_t failed = seq_of(&r, t, EXEC_EV_FAILED);
    cr_assert_lt(failed, done, "task %u waited for the beating call", t);
    exec_resource_t res;
    exec_op_resource(r.op, dag_task_node(t), &res);
    cr_assert(strstr(res.reason, "no progress for 20 ms"), "%s", res.reason);
    for (size_t j = 0; j < 4; j++) {
      uint32_t u = silent[j];
      if (seq_of(&r, u, EXEC_EV_STARTED) < seq_of(&r, t, EXEC_EV_STARTED))
        cr_assert_lt(seq_of(&r, u, EXEC_EV_FAILED), failed,
                     "task %u started before %u and is due first", u, t);
    }
  }
  cr_assert_eq(r.f.cancels, 4);
  run_free(&r);
}

/* Progress does not extend the deadline: a call that keeps beating ends
 * at its deadline, while a silent one ends at the heartbeat window, and
 * the operation's watch stops with the last call (the loop closes). */
Test(exec, deadline_ends_a_beating_call_and_heartbeat_a_silent_one,
     .timeout = 10) {
  run_t r;
  run_init(&r, fx_seed_graph(), DAG_OP_PROTECT);
  r.opts.deadline_ms = 60;
  r.opts.heartbeat_ms = 15;
  r.opts.max_deadline_attempts = 1;
  uint32_t beating = dag_task(1, DAG_PARALLEL);
  r.f.hang[beating] = 1;
  r.f.progress_every_ms[beating] = 3;
  uint32_t silent = dag_task(3, DAG_PARALLEL);
  r.f.hang[silent] = 1;
  run_go(&r);
  /* The events, not the resources' reasons: the silent call is a child of
   * the beating one, whose resource records the skip it caused first. */
  cr_assert_eq(exec_op_task_status(r.op, beating), EXEC_FAILED);
  const fx_event_t *ev = event_of(&r, beating, EXEC_EV_FAILED);
  cr_assert(ev && strstr(ev->message, "deadline of 60 ms exceeded"), "%s",
            ev ? ev->message : "no event");
  cr_assert_gt(count_kind(&r, beating, EXEC_EV_PROGRESS), 3);
  cr_assert_eq(exec_op_task_status(r.op, silent), EXEC_FAILED);
  ev = event_of(&r, silent, EXEC_EV_FAILED);
  cr_assert(ev && strstr(ev->message, "no progress for 15 ms"), "%s",
            ev ? ev->message : "no event");
  cr_assert_lt(seq_of(&r, silent, EXEC_EV_FAILED),
               seq_of(&r, beating, EXEC_EV_FAILED));
  run_free(&r);
}

static void cancel_soon(uv_timer_t *timer) {
  run_t *r = timer->data;
  cr_assert_eq(exec_op_cancel(r->op, "user asked"), 0);
  cr_assert_eq(exec_op_cancel(r->op, "again"), UV_EALREADY);
  uv_close((uv_handle_t *)timer, NULL);
}

Test(exec, cancel_stops_dispatch_and_calls_in_flight, .timeout = 10) {
  run_t r;
  run_init(&r, fx_seed_graph(), DAG_OP_PROTECT);
  for (uint32_t t = 0; t < 10; t++)
    r.f.hang[t] = 1;
  uv_timer_t timer;
  uv_timer_init(&r.loop, &timer);
  timer.data = &r;
  uv_timer_start(&timer, cancel_soon, 10, 0);
  run_go(&r);
  cr_assert_eq(r.outcome, EXEC_CANCELLED_OP);
  cr_assert_eq(r.f.live, 0);
  cr_assert_eq(r.f.cancel_ops, 1);
  cr_assert_gt(r.f.cancels, 0);
  for (uint32_t t = 0; t < 10; t++)
    cr_assert_eq(exec_op_task_status(r.op, t), EXEC_CANCELLED, "task %u", t);
  exec_resource_t res;
  exec_op_resource(r.op, 0, &res);
  cr_assert_str_eq(res.reason, "cancelled: user asked");
  run_free(&r);
}

static uint32_t lim_plugin, lim_type;
static void limits(void *data, const char *type, const char **plugin,
                   unsigned *plugin_limit, unsigned *type_limit) {
  /* Volumes and images share one plugin. */
  *plugin =
      strcmp(type, "smaug.volume") == 0 || strcmp(type, "smaug.image") == 0
          ? "storage"
          : "compute";
  *plugin_limit = lim_plugin;
  *type_limit = strcmp(type, "smaug.volume") == 0 ? lim_type : 0;
}

Test(exec, per_plugin_and_type_limits_hold, .timeout = 10) {
  graph_t *g;
  graph_new(&g);
  char id[16];
  graph_add_node(g, "smaug.server", "s", NULL, NULL, NULL, NULL, NULL, 0);
  for (int i = 0; i < 20; i++) {
    snprintf(id, sizeof(id), "v%d", i);
    uint32_t v;
    graph_add_node(g, "smaug.volume", id, NULL, NULL, &v, NULL, NULL, 0);
    graph_add_edge(g, 0, v);
    snprintf(id, sizeof(id), "i%d", i);
    graph_add_node(g, "smaug.image", id, NULL, NULL, &v, NULL, NULL, 0);
    graph_add_edge(g, 0, v);
  }
  graph_validate(g, NULL, NULL, NULL, 0);
  run_t r;
  run_init(&r, g, DAG_OP_PROTECT);
  lim_plugin = 3;
  lim_type = 2;
  r.opts.limits = limits;
  for (uint32_t t = 0; t < dag_task_count(r.d); t++)
    r.f.duration_ms[t] = 1;
  run_go(&r);
  cr_assert_eq(r.outcome, EXEC_SUCCEEDED);
  uint32_t tv = graph_node(g, 1)->type_index, ti = graph_node(g, 2)->type_index;
  cr_assert_eq(r.f.type_max[tv], 2);
  cr_assert_leq(r.f.type_max[tv] + r.f.type_max[ti], 3 + 2);
  /* Rebuild storage-plugin concurrency from the trace. */
  int cur = 0, peak = 0;
  for (size_t i = 0; i < r.tr.n; i++) {
    fx_event_t *e = &r.tr.ev[i];
    if (e->task == EXEC_NO_TASK || dag_task_node(e->task) == 0)
      continue;
    if (e->kind == EXEC_EV_STARTED)
      cur++;
    else if (e->kind == EXEC_EV_DONE)
      cur--;
    peak = cur > peak ? cur : peak;
  }
  cr_assert_eq(peak, 3);
  run_free(&r);
}

Test(exec, global_limit_holds, .timeout = 10) {
  run_t r;
  run_init(&r, fx_seed_graph(), DAG_OP_PROTECT);
  r.opts.max_in_flight = 2;
  for (uint32_t t = 0; t < 10; t++)
    r.f.duration_ms[t] = 2;
  run_go(&r);
  cr_assert_eq(r.outcome, EXEC_SUCCEEDED);
  cr_assert_eq(r.f.max_inflight, 2);
  run_free(&r);
}

Test(exec, jitter_is_reproducible_from_the_seed, .timeout = 10) {
  uint32_t delays[2][4];
  for (int k = 0; k < 2; k++) {
    run_t r;
    run_init(&r, fx_seed_graph(), DAG_OP_PROTECT);
    r.opts.jitter_seed = 42;
    r.opts.max_attempts = 5;
    uint32_t t = dag_task(2, DAG_PARALLEL);
    r.f.fail_times[t] = 4;
    r.f.fail_code[t] = EXEC_CODE_ABORTED;
    run_go(&r);
    int n = 0;
    for (size_t i = 0; i < r.tr.n; i++)
      if (r.tr.ev[i].kind == EXEC_EV_RETRIED)
        delays[k][n++] = r.tr.ev[i].delay_ms;
    cr_assert_eq(n, 4);
    run_free(&r);
  }
  cr_assert_arr_eq(delays[0], delays[1], sizeof(delays[0]));
}

/* ---------------------------------------------------------------- resume */

typedef struct snap_s {
  run_t *r;
  uv_timer_t timer;
  uint32_t dones;
  uint32_t at;
  uint8_t *done;
  uint8_t *inflight;
  uint32_t *attempts;
  int taken;
} snap_t;

static void snap_take(uv_timer_t *timer) {
  snap_t *s = timer->data;
  run_t *r = s->r;
  for (uint32_t t = 0; t < dag_task_count(r->d); t++) {
    exec_status_t st = exec_op_task_status(r->op, t);
    s->done[t] = st == EXEC_DONE;
    s->inflight[t] = st == EXEC_RUNNING;
    s->attempts[t] = exec_op_task_attempts(r->op, t);
  }
  s->taken = 1;
  cr_assert_eq(exec_op_cancel(r->op, "orchestrator restart"), 0);
  uv_close((uv_handle_t *)timer, NULL);
}

static void snap_event(const exec_event_t *ev, void *data) {
  snap_t *s = data;
  fx_record(ev, &s->r->tr);
  if (ev->kind == EXEC_EV_DONE && ++s->dones == s->at)
    uv_timer_start(&s->timer, snap_take, 0, 0);
}

Test(exec, resume_from_mid_run_snapshot_runs_nothing_twice, .timeout = 20) {
  uint64_t rng = 7;
  run_t r1;
  run_init(&r1, fx_random_graph(&rng, 300, 5, 3, 20), DAG_OP_PROTECT);
  uint32_t nt = dag_task_count(r1.d);
  for (uint32_t t = 0; t < nt; t++)
    r1.f.duration_ms[t] = 1 + (uint32_t)(fx_rand(&rng) % 8);
  snap_t s = {.r = &r1, .at = nt / 3};
  s.done = calloc(nt, 1);
  s.inflight = calloc(nt, 1);
  s.attempts = calloc(nt, sizeof(uint32_t));
  uv_timer_init(&r1.loop, &s.timer);
  s.timer.data = &s;
  cr_assert_eq(exec_op_new(&r1.loop, r1.d, "op1", &r1.opts, &fx_runner_vtable,
                           &r1.f, &r1.op),
               0);
  exec_op_set_event_cb(r1.op, snap_event, &s);
  exec_op_start(r1.op, on_done, &r1);
  uv_run(&r1.loop, UV_RUN_DEFAULT);
  cr_assert(s.taken);
  cr_assert_eq(r1.outcome, EXEC_CANCELLED_OP);
  uint32_t ndone = 0, ninflight = 0;
  for (uint32_t t = 0; t < nt; t++) {
    ndone += s.done[t];
    ninflight += s.inflight[t];
  }
  cr_assert_gt(ndone, 0);
  cr_assert_gt(ninflight, 0);

  /* Second run: same graph and operation id, seeded from the snapshot. */
  run_t r2;
  memset(&r2, 0, sizeof(r2));
  uv_loop_init(&r2.loop);
  r2.g = r1.g;
  r2.d = r1.d;
  r2.opts = r1.opts;
  r2.opts.clock_data = &r2.loop;
  fx_runner_init(&r2.f, &r2.loop, r2.d);
  cr_assert_eq(exec_op_new(&r2.loop, r2.d, "op1", &r2.opts, &fx_runner_vtable,
                           &r2.f, &r2.op),
               0);
  for (uint32_t t = 0; t < nt; t++) {
    if (s.done[t]) {
      exec_resource_t res;
      exec_op_resource(r1.op, dag_task_node(t), &res);
      exec_output_t out = {.state = res.state,
                           .state_len = res.state_len,
                           .metadata = res.metadata,
                           .restored_id = res.restored_id};
      cr_assert_eq(exec_op_seed_done(r2.op, t, &out, 1, 2), 0);
    } else if (s.inflight[t]) {
      cr_assert_eq(exec_op_seed_inflight(r2.op, t, s.attempts[t]), 0);
    }
  }
  exec_op_set_event_cb(r2.op, fx_record, &r2.tr);
  exec_op_start(r2.op, on_done, &r2);
  uv_run(&r2.loop, UV_RUN_DEFAULT);
  cr_assert_eq(r2.done_calls, 1);
  cr_assert_eq(r2.outcome, EXEC_SUCCEEDED);
  cr_assert_eq(r2.f.errors, 0, "seeded outputs reach the S tasks");
  for (uint32_t t = 0; t < nt; t++) {
    cr_assert_eq(exec_op_task_status(r2.op, t), EXEC_DONE);
    if (s.done[t]) {
      cr_assert_eq(r2.f.starts[t], 0, "completed task %u ran again", t);
      cr_assert_eq(count_kind(&r2, t, EXEC_EV_STARTED), 0);
    }
    if (s.inflight[t] && !dag_task_noop(r2.d, t)) {
      cr_assert_eq(r2.f.starts[t], 1);
      cr_assert_eq(r2.f.last_attempt[t], s.attempts[t] + 1);
      cr_assert_str_eq(r2.f.last_key[t], r1.f.last_key[t]);
    }
  }
  exec_op_free(r2.op);
  fx_loop_finish(&r2.loop);
  fx_runner_free(&r2.f);
  fx_trace_free(&r2.tr);
  free(s.done);
  free(s.inflight);
  free(s.attempts);
  run_free(&r1);
}

static void free_in_done(exec_op_t *op, exec_outcome_t outcome, void *data) {
  ++*(int *)data;
  exec_op_free(op);
}

Test(exec, op_can_be_freed_from_its_done_callback, .timeout = 10) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  graph_t *g = fx_seed_graph();
  dag_t *d;
  dag_new(g, DAG_OP_PROTECT, NULL, NULL, &d);
  fx_runner_t f;
  fx_runner_init(&f, &loop, d);
  exec_op_t *op;
  cr_assert_eq(exec_op_new(&loop, d, "x", NULL, &fx_runner_vtable, &f, &op), 0);
  int done = 0;
  cr_assert_eq(exec_op_start(op, free_in_done, &done), 0);
  fx_loop_finish(&loop);
  cr_assert_eq(done, 1);
  fx_runner_free(&f);
  dag_free(d);
  graph_free(g);
}

static int all_noop(void *data, const char *type, dag_op_t op,
                    dag_activity_t act) {
  return 0;
}

Test(exec, all_noop_dag_completes_without_calls, .timeout = 10) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  graph_t *g = fx_seed_graph();
  dag_t *d;
  dag_new(g, DAG_OP_DELETE, all_noop, NULL, &d);
  fx_runner_t f;
  fx_runner_init(&f, &loop, d);
  exec_op_t *op;
  cr_assert_eq(exec_op_new(&loop, d, "x", NULL, &fx_runner_vtable, &f, &op), 0);
  int done = 0;
  cr_assert_eq(exec_op_start(op, count_done, &done), 0);
  cr_assert_eq(done, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(done, 1);
  cr_assert_eq(exec_op_outcome(op), EXEC_SUCCEEDED);
  for (uint32_t t = 0; t < 10; t++)
    cr_assert_eq(f.starts[t], 0);
  exec_op_free(op);
  fx_loop_finish(&loop);
  fx_runner_free(&f);
  dag_free(d);
  graph_free(g);
}

/* An event consumer (the API writes per-resource results from the FAILED
 * event) must already see the failure's reason on the resource. */
typedef struct {
  run_t *r;
  uint32_t node;
  int seen;
  char reason[256];
} reason_probe_t;

static void probe_event(const exec_event_t *ev, void *data) {
  reason_probe_t *p = data;
  fx_record(ev, &p->r->tr);
  if (ev->kind != EXEC_EV_FAILED || ev->node != p->node)
    return;
  exec_resource_t res;
  exec_op_resource(p->r->op, p->node, &res);
  p->seen++;
  snprintf(p->reason, sizeof(p->reason), "%s", res.reason ? res.reason : "");
}

Test(exec, failed_event_sees_the_resource_reason, .timeout = 10) {
  run_t r;
  run_init(&r, fx_seed_graph(), DAG_OP_PROTECT);
  uint32_t t = dag_task(3, DAG_PARALLEL);
  r.f.fail_times[t] = 1;
  r.f.fail_code[t] = EXEC_CODE_INVALID_ARGUMENT;
  reason_probe_t p = {&r, 3, 0, ""};
  cr_assert_eq(
      exec_op_new(&r.loop, r.d, "op1", &r.opts, &fx_runner_vtable, &r.f, &r.op),
      0);
  exec_op_set_event_cb(r.op, probe_event, &p);
  cr_assert_eq(exec_op_start(r.op, on_done, &r), 0);
  uv_run(&r.loop, UV_RUN_DEFAULT);
  cr_assert_eq(p.seen, 1);
  cr_assert(strstr(p.reason, "INVALID_ARGUMENT") != NULL, "reason: '%s'",
            p.reason);
  run_free(&r);
}
