/*
 * ops.h - the operations core of smaugd: protect, restore and delete runs,
 * their queue and lifecycle, the event sequence, the watchers, recovery
 * after a restart, and the final status of each operation.
 *
 * This is the contract between the core and whoever starts or follows an
 * operation: the gRPC handlers (server/api/), a scheduler, a test. It
 * speaks plain C and protobuf-c messages; no gRPC type and no RPC call
 * crosses it, and no file of the core includes a gRPC header. An
 * operation is a graph build (with discovery for a protect), a DAG and an
 * executor run whose activities go to the plugins, all through the
 * plain-C table of ops_plugins.h given to ops_new().
 * Every executor event is appended to the store inside a batch, together
 * with the per-resource result and task output it changes; a zero-delay
 * timer commits the batch and only then streams the events to watchers,
 * so nothing a crash could take back is ever acknowledged or streamed. An
 * operation's final status is committed in the same transaction as its
 * OPERATION_FINISHED event, and written again until a commit takes it.
 *
 * Thread: everything, every callback included, runs on the thread of the
 * loop given to ops_new().
 *
 * Errors: functions return 0 or a negative libuv code (uv_strerror()).
 * The codes a caller sees in a callback are the OPS_ERRORS table below;
 * each comes with a message that names the object and says why, meant to
 * be shown as is. An async function that returns an error never calls its
 * callback; one that returns 0 calls it exactly once. While the store
 * commits synchronously the callback runs before the function returns;
 * a caller must not rely on that order.
 *
 * Ownership: strings and messages passed in are borrowed for the call
 * (the core copies what it keeps); strings and messages passed to a
 * callback are borrowed for the callback.
 *
 * Tenants (store.h): an operation, and the checkpoint or restore it
 * creates, belong to the tenant of the plan or checkpoint it works on,
 * which the core copies; no operation crosses tenants. The core does not
 * know who asks: a caller that serves several tenants checks that its
 * caller may see the plan, checkpoint or operation before it calls
 * (server/api/api_scope.h).
 */
#ifndef SMAUG_OPS_H
#define SMAUG_OPS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ops_plugins.h"
#include "smaug/v1/orchestrator.pb-c.h"

typedef struct ops_s ops_t;
typedef struct ops_watcher_s ops_watcher_t;

/* Borrowed collaborators, declared where they live. */
typedef struct store_s store_t; /* store.h */
typedef struct lim_s lim_t;     /* limiter.h */

/* X(name, libuv code, gRPC status as a plain int, status name): what a
 * failure reported by a callback means. Any other code is INTERNAL. */
#define OPS_ERRORS(X)                                                          \
  X(OPS_EINVAL, UV_EINVAL, 3, "INVALID_ARGUMENT")                              \
  X(OPS_ENOTFOUND, UV_ENOENT, 5, "NOT_FOUND")                                  \
  X(OPS_ENOMEM, UV_ENOMEM, 8, "RESOURCE_EXHAUSTED")                            \
  X(OPS_EPRECOND, UV_EBUSY, 9, "FAILED_PRECONDITION")                          \
  X(OPS_EUNAVAIL, UV_EAGAIN, 14, "UNAVAILABLE")                                \
  X(OPS_ECANCELED, UV_ECANCELED, 1, "CANCELLED")                               \
  X(OPS_EINTERNAL, UV_EIO, 13, "INTERNAL")

enum {
#define OPS_ERR_GEN(name, code, status, sname) name = code,
  OPS_ERRORS(OPS_ERR_GEN)
#undef OPS_ERR_GEN
};

/* The gRPC status code (as an int: 0 for 0, 13 INTERNAL for codes outside
 * OPS_ERRORS) that an error of this module means. Any thread. */
int ops_err_status(int err);

