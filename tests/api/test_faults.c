/*
 * test_faults.c - integration suite for smaugd under faults: failing and
 * dying plugins, SIGKILL of smaugd mid-protect and resume, the plugin
 * registry's refusals, unix sockets, the operation limit and cancel.
 * Ordering is checked on recorded event streams and plugin call traces,
 * never on sleeps: a process is signalled only once the committed events
 * show the operation running (a task started and not finished), and a
 * resume is checked against what those events showed.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define M(name) SMAUG_V1_ORCHESTRATOR_##name
#define EV(k)   SMAUG__V1__EVENT_KIND__EVENT_KIND_##k

static char dir[256];
static proc_t smaugd, plug, plug2;
static client_t *cl;

static void setup(void) {
  tmpdir_make(dir, sizeof(dir));
}

static void teardown(void) {
  int st =
      procs_stop_all(&cl, &smaugd, (proc_t *const[]){&plug, &plug2, NULL}, dir);
  cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
            "smaugd did not stop cleanly: status %d (see %s)", st, smaugd.log);
}

TestSuite(faults, .init = setup, .fini = teardown, .timeout = 90);

static void start_plugin(proc_t *p, const char *name, const char *types,
                         const char *const *more) {
  const char *a[32] = {"--types", types, "--lists-dependents"};
  size_t n = 3;
  for (size_t i = 0; more && more[i]; i++)
    a[n++] = more[i];
  a[n] = NULL;
  cr_assert_eq(plugin_start(p, dir, name, a), 0, "start %s", name);
}

static void start_smaugd(const char *listen, const char *const *extra,
                         size_t plugins) {
  cr_assert_eq(smaugd_start(&smaugd, dir, listen, extra), 0, "smaugd");
  client_free(cl);
  cl = client_new(smaugd.addr);
  cr_assert_not_null(cl);
  cr_assert_eq(client_wait_plugins(cl, plugins), 0, "plugins");
}

static int make_plan(Smaug__V1__Resource **rp, size_t n,
                     Smaug__V1__ParameterSet *ps, char *id, char *msg,
                     size_t len) {
  return client_create_plan(cl, "faults", rp, n, ps, id, msg, len);
}

/* Roots "type:id:children" triples. */
static void plan_of(const char *const *spec, size_t n, char *id) {
  Smaug__V1__Resource rs[16], *rp[16];
  Smaug__V1__Resource__ExtraEntry ex[16], *exp[16];
  char buf[16][256];
  for (size_t i = 0; i < n; i++) {
    snprintf(buf[i], sizeof(buf[i]), "%s", spec[i]);
    char *type = buf[i], *rid = strchr(type, ':');
    *rid++ = '\0';
    char *kids = strchr(rid, ':');
    if (kids)
      *kids++ = '\0';
    smaug__v1__resource__init(&rs[i]);
    rs[i].type = type;
    rs[i].id = rid;
    if (kids && *kids) {
      smaug__v1__resource__extra_entry__init(&ex[i]);
      ex[i].key = "children";
      ex[i].value = kids;
      exp[i] = &ex[i];
      rs[i].n_extra = 1;
      rs[i].extra = &exp[i];
    }
    rp[i] = &rs[i];
  }
  char msg[512];
  cr_assert_eq(make_plan(rp, n, NULL, id, msg, sizeof(msg)), 0,
               "CreatePlan: %s", msg);
}

static int protect(const char *plan, char *cp, char *op, char *msg,
                   size_t len) {
  return client_protect(cl, plan, cp, op, msg, len);
}

static Smaug__V1__Checkpoint *get_cp(const char *id) {
  int code;
  char msg[512];
  Smaug__V1__Checkpoint *cp =
      client_get_checkpoint(cl, id, &code, msg, sizeof(msg));
  cr_assert_eq(code, 0, "GetCheckpoint: %s", msg);
  return cp;
}

static const Smaug__V1__ResourceResult *
result_of(const Smaug__V1__Checkpoint *c, const char *id) {
  return result_find(c->results, c->n_results, id);
}

