/*
 * store_sqlite.c - the SQLite backend of the store (see store.h).
 *
 * One database in WAL mode, synchronous=FULL, through two connections:
 * - the writer, which runs every write and commit. Writes are queued on
 *   the loop as owned copies (item_t); a commit hands everything queued up
 *   to its marker to one job on libuv's thread pool (a round), which runs
 *   it in one transaction. One round runs at a time, so the writer
 *   connection is used by one thread at a time, and everything queued
 *   while a round runs goes into the next one: group commit. The round's
 *   after-callback calls the commit callbacks on the loop.
 * - the reader, used on the loop only. In WAL mode it never waits for the
 *   writer, and it sees committed state only.
 * store_flush() and store_close() wait for the running round, deliver it,
 * then run what is left on the loop thread itself.
 *
 * Statements are prepared once per connection and cached by their SQL
 * text's address (every query is a string literal here), because the
 * executor writes an event or a task output for every task transition and
 * re-preparing would dominate. Migrations are an ordered list; step i
 * brings the schema from version i to i + 1, each in its own transaction.
 *
 * This file holds the connections, the queue's items, open and close;
 * store_sqlite_queue.c the writes and commits, store_sqlite_read.c the
 * reads.
 */
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store_sqlite_int.h"

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
    /* 2 -> 3: task outputs in columns. Version 2 kept "P:type#id" as the
     * key and prefixed the payload with the start and end times as two
     * host-endian int64s; rows that do not have that form are dropped (a
     * resume would have ignored them). The type is what precedes the
     * first '#': types never hold one. */
    "CREATE TABLE tasks3(op_id TEXT NOT NULL, activity INTEGER NOT NULL,"
    "  rtype TEXT NOT NULL, rid TEXT NOT NULL, status INTEGER NOT NULL,"
    "  started_at_ms INTEGER NOT NULL, finished_at_ms INTEGER NOT NULL,"
    "  payload BLOB NOT NULL,"
    "  PRIMARY KEY(op_id, activity, rtype, rid)) WITHOUT ROWID;"
    "INSERT OR REPLACE INTO tasks3 SELECT op_id,"
    "  CASE substr(task_id, 1, 1) WHEN 'P' THEN 1 ELSE 2 END,"
    "  substr(task_id, 3, instr(substr(task_id, 3), '#') - 1),"
    "  substr(task_id, 3 + instr(substr(task_id, 3), '#')),"
    "  status, smaug_v2_time(payload, 0), smaug_v2_time(payload, 8),"
    "  CAST(substr(payload, 17) AS BLOB)"
    "  FROM tasks WHERE substr(task_id, 1, 1) IN ('P', 'S')"
    "  AND substr(task_id, 2, 1) = ':'"
    "  AND instr(substr(task_id, 3), '#') > 1"
    "  AND length(CAST(payload AS BLOB)) >= 16;"
    "DROP TABLE tasks;"
    "ALTER TABLE tasks3 RENAME TO tasks;",
    /* 3 -> 4: tenants. Every existing row goes to tenant 'default'
     * (STORE_TENANT_DEFAULT); the lists filter on the tenant first. */
    "ALTER TABLE plans ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';"
    "ALTER TABLE checkpoints ADD COLUMN tenant TEXT NOT NULL"
    "  DEFAULT 'default';"
    "ALTER TABLE restores ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';"
    "ALTER TABLE operations ADD COLUMN tenant TEXT NOT NULL"
    "  DEFAULT 'default';"
    "CREATE INDEX plans_tenant ON plans(tenant, seq);"
    "CREATE INDEX checkpoints_tenant ON checkpoints(tenant, seq);"
    "CREATE INDEX restores_tenant ON restores(tenant, seq);"
    "CREATE INDEX operations_tenant ON operations(tenant, created_at_ms);",
    /* 4 -> 5: the audit log (a packed smaug.v1.AuditEvent per row, the
     * filtered columns beside it) and the plugin identity that saved each
     * type of a checkpoint. */
    "CREATE TABLE audit(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  time_ms INTEGER NOT NULL, who TEXT NOT NULL, method TEXT NOT NULL,"
    "  body BLOB NOT NULL);"
    "CREATE INDEX audit_time ON audit(time_ms);"
    "CREATE INDEX audit_who ON audit(who, seq);"
    "CREATE INDEX audit_method ON audit(method, seq);"
    "CREATE TABLE checkpoint_plugins(checkpoint_id TEXT NOT NULL,"
    "  rtype TEXT NOT NULL, identity TEXT NOT NULL,"
    "  PRIMARY KEY(checkpoint_id, rtype)) WITHOUT ROWID;",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) ==
                   STORE_SCHEMA_VERSION,
               "one migration per schema version");
