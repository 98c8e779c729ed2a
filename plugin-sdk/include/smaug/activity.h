/*
 * smaug/activity.h - the context a plugin's activity callbacks work with.
 *
 * The SDK calls a type's `parallel` or `sync` callback once per idempotency
 * key with a smaug_activity_t. The callback reads the request through the
 * accessors, may report progress and start background jobs or polls
 * (smaug/job.h), and ends the activity exactly once with
 * smaug_activity_complete() or smaug_activity_fail(), now or later (from a
 * timer, a job's completion or a poll). Until then the SDK keeps the
 * context alive; after a replayed call it is shared by every caller of the
 * same key.
 *
 * Threads: every function here must be called on the plugin's loop thread
 * (the thread that runs the callbacks), except the read-only request
 * accessors and smaug_activity_is_cancelled(), which a job's work function
 * may call from the thread pool while its activity is alive.
 *
 * Strings returned by the accessors are owned by the context and stay
 * valid until the context is released, which is never before every job it
 * started has finished.
 */
#ifndef SMAUG_ACTIVITY_H
#define SMAUG_ACTIVITY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smaug_activity_s smaug_activity_t;

/* The operation an activity belongs to (values of smaug.v1.OperationKind). */
typedef enum {
  SMAUG_OP_PROTECT = 1,
  SMAUG_OP_RESTORE = 2,
  SMAUG_OP_DELETE = 3
} smaug_op_t;

/* Which of the two activities this is (values of smaug.v1.Activity). */
typedef enum { SMAUG_PARALLEL = 1, SMAUG_SYNC = 2 } smaug_activity_kind_t;

/* An activity callback: starts (or does) the work for one resource. The
 * callback must end `act` exactly once, now or later. */
typedef void (*smaug_activity_cb)(smaug_activity_t *act, void *data);

/* Runs once on the loop when the activity is cancelled: by CancelOperation
 * or by shutdown. A caller that goes away (its connection dropped, it
 * cancelled the call, its deadline passed) cancels nothing: the activity
 * and its jobs go on, and the orchestrator's replay of the same key joins
 * them or gets their stored result. */
typedef void (*smaug_cancel_cb)(smaug_activity_t *act, void *data);

/* ------------------------------------------------------------ request */

smaug_op_t smaug_activity_op(const smaug_activity_t *act);
smaug_activity_kind_t smaug_activity_kind(const smaug_activity_t *act);
const char *smaug_activity_operation_id(const smaug_activity_t *act);
const char *smaug_activity_checkpoint_id(const smaug_activity_t *act);
const char *smaug_activity_type(const smaug_activity_t *act);
const char *smaug_activity_resource_id(const smaug_activity_t *act);
/* "" when the request carries no name. */
const char *smaug_activity_resource_name(const smaug_activity_t *act);
/* 1 for the first try of the task, incremented by the orchestrator's
 * retries (replays of the same key keep the context of the first call). */
unsigned smaug_activity_attempt(const smaug_activity_t *act);
const char *smaug_activity_bank_uri(const smaug_activity_t *act);
const char *smaug_activity_bank_section(const smaug_activity_t *act);

/* Value of a key in the resource's extra attributes, the merged
 * parameters, or the saved metadata (restore and delete); NULL if absent. */
const char *smaug_activity_extra(const smaug_activity_t *act, const char *key);
const char *smaug_activity_param(const smaug_activity_t *act, const char *key);
const char *smaug_activity_saved(const smaug_activity_t *act, const char *key);

/* Sync only: the `state` bytes this resource's Parallel returned. `*len`
 * receives the length; the pointer is NULL when there is no state. */
const void *smaug_activity_state(const smaug_activity_t *act, size_t *len);

/* Sync only: the children's results. Index from 0 to n - 1; out-of-range
 * indexes return NULL. */
size_t smaug_activity_n_children(const smaug_activity_t *act);
const char *smaug_activity_child_type(const smaug_activity_t *act, size_t i);
const char *smaug_activity_child_id(const smaug_activity_t *act, size_t i);
/* Restore: the child's re-created id ("" when it has none). */
const char *smaug_activity_child_restored_id(const smaug_activity_t *act,
                                             size_t i);
const char *smaug_activity_child_metadata(const smaug_activity_t *act, size_t i,
                                          const char *key);

/* ----------------------------------------------------------- progress */

/* Sends a progress update (also a heartbeat) to every caller. `done` never
 * goes backwards: a smaller value is raised to the last one sent. `total`
 * is 0 when unknown; `unit` and `message` may be NULL. Ignored after the
 * activity has ended. */
void smaug_activity_progress(smaug_activity_t *act, uint64_t done,
                             uint64_t total, const char *unit,
                             const char *message);

/* ------------------------------------------------------------- result */

/* Parallel: sets the opaque `state` handed to this resource's Sync. The
 * bytes are copied. Returns 0, SMAUG_EINVAL (not a Parallel activity, or
 * already ended) or SMAUG_ENOMEM. */
int smaug_activity_set_state(smaug_activity_t *act, const void *state,
                             size_t len);

/* Sync: adds (or replaces) one metadata entry of the result. Both strings
 * are copied. Returns 0, SMAUG_EINVAL or SMAUG_ENOMEM. */
int smaug_activity_set_metadata(smaug_activity_t *act, const char *key,
                                const char *value);

/* Restore Sync: sets the id of the re-created resource. Copied. Returns 0,
 * SMAUG_EINVAL or SMAUG_ENOMEM. */
int smaug_activity_set_restored_id(smaug_activity_t *act, const char *id);

/* Ends the activity successfully with the result built so far; `message`
 * (may be NULL) is a human-readable summary. For a Sync activity the
 * answer is held until every job and poll started for this resource in
 * this operation has finished; if one of them failed, the Sync fails with
 * that job's code and message instead. Calling it a second time, or after
 * smaug_activity_fail(), is a caller bug (asserted). After the activity was
 * cancelled the call is still required, and only releases the context. */
void smaug_activity_complete(smaug_activity_t *act, const char *message);

/* Ends the activity with an error: `err` is a SMAUG_E* code (see
 * smaug/error.h for the gRPC status it maps to), `fmt` a printf-style
 * message for the caller. Same once-only rule as smaug_activity_complete. */
void smaug_activity_fail(smaug_activity_t *act, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* --------------------------------------------------------- cancellation */

/* Nonzero once the activity was cancelled. Any thread. */
int smaug_activity_is_cancelled(const smaug_activity_t *act);

/* Sets the cancel callback (one per activity; NULL removes it). It is not
 * called for a cancel that happened before it was set: check
 * smaug_activity_is_cancelled() then. */
void smaug_activity_on_cancel(smaug_activity_t *act, smaug_cancel_cb cb,
                              void *data);

/* ---------------------------------------------------------- user data */

/* A pointer the plugin may attach to the context. */
void smaug_activity_set_data(smaug_activity_t *act, void *data);
void *smaug_activity_data(const smaug_activity_t *act);

#ifdef __cplusplus
}
#endif
#endif /* SMAUG_ACTIVITY_H */