Test(faults, failed_resource_has_reason_and_skips_parents) {
  const char *fail[] = {"--fail-id", "v2", NULL};
  start_plugin(&plug, "fake", "t.server,t.volume", fail);
  const char *extra[] = {"--plugin", plug.addr, NULL};
  start_smaugd(NULL, extra, 1);
  const char *spec[] = {"t.server:s1:t.volume/v1;t.volume/v2",
                        "t.server:s2:t.volume/v3"};
  char plan[64], cp[64], op[64], msg[512];
  plan_of(spec, 2, plan);
  cr_assert_eq(protect(plan, cp, op, msg, sizeof(msg)), 0, "%s", msg);
  cr_assert_str_eq(client_wait(cl, op), "error");
  Smaug__V1__Checkpoint *c = get_cp(cp);
  cr_expect_eq(c->status,
               SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_ERROR);
  const Smaug__V1__ResourceResult *v2 = result_of(c, "v2");
  cr_assert_not_null(v2);
  cr_expect_eq(v2->status, SMAUG__V1__TASK_STATUS__TASK_STATUS_FAILED);
  cr_expect(strstr(v2->reason, "injected failure for v2") &&
                strstr(v2->reason, "plugin fake"),
            "reason: %s", v2->reason);
  const Smaug__V1__ResourceResult *s1 = result_of(c, "s1");
  cr_expect_eq(s1->status, SMAUG__V1__TASK_STATUS__TASK_STATUS_SKIPPED);
  cr_expect_str_neq(s1->reason, "");
  /* The independent branch finished. */
  cr_expect_eq(result_of(c, "s2")->status,
               SMAUG__V1__TASK_STATUS__TASK_STATUS_DONE);
  cr_expect_eq(result_of(c, "v3")->status,
               SMAUG__V1__TASK_STATUS__TASK_STATUS_DONE);
  cr_expect(strstr(c->reason, "t.volume#v2") != NULL, "summary: %s", c->reason);
  protobuf_c_message_free_unpacked(&c->base, NULL);

  /* Only an available checkpoint can be restored. */
  Smaug__V1__RestoreRequest rq = SMAUG__V1__RESTORE_REQUEST__INIT;
  rq.checkpoint_id = cp;
  int code =
      client_call(cl, M(RESTORE), &rq.base, NULL, NULL, msg, sizeof(msg));
  cr_expect_eq(code, GRPC_STATUS_FAILED_PRECONDITION, "%s", msg);
}

/* Reads the trace file: counts calls per idempotency key. */
static int trace_count(const char *path, const char *key) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  char line[1024], k[900];
  unsigned att;
  char act;
  int n = 0;
  while (fgets(line, sizeof(line), f))
    if (sscanf(line, "%c %899s %u", &act, k, &att) == 3 && strcmp(k, key) == 0)
      n++;
  fclose(f);
  return n;
}

/* The idempotency key of an event's task, as the plugin traces it. */
static void task_key(const Smaug__V1__OperationEvent *e, char *key,
                     size_t len) {
  snprintf(key, len, "%s/%s/%s/%s", e->operation_id, e->resource->type,
           e->resource->id,
           e->activity == SMAUG__V1__ACTIVITY__ACTIVITY_PARALLEL ? "parallel"
                                                                 : "sync");
}

/* What the committed events of an operation show: the tasks finished,
 * and the tasks started after the last one finished and not finished
 * since. The fake plugin gives every activity the same delay, so those
 * have most of it still to run, while a task started earlier may be about
 * to end. */
typedef struct opstate_s {
  size_t need_done;       /* in: finished tasks to wait for */
  const char *running_id; /* in: a resource that must be running, or NULL */
  char done[32][300];
  size_t n_done;
  char running[32][300]; /* keys of the tasks started after the last DONE */
  size_t n_running;
  int has_running_id; /* a task of running_id is running */
  uint64_t last_seq;
  int finished; /* OPERATION_FINISHED seen */
} opstate_t;

static int task_ended(Smaug__V1__EventKind k) {
  return k == EV(DONE) || k == EV(FAILED) || k == EV(SKIPPED) ||
         k == EV(CANCELLED);
}

/* client_until_fn: rebuilds `data` (an opstate_t) from the events, and
 * holds once the operation is unfinished and has at least need_done
 * finished tasks and a running task: of running_id when that is set, else
 * one started after the last DONE. */
