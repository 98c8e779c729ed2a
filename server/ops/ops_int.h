/*
 * ops_int.h - what the files of the operations core share: the operation
 * and core records, the watcher record, and the functions one file calls
 * in another. Not a contract for anyone outside server/ops/.
 *
 * The files by job:
 *   ops.c         lifecycle: create and free, the queue and the slots,
 *                 the live and dead lists, ids and times
 *   ops_start.c   protect, restore, delete and cancel: checks, the first
 *                 records, the answer
 *   ops_run.c     the run: graph build, DAG, executor, resume seeding,
 *                 the one file that asks the plugins (ops_plugins.h)
 *   ops_events.c  the event sequence: executor events into store writes,
 *                 progress coalescing
 *   ops_commit.c  the one commit path: flushing the batch, a failed
 *                 commit, final statuses and their retry, pruning
 *   ops_watch.c   the watchers: fan-out to sinks with bounded queues
 *   ops_recover.c resume or fail what a previous run left running
 *
 * Thread: the loop thread.
 */
#ifndef SMAUG_OPS_INT_H
#define SMAUG_OPS_INT_H

#include "dag.h"
#include "exec.h"
#include "graph.h"
#include "ops.h"
#include "store.h"

#define OPS_TIMEOUT_DEFAULT_MS 3600000
#define OPS_REASON_MAX         2048
#define OPS_WATCH_LOW          16  /* a lagging sink is refilled below this */
#define OPS_PROGRESS_MS        250 /* per task: 4 stored progress events/s */
#define OPS_FINAL_RETRY_MS     1000
#define OPS_PRUNE_EVERY        60   /* ticks between prunes */
#define OPS_PRUNE_BATCH        5000 /* events deleted per tick at most */

enum { OP_QUEUED, OP_BUILDING, OP_RUNNING, OP_DONE };

typedef struct op_s op_t;

/* One watcher. It follows `op` while the operation is in memory;
 * otherwise (a finished operation, or one not yet recovered) it reads
 * only the store. */
struct ops_watcher_s {
  ops_watcher_t *next;
  ops_t *ops;
  const ops_sink_t *sink;
  void *sink_data;
  op_t *op;       /* NULL: replay from the store, or parked before recovery */
  uint64_t last;  /* highest sequence queued on the sink */
  uint64_t bound; /* highest committed sequence it may be sent */
  uint64_t end;   /* the final event's sequence once committed, else 0 */
  int behind;     /* committed events after `last` wait in the store */
  uint32_t batch; /* 0: one event per message; else at most this many */
  char op_id[48];
};

/* Progress coalescing state of one task. */
typedef struct ops_prog_s {
  int64_t last_ms; /* loop time of the last stored progress; 0: none */
  int held;        /* `ev` waits for its turn */
  exec_event_t ev; /* the latest progress not stored, its strings below */
  char *unit, *message;
} ops_prog_t;

/* An event written in the open batch, packed, waiting for its commit. */
typedef struct ops_pend_s {
  struct ops_pend_s *next;
  uint64_t seq;
  size_t len;
  uint8_t data[];
} ops_pend_t;

struct op_s {
  ops_t *ops;
  op_t *next;  /* live list */
  op_t *qnext; /* queue */
  char id[48];
  char cp_id[48];
  char target_id[48]; /* restore id for a restore, else the checkpoint */
  char owner[48];     /* results owner */
  int kind;           /* DAG_OP_* */
  int fail_fast;
  int resume;
  int state;
  int finished; /* final status committed */
  int reap;     /* flush passes seen while dead; freed on the second */
  int cancel_requested;
  char cancel_reason[256];
  /* What it records and resumes with: the plan's parameters (protect;
   * delete: those its checkpoint was protected with) or the restore's. */
  Smaug__V1__ParameterSet *params;
  /* Restore: the parameters its checkpoint was protected with. */
  Smaug__V1__ParameterSet *plan_params;
  graph_t *g;
  dag_t *dag;
  exec_op_t *x;
  /* The plugins' runner (ops_plugins_t.runner_new), once running. */
  const exec_runner_t *runner;
  void *rctx;             /* the runner's context (ops_run.c) */
  uint64_t last_seq;      /* highest sequence written */
  uint64_t committed_seq; /* highest sequence committed */
  uint64_t commit_seq;    /* last_seq when the running commit was asked */
  uint64_t final_seq;     /* OPERATION_FINISHED's sequence once written */
  int n_watchers;
  ops_pend_t *pend_head, *pend_tail;
  ops_prog_t *prog; /* per DAG task, once running */
  uint32_t n_prog;
  /* The final status, kept until a commit takes it. */
  int final_retry;
  exec_outcome_t final_outcome;
  char *final_reason;
  char store_err[160]; /* set when a failed commit lost this op's writes */
  int store_stopped;   /* the executor was cancelled for it */
};

