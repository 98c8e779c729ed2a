/*
 * api_op.h - operations of smaugd: protect, restore and delete runs, their
 * events and watchers, the limit on concurrent operations, cancellation
 * and restart recovery.
 *
 * Each operation is a graph build (with discovery for a protect), a DAG and
 * an executor run whose activities go to the plugins (runner.h). Every
 * executor event is appended to the store inside a batch, together with
 * the per-resource result and task output it changes; a zero-delay timer
 * commits the batch and only then streams the events to watchers. An
 * operation's final status is committed in the same transaction as its
 * OPERATION_FINISHED event.
 *
 * The handlers below end `call` themselves, now or later.
 * Thread: the loop thread.
 */
#ifndef SMAUG_API_OP_H
#define SMAUG_API_OP_H

#include "limiter.h"
#include "registry.h"
#include "rt.h"
#include "smaug/v1/orchestrator.pb-c.h"
#include "store.h"

typedef struct api_ops_s api_ops_t;

typedef struct api_ops_config_s {
  rt_t *rt;
  store_t *store;
  reg_t *reg;
  lim_t *limiter;          /* the plugins' limits, shared with discovery;
                              outlives the operations */
  const char *bank_uri;    /* copied */
  int max_operations;      /* running at once; more wait in FIFO order */
  int64_t call_timeout_ms; /* per plugin call; 0: 1 hour */
  uint32_t heartbeat_ms;   /* silence (no progress) limit; 0: none */
  /* Events of operations that finished and were created longer ago than
   * this are pruned in the background; 0 keeps them forever. */
  int64_t event_retention_ms;
  int64_t retry_budget_ms; /* transient failures retried this long; 0: 30 s;
                              negative: not retried */
} api_ops_config_t;

/* `*out` is released with api_ops_close() and, after the loop has run its
 * callbacks, api_ops_free(). */
int api_ops_new(const api_ops_config_t *cfg, api_ops_t **out);

/* Ends every watch stream with UNAVAILABLE, cancels plugin calls in flight
 * without recording their outcome (operations stay running in the store
 * for the next start), commits the open batch. Idempotent. */
void api_ops_close(api_ops_t *ops);
void api_ops_free(api_ops_t *ops);

/* Commits the open batch and streams what it held. Returns 0 or the store
 * error (the batch is then lost and logged). */
int api_ops_flush(api_ops_t *ops);

/* Recovery after a restart; see api_recover(). */
void api_ops_recover(api_ops_t *ops);

/* Non-zero while a running operation reads or writes `checkpoint_id`. */
int api_ops_checkpoint_busy(const api_ops_t *ops, const char *checkpoint_id);

void api_ops_protect(api_ops_t *ops, rt_call_t *call,
                     const Smaug__V1__ProtectRequest *req);
void api_ops_restore(api_ops_t *ops, rt_call_t *call,
                     const Smaug__V1__RestoreRequest *req);
void api_ops_delete_checkpoint(api_ops_t *ops, rt_call_t *call,
                               const Smaug__V1__DeleteCheckpointRequest *req);
void api_ops_cancel(api_ops_t *ops, rt_call_t *call,
                    const Smaug__V1__CancelOperationRequest *req);
void api_ops_watch(api_ops_t *ops, rt_call_t *call,
                   const Smaug__V1__WatchOperationRequest *req);

/* Helpers shared with the read-only handlers. */

/* Writes "<prefix>-<32 hex digits>" (random) into buf (>= 40 bytes). */
void api_new_id(const char *prefix, char *buf, size_t len);

/* Unix time in milliseconds. */
int64_t api_now_ms(void);

/* "available", "error", ... for a checkpoint status; "in_progress", ...
 * for a restore status. Static strings. */
const char *api_checkpoint_status_name(int status);
const char *api_restore_status_name(int status);

/* Results to show for a checkpoint: the protect results, with status and
 * reason taken from the delete run when one ran. Release with
 * store_msgs_free(). */
int api_checkpoint_results(api_ops_t *ops, const Smaug__V1__Checkpoint *cp,
                           Smaug__V1__ResourceResult ***out, size_t *n);

#endif /* SMAUG_API_OP_H */
