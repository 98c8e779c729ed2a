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
 */
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store.h"

#define SQ_NCACHE 48
#define SQ_MSG    256

/* One connection and its statement cache. */
typedef struct conn_s {
  sqlite3 *db;
  char errmsg[SQ_MSG];
  struct {
    const char *sql;
    sqlite3_stmt *stmt;
  } cache[SQ_NCACHE];
} conn_t;

enum {
  IT_COMMIT, /* a commit marker: cb, data */
  IT_PLAN_PUT,
  IT_PLAN_DELETE,
  IT_CP_PUT,
  IT_CP_STATUS,
  IT_RESTORE_PUT,
  IT_RESTORE_STATUS,
  IT_OP_PUT,
  IT_OP_RUNNING,
  IT_RESULT_PUT,
  IT_TASK_PUT,
  IT_EVENT_APPEND,
  IT_EVENT_PRUNE,
  IT_PLUGINS_SET
};

/* One queued write, or a commit marker. Everything it points to is its
 * own: the strings, the packed body, the address list. */
typedef struct item_s {
  struct item_s *next;
  int kind;
  char *s[3];
  int64_t n[4];
  uint8_t *blob;
  size_t len;
  char **strs;
  size_t nstrs;
  store_commit_cb cb;
  void *data;
} item_t;

typedef struct sq_s sq_t;

/* A commit running on the thread pool. It outlives the store when the
 * store closes before the loop ran its after-callback. */
typedef struct round_s {
  uv_work_t req;
  sq_t *sq;
  item_t *items; /* writes and markers, in queue order */
  int status;
  int done;      /* the job finished: guarded by mu */
  int delivered; /* the loop took the result already: free on arrival */
  uv_mutex_t mu;
  uv_cond_t cv;
} round_t;

struct sq_s {
  store_t base;
  uv_loop_t *loop;
  conn_t w; /* writer: the running round's, else the loop's */
  conn_t r; /* reader: the loop's */
  item_t *head, *tail;
  item_t *last_marker; /* the last IT_COMMIT queued, or NULL */
  size_t nwrites;      /* writes queued */
  round_t *round;      /* running, or NULL */
  char errmsg[SQ_MSG];
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
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) ==
                   STORE_SCHEMA_VERSION,
               "one migration per schema version");

/* ------------------------------------------------------------ helpers */

/* The one boundary from SQLite result codes to ours. */
static int conn_err(conn_t *c, int rc) {
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
static sqlite3_stmt *conn_stmt(conn_t *c, const char *sql, int *err) {
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
    *err = conn_err(c, rc);
    return NULL;
  }
  if (free_slot >= 0) {
    c->cache[free_slot].sql = sql;
    c->cache[free_slot].stmt = stmt;
  }
  /* A full cache would leak: the cache is sized above the query count. */
  return stmt;
}

static int conn_exec(conn_t *c, const char *sql) {
  char *msg = NULL;
  int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK) {
    int err = conn_err(c, rc);
    if (msg)
      snprintf(c->errmsg, sizeof(c->errmsg), "%s", msg);
    sqlite3_free(msg);
    return err;
  }
  return 0;
}

