/*
 * test_watch_batch.c - integration suite for batched watch streams
 * (WatchOperationRequest.max_batch): a watcher that asks for batches gets
 * every event exactly once, in order, packed several to a message in
 * `events`, from the start and from any after_sequence, while the
 * operation runs and after it has finished; max_batch is capped at 64 and
 * 1 gives one event per message; a watcher that does not ask still gets
 * one event per message in `event`. Real smaugd and fake plugin processes.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

#define EV(k)     SMAUG__V1__EVENT_KIND__EVENT_KIND_##k
#define BATCH_CAP 64 /* smaugd's cap of max_batch (docs/operations.md) */
#define ROOTS     16

static char dir[256];
static proc_t smaugd, plug;
static client_t *cl;

static void setup(void) {
  tmpdir_make(dir, sizeof(dir));
}

static void teardown(void) {
  int st = procs_stop_all(&cl, &smaugd, (proc_t *const[]){&plug, NULL}, dir);
  cr_expect(st == 0 || (WIFEXITED(st) && WEXITSTATUS(st) == 0),
            "smaugd did not stop cleanly: status %d (see %s)", st, smaugd.log);
}

TestSuite(watch_batch, .init = setup, .fini = teardown, .timeout = 90);

/* Starts the fake plugin (activities of `delay_ms`) and smaugd. */
static void start(const char *delay_ms) {
  const char *pa[] = {"--types", "t.vol", "--delay-ms", delay_ms, NULL};
  char why[128];
  cr_assert_eq(procs_start_all(dir, pa, &plug, &smaugd, &cl, why, sizeof(why)),
               0, "%s", why);
}

/* Protects a plan of ROOTS roots "t.vol:v<i>"; the op id goes to `op`. */
static void protect(char *op) {
  res_t rs[ROOTS];
  char ids[ROOTS][16];
  for (size_t i = 0; i < ROOTS; i++) {
    snprintf(ids[i], sizeof(ids[i]), "v%zu", i);
    res_init(&rs[i], "t.vol", ids[i], NULL);
  }
  char plan[64], cp[64], msg[512];
  cr_assert_eq(
      client_create_plan_of(cl, "b", rs, ROOTS, NULL, plan, msg, sizeof(msg)),
      0, "CreatePlan: %s", msg);
  cr_assert_eq(client_protect(cl, plan, cp, op, msg, sizeof(msg)), 0,
               "Protect: %s", msg);
}

/* What one watch stream delivered. */
typedef struct got_s {
  Smaug__V1__WatchOperationResponse **msgs;
  size_t n_msgs;
  const Smaug__V1__OperationEvent **evs; /* flattened, borrowed from msgs */
  size_t n_evs;
  size_t largest; /* events in the largest message */
} got_t;

/* WatchOperation of `op` from `after` with `max_batch`, to the end. Checks
 * the shape of every message: one event in `event` without max_batch,
 * else 1..min(max_batch, BATCH_CAP) events in `events` and no `event`. */
static void watch(const char *op, uint64_t after, uint32_t max_batch,
                  got_t *g) {
  Smaug__V1__WatchOperationRequest req =
      SMAUG__V1__WATCH_OPERATION_REQUEST__INIT;
  req.operation_id = (char *)op;
  req.after_sequence = after;
  req.max_batch = max_batch;
  char msg[512];
  memset(g, 0, sizeof(*g));
  cr_assert_eq(client_call(cl, SMAUG_V1_ORCHESTRATOR_WATCH_OPERATION, &req.base,
                           (ProtobufCMessage ***)&g->msgs, &g->n_msgs, msg,
                           sizeof(msg)),
               0, "watch after %lu, max_batch %u: %s", (unsigned long)after,
               max_batch, msg);
  size_t limit = max_batch < BATCH_CAP ? max_batch : BATCH_CAP;
  for (size_t i = 0; i < g->n_msgs; i++) {
    const Smaug__V1__WatchOperationResponse *m = g->msgs[i];
    size_t k = m->event ? 1 : m->n_events;
    if (max_batch == 0) {
      cr_assert_not_null(m->event, "message %zu has no event", i);
      cr_assert_eq(m->n_events, 0, "message %zu: %zu events unasked", i,
                   m->n_events);
    } else {
      cr_assert_null(m->event, "max_batch %u: message %zu uses `event`",
                     max_batch, i);
      cr_assert(k >= 1 && k <= limit, "max_batch %u: message %zu has %zu",
                max_batch, i, k);
    }
    g->evs = realloc(g->evs, (g->n_evs + k) * sizeof(*g->evs));
    cr_assert_not_null(g->evs);
    if (m->event)
      g->evs[g->n_evs++] = m->event;
    for (size_t j = 0; j < m->n_events; j++)
      g->evs[g->n_evs++] = m->events[j];
    if (k > g->largest)
      g->largest = k;
  }
}

static void got_free(got_t *g) {
  resps_free((ProtobufCMessage **)g->msgs, g->n_msgs);
  free(g->evs);
}

/* `g` holds exactly the events of `all` after `after`: each once, in
 * order, the same kinds. */
