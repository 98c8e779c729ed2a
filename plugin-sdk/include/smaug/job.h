/*
 * smaug/job.h - background jobs, bounded queues and polls.
 *
 * These are how a plugin does heavy or slow work without writing the
 * "Sync waits for everything" bookkeeping itself:
 *
 *   - smaug_job_start() runs a work function on the libuv thread pool;
 *   - smaug_job_enqueue() does the same through a named queue that runs at
 *     most `limit` jobs at a time (limits come from the plugin definition
 *     and may be overridden with --queue NAME=N or SMAUG_QUEUE_<NAME>=N);
 *   - smaug_poll_start() calls a status function at an interval until it
 *     reports success or failure, the timeout passes or it is cancelled.
 *
 * Each job and poll is recorded under the operation and resource of the
 * activity that started it. That resource's Sync is answered only after all
 * of them have finished, and the first one that failed fails the Sync with
 * its code and message. A job started from Parallel thus keeps running
 * after Parallel has returned, and the orchestrator's Sync waits for it.
 *
 * Cancellation (CancelOperation, a failed Sync of the resource, shutdown)
 * sets the job's cancel flag; a work function should check
 * smaug_job_is_cancelled() between steps and return SMAUG_ECANCELED. A job
 * still waiting in its queue is dropped without running. A dropped call is
 * not a cancel: when the orchestrator restarts or a call passes its
 * deadline, the jobs go on and the replayed Sync (same idempotency key)
 * waits for them. A job that needs a time limit sets its own (a poll's
 * timeout_ms, or a check in the work function).
 *
 * A job reports how far it got with smaug_job_progress(), from its own
 * thread: the SDK carries the update to the loop and sends it as progress
 * (which is also a heartbeat) on the call that waits for the job, usually
 * the resource's Sync. A plugin therefore needs no polling loop of its
 * own to keep a long Sync visibly alive.
 *
 * Threads: start functions on the loop thread; `work` and `status` on a
 * thread-pool thread; `done` on the loop thread.
 */
#ifndef SMAUG_JOB_H
#define SMAUG_JOB_H

#include <smaug/activity.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smaug_job_s smaug_job_t;

/* Does the work, on a thread-pool thread. Returns 0 or a SMAUG_E* code;
 * a failure message may be set with smaug_job_set_message(). */
typedef int (*smaug_job_work_cb)(smaug_job_t *job, void *data);

/* Runs on the loop thread once the job or poll has ended, with 0, the work
 * function's error, SMAUG_ECANCELED or (polls) SMAUG_ETIMEDOUT. The job's
 * activity is still alive: the callback may end it. May be NULL. */
typedef void (*smaug_job_done_cb)(smaug_job_t *job, int status, void *data);

/* Asks an asynchronous API how an operation is doing, on a thread-pool
 * thread. Returns 1 when it succeeded, 0 while it is still running, or a
 * SMAUG_E* code when it failed (set a message with smaug_job_set_message).
 * It should return within the poll interval. */
typedef int (*smaug_poll_status_cb)(smaug_job_t *job, void *data);

/* Starts `work` on the thread pool for `act`'s resource. `done` (may be
 * NULL) then runs on the loop. Returns 0, SMAUG_EINVAL (NULL work, or the
 * activity has ended), SMAUG_ECANCELED (the activity is cancelled) or
 * SMAUG_ENOMEM; on error neither callback ever runs. */
int smaug_job_start(smaug_activity_t *act, smaug_job_work_cb work,
                    smaug_job_done_cb done, void *data);

/* Like smaug_job_start, through the named queue: the job waits until fewer
 * than the queue's limit of its jobs are running. Returns SMAUG_ENOENT for
 * a queue the plugin definition does not declare. */
int smaug_job_enqueue(smaug_activity_t *act, const char *queue,
                      smaug_job_work_cb work, smaug_job_done_cb done,
                      void *data);

typedef struct smaug_poll_opts_s {
  size_t size;          /* sizeof(smaug_poll_opts_t) */
  uint64_t interval_ms; /* between status calls; 0: 1000 */
  uint64_t timeout_ms;  /* give up with SMAUG_ETIMEDOUT after this; 0: 600000 */
} smaug_poll_opts_t;

/* Calls `status` at once and then every interval until it returns nonzero,
 * the timeout passes (status SMAUG_ETIMEDOUT) or the activity is cancelled
 * (SMAUG_ECANCELED); then `done` (may be NULL) runs. `opts` may be NULL.
 * Counts as a job of the resource. Errors as smaug_job_start. */
int smaug_poll_start(smaug_activity_t *act, const smaug_poll_opts_t *opts,
                     smaug_poll_status_cb status, smaug_job_done_cb done,
                     void *data);

/* The activity that started the job. Any thread while the job runs. */
smaug_activity_t *smaug_job_activity(const smaug_job_t *job);

/* Nonzero once the job should stop. Any thread. */
int smaug_job_is_cancelled(const smaug_job_t *job);

/* Sets the message reported when the job fails (copied, truncated to 255
 * bytes). From the work or status function only. */
void smaug_job_set_message(smaug_job_t *job, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The message set with smaug_job_set_message, "" if none. Valid until the
 * done callback returns. */
const char *smaug_job_message(const smaug_job_t *job);

/* Adds one metadata entry that is merged into the result of the
 * resource's Sync (the Sync's own entries win). Both strings are copied.
 * From the work or status function only. Returns 0 or SMAUG_ENOMEM. */
int smaug_job_set_metadata(smaug_job_t *job, const char *key,
                           const char *value);

/* Reports the job's progress: `done` of `total` (0: unknown) `unit`s,
 * with a `message`; `unit` and `message` may be NULL and are copied
 * (truncated to 31 and 255 bytes). Safe from any thread, meant for the
 * work or status function; also allowed from the done callback.
 *
 * The update is handed to the loop and sent, in the order the job made
 * its calls, to every caller of the resource's Sync activities that are
 * still open (a Sync held by smaug_activity_complete() until the jobs
 * end, or one still running), and to the job's own activity while it is
 * open (a Parallel that has not returned yet). It counts as a heartbeat,
 * and the periodic heartbeat then repeats it. Every update a job made
 * before returning is sent before the job's done callback runs and before
 * the Sync that waits for it is answered. A job that reports faster than
 * the loop sends keeps its 32 oldest pending updates and the newest one.
 * As with smaug_activity_progress(), `done` never goes backwards on one
 * call. Ignored when no call is open. */
void smaug_job_progress(smaug_job_t *job, uint64_t done, uint64_t total,
                        const char *unit, const char *message);

#ifdef __cplusplus
}
#endif
#endif /* SMAUG_JOB_H */
