/*
 * test_limits.c - integration suite for the plugins' concurrency limits
 * across operations: several protects and a GetFlow (discovery) run at
 * once against one fake plugin that announces a limit, and the plugin's
 * call trace (activities and ListDependents together) shows how many
 * calls smaugd had in flight at the plugin at any time. The limit is the
 * plugin's, not each operation's: the sum over every operation and every
 * discovery must stay within it.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

#define M(x)    SMAUG_V1_ORCHESTRATOR_##x
#define OPS     4 /* concurrent protects */
#define VOLUMES 3 /* children of each plan's server */

static char dir[256], trace[512];
static proc_t smaugd, plug;
static client_t *cl;

static void teardown(void) {
  proc_t *plugins[] = {&plug, NULL};
  int st = procs_stop_all(&cl, &smaugd, plugins, dir);
  cr_expect(st == 0 || (WIFEXITED(st) && WEXITSTATUS(st) == 0),
            "smaugd did not stop cleanly: status %d", st);
}

/* Starts the fake plugin (slow, traced activities and ListDependents,
 * with `extra`) and smaugd with it registered. */
static void start_all(const char *const *extra) {
  char why[256];
  tmpdir_make(dir, sizeof(dir));
  snprintf(trace, sizeof(trace), "%s/calls.trace", dir);
  const char *pa[32] = {"--types",
                        "t.server,t.volume",
                        "--lists-dependents",
                        "--delay-ms",
                        "60",
                        "--list-delay-ms",
                        "60",
                        "--call-trace",
                        trace};
  size_t n = 9;
  for (size_t i = 0; extra[i]; i++)
    pa[n++] = extra[i];
  pa[n] = NULL;
  cr_assert_eq(procs_start_all(dir, pa, &plug, &smaugd, &cl, why, sizeof(why)),
               0, "%s", why);
}

/* A plan of server s<k> whose ListDependents returns VOLUMES volumes. */
static void make_plan(int k, char *plan) {
  char kids[VOLUMES * 24] = "", msg[512], name[32], sid[16];
  for (int i = 0; i < VOLUMES; i++) {
    char one[24];
    snprintf(one, sizeof(one), "%st.volume/v%d-%d", i ? ";" : "", k, i);
    strcat(kids, one);
  }
  Smaug__V1__Resource__ExtraEntry e = SMAUG__V1__RESOURCE__EXTRA_ENTRY__INIT;
  e.key = "children";
  e.value = kids;
  Smaug__V1__Resource__ExtraEntry *ep = &e;
  Smaug__V1__Resource r = SMAUG__V1__RESOURCE__INIT;
  snprintf(sid, sizeof(sid), "s%d", k);
  r.type = "t.server";
  r.id = sid;
  r.n_extra = 1;
  r.extra = &ep;
  Smaug__V1__Resource *rp = &r;
  snprintf(name, sizeof(name), "plan-%d", k);
  cr_assert_eq(
      client_create_plan(cl, name, &rp, 1, NULL, plan, msg, sizeof(msg)), 0,
      "CreatePlan: %s", msg);
}

/* From the call trace: the most calls in flight at once, and how many
 * activity and ListDependents calls arrived. */
static unsigned max_in_flight(unsigned *acts, unsigned *lists) {
  FILE *f = fopen(trace, "r");
  cr_assert_not_null(f, "no trace at %s", trace);
  char line[64], kind;
  unsigned v, max = 0;
  *acts = *lists = 0;
  while (fgets(line, sizeof(line), f)) {
    if (sscanf(line, "+ %u %c", &v, &kind) != 2)
      continue;
    *acts += kind == 'A';
    *lists += kind == 'L';
    if (v > max)
      max = v;
  }
  fclose(f);
  return max;
}

/* OPS protects started together, and a GetFlow of the first plan (a
 * discovery of its own) while they run; every protect ends available. */
static void run_concurrent(void) {
  char plan[OPS][64], cp[OPS][64], op[OPS][64], msg[512];
  for (int k = 0; k < OPS; k++)
    make_plan(k, plan[k]);
  for (int k = 0; k < OPS; k++)
    cr_assert_eq(client_protect(cl, plan[k], cp[k], op[k], msg, sizeof(msg)), 0,
                 "Protect %d: %s", k, msg);
  Smaug__V1__GetFlowRequest fq = SMAUG__V1__GET_FLOW_REQUEST__INIT;
  fq.plan_id = plan[0];
  int code;
  Smaug__V1__GetFlowResponse *fr =
      (void *)client_unary(cl, M(GET_FLOW), &fq.base, &code, msg, sizeof(msg));
  cr_assert_eq(code, 0, "GetFlow: %s", msg);
  cr_expect_eq(fr->n_nodes, 2 * (VOLUMES + 1));
  protobuf_c_message_free_unpacked(&fr->base, NULL);
  for (int k = 0; k < OPS; k++)
    cr_expect_str_eq(client_wait(cl, op[k]), "available", "protect %d", k);
}

TestSuite(limits, .fini = teardown, .timeout = 60);

Test(limits, plugin_limit_holds_across_operations_and_discovery) {
  const char *extra[] = {"--max-concurrency", "2", NULL};
  start_all(extra);
  run_concurrent();
  unsigned acts, lists, max = max_in_flight(&acts, &lists);
  /* P and S of every resource; one ListDependents per node, per protect
   * and for the GetFlow. */
  cr_expect_eq(acts, OPS * (VOLUMES + 1) * 2);
  cr_expect_eq(lists, (OPS + 1) * (VOLUMES + 1));
  cr_expect_eq(max, 2, "calls in flight at the plugin at once: %u, want 2",
               max);
}

Test(limits, type_limit_holds_across_operations_and_discovery) {
  /* One slot per type and two types: at most two calls at once. */
  const char *extra[] = {"--type-max-concurrency", "1", NULL};
  start_all(extra);
  run_concurrent();
  unsigned acts, lists, max = max_in_flight(&acts, &lists);
  cr_expect_eq(acts, OPS * (VOLUMES + 1) * 2);
  cr_expect_eq(lists, (OPS + 1) * (VOLUMES + 1));
  cr_expect_leq(max, 2, "calls in flight at the plugin at once: %u, want <= 2",
                max);
  cr_expect_geq(max, 2, "the two types never overlapped: %u", max);
}