typedef struct ops_config_s {
  uv_loop_t *loop; /* the loop thread's; outlives the core */
  store_t *store;  /* outlives the core */
  /* The plugins (ops_plugins.h): the table is copied, `plugins_data` is
   * handed back to it and outlives the core. */
  const ops_plugins_t *plugins;
  void *plugins_data;
  lim_t *limiter;       /* the plugins' limits, shared with discovery; outlives
                           the operations */
  const char *bank_uri; /* copied */
  int max_operations;   /* running at once; more wait in FIFO order.
                           0: 16 */
  int64_t call_timeout_ms; /* per plugin call; 0: 1 hour */
  uint32_t heartbeat_ms;   /* silence (no progress) limit; 0: none */
  /* Events of operations that finished and were created longer ago than
   * this are pruned in the background; 0 keeps them forever. */
  int64_t event_retention_ms;
  int64_t retry_budget_ms; /* transient failures retried this long; 0: 30 s;
                              negative: not retried */
} ops_config_t;

/* Creates the core. `*out` is released with ops_close() and, once the
 * loop has run its close callbacks, ops_free(). Returns 0, UV_EINVAL (no
 * loop, store or plugins table) or UV_ENOMEM. */
int ops_new(const ops_config_t *cfg, ops_t **out);

/* Ends every watcher with OPS_EUNAVAIL "smaugd is stopping", cancels
 * plugin calls in flight without recording their outcome (operations stay
 * running in the store for ops_recover() of the next start), commits the
 * open batch. Idempotent; NULL is a no-op. */
void ops_close(ops_t *ops);

/* Frees the core after ops_close(). NULL is a no-op. */
void ops_free(ops_t *ops);

/* Commits the open store batch (the core's and anything a caller wrote
 * with store_batch()) and streams what it held. Returns 0 or the store
 * error (the batch is then lost and logged; operations whose writes it
 * held end in error). */
int ops_flush(ops_t *ops);

/* Resumes, or ends in error with the reason, every operation the store
 * still lists as running. Call once, after the plugins were registered;
 * watchers of those operations that came earlier wait for it. */
void ops_recover(ops_t *ops);

/* ------------------------------------------------------------ operations */

/* What an ops_* call reports, once. On success `err` is 0, `msg` NULL and
 * the ids name what was created (NULL where it does not apply; ids of up
 * to 47 bytes). On failure `err` is an OPS_ERRORS code and `msg` says
 * why. `cancelled` is ops_cancel()'s count of tasks it cancelled. */
typedef struct ops_result_s {
  int err;
  const char *msg;
  const char *operation_id;
  const char *checkpoint_id;
  const char *restore_id;
  uint32_t cancelled;
} ops_result_t;

typedef void (*ops_done_cb)(const ops_result_t *r, void *data);

/* A check of a restore's parameters against the checkpoint's resources,
 * run after the checkpoint and its plugins were found: 0, or an
 * OPS_ERRORS code with the message written into msg (len bytes). */
typedef int (*ops_check_fn)(void *data,
                            const Smaug__V1__ParameterSet *parameters,
                            Smaug__V1__Resource *const *resources, size_t n,
                            char *msg, size_t len);

typedef struct ops_params_s {
  int fail_fast; /* the first failure cancels the rest */
  /* Restore only: its parameters (may be NULL) and their check (NULL: none). */
  const Smaug__V1__ParameterSet *parameters;
  ops_check_fn check;
  void *check_data;
} ops_params_t;

/* Protects plan `plan_id`: creates a PROTECTING checkpoint and queues the
 * operation. Reports OPS_ENOTFOUND (no such plan), OPS_EPRECOND (a type
 * has no plugin), OPS_EUNAVAIL (its plugin is unavailable) or
 * OPS_EINTERNAL (store); else the operation and checkpoint ids. Returns
 * 0, or UV_EINVAL (NULL argument) without calling `cb`. */
int ops_protect(ops_t *ops, const char *plan_id, const ops_params_t *params,
                ops_done_cb cb, void *data);

/* Restores checkpoint `checkpoint_id`, which must be available, have its
 * plugins, pass params->check and have its catalogued objects in its
 * bank. Reports the operation and restore ids. Returns as ops_protect. */
int ops_restore(ops_t *ops, const char *checkpoint_id,
                const ops_params_t *params, ops_done_cb cb, void *data);

/* Deletes checkpoint `checkpoint_id` (available, error or error-deleting,
 * and not in use). Reports the operation id. Returns as ops_protect. */
