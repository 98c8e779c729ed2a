/*
 * test_input.c - integration suite for what enters smaugd: parameters on
 * their way to the activities, resource ids from users and plugins, and
 * every other field a plugin answers with. The fake plugin records each
 * request it receives (--request-trace), so the tests check exactly what
 * went over the wire, per activity and per operation.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "harness.h"

#define M(name) SMAUG_V1_ORCHESTRATOR_##name

static char dir[256], trace[512];
static proc_t smaugd, plug;
static client_t *cl;

/* Starts the fake plugin (types t.server and t.volume, listing dependents
 * from the "children" extra, tracing requests) with `extra`, then smaugd
 * with it registered. */
static void start_all(const char *const *extra) {
  tmpdir_make(dir, sizeof(dir));
  snprintf(trace, sizeof(trace), "%s/requests.trace", dir);
  const char *pa[32] = {"--types", "t.server,t.volume", "--lists-dependents",
                        "--request-trace", trace};
  size_t n = 5;
  for (size_t i = 0; extra && extra[i]; i++)
    pa[n++] = extra[i];
  pa[n] = NULL;
  char why[128];
  cr_assert_eq(procs_start_all(dir, pa, &plug, &smaugd, &cl, why, sizeof(why)),
               0, "%s", why);
}

static void teardown(void) {
  proc_t *plugins[] = {&plug, NULL};
  int st = procs_stop_all(&cl, &smaugd, plugins, dir);
  cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
            "smaugd did not stop cleanly: status %d", st);
}

TestSuite(input, .fini = teardown, .timeout = 60);

/* ---------------------------------------------------------------- helpers */

/* A ParameterSet from "key:k=v,k=v;key:k=v" (key: a type or type#id). */
#define PS_MAX 8
typedef struct ps_s {
  char buf[512];
  Smaug__V1__ParameterSet set;
  Smaug__V1__ParameterSet__EntriesEntry ent[PS_MAX], *entp[PS_MAX];
  Smaug__V1__Parameters par[PS_MAX];
  Smaug__V1__Parameters__ValuesEntry val[PS_MAX][PS_MAX], *valp[PS_MAX][PS_MAX];
} ps_t;

static Smaug__V1__ParameterSet *ps_make(ps_t *ps, const char *spec) {
  snprintf(ps->buf, sizeof(ps->buf), "%s", spec);
  smaug__v1__parameter_set__init(&ps->set);
  char *s1 = NULL;
  size_t n = 0;
  for (char *e = strtok_r(ps->buf, ";", &s1); e && n < PS_MAX;
       e = strtok_r(NULL, ";", &s1), n++) {
    char *colon = strchr(e, ':');
    cr_assert_not_null(colon, "bad spec %s", spec);
    *colon = '\0';
    smaug__v1__parameter_set__entries_entry__init(&ps->ent[n]);
    smaug__v1__parameters__init(&ps->par[n]);
    ps->ent[n].key = e;
    ps->ent[n].value = &ps->par[n];
    ps->entp[n] = &ps->ent[n];
    char *s2 = NULL;
    size_t k = 0;
    for (char *kv = strtok_r(colon + 1, ",", &s2); kv && k < PS_MAX;
         kv = strtok_r(NULL, ",", &s2), k++) {
      char *eq = strchr(kv, '=');
      cr_assert_not_null(eq, "bad spec %s", spec);
      *eq = '\0';
      smaug__v1__parameters__values_entry__init(&ps->val[n][k]);
      ps->val[n][k].key = kv;
      ps->val[n][k].value = eq + 1;
      ps->valp[n][k] = &ps->val[n][k];
    }
    ps->par[n].n_values = k;
    ps->par[n].values = ps->valp[n];
  }
  ps->set.n_entries = n;
  ps->set.entries = ps->entp;
  return &ps->set;
}

/* Protects the plan of `n` resources and waits; returns the final status
 * (static) and fills the checkpoint id. */
static const char *protect_wait(res_t *rs, size_t n, char *cp) {
  char plan[64], op[64], msg[512];
  cr_assert_eq(
      client_create_plan_of(cl, "input", rs, n, NULL, plan, msg, sizeof(msg)),
      0, "CreatePlan: %s", msg);
  cr_assert_eq(client_protect(cl, plan, cp, op, msg, sizeof(msg)), 0, "%s",
               msg);
  return client_wait(cl, op);
}

