/*
 * store.c - SQLite persistence for smaugd (see store.h).
 *
 * Statements are prepared once and cached by their SQL text's address (every
 * query is a string literal here), because the executor writes an event or
 * a task output for every task transition and re-preparing would dominate.
 * Migrations are an ordered list of SQL scripts; script i brings the schema
 * from version i to i + 1, each in its own transaction.
 */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#define STORE_NCACHE 48

struct store_s {
  sqlite3 *db;
  int in_batch;
  int batch_err; /* the batch's transaction was lost: this error */
  char errmsg[256];
  char batch_msg[256]; /* and its message */
  struct {
    const char *sql;
    sqlite3_stmt *stmt;
  } cache[STORE_NCACHE];
};

static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE plans(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE, body BLOB NOT NULL);"
    "CREATE TABLE checkpoints(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE, plan_id TEXT NOT NULL,"
    "  status INTEGER NOT NULL, created_at_ms INTEGER NOT NULL,"
    "  body BLOB NOT NULL);"
    "CREATE INDEX checkpoints_plan ON checkpoints(plan_id, seq);"
    "CREATE TABLE restores(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE, checkpoint_id TEXT NOT NULL,"
    "  body BLOB NOT NULL);"
    "CREATE INDEX restores_checkpoint ON restores(checkpoint_id, seq);"
    "CREATE TABLE operations(id TEXT PRIMARY KEY, kind INTEGER NOT NULL,"
    "  target_id TEXT NOT NULL, checkpoint_id TEXT NOT NULL,"
    "  running INTEGER NOT NULL, fail_fast INTEGER NOT NULL,"
    "  created_at_ms INTEGER NOT NULL, params BLOB);"
    "CREATE INDEX operations_running ON operations(running, created_at_ms);"
    "CREATE TABLE results(op_id TEXT NOT NULL, rtype TEXT NOT NULL,"
    "  rid TEXT NOT NULL, body BLOB NOT NULL,"
    "  PRIMARY KEY(op_id, rtype, rid)) WITHOUT ROWID;"
    "CREATE TABLE tasks(op_id TEXT NOT NULL, task_id TEXT NOT NULL,"
    "  status INTEGER NOT NULL, payload BLOB,"
    "  PRIMARY KEY(op_id, task_id)) WITHOUT ROWID;"
    "CREATE TABLE events(op_id TEXT NOT NULL, seq INTEGER NOT NULL,"
    "  body BLOB NOT NULL, PRIMARY KEY(op_id, seq)) WITHOUT ROWID;",
    /* 1 -> 2: plugins registered through the API survive a restart. */
    "CREATE TABLE plugins(address TEXT PRIMARY KEY,"
    "  registered_at_ms INTEGER NOT NULL);",
};

/* The one boundary from SQLite result codes to ours. */
static int store__err(store_t *st, int rc) {
  snprintf(st->errmsg, sizeof(st->errmsg), "%s", sqlite3_errmsg(st->db));
  switch (rc & 0xff) {
  case SQLITE_OK:
  case SQLITE_DONE:
  case SQLITE_ROW:
    return 0;
  case SQLITE_CONSTRAINT:
    return UV_EEXIST;
  case SQLITE_FULL:
    return UV_ENOSPC;
  case SQLITE_NOTADB:
  case SQLITE_CORRUPT:
    return UV_EFTYPE;
  case SQLITE_NOMEM:
    return UV_ENOMEM;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return UV_EBUSY;
  case SQLITE_CANTOPEN:
  case SQLITE_PERM:
  case SQLITE_READONLY:
    return UV_EACCES;
  default:
    return UV_EIO;
  }
}

const char *store_errmsg(const store_t *st) {
  return st ? st->errmsg : "no store";
}

/* Returns a reset, cached statement for the literal `sql`, or NULL. */
static sqlite3_stmt *store__stmt(store_t *st, const char *sql, int *err) {
  int free_slot = -1;
  for (int i = 0; i < STORE_NCACHE; i++) {
    if (st->cache[i].sql == sql) {
      sqlite3_reset(st->cache[i].stmt);
      sqlite3_clear_bindings(st->cache[i].stmt);
      return st->cache[i].stmt;
    }
    if (st->cache[i].sql == NULL && free_slot < 0)
      free_slot = i;
  }
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL);
  if (rc != SQLITE_OK) {
    *err = store__err(st, rc);
    return NULL;
  }
  if (free_slot >= 0) {
    st->cache[free_slot].sql = sql;
    st->cache[free_slot].stmt = stmt;
  }
  /* A full cache would leak: the cache is sized above the query count. */
  return stmt;
}

