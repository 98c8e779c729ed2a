/*
 * test_ops.c - the operations core (server/ops/ops.h) driven by a plain-C
 * caller, in process, against real plugin processes.
 *
 * - protect_as_grpc: the four C sample plugins (spt_fixture.h) serve a
 *   generated cloud; a protect started with ops_protect() on the core of a
 *   running Orchestrator service is watched by a plain-C sink and, at the
 *   same time, by a WatchOperation stream of that service; both see the
 *   same events, byte for byte, up to OPERATION_FINISHED "available".
 * - errors_as_grpc: the error a plain-C caller gets is the one the gRPC
 *   handler answers with (code and message).
 * - resume: a protect through the fake plugin (tests/api) is stopped once
 *   the plugin's trace shows a Sync call (so the resource's Parallel is
 *   done); a new core on the same store recovers it and finishes it, done
 *   tasks are not called again, and the Sync in flight is re-issued with
 *   its key and the next attempt number.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "harness.h"
#include "limiter.h"
#include "ops.h"
#include "ops_fixture.h"
#include "registry.h"
#include "rt.h"
#include "smaug/v1/orchestrator.smaug.h"
#include "spt_fixture.h"
#include "store.h"

#define MAX_EVENTS 256
#define WAIT_MS    20000

/* --------------------------------------------------------- events */

/* Events in order, each kept packed. */
typedef struct evlist_s {
  size_t n;
  uint8_t *ev[MAX_EVENTS];
  size_t len[MAX_EVENTS];
} evlist_t;

static void evlist_add(evlist_t *l, const Smaug__V1__OperationEvent *e) {
  cr_assert_lt(l->n, MAX_EVENTS);
  l->len[l->n] = protobuf_c_message_get_packed_size(&e->base);
  l->ev[l->n] = malloc(l->len[l->n] + 1);
  cr_assert(l->ev[l->n] != NULL);
  protobuf_c_message_pack(&e->base, l->ev[l->n]);
  l->n++;
}

/* Event i, unpacked (free with protobuf_c_message_free_unpacked). */
static Smaug__V1__OperationEvent *evlist_at(const evlist_t *l, size_t i) {
  Smaug__V1__OperationEvent *e =
      smaug__v1__operation_event__unpack(NULL, l->len[i], l->ev[i]);
  cr_assert(e != NULL);
  return e;
}

static void evlist_free(evlist_t *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->ev[i]);
  l->n = 0;
}

/* A plain-C watcher. */
typedef struct csink_s {
  evlist_t l;
  int ended, err;
  char msg[256];
} csink_t;

static void csink_send(void *data, Smaug__V1__OperationEvent *const *evs,
                       size_t n) {
  csink_t *s = data;
  cr_assert_eq(n, 1, "an unbatched watcher gets one event per message");
  evlist_add(&s->l, evs[0]);
}

static size_t csink_queued(void *data) {
  (void)data;
  return 0; /* taken at once */
}

static void csink_end(void *data, int err, const char *msg) {
  csink_t *s = data;
  cr_assert(!s->ended, "end() called twice");
  s->ended = 1;
  s->err = err;
  snprintf(s->msg, sizeof(s->msg), "%s", msg ? msg : "");
}

static const ops_sink_t csink = {
    .send = csink_send, .queued = csink_queued, .end = csink_end};

static int csink_done(void *data) {
  return ((csink_t *)data)->ended;
}

/* --------------------------------------------- a service in process */

/* smaugd's modules on one loop, wired as server/main.c wires them, with a
 * client channel to its own Orchestrator service. */
typedef struct world_s {
  uv_loop_t loop;
  rt_t *rt;
  rt_server_t *srv;
  store_t *store;
  reg_t *reg;
  api_t *api;
  ops_t *ops;
  rt_channel_t *ch;
  char dir[256];
  int pending; /* plugin registrations not answered yet */
  int reg_failed;
  int stopped;
} world_t;

static void on_plugin(int err, const char *addr, const char *msg, void *data) {
  world_t *w = data;
  if (err) {
    w->reg_failed = 1;
    cr_log_error("plugin %s: %s", addr, msg ? msg : uv_strerror(err));
  }
  w->pending--;
}

static int registered(void *data) {
  return ((world_t *)data)->pending == 0;
}

/* Starts the world on the data dir `dir` (created if missing), registers
 * the NULL-terminated `plugins` and recovers. */