static Smaug__V1__Checkpoint *checkpoint(const char *cp) {
  int code;
  char msg[512];
  Smaug__V1__Checkpoint *c = client_get_checkpoint(cl, cp, &code, msg, 512);
  cr_assert_eq(code, 0, "GetCheckpoint: %s", msg);
  return c;
}

/* The result of resource `id` in checkpoint `c`; asserted present. */
static const Smaug__V1__ResourceResult *result(const Smaug__V1__Checkpoint *c,
                                               const char *id) {
  const Smaug__V1__ResourceResult *r =
      result_find(c->results, c->n_results, id);
  cr_assert_not_null(r, "no result for %s", id);
  return r;
}

static void expect_has(const char *s, const char *needle) {
  cr_expect(s && strstr(s, needle) != NULL, "'%s' lacks '%s'", s, needle);
}

/* Number of trace lines equal to `line` (how 0), starting with it (1) or
 * containing it (2). */
static int trace_count(const char *line, int how) {
  FILE *f = fopen(trace, "r");
  if (f == NULL)
    return 0;
  char buf[4096];
  int n = 0;
  while (fgets(buf, sizeof(buf), f)) {
    buf[strcspn(buf, "\n")] = '\0';
    n += how == 2   ? strstr(buf, line) != NULL
         : how == 1 ? strncmp(buf, line, strlen(line)) == 0
                    : strcmp(buf, line) == 0;
  }
  fclose(f);
  return n;
}

/* Waits (up to 10 s) for a trace line starting with `prefix`. */
static int trace_wait(const char *prefix) {
  for (int i = 0; i < 1000; i++) {
    if (trace_count(prefix, 1) > 0)
      return 0;
    nanosleep(&(struct timespec){0, 10000000}, NULL);
  }
  return -1;
}

/* Expects exactly one trace line for each of P and S of resource
 * `type`#`id` in operation `kind`, carrying `params`. */
static void expect_params(const char *kind, const char *cp, const char *type,
                          const char *id, const char *params) {
  for (int s = 0; s < 2; s++) {
    char line[512];
    snprintf(line, sizeof(line), "A %c %s %s#%s checkpoints/%s/%s/%s %s",
             s ? 'S' : 'P', kind, type, id, cp, type, id, params);
    cr_expect_eq(trace_count(line, 0), 1, "want once: %s", line);
  }
}

/* ---------------------------------------------------- 1. parameters */

Test(input, parameters_reach_every_activity) {
  start_all(NULL);
  res_t r;
  res_init(&r, "t.server", "s1", "t.volume/v1;t.volume/v2");
  ps_t pp, rp;
  char plan[64], cp[64], op[64], msg[512];
  cr_assert_eq(
      client_create_plan_of(cl, "input", &r, 1,
                            ps_make(&pp, "t.volume:a=1,b=plan;"
                                         "t.volume#v2:b=v2;t.server:s=1"),
                            plan, msg, sizeof(msg)),
      0, "CreatePlan: %s", msg);
  cr_assert_eq(client_protect(cl, plan, cp, op, msg, sizeof(msg)), 0, "%s",
               msg);
  cr_assert_str_eq(client_wait(cl, op), "available");
  expect_params("protect", cp, "t.server", "s1", "s=1");
  expect_params("protect", cp, "t.volume", "v1", "a=1,b=plan");
  expect_params("protect", cp, "t.volume", "v2", "a=1,b=v2");

  /* Restore: its own parameters win key by key over the plan's, even
   * over the plan's "type#id" entry. */
  cr_assert_str_eq(client_restore_wait(
                       cl, cp,
                       ps_make(&rp, "t.volume:b=restore,r=1;t.server#s1:s=2"),
                       msg, sizeof(msg)),
                   "success", "%s", msg);
  expect_params("restore", cp, "t.server", "s1", "s=2");
  expect_params("restore", cp, "t.volume", "v1", "a=1,b=restore,r=1");
  expect_params("restore", cp, "t.volume", "v2", "a=1,b=restore,r=1");

  /* Delete: the parameters the checkpoint was protected with. */
  cr_assert_str_eq(client_delete_wait(cl, cp, msg, sizeof(msg)), "deleted",
                   "%s", msg);
  expect_params("delete", cp, "t.server", "s1", "s=1");
  expect_params("delete", cp, "t.volume", "v1", "a=1,b=plan");
  expect_params("delete", cp, "t.volume", "v2", "a=1,b=v2");
  cr_expect_eq(trace_count("A ", 1), 18, "one call per activity");
}

