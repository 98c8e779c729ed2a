/*
 * test_ops_seam.c - the operations core (server/ops/) over a fake
 * ops_plugins_t (ops_plugins.h): no registry, no discovery, no gRPC
 * runner, no plugin process. The program links the core and the store
 * only, so it also shows that the core runs without the plugin layer.
 *
 * - protect: a plan is protected with ops_protect(); the fake build gets
 *   the plan's resources with discover set, the fake runner is made once
 *   from the op's calls (checkpoint, bank) and runs P and S of every
 *   resource, a plain-C watcher sees OPERATION_FINISHED "available", and
 *   the runner context is released after the run; the core listens for
 *   plugins serving again while it is open and stops at ops_close.
 * - build_fails: the build reports UNAVAILABLE (a plain int code): the
 *   operation ends in error with "UNAVAILABLE: <why>", and no activity runs.
 * - build_refused: the build returns an error (and never calls back): the
 *   operation ends in error with "INTERNAL: cannot start".
 * - no_plugin: resolve says UV_ENOENT for a type: ops_protect reports
 *   OPS_EPRECOND with the table's reason, and nothing is built.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops.h"
#include "ops_fixture.h"
#include "store.h"

#define WAIT_MS 10000
#define MAX_LOG 32

/* ------------------------------------------------------ the fake table */

typedef struct fake_s {
  uv_loop_t *loop;
  /* script */
  int build_code;        /* 0: build the graph; else report this code */
  int build_return;      /* non-zero: build returns it and never calls back */
  const char *no_plugin; /* resolve says UV_ENOENT for this type */
  /* trace */
  int builds, discover, built_called;
  int runners_made, runners_freed;
  char checkpoint_id[64], bank_uri[256];
  int listening; /* on_available set and not cleared */
  char log[MAX_LOG][160];
  int n_log;
  /* a build waiting for its callback */
  uv_timer_t timer;
  graph_t *g;
  ops_built_cb cb;
  void *cb_data;
} fake_t;

static int f_resolve(void *data, const char *type, char *why, size_t len) {
  fake_t *f = data;
  if (f->no_plugin && strcmp(type, f->no_plugin) == 0) {
    snprintf(why, len, "fake: no plugin provides resource type %s", type);
    return UV_ENOENT;
  }
  return 0;
}

static int f_implemented(void *data, const char *type, dag_op_t kind,
                         dag_activity_t act) {
  (void)data, (void)type, (void)kind, (void)act;
  return 1;
}

static void f_limits(void *data, const char *type, const char **plugin,
                     unsigned *plugin_limit, unsigned *type_limit) {
  (void)data, (void)type;
  *plugin = "fake";
  *plugin_limit = 0;
  *type_limit = 0;
}

static void f_recheck(void *data, const char *type) {
  (void)data, (void)type;
}

static void f_on_available(void *data, ops_available_cb cb, void *cb_data) {
  fake_t *f = data;
  f->listening = cb != NULL && cb_data != NULL;
}

/* Delivers a build from the loop, never from inside build(). */
static void f_deliver(uv_timer_t *t) {
  fake_t *f = t->data;
  f->built_called++;
  if (f->build_code != 0) {
    f->cb(NULL, f->build_code, "plugin fake (unix:/nowhere) is unavailable",
          NULL, f->cb_data);
    return;
  }
  graph_t *g = f->g;
  f->g = NULL;
  f->cb(g, 0, NULL, NULL, f->cb_data);
}

static int f_build(void *data, Smaug__V1__Resource *const *res, size_t n,
                   Smaug__V1__ResourceEdge *const *edges, size_t n_edges,
                   const Smaug__V1__ParameterSet *params, int discover,
                   ops_built_cb cb, void *cb_data) {
  fake_t *f = data;
  (void)edges, (void)params;
  f->builds++;
  f->discover = discover;
  if (f->build_return)
    return f->build_return;
  cr_assert_eq(n_edges, 0);
  cr_assert_eq(graph_new(&f->g), 0);
  char err[256];
  for (size_t i = 0; i < n; i++)
    cr_assert_eq(graph_add_node(f->g, res[i]->type, res[i]->id, res[i]->name,
                                NULL, NULL, NULL, err, sizeof(err)),
                 0, "%s", err);
  cr_assert_eq(graph_validate(f->g, NULL, NULL, err, sizeof(err)), 0, "%s",
               err);
  f->cb = cb;
  f->cb_data = cb_data;
  uv_timer_start(&f->timer, f_deliver, 0, 0);
  return 0;
}

