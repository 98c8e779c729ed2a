/*
 * sp_wait.c - a poll that returns to the loop for heartbeats (sp_wait.h).
 * One wait is a chain of SDK polls, each ending either because the
 * awaited thing finished or because a heartbeat is due.
 */
#include "sp_wait.h"

#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

typedef struct {
  sp_wait_status_cb status;
  sp_wait_beat_cb beat;
  sp_wait_done_cb done;
  void *data;
  uint64_t interval_ms, beat_ms;
  uint64_t deadline_ns;  /* overall */
  uint64_t next_beat_ns; /* read and written by the status thread only */
  int finished;          /* set by the status thread, read in on_poll */
} wait_t;

static uint64_t ms_to_ns(uint64_t ms) {
  return ms * 1000000ull;
}

static int on_status(smaug_job_t *job, void *data) {
  wait_t *w = data;
  int r = w->status(job, w->data);
  if (r != 0) {
    w->finished = 1;
    return r;
  }
  return uv_hrtime() >= w->next_beat_ns ? 1 : 0;
}

static int poll_again(smaug_activity_t *act, wait_t *w);

static void on_poll(smaug_job_t *job, int status, void *data) {
  wait_t *w = data;
  smaug_activity_t *act = smaug_job_activity(job);
  if (status == 0 && !w->finished) {
    if (w->beat != NULL)
      w->beat(act, w->data);
    int err = poll_again(act, w);
    if (err == 0)
      return;
    status = err;
  }
  char msg[256];
  snprintf(msg, sizeof(msg), "%s", smaug_job_message(job));
  sp_wait_done_cb done = w->done;
  void *udata = w->data;
  free(w);
  done(act, status, msg, udata);
}

static int poll_again(smaug_activity_t *act, wait_t *w) {
  uint64_t now = uv_hrtime();
  if (now >= w->deadline_ns)
    return SMAUG_ETIMEDOUT;
  w->finished = 0;
  w->next_beat_ns = now + ms_to_ns(w->beat_ms);
  uint64_t left_ms = (w->deadline_ns - now) / 1000000ull;
  smaug_poll_opts_t po = {.size = sizeof(po),
                          .interval_ms = w->interval_ms,
                          .timeout_ms = left_ms > 0 ? left_ms : 1};
  return smaug_poll_start(act, &po, on_status, on_poll, w);
}

int sp_wait_start(smaug_activity_t *act, const sp_wait_opts_t *opts,
                  sp_wait_status_cb status, sp_wait_beat_cb beat,
                  sp_wait_done_cb done, void *data) {
  if (status == NULL || done == NULL)
    return SMAUG_EINVAL;
  wait_t *w = calloc(1, sizeof(*w));
  if (w == NULL)
    return SMAUG_ENOMEM;
  w->status = status;
  w->beat = beat;
  w->done = done;
  w->data = data;
  w->interval_ms = opts != NULL && opts->interval_ms ? opts->interval_ms : 100;
  w->beat_ms = opts != NULL && opts->beat_ms ? opts->beat_ms : 1000;
  uint64_t timeout =
      opts != NULL && opts->timeout_ms ? opts->timeout_ms : 600000;
  w->deadline_ns = uv_hrtime() + ms_to_ns(timeout);
  int err = poll_again(act, w);
  if (err != 0)
    free(w);
  return err;
}
