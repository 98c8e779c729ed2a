/*
 * test_watch.c - integration suite for operation events: progress from a
 * plugin that floods it is stored coalesced per task (bounded, the latest
 * value kept, state changes never dropped), a watch resumed from any
 * sequence gets every later event in order, and the events of old
 * finished operations are pruned by the retention while a running
 * operation's are kept. Real smaugd and fake plugin processes.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define EV(k) SMAUG__V1__EVENT_KIND__EVENT_KIND_##k

static char dir[256];
static proc_t smaugd, plug;
static client_t *cl;

static void setup(void) {
  tmpdir_make(dir, sizeof(dir));
}

static void teardown(void) {
  int st = procs_stop_all(&cl, &smaugd, (proc_t *const[]){&plug, NULL}, dir);
  cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
            "smaugd did not stop cleanly: status %d (see %s)", st, smaugd.log);
}

TestSuite(watch, .init = setup, .fini = teardown, .timeout = 90);

static void start(const char *const *plugin_args,
                  const char *const *smaugd_args) {
  cr_assert_eq(plugin_start(&plug, dir, "fake", plugin_args), 0, "plugin");
  const char *extra[16];
  size_t n = 0;
  for (size_t i = 0; smaugd_args && smaugd_args[i]; i++)
    extra[n++] = smaugd_args[i];
  extra[n++] = "--plugin";
  extra[n++] = plug.addr;
  extra[n] = NULL;
  cr_assert_eq(smaugd_start(&smaugd, dir, NULL, extra), 0, "smaugd");
  cl = client_new(smaugd.addr);
  cr_assert_not_null(cl);
  cr_assert_eq(client_wait_plugins(cl, 1), 0, "plugins");
}

/* Protects a plan of `n` roots "t.vol:v<i>"; returns the op id. */
static void protect_n(size_t n, char *cp, char *op) {
  Smaug__V1__Resource rs[16], *rp[16];
  char ids[16][16];
  for (size_t i = 0; i < n; i++) {
    smaug__v1__resource__init(&rs[i]);
    snprintf(ids[i], sizeof(ids[i]), "v%zu", i);
    rs[i].type = "t.vol";
    rs[i].id = ids[i];
    rp[i] = &rs[i];
  }
  char plan[64], msg[512];
  cr_assert_eq(client_create_plan(cl, "w", rp, n, NULL, plan, msg, sizeof(msg)),
               0, "CreatePlan: %s", msg);
  cr_assert_eq(client_protect(cl, plan, cp, op, msg, sizeof(msg)), 0,
               "Protect: %s", msg);
}

static size_t count_kind(Smaug__V1__WatchOperationResponse **evs, size_t n,
                         int kind, const char *id, int activity) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const Smaug__V1__OperationEvent *e = evs[i]->event;
    if ((int)e->kind == kind &&
        (id == NULL || (e->resource && strcmp(e->resource->id, id) == 0)) &&
        (activity < 0 || (int)e->activity == activity))
      k++;
  }
  return k;
}

Test(watch, progress_flood_is_stored_coalesced) {
  /* Each activity lasts 1 s and sends 500 progress messages every 50 ms:
   * 10,000 per activity, 40,000 in all. */
  const char *pa[] = {"--types",          "t.vol", "--delay-ms", "1000",
                      "--progress-burst", "500",   NULL};
  start(pa, NULL);
  char cp[64], op[64];
  protect_n(2, cp, op);
  cr_assert_str_eq(client_wait(cl, op), "available");

  Smaug__V1__WatchOperationResponse **evs;
  size_t n;
  cr_assert_eq(client_watch(cl, op, 0, &evs, &n), 0);
  size_t progress = count_kind(evs, n, EV(PROGRESS), NULL, -1);
  cr_log_info("stored %zu events, %zu progress", n, progress);
  /* 40,000 sent; a few per task stored. */
  cr_expect_leq(progress, 100, "progress events: %zu", progress);
  for (int v = 0; v < 2; v++) {
    char id[8];
    snprintf(id, sizeof(id), "v%d", v);
    for (int act = 1; act <= 2; act++) {
      size_t k = count_kind(evs, n, EV(PROGRESS), id, act);
      cr_expect_geq(k, 1, "%s activity %d has no progress", id, act);
      /* At most 4 a second while the task ran, plus the first and the
       * one kept before DONE. */
      int64_t t0 = 0, t1 = 0;
      for (size_t i = 0; i < n; i++) {
        const Smaug__V1__OperationEvent *e = evs[i]->event;
        if (e->resource && strcmp(e->resource->id, id) == 0 &&
            (int)e->activity == act && e->kind == EV(STARTED))
          t0 = e->time_ms;
        if (e->resource && strcmp(e->resource->id, id) == 0 &&
            (int)e->activity == act && e->kind == EV(DONE))
          t1 = e->time_ms;
      }
      cr_expect_leq(k, (size_t)(4 * (t1 - t0) / 1000 + 3),
                    "%s/%d: %zu progress events in %ld ms", id, act, k,
                    (long)(t1 - t0));
      cr_expect_eq(count_kind(evs, n, EV(STARTED), id, act), 1);
      cr_expect_eq(count_kind(evs, n, EV(DONE), id, act), 1);
      /* The latest value wins: the last progress stored before DONE is
       * the last one sent (20 ticks of 500). */
      uint64_t last = 0;
      for (size_t i = 0; i < n; i++) {
        const Smaug__V1__OperationEvent *e = evs[i]->event;
        if (e->resource && strcmp(e->resource->id, id) == 0 &&
            (int)e->activity == act && e->kind == EV(PROGRESS))
          last = e->progress->done;
        if (e->resource && strcmp(e->resource->id, id) == 0 &&
            (int)e->activity == act && e->kind == EV(DONE))
          break;
      }
      cr_expect_eq(last, 20 * 500, "%s/%d: last progress %lu", id, act,
                   (unsigned long)last);
    }
  }
  /* Sequences are contiguous and end with the final event. */
  for (size_t i = 0; i < n; i++)
    cr_expect_eq(evs[i]->event->sequence, i + 1);
  cr_expect_eq(evs[n - 1]->event->kind, EV(OPERATION_FINISHED));
  resps_free((ProtobufCMessage **)evs, n);
}