static int op_running(Smaug__V1__WatchOperationResponse *const *evs, size_t n,
                      void *data) {
  opstate_t *s = data;
  uint64_t started[32], last_done = 0;
  char res[32][64];
  s->n_done = s->n_running = 0;
  s->finished = s->has_running_id = 0;
  s->last_seq = n ? evs[n - 1]->event->sequence : 0;
  for (size_t i = 0; i < n; i++) {
    const Smaug__V1__OperationEvent *e = evs[i]->event;
    if (e->kind == EV(OPERATION_FINISHED)) {
      s->finished = 1;
      continue;
    }
    if (e->resource == NULL)
      continue;
    char key[300];
    task_key(e, key, sizeof(key));
    if (e->kind == EV(STARTED) && s->n_running < 32) {
      started[s->n_running] = e->sequence;
      snprintf(res[s->n_running], 64, "%s", e->resource->id);
      snprintf(s->running[s->n_running++], 300, "%s", key);
    } else if (task_ended(e->kind)) {
      for (size_t k = 0; k < s->n_running; k++)
        if (strcmp(s->running[k], key) == 0) {
          size_t last = --s->n_running;
          started[k] = started[last];
          memcpy(res[k], res[last], 64);
          memcpy(s->running[k], s->running[last], 300);
          break;
        }
      if (e->kind == EV(DONE) && s->n_done < 32) {
        snprintf(s->done[s->n_done++], 300, "%s", key);
        last_done = e->sequence;
      }
    }
  }
  size_t fresh = 0;
  for (size_t k = 0; k < s->n_running; k++) {
    if (s->running_id && strcmp(res[k], s->running_id) == 0)
      s->has_running_id = 1;
    if (started[k] > last_done)
      memmove(s->running[fresh++], s->running[k], 300);
  }
  s->n_running = fresh;
  return !s->finished && s->n_done >= s->need_done &&
         (s->running_id ? s->has_running_id : fresh > 0);
}

/* Waits (up to 30 s) until the committed events of `op` show it running
 * as `s` asks (see op_running); fails the test otherwise. A signal sent
 * right after lands while the operation runs: the tasks seen running take
 * hundreds of milliseconds more in the fake plugin. */
static void wait_running(const char *op, opstate_t *s) {
  Smaug__V1__WatchOperationResponse **evs = NULL;
  size_t n = 0;
  int met = client_watch_until(cl, op, op_running, s, 30000, &evs, &n);
  resps_free((ProtobufCMessage **)evs, n);
  cr_assert(met,
            "operation %s never showed a running task%s%s with %zu done "
            "(seen: %zu done, %zu running, finished %d)",
            op, s->running_id ? " of " : "", s->running_id ? s->running_id : "",
            s->need_done, s->n_done, s->n_running, s->finished);
}

/* After a restart: the operation `op` ended, every task seen done before
 * the signal ran exactly once (it was not run again), and every task seen
 * freshly running was started again after the restart (events past
 * s->last_seq) and finished. Sequence numbers run on without a gap. */
static void expect_resumed(const char *op, const opstate_t *s,
                           const char *trace) {
  for (size_t k = 0; k < s->n_done; k++)
    cr_expect_eq(trace_count(trace, s->done[k]), 1, "%s ran %d times",
                 s->done[k], trace_count(trace, s->done[k]));
  Smaug__V1__WatchOperationResponse **evs = NULL;
  size_t n = 0;
  cr_assert_eq(client_watch(cl, op, 0, &evs, &n), 0);
  for (size_t k = 0; k < n; k++)
    cr_assert_eq(evs[k]->event->sequence, k + 1);
  cr_expect_gt(n, s->last_seq);
  for (size_t r = 0; r < s->n_running; r++) {
    int restarted = 0, done_after = 0;
    for (size_t k = s->last_seq; k < n; k++) {
      const Smaug__V1__OperationEvent *e = evs[k]->event;
      if (e->resource == NULL)
        continue;
      char key[300];
      task_key(e, key, sizeof(key));
      if (strcmp(key, s->running[r]) != 0)
        continue;
      restarted |= e->kind == EV(STARTED);
      done_after |= e->kind == EV(DONE);
    }
    cr_expect(restarted,
              "%s was running at the signal but did not start "
              "again after the restart",
              s->running[r]);
    cr_expect(done_after, "%s did not finish after the restart", s->running[r]);
  }
  resps_free((ProtobufCMessage **)evs, n);
}

