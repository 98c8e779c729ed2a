/*
 * test_discovery.c - integration suite for discovery under limits: smaugd
 * expands a plan's roots through the fake plugin's ListDependents, whose
 * calls are slowed down and traced by the plugin, so that the trace shows
 * how many of them smaugd keeps in flight at once.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

#define FANOUT 12

static char dir[256], trace[512];
static proc_t smaugd, plug;
static client_t *cl;

/* Starts the fake plugin (slow ListDependents, traced) with `extra`, then
 * smaugd with it registered. */
static void start_all(const char *const *extra) {
  tmpdir_make(dir, sizeof(dir));
  snprintf(trace, sizeof(trace), "%s/list.trace", dir);
  const char *pa[32] = {"--types",
                        "t.server,t.volume",
                        "--lists-dependents",
                        "--list-delay-ms",
                        "100",
                        "--list-trace",
                        trace};
  size_t n = 7;
  for (size_t i = 0; extra[i]; i++)
    pa[n++] = extra[i];
  pa[n] = NULL;
  cr_assert_eq(plugin_start(&plug, dir, "fake", pa), 0, "plugin start");
  const char *sa[] = {"--plugin", plug.addr, NULL};
  cr_assert_eq(smaugd_start(&smaugd, dir, NULL, sa), 0, "smaugd start");
  cl = client_new(smaugd.addr);
  cr_assert_not_null(cl);
  cr_assert_eq(client_wait_plugins(cl, 1), 0, "plugin not registered");
}

static void teardown(void) {
  int st = procs_stop_all(&cl, &smaugd, (proc_t *const[]){&plug, NULL}, dir);
  cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
            "smaugd did not stop cleanly: status %d", st);
}

/* Protects one server whose ListDependents returns FANOUT volumes; fills
 * the checkpoint and operation ids. */
static void protect_fanout(char *cp, char *op) {
  char kids[FANOUT * 24] = "", msg[512], plan[64];
  for (int i = 0; i < FANOUT; i++) {
    char one[24];
    snprintf(one, sizeof(one), "%st.volume/v%d", i ? ";" : "", i);
    strcat(kids, one);
  }
  Smaug__V1__Resource__ExtraEntry e = SMAUG__V1__RESOURCE__EXTRA_ENTRY__INIT;
  e.key = "children";
  e.value = kids;
  Smaug__V1__Resource__ExtraEntry *ep = &e;
  Smaug__V1__Resource r = SMAUG__V1__RESOURCE__INIT;
  r.type = "t.server";
  r.id = "s1";
  r.n_extra = 1;
  r.extra = &ep;
  Smaug__V1__Resource *rp = &r;
  cr_assert_eq(
      client_create_plan(cl, "fanout", &rp, 1, NULL, plan, msg, sizeof(msg)), 0,
      "CreatePlan: %s", msg);
  cr_assert_eq(client_protect(cl, plan, cp, op, msg, sizeof(msg)), 0, "%s",
               msg);
}

/* start_all(extra), protect_fanout, then watches the protect from its
 * first event to its end: *evs and *n as client_watch gives them (freed
 * with resps_free), at least one. */
static void protect_watched(const char *const *extra, char *cp, char *op,
                            Smaug__V1__WatchOperationResponse ***evs,
                            size_t *n) {
  start_all(extra);
  protect_fanout(cp, op);
  cr_assert_eq(client_watch(cl, op, 0, evs, n), 0);
  cr_assert_gt(*n, 0);
}

/* The most ListDependents calls the plugin had in flight at once, and the
 * number of calls it received, from its trace. */
static unsigned max_in_flight(unsigned *calls) {
  FILE *f = fopen(trace, "r");
  cr_assert_not_null(f, "no trace at %s", trace);
  char sign;
  unsigned v, max = 0;
  *calls = 0;
  while (fscanf(f, " L%c %u", &sign, &v) == 2) {
    if (sign == '+') {
      (*calls)++;
      if (v > max)
        max = v;
    }
  }
  fclose(f);
  return max;
}

/* Waits for the protect to end available, and checks the whole fan-out is
 * in the checkpoint's graph. */
static void expect_full_graph(const char *cp, const char *op) {
  cr_assert_str_eq(client_wait(cl, op), "available");
  int code;
  char msg[512];
  Smaug__V1__Checkpoint *c = client_get_checkpoint(cl, cp, &code, msg, 512);
  cr_assert_eq(code, 0, "GetCheckpoint: %s", msg);
  cr_expect_eq(c->n_resources, FANOUT + 1);
  cr_expect_eq(c->n_edges, FANOUT);
  protobuf_c_message_free_unpacked(&c->base, NULL);
}

TestSuite(discovery, .fini = teardown, .timeout = 60);

