/*
 * store_sqlite_read.c - the SQLite backend's reads (see store_sqlite.c).
 *
 * Every read runs on the loop, on the reader connection, which in WAL mode
 * never waits for the writer and sees committed state only: a write is
 * invisible here until its commit has called back. Errors keep SQLite's
 * message as the store's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_sqlite_int.h"

/* ------------------------------------------------- reads, on the reader */

/* The reader's error for `rc`, its message kept as the store's. */
int sq__rerr(sq_t *sq, int rc) {
  int err = sq__conn_err(&sq->r, rc);
  memcpy(sq->errmsg, sq->r.errmsg, sizeof(sq->errmsg));
  return err;
}

sqlite3_stmt *sq__rstmt(sq_t *sq, const char *sql, int *err) {
  sqlite3_stmt *s = sq__conn_stmt(&sq->r, sql, err);
  if (s == NULL)
    memcpy(sq->errmsg, sq->r.errmsg, sizeof(sq->errmsg));
  return s;
}

/* Runs `sql` with `id` as ?1 and reads its one row: UV_ENOENT if none. */
int sq__get_row(sq_t *sq, const char *sql, const char *id, row_fn row,
                const void *arg, void *out) {
  int err = 0;
  sqlite3_stmt *s = sq__rstmt(sq, sql, &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW)
    err = row(s, arg, out);
  else if (rc == SQLITE_DONE)
    err = UV_ENOENT;
  else
    err = sq__rerr(sq, rc);
  sqlite3_reset(s);
  return err;
}

/* A row of (body, tenant). */
static int body_row(sqlite3_stmt *stmt, const void *desc, void *out) {
  return sq__unpack_tenant(stmt, 0, 1, desc, out);
}

int sq__exists_row(sqlite3_stmt *stmt, const void *arg, void *out) {
  (void)stmt;
  (void)arg;
  (void)out;
  return 0;
}

static int get_one(sq_t *sq, const char *sql, const char *id,
                   const ProtobufCMessageDescriptor *desc,
                   ProtobufCMessage **out) {
  return sq__get_row(sq, sql, id, body_row, desc, out);
}

/* Sets the sequence of a message read by collect_ex to its row's seq. */
typedef void (*seq_fn)(ProtobufCMessage *m, uint64_t seq);

/* Collects rows of (seq, body) into an array; with `tenant`, rows of
 * (seq, body, tenant) of a message with a tenant field; `set_seq` (may be
 * NULL) gives each message its row's seq. */
static int collect_ex(sq_t *sq, sqlite3_stmt *s, uint32_t limit, int tenant,
                      const ProtobufCMessageDescriptor *desc, seq_fn set_seq,
                      void *out, size_t *n, uint64_t *next) {
  size_t cap = 16, cnt = 0;
  uint64_t last = 0;
  int more = 0, err = 0, rc;
  ProtobufCMessage **arr = malloc(cap * sizeof(*arr));
  if (arr == NULL) {
    sqlite3_reset(s);
    return UV_ENOMEM;
  }
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (limit && cnt == limit) {
      more = 1;
      break;
    }
    if (cnt == cap) {
      void *p = realloc(arr, 2 * cap * sizeof(*arr));
      if (p == NULL) {
        err = UV_ENOMEM;
        break;
      }
      arr = p;
      cap *= 2;
    }
    last = (uint64_t)sqlite3_column_int64(s, 0);
    if ((err = tenant ? sq__unpack_tenant(s, 1, 2, desc, &arr[cnt])
                      : sq__unpack_col(s, 1, desc, &arr[cnt])) != 0)
      break;
    if (set_seq != NULL)
      set_seq(arr[cnt], last);
    cnt++;
  }
  if (err == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
    err = sq__rerr(sq, rc);
  sqlite3_reset(s);
  if (err) {
    store_msgs_free(arr, cnt);
    return err;
  }
  *(ProtobufCMessage ***)out = arr;
  *n = cnt;
  if (next)
    *next = more ? last : 0;
  return 0;
}