/* A restore resumed after smaugd was killed still merges its parameters
 * over the plan's: every restore call, before and after the kill, carries
 * the same parameters. */
Test(input, resumed_restore_keeps_its_parameters) {
  const char *extra[] = {"--delay-ms", "1000", NULL};
  start_all(extra);
  res_t r;
  res_init(&r, "t.volume", "v1", NULL);
  ps_t pp, rp;
  char plan[64], cp[64], op[64], msg[512];
  cr_assert_eq(client_create_plan_of(cl, "input", &r, 1,
                                     ps_make(&pp, "t.volume:a=1,b=plan"), plan,
                                     msg, sizeof(msg)),
               0, "CreatePlan: %s", msg);
  cr_assert_eq(client_protect(cl, plan, cp, op, msg, sizeof(msg)), 0, "%s",
               msg);
  cr_assert_str_eq(client_wait(cl, op), "available");
  Smaug__V1__RestoreRequest rq = SMAUG__V1__RESTORE_REQUEST__INIT;
  rq.checkpoint_id = cp;
  rq.parameters = ps_make(&rp, "t.volume#v1:b=restore");
  int code;
  Smaug__V1__RestoreResponse *rr =
      (void *)client_unary(cl, M(RESTORE), &rq.base, &code, msg, sizeof(msg));
  cr_assert_eq(code, 0, "Restore: %s", msg);
  cr_assert_eq(trace_wait("A P restore t.volume#v1"), 0, "restore not begun");
  proc_stop(&smaugd, SIGKILL);
  client_free(cl);
  const char *sa[] = {"--plugin", plug.addr, NULL};
  cr_assert_eq(smaugd_start(&smaugd, dir, NULL, sa), 0, "smaugd restart");
  cl = client_new(smaugd.addr);
  cr_assert_str_eq(client_wait(cl, rr->operation_id), "success");
  protobuf_c_message_free_unpacked(&rr->base, NULL);
  char want[256];
  snprintf(want, sizeof(want), "checkpoints/%s/t.volume/v1 a=1,b=restore", cp);
  int calls = trace_count("A P restore ", 1) + trace_count("A S restore ", 1);
  cr_expect_geq(calls, 3, "P was not run again after the restart");
  cr_expect_eq(trace_count(want, 2), calls,
               "a restore call without the merged parameters");
}

/* ------------------------------------------------------------ 2. ids */

Test(input, user_ids_must_match_the_pattern) {
  start_all(NULL);
  char plan[64], msg[512];
  res_t r[2];
  res_init(&r[0], "t.server", "s1", NULL);
  res_init(&r[1], "t.volume", "../../../etc/passwd", NULL);
  cr_expect_eq(
      client_create_plan_of(cl, "input", r, 2, NULL, plan, msg, sizeof(msg)),
      GRPC_STATUS_INVALID_ARGUMENT);
  expect_has(msg, "plan.resources[1].id: \"../../../etc/passwd\" does not "
                  "match");
  res_init(&r[1], "t.volume", "", NULL);
  cr_expect_eq(
      client_create_plan_of(cl, "input", r, 2, NULL, plan, msg, sizeof(msg)),
      GRPC_STATUS_INVALID_ARGUMENT);
  expect_has(msg, "plan.resources[1].id: required");
  res_init(&r[1], "t/volume", "v1", NULL);
  cr_expect_eq(
      client_create_plan_of(cl, "input", r, 2, NULL, plan, msg, sizeof(msg)),
      GRPC_STATUS_INVALID_ARGUMENT);
  expect_has(msg, "plan.resources[1].type:");

  /* Parameter keys name a type or one resource: the same pattern. */
  ps_t ps;
  cr_expect_eq(client_create_plan_of(cl, "input", r, 1,
                                     ps_make(&ps, "t.server#..:a=1"), plan, msg,
                                     sizeof(msg)),
               GRPC_STATUS_INVALID_ARGUMENT);
  expect_has(msg, "plan.parameters[t.server#..]");

  /* And restore targets. */
  char cp[64];
  cr_assert_str_eq(protect_wait(r, 1, cp), "available");
  Smaug__V1__RestoreRequest rq = SMAUG__V1__RESTORE_REQUEST__INIT;
  rq.checkpoint_id = cp;
  rq.parameters = ps_make(&ps, "t.server#a/../b:x=1");
  int code;
  ProtobufCMessage *resp =
      client_unary(cl, M(RESTORE), &rq.base, &code, msg, sizeof(msg));
  cr_expect_null(resp);
  cr_expect_eq(code, GRPC_STATUS_INVALID_ARGUMENT);
  expect_has(msg, "parameters[t.server#a/../b]");
}

