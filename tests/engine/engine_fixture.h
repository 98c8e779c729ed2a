/*
 * engine_fixture.h - shared pieces of the executor and DAG suites: a
 * scripted in-process activity runner on libuv timers, an event recorder,
 * the seed example graph and a random DAG generator.
 *
 * The fake runner completes each call after a per-task duration, or fails
 * it with a scripted code for its first N attempts, or hangs until
 * cancelled. It checks data passing as it goes (S(r) must receive the state
 * "st:<type>#<id>" from P(r) unless P was a no-op, and each child's
 * metadata "id"), counting violations in `errors`, and records limits.
 */
#ifndef SMAUG_ENGINE_FIXTURE_H
#define SMAUG_ENGINE_FIXTURE_H

#include <stdint.h>
#include <uv.h>

#include "exec.h"

typedef struct fx_event_s {
  uint64_t seq;
  exec_event_kind_t kind;
  uint32_t task;
  uint32_t attempt;
  int64_t time_ms;
  int code;
  uint32_t delay_ms;
  char message[200];
} fx_event_t;

typedef struct fx_trace_s {
  fx_event_t *ev;
  size_t n, cap;
} fx_trace_t;

/* exec_event_cb that appends to a fx_trace_t. */
void fx_record(const exec_event_t *ev, void *data);
void fx_trace_free(fx_trace_t *tr);

typedef struct fx_runner_s {
  uv_loop_t *loop;
  const dag_t *dag;
  uint32_t ntasks;
  uint32_t *duration_ms;       /* per task; 0 completes on the next loop turn */
  uint8_t *fail_times;         /* fail the first N attempts ... */
  int *fail_code;              /* ... with this code */
  uint8_t *hang;               /* never answer until cancelled */
  uint32_t *progress_every_ms; /* send progress at this period (0: none) */
  uint32_t *starts;            /* start() calls per task */
  uint32_t *last_attempt;
  char **last_key; /* idempotency key of the latest start */
  unsigned inflight, max_inflight;
  unsigned *type_inflight, *type_max; /* per graph type index */
  unsigned cancels, cancel_ops;
  unsigned errors; /* data-passing violations */
  unsigned live;   /* calls not yet ended (for cancel checks) */
} fx_runner_t;

/* Allocates the per-task arrays (all zero) for `dag`. */
void fx_runner_init(fx_runner_t *f, uv_loop_t *loop, const dag_t *dag);
void fx_runner_free(fx_runner_t *f);

/* The runner vtable; pass the fx_runner_t as rdata. */
extern const exec_runner_t fx_runner_vtable;

/* Runs `loop` until nothing is left, then asserts uv_loop_close == 0. */
void fx_loop_finish(uv_loop_t *loop);

/* A random resource DAG: `n` nodes in `depth` levels over `ntypes` types
 * ("t0".."t<k>"), each non-root node with one parent in the level above
 * and, with probability `share_pct`, a second parent from any level above.
 * Validated. */
graph_t *fx_random_graph(uint64_t *rng, uint32_t n, uint32_t depth,
                         uint32_t ntypes, unsigned share_pct);

uint64_t fx_rand(uint64_t *state);

/* The seed example: p1 -> s1 -> {v1, v2, i1} over smaug.project,
 * smaug.server, smaug.volume and smaug.image; node indices 0..4. Validated
 * (asserts on any failure); the caller frees it. */
graph_t *fx_seed_graph(void);

#endif
