/*
 * test_store.c - Criterion suite for server/store: schema and migrations,
 * object round trips, list filters and paging, batches, events and the
 * durability of a committed batch across reopen, event pruning and the
 * error for a file that is not a database, and the paged reads of
 * per-resource results.
 */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "store.h"

static char dir[64];
static store_t *st;
static uv_loop_t loop;

static void setup(void) {
  snprintf(dir, sizeof(dir), "/tmp/smaug-store-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(store_open(&loop, dir, &st), 0);
}

static void teardown(void) {
  store_close(st);
  /* Every commit's job has ended and nothing is left on the loop. */
  cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  cr_assert_eq(uv_loop_close(&loop), 0);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}

TestSuite(store, .init = setup, .fini = teardown, .timeout = 20);

/* Commits what the test queued: reads see committed state only. */
static void flush(void) {
  cr_assert_eq(store_flush(st), 0, "%s", store_errmsg(st));
}

static void put_plan(const char *id, const char *name) {
  Smaug__V1__Plan p = SMAUG__V1__PLAN__INIT;
  p.id = (char *)id;
  p.name = (char *)name;
  cr_assert_eq(store_plan_put(st, &p), 0, "%s", store_errmsg(st));
  flush();
}

static void put_cp(const char *id, const char *plan, int status,
                   int64_t created) {
  Smaug__V1__Checkpoint c = SMAUG__V1__CHECKPOINT__INIT;
  c.id = (char *)id;
  c.plan_id = (char *)plan;
  c.status = status;
  c.created_at_ms = created;
  cr_assert_eq(store_checkpoint_put(st, &c), 0, "%s", store_errmsg(st));
  flush();
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
  cr_assert_eq(store_open(&loop, dir, &st), 0);
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
  cr_assert_eq(store_open(&loop, dir, &st), UV_EPROTO);
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
  cr_assert_eq(store_plan_list(st, NULL, 0, 10, &ps, &n, &next), 0);
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
    cr_assert_eq(store_plan_list(st, NULL, cur, 2, &ps, &n, &cur), 0);
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

/* Every object keeps its tenant (the default when none is given); lists
 * filter on it; a replace keeps the row's tenant; store_tenant_get reads
 * the column alone. */
Test(store, tenants) {
  Smaug__V1__Plan p = SMAUG__V1__PLAN__INIT;
  p.id = "pln-a";
  p.tenant = "a";
  cr_assert_eq(store_plan_put(st, &p), 0);
  p.id = "pln-b";
  p.tenant = "b";
  cr_assert_eq(store_plan_put(st, &p), 0);
  put_plan("pln-d", "no tenant");
  Smaug__V1__Checkpoint c = SMAUG__V1__CHECKPOINT__INIT;
  c.id = "ckp-a";
  c.plan_id = "pln-a";
  c.tenant = "a";
  cr_assert_eq(store_checkpoint_put(st, &c), 0);
  Smaug__V1__Restore r = SMAUG__V1__RESTORE__INIT;
  r.id = "rst-a";
  r.checkpoint_id = "ckp-a";
  r.tenant = "a";
  cr_assert_eq(store_restore_put(st, &r), 0);
  store_op_t op = {.id = "op-a",
                   .target_id = "ckp-a",
                   .checkpoint_id = "ckp-a",
                   .tenant = "a"};
  cr_assert_eq(store_op_put(st, &op), 0);
  flush();

  Smaug__V1__Plan **ps;
  size_t n;
  uint64_t next;
  cr_assert_eq(store_plan_list(st, "a", 0, 0, &ps, &n, &next), 0);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(ps[0]->id, "pln-a");
  cr_assert_str_eq(ps[0]->tenant, "a");
  store_msgs_free(ps, n);
  cr_assert_eq(store_plan_list(st, "", 0, 0, &ps, &n, &next), 0);
  cr_assert_eq(n, 3);
  cr_assert_str_eq(ps[2]->tenant, STORE_TENANT_DEFAULT);
  store_msgs_free(ps, n);
  cr_assert_eq(store_plan_list(st, "c", 0, 0, &ps, &n, &next), 0);
  cr_assert_eq(n, 0);
  store_msgs_free(ps, n);

  /* A replace with another tenant keeps the row's. */
  p.id = "pln-a";
  p.tenant = "b";
  p.name = "renamed";
  cr_assert_eq(store_plan_put(st, &p), 0);
  flush();
  Smaug__V1__Plan *got;
  cr_assert_eq(store_plan_get(st, "pln-a", &got), 0);
  cr_assert_str_eq(got->name, "renamed");
  cr_assert_str_eq(got->tenant, "a");
  protobuf_c_message_free_unpacked(&got->base, NULL);

  Smaug__V1__Checkpoint **cs;
  store_cp_filter_t f = {.tenant = "b"};
  cr_assert_eq(store_checkpoint_list(st, &f, 0, 0, &cs, &n, &next), 0);
  cr_assert_eq(n, 0);
  store_msgs_free(cs, n);
  f.tenant = "a";
  cr_assert_eq(store_checkpoint_list(st, &f, 0, 0, &cs, &n, &next), 0);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(cs[0]->tenant, "a");
  store_msgs_free(cs, n);
  Smaug__V1__Restore **rs;
  cr_assert_eq(store_restore_list(st, NULL, "b", 0, 0, &rs, &n, &next), 0);
  cr_assert_eq(n, 0);
  store_msgs_free(rs, n);
  cr_assert_eq(store_restore_list(st, "ckp-a", "a", 0, 0, &rs, &n, &next), 0);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(rs[0]->tenant, "a");
  store_msgs_free(rs, n);

  store_op_t *o;
  cr_assert_eq(store_op_get(st, "op-a", &o), 0);
  cr_assert_str_eq(o->tenant, "a");
  store_op_free(o);

  static const struct {
    store_kind_t kind;
    const char *id, *tenant;
  } want[] = {{STORE_PLAN, "pln-a", "a"},
              {STORE_PLAN, "pln-d", STORE_TENANT_DEFAULT},
              {STORE_CHECKPOINT, "ckp-a", "a"},
              {STORE_RESTORE, "rst-a", "a"},
              {STORE_OPERATION, "op-a", "a"}};
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    char *t = NULL;
    cr_assert_eq(store_tenant_get(st, want[i].kind, want[i].id, &t), 0);
    cr_assert_str_eq(t, want[i].tenant);
    free(t);
  }
  char *t = NULL;
  cr_assert_eq(store_tenant_get(st, STORE_CHECKPOINT, "pln-a", &t), UV_ENOENT);
  cr_assert_null(t);
  cr_assert_eq(store_tenant_get(st, (store_kind_t)9, "pln-a", &t), UV_EINVAL);
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
  flush();
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
  flush();
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
  flush();
  store_op_t **ops;
  size_t n;
  cr_assert_eq(store_op_list_running(st, &ops, &n), 0);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(ops[0]->target_id, "ckp-1");
  cr_assert_eq(ops[0]->params_len, 2);
  store_ops_free(ops, n);
  cr_assert_eq(store_op_set_running(st, "op-1", 0), 0);
  flush();
  cr_assert_eq(store_op_list_running(st, &ops, &n), 0);
  cr_assert_eq(n, 0);
  store_ops_free(ops, n);
  cr_assert_eq(store_op_set_running(st, "op-x", 0), UV_ENOENT);
}

static void count_task(const store_task_t *t, void *data) {
  int *seen = data;
  if (t->activity == 1 && strcmp(t->type, "t") == 0 &&
      strcmp(t->id, "1#x") == 0 && t->status == 4 && t->started_at_ms == 7 &&
      t->finished_at_ms == -8 && t->len == 3 &&
      memcmp(t->payload, "abc", 3) == 0)
    (*seen)++;
}

Test(store, task_outputs_round_trip) {
  store_task_t t = {.activity = 1,
                    .type = "t",
                    .id = "1#x",
                    .status = 4,
                    .started_at_ms = 7,
                    .finished_at_ms = -8,
                    .payload = (const uint8_t *)"abc",
                    .len = 3};
  cr_assert_eq(store_task_put(st, "op-1", &t), 0);
  cr_assert_eq(store_task_put(st, "op-2", &t), 0);
  t.activity = 3;
  cr_assert_eq(store_task_put(st, "op-1", &t), UV_EINVAL);
  flush();
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
  flush();
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
  cr_assert_eq(store_event_append(st, &ev), 0);
  cr_assert_eq(store_flush(st), UV_EEXIST);
}

Test(store, writes_invisible_until_committed) {
  Smaug__V1__OperationEvent ev = SMAUG__V1__OPERATION_EVENT__INIT;
  ev.operation_id = "op-1";
  for (ev.sequence = 1; ev.sequence <= 2; ev.sequence++)
    cr_assert_eq(store_event_append(st, &ev), 0);
  cr_assert_eq(store_in_batch(st), 1);

  /* Neither this store's reads nor a second store see the queued writes. */
  store_t *other;
  cr_assert_eq(store_open(&loop, dir, &other), 0);
  uint64_t last = 99;
  cr_assert_eq(store_event_last_seq(st, "op-1", &last), 0);
  cr_assert_eq(last, 0);
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
  flush();
  Smaug__V1__Restore **rs;
  size_t n;
  uint64_t next;
  cr_assert_eq(store_restore_list(st, "ckp-2", NULL, 0, 0, &rs, &n, &next), 0);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(rs[0]->id, "rst-2");
  store_msgs_free(rs, n);
  Smaug__V1__Restore *got;
  cr_assert_eq(store_restore_get(st, "rst-3", &got), UV_ENOENT);
}

/* Replaces the test's database with the schema-2 fixture, after running
 * `sql` on it (NULL: none), and reopens. */
static void open_schema2(const char *sql) {
  store_close(st);
  st = NULL;
  char cmd[256], path[96];
  snprintf(cmd, sizeof(cmd), "rm -f %s/smaug.db*; cp %s/schema2.db %s/smaug.db",
           dir, STORE_FIXTURES, dir);
  cr_assert_eq(system(cmd), 0);
  if (sql) {
    sqlite3 *db;
    snprintf(path, sizeof(path), "%s/smaug.db", dir);
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
  }
  cr_assert_eq(store_open(&loop, dir, &st), 0, "%s", store_errmsg(st));
  cr_expect_eq(store_schema_version(st), STORE_SCHEMA_VERSION);
}

Test(store, migrates_version_1_database) {
  open_schema2("DROP TABLE plugins; UPDATE schema_version SET version=1");
  const char *addrs[] = {"127.0.0.1:1"};
  cr_expect_eq(store_plugins_set(st, addrs, 1, 5), 0, "%s", store_errmsg(st));
  cr_expect_eq(store_flush(st), 0, "%s", store_errmsg(st));
}

typedef struct {
  int n;
  store_task_t t[4];
  char type[4][32], id[4][32], payload[4][32];
} tasks_seen_t;

static void keep_task(const store_task_t *t, void *data) {
  tasks_seen_t *ts = data;
  cr_assert_lt(ts->n, 4);
  int i = ts->n++;
  ts->t[i] = *t;
  snprintf(ts->type[i], 32, "%s", t->type);
  snprintf(ts->id[i], 32, "%s", t->id);
  snprintf(ts->payload[i], 32, "%.*s", (int)t->len, (const char *)t->payload);
}

/* A database the schema-2 store wrote: task outputs move from "P:type#id"
 * keys and time-prefixed payloads to columns; the rest is kept. */
Test(store, migrates_version_2_task_outputs_to_columns) {
  open_schema2(NULL);
  tasks_seen_t ts = {0};
  cr_assert_eq(store_task_each(st, "op-1", keep_task, &ts), 0);
  cr_assert_eq(ts.n, 2, "the two malformed rows are dropped");
  int v = ts.t[0].activity == 1 ? 0 : 1, s = 1 - v;
  cr_expect_eq(ts.t[v].activity, 1);
  cr_expect_str_eq(ts.type[v], "smaug.volume");
  cr_expect_str_eq(ts.id[v], "v1");
  cr_expect_eq(ts.t[v].status, 3);
  cr_expect_eq(ts.t[v].started_at_ms, 1700000000123);
  cr_expect_eq(ts.t[v].finished_at_ms, 1700000000456);
  cr_expect_str_eq(ts.payload[v], "state");
  cr_expect_eq(ts.t[s].activity, 2);
  cr_expect_str_eq(ts.type[s], "smaug.server");
  cr_expect_str_eq(ts.id[s], "s#1", "the id keeps its own '#'");
  cr_expect_eq(ts.t[s].started_at_ms, 5);
  cr_expect_eq(ts.t[s].finished_at_ms, 6);
  cr_expect_str_eq(ts.payload[s], "boom");

  Smaug__V1__Plan *p;
  cr_assert_eq(store_plan_get(st, "pln-1", &p), 0);
  cr_expect_str_eq(p->name, "v2 plan");
  cr_expect_str_eq(p->tenant, STORE_TENANT_DEFAULT, "migrated to default");
  protobuf_c_message_free_unpacked(&p->base, NULL);
  uint64_t last = 0;
  cr_assert_eq(store_event_last_seq(st, "op-1", &last), 0);
  cr_expect_eq(last, 1);
  store_op_t **ops;
  size_t n;
  cr_assert_eq(store_op_list_running(st, &ops, &n), 0);
  cr_expect_eq(n, 1);
  cr_expect_str_eq(ops[0]->tenant, STORE_TENANT_DEFAULT);
  store_ops_free(ops, n);
  /* And the new layout takes writes. */
  store_task_t t = {.activity = 2, .type = "t", .id = "1", .status = 1};
  cr_assert_eq(store_task_put(st, "op-1", &t), 0);
  flush();
}

Test(store, plugin_addresses_replaced_as_a_set) {
  const char *a[] = {"127.0.0.1:1", "unix:/tmp/p.sock"};
  cr_assert_eq(store_plugins_set(st, a, 2, 10), 0);
  const char *b[] = {"unix:/tmp/p.sock"};
  cr_assert_eq(store_plugins_set(st, b, 1, 11), 0);
  flush();
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
  flush();
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
  flush();
  cr_assert_eq(store_event_prune(st, 2000, 2, &deleted), 0);
  cr_expect_eq(deleted, 1);
  flush();
  cr_assert_eq(store_event_prune(st, 2000, 2, &deleted), 0);
  cr_expect_eq(deleted, 0);
  flush();
  cr_expect_eq(event_count("op-old"), 0);
  cr_expect_eq(event_count("op-run"), 3, "a running op's events were pruned");
  cr_expect_eq(event_count("op-new"), 3);
  /* Once it has finished, the old running one goes too. */
  cr_assert_eq(store_op_set_running(st, "op-run", 0), 0);
  flush();
  cr_assert_eq(store_event_prune(st, 2000, 0, &deleted), 0);
  cr_expect_eq(deleted, 3);
  flush();
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
  cr_expect_eq(store_open(&loop, other, &bad), UV_EFTYPE);
  cr_expect_null(bad);
}

/* ------------------------------------------------- asynchronous commits */

typedef struct {
  int order[16];
  int status[16];
  int n;
  int saw_plan; /* the first callback could read what it covered */
} commits_t;

static commits_t commits;

static void on_commit(store_t *s, int status, void *data) {
  cr_assert_eq(s, st);
  int i = commits.n++;
  commits.order[i] = (int)(intptr_t)data;
  commits.status[i] = status;
  if (i == 0) {
    Smaug__V1__Plan *p;
    if (store_plan_get(st, "pln-a", &p) == 0) {
      commits.saw_plan = 1;
      protobuf_c_message_free_unpacked(&p->base, NULL);
    }
  }
}

static void queue_plan(const char *id, size_t body) {
  Smaug__V1__Plan p = SMAUG__V1__PLAN__INIT;
  char *name = malloc(body + 1);
  cr_assert_not_null(name);
  memset(name, 'n', body);
  name[body] = '\0';
  p.id = (char *)id;
  p.name = name;
  cr_assert_eq(store_plan_put(st, &p), 0);
  free(name);
}

static int plan_exists(const char *id) {
  Smaug__V1__Plan *p;
  int err = store_plan_get(st, id, &p);
  if (err == 0)
    protobuf_c_message_free_unpacked(&p->base, NULL);
  return err == 0;
}

/* Callbacks run on the loop, never inside store_commit(), once per
 * commit, in the order asked, and a write is readable in the callback of
 * the commit that covers it. */
Test(store, commit_callbacks_run_in_order_once_durable) {
  memset(&commits, 0, sizeof(commits));
  queue_plan("pln-a", 10);
  cr_assert_eq(store_commit(st, on_commit, (void *)1), 0);
  queue_plan("pln-b", 10);
  cr_assert_eq(store_commit(st, on_commit, (void *)2), 0);
  cr_assert_eq(store_commit(st, on_commit, (void *)3), 0); /* nothing new */
  cr_assert_eq(commits.n, 0, "a callback ran inside store_commit()");
  cr_assert_eq(store_commit(st, NULL, NULL), UV_EINVAL);
  cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  cr_assert_eq(commits.n, 3);
  for (int i = 0; i < 3; i++) {
    cr_expect_eq(commits.order[i], i + 1);
    cr_expect_eq(commits.status[i], 0);
  }
  cr_expect(commits.saw_plan, "the first callback could not read its write");
  cr_expect(plan_exists("pln-b"));
  cr_expect_eq(store_in_batch(st), 0);
}

/* store_flush() calls the callbacks of earlier commits first. */
Test(store, flush_delivers_earlier_commits_first) {
  memset(&commits, 0, sizeof(commits));
  queue_plan("pln-a", 10);
  cr_assert_eq(store_commit(st, on_commit, (void *)1), 0);
  queue_plan("pln-b", 10);
  cr_assert_eq(store_flush(st), 0);
  cr_assert_eq(commits.n, 1);
  cr_expect(plan_exists("pln-b"));
  cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  cr_assert_eq(commits.n, 1, "a commit called back twice");
}

/* A full disk: the commit fails with UV_ENOSPC and loses its writes, and
 * so is every write queued before the failure was reported; once there
 * is room, the next commit goes through. */
Test(store, full_disk_fails_the_commit_and_loses_its_writes) {
  memset(&commits, 0, sizeof(commits));
  queue_plan("pln-small", 10);
  flush();
  cr_assert_eq(store_sqlite_limit_pages(st, 1), 0); /* no page more */
  queue_plan("pln-a", 1 << 20);
  cr_assert_eq(store_commit(st, on_commit, (void *)1), 0);
  queue_plan("pln-b", 10); /* queued before the failure is reported */
  cr_assert_eq(store_commit(st, on_commit, (void *)2), 0);
  cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  cr_assert_eq(commits.n, 2);
  cr_expect_eq(commits.status[0], UV_ENOSPC, "%s",
               uv_err_name(commits.status[0]));
  cr_expect_eq(commits.status[1], UV_ENOSPC);
  cr_expect(strstr(store_errmsg(st), "full") != NULL, "%s", store_errmsg(st));
  cr_expect_not(plan_exists("pln-a"));
  cr_expect_not(plan_exists("pln-b"));
  cr_expect(plan_exists("pln-small"));
  cr_expect_eq(store_in_batch(st), 0);

  cr_assert_eq(store_sqlite_limit_pages(st, 1u << 30), 0);
  queue_plan("pln-c", 1 << 20);
  cr_assert_eq(store_commit(st, on_commit, (void *)3), 0);
  cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  cr_assert_eq(commits.n, 3);
  cr_expect_eq(commits.status[2], 0);
  cr_expect(plan_exists("pln-c"));
}

/* The synchronous flush reports a full disk too. */
Test(store, full_disk_fails_the_flush) {
  cr_assert_eq(store_sqlite_limit_pages(st, 1), 0);
  queue_plan("pln-a", 1 << 20);
  cr_expect_eq(store_flush(st), UV_ENOSPC);
  cr_expect_not(plan_exists("pln-a"));
  cr_expect_eq(store_in_batch(st), 0);
}

/* Closing with writes queued, one commit asked for and one not: close
 * commits them all and calls the pending callback; a reopen sees them. */
Test(store, close_commits_pending_writes) {
  memset(&commits, 0, sizeof(commits));
  queue_plan("pln-a", 10);
  cr_assert_eq(store_commit(st, on_commit, (void *)1), 0);
  queue_plan("pln-b", 10); /* no commit asked */
  store_close(st);
  st = NULL;
  cr_assert_eq(commits.n, 1);
  cr_expect_eq(commits.status[0], 0);
  cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0); /* frees a running round */
  cr_assert_eq(store_open(&loop, dir, &st), 0);
  cr_expect(plan_exists("pln-a"));
  cr_expect(plan_exists("pln-b"));
}

