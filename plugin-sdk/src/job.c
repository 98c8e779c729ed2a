/*
 * job.c - background jobs, bounded queues and polls (smaug/job.h).
 *
 * The bottom layer of the SDK (sdk_job.h): it calls nothing above it. A
 * job is a uv_work_t on the libuv thread pool; a poll is a timer on the
 * loop that sends the status function to the pool at each tick. The end
 * of each is reported through the `ended` hook, which is how the activity
 * layer counts them on their resource and knows when a Sync may answer.
 * Cancellation only sets flags and re-arms handles: done callbacks and
 * hooks always run later, from the loop, never from inside a cancel.
 * Starting a job (the checks on its activity) is the activity layer's job
 * (activity.c); the rest of smaug/job.h is here.
 *
 * Progress from a job (smaug_job_progress) is queued on the job under its
 * mutex and the plugin's uv_async_t is poked; the loop then drains every
 * job's queue in order. after_work drains the job's queue itself before
 * anything else, because libuv does not order the async against the
 * thread pool's own completion signal.
 */
#include "sdk_job.h"

#include "smaug/error.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct smaug_job_s {
  smaug_job_t *next, *prev; /* the set's live list */
  smaug_job_t *qnext;       /* the queue's wait list */
  uv_work_t work_req;
  uv_timer_t timer;
  sdk_jobs_t *js;
  smaug_activity_t *act; /* the owner, borrowed */
  const void *group;     /* borrowed, compared only */
  const char *op_id;     /* borrowed */
  sdk_queue_t *q;
  int q_counted; /* holds one of the queue's slots */
  int waiting;   /* in the queue's wait list */
  int is_poll;
  int timer_open;
  int in_pool;
  smaug_job_work_cb work;
  smaug_poll_status_cb status;
  smaug_job_done_cb done;
  void *data;
  atomic_int cancelled;
  int result;
  int poll_ok;
  uint64_t interval_ms, deadline;
  char msg[256];
  kv_t meta; /* set by the job, copied to its resource at the end */
  /* progress waiting for the loop; guarded by `mu` */
  uv_mutex_t mu;
  unsigned n_prog;
  struct job_prog_s {
    uint64_t done, total;
    char unit[32];
    char msg[256];
  } prog[SDK_JOB_PROGRESS_QUEUE];
};

/* Sends what the job reported so far, oldest first. Loop thread. The
 * queue is copied out under the lock so the worker is never held up by
 * the sends. */
static void flush_progress(smaug_job_t *j) {
  struct job_prog_s out[SDK_JOB_PROGRESS_QUEUE];
  uv_mutex_lock(&j->mu);
  unsigned n = j->n_prog;
  memcpy(out, j->prog, n * sizeof(out[0]));
  j->n_prog = 0;
  uv_mutex_unlock(&j->mu);
  for (unsigned i = 0; i < n; i++)
    j->js->hooks->progress(j->act, out[i].done, out[i].total, out[i].unit,
                           out[i].msg);
}

void sdk_job_flush_progress(sdk_jobs_t *js) {
  for (smaug_job_t *j = js->live; j != NULL; j = j->next)
    flush_progress(j);
}

void sdk_jobs_init(sdk_jobs_t *js, uv_loop_t *loop, uv_async_t *wake,
                   const sdk_job_hooks_t *hooks, void (*drained)(void *data),
                   void *data) {
  memset(js, 0, sizeof(*js));
  js->loop = loop;
  js->wake = wake;
  js->hooks = hooks;
  js->drained = drained;
  js->data = data;
}

unsigned sdk_jobs_live(const sdk_jobs_t *js) {
  return js->n_live;
}

sdk_queue_t *sdk_queue_find(sdk_queue_t *queues, size_t n, const char *name) {
  for (size_t i = 0; name != NULL && i < n; i++)
    if (strcmp(queues[i].name, name) == 0)
      return &queues[i];
  return NULL;
}

