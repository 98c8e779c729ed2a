/*
 * store.h - smaugd's persistence, behind a table of operations.
 *
 * The store keeps plans, checkpoints (with their resource graph), restores,
 * operations, per-resource results, per-task outputs (what the executor
 * needs to resume) and operation events. Objects are kept as packed
 * protobuf messages next to the few columns that queries filter on, so the
 * schema follows the protocol without a column per field. The schema is
 * versioned and migrated forward on open.
 *
 * Callers use the store_*() functions below; each checks its arguments and
 * dispatches through the store's backend (store_backend_t, at the end of
 * this header). There is one backend today, SQLite (store_sqlite.c); a
 * backend is chosen at open and callers never see which one runs.
 *
 * Writes are queued, reads see committed state:
 * - A write (store_*_put, _append, _delete, _set, _prune) copies what it
 *   needs before it returns (the caller's pointers are borrowed for the
 *   call only) and queues the copy. It returns UV_EINVAL or UV_ENOMEM at
 *   once; every other failure (a full disk, a duplicate key) is reported
 *   by the commit that covers the write.
 * - store_commit() asks for everything queued before it to be made durable
 *   and calls back on the loop once it is, or once it failed. Commits are
 *   grouped: all writes queued when the backend starts a transaction go in
 *   that one transaction, and writes queued between two commits are never
 *   split across transactions. Callbacks run in the order the commits were
 *   asked for. Nothing may be acknowledged or streamed to a client before
 *   the commit covering it has called back with 0.
 * - A failed commit loses the writes it covered, and every write queued
 *   before its failure is reported: those are discarded too, and each
 *   commit asked for before then fails with the same status. Writes queued
 *   from inside a failure callback belong to the next commit.
 * - Reads return committed state only: a write is invisible to reads
 *   until the commit covering it has called back. Callers that must read
 *   what they wrote keep it in memory, or commit first. Reads are
 *   synchronous today (SQLite reads from its own connection on the loop,
 *   never waiting for a commit); they are the seam where an asynchronous
 *   backend would add callbacks.
 * - store_flush() is the synchronous commit, for callers that answer a
 *   request at once after writing (the API's unary handlers): it blocks the
 *   loop until everything queued is durable.
 *
 * Threading: every store_* function is called on the thread that runs the
 * loop given to store_open(), and every callback runs on that thread. A
 * commit callback may queue writes and ask for commits, but must not
 * close the store. The
 * backend does its blocking work (SQLite: every write and commit) on other
 * threads, which never touch caller memory.
 *
 * Errors: 0 or a negative libuv-style code. UV_ENOENT when an object does
 * not exist, UV_EEXIST on a uniqueness conflict, UV_ENOSPC when the disk is
 * full, UV_EFTYPE when the file is not a database or is corrupt, UV_EIO
 * for anything else from the backend; store_errmsg() keeps the backend's
 * own message for the log. Out-parameters are written only on success.
 *
 * Messages returned through out-parameters are unpacked protobuf-c messages
 * owned by the caller, released with protobuf_c_message_free_unpacked(m,
 * NULL) (or store_msgs_free() for arrays).
 */
#ifndef SMAUG_STORE_H
#define SMAUG_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "smaug/v1/orchestrator.pb-c.h"

typedef struct store_s store_t;

/* The schema version this build writes. 3: task outputs in real columns;
 * 4: tenants; 5: the audit log and the plugin identities of checkpoints. */
#define STORE_SCHEMA_VERSION 5

/* Tenants. Plans, checkpoints, restores and operations each belong to one
 * tenant, kept in a column that the lists filter on (indexes lead with
 * it) and, for the messages, in their `tenant` field too. A put takes the
 * tenant from the message (store_op_t.tenant for an operation); NULL or
 * "" is STORE_TENANT_DEFAULT. A read always fills the message's tenant
 * from the column, so rows written before tenants existed (migrated to
 * STORE_TENANT_DEFAULT) read like the others. A row's tenant never
 * changes: a put that replaces a row keeps the tenant it had. Results,
 * task outputs and events belong to their operation and are scoped
 * through it; the store does not check who asks, its callers do. In a
 * list filter, a tenant of NULL or "" means every tenant. */
#define STORE_TENANT_DEFAULT "default"

/* `tenant`, or STORE_TENANT_DEFAULT when it is NULL or "". */
const char *store_tenant(const char *tenant);

/* The objects that have a tenant. */
typedef enum {
  STORE_PLAN,
  STORE_CHECKPOINT,
  STORE_RESTORE,
  STORE_OPERATION
} store_kind_t;

