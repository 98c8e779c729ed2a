/*
 * ops_fixture.c - the shared pieces of the operations core's suites (see
 * ops_fixture.h).
 */
#include "ops_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>

static void tick(uv_timer_t *t) {
  (void)t;
}

int of_run_until(uv_loop_t *loop, int (*until)(void *), void *data, int ms) {
  uv_timer_t t;
  uv_timer_init(loop, &t);
  uv_timer_start(&t, tick, 5, 5);
  uint64_t end = uv_now(loop) + (uint64_t)ms;
  int ok;
  while (!(ok = until(data)) && uv_now(loop) < end)
    uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return ok;
}

void of_put_plan(store_t *store, ops_t *ops, const char *const *res, size_t n,
                 char *id, size_t len) {
  Smaug__V1__Resource r[8], *rp[8];
  cr_assert_leq(n, 8);
  for (size_t i = 0; i < n; i++) {
    smaug__v1__resource__init(&r[i]);
    r[i].type = (char *)res[2 * i];
    r[i].id = (char *)res[2 * i + 1];
    r[i].name = (char *)res[2 * i + 1];
    rp[i] = &r[i];
  }
  Smaug__V1__Plan plan = SMAUG__V1__PLAN__INIT;
  ops_new_id("pln", id, len);
  plan.id = id;
  plan.name = "ops-test";
  plan.n_resources = n;
  plan.resources = rp;
  plan.created_at_ms = plan.updated_at_ms = ops_now_ms();
  cr_assert_eq(store_batch(store), 0);
  cr_assert_eq(store_plan_put(store, &plan), 0);
  cr_assert_eq(ops_flush(ops), 0);
}

void of_started(const ops_result_t *r, void *data) {
  of_started_t *s = data;
  cr_assert(!s->done, "reported twice");
  s->done = 1;
  s->err = r->err;
  snprintf(s->msg, sizeof(s->msg), "%s", r->msg ? r->msg : "");
  snprintf(s->op_id, sizeof(s->op_id), "%s",
           r->operation_id ? r->operation_id : "");
  snprintf(s->cp_id, sizeof(s->cp_id), "%s",
           r->checkpoint_id ? r->checkpoint_id : "");
}

int of_started_done(void *data) {
  return ((of_started_t *)data)->done;
}