static int collect(sq_t *sq, sqlite3_stmt *s, uint32_t limit, int tenant,
                   const ProtobufCMessageDescriptor *desc, void *out, size_t *n,
                   uint64_t *next) {
  return collect_ex(sq, s, limit, tenant, desc, NULL, out, n, next);
}

static int tenant_row(sqlite3_stmt *stmt, const void *arg, void *out) {
  (void)arg;
  char *t = sq__dup_col(stmt, 0);
  if (t == NULL)
    return UV_ENOMEM;
  *(char **)out = t;
  return 0;
}

int sq_tenant_get(store_t *st, store_kind_t kind, const char *id, char **out) {
  static const char *const sql[] = {
      [STORE_PLAN] = "SELECT tenant FROM plans WHERE id = ?1",
      [STORE_CHECKPOINT] = "SELECT tenant FROM checkpoints WHERE id = ?1",
      [STORE_RESTORE] = "SELECT tenant FROM restores WHERE id = ?1",
      [STORE_OPERATION] = "SELECT tenant FROM operations WHERE id = ?1",
  };
  return sq__get_row((sq_t *)st, sql[kind], id, tenant_row, NULL, out);
}

int sq_plan_get(store_t *st, const char *id, Smaug__V1__Plan **out) {
  return get_one((sq_t *)st, "SELECT body, tenant FROM plans WHERE id = ?1", id,
                 &smaug__v1__plan__descriptor, (ProtobufCMessage **)out);
}

int sq_plan_list(store_t *st, const char *tenant, uint64_t after,
                 uint32_t limit, Smaug__V1__Plan ***out, size_t *n,
                 uint64_t *next) {
  sq_t *sq = (sq_t *)st;
  int err = 0;
  /* Two statements, so that a tenant's list runs on plans_tenant. */
  sqlite3_stmt *s =
      sq__rstmt(sq,
                *tenant ? "SELECT seq, body, tenant FROM plans "
                          "WHERE tenant = ?2 AND seq > ?1 ORDER BY seq"
                        : "SELECT seq, body, tenant FROM plans "
                          "WHERE seq > ?1 AND ?2 = '' ORDER BY seq",
                &err);
  if (s == NULL)
    return err;
  sq__bind_seq(s, 1, after);
  sq__bind_str(s, 2, tenant);
  return collect(sq, s, limit, 1, &smaug__v1__plan__descriptor, out, n, next);
}

int sq_checkpoint_get(store_t *st, const char *id,
                      Smaug__V1__Checkpoint **out) {
  return get_one((sq_t *)st,
                 "SELECT body, tenant FROM checkpoints WHERE id = ?1", id,
                 &smaug__v1__checkpoint__descriptor, (ProtobufCMessage **)out);
}

int sq_checkpoint_list(store_t *st, const store_cp_filter_t *f, uint64_t before,
                       uint32_t limit, Smaug__V1__Checkpoint ***out, size_t *n,
                       uint64_t *next) {
  sq_t *sq = (sq_t *)st;
  int err = 0;
  sqlite3_stmt *s = sq__rstmt(
      sq,
      f->tenant && *f->tenant
          ? "SELECT seq, body, tenant FROM checkpoints "
            "WHERE tenant = ?6 AND (?1 = 0 OR seq < ?1) "
            "AND (?2 = '' OR plan_id = ?2) AND (?3 = 0 OR status = ?3) "
            "AND created_at_ms >= ?4 AND (?5 = 0 OR created_at_ms < ?5) "
            "ORDER BY seq DESC"
          : "SELECT seq, body, tenant FROM checkpoints "
            "WHERE (?1 = 0 OR seq < ?1) "
            "AND (?2 = '' OR plan_id = ?2) AND (?3 = 0 OR status = ?3) "
            "AND created_at_ms >= ?4 AND (?5 = 0 OR created_at_ms < ?5) "
            "AND ?6 = '' ORDER BY seq DESC",
      &err);
  if (s == NULL)
    return err;
  sqlite3_bind_int64(s, 1, (sqlite3_int64)before);
  sq__bind_str(s, 2, f->plan_id);
  sqlite3_bind_int(s, 3, f->status);
  sqlite3_bind_int64(s, 4, f->created_after_ms);
  sqlite3_bind_int64(s, 5, f->created_before_ms);
  sq__bind_str(s, 6, f->tenant);
  return collect(sq, s, limit, 1, &smaug__v1__checkpoint__descriptor, out, n,
                 next);
}