static int store__exec(store_t *st, const char *sql) {
  char *msg = NULL;
  int rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK) {
    int err = store__err(st, rc);
    if (msg)
      snprintf(st->errmsg, sizeof(st->errmsg), "%s", msg);
    sqlite3_free(msg);
    return err;
  }
  return 0;
}

/* Runs a statement without result rows to completion. On some errors
 * (SQLITE_FULL, SQLITE_IOERR, ...) SQLite rolls the whole transaction back:
 * the batch is then lost, and every later write of it fails with the same
 * error instead of committing on its own, outside the batch. */
static int store__step_done(store_t *st, sqlite3_stmt *stmt) {
  if (st->batch_err) {
    sqlite3_reset(stmt);
    memcpy(st->errmsg, st->batch_msg, sizeof(st->errmsg));
    return st->batch_err;
  }
  int rc = sqlite3_step(stmt);
  int err = rc == SQLITE_DONE ? 0 : store__err(st, rc);
  sqlite3_reset(stmt);
  if (err && st->in_batch && sqlite3_get_autocommit(st->db)) {
    st->batch_err = err;
    memcpy(st->batch_msg, st->errmsg, sizeof(st->batch_msg));
  }
  return err;
}

/* Packs `msg` into a malloc'd buffer. */
/* Binds `msg`, packed, as blob parameter `col`; SQLite frees the copy. */
static int store__bind_msg(sqlite3_stmt *stmt, int col,
                           const ProtobufCMessage *msg) {
  size_t n = protobuf_c_message_get_packed_size(msg);
  uint8_t *b = malloc(n ? n : 1);
  if (b == NULL)
    return UV_ENOMEM;
  protobuf_c_message_pack(msg, b);
  sqlite3_bind_blob(stmt, col, b, (int)n, free);
  return 0;
}

/* Binds `str` as text parameter `col`, NULL as "". Borrowed until reset. */
static void store__bind_str(sqlite3_stmt *stmt, int col, const char *str) {
  sqlite3_bind_text(stmt, col, str ? str : "", -1, SQLITE_STATIC);
}

/* Sequences are stored as signed 64-bit: clamp, do not wrap. */
static void store__bind_seq(sqlite3_stmt *stmt, int col, uint64_t seq) {
  sqlite3_bind_int64(stmt, col,
                     seq > INT64_MAX ? INT64_MAX : (sqlite3_int64)seq);
}

/* Steps a write that must change a row: UV_ENOENT when it changed none. */
static int store__step_changed(store_t *st, sqlite3_stmt *stmt) {
  int err = store__step_done(st, stmt);
  if (err)
    return err;
  return sqlite3_changes(st->db) ? 0 : UV_ENOENT;
}

static int store__unpack_col(sqlite3_stmt *stmt, int col,
                             const ProtobufCMessageDescriptor *desc,
                             ProtobufCMessage **out) {
  const void *blob = sqlite3_column_blob(stmt, col);
  int len = sqlite3_column_bytes(stmt, col);
  ProtobufCMessage *m =
      protobuf_c_message_unpack(desc, NULL, (size_t)len, blob);
  if (m == NULL)
    return UV_EIO; /* corrupt row */
  *out = m;
  return 0;
}

/* Runs `sql`, one integer of operation ?1 = `op_id`, into *out. */
static int store__op_u64(store_t *st, const char *sql, const char *op_id,
                         uint64_t *out) {
  int err = 0;
  sqlite3_stmt *s = store__stmt(st, sql, &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, op_id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW)
    *out = (uint64_t)sqlite3_column_int64(s, 0);
  else
    err = store__err(st, rc);
  sqlite3_reset(s);
  return err;
}