/* The final status of a checkpoint applies to its latest queued version,
 * uncommitted included: nothing is read back by the caller. */
Test(store, set_status_applies_to_the_queued_version) {
  Smaug__V1__Checkpoint c = SMAUG__V1__CHECKPOINT__INIT;
  c.id = "ckp-1";
  c.plan_id = "pln-1";
  c.status = SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_PROTECTING;
  cr_assert_eq(store_checkpoint_put(st, &c), 0);
  c.operation_id = "op-graph"; /* a second version, uncommitted */
  cr_assert_eq(store_checkpoint_put(st, &c), 0);
  cr_assert_eq(store_checkpoint_set_status(
                   st, "ckp-1",
                   SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_AVAILABLE,
                   42, "done"),
               0);
  cr_assert_eq(store_checkpoint_set_status(st, "ckp-none", 1, 0, NULL), 0);
  flush();
  Smaug__V1__Checkpoint *got;
  cr_assert_eq(store_checkpoint_get(st, "ckp-1", &got), 0);
  cr_expect_str_eq(got->operation_id, "op-graph");
  cr_expect_eq(got->status,
               SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_AVAILABLE);
  cr_expect_eq(got->finished_at_ms, 42);
  cr_expect_str_eq(got->reason, "done");
  protobuf_c_message_free_unpacked(&got->base, NULL);
  store_cp_filter_t f = {
      .status = SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_AVAILABLE};
  Smaug__V1__Checkpoint **cs;
  size_t n;
  uint64_t next;
  cr_assert_eq(store_checkpoint_list(st, &f, 0, 0, &cs, &n, &next), 0);
  cr_expect_eq(n, 1, "the status column follows the body");
  store_msgs_free(cs, n);

  Smaug__V1__Restore r = SMAUG__V1__RESTORE__INIT;
  r.id = "rst-1";
  cr_assert_eq(store_restore_put(st, &r), 0);
  cr_assert_eq(store_restore_set_status(st, "rst-1", 2, 7, "fine"), 0);
  flush();
  Smaug__V1__Restore *rg;
  cr_assert_eq(store_restore_get(st, "rst-1", &rg), 0);
  cr_expect_eq(rg->status, 2);
  cr_expect_eq(rg->finished_at_ms, 7);
  cr_expect_str_eq(rg->reason, "fine");
  protobuf_c_message_free_unpacked(&rg->base, NULL);
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
  flush();
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
  flush();
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
  flush();
  cr_assert_eq(store_checkpoint_head(st, "ckp-1", &status, &del), 0);
  cr_assert_eq(status, c.status);
  cr_assert_str_eq(del, "op-del-2");
  free(del);
}