/* The tenant of the object `id` of `kind`, malloc'd into `*out` (free()),
 * read from its column alone: no body is unpacked, so checking who may
 * see a 100,000-resource checkpoint costs one index lookup. UV_ENOENT if
 * there is none. */
int store_tenant_get(store_t *st, store_kind_t kind, const char *id,
                     char **out);

/* Opens (creating if needed) `<dir>/smaug.db` with the SQLite backend,
 * creating `dir` too, and runs pending migrations. Commit callbacks run on
 * `loop`. A database written by a newer schema is refused with UV_EPROTO.
 * `*out` is released with store_close(). */
int store_open(uv_loop_t *loop, const char *dir, store_t **out);

/* Commits everything queued (blocking, like store_flush()), calls the
 * callback of every commit not yet called back, with its status, from
 * inside this call, and closes. The memory goes at once, or, when a commit
 * was running on another thread, once the loop has run past its end.
 * NULL is a no-op. */
void store_close(store_t *st);

/* The backend's message for the last failure, for logs. Never NULL. */
const char *store_errmsg(const store_t *st);

/* Current schema version of the open database, or a negative error. */
int store_schema_version(store_t *st);

/* ----------------------------------------------------------- commits */

/* `status` is 0 when every write queued before the commit is durable,
 * else the error that lost them. */
typedef void (*store_commit_cb)(store_t *st, int status, void *data);

/* Asks for everything queued so far to be committed; `cb` then runs once
 * on the loop, never from inside this call. Returns 0, or an error (then
 * `cb` never runs). */
int store_commit(store_t *st, store_commit_cb cb, void *data);

/* Commits everything queued and returns when it is durable, blocking the
 * loop: for callers that answer at once. The callbacks of earlier commits
 * run first, from inside this call, in order. 0 or the commit's error (the
 * writes are then lost). */
int store_flush(store_t *st);

/* 1 while some queued write waits for a commit to call back, else 0. */
int store_in_batch(const store_t *st);

/* Kept for callers written before writes were queued: every write now
 * joins the next commit. Returns 0. */
int store_batch(store_t *st);

/* Frees `n` messages and the array. NULL is a no-op. */
void store_msgs_free(void *msgs, size_t n);

/* ------------------------------------------------------------- plans */

/* Queues an insert or replace of a plan by id. Insertion order is kept on
 * update. */
int store_plan_put(store_t *st, const Smaug__V1__Plan *plan);
/* The plan `id`; UV_ENOENT if there is none. */
int store_plan_get(store_t *st, const char *id, Smaug__V1__Plan **out);
/* Queues the removal of plan `id`; UV_ENOENT at once when no plan `id` is
 * committed. Checkpoints stay. */
int store_plan_delete(store_t *st, const char *id);

/* Plans of `tenant` (NULL or "": every tenant) oldest first, after paging
 * cursor `after` (0: from the start), at most `limit`. `*next` is the
 * cursor of the next page, 0 on the last. */
int store_plan_list(store_t *st, const char *tenant, uint64_t after,
                    uint32_t limit, Smaug__V1__Plan ***out, size_t *n,
                    uint64_t *next);

/* ------------------------------------------------------- checkpoints */

/* Queues an insert or replace of a checkpoint by id. `results` is not
 * stored here: see store_result_put(). */
int store_checkpoint_put(store_t *st, const Smaug__V1__Checkpoint *cp);
/* The checkpoint `id` without results; UV_ENOENT if there is none. */
int store_checkpoint_get(store_t *st, const char *id,
                         Smaug__V1__Checkpoint **out);

/* Queues the final status of checkpoint `id`: its status and reason
 * replaced, and finished_at_ms too unless `finished_at_ms` is 0. The
 * change applies to the latest queued version of the checkpoint (no read
 * on the caller's side), and does nothing if there is none. */
int store_checkpoint_set_status(store_t *st, const char *id, int status,
                                int64_t finished_at_ms, const char *reason);

/* What reading a checkpoint's results needs, without unpacking its graph:
 * its status and, when a delete operation ran or runs on it, the newest
 * one's id in `*delete_op` (malloc'd; NULL when none ran). UV_ENOENT if
 * there is no checkpoint `id`. */
int store_checkpoint_head(store_t *st, const char *id, int *status,
                          char **delete_op);

typedef struct store_cp_filter_s {
  const char *plan_id; /* NULL or "": any */
  int status;          /* 0: any */
  int64_t created_after_ms;
  int64_t created_before_ms; /* 0: no bound */
  const char *tenant;        /* NULL or "": any */
} store_cp_filter_t;

/* Checkpoints newest first, before paging cursor `before` (0: from the
 * newest), at most `limit`. `*next` is 0 on the last page. */
