/*
 * store_sqlite_queue.c - the SQLite backend's writes (see store_sqlite.c).
 *
 * On the loop, each write becomes an item_t holding copies of everything
 * it needs, appended to the queue. A commit marker hands the queue up to
 * it to a round: one job on libuv's thread pool that runs every write in
 * one transaction on the writer connection, while the loop goes on. The
 * round's after-callback calls the markers' callbacks in order; a failure
 * also discards what was queued meanwhile (store.h). One round runs at a
 * time; store_flush() and store_close() wait for it (settle) and then run
 * the rest on the loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_sqlite_int.h"

/* ------------------------------------------------- writes, on the writer */

/* Reads the body of row `id` from `sql`, sets its status, reason and
 * (unless 0) finish time, and writes it back with `upd` (?1 id, ?2 status,
 * ?3 body). No row: nothing to do. */
static int apply_status(conn_t *c, const item_t *it, const char *sql,
                        const char *upd,
                        const ProtobufCMessageDescriptor *desc) {
  int err = 0;
  sqlite3_stmt *s = sq__conn_stmt(c, sql, &err);
  if (s == NULL)
    return err;
  sqlite3_bind_text(s, 1, it->s[0], -1, SQLITE_STATIC);
  ProtobufCMessage *m = NULL;
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW)
    err = sq__unpack_col(s, 0, desc, &m);
  else if (rc != SQLITE_DONE)
    err = sq__conn_err(c, rc);
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
    err = sq__pack_msg(m, &body, &len);
    cp->reason = old;
  } else {
    Smaug__V1__Restore *r = (Smaug__V1__Restore *)m;
    char *old = r->reason;
    r->status = (Smaug__V1__RestoreStatus)it->n[0];
    if (it->n[1])
      r->finished_at_ms = it->n[1];
    r->reason = it->s[1];
    err = sq__pack_msg(m, &body, &len);
    r->reason = old;
  }
  protobuf_c_message_free_unpacked(m, NULL);
  if (err == 0 && (s = sq__conn_stmt(c, upd, &err)) != NULL) {
    sqlite3_bind_text(s, 1, it->s[0], -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, it->n[0]);
    sq__bind_blob(s, 3, body, len);
    err = sq__conn_step_done(c, s);
  }
  free(body);
  return err;
}

static int apply_plugins(conn_t *c, const item_t *it) {
  int err = 0;
  sqlite3_stmt *del = sq__conn_stmt(c, "DELETE FROM plugins", &err);
  if (del == NULL || (err = sq__conn_step_done(c, del)) != 0)
    return err;
  sqlite3_stmt *s =
      sq__conn_stmt(c,
                    "INSERT OR REPLACE INTO plugins(address, registered_at_ms) "
                    "VALUES(?1, ?2)",
                    &err);
  for (size_t i = 0; s && i < it->nstrs && err == 0; i++) {
    sqlite3_reset(s);
    sqlite3_bind_text(s, 1, it->strs[i], -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, it->n[0]);
    err = sq__conn_step_done(c, s);
  }
  return err;
}

/* The statement of each simple write; its parameters, in order, are the
 * item's strings s[0..ns), integers n[0..nn) and then its blob if `blob`. */
