/*
 * test_store.c - Criterion suite for server/store: schema and migrations,
 * object round trips, list filters and paging, batches, events and the
 * durability of a committed batch across reopen, event pruning and the
 * error for a file that is not a database, and the paged reads of
 * per-resource results.
 */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "store.h"

static char dir[64];
static store_t *st;

static void setup(void) {
  snprintf(dir, sizeof(dir), "/tmp/smaug-store-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  cr_assert_eq(store_open(dir, &st), 0);
}

static void teardown(void) {
  store_close(st);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}

TestSuite(store, .init = setup, .fini = teardown, .timeout = 20);

static void put_plan(const char *id, const char *name) {
  Smaug__V1__Plan p = SMAUG__V1__PLAN__INIT;
  p.id = (char *)id;
  p.name = (char *)name;
  cr_assert_eq(store_plan_put(st, &p), 0, "%s", store_errmsg(st));
}

static void put_cp(const char *id, const char *plan, int status,
                   int64_t created) {
  Smaug__V1__Checkpoint c = SMAUG__V1__CHECKPOINT__INIT;
  c.id = (char *)id;
  c.plan_id = (char *)plan;
  c.status = status;
  c.created_at_ms = created;
  cr_assert_eq(store_checkpoint_put(st, &c), 0, "%s", store_errmsg(st));
}

Test(store, open_sets_schema_version_and_wal) {
  cr_assert_eq(store_schema_version(st), STORE_SCHEMA_VERSION);
  char wal[96];
  put_plan("pln-1", "a"); /* a write creates the WAL file */
  snprintf(wal, sizeof(wal), "%s/smaug.db-wal", dir);
  struct stat sb;
  cr_assert_eq(stat(wal, &sb), 0, "no WAL file: journal mode is not WAL");
}

Test(store, reopen_keeps_committed_data) {
  put_plan("pln-1", "first");
  store_close(st);
  cr_assert_eq(store_open(dir, &st), 0);
  Smaug__V1__Plan *p = NULL;
  cr_assert_eq(store_plan_get(st, "pln-1", &p), 0);
  cr_assert_str_eq(p->name, "first");
  protobuf_c_message_free_unpacked(&p->base, NULL);
}

Test(store, refuses_newer_schema) {
  store_close(st);
  st = NULL;
  char path[96];
  snprintf(path, sizeof(path), "%s/smaug.db", dir);
  sqlite3 *db;
  cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
  cr_assert_eq(sqlite3_exec(db, "UPDATE schema_version SET version=99", NULL,
                            NULL, NULL),
               SQLITE_OK);
  sqlite3_close(db);
  cr_assert_eq(store_open(dir, &st), UV_EPROTO);
  cr_assert_null(st);
}

Test(store, missing_plan_is_enoent) {
  Smaug__V1__Plan *p = NULL;
  cr_assert_eq(store_plan_get(st, "pln-none", &p), UV_ENOENT);
  cr_assert_null(p);
  cr_assert_eq(store_plan_delete(st, "pln-none"), UV_ENOENT);
}

Test(store, plan_update_keeps_list_order) {
  put_plan("pln-a", "a");
  put_plan("pln-b", "b");
  put_plan("pln-a", "a2");
  Smaug__V1__Plan **ps;
  size_t n;
  uint64_t next;
  cr_assert_eq(store_plan_list(st, 0, 10, &ps, &n, &next), 0);
  cr_assert_eq(n, 2);
  cr_assert_str_eq(ps[0]->id, "pln-a");
  cr_assert_str_eq(ps[0]->name, "a2");
  cr_assert_eq(next, 0);
  store_msgs_free(ps, n);
}

Test(store, plan_list_pages) {
  char id[16];
  for (int i = 0; i < 5; i++) {
    snprintf(id, sizeof(id), "pln-%d", i);
    put_plan(id, "x");
  }
  Smaug__V1__Plan **ps;
  size_t n, total = 0;
  uint64_t cur = 0;
  int pages = 0;
  do {
    cr_assert_eq(store_plan_list(st, cur, 2, &ps, &n, &cur), 0);
    for (size_t i = 0; i < n; i++) {
      snprintf(id, sizeof(id), "pln-%zu", total + i);
      cr_assert_str_eq(ps[i]->id, id);
    }
    total += n;
    pages++;
    store_msgs_free(ps, n);
  } while (cur != 0);
  cr_assert_eq(total, 5);
  cr_assert_eq(pages, 3);
}

Test(store, checkpoint_filters) {
  put_cp("ckp-1", "pln-a",
         SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_AVAILABLE, 1000);
  put_cp("ckp-2", "pln-b",
         SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_AVAILABLE, 2000);
  put_cp("ckp-3", "pln-a",
         SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_ERROR, 3000);
  Smaug__V1__Checkpoint **cs;
  size_t n;
  uint64_t next;
  store_cp_filter_t f = {.plan_id = "pln-a"};
  cr_assert_eq(store_checkpoint_list(st, &f, 0, 0, &cs, &n, &next), 0);
  cr_assert_eq(n, 2);
  cr_assert_str_eq(cs[0]->id, "ckp-3"); /* newest first */
  store_msgs_free(cs, n);

  f = (store_cp_filter_t){
      .status = SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_AVAILABLE,
      .created_after_ms = 1500};
  cr_assert_eq(store_checkpoint_list(st, &f, 0, 0, &cs, &n, &next), 0);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(cs[0]->id, "ckp-2");
  store_msgs_free(cs, n);

  f = (store_cp_filter_t){.created_before_ms = 2000};
  cr_assert_eq(store_checkpoint_list(st, &f, 0, 0, &cs, &n, &next), 0);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(cs[0]->id, "ckp-1");
  store_msgs_free(cs, n);
}

Test(store, checkpoint_list_pages_newest_first) {
  put_cp("ckp-1", "p", 2, 1);
  put_cp("ckp-2", "p", 2, 2);
  put_cp("ckp-3", "p", 2, 3);
  Smaug__V1__Checkpoint **cs;
  size_t n;
  uint64_t next;
  cr_assert_eq(store_checkpoint_list(st, NULL, 0, 2, &cs, &n, &next), 0);
  cr_assert_eq(n, 2);
  cr_assert_neq(next, 0);
  store_msgs_free(cs, n);
  cr_assert_eq(store_checkpoint_list(st, NULL, next, 2, &cs, &n, &next), 0);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(cs[0]->id, "ckp-1");
  cr_assert_eq(next, 0);
  store_msgs_free(cs, n);
}

Test(store, checkpoint_body_excludes_results) {
  Smaug__V1__Resource r = SMAUG__V1__RESOURCE__INIT;
  r.type = "t";
  r.id = "1";
  Smaug__V1__ResourceResult res = SMAUG__V1__RESOURCE_RESULT__INIT;
  res.resource = &r;
  Smaug__V1__ResourceResult *rp = &res;
  Smaug__V1__Checkpoint c = SMAUG__V1__CHECKPOINT__INIT;
  c.id = "ckp-1";
  c.n_results = 1;
  c.results = &rp;
  cr_assert_eq(store_checkpoint_put(st, &c), 0);
  Smaug__V1__Checkpoint *got;
  cr_assert_eq(store_checkpoint_get(st, "ckp-1", &got), 0);
  cr_assert_eq(got->n_results, 0);
  protobuf_c_message_free_unpacked(&got->base, NULL);
}

Test(store, results_round_trip_with_reason) {
  Smaug__V1__Resource r = SMAUG__V1__RESOURCE__INIT;
  r.type = "smaug.volume";
  r.id = "v1";
  Smaug__V1__ResourceResult res = SMAUG__V1__RESOURCE_RESULT__INIT;
  res.resource = &r;
  res.status = SMAUG__V1__TASK_STATUS__TASK_STATUS_FAILED;
  res.reason = "disk gone";
  cr_assert_eq(store_result_put(st, "op-1", &res), 0);
  res.reason = "disk really gone"; /* replace */
  cr_assert_eq(store_result_put(st, "op-1", &res), 0);
  Smaug__V1__ResourceResult **rs;
  size_t n;
  cr_assert_eq(store_result_list(st, "op-1", &rs, &n), 0);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(rs[0]->reason, "disk really gone");
  cr_assert_eq(rs[0]->status, SMAUG__V1__TASK_STATUS__TASK_STATUS_FAILED);
  store_msgs_free(rs, n);
}

Test(store, running_operations_listed_until_cleared) {
  store_op_t op = {.id = "op-1",
                   .kind = 1,
                   .target_id = "ckp-1",
                   .checkpoint_id = "ckp-1",
                   .running = 1,
                   .params = (uint8_t *)"\x0a\x00",
                   .params_len = 2};
  cr_assert_eq(store_op_put(st, &op), 0);
  store_op_t **ops;
  size_t n;
  cr_assert_eq(store_op_list_running(st, &ops, &n), 0);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(ops[0]->target_id, "ckp-1");
  cr_assert_eq(ops[0]->params_len, 2);
  store_ops_free(ops, n);
  cr_assert_eq(store_op_set_running(st, "op-1", 0), 0);
  cr_assert_eq(store_op_list_running(st, &ops, &n), 0);
  cr_assert_eq(n, 0);
  store_ops_free(ops, n);
  cr_assert_eq(store_op_set_running(st, "op-x", 0), UV_ENOENT);
}

static void count_task(const char *task_id, int status, const uint8_t *p,
                       size_t len, void *data) {
  int *seen = data;
  if (strcmp(task_id, "P:t#1") == 0 && status == 4 && len == 3 &&
      memcmp(p, "abc", 3) == 0)
    (*seen)++;
}

Test(store, task_outputs_round_trip) {
  cr_assert_eq(store_task_put(st, "op-1", "P:t#1", 4, (uint8_t *)"abc", 3), 0);
  cr_assert_eq(store_task_put(st, "op-2", "P:t#1", 4, (uint8_t *)"abc", 3), 0);
  int seen = 0;
  cr_assert_eq(store_task_each(st, "op-1", count_task, &seen), 0);
  cr_assert_eq(seen, 1);
}

static void append(const char *op, uint64_t seq, int kind) {
  Smaug__V1__OperationEvent ev = SMAUG__V1__OPERATION_EVENT__INIT;
  ev.operation_id = (char *)op;
  ev.sequence = seq;
  ev.kind = kind;
  cr_assert_eq(store_event_append(st, &ev), 0, "%s", store_errmsg(st));
}

Test(store, events_listed_after_sequence) {
  for (uint64_t i = 1; i <= 5; i++)
    append("op-1", i, SMAUG__V1__EVENT_KIND__EVENT_KIND_DONE);
  append("op-2", 1, SMAUG__V1__EVENT_KIND__EVENT_KIND_DONE);
  Smaug__V1__OperationEvent **evs;
  size_t n;
  cr_assert_eq(store_event_list(st, "op-1", 3, 0, &evs, &n), 0);
  cr_assert_eq(n, 2);
  cr_assert_eq(evs[0]->sequence, 4);
  cr_assert_eq(evs[1]->sequence, 5);
  store_msgs_free(evs, n);
  uint64_t last;
  cr_assert_eq(store_event_last_seq(st, "op-1", &last), 0);
  cr_assert_eq(last, 5);
}

Test(store, huge_after_sequence_lists_nothing) {
  append("op-1", 1, SMAUG__V1__EVENT_KIND__EVENT_KIND_QUEUED);
  Smaug__V1__OperationEvent **evs;
  size_t n;
  cr_assert_eq(store_event_list(st, "op-1", UINT64_MAX - 1, 0, &evs, &n), 0);
  cr_expect_eq(n, 0);
  store_msgs_free(evs, n);
}

Test(store, duplicate_event_sequence_refused) {
  append("op-1", 1, SMAUG__V1__EVENT_KIND__EVENT_KIND_QUEUED);
  Smaug__V1__OperationEvent ev = SMAUG__V1__OPERATION_EVENT__INIT;
  ev.operation_id = "op-1";
  ev.sequence = 1;
  cr_assert_eq(store_event_append(st, &ev), UV_EEXIST);
}

Test(store, batch_commits_on_flush_only) {
  cr_assert_eq(store_batch(st), 0);
  cr_assert_eq(store_batch(st), 0); /* idempotent */
  append("op-1", 1, SMAUG__V1__EVENT_KIND__EVENT_KIND_QUEUED);
  append("op-1", 2, SMAUG__V1__EVENT_KIND__EVENT_KIND_STARTED);

  /* A second connection must not see the uncommitted batch. */
  store_t *other;
  cr_assert_eq(store_open(dir, &other), 0);
  uint64_t last = 99;
  cr_assert_eq(store_event_last_seq(other, "op-1", &last), 0);
  cr_assert_eq(last, 0);
  cr_assert_eq(store_flush(st), 0);
  cr_assert_eq(store_in_batch(st), 0);
  cr_assert_eq(store_event_last_seq(other, "op-1", &last), 0);
  cr_assert_eq(last, 2);
  store_close(other);
}

Test(store, restore_list_by_checkpoint) {
  Smaug__V1__Restore r = SMAUG__V1__RESTORE__INIT;
  r.id = "rst-1";
  r.checkpoint_id = "ckp-1";
  cr_assert_eq(store_restore_put(st, &r), 0);
  r.id = "rst-2";
  r.checkpoint_id = "ckp-2";
  cr_assert_eq(store_restore_put(st, &r), 0);
  Smaug__V1__Restore **rs;
  size_t n;
  uint64_t next;
  cr_assert_eq(store_restore_list(st, "ckp-2", 0, 0, &rs, &n, &next), 0);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(rs[0]->id, "rst-2");
  store_msgs_free(rs, n);
  Smaug__V1__Restore *got;
  cr_assert_eq(store_restore_get(st, "rst-3", &got), UV_ENOENT);
}

Test(store, migrates_version_1_database) {
  /* Make the database look like schema 1: no plugins table. */
  store_close(st);
  st = NULL;
  char path[96];
  snprintf(path, sizeof(path), "%s/smaug.db", dir);
  sqlite3 *db;
  cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
  cr_assert_eq(sqlite3_exec(db,
                            "DROP TABLE plugins; UPDATE schema_version SET "
                            "version=1",
                            NULL, NULL, NULL),
               SQLITE_OK);
  sqlite3_close(db);
  cr_assert_eq(store_open(dir, &st), 0);
  cr_expect_eq(store_schema_version(st), 2);
  const char *addrs[] = {"127.0.0.1:1"};
  cr_expect_eq(store_plugins_set(st, addrs, 1, 5), 0, "%s", store_errmsg(st));
}

Test(store, plugin_addresses_replaced_as_a_set) {
  const char *a[] = {"127.0.0.1:1", "unix:/tmp/p.sock"};
  cr_assert_eq(store_plugins_set(st, a, 2, 10), 0);
  const char *b[] = {"unix:/tmp/p.sock"};
  cr_assert_eq(store_plugins_set(st, b, 1, 11), 0);
  char **got;
  size_t n;
  cr_assert_eq(store_plugins_list(st, &got, &n), 0);
  cr_assert_eq(n, 1);
  cr_expect_str_eq(got[0], "unix:/tmp/p.sock");
  store_strs_free(got, n);
}

static void put_op(const char *id, int running, int64_t created) {
  store_op_t op = {.id = (char *)id,
                   .kind = 1,
                   .target_id = "ckp-1",
                   .checkpoint_id = "ckp-1",
                   .running = running,
                   .created_at_ms = created};
  cr_assert_eq(store_op_put(st, &op), 0, "%s", store_errmsg(st));
}

static size_t event_count(const char *op) {
  Smaug__V1__OperationEvent **evs;
  size_t n;
  cr_assert_eq(store_event_list(st, op, 0, 0, &evs, &n), 0);
  store_msgs_free(evs, n);
  return n;
}

Test(store, prune_takes_only_old_finished_operations) {
  put_op("op-old", 0, 1000);
  put_op("op-run", 1, 1000);
  put_op("op-new", 0, 5000);
  for (uint64_t i = 1; i <= 3; i++) {
    append("op-old", i, SMAUG__V1__EVENT_KIND__EVENT_KIND_DONE);
    append("op-run", i, SMAUG__V1__EVENT_KIND__EVENT_KIND_DONE);
    append("op-new", i, SMAUG__V1__EVENT_KIND__EVENT_KIND_DONE);
  }
  uint32_t deleted = 0;
  /* A page at a time: 2, then the last one, then nothing. */
  cr_assert_eq(store_event_prune(st, 2000, 2, &deleted), 0, "%s",
               store_errmsg(st));
  cr_expect_eq(deleted, 2);
  cr_assert_eq(store_event_prune(st, 2000, 2, &deleted), 0);
  cr_expect_eq(deleted, 1);
  cr_assert_eq(store_event_prune(st, 2000, 2, &deleted), 0);
  cr_expect_eq(deleted, 0);
  cr_expect_eq(event_count("op-old"), 0);
  cr_expect_eq(event_count("op-run"), 3, "a running op's events were pruned");
  cr_expect_eq(event_count("op-new"), 3);
  /* Once it has finished, the old running one goes too. */
  cr_assert_eq(store_op_set_running(st, "op-run", 0), 0);
  cr_assert_eq(store_event_prune(st, 2000, 0, &deleted), 0);
  cr_expect_eq(deleted, 3);
  cr_expect_eq(event_count("op-new"), 3);
}

Test(store, not_a_database_is_eftype) {
  char other[96], path[128];
  snprintf(other, sizeof(other), "%s/x", dir);
  cr_assert_eq(mkdir(other, 0700), 0);
  snprintf(path, sizeof(path), "%s/smaug.db", other);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  for (int i = 0; i < 4096; i++)
    fputc((i * 7919) & 0xff, f);
  fclose(f);
  store_t *bad = NULL;
  cr_expect_eq(store_open(other, &bad), UV_EFTYPE);
  cr_expect_null(bad);
}

/* ------------------------------------ paged reads of per-resource results */

static void put_result_of(const char *owner, const char *type, const char *id) {
  Smaug__V1__Resource r = SMAUG__V1__RESOURCE__INIT;
  r.type = (char *)type;
  r.id = (char *)id;
  Smaug__V1__ResourceResult rr = SMAUG__V1__RESOURCE_RESULT__INIT;
  rr.resource = &r;
  rr.status = SMAUG__V1__TASK_STATUS__TASK_STATUS_DONE;
  cr_assert_eq(store_result_put(st, owner, &rr), 0, "%s", store_errmsg(st));
}

Test(store, pages_join_in_type_then_id_order) {
  /* Written out of order, across two types and another owner. */
  char id[16];
  for (int i = 49; i >= 0; i--) {
    snprintf(id, sizeof(id), "r%02d", i);
    put_result_of("ckp-1", i % 2 ? "b.type" : "a.type", id);
    put_result_of("ckp-2", "a.type", id);
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

Test(store, page_refuses_a_zero_limit) {
  Smaug__V1__ResourceResult **rs;
  size_t k;
  cr_assert_eq(store_result_page(st, "ckp-1", "", "", 0, &rs, &k), UV_EINVAL);
}

Test(store, head_names_the_newest_delete_operation) {
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
