/*
 * sdk_job.h - the bottom layer of the SDK: background jobs, polls and
 * bounded queues (job.c), for the activity layer above it.
 *
 * The SDK is a one-way stack: plugin.c (the process, options, server)
 * calls activity.c (activity contexts and their index), which calls job.c
 * (this header). job.c calls nothing above it: it reports through the
 * hooks it was initialised with, and only ever from the loop, never from
 * inside one of the calls below. A job's owner is an activity, but job.c
 * only stores the pointer (and hands it back with smaug_job_activity).
 *
 * Loop thread only, except smaug_job_progress, smaug_job_is_cancelled and
 * the work and status callbacks, which run on the libuv thread pool. Never
 * included by a public header.
 */
#ifndef SMAUG_SDK_JOB_H
#define SMAUG_SDK_JOB_H

#include "kv.h"
#include "smaug/job.h"

#include <stdint.h>
#include <uv.h>

/* Progress updates a job may have waiting for the loop: the 32 oldest and
 * the newest. */
#define SDK_JOB_PROGRESS_QUEUE 33

/* A named bounded job queue. Owned by the plugin; jobs borrow it. */
typedef struct sdk_queue_s {
  char *name;
  unsigned limit;
  unsigned running;
  unsigned max_seen; /* highest `running`, for tests and logs */
  smaug_job_t *wait_head, *wait_tail;
} sdk_queue_t;

/* What the layer above learns from its jobs. Each hook runs on the loop,
 * never from inside an sdk_job_* call. */
typedef struct sdk_job_hooks_s {
  /* A job of `owner` reported progress (in the order reported). */
  void (*progress)(smaug_activity_t *owner, uint64_t done, uint64_t total,
                   const char *unit, const char *message);
  /* A job of `owner` ended, after its done callback: `status` 0 or a
   * SMAUG_E* code, `msg` its message (smaug_job_set_message), `meta` what it
   * set with smaug_job_set_metadata. All three are valid only during the
   * call. The job is gone afterwards. */
  void (*ended)(smaug_activity_t *owner, int status, const char *msg,
                const kv_t *meta);
} sdk_job_hooks_t;

/* The live jobs of one plugin. A value type embedded by its owner. */
typedef struct sdk_jobs_s {
  uv_loop_t *loop;
  uv_async_t *wake; /* poked when a job reports progress; owner's handle */
  const sdk_job_hooks_t *hooks;
  void (*drained)(void *data); /* the last live job ended */
  void *data;
  smaug_job_t *live; /* every live job and poll */
  unsigned n_live;
} sdk_jobs_t;

/* Makes `js` an empty set on `loop`. `wake` (an initialised uv_async_t
 * whose callback calls sdk_job_flush_progress), `hooks` and `data` are
 * borrowed and must outlive every job; `drained(data)` runs each time the
 * last live job has ended. */
void sdk_jobs_init(sdk_jobs_t *js, uv_loop_t *loop, uv_async_t *wake,
                   const sdk_job_hooks_t *hooks, void (*drained)(void *data),
                   void *data);

/* Jobs and polls not finished yet. */
unsigned sdk_jobs_live(const sdk_jobs_t *js);

/* The queue named `name` among `n` queues, or NULL. */
sdk_queue_t *sdk_queue_find(sdk_queue_t *queues, size_t n, const char *name);

/* Starts a job (`work` set) or a poll (`status` set, `opts` may be NULL)
 * for `owner`, in queue `q` (NULL: no limit). `group` (a resource, may be
 * NULL) and `op_id` name what sdk_job_cancel and sdk_job_cancel_op match;
 * `owner`, `group` and `op_id` are borrowed and must outlive the job.
 * Returns 0 (the hooks will see the job end exactly once) or SMAUG_ENOMEM
 * (nothing started, no hook runs). */
int sdk_job_start(sdk_jobs_t *js, smaug_activity_t *owner, const void *group,
                  const char *op_id, sdk_queue_t *q, smaug_job_work_cb work,
                  smaug_poll_status_cb status, const smaug_poll_opts_t *opts,
                  smaug_job_done_cb done, void *data);

/* Cancels the jobs of `owner`, and with a non-NULL `group` every other job
 * of that group. Returns how many were told to stop. Never calls a done
 * callback or a hook from inside the call. */
unsigned sdk_job_cancel(sdk_jobs_t *js, const smaug_activity_t *owner,
                        const void *group);

/* Cancels the jobs of operation `op_id` (NULL: all jobs), like
 * sdk_job_cancel. */
unsigned sdk_job_cancel_op(sdk_jobs_t *js, const char *op_id);

/* Sends the progress every job has waiting through the progress hook. */
void sdk_job_flush_progress(sdk_jobs_t *js);

#endif