int store_checkpoint_list(store_t *st, const store_cp_filter_t *f,
                          uint64_t before, uint32_t limit,
                          Smaug__V1__Checkpoint ***out, size_t *n,
                          uint64_t *next);

/* ---------------------------------------------------------- restores */

/* Queues an insert or replace of a restore by id; `results` is not stored
 * here. */
int store_restore_put(store_t *st, const Smaug__V1__Restore *r);
/* The restore `id` without results; UV_ENOENT if there is none. */
int store_restore_get(store_t *st, const char *id, Smaug__V1__Restore **out);
/* Like store_checkpoint_set_status(), for restore `id`. */
int store_restore_set_status(store_t *st, const char *id, int status,
                             int64_t finished_at_ms, const char *reason);
/* Restores newest first; `checkpoint_id` NULL or "" for all, `tenant`
 * NULL or "" for every tenant. */
int store_restore_list(store_t *st, const char *checkpoint_id,
                       const char *tenant, uint64_t before, uint32_t limit,
                       Smaug__V1__Restore ***out, size_t *n, uint64_t *next);

/* -------------------------------------------------------- operations */

/* One operation: what recovery needs to run it again. Passed in, every
 * pointer is borrowed for the call; returned, the record and all it points
 * to are the caller's, released with store_op_free(). */
typedef struct store_op_s {
  char *id;
  int kind;            /* SMAUG__V1__OPERATION_KIND__* */
  char *target_id;     /* the checkpoint (protect, delete) or restore */
  char *checkpoint_id; /* the checkpoint written, read or removed */
  int running;         /* 1 until the final status is committed */
  int fail_fast;
  int64_t created_at_ms;
  /* Parameters the operation runs with, packed Smaug__V1__ParameterSet. */
  uint8_t *params;
  size_t params_len;
  char *tenant; /* the tenant; NULL or "" in a put: STORE_TENANT_DEFAULT */
} store_op_t;

/* Queues an insert or replace of an operation by id. */
int store_op_put(store_t *st, const store_op_t *op);
/* `*out` is released with store_op_free(). */
int store_op_get(store_t *st, const char *id, store_op_t **out);
/* Operations with running=1, oldest first. Release with store_ops_free. */
int store_op_list_running(store_t *st, store_op_t ***out, size_t *n);
/* Queues the running flag of operation `id`; UV_ENOENT at once when no
 * operation `id` is committed. */
int store_op_set_running(store_t *st, const char *id, int running);
/* Free what store_op_get() and store_op_list_running() returned. NULL is a
 * no-op. */
void store_op_free(store_op_t *op);
void store_ops_free(store_op_t **ops, size_t n);

/* ------------------------------------------------- per-resource results */

/* Queues an insert or replace of the result of one resource within an
 * operation. */
int store_result_put(store_t *st, const char *op_id,
                     const Smaug__V1__ResourceResult *res);
/* All results of an operation, ordered by type then id. */
int store_result_list(store_t *st, const char *op_id,
                      Smaug__V1__ResourceResult ***out, size_t *n);
/* One page of the results of an operation, in the order of
 * store_result_list(): at most `limit` (1 or more) results whose (type, id)
 * comes after (`after_type`, `after_id`); "" and "" start from the first.
 * Reads only the rows it returns. */
int store_result_page(store_t *st, const char *op_id, const char *after_type,
                      const char *after_id, uint32_t limit,
                      Smaug__V1__ResourceResult ***out, size_t *n);
/* How many results operation `op_id` has (0 for an unknown one). */
int store_result_count(store_t *st, const char *op_id, uint64_t *out);

/* ------------------------------------------------------ task outputs */

/* The stored outcome of one task, kept so that a resumed operation does
 * not run a completed task again. A task is named by its activity and its
 * resource; `payload` is opaque to the store (the P state, a packed
 * SyncResult, or a failure's reason). Every pointer is borrowed: for the
 * call in store_task_put(), for the callback in store_task_each(). */
typedef struct store_task_s {
  int activity; /* smaug.v1.Activity: 1 parallel (P), 2 sync (S) */
  const char *type;
  const char *id;
  int status; /* the executor's status */
  int64_t started_at_ms;
  int64_t finished_at_ms;
  const uint8_t *payload;
  size_t len;
} store_task_t;

/* Queues an insert or replace of task `t` of operation `op_id`; UV_EINVAL
 * for an activity other than 1 or 2, or a NULL type or id. */
int store_task_put(store_t *st, const char *op_id, const store_task_t *t);