int sq_restore_get(store_t *st, const char *id, Smaug__V1__Restore **out) {
  return get_one((sq_t *)st, "SELECT body, tenant FROM restores WHERE id = ?1",
                 id, &smaug__v1__restore__descriptor, (ProtobufCMessage **)out);
}

int sq_restore_list(store_t *st, const char *checkpoint_id, const char *tenant,
                    uint64_t before, uint32_t limit, Smaug__V1__Restore ***out,
                    size_t *n, uint64_t *next) {
  sq_t *sq = (sq_t *)st;
  int err = 0;
  sqlite3_stmt *s = sq__rstmt(
      sq,
      *tenant ? "SELECT seq, body, tenant FROM restores WHERE tenant = ?3 "
                "AND (?1 = 0 OR seq < ?1) "
                "AND (?2 = '' OR checkpoint_id = ?2) ORDER BY seq DESC"
              : "SELECT seq, body, tenant FROM restores "
                "WHERE (?1 = 0 OR seq < ?1) "
                "AND (?2 = '' OR checkpoint_id = ?2) AND ?3 = '' "
                "ORDER BY seq DESC",
      &err);
  if (s == NULL)
    return err;
  sqlite3_bind_int64(s, 1, (sqlite3_int64)before);
  sq__bind_str(s, 2, checkpoint_id);
  sq__bind_str(s, 3, tenant);
  return collect(sq, s, limit, 1, &smaug__v1__restore__descriptor, out, n,
                 next);
}

static int op_row(sqlite3_stmt *s, store_op_t **out) {
  store_op_t *op = calloc(1, sizeof(*op));
  if (op == NULL)
    return UV_ENOMEM;
  op->id = sq__dup_col(s, 0);
  op->kind = sqlite3_column_int(s, 1);
  op->target_id = sq__dup_col(s, 2);
  op->checkpoint_id = sq__dup_col(s, 3);
  op->running = sqlite3_column_int(s, 4);
  op->fail_fast = sqlite3_column_int(s, 5);
  op->created_at_ms = sqlite3_column_int64(s, 6);
  int len = sqlite3_column_bytes(s, 7);
  op->params = malloc(len ? (size_t)len : 1);
  if (op->params && len)
    memcpy(op->params, sqlite3_column_blob(s, 7), (size_t)len);
  op->params_len = (size_t)len;
  op->tenant = sq__dup_col(s, 8);
  if (!op->id || !op->target_id || !op->checkpoint_id || !op->params ||
      !op->tenant) {
    store_op_free(op);
    return UV_ENOMEM;
  }
  *out = op;
  return 0;
}

#define OP_COLS                                                                \
  "id, kind, target_id, checkpoint_id, running, fail_fast, created_at_ms, "    \
  "params, tenant"

static int op_get_row(sqlite3_stmt *stmt, const void *arg, void *out) {
  (void)arg;
  return op_row(stmt, out);
}

int sq_op_get(store_t *st, const char *id, store_op_t **out) {
  return sq__get_row((sq_t *)st,
                     "SELECT " OP_COLS " FROM operations WHERE id = ?1", id,
                     op_get_row, NULL, out);
}

