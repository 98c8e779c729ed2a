/*
 * job.c - background jobs, bounded queues and polls (smaug/job.h).
 *
 * A job is a uv_work_t on the libuv thread pool; a poll is a timer on the
 * loop that sends the status function to the pool at each tick. Both are
 * counted on their resource (sdk_activity_job_begin/end), which is how
 * the resource's Sync knows when everything has finished. Cancellation
 * only sets flags and re-arms handles: done callbacks always run later,
 * from the loop, never from inside a cancel.
 *
 * Progress from a job (smaug_job_progress) is queued on the job under its
 * mutex and the plugin's uv_async_t is poked; the loop then drains every
 * job's queue in order. after_work drains the job's queue itself before
 * anything else, because libuv does not order the async against the
 * thread pool's own completion signal.
 */
#include "sdk.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct smaug_job_s {
  smaug_job_t *next, *prev; /* the plugin's live list */
  smaug_job_t *qnext;       /* the queue's wait list */
  uv_work_t work_req;
  uv_timer_t timer;
  smaug_plugin_t *p;
  smaug_activity_t *act;
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
  size_t n_meta;
  char **meta_k, **meta_v;
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
    sdk_activity_job_progress(j->act, out[i].done, out[i].total, out[i].unit,
                              out[i].msg);
}

void sdk_job_flush_progress(smaug_plugin_t *p) {
  for (smaug_job_t *j = p->jobs; j != NULL; j = j->next)
    flush_progress(j);
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
  uv_async_send(&job->p->progress_async);
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
  (void)uv_queue_work(j->p->loop, &j->work_req, do_work, after_work);
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
  smaug_plugin_t *p = j->p;
  flush_progress(j);
  if (j->done != NULL)
    j->done(j, j->result, j->data);
  flush_progress(j); /* what the done callback reported */
  smaug_activity_t *act = j->act;
  sdk_activity_job_end(act, j->result, j->msg, j->n_meta, j->meta_k, j->meta_v);
  for (size_t i = 0; i < j->n_meta; i++) {
    free(j->meta_k[i]);
    free(j->meta_v[i]);
  }
  free(j->meta_k);
  free(j->meta_v);
  uv_mutex_destroy(&j->mu);
  if (j->prev != NULL)
    j->prev->next = j->next;
  else
    p->jobs = j->next;
  if (j->next != NULL)
    j->next->prev = j->prev;
  free(j);
  if (--p->live_jobs == 0)
    sdk_plugin_jobs_drained(p);
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
  uint64_t now = uv_now(j->p->loop);
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

static int start(smaug_activity_t *act, const char *queue,
                 smaug_job_work_cb work, smaug_poll_status_cb status,
                 const smaug_poll_opts_t *opts, smaug_job_done_cb done,
                 void *data) {
  if (act == NULL || (work == NULL && status == NULL))
    return SMAUG_EINVAL;
  int err = sdk_activity_can_start(act);
  if (err != 0)
    return err;
  smaug_plugin_t *p = sdk_activity_plugin(act);
  sdk_queue_t *q = NULL;
  if (queue != NULL && (q = sdk_plugin_queue(p, queue)) == NULL)
    return SMAUG_ENOENT;
  smaug_job_t *j = calloc(1, sizeof(*j));
  if (j == NULL)
    return SMAUG_ENOMEM;
  if (uv_mutex_init(&j->mu) != 0) {
    free(j);
    return SMAUG_ENOMEM;
  }
  j->p = p;
  j->act = act;
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
    j->deadline = uv_now(p->loop) + (timeout ? timeout : 600000);
    uv_timer_init(p->loop, &j->timer);
    j->timer.data = j;
    j->timer_open = 1;
  }
  sdk_activity_job_begin(act);
  p->live_jobs++;
  j->next = p->jobs;
  if (p->jobs != NULL)
    p->jobs->prev = j;
  p->jobs = j;
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

int smaug_job_start(smaug_activity_t *act, smaug_job_work_cb work,
                    smaug_job_done_cb done, void *data) {
  if (work == NULL)
    return SMAUG_EINVAL;
  return start(act, NULL, work, NULL, NULL, done, data);
}

int smaug_job_enqueue(smaug_activity_t *act, const char *queue,
                      smaug_job_work_cb work, smaug_job_done_cb done,
                      void *data) {
  if (work == NULL || queue == NULL)
    return SMAUG_EINVAL;
  return start(act, queue, work, NULL, NULL, done, data);
}

int smaug_poll_start(smaug_activity_t *act, const smaug_poll_opts_t *opts,
                     smaug_poll_status_cb status, smaug_job_done_cb done,
                     void *data) {
  if (status == NULL)
    return SMAUG_EINVAL;
  return start(act, NULL, NULL, status, opts, done, data);
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
  char **k = realloc(job->meta_k, (job->n_meta + 1) * sizeof(*k));
  if (k == NULL)
    return SMAUG_ENOMEM;
  job->meta_k = k;
  char **v = realloc(job->meta_v, (job->n_meta + 1) * sizeof(*v));
  if (v == NULL)
    return SMAUG_ENOMEM;
  job->meta_v = v;
  char *ks = strdup(key), *vs = strdup(value);
  if (ks == NULL || vs == NULL) {
    free(ks);
    free(vs);
    return SMAUG_ENOMEM;
  }
  job->meta_k[job->n_meta] = ks;
  job->meta_v[job->n_meta] = vs;
  job->n_meta++;
  return 0;
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

unsigned sdk_job_cancel(smaug_plugin_t *p, const smaug_activity_t *act,
                        const sdk_res_t *res, int whole_resource) {
  unsigned n = 0;
  for (smaug_job_t *j = p->jobs; j != NULL; j = j->next) {
    if (atomic_load(&j->cancelled))
      continue;
    if (j->act == act || (whole_resource && sdk_activity_res(j->act) == res)) {
      cancel_one(j);
      n++;
    }
  }
  return n;
}

unsigned sdk_job_cancel_op(smaug_plugin_t *p, const char *op_id) {
  unsigned n = 0;
  for (smaug_job_t *j = p->jobs; j != NULL; j = j->next) {
    if (atomic_load(&j->cancelled))
      continue;
    if (op_id == NULL || strcmp(sdk_activity_op_id(j->act), op_id) == 0) {
      cancel_one(j);
      n++;
    }
  }
  return n;
}