static void expect_rest(const got_t *g, const got_t *all, uint64_t after,
                        uint32_t max_batch) {
  cr_assert_eq(g->n_evs, all->n_evs - after,
               "max_batch %u after %lu: %zu events, %zu expected", max_batch,
               (unsigned long)after, g->n_evs, all->n_evs - after);
  for (size_t i = 0; i < g->n_evs; i++) {
    cr_assert_eq(g->evs[i]->sequence, after + i + 1,
                 "max_batch %u after %lu: event %zu", max_batch,
                 (unsigned long)after, i);
    cr_assert_eq(g->evs[i]->kind, all->evs[after + i]->kind);
  }
}

Test(watch_batch, finished_operation_from_any_sequence) {
  char op[64];
  start("0");
  protect(op);
  cr_assert_str_eq(client_wait(cl, op), "available");

  /* Without max_batch: one event per message, as before batching. */
  got_t all;
  watch(op, 0, 0, &all);
  cr_assert_gt(all.n_evs, BATCH_CAP + 6, "only %zu events", all.n_evs);
  cr_assert_eq(all.n_msgs, all.n_evs);
  for (size_t i = 0; i < all.n_evs; i++)
    cr_assert_eq(all.evs[i]->sequence, i + 1);
  cr_assert_eq(all.evs[all.n_evs - 1]->kind, EV(OPERATION_FINISHED));

  /* A finished operation's events are all ready, so every message is full
   * but the last: max_batch is met, and 65 and 4294967295 are capped. */
  const uint32_t batches[] = {1, 2, 7, BATCH_CAP, BATCH_CAP + 1, UINT32_MAX};
  for (size_t b = 0; b < sizeof(batches) / sizeof(*batches); b++) {
    uint32_t mb = batches[b];
    size_t full = mb < BATCH_CAP ? mb : BATCH_CAP;
    const uint64_t afters[] = {0, 1, 5, all.n_evs - BATCH_CAP - 1,
                               all.n_evs - 1};
    for (size_t a = 0; a < sizeof(afters) / sizeof(*afters); a++) {
      uint64_t after = afters[a];
      got_t g;
      watch(op, after, mb, &g);
      expect_rest(&g, &all, after, mb);
      size_t rest = all.n_evs - after;
      cr_expect_eq(g.largest, rest < full ? rest : full,
                   "max_batch %u after %lu: largest message %zu", mb,
                   (unsigned long)after, g.largest);
      cr_expect_eq(g.n_msgs, (rest + full - 1) / full,
                   "max_batch %u after %lu: %zu messages for %zu events", mb,
                   (unsigned long)after, g.n_msgs, rest);
      got_free(&g);
    }
  }
  /* After the last event: the stream ends at once, empty. */
  got_t none;
  watch(op, all.n_evs, BATCH_CAP, &none);
  cr_expect_eq(none.n_msgs, 0);
  got_free(&none);
  got_free(&all);
}

/* client_watch_until: stop after 10 events. */
static int ten(Smaug__V1__WatchOperationResponse *const *evs, size_t n,
               void *data) {
  (void)evs;
  (void)data;
  return n >= 10;
}

Test(watch_batch, running_operation_each_event_once_in_order) {
  /* 16 roots whose activities last 300 ms: their events come in bursts
   * (16 tasks queued, started, done at once), so a batched watcher of the
   * running operation gets several in one message. */
  char op[64], op2[64];
  start("300");
  protect(op);
  got_t live;
  watch(op, 0, BATCH_CAP, &live);
  cr_assert_gt(live.n_evs, 4 * ROOTS);
  for (size_t i = 0; i < live.n_evs; i++)
    cr_assert_eq(live.evs[i]->sequence, i + 1, "event %zu", i);
  cr_assert_eq(live.evs[live.n_evs - 1]->kind, EV(OPERATION_FINISHED));
  cr_assert_str_eq(live.evs[live.n_evs - 1]->final_status, "available");
  cr_log_info("live: %zu events in %zu messages, largest %zu", live.n_evs,
              live.n_msgs, live.largest);
  cr_expect_gt(live.largest, 1, "no message carried more than one event");

  /* A second protect: 10 events watched (so it runs), then a batched
   * watch resumed after them while it runs gets exactly the rest. */
  protect(op2);
  Smaug__V1__WatchOperationResponse **head;
  size_t n_head;
  cr_assert(client_watch_until(cl, op2, ten, NULL, 30000, &head, &n_head));
  resps_free((ProtobufCMessage **)head, n_head);
  got_t rest;
  watch(op2, 10, 3, &rest);

  /* Both match what a watcher without max_batch gets afterwards. */
  got_t all, all2;
  watch(op, 0, 0, &all);
  expect_rest(&live, &all, 0, BATCH_CAP);
  watch(op2, 0, 0, &all2);
  expect_rest(&rest, &all2, 10, 3);
  cr_assert_eq(all2.evs[all2.n_evs - 1]->kind, EV(OPERATION_FINISHED));
  got_free(&all2);
  got_free(&rest);
  got_free(&all);
  got_free(&live);
}