Test(faults, sigkill_mid_protect_resumes_to_available) {
  char trace[300];
  snprintf(trace, sizeof(trace), "%s/trace", dir);
  const char *slow[] = {"--delay-ms", "400", "--trace", trace, NULL};
  start_plugin(&plug, "fake", "t.server,t.volume", slow);
  const char *extra[] = {"--plugin", plug.addr, NULL};
  start_smaugd(NULL, extra, 1);
  /* A chain: s1 <- v1, s2 <- v2, and a root over both servers. */
  const char *spec[] = {"t.server:root:t.server/s1;t.server/s2",
                        "t.server:s1:t.volume/v1", "t.server:s2:t.volume/v2"};
  char plan[64], cp[64], op[64], msg[512];
  plan_of(spec, 3, plan);
  cr_assert_eq(protect(plan, cp, op, msg, sizeof(msg)), 0, "%s", msg);

  /* Kill once some tasks are done and others are running. */
  opstate_t s = {.need_done = 3};
  wait_running(op, &s);
  proc_stop(&smaugd, SIGKILL);

  start_smaugd(NULL, extra, 1);
  cr_assert_str_eq(client_wait(cl, op), "available");
  Smaug__V1__Checkpoint *c = get_cp(cp);
  cr_expect_eq(c->status,
               SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_AVAILABLE);
  cr_expect_eq(c->n_results, 5);
  protobuf_c_message_free_unpacked(&c->base, NULL);
  expect_resumed(op, &s, trace);
}

Test(faults, sigterm_mid_protect_stops_cleanly_and_resumes) {
  char trace[300];
  snprintf(trace, sizeof(trace), "%s/trace", dir);
  const char *slow[] = {"--delay-ms", "600", "--trace", trace, NULL};
  start_plugin(&plug, "fake", "t.server,t.volume", slow);
  const char *extra[] = {"--plugin", plug.addr, NULL};
  start_smaugd(NULL, extra, 1);
  const char *spec[] = {"t.server:s1:t.volume/v1;t.volume/v2"};
  char plan[64], cp[64], op[64], msg[512];
  plan_of(spec, 1, plan);
  cr_assert_eq(protect(plan, cp, op, msg, sizeof(msg)), 0, "%s", msg);
  opstate_t s = {.need_done = 1};
  wait_running(op, &s);
  int st = proc_stop(&smaugd, SIGTERM);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
  start_smaugd(NULL, extra, 1);
  cr_assert_str_eq(client_wait(cl, op), "available");
  expect_resumed(op, &s, trace);
}

Test(faults, unresumable_operation_marked_error_with_reason) {
  const char *slow[] = {"--delay-ms", "2000", NULL};
  start_plugin(&plug, "fake", "t.server,t.volume", slow);
  const char *extra[] = {"--plugin", plug.addr, NULL};
  start_smaugd(NULL, extra, 1);
  const char *spec[] = {"t.volume:v1:"};
  char plan[64], cp[64], op[64], msg[512];
  plan_of(spec, 1, plan);
  cr_assert_eq(protect(plan, cp, op, msg, sizeof(msg)), 0, "%s", msg);
  opstate_t s = {0};
  wait_running(op, &s);
  proc_stop(&smaugd, SIGKILL);
  proc_stop(&plug, SIGKILL);
  /* Restart without the plugin: the operation cannot resume. */
  start_smaugd(NULL, extra, 0);
  cr_assert_str_eq(client_wait(cl, op), "error");
  Smaug__V1__Checkpoint *c = get_cp(cp);
  cr_expect_eq(c->status,
               SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_ERROR);
  cr_expect(strstr(c->reason, "cannot resume") != NULL, "reason: %s",
            c->reason);
  protobuf_c_message_free_unpacked(&c->base, NULL);
}

