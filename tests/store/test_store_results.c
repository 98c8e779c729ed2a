/*
 * test_store_results.c - Criterion suite for the paged reads of
 * per-resource results in server/store (store_result_page,
 * store_result_count, store_checkpoint_head): pages follow (type, id)
 * order and join to every result once, counts are per operation, and a
 * checkpoint's head names its newest delete operation.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "store.h"

static char dir[64];
static store_t *st;

static void setup(void) {
  snprintf(dir, sizeof(dir), "/tmp/smaug-store-results-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  cr_assert_eq(store_open(dir, &st), 0);
}

static void teardown(void) {
  store_close(st);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}

TestSuite(store_results, .init = setup, .fini = teardown, .timeout = 20);

static void put_result(const char *owner, const char *type, const char *id) {
  Smaug__V1__Resource r = SMAUG__V1__RESOURCE__INIT;
  r.type = (char *)type;
  r.id = (char *)id;
  Smaug__V1__ResourceResult rr = SMAUG__V1__RESOURCE_RESULT__INIT;
  rr.resource = &r;
  rr.status = SMAUG__V1__TASK_STATUS__TASK_STATUS_DONE;
  cr_assert_eq(store_result_put(st, owner, &rr), 0, "%s", store_errmsg(st));
}

Test(store_results, pages_join_in_type_then_id_order) {
  /* Written out of order, across two types and another owner. */
  char id[16];
  for (int i = 49; i >= 0; i--) {
    snprintf(id, sizeof(id), "r%02d", i);
    put_result("ckp-1", i % 2 ? "b.type" : "a.type", id);
    put_result("ckp-2", "a.type", id);
  }
  uint64_t n = 0;
  cr_assert_eq(store_result_count(st, "ckp-1", &n), 0);
  cr_assert_eq(n, 50);
  cr_assert_eq(store_result_count(st, "nope", &n), 0);
  cr_assert_eq(n, 0);
  char at[32] = "", ai[32] = "", prev[64] = "";
  size_t seen = 0;
  for (int pages = 0;; pages++) {
    cr_assert_lt(pages, 20, "the pages do not end");
    Smaug__V1__ResourceResult **rs;
    size_t k;
    cr_assert_eq(store_result_page(st, "ckp-1", at, ai, 7, &rs, &k), 0);
    cr_assert_leq(k, 7);
    for (size_t i = 0; i < k; i++) {
      char key[64];
      snprintf(key, sizeof(key), "%s#%s", rs[i]->resource->type,
               rs[i]->resource->id);
      cr_assert_gt(strcmp(key, prev), 0, "%s after %s", key, prev);
      strcpy(prev, key);
    }
    seen += k;
    if (k > 0) {
      snprintf(at, sizeof(at), "%s", rs[k - 1]->resource->type);
      snprintf(ai, sizeof(ai), "%s", rs[k - 1]->resource->id);
    }
    store_msgs_free(rs, k);
    if (k < 7)
      break;
  }
  cr_assert_eq(seen, 50);
  cr_assert_str_eq(prev, "b.type#r49");
}

Test(store_results, page_refuses_a_zero_limit) {
  Smaug__V1__ResourceResult **rs;
  size_t k;
  cr_assert_eq(store_result_page(st, "ckp-1", "", "", 0, &rs, &k), UV_EINVAL);
}

Test(store_results, head_names_the_newest_delete_operation) {
  Smaug__V1__Checkpoint c = SMAUG__V1__CHECKPOINT__INIT;
  c.id = "ckp-1";
  c.plan_id = "pln-1";
  c.status = SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_AVAILABLE;
  cr_assert_eq(store_checkpoint_put(st, &c), 0);
  int status = 0;
  char *del = (char *)"unset";
  cr_assert_eq(store_checkpoint_head(st, "ckp-1", &status, &del), 0);
  cr_assert_eq(status, c.status);
  cr_assert_null(del);
  cr_assert_eq(store_checkpoint_head(st, "ckp-9", &status, &del), UV_ENOENT);

  const char *ops[] = {"op-protect", "op-del-1", "op-del-2"};
  int kinds[] = {SMAUG__V1__OPERATION_KIND__OPERATION_KIND_PROTECT,
                 SMAUG__V1__OPERATION_KIND__OPERATION_KIND_DELETE,
                 SMAUG__V1__OPERATION_KIND__OPERATION_KIND_DELETE};
  for (int i = 0; i < 3; i++) {
    store_op_t op = {.id = (char *)ops[i],
                     .kind = kinds[i],
                     .target_id = "ckp-1",
                     .checkpoint_id = "ckp-1",
                     .created_at_ms = 1000 + i};
    cr_assert_eq(store_op_put(st, &op), 0, "%s", store_errmsg(st));
  }
  c.status = SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_DELETED;
  cr_assert_eq(store_checkpoint_put(st, &c), 0);
  cr_assert_eq(store_checkpoint_head(st, "ckp-1", &status, &del), 0);
  cr_assert_eq(status, c.status);
  cr_assert_str_eq(del, "op-del-2");
  free(del);
}
