/*
 * test_bank_pool.c - the bank_pool suite: every item runs exactly once,
 * the lowest failing item is the one reported, cancellation stops the run,
 * and progress is reported on the calling thread up to the total.
 */
#include "bank_pool.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

TestSuite(bank_pool, .timeout = 10);

#define N 200

static atomic_int runs[N];

static int count_item(void *job, bank_worker_t *w, size_t item, uint64_t *bytes,
                      char *why, size_t why_size) {
  cr_assert_not_null(w->raw);
  atomic_fetch_add(&runs[item], 1);
  *bytes = 10;
  return 0;
}

Test(bank_pool, every_item_runs_exactly_once) {
  size_t failed;
  char why[64];
  cr_assert_eq(bank_pool_run(N, 4, 4096, N * 10, NULL, count_item, NULL,
                             &failed, why, sizeof(why)),
               0);
  for (int i = 0; i < N; i++)
    cr_assert_eq(atomic_load(&runs[i]), 1, "item %d", i);
}

static int fail_from_50(void *job, bank_worker_t *w, size_t item,
                        uint64_t *bytes, char *why, size_t why_size) {
  if (item < 50)
    return 0;
  snprintf(why, why_size, "item %zu failed", item);
  return -(int)item;
}

/* Items are handed out in increasing order and a taken item always runs,
 * so the lowest failing item is always among those that ran. */
Test(bank_pool, lowest_failing_item_is_reported) {
  size_t failed = 0;
  char why[64] = "";
  int rc = bank_pool_run(N, 3, 4096, 0, NULL, fail_from_50, NULL, &failed, why,
                         sizeof(why));
  cr_assert_eq(rc, -50);
  cr_assert_eq(failed, 50);
  cr_assert_str_eq(why, "item 50 failed");
}

Test(bank_pool, a_set_cancel_flag_runs_nothing) {
  memset(runs, 0, sizeof(runs));
  atomic_int cancel = 1;
  bank_io_t io = {.cancel = &cancel};
  size_t failed;
  char why[64];
  cr_assert_eq(bank_pool_run(N, 2, 4096, 0, &io, count_item, NULL, &failed, why,
                             sizeof(why)),
               UV_ECANCELED);
  for (int i = 0; i < N; i++)
    cr_assert_eq(atomic_load(&runs[i]), 0);
}

typedef struct {
  pthread_t caller;
  int wrong_thread;
  uint64_t last, total;
} seen_t;

static void on_progress(void *data, uint64_t done, uint64_t total) {
  seen_t *s = data;
  if (!pthread_equal(pthread_self(), s->caller))
    s->wrong_thread = 1;
  s->last = done;
  s->total = total;
}

Test(bank_pool, progress_runs_on_the_calling_thread_up_to_the_total) {
  seen_t s = {.caller = pthread_self()};
  bank_io_t io = {.progress = on_progress, .data = &s};
  size_t failed;
  char why[64];
  cr_assert_eq(bank_pool_run(N, 4, 4096, N * 10, &io, count_item, NULL, &failed,
                             why, sizeof(why)),
               0);
  cr_assert_eq(s.wrong_thread, 0);
  cr_assert_eq(s.last, N * 10);
  cr_assert_eq(s.total, N * 10);
}
