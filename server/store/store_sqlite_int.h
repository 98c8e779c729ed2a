/*
 * store_sqlite_int.h - what the files of the SQLite backend share (see
 * store_sqlite.c): the store object, its two connections, the write queue
 * and the commit rounds. Nothing outside server/store/ includes it.
 */
#ifndef SMAUG_STORE_SQLITE_INT_H
#define SMAUG_STORE_SQLITE_INT_H

#include <sqlite3.h>
#include <stdint.h>
#include <uv.h>

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
  IT_PLUGINS_SET,
  IT_AUDIT_APPEND,
  IT_AUDIT_PRUNE,
  IT_CP_IDENTITY
};

/* One queued write, or a commit marker. Everything it points to is its
 * own: the strings, the packed body, the address list. */
typedef struct item_s {
  struct item_s *next;
  int kind;
  char *s[4];
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

/* store_sqlite.c: connections, binding, the queue, open and close. */
int sq__conn_err(conn_t *c, int rc);
sqlite3_stmt *sq__conn_stmt(conn_t *c, const char *sql, int *err);
int sq__conn_exec(conn_t *c, const char *sql);
void sq__conn_rollback(conn_t *c);
int sq__conn_step_done(conn_t *c, sqlite3_stmt *stmt);
void sq__bind_str(sqlite3_stmt *stmt, int col, const char *str);
void sq__bind_blob(sqlite3_stmt *stmt, int col, const uint8_t *b, size_t len);
void sq__bind_seq(sqlite3_stmt *stmt, int col, uint64_t seq);
int sq__unpack_col(sqlite3_stmt *stmt, int col,
                   const ProtobufCMessageDescriptor *desc,
                   ProtobufCMessage **out);
int sq__pack_msg(const ProtobufCMessage *msg, uint8_t **out, size_t *len);
char *sq__dup_col(sqlite3_stmt *s, int col);
/* sq__unpack_col() of a message with a `tenant` field (plan, checkpoint,
 * restore), that field then set from text column `tcol`. */
int sq__unpack_tenant(sqlite3_stmt *stmt, int col, int tcol,
                      const ProtobufCMessageDescriptor *desc,
                      ProtobufCMessage **out);
void sq__item_free(item_t *it);
item_t *sq__item_new(int kind, const char *a, const char *b, const char *c);
void sq__push(sq_t *sq, item_t *it);
/* Detaches the queue up to and including `upto` (NULL: all of it). */
item_t *sq__take(sq_t *sq, item_t *upto);

/* store_sqlite_read.c: reads, on the reader connection. */
/* Reads the current row of `stmt` into `out`; `arg` is the reader's own. */
typedef int (*row_fn)(sqlite3_stmt *stmt, const void *arg, void *out);
int sq__rerr(sq_t *sq, int rc);
sqlite3_stmt *sq__rstmt(sq_t *sq, const char *sql, int *err);
int sq__get_row(sq_t *sq, const char *sql, const char *id, row_fn row,
                const void *arg, void *out);
int sq__exists_row(sqlite3_stmt *stmt, const void *arg, void *out);
int sq_tenant_get(store_t *st, store_kind_t kind, const char *id, char **out);
int sq_plan_get(store_t *st, const char *id, Smaug__V1__Plan **out);
int sq_plan_list(store_t *st, const char *tenant, uint64_t after,
                 uint32_t limit, Smaug__V1__Plan ***out, size_t *n,
                 uint64_t *next);
int sq_checkpoint_get(store_t *st, const char *id, Smaug__V1__Checkpoint **out);
int sq_checkpoint_list(store_t *st, const store_cp_filter_t *f, uint64_t before,
                       uint32_t limit, Smaug__V1__Checkpoint ***out, size_t *n,
                       uint64_t *next);
int sq_restore_get(store_t *st, const char *id, Smaug__V1__Restore **out);
int sq_restore_list(store_t *st, const char *checkpoint_id, const char *tenant,
                    uint64_t before, uint32_t limit, Smaug__V1__Restore ***out,
                    size_t *n, uint64_t *next);
int sq_op_get(store_t *st, const char *id, store_op_t **out);
int sq_op_list_running(store_t *st, store_op_t ***out, size_t *n);
int sq_checkpoint_head(store_t *st, const char *id, int *status,
                       char **delete_op);
int sq_result_list(store_t *st, const char *op_id,
                   Smaug__V1__ResourceResult ***out, size_t *n);
int sq_result_page(store_t *st, const char *op_id, const char *after_type,
                   const char *after_id, uint32_t limit,
                   Smaug__V1__ResourceResult ***out, size_t *n);
int sq_result_count(store_t *st, const char *op_id, uint64_t *out);
int sq_task_each(store_t *st, const char *op_id, store_task_cb cb, void *data);
int sq_event_list(store_t *st, const char *op_id, uint64_t after,
                  uint32_t limit, Smaug__V1__OperationEvent ***out, size_t *n);
int sq__read_int(sq_t *sq, const char *sql, const char *id, int64_t a,
                 int64_t b, int64_t *out);
int sq_event_last_seq(store_t *st, const char *op_id, uint64_t *out);
int sq_plugins_list(store_t *st, char ***out, size_t *n);
int sq_audit_list(store_t *st, const store_audit_filter_t *f, uint64_t before,
                  uint32_t limit, Smaug__V1__AuditEvent ***out, size_t *n,
                  uint64_t *next);
int sq_cp_identity_list(store_t *st, const char *checkpoint_id, char ***types,
                        char ***identities, size_t *n);
/* What store_audit_prune deletes: the events older than `before_ms` or
 * with a sequence up to `*upto` (the newest `keep` are above it; 0 when
 * `keep` is 0 or not reached), at most `limit`, counted in `*count`. */
int sq__audit_old(sq_t *sq, int64_t before_ms, uint64_t keep, int64_t limit,
                  int64_t *upto, int64_t *count);

/* store_sqlite_queue.c: writes queued on the loop, run in rounds. */
/* Runs the writes of `items` in one transaction on `c`: 0 or the first
 * error, rolled back. Any thread, one at a time. */
int sq__run_items(conn_t *c, const item_t *items);
/* Calls the markers' callbacks of `items` with `status` and frees them. */
void sq__deliver(sq_t *sq, item_t *items, int status);
/* Starts a round with everything up to the last commit marker, unless one
 * runs already or no commit is asked for. */
void sq__kick(sq_t *sq);
/* Waits for the running round, if any, and delivers its result now. */
void sq__settle(sq_t *sq);
int sq_commit(store_t *st, store_commit_cb cb, void *data);
int sq_flush(store_t *st);
int sq_in_batch(const store_t *st);
int sq_plan_put(store_t *st, const Smaug__V1__Plan *plan);
int sq_plan_delete(store_t *st, const char *id);
int sq_checkpoint_put(store_t *st, const Smaug__V1__Checkpoint *cp);
int sq_checkpoint_set_status(store_t *st, const char *id, int status,
                             int64_t finished_at_ms, const char *reason);
int sq_restore_put(store_t *st, const Smaug__V1__Restore *r);
int sq_restore_set_status(store_t *st, const char *id, int status,
                          int64_t finished_at_ms, const char *reason);
int sq_op_put(store_t *st, const store_op_t *op);
int sq_op_set_running(store_t *st, const char *id, int running);
int sq_result_put(store_t *st, const char *op_id,
                  const Smaug__V1__ResourceResult *res);
int sq_task_put(store_t *st, const char *op_id, const store_task_t *t);
int sq_event_append(store_t *st, const Smaug__V1__OperationEvent *ev);
int sq_event_prune(store_t *st, int64_t before_ms, uint32_t limit,
                   uint32_t *deleted);
int sq_plugins_set(store_t *st, const char *const *addrs, size_t n,
                   int64_t now_ms);
int sq_audit_append(store_t *st, const Smaug__V1__AuditEvent *ev);
int sq_audit_prune(store_t *st, int64_t before_ms, uint64_t keep,
                   uint32_t limit, uint32_t *deleted);
int sq_cp_identity_put(store_t *st, const char *checkpoint_id, const char *type,
                       const char *identity);

#endif /* SMAUG_STORE_SQLITE_INT_H */
