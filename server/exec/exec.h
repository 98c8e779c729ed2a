/*
 * exec.h - the executor: runs one operation's task DAG on a libuv loop.
 *
 * Event-driven, with no thread per task. A task whose dependencies are done
 * joins a ready queue (one FIFO per resource type); the dispatcher starts
 * calls while the operation's own in-flight limit allows and the plugin
 * limiter (limiter.h) grants a slot for the type's plugin and type (0 = no
 * limit, which is DESIGN.md's "completely parallel run"). The limiter is
 * shared by every operation and by discovery, so the plugins' limits hold
 * across all of them; a ready queue that finds no free slot waits its turn
 * in the limiter. No-op tasks complete at once without a call and without
 * using a slot.
 *
 * Calls go through an activity runner (exec_runner_t): the real one talks
 * to plugins over gRPC; tests and benchmarks use in-process fakes. Every
 * call has a deadline, and when a heartbeat window is set, silence (no
 * progress) past it fails the call as hung. Failures follow DESIGN.md §3:
 * UNAVAILABLE, RESOURCE_EXHAUSTED and ABORTED are retried with exponential
 * backoff and jitter within a retry budget of time (retry_budget_ms,
 * counted from the task's first such failure, restarted whenever an
 * attempt reports progress: the plugin was reachable again), and
 * optionally a count (max_attempts); DEADLINE_EXCEEDED up to
 * max_deadline_attempts; any other code fails the task. A task waiting out
 * a backoff is retried at once by exec_op_retry_now() (the plugin it waits
 * for is serving again). Retries keep the
 * idempotency key "<op>/<type>/<id>/<parallel|sync>" and increment the
 * attempt number. A failed task marks every task that depends on it
 * skipped; independent branches go on (or, with fail_fast, everything is
 * cancelled). Data passes as in DESIGN.md §2: P(r).state to S(r), the
 * children's S metadata and restored ids to the parent's S, and saved
 * metadata to restore and delete activities.
 *
 * Every task transition is reported as an event with a sequence number
 * (from 1), a timestamp and the attempt, enough to rebuild the run; the
 * last event is EXEC_EV_OPERATION_FINISHED. An operation can be seeded
 * before it starts with the outcome of an earlier, interrupted run (resume):
 * done tasks are not run again, tasks that were in flight are re-issued
 * with the same key and the next attempt number.
 *
 * Threading: everything, including every runner callback into this module,
 * runs on the loop thread. Errors: 0 or a negative libuv code.
 */
#ifndef SMAUG_EXEC_H
#define SMAUG_EXEC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dag.h"
#include "kv.h"
#include "limiter.h"

/* gRPC status codes, as plain ints, so that this module needs no gRPC. */
#define EXEC_CODE_OK                  0
#define EXEC_CODE_CANCELLED           1
#define EXEC_CODE_UNKNOWN             2
#define EXEC_CODE_INVALID_ARGUMENT    3
#define EXEC_CODE_DEADLINE_EXCEEDED   4
#define EXEC_CODE_NOT_FOUND           5
#define EXEC_CODE_PERMISSION_DENIED   7
#define EXEC_CODE_RESOURCE_EXHAUSTED  8
#define EXEC_CODE_FAILED_PRECONDITION 9
#define EXEC_CODE_ABORTED             10
#define EXEC_CODE_UNIMPLEMENTED       12
#define EXEC_CODE_INTERNAL            13
#define EXEC_CODE_UNAVAILABLE         14

/* "UNAVAILABLE" etc. (status_name, common/status.h); "UNKNOWN" for
 * others. Static. */
const char *exec_code_name(int code);

/* Task and resource status; values match smaug.v1.TaskStatus. */
typedef enum {
  EXEC_PENDING = 1,
  EXEC_QUEUED = 2,
  EXEC_RUNNING = 3, /* also: waiting out a retry backoff */
  EXEC_DONE = 4,
  EXEC_FAILED = 5,
  EXEC_SKIPPED = 6,
  EXEC_CANCELLED = 7
} exec_status_t;

/* Event kinds; values match smaug.v1.EventKind. */
typedef enum {
  EXEC_EV_QUEUED = 1,
  EXEC_EV_STARTED = 2,
  EXEC_EV_PROGRESS = 3,
  EXEC_EV_RETRIED = 4,
  EXEC_EV_DONE = 5,
  EXEC_EV_FAILED = 6,
  EXEC_EV_SKIPPED = 7,
  EXEC_EV_CANCELLED = 8,
  EXEC_EV_OPERATION_FINISHED = 9
} exec_event_kind_t;

/* How an operation ended. */
typedef enum {
  EXEC_SUCCEEDED = 0, /* every task done */
  EXEC_FAILED_OP = 1, /* some task failed (the rest ran, or fail-fast) */
  EXEC_CANCELLED_OP = 2
} exec_outcome_t;

#define EXEC_NO_TASK UINT32_MAX