struct ops_s {
  uv_loop_t *loop;
  store_t *store;
  ops_plugins_t plugins; /* copied from the config */
  void *pdata;           /* its data */
  lim_t *limiter;
  char *bank_uri;
  int max_operations;
  int64_t call_timeout_ms;
  uint32_t heartbeat_ms;
  int64_t retry_budget_ms; /* < 0: exec's default */
  int closing;
  int running; /* BUILDING or RUNNING */
  op_t *live;
  op_t *qhead, *qtail;
  op_t *dead;              /* finished, freed on a later flush */
  ops_watcher_t *watchers; /* every open watcher */
  int recovered;
  uv_timer_t flush_timer;
  int flush_armed;
  int commit_running;    /* a store_commit() has not called back yet */
  uv_timer_t prog_timer; /* stores held progress events */
  int prog_armed;
  uv_timer_t tick_timer; /* final status retries, event pruning */
  unsigned ticks;
  int64_t event_retention_ms;
};

/* ops.c */
void ops_log_store_error(ops_t *ops, const char *what, int err);
/* Packs `m` into a malloc'd *buf (NULL when out of memory). */
void ops_pack(const ProtobufCMessage *m, uint8_t **buf, size_t *len);
op_t *op_find(const ops_t *ops, const char *id);
op_t *op_new(ops_t *ops, int kind); /* NULL when out of memory */
void op_free(op_t *op);
void ops_live_unlink(ops_t *ops, op_t *op);
/* Puts a new op on the live list and starts it, or queues it. */
void op_enqueue(op_t *op);
void ops_queue_remove(ops_t *ops, op_t *op);
/* Moves a finished or abandoned op to the dead list. */
void op_bury(op_t *op, int held_slot);
/* Ends an op that did not run to its end (queued, building, not resumed). */
void op_finish_early(op_t *op, exec_outcome_t outcome, const char *reason);

/* ops_start.c */
/* The parameters operation `op_id` ran with (NULL when it is not in the
 * store or ran without). Returns 0 or a store error. */
int ops_protected_params(ops_t *ops, const char *op_id,
                         Smaug__V1__ParameterSet **out);

/* ops_run.c */
/* Checks that every type in `res` has an available plugin: 0, or
 * OPS_EPRECOND / OPS_EUNAVAIL with the message in msg. */
int ops_check_plugins(const ops_t *ops, Smaug__V1__Resource *const *res,
                      size_t n, const char *field, char *msg, size_t len);
void ops_run_free(op_t *op); /* the runner context, after the executor */
void op_start(op_t *op);
/* A call to the plugin serving `type` failed UNAVAILABLE. */
void ops_recheck_plugin(ops_t *ops, const char *type);
/* With `on`: listens to plugins becoming available; without: stops. */
void ops_run_attach(ops_t *ops, int on);

/* ops_events.c */
/* Appends `ev` (numbered op->last_seq) to the batch and queues it for
 * watchers. Returns 0 or the error (the op is then stopped). */
int op_emit(op_t *op, Smaug__V1__OperationEvent *ev);
int ops_emit_resource_event(op_t *op, const graph_t *g, const exec_event_t *ev);
void op_store_lost(op_t *op, int err);
void ops_exec_event(const exec_event_t *ev, void *data); /* exec_event_cb */
void ops_prog_free(op_t *op);
/* Seeds op->x with the task outputs stored for the op (resume). */
int ops_seed_tasks(op_t *op);

/* ops_commit.c */
void ops_schedule_flush(ops_t *ops);
/* The reason an operation ended with `outcome`: the failed resources and
 * their reasons, cut to len bytes (still UTF-8); "" on success. */
void ops_summarize(const op_t *op, exec_outcome_t outcome, char *buf,
                   size_t len);
void op_final(op_t *op);
void ops_tick_cb(uv_timer_t *t);
/* Ends writes a caller made in the open batch, `err` being their result:
 * commits them (ops_flush) when err is 0. Returns 0, or OPS_EINTERNAL with
 * "store: ..." in msg (len bytes). */
int ops_commit(ops_t *ops, int err, char *msg, size_t len);

/* ops_watch.c */
/* Streams the op's committed pending events (up to committed_seq) to its
 * watchers and frees them, or with `drop` (their commit failed) discards
 * every pending event. */
void ops_deliver(op_t *op, int drop);
void ops_watcher_end(ops_watcher_t *w, int err, const char *msg);
void ops_watchers_end_all(ops_t *ops, int err, const char *msg);
/* Hands parked watchers of `op` to it (recovery). */
void ops_watchers_adopt(ops_t *ops, op_t *op);

#endif /* SMAUG_OPS_INT_H */