Test(faults, plugin_killed_mid_activity_fails_its_branch) {
  const char *slow[] = {"--delay-ms", "3000", NULL};
  start_plugin(&plug, "slow", "t.slow", slow);
  const char *quick[] = {"--delay-ms", "100", NULL};
  start_plugin(&plug2, "quick", "t.server,t.volume", quick);
  const char *extra[] = {"--plugin", plug.addr, "--plugin", plug2.addr, NULL};
  start_smaugd(NULL, extra, 2);
  const char *spec[] = {"t.slow:x1:", "t.server:s1:t.volume/v1"};
  char plan[64], cp[64], op[64], msg[512];
  plan_of(spec, 2, plan);
  cr_assert_eq(protect(plan, cp, op, msg, sizeof(msg)), 0, "%s", msg);
  opstate_t s = {.running_id = "x1"};
  wait_running(op, &s);
  proc_stop(&plug, SIGKILL);
  cr_assert_str_eq(client_wait(cl, op), "error");
  Smaug__V1__Checkpoint *c = get_cp(cp);
  const Smaug__V1__ResourceResult *x1 = result_of(c, "x1");
  cr_assert_not_null(x1);
  cr_expect_eq(x1->status, SMAUG__V1__TASK_STATUS__TASK_STATUS_FAILED);
  cr_expect(strstr(x1->reason, "slow") != NULL, "reason names the plugin: %s",
            x1->reason);
  cr_expect_eq(result_of(c, "s1")->status,
               SMAUG__V1__TASK_STATUS__TASK_STATUS_DONE);
  cr_expect_eq(result_of(c, "v1")->status,
               SMAUG__V1__TASK_STATUS__TASK_STATUS_DONE);
  protobuf_c_message_free_unpacked(&c->base, NULL);

  /* The plugin shows as unavailable, and a new protect is refused with
   * UNAVAILABLE naming it. */
  Smaug__V1__ListPluginsRequest lq = SMAUG__V1__LIST_PLUGINS_REQUEST__INIT;
  int unavailable = 0;
  for (int i = 0; i < 100 && !unavailable; i++) {
    int code;
    Smaug__V1__ListPluginsResponse *lr =
        (void *)client_unary(cl, M(LIST_PLUGINS), &lq.base, &code, NULL, 0);
    for (size_t k = 0; lr && k < lr->n_plugins; k++)
      if (strcmp(lr->plugins[k]->info->name, "slow") == 0 &&
          lr->plugins[k]->health ==
              SMAUG__V1__PLUGIN_HEALTH__PLUGIN_HEALTH_UNAVAILABLE)
        unavailable = 1;
    if (lr)
      protobuf_c_message_free_unpacked(&lr->base, NULL);
    if (!unavailable)
      usleep(100 * 1000);
  }
  cr_expect(unavailable, "ListPlugins never showed the plugin unavailable");
  int code = protect(plan, cp, op, msg, sizeof(msg));
  cr_expect_eq(code, GRPC_STATUS_UNAVAILABLE, "%d %s", code, msg);
  cr_expect(strstr(msg, "slow") != NULL, "%s", msg);
}

Test(faults, registry_refusals_and_replace) {
  start_plugin(&plug, "first", "t.volume", NULL);
  const char *extra[] = {"--plugin", plug.addr, NULL};
  start_smaugd(NULL, extra, 1);
  const char *v2[] = {"--protocol-major", "2", NULL};
  start_plugin(&plug2, "future", "t.other", v2);
  char msg[512];
  cr_expect_eq(client_register(cl, plug2.addr, 0, msg, sizeof(msg)),
               GRPC_STATUS_FAILED_PRECONDITION, "%s", msg);
  cr_expect(strstr(msg, "protocol major") != NULL, "%s", msg);
  proc_stop(&plug2, SIGTERM);

  start_plugin(&plug2, "second", "t.volume", NULL);
  cr_expect_eq(client_register(cl, plug2.addr, 0, msg, sizeof(msg)),
               GRPC_STATUS_ALREADY_EXISTS, "%s", msg);
  cr_expect(strstr(msg, "t.volume") && strstr(msg, "first"), "%s", msg);
  cr_expect_eq(client_register(cl, plug2.addr, 1, msg, sizeof(msg)),
               GRPC_STATUS_OK, "%s", msg);
  Smaug__V1__ListPluginsRequest lq = SMAUG__V1__LIST_PLUGINS_REQUEST__INIT;
  int code;
  Smaug__V1__ListPluginsResponse *lr =
      (void *)client_unary(cl, M(LIST_PLUGINS), &lq.base, &code, NULL, 0);
  cr_assert_eq(lr->n_plugins, 1);
  cr_expect_str_eq(lr->plugins[0]->info->name, "second");
  protobuf_c_message_free_unpacked(&lr->base, NULL);
  cr_expect_eq(client_register(cl, "127.0.0.1:1", 0, msg, sizeof(msg)),
               GRPC_STATUS_UNAVAILABLE, "%s", msg);
  Smaug__V1__UnregisterPluginRequest uq =
      SMAUG__V1__UNREGISTER_PLUGIN_REQUEST__INIT;
  uq.name = "second";
  code = client_call(cl, M(UNREGISTER_PLUGIN), &uq.base, NULL, NULL, msg,
                     sizeof(msg));
  cr_expect_eq(code, 0, "%s", msg);
  code = client_call(cl, M(UNREGISTER_PLUGIN), &uq.base, NULL, NULL, msg,
                     sizeof(msg));
  cr_expect_eq(code, GRPC_STATUS_NOT_FOUND, "%s", msg);
}

