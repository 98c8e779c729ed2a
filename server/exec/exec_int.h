/*
 * exec_int.h - the executor's private state, shared by its three files and
 * by nothing else (exec.h is the contract):
 *   - exec.c: the operation: creation, seeding, start, cancel, queries,
 *     events and the clock;
 *   - exec_sched.c: scheduling: the ready FIFOs, dispatch under the
 *     limits, the end of an attempt (retry with backoff, failure, skip
 *     downstream), stop and the pump;
 *   - exec_activity.c: one call in flight: its deadline and heartbeat, what
 *     the runner reads of it, progress, and its end.
 *
 * Functions named exec__* are internal; they run on the loop thread, like
 * everything in the executor.
 */
#ifndef SMAUG_EXEC_INT_H
#define SMAUG_EXEC_INT_H

#include "exec.h"

#define NIL UINT32_MAX

enum {
  TF_BACKOFF = 1, /* `busy` is an exec_wait_t */
  TF_QUEUED = 2   /* in a ready FIFO */
};

typedef struct exec_task_s {
  uint32_t deps_left;
  uint32_t next; /* FIFO link */
  uint8_t status;
  uint8_t flags;
  uint16_t attempt;
  uint16_t streak;      /* transient failures since the last progress */
  uint64_t retry_since; /* loop ms of the streak's first failure */
  void *busy; /* exec_activity_t while running, exec_wait_t in backoff */
} exec_task_t;

typedef struct exec_res_s {
  kv_t meta;
  char *restored_id;
  char *reason;
  void *state;
  size_t state_len;
  kv_t *saved;
  int64_t started_ms;
  int64_t finished_ms;
} exec_res_t;

typedef struct exec_type_s {
  uint32_t head, tail; /* ready FIFO */
  lim_key_t *key;      /* the type's plugin slots; NULL: no limits */
  lim_waiter_t wait;   /* the ready FIFO's place in the limiter */
  exec_op_t *op;
} exec_type_t;

struct exec_op_s {
  uv_loop_t *loop;
  const dag_t *dag;
  const graph_t *g;
  char *id;
  exec_opts_t opts;
  exec_runner_t runner;
  void *rdata;
  exec_event_cb on_event;
  void *event_data;
  exec_done_cb on_done;
  void *done_data;

  uint32_t ntasks;
  exec_task_t *tasks;
  exec_res_t *res;
  exec_type_t *types;
  uint32_t ntypes;
  lim_t *own_lim; /* limits without a shared limiter: this op's own */
  uint32_t noop_head, noop_tail;
  uint32_t rr; /* round-robin start over types */

  unsigned inflight; /* calls in flight (counted against max_in_flight) */
  unsigned waiting;  /* tasks in backoff */
  uint32_t terminal; /* tasks done, failed, skipped or cancelled */
  uint64_t seq;
  uint64_t rng;
  int64_t clock_offset;
  uint32_t *stack; /* scratch for skipping */

  uv_timer_t kick; /* first pump and the final callback */
  /* Deadlines and heartbeats of the calls in flight: one timer for the
   * operation, and two lists of its activities, by start (every call has
   * the same deadline_ms, so this is deadline order) and by last progress
   * (heartbeat order; a call moves to the tail on progress). The timer is
   * armed for the earliest head at most, and only while a list holds one. */
  uv_timer_t watch;
  exec_activity_t *dl_head, *dl_tail, *hb_head, *hb_tail;
  int open_handles; /* kick and watch: the op is freed when both closed */
  int started, stopping, finishing, finished, pumping, failed;
  exec_outcome_t outcome;
  char *stop_reason;
};

struct exec_activity_s {
  exec_activity_t *dl_prev, *dl_next; /* op's deadline list */
  exec_activity_t *hb_prev, *hb_next; /* op's heartbeat list */
  exec_op_t *op;
  uint32_t task;
  uint32_t attempt;
  uint64_t started; /* loop time */
  uint64_t last_beat;
  char *key;
  void *data;
  lim_key_t *slot; /* the limiter slot the call holds; NULL: none */
  /* `a` is freed when both are set: the runner ended the call, and the
   * task let go of it (the attempt ended, or the deadline passed). */
  uint8_t runner_done, orphan;
  uint8_t watched; /* in op's lists */
};

typedef struct exec_wait_s {
  uv_timer_t timer;
  exec_op_t *op;
  uint32_t task;
} exec_wait_t;

/* ---------------------------------------------------------- exec.c */

/* malloc'd printf; NULL on out-of-memory. */
char *exec__fmt(const char *fmt, ...);

/* Unix ms for events and timings (opts.now_ms when set). */
int64_t exec__now(const exec_op_t *op);

/* The operation's jitter generator (splitmix64). */
uint64_t exec__rand(exec_op_t *op);

/* Numbers and reports an event of task `t` (NIL: the operation). */
void exec__emit(exec_op_t *op, exec_event_kind_t kind, uint32_t t,
                const char *msg, int code, uint32_t delay);

/* Stores a successful output on the resource of task `t` (`out` may be
 * NULL). 0 or UV_ENOMEM, and nothing changed then. */
int exec__store_output(exec_op_t *op, uint32_t t, const exec_output_t *out);

/* ---------------------------------------------------- exec_sched.c */

/* Task `t` became ready: queue it and report it. The caller pumps. */
void exec__ready(exec_op_t *op, uint32_t t);

/* Marks every pending task downstream of failed task `t` as skipped. */
void exec__skip_downstream(exec_op_t *op, uint32_t t);

/* Stops the run: nothing new starts, waiting tasks are cancelled, calls in
 * flight are asked to stop. Once only. */
void exec__stop(exec_op_t *op, exec_outcome_t outcome, const char *reason);

/* The end of one attempt of task `t`: success, retry, failure or cancel.
 * `msg` and `out` may be NULL. The caller pumps. */
void exec__attempt_end(exec_op_t *op, uint32_t t, int code, const char *msg,
                       const exec_output_t *out);

/* Starts what may start; schedules the done callback once all is over.
 * Guarded against re-entry. */
void exec__pump(exec_op_t *op);

/* The limiter's grant callback for a type's ready FIFO (`data`). */
void exec__granted(lim_waiter_t *w, void *data);

/* ------------------------------------------------- exec_activity.c */

/* Gives back the limiter slot of `a`, if it still holds one. */
void exec__act_release(exec_activity_t *a);

/* Detaches `a` from its task and from the deadline and heartbeat watch. */
void exec__act_detach(exec_op_t *op, exec_activity_t *a);

/* Frees `a` once the runner ended it and its task let go of it. */
void exec__act_free_if_done(exec_activity_t *a);

/* Puts the new call `a` under the deadline and heartbeat watch (nothing
 * when the operation has neither). */
void exec__act_watch(exec_op_t *op, exec_activity_t *a);

/* The watch timer of an operation: ends the calls past their deadline or
 * heartbeat, earliest first. */
void exec__watch_fire(uv_timer_t *timer);

#endif /* SMAUG_EXEC_INT_H */