void smaug_job_progress(smaug_job_t *job, uint64_t done, uint64_t total,
                        const char *unit, const char *message) {
  uv_mutex_lock(&job->mu);
  /* A full queue keeps its oldest entries and replaces the newest. */
  unsigned i =
      job->n_prog < SDK_JOB_PROGRESS_QUEUE ? job->n_prog++ : job->n_prog - 1;
  struct job_prog_s *e = &job->prog[i];
  e->done = done;
  e->total = total;
  snprintf(e->unit, sizeof(e->unit), "%s", unit != NULL ? unit : "");
  snprintf(e->msg, sizeof(e->msg), "%s", message != NULL ? message : "");
  uv_mutex_unlock(&job->mu);
  uv_async_send(job->js->wake);
}

static void after_work(uv_work_t *req, int status);

static void do_work(uv_work_t *req) {
  smaug_job_t *j = req->data;
  if (atomic_load(&j->cancelled)) {
    j->result = SMAUG_ECANCELED;
    return;
  }
  if (j->is_poll) {
    int r = j->status(j, j->data);
    if (r > 0)
      j->poll_ok = 1;
    else if (r < 0)
      j->result = r;
    return;
  }
  j->result = j->work(j, j->data);
}

static void submit(smaug_job_t *j) {
  j->in_pool = 1;
  j->work_req.data = j;
  /* Fails only for a NULL work callback. */
  (void)uv_queue_work(j->js->loop, &j->work_req, do_work, after_work);
}

static void pump(sdk_queue_t *q) {
  while (q->wait_head != NULL && q->running < q->limit) {
    smaug_job_t *j = q->wait_head;
    q->wait_head = j->qnext;
    if (q->wait_head == NULL)
      q->wait_tail = NULL;
    j->waiting = 0;
    j->q_counted = 1;
    if (++q->running > q->max_seen)
      q->max_seen = q->running;
    submit(j);
  }
}

static void finish_now(smaug_job_t *j) {
  sdk_jobs_t *js = j->js;
  flush_progress(j);
  if (j->done != NULL)
    j->done(j, j->result, j->data);
  flush_progress(j); /* what the done callback reported */
  js->hooks->ended(j->act, j->result, j->msg, &j->meta);
  kv_free(&j->meta);
  uv_mutex_destroy(&j->mu);
  if (j->prev != NULL)
    j->prev->next = j->next;
  else
    js->live = j->next;
  if (j->next != NULL)
    j->next->prev = j->prev;
  free(j);
  if (--js->n_live == 0 && js->drained != NULL)
    js->drained(js->data);
}

static void on_timer_closed(uv_handle_t *h) {
  finish_now(h->data);
}

static void finish(smaug_job_t *j, int result) {
  j->result = result;
  if (j->timer_open) {
    j->timer_open = 0;
    uv_close((uv_handle_t *)&j->timer, on_timer_closed);
  } else {
    finish_now(j);
  }
}

static void poll_tick(uv_timer_t *t) {
  smaug_job_t *j = t->data;
  if (atomic_load(&j->cancelled))
    finish(j, SMAUG_ECANCELED);
  else
    submit(j);
}

static void after_work(uv_work_t *req, int status) {
  smaug_job_t *j = req->data;
  j->in_pool = 0;
  flush_progress(j); /* a poll's status call may have reported */
  if (j->q_counted) {
    j->q_counted = 0;
    j->q->running--;
    pump(j->q);
  }
  if (status == UV_ECANCELED)
    j->result = SMAUG_ECANCELED;
  if (!j->is_poll) {
    finish(j, j->result);
    return;
  }
  uint64_t now = uv_now(j->js->loop);
  if (atomic_load(&j->cancelled))
    finish(j, SMAUG_ECANCELED);
  else if (j->poll_ok)
    finish(j, 0);
  else if (j->result < 0)
    finish(j, j->result);
  else if (now >= j->deadline)
    finish(j, SMAUG_ETIMEDOUT);
  else {
    uint64_t wait = j->deadline - now;
    uv_timer_start(&j->timer, poll_tick,
                   wait < j->interval_ms ? wait : j->interval_ms, 0);
  }
}

