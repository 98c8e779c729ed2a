/*
 * bank_pool.c - a per-call fan-out over chunk indices. Threads take the
 * next index from an atomic counter, so fast and slow chunks balance out;
 * the first failure sets `stop`, and the failure with the lowest index
 * wins, which keeps error messages deterministic when several chunks fail.
 */
#include "bank_pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  atomic_size_t next;
  atomic_int stop;
  size_t nitems, buf_size;
  bank_pool_fn fn;
  void *job;
  const bank_io_t *io;
  uint64_t total;
  /* Guarded by mu. */
  uint64_t done;
  int running; /* helper threads not finished */
  int rc;
  size_t failed;
  char why[256];
} pool_t;

static int cancelled(const pool_t *p) {
  return p->io != NULL && p->io->cancel != NULL &&
         atomic_load(p->io->cancel) != 0;
}

static void record_failure(pool_t *p, int rc, size_t item, const char *why) {
  pthread_mutex_lock(&p->mu);
  if (p->rc == 0 || item < p->failed) {
    p->rc = rc;
    p->failed = item;
    snprintf(p->why, sizeof(p->why), "%s", why);
  }
  pthread_mutex_unlock(&p->mu);
  atomic_store(&p->stop, 1);
}

/* Works items until none are left or the pool stops. `report` is set on
 * the calling thread only: it then calls the progress callback, and
 * returns the last value it reported. */
static uint64_t work(pool_t *p, int report) {
  bank_worker_t w;
  char why[256];
  int rc = bank_worker_init(&w, p->buf_size);
  if (rc != 0) {
    record_failure(p, rc, SIZE_MAX, "out of memory");
    return UINT64_MAX;
  }
  uint64_t last = UINT64_MAX;
  while (!atomic_load(&p->stop)) {
    if (cancelled(p)) {
      atomic_store(&p->stop, 1);
      break;
    }
    size_t i = atomic_fetch_add(&p->next, 1);
    if (i >= p->nitems)
      break;
    uint64_t bytes = 0;
    why[0] = '\0';
    rc = p->fn(p->job, &w, i, &bytes, why, sizeof(why));
    if (rc != 0) {
      record_failure(p, rc, i, why);
      break;
    }
    pthread_mutex_lock(&p->mu);
    p->done += bytes;
    uint64_t done = p->done;
    pthread_mutex_unlock(&p->mu);
    if (report && p->io != NULL && p->io->progress != NULL && done != last) {
      p->io->progress(p->io->data, done, p->total);
      last = done;
    }
  }
  bank_worker_free(&w);
  return last;
}

static void *helper_main(void *arg) {
  pool_t *p = arg;
  work(p, 0);
  pthread_mutex_lock(&p->mu);
  p->running--;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

int bank_pool_run(size_t nitems, int threads, size_t buf_size, uint64_t total,
                  const bank_io_t *io, bank_pool_fn fn, void *job,
                  size_t *failed, char *why, size_t why_size) {
  pool_t p;
  memset(&p, 0, sizeof(p));
  pthread_mutex_init(&p.mu, NULL);
  pthread_cond_init(&p.cv, NULL);
  atomic_init(&p.next, 0);
  atomic_init(&p.stop, 0);
  p.nitems = nitems;
  p.buf_size = buf_size;
  p.fn = fn;
  p.job = job;
  p.io = io;
  p.total = total;
  p.failed = SIZE_MAX;

  if (threads < 1)
    threads = 1;
  if ((size_t)threads > nitems)
    threads = nitems > 0 ? (int)nitems : 1;
  pthread_t tids[16];
  int started = 0;
  for (int i = 1; i < threads && i <= 16; i++) {
    pthread_mutex_lock(&p.mu);
    p.running++;
    pthread_mutex_unlock(&p.mu);
    if (pthread_create(&tids[started], NULL, helper_main, &p) != 0) {
      pthread_mutex_lock(&p.mu);
      p.running--;
      pthread_mutex_unlock(&p.mu);
      break; /* fewer threads is still correct */
    }
    started++;
  }
  uint64_t last = work(&p, 1);

  /* Keep reporting progress while the helpers finish their last chunks,
   * and once more for whatever they finished after our last report. */
  pthread_mutex_lock(&p.mu);
  for (;;) {
    if (p.done != last && io != NULL && io->progress != NULL) {
      last = p.done;
      pthread_mutex_unlock(&p.mu);
      io->progress(io->data, last, total);
      pthread_mutex_lock(&p.mu);
      continue; /* re-check: more may have finished meanwhile */
    }
    if (p.running == 0)
      break;
    pthread_cond_wait(&p.cv, &p.mu);
  }
  pthread_mutex_unlock(&p.mu);
  for (int i = 0; i < started; i++)
    pthread_join(tids[i], NULL);

  int rc = p.rc;
  if (rc == 0 && cancelled(&p) && atomic_load(&p.next) < nitems)
    rc = UV_ECANCELED;
  if (rc != 0 && rc != UV_ECANCELED) {
    *failed = p.failed;
    snprintf(why, why_size, "%s", p.why);
  }
  pthread_mutex_destroy(&p.mu);
  pthread_cond_destroy(&p.cv);
  return rc;
}