/* One event. Pointers are valid during the callback only. */
typedef struct exec_event_s {
  uint64_t seq; /* 1, 2, 3, ... within the operation */
  exec_event_kind_t kind;
  uint32_t task; /* EXEC_NO_TASK for OPERATION_FINISHED */
  uint32_t node; /* graph node; EXEC_NO_TASK as above */
  dag_activity_t activity;
  uint32_t attempt;       /* 1 for the first try; 0 before any */
  int64_t time_ms;        /* opts.now_ms, default Unix time */
  uint64_t done, total;   /* PROGRESS */
  const char *unit;       /* PROGRESS; never NULL */
  const char *message;    /* reason or summary; never NULL */
  int code;               /* RETRIED/FAILED: the status code */
  uint32_t delay_ms;      /* RETRIED: backoff before the next attempt */
  exec_outcome_t outcome; /* OPERATION_FINISHED */
} exec_event_t;

typedef void (*exec_event_cb)(const exec_event_t *ev, void *data);

typedef struct exec_op_s exec_op_t;
typedef struct exec_activity_s exec_activity_t;

/* What a finished activity returns. All fields optional; copied. */
typedef struct exec_output_s {
  const void *state; /* P: handed to S(r) */
  size_t state_len;
  const kv_t *metadata;    /* S: saved and handed to the parents */
  const char *restored_id; /* S on restore */
  const char *message;     /* summary, for the log */
} exec_output_t;

/* The seam to the plugins. `start` begins the call for `a` and returns 0;
 * the runner then reports zero or more exec_activity_progress() and
 * exactly one exec_activity_complete() or exec_activity_fail(), on the loop
 * thread, possibly from inside `start`. A negative return means neither
 * will come (the attempt fails with INTERNAL). `cancel` asks to stop `a`:
 * it must still end with complete or fail (CANCELLED); from `cancel` on,
 * the runner may only call exec_activity_data, _complete and _fail on `a`
 * (after a deadline the operation may already be gone).
 * `cancel_operation` tells the plugins to drop all work of the operation
 * (CancelOperation). */
typedef struct exec_runner_s {
  int (*start)(void *rdata, exec_activity_t *a);
  void (*cancel)(void *rdata, exec_activity_t *a);
  void (*cancel_operation)(void *rdata, const char *op_id);
} exec_runner_t;

/* Per-type limits lookup: fills the plugin name serving `type` (copied;
 * NULL: none) and the limits it announces (0: none), which key the type's
 * slots in the limiter. Called once per type by exec_op_new(). */
typedef void (*exec_limits_cb)(void *data, const char *type,
                               const char **plugin, unsigned *plugin_limit,
                               unsigned *type_limit);

typedef struct exec_opts_s {
  unsigned max_in_flight; /* this operation's calls; 0: no limit */
  exec_limits_cb limits;  /* NULL: no per-plugin/per-type limits */
  void *limits_data;
  lim_t *limiter;        /* shared plugin limits, outliving the operation; NULL:
                            with `limits`, the operation's own limiter */
  uint32_t deadline_ms;  /* per call; 0: none. Default 3600000 */
  uint32_t heartbeat_ms; /* silence limit; 0: none. Default 0 */
  uint32_t retry_budget_ms;       /* transient codes: time. Default 30000;
                                     0: not retried */
  uint32_t max_attempts;          /* transient codes: count; 0 (default):
                                     the budget alone */
  uint32_t max_deadline_attempts; /* DEADLINE_EXCEEDED. Default 3 */
  uint32_t backoff_base_ms;       /* first retry delay. Default 100 */
  uint32_t backoff_max_ms;        /* cap. Default 5000 */
  int fail_fast;                  /* cancel everything on a failure */
  uint64_t jitter_seed;           /* backoff jitter PRNG seed */
  int64_t (*now_ms)(void *data);  /* event clock; NULL: Unix time */
  void *clock_data;
} exec_opts_t;

/* Fills `opts` with the defaults above. */
void exec_opts_init(exec_opts_t *opts);

/* Creates operation `op_id` (copied) of `dag` (which, with its graph, must
 * outlive the operation) on `loop`. `opts` is copied; NULL means defaults.
 * `runner` is copied; `rdata` is handed back to it. `*out` is released with
 * exec_op_free(). */
int exec_op_new(uv_loop_t *loop, const dag_t *dag, const char *op_id,
                const exec_opts_t *opts, const exec_runner_t *runner,
                void *rdata, exec_op_t **out);

/* Releases the operation: before exec_op_start, or from/after the done
 * callback. The memory goes on the next loop iteration (a handle closes),
 * so run the loop afterwards. Calls still held by the runner (after a
 * deadline) stay valid until it ends them. NULL is a no-op. */
void exec_op_free(exec_op_t *op);

/* Sets the event callback (NULL: none). Before exec_op_start. */
void exec_op_set_event_cb(exec_op_t *op, exec_event_cb cb, void *data);

/* Restore/delete: the metadata saved for `node` at protect time (copied).
 * Before exec_op_start. UV_EINVAL for a bad node, UV_EBUSY once started. */
int exec_op_set_saved_metadata(exec_op_t *op, uint32_t node, const kv_t *m);