int ops_delete(ops_t *ops, const char *checkpoint_id, ops_done_cb cb,
               void *data);

/* Cancels operation `op_id` with `reason` (NULL or "": "requested by a
 * client"; the caller bounds its length). Reports OPS_ENOTFOUND,
 * OPS_EPRECOND (already finished) or the count of tasks cancelled.
 * Returns as ops_protect. */
int ops_cancel(ops_t *ops, const char *op_id, const char *reason,
               ops_done_cb cb, void *data);

/* Non-zero while a running operation reads or writes `checkpoint_id`. */
int ops_checkpoint_busy(const ops_t *ops, const char *checkpoint_id);

/* Results to show for a checkpoint: the protect results, with status and
 * reason taken from the delete run when one ran. Release with
 * store_msgs_free(). Returns 0 or a store error. */
int ops_checkpoint_results(ops_t *ops, const Smaug__V1__Checkpoint *cp,
                           Smaug__V1__ResourceResult ***out, size_t *n);

/* -------------------------------------------------------------- watchers */

/* Where a watcher's events go: a gRPC stream, a test, a scheduler. Memory
 * stays bounded whatever the sink does: the core queues at most
 * OPS_WATCH_QUEUE messages on it (counted by `queued`) and refills a sink
 * that falls behind from the store, a page at a time, as it drains (the
 * sink calls ops_watch_sent()). Only committed events are sent. */
#define OPS_WATCH_QUEUE     64 /* messages queued on one sink at most */
#define OPS_WATCH_BATCH_MAX 64 /* max_batch's cap */

typedef struct ops_sink_s {
  /* Queues one message: `n` events in order (borrowed for the call). With
   * max_batch 0, `n` is always 1 and the message is a single event. */
  void (*send)(void *data, Smaug__V1__OperationEvent *const *evs, size_t n);
  /* Messages queued and not yet taken by the reader. */
  size_t (*queued)(void *data);
  /* The last call: 0 when the final event was queued (msg NULL), else an
   * OPS_ERRORS code and why. The watcher is freed after it returns. */
  void (*end)(void *data, int err, const char *msg);
} ops_sink_t;

/* Streams the events of `op_id` after sequence `after` to `sink` (borrowed
 * with `sink_data` until its end): committed ones at once, new ones as
 * they are committed, up to the OPERATION_FINISHED event. With `max_batch`
 * (capped at OPS_WATCH_BATCH_MAX) each message carries the events
 * committed since the previous one was taken, up to max_batch, and at most
 * one message is queued. end() reports OPS_ENOTFOUND (no such operation),
 * OPS_EUNAVAIL (stopping), OPS_EINTERNAL (store, or an operation running
 * in the store that recovery did not take), OPS_ENOMEM. Returns 0 and
 * calls sink->end exactly once, possibly before returning; or UV_EINVAL
 * (NULL argument) and never calls it. `*out` (may be NULL; not inside
 * `sink_data`, which end() may free) receives the watcher, or NULL when
 * it already ended; the core owns it and frees it after sink->end(). */
int ops_watch(ops_t *ops, const char *op_id, uint64_t after, uint32_t max_batch,
              const ops_sink_t *sink, void *sink_data, ops_watcher_t **out);

/* The sink took a message: refills a watcher that fell behind. Only
 * before its end. */
void ops_watch_sent(ops_watcher_t *w);

/* Ends `w` now with OPS_ECANCELED "cancelled" (its reader went away).
 * Only before its end. */
void ops_watch_cancel(ops_watcher_t *w);

/* --------------------------------------------------------------- helpers */

/* Writes "<prefix>-<32 hex digits>" (random) into buf (>= 40 bytes). */
void ops_new_id(const char *prefix, char *buf, size_t len);

/* Unix time in milliseconds. */
int64_t ops_now_ms(void);

/* "available", "error", ... for a checkpoint status; "in_progress", ...
 * for a restore status. Static strings. */
const char *ops_checkpoint_status_name(int status);
const char *ops_restore_status_name(int status);

#endif /* SMAUG_OPS_H */