/* Rolls back after a failure, keeping the failure's message. */
static void conn_rollback(conn_t *c) {
  char keep[SQ_MSG];
  if (sqlite3_get_autocommit(c->db))
    return; /* SQLite rolled back already (a full disk, an I/O error) */
  memcpy(keep, c->errmsg, sizeof(keep));
  conn_exec(c, "ROLLBACK");
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
static int conn_step_done(conn_t *c, sqlite3_stmt *stmt) {
  int rc = sqlite3_step(stmt);
  int err = rc == SQLITE_DONE ? 0 : conn_err(c, rc);
  sqlite3_reset(stmt);
  return err;
}

/* Binds `str` as text parameter `col`, NULL as "". Borrowed until reset. */
static void bind_str(sqlite3_stmt *stmt, int col, const char *str) {
  sqlite3_bind_text(stmt, col, str ? str : "", -1, SQLITE_STATIC);
}

/* Binds `len` bytes at `b` (NULL: empty) as blob `col`. Borrowed. */
static void bind_blob(sqlite3_stmt *stmt, int col, const uint8_t *b,
                      size_t len) {
  sqlite3_bind_blob(stmt, col, b ? (const void *)b : "", (int)len,
                    SQLITE_STATIC);
}

/* Sequences are stored as signed 64-bit: clamp, do not wrap. */
static void bind_seq(sqlite3_stmt *stmt, int col, uint64_t seq) {
  sqlite3_bind_int64(stmt, col,
                     seq > INT64_MAX ? INT64_MAX : (sqlite3_int64)seq);
}

static int unpack_col(sqlite3_stmt *stmt, int col,
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
static int pack_msg(const ProtobufCMessage *msg, uint8_t **out, size_t *len) {
  size_t n = protobuf_c_message_get_packed_size(msg);
  uint8_t *b = malloc(n ? n : 1);
  if (b == NULL)
    return UV_ENOMEM;
  protobuf_c_message_pack(msg, b);
  *out = b;
  *len = n;
  return 0;
}

static char *dup_col(sqlite3_stmt *s, int col) {
  const char *t = (const char *)sqlite3_column_text(s, col);
  return strdup(t ? t : "");
}

/* ---------------------------------------------------------- the queue */

static void item_free(item_t *it) {
  for (int i = 0; i < 3; i++)
    free(it->s[i]);
  free(it->blob);
  store_strs_free(it->strs, it->nstrs);
  free(it);
}

/* A new item of `kind` with copies of the strings `a`, `b`, `c` (NULL
 * stays NULL), or NULL when memory ran out. */
static item_t *item_new(int kind, const char *a, const char *b, const char *c) {
  item_t *it = calloc(1, sizeof(*it));
  if (it == NULL)
    return NULL;
  it->kind = kind;
  const char *src[3] = {a, b, c};
  for (int i = 0; i < 3; i++)
    if (src[i] && (it->s[i] = strdup(src[i])) == NULL) {
      item_free(it);
      return NULL;
    }
  return it;
}

static void sq_push(sq_t *sq, item_t *it) {
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
static item_t *sq_take(sq_t *sq, item_t *upto) {
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

/* ------------------------------------------------- writes, on the writer */

/* Reads the body of row `id` from `sql`, sets its status, reason and
 * (unless 0) finish time, and writes it back with `upd` (?1 id, ?2 status,
 * ?3 body). No row: nothing to do. */
static int apply_status(conn_t *c, const item_t *it, const char *sql,
                        const char *upd,
                        const ProtobufCMessageDescriptor *desc) {
  int err = 0;
  sqlite3_stmt *s = conn_stmt(c, sql, &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, it->s[0], -1, SQLITE_STATIC);
  ProtobufCMessage *m = NULL;
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW)
    err = unpack_col(s, 0, desc, &m);
  else if (rc != SQLITE_DONE)
    err = conn_err(c, rc);
  sqlite3_reset(s);
  if (err || m == NULL)
    return err;
  uint8_t *body = NULL;
  size_t len = 0;
  if (desc == &smaug__v1__checkpoint__descriptor) {
    Smaug__V1__Checkpoint *cp = (Smaug__V1__Checkpoint *)m;
    char *old = cp->reason;
    cp->status = (Smaug__V1__CheckpointStatus)it->n[0];
    if (it->n[1])
      cp->finished_at_ms = it->n[1];
    cp->reason = it->s[1];
    err = pack_msg(m, &body, &len);
    cp->reason = old;
  } else {
    Smaug__V1__Restore *r = (Smaug__V1__Restore *)m;
    char *old = r->reason;
    r->status = (Smaug__V1__RestoreStatus)it->n[0];
    if (it->n[1])
      r->finished_at_ms = it->n[1];
    r->reason = it->s[1];
    err = pack_msg(m, &body, &len);
    r->reason = old;
  }
  protobuf_c_message_free_unpacked(m, NULL);
  if (err == 0 && (s = conn_stmt(c, upd, &err)) != NULL) {
    sqlite3_bind_text(s, 1, it->s[0], -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, it->n[0]);
    bind_blob(s, 3, body, len);
    err = conn_step_done(c, s);
  }
  free(body);
  return err;
}

static int apply_plugins(conn_t *c, const item_t *it) {
  int err = 0;
  sqlite3_stmt *del = conn_stmt(c, "DELETE FROM plugins", &err);
  if (del == NULL || (err = conn_step_done(c, del)) != 0)
    return err;
  sqlite3_stmt *s =
      conn_stmt(c,
                "INSERT OR REPLACE INTO plugins(address, registered_at_ms) "
                "VALUES(?1, ?2)",
                &err);
  for (size_t i = 0; s && i < it->nstrs && err == 0; i++) {
    sqlite3_reset(s);
    sqlite3_bind_text(s, 1, it->strs[i], -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, it->n[0]);
    err = conn_step_done(c, s);
  }
  return err;
}

/* The statement of each simple write; its parameters, in order, are the
 * item's strings s[0..ns), integers n[0..nn) and then its blob if `blob`. */
static const struct {
  const char *sql;
  int ns, nn, blob;
} writes[] = {
    [IT_PLAN_PUT] = {"INSERT INTO plans(id, body) VALUES(?1, ?2) "
                     "ON CONFLICT(id) DO UPDATE SET body = excluded.body",
                     1, 0, 1},
    [IT_PLAN_DELETE] = {"DELETE FROM plans WHERE id = ?1", 1, 0, 0},
    [IT_CP_PUT] = {"INSERT INTO checkpoints(id, plan_id, status, "
                   "created_at_ms, body) VALUES(?1, ?2, ?3, ?4, ?5) "
                   "ON CONFLICT(id) DO UPDATE SET "
                   "plan_id = excluded.plan_id, status = excluded.status, "
                   "created_at_ms = excluded.created_at_ms, "
                   "body = excluded.body",
                   2, 2, 1},
    [IT_RESTORE_PUT] = {"INSERT INTO restores(id, checkpoint_id, body) "
                        "VALUES(?1, ?2, ?3) ON CONFLICT(id) DO UPDATE SET "
                        "checkpoint_id = excluded.checkpoint_id, "
                        "body = excluded.body",
                        2, 0, 1},
    [IT_OP_PUT] = {"INSERT OR REPLACE INTO operations(id, target_id, "
                   "checkpoint_id, kind, running, fail_fast, created_at_ms,"
                   " params) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                   3, 4, 1},
    [IT_OP_RUNNING] = {"UPDATE operations SET running = ?2 WHERE id = ?1", 1, 1,
                       0},
    [IT_RESULT_PUT] = {"INSERT OR REPLACE INTO results(op_id, rtype, rid, "
                       "body) VALUES(?1, ?2, ?3, ?4)",
                       3, 0, 1},
    [IT_TASK_PUT] = {"INSERT OR REPLACE INTO tasks(op_id, rtype, rid, "
                     "activity, status, started_at_ms, finished_at_ms, "
                     "payload) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                     3, 4, 1},
    [IT_EVENT_APPEND] = {"INSERT INTO events(op_id, seq, body) "
                         "VALUES(?1, ?2, ?3)",
                         1, 1, 1},
    [IT_EVENT_PRUNE] = {"DELETE FROM events WHERE (op_id, seq) IN (SELECT "
                        "e.op_id, e.seq FROM operations o JOIN events e ON "
                        "e.op_id = o.id WHERE o.running = 0 AND "
                        "o.created_at_ms < ?1 LIMIT ?2)",
                        0, 2, 0},
};

static int apply(conn_t *c, const item_t *it) {
  switch (it->kind) {
  case IT_CP_STATUS:
    return apply_status(
        c, it, "SELECT body FROM checkpoints WHERE id = ?1",
        "UPDATE checkpoints SET status = ?2, body = ?3 WHERE id = ?1",
        &smaug__v1__checkpoint__descriptor);
  case IT_RESTORE_STATUS:
    return apply_status(c, it, "SELECT body FROM restores WHERE id = ?1",
                        "UPDATE restores SET body = ?3 WHERE id = ?1",
                        &smaug__v1__restore__descriptor);
  case IT_PLUGINS_SET:
    return apply_plugins(c, it);
  default:
    break;
  }
  int err = 0, col = 1;
  sqlite3_stmt *s = conn_stmt(c, writes[it->kind].sql, &err);
  if (s == NULL)
    return err;
  for (int i = 0; i < writes[it->kind].ns; i++)
    bind_str(s, col++, it->s[i]);
  for (int i = 0; i < writes[it->kind].nn; i++)
    sqlite3_bind_int64(s, col++, it->n[i]);
  if (writes[it->kind].blob)
    bind_blob(s, col, it->blob, it->len);
  return conn_step_done(c, s);
}

/* Runs the writes of `items` in one transaction on `c`. Markers only
 * (nothing to write) is 0 at once. Returns 0 or the first error, the
 * transaction then rolled back. Any thread, one at a time. */
static int run_items(conn_t *c, const item_t *items) {
  const item_t *it = items;
  while (it && it->kind == IT_COMMIT)
    it = it->next;
  if (it == NULL)
    return 0;
  int err = conn_exec(c, "BEGIN IMMEDIATE");
  for (; err == 0 && it; it = it->next)
    if (it->kind != IT_COMMIT)
      err = apply(c, it);
  if (err == 0)
    err = conn_exec(c, "COMMIT");
  if (err)
    conn_rollback(c);
  return err;
}

static void round_work(uv_work_t *req) {
  round_t *rd = req->data;
  rd->status = run_items(&rd->sq->w, rd->items);
  uv_mutex_lock(&rd->mu);
  rd->done = 1;
  uv_cond_signal(&rd->cv);
  uv_mutex_unlock(&rd->mu);
}

static void round_free(round_t *rd) {
  uv_mutex_destroy(&rd->mu);
  uv_cond_destroy(&rd->cv);
  free(rd);
}

/* Calls the commit callback of every marker in `items` with `status`, in
 * order, and frees the list. A failure also takes the writes queued
 * before it is reported (see store.h): their markers fail with it. */
static void deliver(sq_t *sq, item_t *items, int status) {
  item_t *lost = NULL;
  if (status) {
    snprintf(sq->errmsg, sizeof(sq->errmsg), "%s", sq->w.errmsg);
    lost = sq_take(sq, NULL);
  }
  for (item_t *list = items; list; list = lost, lost = NULL)
    for (item_t *it = list, *next; it; it = next) {
      next = it->next;
      if (it->kind == IT_COMMIT)
        it->cb(&sq->base, status, it->data);
      item_free(it);
    }
}

static void kick(sq_t *sq);

static void round_after(uv_work_t *req, int status) {
  round_t *rd = req->data;
  (void)status; /* never cancelled: nothing calls uv_cancel on it */
  if (rd->delivered) {
    round_free(rd);
    return;
  }
  sq_t *sq = rd->sq;
  sq->round = NULL;
  item_t *items = rd->items;
  int st = rd->status;
  round_free(rd);
  deliver(sq, items, st);
  kick(sq);
}

/* Starts a round with everything up to the last commit marker, unless one
 * runs already or nothing asks for a commit. */
static void kick(sq_t *sq) {
  if (sq->round || sq->last_marker == NULL)
    return;
  round_t *rd = calloc(1, sizeof(*rd));
  if (rd == NULL)
    return; /* the next commit, flush or close tries again */
  if (uv_mutex_init(&rd->mu) != 0) {
    free(rd);
    return;
  }
  if (uv_cond_init(&rd->cv) != 0) {
    uv_mutex_destroy(&rd->mu);
    free(rd);
    return;
  }
  rd->sq = sq;
  rd->req.data = rd;
  rd->items = sq_take(sq, sq->last_marker);
  if (uv_queue_work(sq->loop, &rd->req, round_work, round_after) != 0) {
    deliver(sq, rd->items, UV_EIO); /* cannot happen: valid arguments */
    round_free(rd);
    return;
  }
  sq->round = rd;
}

/* Waits for the running round, if any, and delivers its result now; its
 * after-callback then only frees it. */
static void settle(sq_t *sq) {
  round_t *rd = sq->round;
  if (rd == NULL)
    return;
  uv_mutex_lock(&rd->mu);
  while (!rd->done)
    uv_cond_wait(&rd->cv, &rd->mu);
  uv_mutex_unlock(&rd->mu);
  rd->delivered = 1;
  sq->round = NULL;
  item_t *items = rd->items;
  rd->items = NULL;
  deliver(sq, items, rd->status);
}

static int sq_commit(store_t *st, store_commit_cb cb, void *data) {
  sq_t *sq = (sq_t *)st;
  item_t *it = item_new(IT_COMMIT, NULL, NULL, NULL);
  if (it == NULL)
    return UV_ENOMEM;
  it->cb = cb;
  it->data = data;
  sq_push(sq, it);
  kick(sq);
  return 0;
}

static int sq_flush(store_t *st) {
  sq_t *sq = (sq_t *)st;
  int err = 0;
  if (sq->round) {
    round_t *rd = sq->round;
    settle(sq);
    err = rd->status;
  }
  item_t *items = sq_take(sq, NULL);
  int ferr = run_items(&sq->w, items);
  deliver(sq, items, ferr);
  return err ? err : ferr;
}

static int sq_in_batch(const store_t *st) {
  const sq_t *sq = (const sq_t *)st;
  return sq->nwrites > 0 || sq->round != NULL;
}

/* Queues `it`, or frees it and returns UV_ENOMEM when it is NULL or
 * `err` says a copy failed. */
static int queue(sq_t *sq, item_t *it, int err) {
  if (it == NULL)
    return UV_ENOMEM;
  if (err) {
    item_free(it);
    return err;
  }
  sq_push(sq, it);
  return 0;
}

/* ----------------------------------------------------- open and close */

static int sq_schema_version(store_t *st) {
  sq_t *sq = (sq_t *)st;
  int err = 0, v = 0;
  sqlite3_stmt *s =
      conn_stmt(&sq->r, "SELECT max(version) FROM schema_version", &err);
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
  int err = conn_exec(
      c, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER);");
  if (err)
    return err;
  int v = 0;
  sqlite3_stmt *s =
      conn_stmt(c, "SELECT max(version) FROM schema_version", &err);
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
    return conn_err(c, SQLITE_ERROR);
  for (; v < STORE_SCHEMA_VERSION; v++) {
    char bump[96];
    snprintf(bump, sizeof(bump),
             "DELETE FROM schema_version; INSERT INTO schema_version "
             "VALUES(%d);",
             v + 1);
    if ((err = conn_exec(c, "BEGIN IMMEDIATE")) != 0)
      return err;
    if ((err = conn_exec(c, migrations[v])) != 0 ||
        (err = conn_exec(c, bump)) != 0) {
      conn_rollback(c);
      return err;
    }
    if ((err = conn_exec(c, "COMMIT")) != 0) {
      conn_rollback(c);
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
    return c->db ? conn_err(c, rc) : UV_ENOMEM;
  sqlite3_busy_timeout(c->db, 5000);
  int err;
  if ((err = conn_exec(c, "PRAGMA journal_mode=WAL;")) != 0 ||
      (err = conn_exec(c, "PRAGMA synchronous=FULL;")) != 0 ||
      (err = conn_exec(c, "PRAGMA foreign_keys=ON;")) != 0)
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
    settle(sq);
    rd->sq = NULL;
  }
  if (sq->w.db) {
    item_t *items = sq_take(sq, NULL);
    deliver(sq, items, run_items(&sq->w, items));
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
  settle(sq);
  char sql[64];
  snprintf(sql, sizeof(sql), "PRAGMA max_page_count=%u;", pages);
  return conn_exec(&sq->w, sql);
}

/* ------------------------------------------------- reads, on the reader */

/* The reader's error for `rc`, its message kept as the store's. */
static int rerr(sq_t *sq, int rc) {
  int err = conn_err(&sq->r, rc);
  memcpy(sq->errmsg, sq->r.errmsg, sizeof(sq->errmsg));
  return err;
}

static sqlite3_stmt *rstmt(sq_t *sq, const char *sql, int *err) {
  sqlite3_stmt *s = conn_stmt(&sq->r, sql, err);
  if (s == NULL)
    memcpy(sq->errmsg, sq->r.errmsg, sizeof(sq->errmsg));
  return s;
}

/* Reads the current row of `stmt` into `out`; `arg` is the reader's own. */
typedef int (*row_fn)(sqlite3_stmt *stmt, const void *arg, void *out);

/* Runs `sql` with `id` as ?1 and reads its one row: UV_ENOENT if none. */
static int get_row(sq_t *sq, const char *sql, const char *id, row_fn row,
                   const void *arg, void *out) {
  int err = 0;
  sqlite3_stmt *s = rstmt(sq, sql, &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW)
    err = row(s, arg, out);
  else if (rc == SQLITE_DONE)
    err = UV_ENOENT;
  else
    err = rerr(sq, rc);
  sqlite3_reset(s);
  return err;
}

static int body_row(sqlite3_stmt *stmt, const void *desc, void *out) {
  return unpack_col(stmt, 0, desc, out);
}

static int exists_row(sqlite3_stmt *stmt, const void *arg, void *out) {
  (void)stmt;
  (void)arg;
  (void)out;
  return 0;
}

static int get_one(sq_t *sq, const char *sql, const char *id,
                   const ProtobufCMessageDescriptor *desc,
                   ProtobufCMessage **out) {
  return get_row(sq, sql, id, body_row, desc, out);
}

/* Collects rows of (seq, body) into an array. */
static int collect(sq_t *sq, sqlite3_stmt *s, uint32_t limit,
                   const ProtobufCMessageDescriptor *desc, void *out, size_t *n,
                   uint64_t *next) {
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
    if ((err = unpack_col(s, 1, desc, &arr[cnt])) != 0)
      break;
    cnt++;
  }
  if (err == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
    err = rerr(sq, rc);
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

static int sq_plan_get(store_t *st, const char *id, Smaug__V1__Plan **out) {
  return get_one((sq_t *)st, "SELECT body FROM plans WHERE id = ?1", id,
                 &smaug__v1__plan__descriptor, (ProtobufCMessage **)out);
}

static int sq_plan_list(store_t *st, uint64_t after, uint32_t limit,
                        Smaug__V1__Plan ***out, size_t *n, uint64_t *next) {
  sq_t *sq = (sq_t *)st;
  int err = 0;
  sqlite3_stmt *s = rstmt(
      sq, "SELECT seq, body FROM plans WHERE seq > ?1 ORDER BY seq", &err);
  if (s == NULL)
    return err;
  bind_seq(s, 1, after);
  return collect(sq, s, limit, &smaug__v1__plan__descriptor, out, n, next);
}

static int sq_checkpoint_get(store_t *st, const char *id,
                             Smaug__V1__Checkpoint **out) {
  return get_one((sq_t *)st, "SELECT body FROM checkpoints WHERE id = ?1", id,
                 &smaug__v1__checkpoint__descriptor, (ProtobufCMessage **)out);
}

static int sq_checkpoint_list(store_t *st, const store_cp_filter_t *f,
                              uint64_t before, uint32_t limit,
                              Smaug__V1__Checkpoint ***out, size_t *n,
                              uint64_t *next) {
  sq_t *sq = (sq_t *)st;
  int err = 0;
  sqlite3_stmt *s =
      rstmt(sq,
            "SELECT seq, body FROM checkpoints WHERE (?1 = 0 OR seq < ?1) "
            "AND (?2 = '' OR plan_id = ?2) AND (?3 = 0 OR status = ?3) "
            "AND created_at_ms >= ?4 AND (?5 = 0 OR created_at_ms < ?5) "
            "ORDER BY seq DESC",
            &err);
  if (s == NULL)
    return err;
  sqlite3_bind_int64(s, 1, (sqlite3_int64)before);
  bind_str(s, 2, f->plan_id);
  sqlite3_bind_int(s, 3, f->status);
  sqlite3_bind_int64(s, 4, f->created_after_ms);
  sqlite3_bind_int64(s, 5, f->created_before_ms);
  return collect(sq, s, limit, &smaug__v1__checkpoint__descriptor, out, n,
                 next);
}

static int sq_restore_get(store_t *st, const char *id,
                          Smaug__V1__Restore **out) {
  return get_one((sq_t *)st, "SELECT body FROM restores WHERE id = ?1", id,
                 &smaug__v1__restore__descriptor, (ProtobufCMessage **)out);
}

static int sq_restore_list(store_t *st, const char *checkpoint_id,
                           uint64_t before, uint32_t limit,
                           Smaug__V1__Restore ***out, size_t *n,
                           uint64_t *next) {
  sq_t *sq = (sq_t *)st;
  int err = 0;
  sqlite3_stmt *s =
      rstmt(sq,
            "SELECT seq, body FROM restores WHERE (?1 = 0 OR seq < ?1) "
            "AND (?2 = '' OR checkpoint_id = ?2) ORDER BY seq DESC",
            &err);
  if (s == NULL)
    return err;
  sqlite3_bind_int64(s, 1, (sqlite3_int64)before);
  bind_str(s, 2, checkpoint_id);
  return collect(sq, s, limit, &smaug__v1__restore__descriptor, out, n, next);
}

static int op_row(sqlite3_stmt *s, store_op_t **out) {
  store_op_t *op = calloc(1, sizeof(*op));
  if (op == NULL)
    return UV_ENOMEM;
  op->id = dup_col(s, 0);
  op->kind = sqlite3_column_int(s, 1);
  op->target_id = dup_col(s, 2);
  op->checkpoint_id = dup_col(s, 3);
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

#define OP_COLS                                                                \
  "id, kind, target_id, checkpoint_id, running, fail_fast, created_at_ms, "    \
  "params"

static int op_get_row(sqlite3_stmt *stmt, const void *arg, void *out) {
  (void)arg;
  return op_row(stmt, out);
}

static int sq_op_get(store_t *st, const char *id, store_op_t **out) {
  return get_row((sq_t *)st, "SELECT " OP_COLS " FROM operations WHERE id = ?1",
                 id, op_get_row, NULL, out);
}

static int sq_op_list_running(store_t *st, store_op_t ***out, size_t *n) {
  sq_t *sq = (sq_t *)st;
  int err = 0, rc = SQLITE_DONE;
  sqlite3_stmt *s = rstmt(sq,
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
    err = rerr(sq, rc);
  sqlite3_reset(s);
  if (err) {
    store_ops_free(arr, cnt);
    return err;
  }
  *out = arr;
  *n = cnt;
  return 0;
}

static int sq_result_list(store_t *st, const char *op_id,
                          Smaug__V1__ResourceResult ***out, size_t *n) {
  sq_t *sq = (sq_t *)st;
  int err = 0;
  sqlite3_stmt *s = rstmt(sq,
                          "SELECT 0, body FROM results WHERE op_id = ?1 "
                          "ORDER BY rtype, rid",
                          &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, op_id, -1, SQLITE_STATIC);
  return collect(sq, s, 0, &smaug__v1__resource_result__descriptor, out, n,
                 NULL);
}

static int sq_task_each(store_t *st, const char *op_id, store_task_cb cb,
                        void *data) {
  sq_t *sq = (sq_t *)st;
  int err = 0, rc;
  sqlite3_stmt *s = rstmt(sq,
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
  err = rc == SQLITE_DONE ? 0 : rerr(sq, rc);
  sqlite3_reset(s);
  return err;
}

static int sq_event_list(store_t *st, const char *op_id, uint64_t after,
                         uint32_t limit, Smaug__V1__OperationEvent ***out,
                         size_t *n) {
  sq_t *sq = (sq_t *)st;
  int err = 0;
  sqlite3_stmt *s = rstmt(sq,
                          "SELECT seq, body FROM events WHERE op_id = ?1 "
                          "AND seq > ?2 ORDER BY seq",
                          &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, op_id, -1, SQLITE_STATIC);
  bind_seq(s, 2, after);
  return collect(sq, s, limit, &smaug__v1__operation_event__descriptor, out, n,
                 NULL);
}

/* The one integer `sql` returns with ?1 the text `id`, or when it is NULL
 * the integer `a`, and ?2 the integer `b`. */
static int read_int(sq_t *sq, const char *sql, const char *id, int64_t a,
                    int64_t b, int64_t *out) {
  int err = 0;
  sqlite3_stmt *s = rstmt(sq, sql, &err);
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
    err = rerr(sq, rc);
  sqlite3_reset(s);
  return err;
}

static int sq_event_last_seq(store_t *st, const char *op_id, uint64_t *out) {
  int64_t v = 0;
  int err = read_int((sq_t *)st,
                     "SELECT coalesce(max(seq), 0) FROM events WHERE "
                     "op_id = ?1",
                     op_id, 0, 0, &v);
  if (err == 0)
    *out = (uint64_t)v;
  return err;
}

static int sq_plugins_list(store_t *st, char ***out, size_t *n) {
  sq_t *sq = (sq_t *)st;
  int err = 0, rc;
  sqlite3_stmt *s = rstmt(
      sq, "SELECT address FROM plugins ORDER BY registered_at_ms, address",
      &err);
  if (s == NULL)
    return err;
  char **arr = NULL;
  size_t cnt = 0;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    char **p = realloc(arr, (cnt + 1) * sizeof(*arr));
    char *a = dup_col(s, 0);
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
    err = rerr(sq, rc);
  sqlite3_reset(s);
  if (err) {
    store_strs_free(arr, cnt);
    return err;
  }
  *out = arr;
  *n = cnt;
  return 0;
}

/* ------------------------------------------------ writes, on the loop */

/* Queues a write of `kind` with strings `a`, `b`, `c`, integers `n` (up
 * to 4, the rest 0) and `msg` packed as its blob (NULL: none). */
static int queue_msg(sq_t *sq, int kind, const char *a, const char *b,
                     const char *c, const int64_t *n, size_t nn,
                     const ProtobufCMessage *msg) {
  item_t *it = item_new(kind, a, b, c);
  int err = 0;
  if (it && n)
    memcpy(it->n, n, nn * sizeof(*n));
  if (it && msg)
    err = pack_msg(msg, &it->blob, &it->len);
  return queue(sq, it, err);
}

/* Queues a write whose blob is a copy of `len` bytes at `b`. */
static int queue_bytes(sq_t *sq, int kind, const char *a, const char *bs,
                       const char *c, const int64_t *n, size_t nn,
                       const uint8_t *b, size_t len) {
  item_t *it = item_new(kind, a, bs, c);
  int err = 0;
  if (it) {
    memcpy(it->n, n, nn * sizeof(*n));
    if ((it->blob = malloc(len ? len : 1)) == NULL)
      err = UV_ENOMEM;
    else if (len)
      memcpy(it->blob, b, len);
    it->len = len;
  }
  return queue(sq, it, err);
}

static int sq_plan_put(store_t *st, const Smaug__V1__Plan *plan) {
  return queue_msg((sq_t *)st, IT_PLAN_PUT, plan->id, NULL, NULL, NULL, 0,
                   &plan->base);
}

static int sq_plan_delete(store_t *st, const char *id) {
  sq_t *sq = (sq_t *)st;
  int err = get_row(sq, "SELECT 1 FROM plans WHERE id = ?1", id, exists_row,
                    NULL, NULL);
  if (err)
    return err;
  return queue_msg(sq, IT_PLAN_DELETE, id, NULL, NULL, NULL, 0, NULL);
}

static int sq_checkpoint_put(store_t *st, const Smaug__V1__Checkpoint *cp) {
  /* Results live in their own table; never duplicate them in the body. */
  Smaug__V1__Checkpoint copy = *cp;
  copy.n_results = 0;
  copy.results = NULL;
  int64_t n[2] = {cp->status, cp->created_at_ms};
  return queue_msg((sq_t *)st, IT_CP_PUT, cp->id, cp->plan_id, NULL, n, 2,
                   &copy.base);
}

static int sq_checkpoint_set_status(store_t *st, const char *id, int status,
                                    int64_t finished_at_ms,
                                    const char *reason) {
  int64_t n[2] = {status, finished_at_ms};
  return queue_msg((sq_t *)st, IT_CP_STATUS, id, reason, NULL, n, 2, NULL);
}

static int sq_restore_put(store_t *st, const Smaug__V1__Restore *r) {
  Smaug__V1__Restore copy = *r;
  copy.n_results = 0;
  copy.results = NULL;
  return queue_msg((sq_t *)st, IT_RESTORE_PUT, r->id, r->checkpoint_id, NULL,
                   NULL, 0, &copy.base);
}

static int sq_restore_set_status(store_t *st, const char *id, int status,
                                 int64_t finished_at_ms, const char *reason) {
  int64_t n[2] = {status, finished_at_ms};
  return queue_msg((sq_t *)st, IT_RESTORE_STATUS, id, reason, NULL, n, 2, NULL);
}

static int sq_op_put(store_t *st, const store_op_t *op) {
  int64_t n[4] = {op->kind, op->running, op->fail_fast, op->created_at_ms};
  return queue_bytes((sq_t *)st, IT_OP_PUT, op->id, op->target_id,
                     op->checkpoint_id, n, 4, op->params, op->params_len);
}

static int sq_op_set_running(store_t *st, const char *id, int running) {
  sq_t *sq = (sq_t *)st;
  int err = get_row(sq, "SELECT 1 FROM operations WHERE id = ?1", id,
                    exists_row, NULL, NULL);
  if (err)
    return err;
  int64_t n[1] = {running};
  return queue_msg(sq, IT_OP_RUNNING, id, NULL, NULL, n, 1, NULL);
}

static int sq_result_put(store_t *st, const char *op_id,
                         const Smaug__V1__ResourceResult *res) {
  return queue_msg((sq_t *)st, IT_RESULT_PUT, op_id, res->resource->type,
                   res->resource->id, NULL, 0, &res->base);
}

static int sq_task_put(store_t *st, const char *op_id, const store_task_t *t) {
  int64_t n[4] = {t->activity, t->status, t->started_at_ms, t->finished_at_ms};
  return queue_bytes((sq_t *)st, IT_TASK_PUT, op_id, t->type, t->id, n, 4,
                     t->payload, t->len);
}

static int sq_event_append(store_t *st, const Smaug__V1__OperationEvent *ev) {
  int64_t n[1] = {ev->sequence > INT64_MAX ? INT64_MAX : (int64_t)ev->sequence};
  return queue_msg((sq_t *)st, IT_EVENT_APPEND, ev->operation_id, NULL, NULL, n,
                   1, &ev->base);
}

static int sq_event_prune(store_t *st, int64_t before_ms, uint32_t limit,
                          uint32_t *deleted) {
  sq_t *sq = (sq_t *)st;
  int64_t lim = limit ? limit : UINT32_MAX, cnt = 0;
  int err = read_int(sq,
                     "SELECT count(*) FROM (SELECT 1 FROM operations o JOIN "
                     "events e ON e.op_id = o.id WHERE o.running = 0 AND "
                     "o.created_at_ms < ?1 LIMIT ?2)",
                     NULL, before_ms, lim, &cnt);
  if (err)
    return err;
  int64_t n[2] = {before_ms, lim};
  if (cnt &&
      (err = queue_msg(sq, IT_EVENT_PRUNE, NULL, NULL, NULL, n, 2, NULL)) != 0)
    return err;
  *deleted = (uint32_t)cnt;
  return 0;
}

static int sq_plugins_set(store_t *st, const char *const *addrs, size_t n,
                          int64_t now_ms) {
  item_t *it = item_new(IT_PLUGINS_SET, NULL, NULL, NULL);
  int err = 0;
  if (it) {
    it->n[0] = now_ms;
    it->strs = calloc(n + 1, sizeof(*it->strs));
    for (size_t i = 0; it->strs && i < n; i++, it->nstrs++)
      if ((it->strs[i] = strdup(addrs[i])) == NULL)
        break;
    if (it->strs == NULL || it->nstrs < n)
      err = UV_ENOMEM;
  }
  return queue((sq_t *)st, it, err);
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
    .plan_put = sq_plan_put,
    .plan_get = sq_plan_get,
    .plan_delete = sq_plan_delete,
    .plan_list = sq_plan_list,
    .checkpoint_put = sq_checkpoint_put,
    .checkpoint_get = sq_checkpoint_get,
    .checkpoint_set_status = sq_checkpoint_set_status,
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
    .task_put = sq_task_put,
    .task_each = sq_task_each,
    .event_append = sq_event_append,
    .event_list = sq_event_list,
    .event_prune = sq_event_prune,
    .event_last_seq = sq_event_last_seq,
    .plugins_set = sq_plugins_set,
    .plugins_list = sq_plugins_list,
};