static void world_start(world_t *w, const char *dir, const char *bank_uri,
                        const char *const *plugins) {
  memset(w, 0, sizeof(*w));
  snprintf(w->dir, sizeof(w->dir), "%s", dir);
  mkdir(dir, 0700);
  cr_assert_eq(uv_loop_init(&w->loop), 0);
  cr_assert_eq(store_open(&w->loop, w->dir, &w->store), 0);
  cr_assert_eq(rt_new(&w->loop, &w->rt), 0);
  cr_assert_eq(rt_server_new(w->rt, NULL, &w->srv), 0);
  cr_assert_eq(reg_new(w->rt, &w->reg), 0);
  api_config_t ac = {.bank_uri = bank_uri};
  cr_assert_eq(api_new(w->rt, w->srv, w->store, w->reg, &ac, &w->api), 0);
  w->ops = api_ops(w->api);
  int port = 0;
  cr_assert_eq(rt_server_listen(w->srv, "127.0.0.1:0", &port), 0);
  cr_assert_eq(rt_server_start(w->srv), 0);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  cr_assert_eq(rt_channel_get(w->rt, addr, &w->ch), 0);
  for (size_t i = 0; plugins[i]; i++, w->pending++)
    cr_assert_eq(api_register_plugin(w->api, plugins[i], 0, on_plugin, w), 0);
  cr_assert(of_run_until(&w->loop, registered, w, WAIT_MS));
  cr_assert(!w->reg_failed);
  api_recover(w->api);
}

static void on_server_stopped(rt_server_t *srv, void *data) {
  world_t *w = data;
  (void)srv;
  api_close(w->api);
  reg_close(w->reg);
  w->stopped = 1;
}

static int world_stopped(void *data) {
  return ((world_t *)data)->stopped;
}

/* Stops as smaugd does on SIGTERM: the core first (operations stay
 * running in the store), then the server. */
static void world_stop(world_t *w) {
  api_close(w->api);
  rt_channel_release(w->ch);
  cr_assert_eq(rt_server_shutdown(w->srv, on_server_stopped, w), 0);
  cr_assert(of_run_until(&w->loop, world_stopped, w, WAIT_MS));
  uv_run(&w->loop, UV_RUN_DEFAULT);
  api_free(w->api);
  reg_free(w->reg);
  rt_server_free(w->srv);
  rt_free(w->rt);
  store_close(w->store);
  uv_run(&w->loop, UV_RUN_DEFAULT);
  uv_loop_close(&w->loop);
}

/* Stores a plan of the `n` (type, id) pairs of `res`; its id into `id`. */
static void put_plan(world_t *w, const char *const *res, size_t n, char *id,
                     size_t len) {
  of_put_plan(w->store, w->ops, res, n, id, len);
}

/* Starts a protect of `plan_id` with ops_protect(); fills *st. */
static void protect(world_t *w, const char *plan_id, of_started_t *st) {
  ops_params_t params = {0};
  memset(st, 0, sizeof(*st));
  cr_assert_eq(ops_protect(w->ops, plan_id, &params, of_started, st), 0);
  cr_assert(of_run_until(&w->loop, of_started_done, st, WAIT_MS));
  cr_assert_eq(st->err, 0, "protect: %s", st->msg);
}

/* One call of the service over its channel. */
typedef struct gcall_s {
  evlist_t l; /* WatchOperation's events */
  int ended;
  grpc_status_code code;
  char msg[1024];
} gcall_t;

static void gcall_msg(rt_client_call_t *call, const ProtobufCMessage *msg,
                      void *data) {
  gcall_t *g = data;
  (void)call;
  if (msg->descriptor == &smaug__v1__watch_operation_response__descriptor) {
    const Smaug__V1__WatchOperationResponse *r = (const void *)msg;
    cr_assert(r->event != NULL);
    evlist_add(&g->l, r->event);
  }
}

static void gcall_done(rt_client_call_t *call, grpc_status_code code,
                       const char *message, void *data) {
  gcall_t *g = data;
  (void)call;
  g->ended = 1;
  g->code = code;
  snprintf(g->msg, sizeof(g->msg), "%s", message ? message : "");
}

static int gcall_ended(void *data) {
  return ((gcall_t *)data)->ended;
}

static void gcall_start(world_t *w, size_t method, const ProtobufCMessage *req,
                        gcall_t *g) {
  memset(g, 0, sizeof(*g));
  cr_assert_eq(rt_client_call_start(w->ch,
                                    &smaug_v1_orchestrator_methods[method], req,
                                    NULL, gcall_msg, gcall_done, g, NULL),
               0);
}

typedef struct both_s {
  csink_t *c;
  gcall_t *g;
} both_t;

static int both_ended(void *data) {
  both_t *b = data;
  return b->c->ended && b->g->ended;
}