/* A plugin's dependents with a path for an id, with an empty id, and a
 * ListDependents that fails: each listed resource fails naming the plugin,
 * the others get a "not run" result, and no activity ever runs. */
Test(input, bad_dependents_fail_the_resource) {
  const char *extra[] = {"--list-fail-id", "s4", NULL};
  start_all(extra);
  struct {
    const char *id, *children, *want, *code;
  } cases[] = {
      {"s1", "t.volume/v1;t.volume/../../../../var/evil",
       "dependents[1].id: \"../../../../var/evil\" does not match",
       "FAILED_PRECONDITION: "},
      {"s2", "t.volume/", "dependents[0].id: required",
       "FAILED_PRECONDITION: "},
      {"s4", "t.volume/v4", "INTERNAL: injected failure for s4", "INTERNAL: "},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    res_t r[2];
    res_init(&r[0], "t.server", cases[i].id, cases[i].children);
    res_init(&r[1], "t.volume", "bystander", NULL);
    char cp[64];
    cr_assert_str_eq(protect_wait(r, 2, cp), "error");
    Smaug__V1__Checkpoint *c = checkpoint(cp);
    cr_expect(strncmp(c->reason, cases[i].code, strlen(cases[i].code)) == 0,
              "reason '%s' does not start with %s", c->reason, cases[i].code);
    expect_has(c->reason, "plugin fake (");
    const Smaug__V1__ResourceResult *bad = result(c, cases[i].id);
    cr_expect_eq(bad->status, SMAUG__V1__TASK_STATUS__TASK_STATUS_FAILED);
    expect_has(bad->reason, "plugin fake (");
    expect_has(bad->reason, cases[i].want);
    const Smaug__V1__ResourceResult *by = result(c, "bystander");
    cr_expect_eq(by->status, SMAUG__V1__TASK_STATUS__TASK_STATUS_SKIPPED);
    expect_has(by->reason, "not run: ");
    cr_expect_eq(c->n_results, 2, "only the resources that were built");
    protobuf_c_message_free_unpacked(&c->base, NULL);
  }
  cr_expect_eq(trace_count("A ", 1), 0, "no activity ran");
  cr_expect_eq(trace_count("..", 2), 0, "a request carried '..'");
}

/* ------------------------------------------- 9. bad data from plugins */

/* Protects one volume with the plugin started with `extra` and expects it
 * to fail naming the plugin and `want`. */
static void expect_plugin_fault(const char *const *extra, const char *want) {
  start_all(extra);
  res_t r;
  res_init(&r, "t.volume", "v1", NULL);
  char cp[64];
  cr_assert_str_eq(protect_wait(&r, 1, cp), "error");
  Smaug__V1__Checkpoint *c = checkpoint(cp);
  const Smaug__V1__ResourceResult *v = result(c, "v1");
  cr_expect_eq(v->status, SMAUG__V1__TASK_STATUS__TASK_STATUS_FAILED);
  expect_has(v->reason, "plugin fake (");
  expect_has(v->reason, want);
  expect_has(c->reason, want);
  protobuf_c_message_free_unpacked(&c->base, NULL);
}