Test(faults, unix_sockets_and_parameter_schema) {
  char paddr[300], saddr[300];
  snprintf(paddr, sizeof(paddr), "unix:%s/plugin.sock", dir);
  snprintf(saddr, sizeof(saddr), "unix:%s/smaugd.sock", dir);
  const char *more[] = {"--listen", paddr, "--options-schema",
                        "{\"type\":\"object\",\"properties\":{\"level\":"
                        "{\"type\":\"integer\",\"maximum\":9}},"
                        "\"additionalProperties\":false}",
                        NULL};
  start_plugin(&plug, "fake", "t.volume", more);
  const char *extra[] = {"--plugin", paddr, NULL};
  start_smaugd(saddr, extra, 1);
  cr_expect_str_eq(smaugd.addr, saddr);

  Smaug__V1__Resource r = SMAUG__V1__RESOURCE__INIT, *rp = &r;
  r.type = "t.volume";
  r.id = "v1";
  Smaug__V1__Parameters__ValuesEntry ve =
      SMAUG__V1__PARAMETERS__VALUES_ENTRY__INIT;
  Smaug__V1__Parameters__ValuesEntry *vep = &ve;
  ve.key = "level";
  ve.value = "12";
  Smaug__V1__Parameters pv = SMAUG__V1__PARAMETERS__INIT;
  pv.n_values = 1;
  pv.values = &vep;
  Smaug__V1__ParameterSet__EntriesEntry pe =
      SMAUG__V1__PARAMETER_SET__ENTRIES_ENTRY__INIT;
  Smaug__V1__ParameterSet__EntriesEntry *pep = &pe;
  pe.key = "t.volume";
  pe.value = &pv;
  Smaug__V1__ParameterSet ps = SMAUG__V1__PARAMETER_SET__INIT;
  ps.n_entries = 1;
  ps.entries = &pep;
  char plan[64], cp[64], op[64], msg[512];
  cr_expect_eq(make_plan(&rp, 1, &ps, plan, msg, sizeof(msg)),
               GRPC_STATUS_INVALID_ARGUMENT);
  cr_expect(strstr(msg, "plan.parameters") && strstr(msg, "level") &&
                strstr(msg, "at most 9"),
            "%s", msg);
  ve.value = "x";
  cr_expect_eq(make_plan(&rp, 1, &ps, plan, msg, sizeof(msg)),
               GRPC_STATUS_INVALID_ARGUMENT);
  cr_expect(strstr(msg, "integer") != NULL, "%s", msg);
  ve.key = "colour";
  cr_expect_eq(make_plan(&rp, 1, &ps, plan, msg, sizeof(msg)),
               GRPC_STATUS_INVALID_ARGUMENT);
  ve.key = "level";
  ve.value = "3";
  cr_assert_eq(make_plan(&rp, 1, &ps, plan, msg, sizeof(msg)), 0, "%s", msg);
  cr_assert_eq(protect(plan, cp, op, msg, sizeof(msg)), 0, "%s", msg);
  cr_expect_str_eq(client_wait(cl, op), "available");
}

Test(faults, operation_limit_queues_and_cancel) {
  char trace[300];
  snprintf(trace, sizeof(trace), "%s/trace", dir);
  const char *slow[] = {"--delay-ms", "300", "--trace", trace, NULL};
  start_plugin(&plug, "fake", "t.volume", slow);
  const char *extra[] = {"--plugin", plug.addr, "--max-operations", "1", NULL};
  start_smaugd(NULL, extra, 1);
  const char *spec[] = {"t.volume:v1:"};
  char plan[64], cp[3][64], op[3][64], msg[512];
  plan_of(spec, 1, plan);
  for (int i = 0; i < 3; i++)
    cr_assert_eq(protect(plan, cp[i], op[i], msg, sizeof(msg)), 0, "%s", msg);
  /* The third waits in the queue: cancel it there. */
  Smaug__V1__CancelOperationRequest cq =
      SMAUG__V1__CANCEL_OPERATION_REQUEST__INIT;
  cq.operation_id = op[2];
  cq.reason = "test";
  int code = client_call(cl, M(CANCEL_OPERATION), &cq.base, NULL, NULL, msg,
                         sizeof(msg));
  cr_expect_eq(code, 0, "%s", msg);
  cr_expect_str_eq(client_wait(cl, op[2]), "error");
  Smaug__V1__Checkpoint *c = get_cp(cp[2]);
  cr_expect(strstr(c->reason, "cancelled") != NULL, "%s", c->reason);
  protobuf_c_message_free_unpacked(&c->base, NULL);
  cr_expect_str_eq(client_wait(cl, op[0]), "available");
  cr_expect_str_eq(client_wait(cl, op[1]), "available");
  /* With one slot, the plugin saw every call of the first operation
   * before any call of the second (its trace is in arrival order). */
  FILE *f = fopen(trace, "r");
  cr_assert_not_null(f);
  char line[1024];
  int last_first = -1, first_second = -1, i = 0;
  while (fgets(line, sizeof(line), f)) {
    if (strstr(line, op[0]))
      last_first = i;
    if (strstr(line, op[1]) && first_second < 0)
      first_second = i;
    i++;
  }
  fclose(f);
  cr_expect_geq(last_first, 0);
  cr_expect_gt(first_second, last_first, "calls interleaved: %d <= %d",
               first_second, last_first);
  /* Cancelling a finished operation is refused. */
  cq.operation_id = op[0];
  code = client_call(cl, M(CANCEL_OPERATION), &cq.base, NULL, NULL, msg,
                     sizeof(msg));
  cr_expect_eq(code, GRPC_STATUS_FAILED_PRECONDITION, "%s", msg);
}