int sq_op_list_running(store_t *st, store_op_t ***out, size_t *n) {
  sq_t *sq = (sq_t *)st;
  int err = 0, rc = SQLITE_DONE;
  sqlite3_stmt *s = sq__rstmt(sq,
                              "SELECT " OP_COLS " FROM operations "
                              "WHERE running = 1 ORDER BY created_at_ms, id",
                              &err);
  if (s == NULL)
    return err;
  size_t cnt = 0, cap = 8;
  store_op_t **arr = malloc(cap * sizeof(*arr));
  if (arr == NULL)
    err = UV_ENOMEM;
  while (err == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (cnt == cap) {
      void *p = realloc(arr, 2 * cap * sizeof(*arr));
      if (p == NULL) {
        err = UV_ENOMEM;
        break;
      }
      arr = p;
      cap *= 2;
    }
    if ((err = op_row(s, &arr[cnt])) == 0)
      cnt++;
  }
  if (err == 0 && rc != SQLITE_DONE)
    err = sq__rerr(sq, rc);
  sqlite3_reset(s);
  if (err) {
    store_ops_free(arr, cnt);
    return err;
  }
  *out = arr;
  *n = cnt;
  return 0;
}

int sq_result_list(store_t *st, const char *op_id,
                   Smaug__V1__ResourceResult ***out, size_t *n) {
  sq_t *sq = (sq_t *)st;
  int err = 0;
  sqlite3_stmt *s = sq__rstmt(sq,
                              "SELECT 0, body FROM results WHERE op_id = ?1 "
                              "ORDER BY rtype, rid",
                              &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, op_id, -1, SQLITE_STATIC);
  return collect(sq, s, 0, 0, &smaug__v1__resource_result__descriptor, out, n,
                 NULL);
}

/* A checkpoint's head: its status and its newest delete operation. */
typedef struct head_s {
  int status;
  char *delete_op; /* malloc'd; NULL when no delete ran */
} head_t;

static int head_row(sqlite3_stmt *stmt, const void *arg, void *out) {
  (void)arg;
  head_t *h = out;
  h->status = sqlite3_column_int(stmt, 0);
  if (sqlite3_column_type(stmt, 1) != SQLITE_NULL &&
      (h->delete_op = sq__dup_col(stmt, 1)) == NULL)
    return UV_ENOMEM;
  return 0;
}

int sq_checkpoint_head(store_t *st, const char *id, int *status,
                       char **delete_op) {
  sq_t *sq = (sq_t *)st;
  head_t h = {0, NULL};
  int err = 0;
  sqlite3_stmt *s = sq__rstmt(
      sq,
      "SELECT c.status, (SELECT o.id FROM operations o WHERE "
      "o.checkpoint_id = c.id AND o.kind = ?2 ORDER BY o.created_at_ms "
      "DESC, o.rowid DESC LIMIT 1) FROM checkpoints c WHERE c.id = ?1",
      &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, SMAUG__V1__OPERATION_KIND__OPERATION_KIND_DELETE);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW)
    err = head_row(s, NULL, &h);
  else if (rc == SQLITE_DONE)
    err = UV_ENOENT;
  else
    err = sq__rerr(sq, rc);
  sqlite3_reset(s);
  if (err) {
    free(h.delete_op);
    return err;
  }
  *status = h.status;
  *delete_op = h.delete_op;
  return 0;
}

int sq_result_page(store_t *st, const char *op_id, const char *after_type,
                   const char *after_id, uint32_t limit,
                   Smaug__V1__ResourceResult ***out, size_t *n) {
  sq_t *sq = (sq_t *)st;
  int err = 0;
  sqlite3_stmt *s = sq__rstmt(sq,
                              "SELECT 0, body FROM results WHERE op_id = ?1 "
                              "AND (rtype, rid) > (?2, ?3) "
                              "ORDER BY rtype, rid LIMIT ?4",
                              &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, op_id, -1, SQLITE_STATIC);
  sq__bind_str(s, 2, after_type);
  sq__bind_str(s, 3, after_id);
  sqlite3_bind_int64(s, 4, limit);
  return collect(sq, s, 0, 0, &smaug__v1__resource_result__descriptor, out, n,
                 NULL);
}

int sq_result_count(store_t *st, const char *op_id, uint64_t *out) {
  int64_t v = 0;
  int err =
      sq__read_int((sq_t *)st, "SELECT count(*) FROM results WHERE op_id = ?1",
                   op_id, 0, 0, &v);
  if (err == 0)
    *out = (uint64_t)v;
  return err;
}