/* The runner: every activity succeeds at once, and is logged. */
static int r_start(void *rdata, exec_activity_t *a) {
  fake_t *f = rdata;
  const graph_node_t *node = exec_activity_node(a);
  cr_assert_lt(f->n_log, MAX_LOG);
  snprintf(f->log[f->n_log++], sizeof(f->log[0]), "%s %s/%s",
           exec_activity_activity(a) == DAG_PARALLEL ? "P" : "S", node->type,
           node->id);
  exec_activity_complete(a, NULL);
  return 0;
}

static void r_cancel(void *rdata, exec_activity_t *a) {
  (void)rdata;
  exec_activity_fail(a, EXEC_CODE_CANCELLED, "cancelled");
}

static void r_cancel_operation(void *rdata, const char *op_id) {
  (void)rdata, (void)op_id;
}

static const exec_runner_t fake_runner = {.start = r_start,
                                          .cancel = r_cancel,
                                          .cancel_operation =
                                              r_cancel_operation};

static int f_runner_new(void *data, const ops_calls_t *calls,
                        const exec_runner_t **runner, void **rdata) {
  fake_t *f = data;
  f->runners_made++;
  snprintf(f->checkpoint_id, sizeof(f->checkpoint_id), "%s",
           calls->checkpoint_id);
  snprintf(f->bank_uri, sizeof(f->bank_uri), "%s", calls->bank_uri);
  *runner = &fake_runner;
  *rdata = f;
  return 0;
}

static void f_runner_free(void *data, void *rdata) {
  fake_t *f = data;
  cr_assert_eq(rdata, f);
  f->runners_freed++;
}

static const ops_plugins_t fake_table = {.resolve = f_resolve,
                                         .implemented = f_implemented,
                                         .limits = f_limits,
                                         .recheck = f_recheck,
                                         .on_available = f_on_available,
                                         .build = f_build,
                                         .runner_new = f_runner_new,
                                         .runner_free = f_runner_free};

/* ------------------------------------------------------------- world */

typedef struct world_s {
  uv_loop_t loop;
  store_t *store;
  ops_t *ops;
  fake_t f;
  char dir[64];
} world_t;

static world_t w;

static int run_until(int (*until)(void *), void *data) {
  return of_run_until(&w.loop, until, data, WAIT_MS);
}

static void setup(void) {
  memset(&w, 0, sizeof(w));
  snprintf(w.dir, sizeof(w.dir), "/tmp/smaug-ops-seam-XXXXXX");
  cr_assert(mkdtemp(w.dir) != NULL);
  cr_assert_eq(uv_loop_init(&w.loop), 0);
  cr_assert_eq(store_open(&w.loop, w.dir, &w.store), 0);
  w.f.loop = &w.loop;
  uv_timer_init(&w.loop, &w.f.timer);
  w.f.timer.data = &w.f;
  ops_config_t oc = {.loop = &w.loop,
                     .store = w.store,
                     .plugins = &fake_table,
                     .plugins_data = &w.f,
                     .bank_uri = "file:///seam-bank"};
  cr_assert_eq(ops_new(&oc, &w.ops), 0);
  cr_assert(w.f.listening, "the core listens for plugins serving again");
  ops_recover(w.ops);
}

static void teardown(void) {
  ops_close(w.ops);
  cr_assert(!w.f.listening, "ops_close stops listening");
  uv_close((uv_handle_t *)&w.f.timer, NULL);
  graph_free(w.f.g);
  uv_run(&w.loop, UV_RUN_DEFAULT);
  ops_free(w.ops);
  store_close(w.store);
  uv_run(&w.loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&w.loop), 0);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", w.dir);
  cr_assert_eq(system(cmd), 0);
}

/* Stores a plan of resources type/id for the NULL-terminated pairs. */
static void put_plan(const char *const *pairs, char *id, size_t len) {
  size_t n = 0;
  while (pairs[2 * n])
    n++;
  of_put_plan(w.store, w.ops, pairs, n, id, len);
}

/* A plain-C watcher keeping the final event. */
typedef struct sink_s {
  int n, ended, err;
  int finished; /* saw OPERATION_FINISHED */
  char final_status[32], message[512];
} sink_t;

static void s_send(void *data, Smaug__V1__OperationEvent *const *evs,
                   size_t n) {
  sink_t *s = data;
  for (size_t i = 0; i < n; i++, s->n++)
    if (evs[i]->kind == SMAUG__V1__EVENT_KIND__EVENT_KIND_OPERATION_FINISHED) {
      s->finished = 1;
      snprintf(s->final_status, sizeof(s->final_status), "%s",
               evs[i]->final_status);
      snprintf(s->message, sizeof(s->message), "%s", evs[i]->message);
    }
}

static size_t s_queued(void *data) {
  (void)data;
  return 0;
}