Test(discovery, plugin_limit_bounds_list_calls) {
  const char *extra[] = {"--max-concurrency", "2", NULL};
  start_all(extra);
  char cp[64], op[64];
  protect_fanout(cp, op);
  expect_full_graph(cp, op);
  unsigned calls, max = max_in_flight(&calls);
  cr_expect_eq(calls, FANOUT + 1, "one ListDependents per node");
  cr_expect_eq(max, 2, "ListDependents in flight at once: %u, want 2", max);
}

Test(discovery, type_limit_bounds_list_calls) {
  const char *extra[] = {"--type-max-concurrency", "2", NULL};
  start_all(extra);
  char cp[64], op[64];
  protect_fanout(cp, op);
  expect_full_graph(cp, op);
  unsigned calls, max = max_in_flight(&calls);
  cr_expect_eq(calls, FANOUT + 1, "one ListDependents per node");
  cr_expect_eq(max, 2, "ListDependents in flight at once: %u, want 2", max);
}

Test(discovery, failed_list_fails_queued_calls) {
  const char *extra[] = {"--max-concurrency", "2", "--list-fail-id", "v1",
                         NULL};
  char cp[64], op[64];
  Smaug__V1__WatchOperationResponse **evs;
  size_t n;
  protect_watched(extra, cp, op, &evs, &n);
  const Smaug__V1__OperationEvent *last = evs[n - 1]->event;
  cr_expect_str_eq(last->final_status, "error");
  cr_expect(strstr(last->message, "t.volume#v1") != NULL,
            "message '%s' lacks the failed resource", last->message);
  resps_free((ProtobufCMessage **)evs, n);
  unsigned calls, max = max_in_flight(&calls);
  cr_expect_lt(calls, FANOUT + 1, "calls queued behind the failure started");
  cr_expect_leq(max, 2);
}

/* The per-resource events of a failed discovery: a watcher sees one FAILED
 * or SKIPPED event per resource found, before OPERATION_FINISHED, and each
 * agrees with the checkpoint's stored result (status and reason). */
Test(discovery, failed_discovery_streams_per_resource_events) {
  const char *extra[] = {"--list-fail-id", "v1", NULL};
  char cp[64], op[64];
  Smaug__V1__WatchOperationResponse **evs;
  size_t n;
  protect_watched(extra, cp, op, &evs, &n);
  cr_assert_eq(evs[n - 1]->event->kind,
               SMAUG__V1__EVENT_KIND__EVENT_KIND_OPERATION_FINISHED);
  cr_expect_str_eq(evs[n - 1]->event->final_status, "error");
  int code;
  char msg[512];
  Smaug__V1__Checkpoint *c = client_get_checkpoint(cl, cp, &code, msg, 512);
  cr_assert_eq(code, 0, "GetCheckpoint: %s", msg);
  cr_assert_gt(c->n_results, 1, "no per-resource results");
  size_t failed = 0, skipped = 0;
  for (size_t i = 0; i + 1 < n; i++) {
    const Smaug__V1__OperationEvent *e = evs[i]->event;
    cr_assert_not_null(e->resource, "event %zu has no resource", i);
    int is_failed = e->kind == SMAUG__V1__EVENT_KIND__EVENT_KIND_FAILED;
    cr_assert(is_failed || e->kind == SMAUG__V1__EVENT_KIND__EVENT_KIND_SKIPPED,
              "event %zu (%s#%s) is of kind %d", i, e->resource->type,
              e->resource->id, e->kind);
    failed += is_failed;
    skipped += !is_failed;
    /* Its stored result: the same status and reason. */
    const Smaug__V1__ResourceResult *r = NULL;
    for (size_t j = 0; j < c->n_results && r == NULL; j++)
      if (strcmp(c->results[j]->resource->type, e->resource->type) == 0 &&
          strcmp(c->results[j]->resource->id, e->resource->id) == 0)
        r = c->results[j];
    cr_assert_not_null(r, "no result for %s#%s", e->resource->type,
                       e->resource->id);
    cr_expect_eq(r->status,
                 is_failed ? SMAUG__V1__TASK_STATUS__TASK_STATUS_FAILED
                           : SMAUG__V1__TASK_STATUS__TASK_STATUS_SKIPPED,
                 "%s#%s", e->resource->type, e->resource->id);
    cr_expect_str_eq(e->message, r->reason);
    if (is_failed) {
      cr_expect_str_eq(e->resource->id, "v1");
    } else {
      cr_expect(strncmp(e->message, "not run: ", 9) == 0, "skip reason '%s'",
                e->message);
      cr_expect(strstr(e->message, "t.volume#v1") != NULL,
                "skip reason '%s' lacks the failed resource", e->message);
    }
  }
  /* One event per result, exactly one FAILED: the server and the other
   * volumes listed so far are SKIPPED. */
  cr_expect_eq(n - 1, c->n_results, "%zu events for %zu results", n - 1,
               c->n_results);
  cr_expect_eq(failed, 1);
  cr_expect_geq(skipped, 1);
  protobuf_c_message_free_unpacked(&c->base, NULL);
  resps_free((ProtobufCMessage **)evs, n);
}