int sq_task_each(store_t *st, const char *op_id, store_task_cb cb, void *data) {
  sq_t *sq = (sq_t *)st;
  int err = 0, rc;
  sqlite3_stmt *s =
      sq__rstmt(sq,
                "SELECT activity, rtype, rid, status, started_at_ms, "
                "finished_at_ms, payload FROM tasks WHERE op_id = ?1",
                &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, op_id, -1, SQLITE_STATIC);
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    store_task_t t = {
        .activity = sqlite3_column_int(s, 0),
        .type = (const char *)sqlite3_column_text(s, 1),
        .id = (const char *)sqlite3_column_text(s, 2),
        .status = sqlite3_column_int(s, 3),
        .started_at_ms = sqlite3_column_int64(s, 4),
        .finished_at_ms = sqlite3_column_int64(s, 5),
        .payload = sqlite3_column_blob(s, 6),
        .len = (size_t)sqlite3_column_bytes(s, 6),
    };
    if (t.type && t.id)
      cb(&t, data);
  }
  err = rc == SQLITE_DONE ? 0 : sq__rerr(sq, rc);
  sqlite3_reset(s);
  return err;
}

int sq_event_list(store_t *st, const char *op_id, uint64_t after,
                  uint32_t limit, Smaug__V1__OperationEvent ***out, size_t *n) {
  sq_t *sq = (sq_t *)st;
  int err = 0;
  sqlite3_stmt *s = sq__rstmt(sq,
                              "SELECT seq, body FROM events WHERE op_id = ?1 "
                              "AND seq > ?2 ORDER BY seq",
                              &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, op_id, -1, SQLITE_STATIC);
  sq__bind_seq(s, 2, after);
  return collect(sq, s, limit, 0, &smaug__v1__operation_event__descriptor, out,
                 n, NULL);
}

/* The one integer `sql` returns with ?1 the text `id`, or when it is NULL
 * the integer `a`, and ?2 the integer `b`. */
int sq__read_int(sq_t *sq, const char *sql, const char *id, int64_t a,
                 int64_t b, int64_t *out) {
  int err = 0;
  sqlite3_stmt *s = sq__rstmt(sq, sql, &err);
  if (s == NULL)
    return err;
  if (id)
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  else
    sqlite3_bind_int64(s, 1, a);
  sqlite3_bind_int64(s, 2, b);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW)
    *out = sqlite3_column_int64(s, 0);
  else
    err = sq__rerr(sq, rc);
  sqlite3_reset(s);
  return err;
}

int sq_event_last_seq(store_t *st, const char *op_id, uint64_t *out) {
  int64_t v = 0;
  int err = sq__read_int((sq_t *)st,
                         "SELECT coalesce(max(seq), 0) FROM events WHERE "
                         "op_id = ?1",
                         op_id, 0, 0, &v);
  if (err == 0)
    *out = (uint64_t)v;
  return err;
}

/* Collects the text columns 0 .. ncol-1 of every row of `s` into one
 * string array per column (`cols[c]`, `*n` strings each, owned by the
 * caller). */
static int collect_strs(sq_t *sq, sqlite3_stmt *s, int ncol, char ***cols[],
                        size_t *n) {
  char **arr[2] = {NULL, NULL};
  size_t cnt = 0;
  int err = 0, rc;
  while (err == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    for (int c = 0; c < ncol && err == 0; c++) {
      char **p = realloc(arr[c], (cnt + 1) * sizeof(*p));
      if (p != NULL)
        arr[c] = p;
      if (p == NULL || (p[cnt] = sq__dup_col(s, c)) == NULL) {
        /* The columns before this one hold cnt + 1 strings. */
        for (int d = 0; d < c; d++)
          free(arr[d][cnt]);
        err = UV_ENOMEM;
      }
    }
    cnt += err == 0;
  }
  if (err == 0 && rc != SQLITE_DONE)
    err = sq__rerr(sq, rc);
  sqlite3_reset(s);
  for (int c = 0; c < ncol; c++) {
    if (err)
      store_strs_free(arr[c], cnt);
    else
      *cols[c] = arr[c];
  }
  if (err == 0)
    *n = cnt;
  return err;
}