/* ---------------------------------------------------------------- tests */

/* What a test started, stopped even when it fails. */
static char g_dir[256];
static proc_t g_plug;
static spt_t *g_cloud;

static void setup(void) {
  tmpdir_make(g_dir, sizeof(g_dir));
}

static void teardown(void) {
  if (g_plug.pid)
    proc_stop(&g_plug, SIGTERM);
  if (g_cloud)
    spt_free(g_cloud);
  tmpdir_remove(g_dir);
}

/* <g_dir>/<name> into buf. */
static const char *under(char *buf, size_t len, const char *name) {
  snprintf(buf, len, "%s/%s", g_dir, name);
  return buf;
}

TestSuite(ops, .init = setup, .fini = teardown, .timeout = 120);

Test(ops, protect_as_grpc) {
  spt_t *cloud = g_cloud = spt_new(NULL);
  char dir[512], addrs[4][600], data[300];
  snprintf(dir, sizeof(dir), "%s", spt_cloud(cloud));
  *strrchr(dir, '/') = '\0'; /* the plugins listen beside the cloud */
  static const char *const names[] = {"project", "server", "volume", "image"};
  const char *plugins[5] = {0};
  for (int i = 0; i < 4; i++) {
    snprintf(addrs[i], sizeof(addrs[i]), "unix:%s/%s.sock", dir, names[i]);
    plugins[i] = addrs[i];
  }
  world_t w;
  world_start(&w, under(data, sizeof(data), "data"), spt_bank_uri(cloud),
              plugins);

  char plan_id[64];
  const char *res[] = {"smaug.volume", "p1-vol-1", "smaug.image", "p1-img-1"};
  put_plan(&w, res, 2, plan_id, sizeof(plan_id));
  of_started_t st;
  protect(&w, plan_id, &st);
  cr_assert(strncmp(st.cp_id, "ckp-", 4) == 0);

  /* Both watchers from the start, at the same time. */
  csink_t cs = {0};
  gcall_t gw;
  ops_watcher_t *cw = NULL;
  cr_assert_eq(ops_watch(w.ops, st.op_id, 0, 0, &csink, &cs, &cw), 0);
  Smaug__V1__WatchOperationRequest wr =
      SMAUG__V1__WATCH_OPERATION_REQUEST__INIT;
  wr.operation_id = st.op_id;
  gcall_start(&w, SMAUG_V1_ORCHESTRATOR_WATCH_OPERATION, &wr.base, &gw);
  both_t both = {&cs, &gw};
  cr_assert(of_run_until(&w.loop, both_ended, &both, WAIT_MS));
  cr_assert_eq(cs.err, 0, "C watcher: %s", cs.msg);
  cr_assert_eq(gw.code, GRPC_STATUS_OK, "gRPC watcher: %s", gw.msg);

  /* P and S of two resources, each started and done, then the end. */
  cr_assert_geq(cs.l.n, 9, "%zu events", cs.l.n);
  cr_assert_eq(cs.l.n, gw.l.n, "C %zu events, gRPC %zu", cs.l.n, gw.l.n);
  for (size_t i = 0; i < cs.l.n; i++) {
    cr_assert_eq(cs.l.len[i], gw.l.len[i], "event %zu differs", i);
    cr_assert(memcmp(cs.l.ev[i], gw.l.ev[i], cs.l.len[i]) == 0,
              "event %zu differs", i);
    Smaug__V1__OperationEvent *e = evlist_at(&cs.l, i);
    cr_assert_eq(e->sequence, i + 1, "sequence without a gap");
    cr_assert_str_eq(e->operation_id, st.op_id);
    if (i + 1 == cs.l.n) {
      cr_assert_eq(e->kind,
                   SMAUG__V1__EVENT_KIND__EVENT_KIND_OPERATION_FINISHED);
      cr_assert_str_eq(e->final_status, "available", "%s", e->message);
    }
    protobuf_c_message_free_unpacked(&e->base, NULL);
  }
  evlist_free(&cs.l);
  evlist_free(&gw.l);
  world_stop(&w);
}