/* Resume: marks `task` done with its earlier output (copied) and times.
 * Before exec_op_start. */
int exec_op_seed_done(exec_op_t *op, uint32_t task, const exec_output_t *out,
                      int64_t started_ms, int64_t finished_ms);

/* Resume: marks `task` failed earlier; its dependents will be skipped. */
int exec_op_seed_failed(exec_op_t *op, uint32_t task, int code,
                        const char *reason);

/* Resume: `task` was in flight at attempt `attempt`; it is re-issued with
 * the same idempotency key and attempt `attempt + 1`. */
int exec_op_seed_inflight(exec_op_t *op, uint32_t task, uint32_t attempt);

typedef void (*exec_done_cb)(exec_op_t *op, exec_outcome_t outcome, void *data);

/* Starts the run. `cb` runs exactly once, after the last task ended and
 * after the OPERATION_FINISHED event, never from inside this call.
 * UV_EBUSY if already started. */
int exec_op_start(exec_op_t *op, exec_done_cb cb, void *data);

/* Cancels: nothing new is dispatched; waiting tasks end CANCELLED; the
 * runner is asked to cancel every call in flight and then the operation.
 * The done callback follows once those calls ended. `reason` (may be NULL)
 * is copied into the events. UV_EALREADY if stopping or finished,
 * UV_EINVAL if not started. */
int exec_op_cancel(exec_op_t *op, const char *reason);

/* Retries now every task of the operation that waits out a backoff and
 * whose type is served by `plugin` (the name the limits callback gave),
 * instead of when its backoff ends: the caller saw the plugin serving
 * again. Returns how many tasks were woken. Loop thread. */
unsigned exec_op_retry_now(exec_op_t *op, const char *plugin);

const char *exec_op_id(const exec_op_t *op);
const dag_t *exec_op_dag(const exec_op_t *op);

/* Outcome; meaningful once the done callback ran. */
exec_outcome_t exec_op_outcome(const exec_op_t *op);

exec_status_t exec_op_task_status(const exec_op_t *op, uint32_t task);

/* Attempts made for `task` so far (including seeded ones). */
uint32_t exec_op_task_attempts(const exec_op_t *op, uint32_t task);

/* The result for one resource. Pointers are owned by the operation and
 * valid until exec_op_free. */
typedef struct exec_resource_s {
  exec_status_t status;    /* FAILED if either task failed; DONE when S is */
  const char *reason;      /* "" unless failed/skipped/cancelled */
  const kv_t *metadata;    /* S output */
  const char *restored_id; /* "" when none */
  const void *state;       /* P output */
  size_t state_len;
  int64_t started_ms;  /* first start of either task; 0: never */
  int64_t finished_ms; /* when the resource reached its end; 0: not yet */
} exec_resource_t;

/* Fills `*out` for graph node `node` (< graph_count). */
void exec_op_resource(const exec_op_t *op, uint32_t node, exec_resource_t *out);

/* --------------------------------------------- activity (runner side) */

exec_op_t *exec_activity_op(const exec_activity_t *a);
const char *exec_activity_op_id(const exec_activity_t *a);
dag_op_t exec_activity_kind(const exec_activity_t *a);
uint32_t exec_activity_task(const exec_activity_t *a);
dag_activity_t exec_activity_activity(const exec_activity_t *a);
const graph_node_t *exec_activity_node(const exec_activity_t *a);
uint32_t exec_activity_attempt(const exec_activity_t *a);

/* "<op>/<type>/<id>/<parallel|sync>"; owned by the activity. NULL on
 * out-of-memory. */
const char *exec_activity_idempotency_key(exec_activity_t *a);

/* S only: the state P(r) returned (NULL, 0 when none). */
const void *exec_activity_state(const exec_activity_t *a, size_t *len);

/* S only: the children of r, with the metadata and restored id (never
 * NULL; "" when none) their S returned. */
size_t exec_activity_child_count(const exec_activity_t *a);
const graph_node_t *exec_activity_child(const exec_activity_t *a, size_t i,
                                        const kv_t **metadata,
                                        const char **restored_id);

/* Restore/delete: the resource's saved metadata (empty map when none). */
const kv_t *exec_activity_saved_metadata(const exec_activity_t *a);

/* A slot for the runner's own per-call state. */
void exec_activity_set_data(exec_activity_t *a, void *data);
void *exec_activity_data(const exec_activity_t *a);

/* Reports progress; also a heartbeat. Strings may be NULL; copied into the
 * event. Ignored after a deadline detached the call. */
void exec_activity_progress(exec_activity_t *a, uint64_t done, uint64_t total,
                            const char *unit, const char *message);

/* Ends the call successfully with `out` (NULL: empty; copied). `a` is
 * invalid afterwards. */
void exec_activity_complete(exec_activity_t *a, const exec_output_t *out);

/* Ends the call with gRPC status `code` (non-zero) and `message` (may be
 * NULL; copied). `a` is invalid afterwards. */
void exec_activity_fail(exec_activity_t *a, int code, const char *message);

#endif /* SMAUG_EXEC_H */