static const struct {
  const char *sql;
  int ns, nn, blob;
} writes[] = {
    [IT_PLAN_PUT] = {"INSERT INTO plans(id, tenant, body) VALUES(?1, ?2, ?3) "
                     "ON CONFLICT(id) DO UPDATE SET body = excluded.body",
                     2, 0, 1},
    [IT_PLAN_DELETE] = {"DELETE FROM plans WHERE id = ?1", 1, 0, 0},
    [IT_CP_PUT] = {"INSERT INTO checkpoints(id, plan_id, tenant, status, "
                   "created_at_ms, body) VALUES(?1, ?2, ?3, ?4, ?5, ?6) "
                   "ON CONFLICT(id) DO UPDATE SET "
                   "plan_id = excluded.plan_id, status = excluded.status, "
                   "created_at_ms = excluded.created_at_ms, "
                   "body = excluded.body",
                   3, 2, 1},
    [IT_RESTORE_PUT] = {"INSERT INTO restores(id, checkpoint_id, tenant, "
                        "body) VALUES(?1, ?2, ?3, ?4) ON CONFLICT(id) DO "
                        "UPDATE SET checkpoint_id = excluded.checkpoint_id, "
                        "body = excluded.body",
                        3, 0, 1},
    [IT_OP_PUT] = {"INSERT INTO operations(id, target_id, checkpoint_id, "
                   "tenant, kind, running, fail_fast, created_at_ms, params) "
                   "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
                   "ON CONFLICT(id) DO UPDATE SET "
                   "target_id = excluded.target_id, "
                   "checkpoint_id = excluded.checkpoint_id, "
                   "kind = excluded.kind, running = excluded.running, "
                   "fail_fast = excluded.fail_fast, "
                   "created_at_ms = excluded.created_at_ms, "
                   "params = excluded.params",
                   4, 4, 1},
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
    [IT_AUDIT_APPEND] = {"INSERT INTO audit(who, method, time_ms, body) "
                         "VALUES(?1, ?2, ?3, ?4)",
                         2, 1, 1},
    [IT_AUDIT_PRUNE] = {"DELETE FROM audit WHERE seq IN (SELECT seq FROM "
                        "audit WHERE time_ms < ?1 OR seq <= ?3 "
                        "ORDER BY seq LIMIT ?2)",
                        0, 3, 0},
    [IT_CP_IDENTITY] = {"INSERT OR REPLACE INTO checkpoint_plugins("
                        "checkpoint_id, rtype, identity) VALUES(?1, ?2, ?3)",
                        3, 0, 0},
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
  sqlite3_stmt *s = sq__conn_stmt(c, writes[it->kind].sql, &err);
  if (s == NULL)
    return err;
  for (int i = 0; i < writes[it->kind].ns; i++)
    sq__bind_str(s, col++, it->s[i]);
  for (int i = 0; i < writes[it->kind].nn; i++)
    sqlite3_bind_int64(s, col++, it->n[i]);
  if (writes[it->kind].blob)
    sq__bind_blob(s, col, it->blob, it->len);
  return sq__conn_step_done(c, s);
}

/* Runs the writes of `items` in one transaction on `c`. Markers only
 * (nothing to write) is 0 at once. Returns 0 or the first error, the
 * transaction then rolled back. Any thread, one at a time. */
int sq__run_items(conn_t *c, const item_t *items) {
  const item_t *it = items;
  while (it && it->kind == IT_COMMIT)
    it = it->next;
  if (it == NULL)
    return 0;
  int err = sq__conn_exec(c, "BEGIN IMMEDIATE");
  for (; err == 0 && it; it = it->next)
    if (it->kind != IT_COMMIT)
      err = apply(c, it);
  if (err == 0)
    err = sq__conn_exec(c, "COMMIT");
  if (err)
    sq__conn_rollback(c);
  return err;
}

static void round_work(uv_work_t *req) {
  round_t *rd = req->data;
  rd->status = sq__run_items(&rd->sq->w, rd->items);
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
void sq__deliver(sq_t *sq, item_t *items, int status) {
  item_t *lost = NULL;
  if (status) {
    snprintf(sq->errmsg, sizeof(sq->errmsg), "%s", sq->w.errmsg);
    lost = sq__take(sq, NULL);
  }
  for (item_t *list = items; list; list = lost, lost = NULL)
    for (item_t *it = list, *next; it; it = next) {
      next = it->next;
      if (it->kind == IT_COMMIT)
        it->cb(&sq->base, status, it->data);
      sq__item_free(it);
    }
}

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
  sq__deliver(sq, items, st);
  sq__kick(sq);
}

/* Starts a round with everything up to the last commit marker, unless one
 * runs already or nothing asks for a commit. */
void sq__kick(sq_t *sq) {
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
  rd->items = sq__take(sq, sq->last_marker);
  if (uv_queue_work(sq->loop, &rd->req, round_work, round_after) != 0) {
    sq__deliver(sq, rd->items, UV_EIO); /* cannot happen: valid arguments */
    round_free(rd);
    return;
  }
  sq->round = rd;
}

/* Waits for the running round, if any, and delivers its result now; its
 * after-callback then only frees it. */
void sq__settle(sq_t *sq) {
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
  sq__deliver(sq, items, rd->status);
}