Test(ops, errors_as_grpc) {
  char data[300];
  const char *pa[] = {"--types", "t.vol", NULL};
  cr_assert_eq(plugin_start(&g_plug, g_dir, "fake", pa), 0);
  const char *plugins[] = {g_plug.addr, NULL};
  world_t w;
  world_start(&w, under(data, sizeof(data), "data"), "file:///nonexistent",
              plugins);

  /* An unknown plan, both ways. */
  of_started_t st = {0};
  ops_params_t params = {0};
  cr_assert_eq(
      ops_protect(w.ops, "pln-0123456789abcdef", &params, of_started, &st), 0);
  cr_assert(st.done);
  cr_assert_eq(st.err, OPS_ENOTFOUND);
  cr_assert_eq(ops_err_status(st.err), GRPC_STATUS_NOT_FOUND);
  gcall_t g;
  Smaug__V1__ProtectRequest pr = SMAUG__V1__PROTECT_REQUEST__INIT;
  pr.plan_id = "pln-0123456789abcdef";
  gcall_start(&w, SMAUG_V1_ORCHESTRATOR_PROTECT, &pr.base, &g);
  cr_assert(of_run_until(&w.loop, gcall_ended, &g, WAIT_MS));
  cr_assert_eq(g.code, GRPC_STATUS_NOT_FOUND);
  cr_assert_str_eq(g.msg, st.msg);

  /* A plan whose type no plugin serves: FAILED_PRECONDITION. */
  char plan_id[64];
  const char *res[] = {"t.nope", "r1"};
  put_plan(&w, res, 1, plan_id, sizeof(plan_id));
  memset(&st, 0, sizeof(st));
  cr_assert_eq(ops_protect(w.ops, plan_id, &params, of_started, &st), 0);
  cr_assert(st.done);
  cr_assert_eq(st.err, OPS_EPRECOND);
  cr_assert_str_eq(st.msg,
                   "plan.resources[0].type: no plugin provides resource type "
                   "t.nope");
  pr.plan_id = plan_id;
  gcall_start(&w, SMAUG_V1_ORCHESTRATOR_PROTECT, &pr.base, &g);
  cr_assert(of_run_until(&w.loop, gcall_ended, &g, WAIT_MS));
  cr_assert_eq(g.code, GRPC_STATUS_FAILED_PRECONDITION);
  cr_assert_str_eq(g.msg, st.msg);

  /* Cancelling and watching an unknown operation. */
  memset(&st, 0, sizeof(st));
  cr_assert_eq(ops_cancel(w.ops, "op-0123", NULL, of_started, &st), 0);
  cr_assert(st.done);
  cr_assert_eq(st.err, OPS_ENOTFOUND);
  cr_assert_str_eq(st.msg, "operation op-0123 not found");
  csink_t cs = {0};
  cr_assert_eq(ops_watch(w.ops, "op-0123", 0, 0, &csink, &cs, NULL), 0);
  cr_assert(cs.ended);
  cr_assert_eq(cs.err, OPS_ENOTFOUND);
  cr_assert_eq(ops_protect(w.ops, NULL, &params, of_started, &st), UV_EINVAL);

  world_stop(&w);
}

/* ------------------------------------------------------------- resume */

typedef struct trace_s {
  char path[600];
  char *lines[MAX_EVENTS];
  size_t n;
} trace_t;

/* Reads the trace file again: one "<P|S> <key> <attempt>" per call. */
static void trace_read(trace_t *t) {
  for (size_t i = 0; i < t->n; i++)
    free(t->lines[i]);
  t->n = 0;
  FILE *f = fopen(t->path, "r");
  if (f == NULL)
    return;
  char line[512];
  while (t->n < MAX_EVENTS && fgets(line, sizeof(line), f)) {
    line[strcspn(line, "\n")] = '\0';
    t->lines[t->n++] = strdup(line);
  }
  fclose(f);
}

static int trace_has_sync(void *data) {
  trace_t *t = data;
  trace_read(t);
  for (size_t i = 0; i < t->n; i++)
    if (t->lines[i][0] == 'S')
      return 1;
  return 0;
}

/* Index of the first line from `from` that starts with `prefix`, or -1. */
static long trace_find(const trace_t *t, size_t from, const char *prefix) {
  for (size_t i = from; i < t->n; i++)
    if (strncmp(t->lines[i], prefix, strlen(prefix)) == 0)
      return (long)i;
  return -1;
}