/* ------------------------------------------------------------ helpers */

/* The one boundary from SQLite result codes to ours. */
int sq__conn_err(conn_t *c, int rc) {
  snprintf(c->errmsg, sizeof(c->errmsg), "%s", sqlite3_errmsg(c->db));
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

/* Returns a reset, cached statement for the literal `sql`, or NULL. */
sqlite3_stmt *sq__conn_stmt(conn_t *c, const char *sql, int *err) {
  int free_slot = -1;
  for (int i = 0; i < SQ_NCACHE; i++) {
    if (c->cache[i].sql == sql) {
      sqlite3_reset(c->cache[i].stmt);
      sqlite3_clear_bindings(c->cache[i].stmt);
      return c->cache[i].stmt;
    }
    if (c->cache[i].sql == NULL && free_slot < 0)
      free_slot = i;
  }
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2(c->db, sql, -1, &stmt, NULL);
  if (rc != SQLITE_OK) {
    *err = sq__conn_err(c, rc);
    return NULL;
  }
  if (free_slot >= 0) {
    c->cache[free_slot].sql = sql;
    c->cache[free_slot].stmt = stmt;
  }
  /* A full cache would leak: the cache is sized above the query count. */
  return stmt;
}

int sq__conn_exec(conn_t *c, const char *sql) {
  char *msg = NULL;
  int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK) {
    int err = sq__conn_err(c, rc);
    if (msg)
      snprintf(c->errmsg, sizeof(c->errmsg), "%s", msg);
    sqlite3_free(msg);
    return err;
  }
  return 0;
}

/* Rolls back after a failure, keeping the failure's message. */
void sq__conn_rollback(conn_t *c) {
  char keep[SQ_MSG];
  if (sqlite3_get_autocommit(c->db))
    return; /* SQLite rolled back already (a full disk, an I/O error) */
  memcpy(keep, c->errmsg, sizeof(keep));
  sq__conn_exec(c, "ROLLBACK");
  memcpy(c->errmsg, keep, sizeof(keep));
}

static void conn_close(conn_t *c) {
  for (int i = 0; i < SQ_NCACHE; i++)
    sqlite3_finalize(c->cache[i].stmt);
  sqlite3_close(c->db);
  memset(c->cache, 0, sizeof(c->cache));
  c->db = NULL;
}

/* Runs a statement without result rows to completion. */
int sq__conn_step_done(conn_t *c, sqlite3_stmt *stmt) {
  int rc = sqlite3_step(stmt);
  int err = rc == SQLITE_DONE ? 0 : sq__conn_err(c, rc);
  sqlite3_reset(stmt);
  return err;
}

/* Binds `str` as text parameter `col`, NULL as "". Borrowed until reset. */
void sq__bind_str(sqlite3_stmt *stmt, int col, const char *str) {
  sqlite3_bind_text(stmt, col, str ? str : "", -1, SQLITE_STATIC);
}

/* Binds `len` bytes at `b` (NULL: empty) as blob `col`. Borrowed. */
void sq__bind_blob(sqlite3_stmt *stmt, int col, const uint8_t *b, size_t len) {
  sqlite3_bind_blob(stmt, col, b ? (const void *)b : "", (int)len,
                    SQLITE_STATIC);
}

/* Sequences are stored as signed 64-bit: clamp, do not wrap. */
void sq__bind_seq(sqlite3_stmt *stmt, int col, uint64_t seq) {
  sqlite3_bind_int64(stmt, col,
                     seq > INT64_MAX ? INT64_MAX : (sqlite3_int64)seq);
}