/* ------------------------------------------------------------- audit */

static void put_audit(const char *who, const char *method, int64_t t) {
  Smaug__V1__AuditEvent e = SMAUG__V1__AUDIT_EVENT__INIT;
  e.who = (char *)who;
  e.method = (char *)method;
  e.time_ms = t;
  e.objects = "checkpoint_id=ckp-1 force=true";
  e.code = "OK";
  e.sequence = 999; /* ignored: the store numbers them */
  cr_assert_eq(store_audit_append(st, &e), 0, "%s", store_errmsg(st));
}

Test(store, audit_filters_and_pages_newest_first) {
  put_audit("ada", "RegisterPlugin", 100);
  put_audit("olga", "Restore", 200);
  put_audit("olga", "Protect", 300);
  put_audit("vic", "DeleteCheckpoint", 400);
  flush();
  Smaug__V1__AuditEvent **e;
  size_t n;
  uint64_t next;
  store_audit_filter_t all = {0};
  cr_assert_eq(store_audit_list(st, &all, 0, 0, &e, &n, &next), 0);
  cr_assert_eq(n, 4);
  cr_assert_eq(next, 0);
  cr_assert_str_eq(e[0]->who, "vic");
  cr_assert_eq(e[0]->sequence, 4);
  cr_assert_eq(e[3]->sequence, 1);
  cr_assert_str_eq(e[3]->objects, "checkpoint_id=ckp-1 force=true");
  store_msgs_free(e, n);
  store_audit_filter_t f = {.who = "olga"};
  cr_assert_eq(store_audit_list(st, &f, 0, 1, &e, &n, &next), 0);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(e[0]->method, "Protect");
  cr_assert_eq(next, 3);
  store_msgs_free(e, n);
  cr_assert_eq(store_audit_list(st, &f, next, 1, &e, &n, &next), 0);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(e[0]->method, "Restore");
  store_msgs_free(e, n);
  f = (store_audit_filter_t){.method = "Restore", .since_ms = 201};
  cr_assert_eq(store_audit_list(st, &f, 0, 0, &e, &n, &next), 0);
  cr_assert_eq(n, 0);
  store_msgs_free(e, n);
  f = (store_audit_filter_t){.since_ms = 300};
  cr_assert_eq(store_audit_list(st, &f, 0, 0, &e, &n, &next), 0);
  cr_assert_eq(n, 2);
  store_msgs_free(e, n);
}