Test(ops, resume) {
  trace_t tr = {0};
  under(tr.path, sizeof(tr.path), "trace");
  const char *pa[] = {"--types", "t.vol", "--delay-ms", "300",
                      "--trace", tr.path, NULL};
  cr_assert_eq(plugin_start(&g_plug, g_dir, "fake", pa), 0);
  const char *plugins[] = {g_plug.addr, NULL};
  char bank[300], data_dir[300], plan_id[64];
  snprintf(bank, sizeof(bank), "file://%s/bank", g_dir);
  under(data_dir, sizeof(data_dir), "data");

  world_t w;
  world_start(&w, data_dir, bank, plugins);
  const char *res[] = {"t.vol", "r1", "t.vol", "r2", "t.vol", "r3"};
  put_plan(&w, res, 3, plan_id, sizeof(plan_id));
  of_started_t st;
  protect(&w, plan_id, &st);
  csink_t before = {0};
  cr_assert_eq(ops_watch(w.ops, st.op_id, 0, 0, &csink, &before, NULL), 0);

  /* A Sync call means that resource's Parallel is done: stop there. */
  cr_assert(of_run_until(&w.loop, trace_has_sync, &tr, WAIT_MS));
  world_stop(&w);
  cr_assert(before.ended);
  cr_assert_eq(before.err, OPS_EUNAVAIL);
  cr_assert_str_eq(before.msg, "smaugd is stopping");
  trace_read(&tr);
  size_t n_before = tr.n;

  /* What was committed before the stop: the tasks done, and no end. */
  char done[8][600];
  size_t n_done = 0;
  for (size_t i = 0; i < before.l.n; i++) {
    Smaug__V1__OperationEvent *e = evlist_at(&before.l, i);
    cr_assert_neq(e->kind,
                  SMAUG__V1__EVENT_KIND__EVENT_KIND_OPERATION_FINISHED);
    if (e->kind == SMAUG__V1__EVENT_KIND__EVENT_KIND_DONE && n_done < 8)
      snprintf(
          done[n_done++], sizeof(done[0]), "%c %s/%s/%s/%s",
          e->activity == SMAUG__V1__ACTIVITY__ACTIVITY_PARALLEL ? 'P' : 'S',
          st.op_id, e->resource->type, e->resource->id,
          e->activity == SMAUG__V1__ACTIVITY__ACTIVITY_PARALLEL ? "parallel"
                                                                : "sync");
    protobuf_c_message_free_unpacked(&e->base, NULL);
  }
  cr_assert_geq(n_done, 1, "a Parallel was done before the stop");

  /* A new core on the same store resumes and finishes the protect. */
  world_start(&w, data_dir, bank, plugins);
  csink_t after = {0};
  cr_assert_eq(ops_watch(w.ops, st.op_id, 0, 0, &csink, &after, NULL), 0);
  cr_assert(of_run_until(&w.loop, csink_done, &after, WAIT_MS));
  cr_assert_eq(after.err, 0, "%s", after.msg);
  cr_assert_gt(after.l.n, before.l.n);
  for (size_t i = 0; i < before.l.n; i++)
    cr_assert(after.l.len[i] == before.l.len[i] &&
                  memcmp(after.l.ev[i], before.l.ev[i], before.l.len[i]) == 0,
              "event %zu changed across the restart", i);
  Smaug__V1__OperationEvent *last = evlist_at(&after.l, after.l.n - 1);
  cr_assert_eq(last->kind,
               SMAUG__V1__EVENT_KIND__EVENT_KIND_OPERATION_FINISHED);
  cr_assert_str_eq(last->final_status, "available", "%s", last->message);
  protobuf_c_message_free_unpacked(&last->base, NULL);
  world_stop(&w);

  /* The trace: nothing done was called again, and each Sync that was in
   * flight came again with its key. (Its attempt number starts again at
   * 1: the store keeps no record of an attempt in flight to seed.) */
  trace_read(&tr);
  for (size_t i = 0; i < n_done; i++)
    cr_assert_eq(trace_find(&tr, n_before, done[i]), -1,
                 "%s was done and was called again", done[i]);
  for (size_t i = 0; i < n_before; i++) {
    if (tr.lines[i][0] != 'S')
      continue;
    char key[600];
    unsigned attempt;
    cr_assert_eq(sscanf(tr.lines[i] + 2, "%599s %u", key, &attempt), 2);
    int was_done = 0;
    for (size_t k = 0; k < n_done; k++)
      was_done |= strcmp(done[k] + 2, key) == 0;
    if (was_done)
      continue; /* it ended before the stop */
    char again[620];
    snprintf(again, sizeof(again), "S %s ", key);
    long j = trace_find(&tr, n_before, again);
    cr_assert_geq(j, 0, "%s in flight at the stop was not re-issued", key);
    unsigned next;
    cr_assert_eq(sscanf(tr.lines[j] + strlen(again), "%u", &next), 1);
    cr_assert_geq(next, 1, "%s: attempt %u after %u", key, next, attempt);
  }
  evlist_free(&before.l);
  evlist_free(&after.l);
  for (size_t i = 0; i < tr.n; i++)
    free(tr.lines[i]);
}