int store_schema_version(store_t *st) {
  int err = 0, v = 0;
  sqlite3_stmt *s =
      store__stmt(st, "SELECT max(version) FROM schema_version", &err);
  if (s == NULL)
    return err;
  if (sqlite3_step(s) == SQLITE_ROW)
    v = sqlite3_column_int(s, 0);
  sqlite3_reset(s);
  return v;
}

/* Rolls back after a failure, keeping the failure's message. */
static void store__rollback(store_t *st) {
  char keep[sizeof(st->errmsg)];
  memcpy(keep, st->errmsg, sizeof(keep));
  store__exec(st, "ROLLBACK");
  memcpy(st->errmsg, keep, sizeof(keep));
}

static int store__migrate(store_t *st) {
  int err = store__exec(
      st, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER);");
  if (err)
    return err;
  int v = store_schema_version(st);
  if (v < 0)
    return v;
  int target = (int)(sizeof(migrations) / sizeof(migrations[0]));
  if (v > target) {
    snprintf(st->errmsg, sizeof(st->errmsg),
             "database schema %d is newer than this build (%d)", v, target);
    return UV_EPROTO;
  }
  for (; v < target; v++) {
    char bump[96];
    snprintf(bump, sizeof(bump),
             "DELETE FROM schema_version; INSERT INTO schema_version "
             "VALUES(%d);",
             v + 1);
    if ((err = store__exec(st, "BEGIN IMMEDIATE")) != 0)
      return err;
    if ((err = store__exec(st, migrations[v])) != 0 ||
        (err = store__exec(st, bump)) != 0) {
      store__rollback(st);
      return err;
    }
    if ((err = store__exec(st, "COMMIT")) != 0)
      return err;
  }
  return 0;
}

