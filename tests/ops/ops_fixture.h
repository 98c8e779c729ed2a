/*
 * ops_fixture.h - what the suites of the operations core share: running
 * the loop until a condition holds, a stored plan, and the report of an
 * ops_* call. Criterion asserts on any failure.
 */
#ifndef SMAUG_OPS_FIXTURE_H
#define SMAUG_OPS_FIXTURE_H

#include <stddef.h>
#include <uv.h>

#include "ops.h"
#include "store.h"

/* Runs `loop` until `until(data)` holds or `ms` pass; returns the last
 * value of `until`. A 5 ms timer re-checks conditions that depend on
 * files other processes write (traces). */
int of_run_until(uv_loop_t *loop, int (*until)(void *), void *data, int ms);

/* Stores a plan of the `n` (type, id) pairs of `res` (at most 8), the id
 * doubling as the name, and commits it through `ops`; its id into `id`. */
void of_put_plan(store_t *store, ops_t *ops, const char *const *res, size_t n,
                 char *id, size_t len);

/* What an ops_* call reported (of_started as its callback, the record as
 * its data). */
typedef struct of_started_s {
  int done, err;
  char msg[1024], op_id[64], cp_id[64];
} of_started_t;

/* ops_done_cb: fills the of_started_t; asserts it is reported once. */
void of_started(const ops_result_t *r, void *data);

/* Non-zero once the of_started_t `data` was reported. */
int of_started_done(void *data);

#endif /* SMAUG_OPS_FIXTURE_H */