typedef void (*store_task_cb)(const store_task_t *t, void *data);
/* Calls `cb` for every stored task of `op_id`. */
int store_task_each(store_t *st, const char *op_id, store_task_cb cb,
                    void *data);

/* ------------------------------------------------------------ events */

/* Queues one event; `ev->sequence` and `ev->operation_id` are the key. A
 * sequence already stored fails the commit with UV_EEXIST. */
int store_event_append(store_t *st, const Smaug__V1__OperationEvent *ev);

/* Events of `op_id` with sequence > after, ascending, at most `limit`. */
int store_event_list(store_t *st, const char *op_id, uint64_t after,
                     uint32_t limit, Smaug__V1__OperationEvent ***out,
                     size_t *n);

/* Queues the deletion of up to `limit` (0: all) events of operations that
 * are no longer running and were created before `before_ms`; never an
 * event of a running operation. `*deleted` receives how many committed
 * events it will delete: fewer than `limit` means none is left. */
int store_event_prune(store_t *st, int64_t before_ms, uint32_t limit,
                      uint32_t *deleted);

/* Highest stored sequence of `op_id`, 0 if none. */
int store_event_last_seq(store_t *st, const char *op_id, uint64_t *out);

/* ----------------------------------------------------------- plugins */

/* Queues the replacement of the stored plugin addresses with `addrs`. */
int store_plugins_set(store_t *st, const char *const *addrs, size_t n,
                      int64_t now_ms);

/* The stored plugin addresses, oldest first. Release with
 * store_strs_free(). */
int store_plugins_list(store_t *st, char ***out, size_t *n);
void store_strs_free(char **strs, size_t n);

/* ------------------------------------------------------------- audit */

/* Queues one audit event (every field is kept; `ev->sequence` is ignored:
 * the store numbers events in the order they are committed, from 1). */
int store_audit_append(store_t *st, const Smaug__V1__AuditEvent *ev);

typedef struct store_audit_filter_s {
  const char *who;    /* NULL or "": any */
  const char *method; /* NULL or "": any */
  int64_t since_ms;   /* time_ms >= since_ms; 0: any */
} store_audit_filter_t;

/* Audit events newest first, with `sequence` set, before paging cursor
 * `before` (0: from the newest), at most `limit`. `*next` is 0 on the
 * last page. */
int store_audit_list(store_t *st, const store_audit_filter_t *f,
                     uint64_t before, uint32_t limit,
                     Smaug__V1__AuditEvent ***out, size_t *n, uint64_t *next);

/* Queues the deletion of up to `limit` (0: all) of the oldest audit events
 * whose time_ms is before `before_ms`, or that are not among the newest
 * `keep` sequence numbers (0: no such bound), so that at most `keep`
 * events stay. `*deleted` receives how many committed events it will
 * delete: fewer than `limit` means none is left. */
int store_audit_prune(store_t *st, int64_t before_ms, uint64_t keep,
                      uint32_t limit, uint32_t *deleted);

/* ------------------------------------------- plugin identities of checkpoints
 */

/* Queues "resources of `type` in checkpoint `checkpoint_id` were saved by
 * the plugin `identity`" (replacing an earlier identity for that pair). */
int store_cp_identity_put(store_t *st, const char *checkpoint_id,
                          const char *type, const char *identity);

/* The identities recorded for `checkpoint_id`, ordered by type: `*types`
 * and `*identities` hold `*n` strings each, owned by the caller
 * (store_strs_free() on each). A checkpoint with none gives n = 0. */
int store_cp_identity_list(store_t *st, const char *checkpoint_id,
                           char ***types, char ***identities, size_t *n);

/* ---------------------------------------------------------- backends */

/* A backend: one function per operation above, called by the store_*()
 * front after it checked the arguments (non-NULL where the contract says
 * so, ids not empty). Each has the contract of its store_*() function,
 * with these duties on the backend:
 * - open runs on the loop thread, creates the backend's store_t (which
 *   starts with `struct store_s`) and migrates the schema; close and every
 *   other entry run on that thread too;
 * - writes copy every borrowed pointer before returning;
 * - commit callbacks run on the loop, in order, never inside the call that
 *   asked for them (store_flush() and store_close() excepted, see above);
 * - reads never wait for a commit running elsewhere.
 * A PostgreSQL backend (libpq in non-blocking mode, its socket polled on
 * the loop) fits the same table: writes queue, a commit is one pipelined
 * transaction, reads would gain callbacks at the read seam. */