Test(faults, running_cancel_and_second_delete_refused) {
  const char *slow[] = {"--delay-ms", "1500", NULL};
  start_plugin(&plug, "fake", "t.volume", slow);
  const char *extra[] = {"--plugin", plug.addr, NULL};
  start_smaugd(NULL, extra, 1);
  const char *spec[] = {"t.volume:v1:"};
  char plan[64], cp[64], op[64], msg[512];
  plan_of(spec, 1, plan);
  cr_assert_eq(protect(plan, cp, op, msg, sizeof(msg)), 0, "%s", msg);
  opstate_t s = {0};
  wait_running(op, &s);
  /* Deleting a checkpoint that is being written is refused. */
  Smaug__V1__DeleteCheckpointRequest dq =
      SMAUG__V1__DELETE_CHECKPOINT_REQUEST__INIT;
  dq.id = cp;
  int code = client_call(cl, M(DELETE_CHECKPOINT), &dq.base, NULL, NULL, msg,
                         sizeof(msg));
  cr_expect_eq(code, GRPC_STATUS_FAILED_PRECONDITION, "%s", msg);
  Smaug__V1__CancelOperationRequest cq =
      SMAUG__V1__CANCEL_OPERATION_REQUEST__INIT;
  cq.operation_id = op;
  code = client_call(cl, M(CANCEL_OPERATION), &cq.base, NULL, NULL, msg,
                     sizeof(msg));
  cr_expect_eq(code, 0, "%s", msg);
  cr_assert_str_eq(client_wait(cl, op), "error");
  Smaug__V1__Checkpoint *c = get_cp(cp);
  cr_expect(strstr(c->reason, "cancelled") != NULL, "%s", c->reason);
  protobuf_c_message_free_unpacked(&c->base, NULL);
  /* The first delete runs; a second one at the same time is refused. */
  code = client_call(cl, M(DELETE_CHECKPOINT), &dq.base, NULL, NULL, msg,
                     sizeof(msg));
  cr_expect_eq(code, 0, "%s", msg);
  code = client_call(cl, M(DELETE_CHECKPOINT), &dq.base, NULL, NULL, msg,
                     sizeof(msg));
  cr_expect_eq(code, GRPC_STATUS_FAILED_PRECONDITION, "%s", msg);
}

Test(faults, registered_plugins_survive_restart) {
  start_plugin(&plug, "fake", "t.volume", NULL);
  start_smaugd(NULL, NULL, 0);
  char msg[512];
  cr_assert_eq(client_register(cl, plug.addr, 0, msg, sizeof(msg)), 0, "%s",
               msg);
  int st = proc_stop(&smaugd, SIGTERM);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  start_smaugd(NULL, NULL, 1);
  Smaug__V1__UnregisterPluginRequest uq =
      SMAUG__V1__UNREGISTER_PLUGIN_REQUEST__INIT;
  uq.name = "fake";
  cr_assert_eq(client_call(cl, M(UNREGISTER_PLUGIN), &uq.base, NULL, NULL, msg,
                           sizeof(msg)),
               0, "%s", msg);
  st = proc_stop(&smaugd, SIGTERM);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  start_smaugd(NULL, NULL, 0);
  Smaug__V1__ListPluginsRequest lq = SMAUG__V1__LIST_PLUGINS_REQUEST__INIT;
  int code;
  Smaug__V1__ListPluginsResponse *lr =
      (void *)client_unary(cl, M(LIST_PLUGINS), &lq.base, &code, NULL, 0);
  cr_assert_eq(code, 0);
  cr_expect_eq(lr->n_plugins, 0, "an unregistered plugin came back");
  protobuf_c_message_free_unpacked(&lr->base, NULL);
}

