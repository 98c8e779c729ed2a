/*
 * sp_wait.h - wait for something asynchronous from an activity, with
 * heartbeats.
 *
 * Built on the SDK's poll helper (smaug_poll_start): `status` runs on the
 * thread pool every interval until it reports success or failure or the
 * timeout passes. Because progress may only be sent from the loop, the
 * wait comes back to the loop every `beat_ms`, calls `beat` (which sends
 * a progress update, so the orchestrator sees the activity is alive) and
 * polls again. Each of those polls counts as a job of the resource, so
 * the resource's Sync is not answered before the wait has ended, and
 * CancelOperation stops it.
 */
#ifndef SP_WAIT_H
#define SP_WAIT_H

#include <smaug/plugin.h>
#include <stdint.h>

typedef struct {
  uint64_t interval_ms; /* between status calls; 0: 100 */
  uint64_t timeout_ms;  /* overall; 0: 600000 */
  uint64_t beat_ms;     /* between heartbeats; 0: 1000 */
} sp_wait_opts_t;

/* Thread pool: 1 when done, 0 while running, or a SMAUG_E* code (message
 * with smaug_job_set_message). Should return quickly. */
typedef int (*sp_wait_status_cb)(smaug_job_t *job, void *data);

/* Loop: a heartbeat is due; typically calls smaug_activity_progress. */
typedef void (*sp_wait_beat_cb)(smaug_activity_t *act, void *data);

/* Loop, exactly once: the wait ended with 0, the status error,
 * SMAUG_ETIMEDOUT or SMAUG_ECANCELED; `msg` is "" or says why. The
 * callback usually ends `act` or starts the next step. */
typedef void (*sp_wait_done_cb)(smaug_activity_t *act, int status,
                                const char *msg, void *data);

/* Starts waiting. `opts` may be NULL. Returns 0, or the errors of
 * smaug_poll_start (then no callback runs). Loop thread. */
int sp_wait_start(smaug_activity_t *act, const sp_wait_opts_t *opts,
                  sp_wait_status_cb status, sp_wait_beat_cb beat,
                  sp_wait_done_cb done, void *data);

#endif