typedef struct store_backend_s {
  const char *name;
  int (*open)(uv_loop_t *loop, const char *where, store_t **out);
  void (*close)(store_t *st);
  const char *(*errmsg)(const store_t *st);
  int (*schema_version)(store_t *st);
  int (*commit)(store_t *st, store_commit_cb cb, void *data);
  int (*flush)(store_t *st);
  int (*in_batch)(const store_t *st);
  int (*tenant_get)(store_t *st, store_kind_t kind, const char *id, char **out);

  int (*plan_put)(store_t *st, const Smaug__V1__Plan *plan);
  int (*plan_get)(store_t *st, const char *id, Smaug__V1__Plan **out);
  int (*plan_delete)(store_t *st, const char *id);
  int (*plan_list)(store_t *st, const char *tenant, uint64_t after,
                   uint32_t limit, Smaug__V1__Plan ***out, size_t *n,
                   uint64_t *next);
  int (*checkpoint_put)(store_t *st, const Smaug__V1__Checkpoint *cp);
  int (*checkpoint_get)(store_t *st, const char *id,
                        Smaug__V1__Checkpoint **out);
  int (*checkpoint_set_status)(store_t *st, const char *id, int status,
                               int64_t finished_at_ms, const char *reason);
  int (*checkpoint_head)(store_t *st, const char *id, int *status,
                         char **delete_op);
  int (*checkpoint_list)(store_t *st, const store_cp_filter_t *f,
                         uint64_t before, uint32_t limit,
                         Smaug__V1__Checkpoint ***out, size_t *n,
                         uint64_t *next);
  int (*restore_put)(store_t *st, const Smaug__V1__Restore *r);
  int (*restore_get)(store_t *st, const char *id, Smaug__V1__Restore **out);
  int (*restore_set_status)(store_t *st, const char *id, int status,
                            int64_t finished_at_ms, const char *reason);
  int (*restore_list)(store_t *st, const char *checkpoint_id,
                      const char *tenant, uint64_t before, uint32_t limit,
                      Smaug__V1__Restore ***out, size_t *n, uint64_t *next);
  int (*op_put)(store_t *st, const store_op_t *op);
  int (*op_get)(store_t *st, const char *id, store_op_t **out);
  int (*op_list_running)(store_t *st, store_op_t ***out, size_t *n);
  int (*op_set_running)(store_t *st, const char *id, int running);
  int (*result_put)(store_t *st, const char *op_id,
                    const Smaug__V1__ResourceResult *res);
  int (*result_list)(store_t *st, const char *op_id,
                     Smaug__V1__ResourceResult ***out, size_t *n);
  int (*result_page)(store_t *st, const char *op_id, const char *after_type,
                     const char *after_id, uint32_t limit,
                     Smaug__V1__ResourceResult ***out, size_t *n);
  int (*result_count)(store_t *st, const char *op_id, uint64_t *out);
  int (*task_put)(store_t *st, const char *op_id, const store_task_t *t);
  int (*task_each)(store_t *st, const char *op_id, store_task_cb cb,
                   void *data);
  int (*event_append)(store_t *st, const Smaug__V1__OperationEvent *ev);
  int (*event_list)(store_t *st, const char *op_id, uint64_t after,
                    uint32_t limit, Smaug__V1__OperationEvent ***out,
                    size_t *n);
  int (*event_prune)(store_t *st, int64_t before_ms, uint32_t limit,
                     uint32_t *deleted);
  int (*event_last_seq)(store_t *st, const char *op_id, uint64_t *out);
  int (*plugins_set)(store_t *st, const char *const *addrs, size_t n,
                     int64_t now_ms);
  int (*plugins_list)(store_t *st, char ***out, size_t *n);
  int (*audit_append)(store_t *st, const Smaug__V1__AuditEvent *ev);
  int (*audit_list)(store_t *st, const store_audit_filter_t *f, uint64_t before,
                    uint32_t limit, Smaug__V1__AuditEvent ***out, size_t *n,
                    uint64_t *next);
  int (*audit_prune)(store_t *st, int64_t before_ms, uint64_t keep,
                     uint32_t limit, uint32_t *deleted);
  int (*cp_identity_put)(store_t *st, const char *checkpoint_id,
                         const char *type, const char *identity);
  int (*cp_identity_list)(store_t *st, const char *checkpoint_id, char ***types,
                          char ***identities, size_t *n);
} store_backend_t;

/* The head of every backend's store object. */
struct store_s {
  const store_backend_t *be;
};

/* The SQLite backend: `where` is the data directory. */
extern const store_backend_t store_sqlite;

/* For tests: caps the SQLite database at `pages` pages (SQLite's
 * max_page_count), so that the next write past it fails the way a full
 * disk does (UV_ENOSPC). Waits for a running commit. */
int store_sqlite_limit_pages(store_t *st, uint32_t pages);

#endif /* SMAUG_STORE_H */