int store_open(const char *dir, store_t **out) {
  if (dir == NULL || *dir == '\0' || out == NULL)
    return UV_EINVAL;
  if (mkdir(dir, 0700) != 0 && errno != EEXIST)
    return -errno;
  size_t plen = strlen(dir) + sizeof("/smaug.db");
  char *path = malloc(plen);
  if (path == NULL)
    return UV_ENOMEM;
  snprintf(path, plen, "%s/smaug.db", dir);

  store_t *st = calloc(1, sizeof(*st));
  if (st == NULL) {
    free(path);
    return UV_ENOMEM;
  }
  int rc = sqlite3_open_v2(
      path, &st->db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  free(path);
  int err;
  if (rc != SQLITE_OK) {
    err = st->db ? store__err(st, rc) : UV_ENOMEM;
    goto fail;
  }
  sqlite3_busy_timeout(st->db, 5000);
  if ((err = store__exec(st, "PRAGMA journal_mode=WAL;")) != 0 ||
      (err = store__exec(st, "PRAGMA synchronous=FULL;")) != 0 ||
      (err = store__exec(st, "PRAGMA foreign_keys=ON;")) != 0 ||
      (err = store__migrate(st)) != 0)
    goto fail;
  *out = st;
  return 0;

fail:
  /* The message is lost with the handle; callers log the code. */
  store_close(st);
  return err;
}

void store_close(store_t *st) {
  if (st == NULL)
    return;
  if (st->in_batch)
    store_flush(st);
  for (int i = 0; i < STORE_NCACHE; i++)
    sqlite3_finalize(st->cache[i].stmt);
  sqlite3_close(st->db);
  free(st);
}

int store_batch(store_t *st) {
  if (st->in_batch)
    return 0;
  int err = store__exec(st, "BEGIN IMMEDIATE");
  if (err == 0)
    st->in_batch = 1;
  return err;
}

int store_flush(store_t *st) {
  if (!st->in_batch)
    return 0;
  st->in_batch = 0;
  if (st->batch_err) { /* rolled back already, by SQLite */
    int err = st->batch_err;
    st->batch_err = 0;
    memcpy(st->errmsg, st->batch_msg, sizeof(st->errmsg));
    return err;
  }
  int err = store__exec(st, "COMMIT");
  if (err) {
    store__rollback(st);
  }
  return err;
}

int store_in_batch(const store_t *st) {
  return st->in_batch;
}

void store_msgs_free(void *msgs, size_t n) {
  ProtobufCMessage **m = msgs;
  if (m == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    protobuf_c_message_free_unpacked(m[i], NULL);
  free(m);
}

/* ------------------------------------------------------------ helpers */

/* Reads the current row of `stmt` into `out`; `arg` is the reader's own. */
typedef int (*store__row_fn)(sqlite3_stmt *stmt, const void *arg, void *out);

/* Runs `sql` with `id` as ?1 and reads its one row: UV_ENOENT if none. */
static int store__get_row(store_t *st, const char *sql, const char *id,
                          store__row_fn row, const void *arg, void *out) {
  int err = 0;
  if (id == NULL)
    return UV_EINVAL;
  sqlite3_stmt *s = store__stmt(st, sql, &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW)
    err = row(s, arg, out);
  else if (rc == SQLITE_DONE)
    err = UV_ENOENT;
  else
    err = store__err(st, rc);
  sqlite3_reset(s);
  return err;
}

static int store__body_row(sqlite3_stmt *stmt, const void *desc, void *out) {
  return store__unpack_col(stmt, 0, desc, out);
}

static int store__get_one(store_t *st, const char *sql, const char *id,
                          const ProtobufCMessageDescriptor *desc,
                          ProtobufCMessage **out) {
  return store__get_row(st, sql, id, store__body_row, desc, out);
}

/* Collects rows of (seq, body) into an array. */
static int store__collect(store_t *st, sqlite3_stmt *s, uint32_t limit,
                          const ProtobufCMessageDescriptor *desc, void *out,
                          size_t *n, uint64_t *next) {
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
    if ((err = store__unpack_col(s, 1, desc, &arr[cnt])) != 0)
      break;
    cnt++;
  }
  if (err == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
    err = store__err(st, rc);
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

static int store__delete_by_id(store_t *st, const char *sql, const char *id) {
  int err = 0;
  sqlite3_stmt *s = store__stmt(st, sql, &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  return store__step_changed(st, s);
}

/* ------------------------------------------------------------- plans */

int store_plan_put(store_t *st, const Smaug__V1__Plan *plan) {
  int err = 0;
  if (plan == NULL || plan->id == NULL || *plan->id == '\0')
    return UV_EINVAL;
  sqlite3_stmt *s =
      store__stmt(st,
                  "INSERT INTO plans(id, body) VALUES(?1, ?2) "
                  "ON CONFLICT(id) DO UPDATE SET body = excluded.body",
                  &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, plan->id, -1, SQLITE_STATIC);
  if ((err = store__bind_msg(s, 2, &plan->base)) != 0)
    return err;
  return store__step_done(st, s);
}

int store_plan_get(store_t *st, const char *id, Smaug__V1__Plan **out) {
  return store__get_one(st, "SELECT body FROM plans WHERE id = ?1", id,
                        &smaug__v1__plan__descriptor, (ProtobufCMessage **)out);
}

int store_plan_delete(store_t *st, const char *id) {
  return store__delete_by_id(st, "DELETE FROM plans WHERE id = ?1", id);
}

int store_plan_list(store_t *st, uint64_t after, uint32_t limit,
                    Smaug__V1__Plan ***out, size_t *n, uint64_t *next) {
  int err = 0;
  sqlite3_stmt *s = store__stmt(
      st, "SELECT seq, body FROM plans WHERE seq > ?1 ORDER BY seq", &err);
  if (s == NULL)
    return err;
  store__bind_seq(s, 1, after);
  return store__collect(st, s, limit, &smaug__v1__plan__descriptor, out, n,
                        next);
}

/* ------------------------------------------------------- checkpoints */

int store_checkpoint_put(store_t *st, const Smaug__V1__Checkpoint *cp) {
  int err = 0;
  if (cp == NULL || cp->id == NULL || *cp->id == '\0')
    return UV_EINVAL;
  sqlite3_stmt *s = store__stmt(
      st,
      "INSERT INTO checkpoints(id, plan_id, status, created_at_ms, body) "
      "VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(id) DO UPDATE SET "
      "plan_id = excluded.plan_id, status = excluded.status, "
      "created_at_ms = excluded.created_at_ms, body = excluded.body",
      &err);
  if (s == NULL)
    return err;
  /* Results live in their own table; never duplicate them in the body. */
  Smaug__V1__Checkpoint copy = *cp;
  copy.n_results = 0;
  copy.results = NULL;
  sqlite3_bind_text(s, 1, cp->id, -1, SQLITE_STATIC);
  store__bind_str(s, 2, cp->plan_id);
  sqlite3_bind_int(s, 3, (int)cp->status);
  sqlite3_bind_int64(s, 4, cp->created_at_ms);
  if ((err = store__bind_msg(s, 5, &copy.base)) != 0)
    return err;
  return store__step_done(st, s);
}

int store_checkpoint_get(store_t *st, const char *id,
                         Smaug__V1__Checkpoint **out) {
  return store__get_one(st, "SELECT body FROM checkpoints WHERE id = ?1", id,
                        &smaug__v1__checkpoint__descriptor,
                        (ProtobufCMessage **)out);
}

int store_checkpoint_list(store_t *st, const store_cp_filter_t *f,
                          uint64_t before, uint32_t limit,
                          Smaug__V1__Checkpoint ***out, size_t *n,
                          uint64_t *next) {
  int err = 0;
  sqlite3_stmt *s = store__stmt(
      st,
      "SELECT seq, body FROM checkpoints WHERE (?1 = 0 OR seq < ?1) "
      "AND (?2 = '' OR plan_id = ?2) AND (?3 = 0 OR status = ?3) "
      "AND created_at_ms >= ?4 AND (?5 = 0 OR created_at_ms < ?5) "
      "ORDER BY seq DESC",
      &err);
  if (s == NULL)
    return err;
  store_cp_filter_t none = {0};
  if (f == NULL)
    f = &none;
  sqlite3_bind_int64(s, 1, (sqlite3_int64)before);
  store__bind_str(s, 2, f->plan_id);
  sqlite3_bind_int(s, 3, f->status);
  sqlite3_bind_int64(s, 4, f->created_after_ms);
  sqlite3_bind_int64(s, 5, f->created_before_ms);
  return store__collect(st, s, limit, &smaug__v1__checkpoint__descriptor, out,
                        n, next);
}

/* ---------------------------------------------------------- restores */

int store_restore_put(store_t *st, const Smaug__V1__Restore *r) {
  int err = 0;
  if (r == NULL || r->id == NULL || *r->id == '\0')
    return UV_EINVAL;
  sqlite3_stmt *s = store__stmt(
      st,
      "INSERT INTO restores(id, checkpoint_id, body) VALUES(?1, ?2, ?3) "
      "ON CONFLICT(id) DO UPDATE SET checkpoint_id = excluded.checkpoint_id,"
      " body = excluded.body",
      &err);
  if (s == NULL)
    return err;
  Smaug__V1__Restore copy = *r;
  copy.n_results = 0;
  copy.results = NULL;
  sqlite3_bind_text(s, 1, r->id, -1, SQLITE_STATIC);
  store__bind_str(s, 2, r->checkpoint_id);
  if ((err = store__bind_msg(s, 3, &copy.base)) != 0)
    return err;
  return store__step_done(st, s);
}

int store_restore_get(store_t *st, const char *id, Smaug__V1__Restore **out) {
  return store__get_one(st, "SELECT body FROM restores WHERE id = ?1", id,
                        &smaug__v1__restore__descriptor,
                        (ProtobufCMessage **)out);
}

int store_restore_list(store_t *st, const char *checkpoint_id, uint64_t before,
                       uint32_t limit, Smaug__V1__Restore ***out, size_t *n,
                       uint64_t *next) {
  int err = 0;
  sqlite3_stmt *s =
      store__stmt(st,
                  "SELECT seq, body FROM restores WHERE (?1 = 0 OR seq < ?1) "
                  "AND (?2 = '' OR checkpoint_id = ?2) ORDER BY seq DESC",
                  &err);
  if (s == NULL)
    return err;
  sqlite3_bind_int64(s, 1, (sqlite3_int64)before);
  store__bind_str(s, 2, checkpoint_id);
  return store__collect(st, s, limit, &smaug__v1__restore__descriptor, out, n,
                        next);
}

/* -------------------------------------------------------- operations */

int store_op_put(store_t *st, const store_op_t *op) {
  int err = 0;
  if (op == NULL || op->id == NULL || *op->id == '\0')
    return UV_EINVAL;
  sqlite3_stmt *s = store__stmt(
      st,
      "INSERT OR REPLACE INTO operations(id, kind, target_id, checkpoint_id,"
      " running, fail_fast, created_at_ms, params) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
      &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, op->id, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, op->kind);
  store__bind_str(s, 3, op->target_id);
  store__bind_str(s, 4, op->checkpoint_id);
  sqlite3_bind_int(s, 5, op->running);
  sqlite3_bind_int(s, 6, op->fail_fast);
  sqlite3_bind_int64(s, 7, op->created_at_ms);
  sqlite3_bind_blob(s, 8, op->params ? (const void *)op->params : "",
                    (int)op->params_len, SQLITE_STATIC);
  return store__step_done(st, s);
}

static char *store__dup_col(sqlite3_stmt *s, int col) {
  const char *t = (const char *)sqlite3_column_text(s, col);
  return strdup(t ? t : "");
}

static int store__op_row(sqlite3_stmt *s, store_op_t **out) {
  store_op_t *op = calloc(1, sizeof(*op));
  if (op == NULL)
    return UV_ENOMEM;
  op->id = store__dup_col(s, 0);
  op->kind = sqlite3_column_int(s, 1);
  op->target_id = store__dup_col(s, 2);
  op->checkpoint_id = store__dup_col(s, 3);
  op->running = sqlite3_column_int(s, 4);
  op->fail_fast = sqlite3_column_int(s, 5);
  op->created_at_ms = sqlite3_column_int64(s, 6);
  int len = sqlite3_column_bytes(s, 7);
  op->params = malloc(len ? (size_t)len : 1);
  if (op->params && len)
    memcpy(op->params, sqlite3_column_blob(s, 7), (size_t)len);
  op->params_len = (size_t)len;
  if (!op->id || !op->target_id || !op->checkpoint_id || !op->params) {
    store_op_free(op);
    return UV_ENOMEM;
  }
  *out = op;
  return 0;
}

#define STORE_OP_COLS                                                          \
  "id, kind, target_id, checkpoint_id, running, fail_fast, created_at_ms, "    \
  "params"

static int store__op_get_row(sqlite3_stmt *stmt, const void *arg, void *out) {
  (void)arg;
  return store__op_row(stmt, out);
}

int store_op_get(store_t *st, const char *id, store_op_t **out) {
  return store__get_row(
      st, "SELECT " STORE_OP_COLS " FROM operations WHERE id = ?1", id,
      store__op_get_row, NULL, out);
}

int store_op_list_running(store_t *st, store_op_t ***out, size_t *n) {
  int err = 0, rc = SQLITE_DONE;
  sqlite3_stmt *s = store__stmt(st,
                                "SELECT " STORE_OP_COLS " FROM operations "
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
    if ((err = store__op_row(s, &arr[cnt])) == 0)
      cnt++;
  }
  if (err == 0 && rc != SQLITE_DONE)
    err = store__err(st, rc);
  sqlite3_reset(s);
  if (err) {
    store_ops_free(arr, cnt);
    return err;
  }
  *out = arr;
  *n = cnt;
  return 0;
}

int store_op_set_running(store_t *st, const char *id, int running) {
  int err = 0;
  sqlite3_stmt *s =
      store__stmt(st, "UPDATE operations SET running = ?2 WHERE id = ?1", &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, running);
  return store__step_changed(st, s);
}

void store_op_free(store_op_t *op) {
  if (op == NULL)
    return;
  free(op->id);
  free(op->target_id);
  free(op->checkpoint_id);
  free(op->params);
  free(op);
}

void store_ops_free(store_op_t **ops, size_t n) {
  if (ops == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    store_op_free(ops[i]);
  free(ops);
}

/* ------------------------------------------------- per-resource results */

int store_result_put(store_t *st, const char *op_id,
                     const Smaug__V1__ResourceResult *res) {
  int err = 0;
  if (op_id == NULL || res == NULL || res->resource == NULL)
    return UV_EINVAL;
  sqlite3_stmt *s = store__stmt(st,
                                "INSERT OR REPLACE INTO results(op_id, rtype, "
                                "rid, body) VALUES(?1, ?2, ?3, ?4)",
                                &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, op_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, res->resource->type, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 3, res->resource->id, -1, SQLITE_STATIC);
  if ((err = store__bind_msg(s, 4, &res->base)) != 0)
    return err;
  return store__step_done(st, s);
}

int store_result_list(store_t *st, const char *op_id,
                      Smaug__V1__ResourceResult ***out, size_t *n) {
  int err = 0;
  sqlite3_stmt *s = store__stmt(st,
                                "SELECT 0, body FROM results WHERE op_id = ?1 "
                                "ORDER BY rtype, rid",
                                &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, op_id, -1, SQLITE_STATIC);
  return store__collect(st, s, 0, &smaug__v1__resource_result__descriptor, out,
                        n, NULL);
}

int store_checkpoint_head(store_t *st, const char *id, int *status,
                          char **delete_op) {
  int err = 0;
  if (id == NULL)
    return UV_EINVAL;
  sqlite3_stmt *s = store__stmt(
      st,
      "SELECT c.status, (SELECT o.id FROM operations o WHERE "
      "o.checkpoint_id = c.id AND o.kind = ?2 ORDER BY o.created_at_ms "
      "DESC, o.rowid DESC LIMIT 1) FROM checkpoints c WHERE c.id = ?1",
      &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, SMAUG__V1__OPERATION_KIND__OPERATION_KIND_DELETE);
  int rc = sqlite3_step(s);
  char *op = NULL;
  if (rc == SQLITE_ROW) {
    const char *t = (const char *)sqlite3_column_text(s, 1);
    if (t != NULL && (op = strdup(t)) == NULL)
      err = UV_ENOMEM;
    else
      *status = sqlite3_column_int(s, 0);
  } else {
    err = rc == SQLITE_DONE ? UV_ENOENT : store__err(st, rc);
  }
  sqlite3_reset(s);
  if (err == 0)
    *delete_op = op;
  return err;
}

int store_result_page(store_t *st, const char *op_id, const char *after_type,
                      const char *after_id, uint32_t limit,
                      Smaug__V1__ResourceResult ***out, size_t *n) {
  int err = 0;
  if (op_id == NULL || limit == 0)
    return UV_EINVAL;
  sqlite3_stmt *s = store__stmt(st,
                                "SELECT 0, body FROM results WHERE op_id = ?1 "
                                "AND (rtype, rid) > (?2, ?3) "
                                "ORDER BY rtype, rid LIMIT ?4",
                                &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, op_id, -1, SQLITE_STATIC);
  store__bind_str(s, 2, after_type);
  store__bind_str(s, 3, after_id);
  sqlite3_bind_int64(s, 4, limit);
  return store__collect(st, s, 0, &smaug__v1__resource_result__descriptor, out,
                        n, NULL);
}

int store_result_count(store_t *st, const char *op_id, uint64_t *out) {
  if (op_id == NULL)
    return UV_EINVAL;
  return store__op_u64(st, "SELECT count(*) FROM results WHERE op_id = ?1",
                       op_id, out);
}

/* ------------------------------------------------------ task outputs */

int store_task_put(store_t *st, const char *op_id, const char *task_id,
                   int status, const uint8_t *payload, size_t len) {
  int err = 0;
  if (op_id == NULL || task_id == NULL)
    return UV_EINVAL;
  sqlite3_stmt *s = store__stmt(st,
                                "INSERT OR REPLACE INTO tasks(op_id, task_id, "
                                "status, payload) VALUES(?1, ?2, ?3, ?4)",
                                &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, op_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, task_id, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 3, status);
  sqlite3_bind_blob(s, 4, payload ? (const void *)payload : "", (int)len,
                    SQLITE_STATIC);
  return store__step_done(st, s);
}

int store_task_each(store_t *st, const char *op_id, store_task_cb cb,
                    void *data) {
  int err = 0, rc;
  sqlite3_stmt *s = store__stmt(
      st, "SELECT task_id, status, payload FROM tasks WHERE op_id = ?1", &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, op_id, -1, SQLITE_STATIC);
  while ((rc = sqlite3_step(s)) == SQLITE_ROW)
    cb((const char *)sqlite3_column_text(s, 0), sqlite3_column_int(s, 1),
       sqlite3_column_blob(s, 2), (size_t)sqlite3_column_bytes(s, 2), data);
  err = rc == SQLITE_DONE ? 0 : store__err(st, rc);
  sqlite3_reset(s);
  return err;
}

/* ------------------------------------------------------------ events */

int store_event_append(store_t *st, const Smaug__V1__OperationEvent *ev) {
  int err = 0;
  if (ev == NULL || ev->operation_id == NULL || ev->sequence == 0)
    return UV_EINVAL;
  sqlite3_stmt *s = store__stmt(
      st, "INSERT INTO events(op_id, seq, body) VALUES(?1, ?2, ?3)", &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, ev->operation_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 2, (sqlite3_int64)ev->sequence);
  if ((err = store__bind_msg(s, 3, &ev->base)) != 0)
    return err;
  return store__step_done(st, s);
}

int store_event_list(store_t *st, const char *op_id, uint64_t after,
                     uint32_t limit, Smaug__V1__OperationEvent ***out,
                     size_t *n) {
  int err = 0;
  sqlite3_stmt *s = store__stmt(st,
                                "SELECT seq, body FROM events WHERE op_id = ?1 "
                                "AND seq > ?2 ORDER BY seq",
                                &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, op_id, -1, SQLITE_STATIC);
  store__bind_seq(s, 2, after);
  return store__collect(st, s, limit, &smaug__v1__operation_event__descriptor,
                        out, n, NULL);
}

int store_event_prune(store_t *st, int64_t before_ms, uint32_t limit,
                      uint32_t *deleted) {
  int err = 0;
  sqlite3_stmt *s = store__stmt(
      st,
      "DELETE FROM events WHERE (op_id, seq) IN (SELECT e.op_id, e.seq "
      "FROM operations o JOIN events e ON e.op_id = o.id "
      "WHERE o.running = 0 AND o.created_at_ms < ?1 LIMIT ?2)",
      &err);
  if (s == NULL)
    return err;
  sqlite3_bind_int64(s, 1, before_ms);
  sqlite3_bind_int64(s, 2, limit ? limit : UINT32_MAX);
  if ((err = store__step_done(st, s)) == 0)
    *deleted = (uint32_t)sqlite3_changes(st->db);
  return err;
}

int store_event_last_seq(store_t *st, const char *op_id, uint64_t *out) {
  return store__op_u64(
      st, "SELECT coalesce(max(seq), 0) FROM events WHERE op_id = ?1", op_id,
      out);
}

/* ----------------------------------------------------------- plugins */

int store_plugins_set(store_t *st, const char *const *addrs, size_t n,
                      int64_t now_ms) {
  int err = 0;
  sqlite3_stmt *del = store__stmt(st, "DELETE FROM plugins", &err);
  if (del == NULL)
    return err;
  if ((err = store__step_done(st, del)) != 0)
    return err;
  sqlite3_stmt *s =
      store__stmt(st,
                  "INSERT OR REPLACE INTO plugins(address, registered_at_ms) "
                  "VALUES(?1, ?2)",
                  &err);
  if (s == NULL)
    return err;
  for (size_t i = 0; i < n && err == 0; i++) {
    sqlite3_reset(s);
    sqlite3_bind_text(s, 1, addrs[i], -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, now_ms);
    err = store__step_done(st, s);
  }
  return err;
}

int store_plugins_list(store_t *st, char ***out, size_t *n) {
  int err = 0, rc;
  sqlite3_stmt *s = store__stmt(
      st, "SELECT address FROM plugins ORDER BY registered_at_ms, address",
      &err);
  if (s == NULL)
    return err;
  char **arr = NULL;
  size_t cnt = 0;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    char **p = realloc(arr, (cnt + 1) * sizeof(*arr));
    char *a = store__dup_col(s, 0);
    if (p == NULL || a == NULL) {
      free(a);
      arr = p ? p : arr;
      err = UV_ENOMEM;
      break;
    }
    arr = p;
    arr[cnt++] = a;
  }
  if (err == 0 && rc != SQLITE_DONE)
    err = store__err(st, rc);
  sqlite3_reset(s);
  if (err) {
    store_strs_free(arr, cnt);
    return err;
  }
  *out = arr;
  *n = cnt;
  return 0;
}

void store_strs_free(char **strs, size_t n) {
  if (strs == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    free(strs[i]);
  free(strs);
}