int sq_commit(store_t *st, store_commit_cb cb, void *data) {
  sq_t *sq = (sq_t *)st;
  item_t *it = sq__item_new(IT_COMMIT, NULL, NULL, NULL);
  if (it == NULL)
    return UV_ENOMEM;
  it->cb = cb;
  it->data = data;
  sq__push(sq, it);
  sq__kick(sq);
  return 0;
}

int sq_flush(store_t *st) {
  sq_t *sq = (sq_t *)st;
  int err = 0;
  if (sq->round) {
    round_t *rd = sq->round;
    sq__settle(sq);
    err = rd->status;
  }
  item_t *items = sq__take(sq, NULL);
  int ferr = sq__run_items(&sq->w, items);
  sq__deliver(sq, items, ferr);
  return err ? err : ferr;
}

int sq_in_batch(const store_t *st) {
  const sq_t *sq = (const sq_t *)st;
  return sq->nwrites > 0 || sq->round != NULL;
}

/* Queues `it`, or frees it and returns UV_ENOMEM when it is NULL or
 * `err` says a copy failed. */
static int queue(sq_t *sq, item_t *it, int err) {
  if (it == NULL)
    return UV_ENOMEM;
  if (err) {
    sq__item_free(it);
    return err;
  }
  sq__push(sq, it);
  return 0;
}
/* ------------------------------------------------ writes, on the loop */

/* Queues a write of `kind` with strings `a`, `b`, `c`, integers `n` (up
 * to 4, the rest 0) and `msg` packed as its blob (NULL: none). */
static int queue_msg(sq_t *sq, int kind, const char *a, const char *b,
                     const char *c, const int64_t *n, size_t nn,
                     const ProtobufCMessage *msg) {
  item_t *it = sq__item_new(kind, a, b, c);
  int err = 0;
  if (it && n)
    memcpy(it->n, n, nn * sizeof(*n));
  if (it && msg)
    err = sq__pack_msg(msg, &it->blob, &it->len);
  return queue(sq, it, err);
}

/* Queues a write whose blob is a copy of `len` bytes at `b`, with a
 * fourth string `d` (NULL: none). */
static int queue_bytes(sq_t *sq, int kind, const char *a, const char *bs,
                       const char *c, const char *d, const int64_t *n,
                       size_t nn, const uint8_t *b, size_t len) {
  item_t *it = sq__item_new(kind, a, bs, c);
  int err = 0;
  if (it && d && (it->s[3] = strdup(d)) == NULL)
    err = UV_ENOMEM;
  if (it && err == 0) {
    memcpy(it->n, n, nn * sizeof(*n));
    if ((it->blob = malloc(len ? len : 1)) == NULL)
      err = UV_ENOMEM;
    else if (len)
      memcpy(it->blob, b, len);
    it->len = len;
  }
  return queue(sq, it, err);
}

int sq_plan_put(store_t *st, const Smaug__V1__Plan *plan) {
  return queue_msg((sq_t *)st, IT_PLAN_PUT, plan->id,
                   store_tenant(plan->tenant), NULL, NULL, 0, &plan->base);
}

int sq_plan_delete(store_t *st, const char *id) {
  sq_t *sq = (sq_t *)st;
  int err = sq__get_row(sq, "SELECT 1 FROM plans WHERE id = ?1", id,
                        sq__exists_row, NULL, NULL);
  if (err)
    return err;
  return queue_msg(sq, IT_PLAN_DELETE, id, NULL, NULL, NULL, 0, NULL);
}

int sq_checkpoint_put(store_t *st, const Smaug__V1__Checkpoint *cp) {
  /* Results live in their own table; never duplicate them in the body. */
  Smaug__V1__Checkpoint copy = *cp;
  copy.n_results = 0;
  copy.results = NULL;
  int64_t n[2] = {cp->status, cp->created_at_ms};
  return queue_msg((sq_t *)st, IT_CP_PUT, cp->id, cp->plan_id,
                   store_tenant(cp->tenant), n, 2, &copy.base);
}

int sq_checkpoint_set_status(store_t *st, const char *id, int status,
                             int64_t finished_at_ms, const char *reason) {
  int64_t n[2] = {status, finished_at_ms};
  return queue_msg((sq_t *)st, IT_CP_STATUS, id, reason, NULL, n, 2, NULL);
}