Test(store, audit_prune_takes_the_oldest_first) {
  for (int i = 1; i <= 5; i++)
    put_audit("ada", "Protect", i * 100);
  flush();
  uint32_t deleted = 0;
  cr_assert_eq(store_audit_prune(st, 400, 0, 2, &deleted), 0);
  cr_assert_eq(deleted, 2); /* 100 and 200; 300 is left for the next */
  flush();
  cr_assert_eq(store_audit_prune(st, 400, 0, 2, &deleted), 0);
  cr_assert_eq(deleted, 1);
  flush();
  Smaug__V1__AuditEvent **e;
  size_t n;
  store_audit_filter_t all = {0};
  cr_assert_eq(store_audit_list(st, &all, 0, 0, &e, &n, NULL), 0);
  cr_assert_eq(n, 2);
  cr_assert_eq(e[1]->time_ms, 400);
  store_msgs_free(e, n);
  cr_assert_eq(store_audit_prune(st, 400, 0, 0, &deleted), 0);
  cr_assert_eq(deleted, 0);
}

Test(store, checkpoint_identities_round_trip) {
  cr_assert_eq(store_cp_identity_put(st, "ckp-1", "t.vol", "unix:/a uid=0"), 0);
  cr_assert_eq(store_cp_identity_put(st, "ckp-1", "t.img", "cert:CN=img"), 0);
  cr_assert_eq(store_cp_identity_put(st, "ckp-2", "t.vol", "unix:/b uid=0"), 0);
  cr_assert_eq(store_cp_identity_put(st, "ckp-1", "t.vol", "unix:/c uid=0"),
               0); /* replaces */
  cr_assert_eq(store_cp_identity_put(st, "", "t.vol", "x"), UV_EINVAL);
  flush();
  char **types, **ids;
  size_t n;
  cr_assert_eq(store_cp_identity_list(st, "ckp-1", &types, &ids, &n), 0);
  cr_assert_eq(n, 2);
  cr_assert_str_eq(types[0], "t.img");
  cr_assert_str_eq(ids[0], "cert:CN=img");
  cr_assert_str_eq(types[1], "t.vol");
  cr_assert_str_eq(ids[1], "unix:/c uid=0");
  store_strs_free(types, n);
  store_strs_free(ids, n);
  cr_assert_eq(store_cp_identity_list(st, "ckp-9", &types, &ids, &n), 0);
  cr_assert_eq(n, 0);
  store_strs_free(types, n);
  store_strs_free(ids, n);
}

Test(store, audit_prune_keeps_the_newest_count) {
  for (int i = 1; i <= 6; i++)
    put_audit("ada", "Protect", 1000 + i);
  flush();
  uint32_t deleted = 0;
  cr_assert_eq(store_audit_prune(st, 0, 4, 0, &deleted), 0);
  cr_assert_eq(deleted, 2);
  flush();
  Smaug__V1__AuditEvent **e;
  size_t n;
  store_audit_filter_t all = {0};
  cr_assert_eq(store_audit_list(st, &all, 0, 0, &e, &n, NULL), 0);
  cr_assert_eq(n, 4);
  cr_assert_eq(e[3]->sequence, 3);
  store_msgs_free(e, n);
  cr_assert_eq(store_audit_prune(st, 0, 4, 0, &deleted), 0);
  cr_assert_eq(deleted, 0);
  cr_assert_eq(store_audit_prune(st, 0, 100, 0, &deleted), 0);
  cr_assert_eq(deleted, 0);
}