int sq__unpack_col(sqlite3_stmt *stmt, int col,
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

/* Packs `msg` into a malloc'd buffer: `*out`, `*len`. */
int sq__pack_msg(const ProtobufCMessage *msg, uint8_t **out, size_t *len) {
  size_t n = protobuf_c_message_get_packed_size(msg);
  uint8_t *b = malloc(n ? n : 1);
  if (b == NULL)
    return UV_ENOMEM;
  protobuf_c_message_pack(msg, b);
  *out = b;
  *len = n;
  return 0;
}

int sq__unpack_tenant(sqlite3_stmt *stmt, int col, int tcol,
                      const ProtobufCMessageDescriptor *desc,
                      ProtobufCMessage **out) {
  ProtobufCMessage *m;
  int err = sq__unpack_col(stmt, col, desc, &m);
  if (err)
    return err;
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field_by_name(desc, "tenant");
  char **field = (char **)((char *)m + f->offset);
  char *t = sq__dup_col(stmt, tcol);
  if (t == NULL) {
    protobuf_c_message_free_unpacked(m, NULL);
    return UV_ENOMEM;
  }
  /* Freed as protobuf_c_message_free_unpacked() would. */
  if (*field && *field != f->default_value)
    free(*field);
  *field = t;
  *out = m;
  return 0;
}

char *sq__dup_col(sqlite3_stmt *s, int col) {
  const char *t = (const char *)sqlite3_column_text(s, col);
  return strdup(t ? t : "");
}

/* ---------------------------------------------------------- the queue */

void sq__item_free(item_t *it) {
  for (int i = 0; i < 4; i++)
    free(it->s[i]);
  free(it->blob);
  store_strs_free(it->strs, it->nstrs);
  free(it);
}

/* A new item of `kind` with copies of the strings `a`, `b`, `c` (NULL
 * stays NULL), or NULL when memory ran out. */
item_t *sq__item_new(int kind, const char *a, const char *b, const char *c) {
  item_t *it = calloc(1, sizeof(*it));
  if (it == NULL)
    return NULL;
  it->kind = kind;
  const char *src[3] = {a, b, c};
  for (int i = 0; i < 3; i++)
    if (src[i] && (it->s[i] = strdup(src[i])) == NULL) {
      sq__item_free(it);
      return NULL;
    }
  return it;
}

void sq__push(sq_t *sq, item_t *it) {
  if (sq->tail)
    sq->tail->next = it;
  else
    sq->head = it;
  sq->tail = it;
  if (it->kind == IT_COMMIT)
    sq->last_marker = it;
  else
    sq->nwrites++;
}

/* Detaches the queue up to and including `upto` (NULL: all of it). */
item_t *sq__take(sq_t *sq, item_t *upto) {
  item_t *list = sq->head;
  if (list == NULL)
    return NULL;
  if (upto == NULL)
    upto = sq->tail;
  sq->head = upto->next;
  upto->next = NULL;
  if (sq->head == NULL)
    sq->tail = NULL;
  if (sq->last_marker && (upto == sq->last_marker || sq->head == NULL))
    sq->last_marker = NULL;
  for (item_t *it = list; it; it = it->next)
    if (it->kind != IT_COMMIT)
      sq->nwrites--;
  return list;
}
/* ----------------------------------------------------- open and close */

static int sq_schema_version(store_t *st) {
  sq_t *sq = (sq_t *)st;
  int err = 0, v = 0;
  sqlite3_stmt *s =
      sq__conn_stmt(&sq->r, "SELECT max(version) FROM schema_version", &err);
  if (s == NULL)
    return err;
  if (sqlite3_step(s) == SQLITE_ROW)
    v = sqlite3_column_int(s, 0);
  sqlite3_reset(s);
  return v;
}

/* smaug_v2_time(payload, off): the host-endian int64 that schema 2 wrote
 * at byte `off` of a task payload; 0 when the payload is too short. For
 * the 2 -> 3 migration only, which runs on the host that wrote it. */
static void v2_time(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  const uint8_t *b = sqlite3_value_blob(argv[0]);
  int len = sqlite3_value_bytes(argv[0]);
  int off = sqlite3_value_int(argv[1]);
  int64_t v = 0;
  if (b && off >= 0 && off + 8 <= len)
    memcpy(&v, b + off, sizeof(v));
  sqlite3_result_int64(ctx, v);
}

static int migrate(conn_t *c) {
  int err = sq__conn_exec(
      c, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER);");
  if (err)
    return err;
  int v = 0;
  sqlite3_stmt *s =
      sq__conn_stmt(c, "SELECT max(version) FROM schema_version", &err);
  if (s == NULL)
    return err;
  if (sqlite3_step(s) == SQLITE_ROW)
    v = sqlite3_column_int(s, 0);
  sqlite3_reset(s);
  if (v > STORE_SCHEMA_VERSION) {
    snprintf(c->errmsg, sizeof(c->errmsg),
             "database schema %d is newer than this build (%d)", v,
             STORE_SCHEMA_VERSION);
    return UV_EPROTO;
  }
  if (v < STORE_SCHEMA_VERSION &&
      sqlite3_create_function(c->db, "smaug_v2_time", 2, SQLITE_UTF8, NULL,
                              v2_time, NULL, NULL) != SQLITE_OK)
    return sq__conn_err(c, SQLITE_ERROR);
  for (; v < STORE_SCHEMA_VERSION; v++) {
    char bump[96];
    snprintf(bump, sizeof(bump),
             "DELETE FROM schema_version; INSERT INTO schema_version "
             "VALUES(%d);",
             v + 1);
    if ((err = sq__conn_exec(c, "BEGIN IMMEDIATE")) != 0)
      return err;
    if ((err = sq__conn_exec(c, migrations[v])) != 0 ||
        (err = sq__conn_exec(c, bump)) != 0) {
      sq__conn_rollback(c);
      return err;
    }
    if ((err = sq__conn_exec(c, "COMMIT")) != 0) {
      sq__conn_rollback(c);
      return err;
    }
  }
  return 0;
}

/* Opens connection `c` on `path` with the store's settings. */
static int conn_open(conn_t *c, const char *path) {
  int rc = sqlite3_open_v2(
      path, &c->db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK)
    return c->db ? sq__conn_err(c, rc) : UV_ENOMEM;
  sqlite3_busy_timeout(c->db, 5000);
  int err;
  if ((err = sq__conn_exec(c, "PRAGMA journal_mode=WAL;")) != 0 ||
      (err = sq__conn_exec(c, "PRAGMA synchronous=FULL;")) != 0 ||
      (err = sq__conn_exec(c, "PRAGMA foreign_keys=ON;")) != 0)
    return err;
  return 0;
}

static void sq_close(store_t *st);

static int sq_open(uv_loop_t *loop, const char *dir, store_t **out) {
  if (mkdir(dir, 0700) != 0 && errno != EEXIST)
    return -errno;
  size_t plen = strlen(dir) + sizeof("/smaug.db");
  char *path = malloc(plen);
  if (path == NULL)
    return UV_ENOMEM;
  snprintf(path, plen, "%s/smaug.db", dir);
  sq_t *sq = calloc(1, sizeof(*sq));
  if (sq == NULL) {
    free(path);
    return UV_ENOMEM;
  }
  sq->base.be = &store_sqlite;
  sq->loop = loop;
  /* The writer migrates before the reader opens: the reader's first look
   * is at the current schema. */
  int err = conn_open(&sq->w, path);
  if (err == 0)
    err = migrate(&sq->w);
  if (err == 0)
    err = conn_open(&sq->r, path);
  free(path);
  if (err) {
    /* The message is lost with the handle; callers log the code. */
    sq_close(&sq->base);
    return err;
  }
  *out = &sq->base;
  return 0;
}

static void sq_close(store_t *st) {
  sq_t *sq = (sq_t *)st;
  if (sq->round) {
    round_t *rd = sq->round;
    sq__settle(sq);
    rd->sq = NULL;
  }
  if (sq->w.db) {
    item_t *items = sq__take(sq, NULL);
    sq__deliver(sq, items, sq__run_items(&sq->w, items));
  }
  conn_close(&sq->r);
  conn_close(&sq->w);
  free(sq);
}

static const char *sq_errmsg(const store_t *st) {
  return ((const sq_t *)st)->errmsg;
}

int store_sqlite_limit_pages(store_t *st, uint32_t pages) {
  sq_t *sq = (sq_t *)st;
  if (st == NULL || st->be != &store_sqlite)
    return UV_EINVAL;
  sq__settle(sq);
  char sql[64];
  snprintf(sql, sizeof(sql), "PRAGMA max_page_count=%u;", pages);
  int err = sq__conn_exec(&sq->w, sql);
  sq__kick(sq); /* commits asked for while the round ran */
  return err;
}
const store_backend_t store_sqlite = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .errmsg = sq_errmsg,
    .schema_version = sq_schema_version,
    .commit = sq_commit,
    .flush = sq_flush,
    .in_batch = sq_in_batch,
    .tenant_get = sq_tenant_get,
    .plan_put = sq_plan_put,
    .plan_get = sq_plan_get,
    .plan_delete = sq_plan_delete,
    .plan_list = sq_plan_list,
    .checkpoint_put = sq_checkpoint_put,
    .checkpoint_get = sq_checkpoint_get,
    .checkpoint_set_status = sq_checkpoint_set_status,
    .checkpoint_head = sq_checkpoint_head,
    .checkpoint_list = sq_checkpoint_list,
    .restore_put = sq_restore_put,
    .restore_get = sq_restore_get,
    .restore_set_status = sq_restore_set_status,
    .restore_list = sq_restore_list,
    .op_put = sq_op_put,
    .op_get = sq_op_get,
    .op_list_running = sq_op_list_running,
    .op_set_running = sq_op_set_running,
    .result_put = sq_result_put,
    .result_list = sq_result_list,
    .result_page = sq_result_page,
    .result_count = sq_result_count,
    .task_put = sq_task_put,
    .task_each = sq_task_each,
    .event_append = sq_event_append,
    .event_list = sq_event_list,
    .event_prune = sq_event_prune,
    .event_last_seq = sq_event_last_seq,
    .plugins_set = sq_plugins_set,
    .plugins_list = sq_plugins_list,
    .audit_append = sq_audit_append,
    .audit_list = sq_audit_list,
    .audit_prune = sq_audit_prune,
    .cp_identity_put = sq_cp_identity_put,
    .cp_identity_list = sq_cp_identity_list,
};