Test(watch, resume_returns_every_later_event_in_order) {
  const char *pa[] = {"--types", "t.vol", "--delay-ms", "120", NULL};
  start(pa, NULL);
  char cp[64], op[64];
  protect_n(12, cp, op);
  /* Watch while it runs, and keep what arrived. */
  Smaug__V1__WatchOperationResponse **all;
  size_t n;
  cr_assert_eq(client_watch(cl, op, 0, &all, &n), 0);
  cr_assert_gt(n, 48);
  cr_expect_eq(all[n - 1]->event->kind, EV(OPERATION_FINISHED));
  for (size_t i = 0; i < n; i++)
    cr_assert_eq(all[i]->event->sequence, i + 1, "event %zu", i);
  for (int v = 0; v < 12; v++) {
    char id[8];
    snprintf(id, sizeof(id), "v%d", v);
    cr_expect_eq(count_kind(all, n, EV(STARTED), id, -1), 2, "%s", id);
    cr_expect_eq(count_kind(all, n, EV(DONE), id, -1), 2, "%s", id);
  }
  /* From every point, a resumed watch gets exactly the rest. */
  for (size_t after = 0; after <= n; after += 7) {
    Smaug__V1__WatchOperationResponse **rest;
    size_t k;
    cr_assert_eq(client_watch(cl, op, after, &rest, &k), 0);
    cr_assert_eq(k, n - after, "after %zu: %zu events", after, k);
    for (size_t i = 0; i < k; i++) {
      cr_assert_eq(rest[i]->event->sequence, after + i + 1);
      cr_assert_eq(rest[i]->event->kind, all[after + i]->event->kind);
    }
    resps_free((ProtobufCMessage **)rest, k);
  }
  resps_free((ProtobufCMessage **)all, n);
}

Test(watch, retention_prunes_finished_operations_only) {
  const char *pa[] = {"--types", "t.vol", "--delay-ms", "100", NULL};
  const char *sa[] = {"--event-retention", "1s", NULL};
  start(pa, sa);
  char cp[64], op[64];
  protect_n(2, cp, op);
  cr_assert_str_eq(client_wait(cl, op), "available");
  /* A long protect keeps running while the pruning goes on. */
  char cp2[64], op2[64];
  proc_stop(&plug, SIGTERM);
  const char *slow[] = {"--types", "t.vol", "--delay-ms", "3000", NULL};
  cr_assert_eq(plugin_start(&plug, dir, "fake", slow), 0);
  char msg[512];
  cr_assert_eq(client_register(cl, plug.addr, 1, msg, sizeof(msg)), 0, "%s",
               msg);
  cr_assert_eq(client_wait_plugins(cl, 1), 0);
  protect_n(1, cp2, op2);
  /* The pruning tick runs once a minute, and at start: restart smaugd to
   * prune now; the running protect is resumed. */
  proc_stop(&smaugd, SIGTERM);
  sleep(2); /* let the first op age past the 1 s retention */
  const char *extra[] = {"--event-retention", "1s", "--plugin", plug.addr,
                         NULL};
  cr_assert_eq(smaugd_start(&smaugd, dir, NULL, extra), 0);
  client_free(cl);
  cl = client_new(smaugd.addr);
  cr_assert_eq(client_wait_plugins(cl, 1), 0);
  cr_assert_eq(proc_log_count(&smaugd, "msg=\"events pruned\""), 1,
               "no pruning logged (see %s)", smaugd.log);
  Smaug__V1__WatchOperationResponse **evs;
  size_t n;
  cr_assert_eq(client_watch(cl, op, 0, &evs, &n), 0);
  cr_expect_eq(n, 0, "the finished op kept %zu events", n);
  resps_free((ProtobufCMessage **)evs, n);
  /* The checkpoint itself stays. */
  int code;
  Smaug__V1__Checkpoint *c =
      client_get_checkpoint(cl, cp, &code, msg, sizeof(msg));
  cr_assert_not_null(c, "%s", msg);
  protobuf_c_message_free_unpacked(&c->base, NULL);
  /* The running one kept its events and goes on to the end. */
  cr_assert_eq(client_watch(cl, op2, 0, &evs, &n), 0);
  cr_expect_gt(n, 2);
  cr_expect_eq(evs[0]->event->sequence, 1);
  cr_expect_eq(evs[n - 1]->event->kind, EV(OPERATION_FINISHED));
  resps_free((ProtobufCMessage **)evs, n);
}