Test(input, bad_restored_id_fails_the_resource) {
  const char *extra[] = {"--restored-id", "../x", NULL};
  expect_plugin_fault(extra, "result.restored_id: \"../x\" does not match");
}

Test(input, two_results_in_one_stream_fail_the_task) {
  const char *extra[] = {"--two-results", NULL};
  expect_plugin_fault(extra,
                      "protocol violation: a second result in one stream");
}

Test(input, oversized_progress_fails_the_task) {
  const char *extra[] = {"--progress-bytes", "5000", "--delay-ms", "100", NULL};
  expect_plugin_fault(extra,
                      "progress.message: 5000 bytes, more than the limit");
}

Test(input, too_much_metadata_fails_the_task) {
  const char *extra[] = {"--metadata-count", "2000", NULL};
  expect_plugin_fault(extra, "result.metadata: 2004 entries, more than the");
}

Test(input, huge_plugin_name_is_refused_and_list_works) {
  start_all(NULL);
  proc_t big;
  const char *pa[] = {"--types", "t.big", "--name-bytes", "3000000", NULL};
  cr_assert_eq(plugin_start(&big, dir, "big", pa), 0, "plugin start");
  char msg[512];
  int code = client_register(cl, big.addr, 0, msg, sizeof(msg));
  proc_stop(&big, SIGTERM);
  cr_expect_eq(code, GRPC_STATUS_INVALID_ARGUMENT, "%s", msg);
  expect_has(msg, big.addr);
  expect_has(msg, "GetPluginInfo.name (3000000 bytes)");
  Smaug__V1__ListPluginsRequest lq = SMAUG__V1__LIST_PLUGINS_REQUEST__INIT;
  Smaug__V1__ListPluginsResponse *lr = (void *)client_unary(
      cl, M(LIST_PLUGINS), &lq.base, &code, msg, sizeof(msg));
  cr_assert_eq(code, 0, "ListPlugins: %s", msg);
  cr_expect_eq(lr->n_plugins, 1);
  protobuf_c_message_free_unpacked(&lr->base, NULL);
}

/* ------------------------------------------------------- 10. cancel */

Test(input, cancel_reason_reaches_the_plugin) {
  const char *extra[] = {"--delay-ms", "10000", NULL};
  start_all(extra);
  res_t r;
  res_init(&r, "t.volume", "v1", NULL);
  char plan[64], cp[64], op[64], msg[512];
  cr_assert_eq(
      client_create_plan_of(cl, "input", &r, 1, NULL, plan, msg, sizeof(msg)),
      0, "%s", msg);
  cr_assert_eq(client_protect(cl, plan, cp, op, msg, sizeof(msg)), 0, "%s",
               msg);
  cr_assert_eq(trace_wait("A P protect t.volume#v1"), 0,
               "the activity never started");
  Smaug__V1__CancelOperationRequest cq =
      SMAUG__V1__CANCEL_OPERATION_REQUEST__INIT;
  cq.operation_id = op;
  cq.reason = "maintenance window";
  int code;
  Smaug__V1__CancelOperationResponse *cr = (void *)client_unary(
      cl, M(CANCEL_OPERATION), &cq.base, &code, msg, sizeof(msg));
  cr_assert_eq(code, 0, "CancelOperation: %s", msg);
  protobuf_c_message_free_unpacked(&cr->base, NULL);
  cr_expect_str_eq(client_wait(cl, op), "error");
  char line[256];
  snprintf(line, sizeof(line), "C %s maintenance window", op);
  cr_expect_eq(trace_wait(line), 0, "the plugin did not get the reason");
}

Test(input, plugin_type_must_match_the_pattern) {
  start_all(NULL);
  proc_t odd;
  const char *pa[] = {"--types", "t.ok,../t.odd", NULL};
  cr_assert_eq(plugin_start(&odd, dir, "odd", pa), 0, "plugin start");
  char msg[512];
  int code = client_register(cl, odd.addr, 0, msg, sizeof(msg));
  proc_stop(&odd, SIGTERM);
  cr_expect_eq(code, GRPC_STATUS_INVALID_ARGUMENT, "%s", msg);
  expect_has(msg, "plugin odd at ");
  expect_has(msg, "GetPluginInfo.types[1]: type must be");
}