Test(faults, sigkill_mid_restore_resumes_to_success) {
  char trace[300];
  snprintf(trace, sizeof(trace), "%s/trace", dir);
  const char *slow[] = {"--delay-ms", "300", "--trace", trace, NULL};
  start_plugin(&plug, "fake", "t.server,t.volume", slow);
  const char *extra[] = {"--plugin", plug.addr, NULL};
  start_smaugd(NULL, extra, 1);
  const char *spec[] = {"t.server:s1:t.volume/v1;t.volume/v2"};
  char plan[64], cp[64], op[64], msg[512];
  plan_of(spec, 1, plan);
  cr_assert_eq(protect(plan, cp, op, msg, sizeof(msg)), 0, "%s", msg);
  cr_assert_str_eq(client_wait(cl, op), "available");
  Smaug__V1__RestoreRequest rq = SMAUG__V1__RESTORE_REQUEST__INIT;
  rq.checkpoint_id = cp;
  int code;
  Smaug__V1__RestoreResponse *rr =
      (void *)client_unary(cl, M(RESTORE), &rq.base, &code, msg, sizeof(msg));
  cr_assert_eq(code, 0, "%s", msg);
  opstate_t s = {.need_done = 1};
  wait_running(rr->operation_id, &s);
  proc_stop(&smaugd, SIGKILL);
  start_smaugd(NULL, extra, 1);
  cr_expect_str_eq(client_wait(cl, rr->operation_id), "success");
  expect_resumed(rr->operation_id, &s, trace);
  Smaug__V1__GetRestoreRequest gq = SMAUG__V1__GET_RESTORE_REQUEST__INIT;
  gq.id = rr->restore_id;
  Smaug__V1__GetRestoreResponse *gr = (void *)client_unary(
      cl, M(GET_RESTORE), &gq.base, &code, msg, sizeof(msg));
  cr_assert_eq(code, 0, "%s", msg);
  cr_expect_eq(gr->restore->status,
               SMAUG__V1__RESTORE_STATUS__RESTORE_STATUS_SUCCESS);
  for (size_t i = 0; i < gr->restore->n_results; i++)
    cr_expect_str_neq(gr->restore->results[i]->restored_id, "");
  protobuf_c_message_free_unpacked(&gr->base, NULL);
  protobuf_c_message_free_unpacked(&rr->base, NULL);
}

Test(faults, list_page_over_message_limit_drops_graphs) {
  start_plugin(&plug, "fake", "t.volume", NULL);
  const char *extra[] = {"--plugin", plug.addr, "--max-message-bytes", "8192",
                         NULL};
  start_smaugd(NULL, extra, 1);
  char spec_buf[16][260];
  const char *spec[16];
  for (int i = 0; i < 16; i++) {
    char id[220];
    memset(id, 'a' + i, 120); /* near the longest id allowed */
    id[120] = '\0';
    snprintf(spec_buf[i], sizeof(spec_buf[i]), "t.volume:%s:", id);
    spec[i] = spec_buf[i];
  }
  char plan[64], cp[64], op[64], msg[512];
  plan_of(spec, 16, plan);
  for (int k = 0; k < 4; k++) {
    cr_assert_eq(protect(plan, cp, op, msg, sizeof(msg)), 0, "%s", msg);
    cr_assert_str_eq(client_wait(cl, op), "available");
  }
  Smaug__V1__ListCheckpointsRequest lq =
      SMAUG__V1__LIST_CHECKPOINTS_REQUEST__INIT;
  int code;
  Smaug__V1__ListCheckpointsResponse *lr = (void *)client_unary(
      cl, M(LIST_CHECKPOINTS), &lq.base, &code, msg, sizeof(msg));
  cr_assert_eq(code, 0, "%s", msg);
  cr_expect_eq(lr->n_checkpoints, 4);
  cr_expect_eq(lr->checkpoints[0]->n_resources, 0);
  protobuf_c_message_free_unpacked(&lr->base, NULL);
  /* One page of one still carries its graph. */
  lq.page_size = 1;
  lr = (void *)client_unary(cl, M(LIST_CHECKPOINTS), &lq.base, &code, msg,
                            sizeof(msg));
  cr_assert_eq(code, 0, "%s", msg);
  cr_expect_eq(lr->checkpoints[0]->n_resources, 16);
  protobuf_c_message_free_unpacked(&lr->base, NULL);
}