static void s_end(void *data, int err, const char *msg) {
  sink_t *s = data;
  (void)msg;
  cr_assert(!s->ended, "end() called twice");
  s->ended = 1;
  s->err = err;
}

static const ops_sink_t sink = {
    .send = s_send, .queued = s_queued, .end = s_end};

static int sink_ended(void *data) {
  return ((sink_t *)data)->ended;
}

/* Protects a plan of `pairs` and follows it to its end. */
static void protect_and_watch(const char *const *pairs, of_started_t *st,
                              sink_t *s) {
  char plan_id[48];
  put_plan(pairs, plan_id, sizeof(plan_id));
  ops_params_t params = {0};
  memset(st, 0, sizeof(*st));
  memset(s, 0, sizeof(*s));
  cr_assert_eq(ops_protect(w.ops, plan_id, &params, of_started, st), 0);
  cr_assert(run_until(of_started_done, st));
  cr_assert_eq(st->err, 0, "protect: %s", st->msg);
  cr_assert_eq(ops_watch(w.ops, st->op_id, 0, 0, &sink, s, NULL), 0);
  cr_assert(run_until(sink_ended, s), "the operation did not end");
  cr_assert_eq(s->err, 0);
  cr_assert(s->finished);
}

static int log_has(const char *line) {
  for (int i = 0; i < w.f.n_log; i++)
    if (strcmp(w.f.log[i], line) == 0)
      return 1;
  return 0;
}

static int runner_freed(void *data) {
  (void)data;
  return w.f.runners_freed == 1;
}

TestSuite(ops_seam, .init = setup, .fini = teardown, .timeout = 30);

Test(ops_seam, protect) {
  static const char *const pairs[] = {"fake.disk", "d1", "fake.disk", "d2",
                                      NULL};
  of_started_t st;
  sink_t s;
  protect_and_watch(pairs, &st, &s);
  cr_expect_str_eq(s.final_status, "available", "message: %s", s.message);
  cr_expect_eq(w.f.builds, 1);
  cr_expect(w.f.discover, "a plan without edges is discovered");
  cr_expect_eq(w.f.runners_made, 1);
  cr_expect_str_eq(w.f.checkpoint_id, st.cp_id);
  cr_expect_str_eq(w.f.bank_uri, "file:///seam-bank");
  cr_expect_eq(w.f.n_log, 4);
  cr_expect(log_has("P fake.disk/d1") && log_has("S fake.disk/d1"));
  cr_expect(log_has("P fake.disk/d2") && log_has("S fake.disk/d2"));
  /* The runner context goes once the executor was freed. */
  cr_expect(run_until(runner_freed, NULL), "runner_free: %d",
            w.f.runners_freed);
}

Test(ops_seam, build_fails) {
  static const char *const pairs[] = {"fake.disk", "d1", NULL};
  w.f.build_code = EXEC_CODE_UNAVAILABLE;
  of_started_t st;
  sink_t s;
  protect_and_watch(pairs, &st, &s);
  cr_expect_str_eq(s.final_status, "error");
  cr_expect(strstr(s.message,
                   "UNAVAILABLE: plugin fake (unix:/nowhere) is unavailable"),
            "message: %s", s.message);
  cr_expect_eq(w.f.built_called, 1);
  cr_expect_eq(w.f.runners_made, 0);
  cr_expect_eq(w.f.n_log, 0);
}

Test(ops_seam, build_refused) {
  static const char *const pairs[] = {"fake.disk", "d1", NULL};
  w.f.build_return = UV_ENOMEM;
  of_started_t st;
  sink_t s;
  protect_and_watch(pairs, &st, &s);
  cr_expect_str_eq(s.final_status, "error");
  cr_expect(strstr(s.message, "INTERNAL: cannot start"), "message: %s",
            s.message);
  cr_expect_eq(w.f.builds, 1);
  cr_expect_eq(w.f.built_called, 0);
  cr_expect_eq(w.f.n_log, 0);
}

Test(ops_seam, no_plugin) {
  static const char *const pairs[] = {"fake.disk", "d1", "fake.gone", "g1",
                                      NULL};
  char plan_id[48];
  w.f.no_plugin = "fake.gone";
  put_plan(pairs, plan_id, sizeof(plan_id));
  ops_params_t params = {0};
  of_started_t st = {0};
  cr_assert_eq(ops_protect(w.ops, plan_id, &params, of_started, &st), 0);
  cr_assert(run_until(of_started_done, &st));
  cr_expect_eq(st.err, OPS_EPRECOND);
  cr_expect(strstr(st.msg, "fake: no plugin provides resource type fake.gone"),
            "msg: %s", st.msg);
  cr_expect_eq(w.f.builds, 0);
}