int sq_plugins_list(store_t *st, char ***out, size_t *n) {
  sq_t *sq = (sq_t *)st;
  int err = 0;
  sqlite3_stmt *s = sq__rstmt(
      sq, "SELECT address FROM plugins ORDER BY registered_at_ms, address",
      &err);
  char ***cols[1] = {out};
  return s == NULL ? err : collect_strs(sq, s, 1, cols, n);
}

static void audit_seq(ProtobufCMessage *m, uint64_t seq) {
  ((Smaug__V1__AuditEvent *)m)->sequence = seq;
}

int sq_audit_list(store_t *st, const store_audit_filter_t *f, uint64_t before,
                  uint32_t limit, Smaug__V1__AuditEvent ***out, size_t *n,
                  uint64_t *next) {
  sq_t *sq = (sq_t *)st;
  int err = 0;
  sqlite3_stmt *s =
      sq__rstmt(sq,
                "SELECT seq, body FROM audit WHERE (?1 = 0 OR seq < ?1) "
                "AND (?2 = '' OR who = ?2) AND (?3 = '' OR method = ?3) "
                "AND time_ms >= ?4 ORDER BY seq DESC",
                &err);
  if (s == NULL)
    return err;
  sqlite3_bind_int64(s, 1, (sqlite3_int64)before);
  sq__bind_str(s, 2, f->who);
  sq__bind_str(s, 3, f->method);
  sqlite3_bind_int64(s, 4, f->since_ms);
  return collect_ex(sq, s, limit, 0, &smaug__v1__audit_event__descriptor,
                    audit_seq, out, n, next);
}

int sq_cp_identity_list(store_t *st, const char *checkpoint_id, char ***types,
                        char ***identities, size_t *n) {
  sq_t *sq = (sq_t *)st;
  int err = 0;
  sqlite3_stmt *s = sq__rstmt(sq,
                              "SELECT rtype, identity FROM checkpoint_plugins "
                              "WHERE checkpoint_id = ?1 ORDER BY rtype",
                              &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, checkpoint_id, -1, SQLITE_STATIC);
  char ***cols[2] = {types, identities};
  return collect_strs(sq, s, 2, cols, n);
}

int sq__audit_old(sq_t *sq, int64_t before_ms, uint64_t keep, int64_t limit,
                  int64_t *upto, int64_t *count) {
  int err = 0, rc;
  /* Sequence numbers only grow: the newest `keep` are above max - keep. */
  sqlite3_stmt *s =
      sq__rstmt(sq,
                "SELECT CASE WHEN ?1 > 0 AND max(seq) > ?1 THEN max(seq) - ?1 "
                "ELSE 0 END FROM audit",
                &err);
  if (s == NULL)
    return err;
  sqlite3_bind_int64(s, 1, keep > INT64_MAX ? INT64_MAX : (int64_t)keep);
  if ((rc = sqlite3_step(s)) == SQLITE_ROW)
    *upto = sqlite3_column_int64(s, 0);
  else
    err = sq__rerr(sq, rc);
  sqlite3_reset(s);
  if (err || (s = sq__rstmt(sq,
                            "SELECT count(*) FROM (SELECT 1 FROM audit "
                            "WHERE time_ms < ?1 OR seq <= ?2 LIMIT ?3)",
                            &err)) == NULL)
    return err;
  sqlite3_bind_int64(s, 1, before_ms);
  sqlite3_bind_int64(s, 2, *upto);
  sqlite3_bind_int64(s, 3, limit);
  if ((rc = sqlite3_step(s)) == SQLITE_ROW)
    *count = sqlite3_column_int64(s, 0);
  else
    err = sq__rerr(sq, rc);
  sqlite3_reset(s);
  return err;
}
