/*
 * store.h - smaugd's persistence: one SQLite database in WAL mode.
 *
 * The store keeps plans, checkpoints (with their resource graph), restores,
 * operations, per-resource results, per-task outputs (what the executor
 * needs to resume) and operation events. Objects are kept as packed
 * protobuf messages next to the few columns that queries filter on, so the
 * schema follows the protocol without a column per field. The schema is
 * versioned in table `schema_version` and migrated forward on open.
 *
 * Threading: synchronous; every call runs on the loop thread that owns the
 * store. Writes outside an explicit transaction commit at once. The API
 * layer batches events with store_batch() and store_flush(): everything
 * written in between commits in one transaction (synchronous=FULL), and
 * nothing is acknowledged or streamed before that commit.
 *
 * Errors: 0 or a negative libuv-style code. UV_ENOENT when an object does
 * not exist, UV_EEXIST on a uniqueness conflict, UV_ENOSPC when the disk is
 * full, UV_EFTYPE when the file is not a SQLite database or is corrupt,
 * UV_EIO for anything else from SQLite; store_errmsg() keeps SQLite's
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

#include "smaug/v1/orchestrator.pb-c.h"

typedef struct store_s store_t;

/* The schema version this build writes. */
#define STORE_SCHEMA_VERSION 2

/* Opens (creating if needed) `<dir>/smaug.db`, creating `dir` too. Sets WAL
 * mode and synchronous=FULL and runs pending migrations. A database written
 * by a newer schema is refused with UV_EPROTO. `*out` is released with
 * store_close(). */
int store_open(const char *dir, store_t **out);

/* Commits a pending batch, then closes. NULL is a no-op. */
void store_close(store_t *st);

/* SQLite's message for the last failure, for logs. Never NULL. */
const char *store_errmsg(const store_t *st);

/* Current schema version of the open database. */
int store_schema_version(store_t *st);

/* Opens a batch if none is open: later writes join one transaction until
 * store_flush(). Idempotent. */
int store_batch(store_t *st);

/* Commits the open batch, if any. On failure the batch is rolled back and
 * its writes are lost; the caller must not acknowledge them. */
int store_flush(store_t *st);

/* 1 while a batch is open. */
int store_in_batch(const store_t *st);

/* Frees `n` messages and the array. NULL is a no-op. */
void store_msgs_free(void *msgs, size_t n);

/* ------------------------------------------------------------- plans */

/* Inserts or replaces a plan by id. Insertion order is kept on update. */
int store_plan_put(store_t *st, const Smaug__V1__Plan *plan);
/* The plan `id`; UV_ENOENT if there is none. */
int store_plan_get(store_t *st, const char *id, Smaug__V1__Plan **out);
/* Removes plan `id`; UV_ENOENT if there is none. Checkpoints stay. */
int store_plan_delete(store_t *st, const char *id);

/* Plans oldest first, after paging cursor `after` (0: from the start), at
 * most `limit`. `*next` is the cursor of the next page, 0 on the last. */
int store_plan_list(store_t *st, uint64_t after, uint32_t limit,
                    Smaug__V1__Plan ***out, size_t *n, uint64_t *next);

/* ------------------------------------------------------- checkpoints */

/* Inserts or replaces a checkpoint by id. `results` is not stored here:
 * see store_result_put(). */
int store_checkpoint_put(store_t *st, const Smaug__V1__Checkpoint *cp);
/* The checkpoint `id` without results; UV_ENOENT if there is none. */
int store_checkpoint_get(store_t *st, const char *id,
                         Smaug__V1__Checkpoint **out);

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
} store_cp_filter_t;

/* Checkpoints newest first, before paging cursor `before` (0: from the
 * newest), at most `limit`. `*next` is 0 on the last page. */
int store_checkpoint_list(store_t *st, const store_cp_filter_t *f,
                          uint64_t before, uint32_t limit,
                          Smaug__V1__Checkpoint ***out, size_t *n,
                          uint64_t *next);

/* ---------------------------------------------------------- restores */

/* Inserts or replaces a restore by id; `results` is not stored here. */
int store_restore_put(store_t *st, const Smaug__V1__Restore *r);
/* The restore `id` without results; UV_ENOENT if there is none. */
int store_restore_get(store_t *st, const char *id, Smaug__V1__Restore **out);
/* Restores newest first; `checkpoint_id` NULL or "" for all. */
int store_restore_list(store_t *st, const char *checkpoint_id, uint64_t before,
                       uint32_t limit, Smaug__V1__Restore ***out, size_t *n,
                       uint64_t *next);

/* -------------------------------------------------------- operations */

/* One operation: what recovery needs to run it again. */
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
} store_op_t;

/* Inserts or replaces an operation by id. */
int store_op_put(store_t *st, const store_op_t *op);
/* `*out` is released with store_op_free(). */
int store_op_get(store_t *st, const char *id, store_op_t **out);
/* Operations with running=1, oldest first. Release with store_ops_free. */
int store_op_list_running(store_t *st, store_op_t ***out, size_t *n);
/* Sets the running flag of operation `id`; UV_ENOENT if there is none. */
int store_op_set_running(store_t *st, const char *id, int running);
/* Free what store_op_get() and store_op_list_running() returned. NULL is a
 * no-op. */
void store_op_free(store_op_t *op);
void store_ops_free(store_op_t **ops, size_t n);

/* ------------------------------------------------- per-resource results */

/* Inserts or replaces the result of one resource within an operation. */
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

/* The stored outcome of one task ("P:type#id"), kept so that a resumed
 * operation does not run a completed task again. `payload` is opaque to
 * the store (the P state, or a packed SyncResult). */
int store_task_put(store_t *st, const char *op_id, const char *task_id,
                   int status, const uint8_t *payload, size_t len);

typedef void (*store_task_cb)(const char *task_id, int status,
                              const uint8_t *payload, size_t len, void *data);
/* Calls `cb` for every stored task of `op_id`. Pointers live during the
 * callback only. */
int store_task_each(store_t *st, const char *op_id, store_task_cb cb,
                    void *data);

/* ------------------------------------------------------------ events */

/* Appends one event; `ev->sequence` and `ev->operation_id` are the key.
 * UV_EEXIST if that sequence is already stored. */
int store_event_append(store_t *st, const Smaug__V1__OperationEvent *ev);

/* Events of `op_id` with sequence > after, ascending, at most `limit`. */
int store_event_list(store_t *st, const char *op_id, uint64_t after,
                     uint32_t limit, Smaug__V1__OperationEvent ***out,
                     size_t *n);

/* Deletes up to `limit` (0: all) events of operations that are no longer
 * running and were created before `before_ms`; never an event of a running
 * operation. `*deleted` receives the count: fewer than `limit` means none
 * is left. Joins the open batch, if any. */
int store_event_prune(store_t *st, int64_t before_ms, uint32_t limit,
                      uint32_t *deleted);

/* Highest stored sequence of `op_id`, 0 if none. */
int store_event_last_seq(store_t *st, const char *op_id, uint64_t *out);

/* ----------------------------------------------------------- plugins */

/* Replaces the stored plugin addresses with `addrs` (schema 2). */
int store_plugins_set(store_t *st, const char *const *addrs, size_t n,
                      int64_t now_ms);

/* The stored plugin addresses, oldest first. Release with
 * store_strs_free(). */
int store_plugins_list(store_t *st, char ***out, size_t *n);
void store_strs_free(char **strs, size_t n);

#endif /* SMAUG_STORE_H */