int sq_restore_put(store_t *st, const Smaug__V1__Restore *r) {
  Smaug__V1__Restore copy = *r;
  copy.n_results = 0;
  copy.results = NULL;
  return queue_msg((sq_t *)st, IT_RESTORE_PUT, r->id, r->checkpoint_id,
                   store_tenant(r->tenant), NULL, 0, &copy.base);
}

int sq_restore_set_status(store_t *st, const char *id, int status,
                          int64_t finished_at_ms, const char *reason) {
  int64_t n[2] = {status, finished_at_ms};
  return queue_msg((sq_t *)st, IT_RESTORE_STATUS, id, reason, NULL, n, 2, NULL);
}

int sq_op_put(store_t *st, const store_op_t *op) {
  int64_t n[4] = {op->kind, op->running, op->fail_fast, op->created_at_ms};
  return queue_bytes((sq_t *)st, IT_OP_PUT, op->id, op->target_id,
                     op->checkpoint_id, store_tenant(op->tenant), n, 4,
                     op->params, op->params_len);
}

int sq_op_set_running(store_t *st, const char *id, int running) {
  sq_t *sq = (sq_t *)st;
  int err = sq__get_row(sq, "SELECT 1 FROM operations WHERE id = ?1", id,
                        sq__exists_row, NULL, NULL);
  if (err)
    return err;
  int64_t n[1] = {running};
  return queue_msg(sq, IT_OP_RUNNING, id, NULL, NULL, n, 1, NULL);
}

int sq_result_put(store_t *st, const char *op_id,
                  const Smaug__V1__ResourceResult *res) {
  return queue_msg((sq_t *)st, IT_RESULT_PUT, op_id, res->resource->type,
                   res->resource->id, NULL, 0, &res->base);
}

int sq_task_put(store_t *st, const char *op_id, const store_task_t *t) {
  int64_t n[4] = {t->activity, t->status, t->started_at_ms, t->finished_at_ms};
  return queue_bytes((sq_t *)st, IT_TASK_PUT, op_id, t->type, t->id, NULL, n, 4,
                     t->payload, t->len);
}

int sq_event_append(store_t *st, const Smaug__V1__OperationEvent *ev) {
  int64_t n[1] = {ev->sequence > INT64_MAX ? INT64_MAX : (int64_t)ev->sequence};
  return queue_msg((sq_t *)st, IT_EVENT_APPEND, ev->operation_id, NULL, NULL, n,
                   1, &ev->base);
}

int sq_event_prune(store_t *st, int64_t before_ms, uint32_t limit,
                   uint32_t *deleted) {
  sq_t *sq = (sq_t *)st;
  int64_t lim = limit ? limit : UINT32_MAX, cnt = 0;
  int err =
      sq__read_int(sq,
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

int sq_plugins_set(store_t *st, const char *const *addrs, size_t n,
                   int64_t now_ms) {
  item_t *it = sq__item_new(IT_PLUGINS_SET, NULL, NULL, NULL);
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

int sq_audit_append(store_t *st, const Smaug__V1__AuditEvent *ev) {
  Smaug__V1__AuditEvent copy = *ev;
  copy.sequence = 0; /* the row's seq */
  int64_t n[1] = {ev->time_ms};
  return queue_msg((sq_t *)st, IT_AUDIT_APPEND, ev->who, ev->method, NULL, n, 1,
                   &copy.base);
}

int sq_audit_prune(store_t *st, int64_t before_ms, uint64_t keep,
                   uint32_t limit, uint32_t *deleted) {
  sq_t *sq = (sq_t *)st;
  int64_t lim = limit ? limit : UINT32_MAX, cnt = 0, upto = 0;
  int err = sq__audit_old(sq, before_ms, keep, lim, &upto, &cnt);
  if (err)
    return err;
  int64_t n[3] = {before_ms, lim, upto};
  if (cnt &&
      (err = queue_msg(sq, IT_AUDIT_PRUNE, NULL, NULL, NULL, n, 3, NULL)) != 0)
    return err;
  *deleted = (uint32_t)cnt;
  return 0;
}

int sq_cp_identity_put(store_t *st, const char *checkpoint_id, const char *type,
                       const char *identity) {
  return queue_msg((sq_t *)st, IT_CP_IDENTITY, checkpoint_id, type, identity,
                   NULL, 0, NULL);
}