int sdk_job_start(sdk_jobs_t *js, smaug_activity_t *owner, const void *group,
                  const char *op_id, sdk_queue_t *q, smaug_job_work_cb work,
                  smaug_poll_status_cb status, const smaug_poll_opts_t *opts,
                  smaug_job_done_cb done, void *data) {
  smaug_job_t *j = calloc(1, sizeof(*j));
  if (j == NULL)
    return SMAUG_ENOMEM;
  if (uv_mutex_init(&j->mu) != 0) {
    free(j);
    return SMAUG_ENOMEM;
  }
  j->js = js;
  j->act = owner;
  j->group = group;
  j->op_id = op_id;
  j->q = q;
  j->work = work;
  j->status = status;
  j->done = done;
  j->data = data;
  atomic_init(&j->cancelled, 0);
  if (status != NULL) {
    j->is_poll = 1;
    uint64_t interval = 0, timeout = 0;
    if (opts != NULL && opts->size >= offsetof(smaug_poll_opts_t, timeout_ms))
      interval = opts->interval_ms;
    if (opts != NULL && opts->size >= sizeof(smaug_poll_opts_t))
      timeout = opts->timeout_ms;
    j->interval_ms = interval ? interval : 1000;
    j->deadline = uv_now(js->loop) + (timeout ? timeout : 600000);
    uv_timer_init(js->loop, &j->timer);
    j->timer.data = j;
    j->timer_open = 1;
  }
  js->n_live++;
  j->next = js->live;
  if (js->live != NULL)
    js->live->prev = j;
  js->live = j;
  if (q != NULL) {
    j->waiting = 1;
    if (q->wait_tail != NULL)
      q->wait_tail->qnext = j;
    else
      q->wait_head = j;
    q->wait_tail = j;
    pump(q);
  } else {
    submit(j);
  }
  return 0;
}

smaug_activity_t *smaug_job_activity(const smaug_job_t *job) {
  return job->act;
}

int smaug_job_is_cancelled(const smaug_job_t *job) {
  return atomic_load(&job->cancelled);
}

void smaug_job_set_message(smaug_job_t *job, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(job->msg, sizeof(job->msg), fmt, ap);
  va_end(ap);
}

const char *smaug_job_message(const smaug_job_t *job) {
  return job->msg;
}

int smaug_job_set_metadata(smaug_job_t *job, const char *key,
                           const char *value) {
  if (key == NULL || value == NULL)
    return SMAUG_EINVAL;
  return kv_set(&job->meta, key, value);
}

/* Sets the flag and makes sure the job ends soon: a job still waiting for
 * a queue slot is sent to the pool at once (it only sees the flag), and a
 * poll sleeping on its timer is woken. */
static void cancel_one(smaug_job_t *j) {
  atomic_store(&j->cancelled, 1);
  if (j->waiting) {
    sdk_queue_t *q = j->q;
    smaug_job_t **pp = &q->wait_head, *prev = NULL;
    while (*pp != j) {
      prev = *pp;
      pp = &(*pp)->qnext;
    }
    *pp = j->qnext;
    if (q->wait_tail == j)
      q->wait_tail = prev;
    j->waiting = 0;
    submit(j);
  } else if (j->is_poll && !j->in_pool && j->timer_open) {
    uv_timer_start(&j->timer, poll_tick, 0, 0);
  }
}

unsigned sdk_job_cancel(sdk_jobs_t *js, const smaug_activity_t *owner,
                        const void *group) {
  unsigned n = 0;
  for (smaug_job_t *j = js->live; j != NULL; j = j->next) {
    if (atomic_load(&j->cancelled))
      continue;
    if (j->act == owner || (group != NULL && j->group == group)) {
      cancel_one(j);
      n++;
    }
  }
  return n;
}

unsigned sdk_job_cancel_op(sdk_jobs_t *js, const char *op_id) {
  unsigned n = 0;
  for (smaug_job_t *j = js->live; j != NULL; j = j->next) {
    if (atomic_load(&j->cancelled))
      continue;
    if (op_id == NULL || strcmp(j->op_id, op_id) == 0) {
      cancel_one(j);
      n++;
    }
  }
  return n;
}
