/*
 * api_op.c - protect, restore and delete operations (see api_op.h).
 *
 * An operation goes QUEUED -> BUILDING (graph) -> RUNNING (executor) ->
 * DONE. Whatever the executor reports is turned into store writes inside
 * the open batch; the flush timer commits them and then streams the new
 * events to watchers, so a client never sees an event that a crash could
 * take back. Results are keyed by their owner: the checkpoint id for a
 * protect, the restore id for a restore, the operation id for a delete.
 * Task outputs (what resume needs) are keyed by operation id, each payload
 * prefixed with the task's start and end times.
 *
 * Memory stays bounded whatever the watchers do: each watch stream holds at
 * most WATCH_QUEUE events queued for sending. A watcher that falls behind
 * is not buffered for: it is refilled from the store, a page at a time, as
 * its stream drains. A watcher that asked for batches (max_batch) has at
 * most one message queued, of up to WATCH_QUEUE events: what is committed
 * when its previous message has been sent goes out together, so a busy
 * operation costs it one message per send, not one per event. Progress
 * events are coalesced per task (one stored per PROGRESS_INTERVAL_MS at
 * most, the latest value winning, and the last one always stored before
 * the task's next state change); every other event is stored. Events of
 * finished operations older than the retention are pruned in the
 * background.
 *
 * A commit that fails (a full disk) fails the operations whose writes it
 * lost, with the store's error as the reason; an operation's final status
 * is written again every FINAL_RETRY_MS until a commit takes it, so that
 * nothing stays `protecting` once the disk has room again.
 */
#include "api_op.h"

#include <inttypes.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_graph.h"
#include "api_runner.h"
#include "api_valid.h"
#include "bank_saved.h"
#include "dag.h"
#include "exec.h"
#include "rt_log.h"
#include "rt_wire.h"

#define OP_TIMEOUT_DEFAULT_MS 3600000
#define REASON_MAX            2048
#define WATCH_QUEUE           64  /* events queued on one stream at most */
#define WATCH_LOW             16  /* a lagging stream is refilled below this */
#define WATCH_BATCH_MAX       64  /* max_batch's cap; <= WATCH_QUEUE */
#define PROGRESS_INTERVAL_MS  250 /* per task: 4 stored progress events/s */
#define FINAL_RETRY_MS        1000
#define PRUNE_EVERY           60   /* ticks (FINAL_RETRY_MS) between prunes */
#define PRUNE_BATCH           5000 /* events deleted per tick at most */

enum { OP_QUEUED, OP_BUILDING, OP_RUNNING, OP_DONE };

typedef struct op_s op_t;

/* One WatchOperation stream. It follows `op` while the operation is in
 * memory; otherwise (a finished operation, or one not yet recovered) it
 * reads only the store. */
typedef struct watcher_s {
  struct watcher_s *next;
  rt_call_t *call;
  api_ops_t *ops;
  op_t *op;       /* NULL: replay from the store, or parked before recovery */
  uint64_t last;  /* highest sequence queued on the stream */
  uint64_t bound; /* highest committed sequence it may be sent */
  uint64_t end;   /* the final event's sequence once committed, else 0 */
  int behind;     /* committed events after `last` wait in the store */
  uint32_t batch; /* 0: one event per message; else at most this many */
  char op_id[48];
} watcher_t;

/* Progress coalescing state of one task. */
typedef struct prog_s {
  int64_t last_ms; /* loop time of the last stored progress; 0: none */
  int held;        /* `ev` waits for its turn */
  exec_event_t ev; /* the latest progress not stored, its strings below */
  char *unit, *message;
} prog_t;

typedef struct pend_s {
  struct pend_s *next;
  uint64_t seq;
  size_t len;
  uint8_t data[];
} pend_t;

struct op_s {
  api_ops_t *ops;
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
  api_runner_ctx_t rctx;
  uint64_t last_seq;      /* highest sequence written */
  uint64_t committed_seq; /* highest sequence committed */
  uint64_t final_seq;     /* OPERATION_FINISHED's sequence once written */
  int n_watchers;
  pend_t *pend_head, *pend_tail;
  prog_t *prog; /* per DAG task, once running */
  uint32_t n_prog;
  /* The final status, kept until a commit takes it. */
  int final_retry;
  exec_outcome_t final_outcome;
  char *final_reason;
  char store_err[160]; /* set when a failed commit lost this op's writes */
  int store_stopped;   /* the executor was cancelled for it */
};

struct api_ops_s {
  rt_t *rt;
  store_t *store;
  reg_t *reg;
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
  op_t *dead;          /* finished, freed on the next flush */
  watcher_t *watchers; /* every open watch stream */
  int recovered;
  uv_timer_t flush_timer;
  int flush_armed;
  uv_timer_t prog_timer; /* stores held progress events */
  int prog_armed;
  uv_timer_t tick_timer; /* final status retries, event pruning */
  unsigned ticks;
  int64_t event_retention_ms;
};

static void op_start(op_t *op);
static void recheck_plugin(api_ops_t *ops, const char *type);
static void plugin_available(reg_plugin_t *p, void *data);
static void op_finish_early(op_t *op, exec_outcome_t outcome,
                            const char *reason);
static void schedule_flush(api_ops_t *ops);
static void op_bury(op_t *op, int held_slot);
static void op_final(op_t *op);
static void watcher_end(watcher_t *w, grpc_status_code code, const char *msg);

/* ------------------------------------------------------------- helpers */

void api_new_id(const char *prefix, char *buf, size_t len) {
  unsigned char r[16];
  if (RAND_bytes(r, sizeof(r)) != 1) {
    /* Never expected; fall back to time and address bits, still unique
     * enough within one process. */
    uint64_t t = (uint64_t)api_now_ms() ^ (uint64_t)(uintptr_t)buf;
    for (size_t i = 0; i < sizeof(r); i++)
      r[i] = (unsigned char)(t >> (8 * (i % 8))) ^ (unsigned char)rand();
  }
  int k = snprintf(buf, len, "%s-", prefix);
  for (size_t i = 0; i < sizeof(r) && k > 0 && (size_t)k + 2 < len; i++)
    k += snprintf(buf + k, len - (size_t)k, "%02x", r[i]);
}

int64_t api_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *api_checkpoint_status_name(int status) {
  switch (status) {
  case SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_PROTECTING:
    return "protecting";
  case SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_AVAILABLE:
    return "available";
  case SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_ERROR:
    return "error";
  case SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_DELETING:
    return "deleting";
  case SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_DELETED:
    return "deleted";
  case SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_ERROR_DELETING:
    return "error-deleting";
  default:
    return "unspecified";
  }
}

const char *api_restore_status_name(int status) {
  switch (status) {
  case SMAUG__V1__RESTORE_STATUS__RESTORE_STATUS_IN_PROGRESS:
    return "in_progress";
  case SMAUG__V1__RESTORE_STATUS__RESTORE_STATUS_SUCCESS:
    return "success";
  case SMAUG__V1__RESTORE_STATUS__RESTORE_STATUS_FAIL:
    return "fail";
  default:
    return "unspecified";
  }
}

static void pack_alloc(const ProtobufCMessage *m, uint8_t **buf, size_t *len) {
  *len = protobuf_c_message_get_packed_size(m);
  *buf = malloc(*len ? *len : 1);
  if (*buf)
    protobuf_c_message_pack(m, *buf);
}

static void *unpack_copy(const ProtobufCMessageDescriptor *d,
                         const ProtobufCMessage *m) {
  uint8_t *buf;
  size_t len;
  pack_alloc(m, &buf, &len);
  if (buf == NULL)
    return NULL;
  void *r = protobuf_c_message_unpack(d, NULL, len, buf);
  free(buf);
  return r;
}

static void log_store_error(api_ops_t *ops, const char *what, int err) {
  rt_log(RT_LOG_ERROR, "api", "store write failed",
         "what=%s error=\"%s\" detail=\"%s\"", what, uv_strerror(err),
         store_errmsg(ops->store));
}

/* ------------------------------------------------------------ lifecycle */

static op_t *op_find(const api_ops_t *ops, const char *id) {
  for (op_t *op = ops->live; op; op = op->next)
    if (strcmp(op->id, id) == 0)
      return op;
  return NULL;
}

int api_ops_checkpoint_busy(const api_ops_t *ops, const char *checkpoint_id) {
  for (op_t *op = ops->live; op; op = op->next)
    if (!op->finished && strcmp(op->cp_id, checkpoint_id) == 0)
      return 1;
  return 0;
}

static op_t *op_new(api_ops_t *ops, int kind) {
  op_t *op = calloc(1, sizeof(*op));
  if (op == NULL)
    return NULL;
  op->ops = ops;
  op->kind = kind;
  op->rctx.reg = ops->reg;
  op->rctx.bank_uri = ops->bank_uri;
  op->rctx.checkpoint_id = op->cp_id;
  op->rctx.timeout_ms = ops->call_timeout_ms;
  op->rctx.stopping = &ops->closing;
  op->rctx.cancel_reason = op->cancel_reason;
  return op;
}

static void op_free(op_t *op) {
  exec_op_free(op->x); /* normally already freed; NULL-safe */
  dag_free(op->dag);
  graph_free(op->g);
  if (op->params)
    protobuf_c_message_free_unpacked(&op->params->base, NULL);
  if (op->plan_params)
    protobuf_c_message_free_unpacked(&op->plan_params->base, NULL);
  for (pend_t *p = op->pend_head, *n; p; p = n) {
    n = p->next;
    free(p);
  }
  for (uint32_t i = 0; i < op->n_prog; i++) {
    free(op->prog[i].unit);
    free(op->prog[i].message);
  }
  free(op->prog);
  free(op->final_reason);
  free(op);
}

static void live_unlink(api_ops_t *ops, op_t *op) {
  for (op_t **pp = &ops->live; *pp; pp = &(*pp)->next)
    if (*pp == op) {
      *pp = op->next;
      return;
    }
}

static void enqueue(op_t *op) {
  api_ops_t *ops = op->ops;
  op->next = ops->live;
  ops->live = op;
  op->state = OP_QUEUED;
  if (ops->running < ops->max_operations) {
    op_start(op);
    return;
  }
  op->qnext = NULL;
  if (ops->qtail)
    ops->qtail->qnext = op;
  else
    ops->qhead = op;
  ops->qtail = op;
}

static void queue_remove(api_ops_t *ops, op_t *op) {
  op_t *prev = NULL;
  for (op_t *q = ops->qhead; q; prev = q, q = q->qnext)
    if (q == op) {
      if (prev)
        prev->qnext = q->qnext;
      else
        ops->qhead = q->qnext;
      if (ops->qtail == q)
        ops->qtail = prev;
      return;
    }
}

/* Called when an operation stops using a slot. */
static void slot_released(api_ops_t *ops) {
  ops->running--;
  while (!ops->closing && ops->qhead && ops->running < ops->max_operations) {
    op_t *op = ops->qhead;
    ops->qhead = op->qnext;
    if (ops->qhead == NULL)
      ops->qtail = NULL;
    op_start(op);
  }
}

/* ----------------------------------------------------------- final state */

static const char *final_name(const op_t *op, exec_outcome_t outcome) {
  int ok = outcome == EXEC_SUCCEEDED;
  switch (op->kind) {
  case DAG_OP_PROTECT:
    return ok ? "available" : "error";
  case DAG_OP_DELETE:
    return ok ? "deleted" : "error-deleting";
  default:
    return ok ? "success" : "fail";
  }
}

/* Builds the summary of failed resources into buf. */
static void summarize(const op_t *op, exec_outcome_t outcome, char *buf,
                      size_t len) {
  buf[0] = '\0';
  if (outcome == EXEC_SUCCEEDED)
    return;
  size_t k = 0;
  uint32_t failed = 0, total = op->g ? graph_count(op->g) : 0;
  if (outcome == EXEC_CANCELLED_OP)
    k += (size_t)snprintf(buf, len, "cancelled%s%s",
                          op->cancel_reason[0] ? ": " : "", op->cancel_reason);
  for (uint32_t i = 0; op->x && i < total; i++) {
    exec_resource_t r;
    exec_op_resource(op->x, i, &r);
    if (r.status != EXEC_FAILED)
      continue;
    failed++;
    if (k + 16 < len) {
      const graph_node_t *n = graph_node(op->g, i);
      int w = snprintf(buf + k, len - k, "%s%s#%s: %s", k ? "; " : "", n->type,
                       n->id, r.reason);
      if (w > 0)
        k += (size_t)w;
    }
  }
  if (k >= len)
    k = len - 1;
  if (outcome == EXEC_FAILED_OP && failed) {
    char head[96];
    snprintf(head, sizeof(head), "%u of %u resources failed: ", failed, total);
    size_t hl = strlen(head);
    if (hl + k + 1 > len)
      k = len - hl - 1;
    memmove(buf + hl, buf, k);
    memcpy(buf, head, hl);
    buf[hl + k] = '\0';
  }
  rt_utf8_repair(buf); /* the cuts above may split a character */
}

/* Queues the final status of the operation's object. The store applies
 * it to the latest version it has queued (the graph on_built wrote
 * included), so nothing is read back here. */
static int write_final(op_t *op, exec_outcome_t outcome, const char *reason) {
  api_ops_t *ops = op->ops;
  int err, ok = outcome == EXEC_SUCCEEDED;
  if (op->kind == DAG_OP_RESTORE)
    err = store_restore_set_status(
        ops->store, op->target_id,
        ok ? SMAUG__V1__RESTORE_STATUS__RESTORE_STATUS_SUCCESS
           : SMAUG__V1__RESTORE_STATUS__RESTORE_STATUS_FAIL,
        api_now_ms(), reason);
  else if (op->kind == DAG_OP_PROTECT)
    err = store_checkpoint_set_status(
        ops->store, op->cp_id,
        ok ? SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_AVAILABLE
           : SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_ERROR,
        api_now_ms(), reason);
  else
    err = store_checkpoint_set_status(
        ops->store, op->cp_id,
        ok ? SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_DELETED
           : SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_ERROR_DELETING,
        0, reason);
  if (err == 0)
    err = store_op_set_running(ops->store, op->id, 0);
  return err;
}

/* ----------------------------------------------------------------- events */

static void pend_push(op_t *op, const Smaug__V1__OperationEvent *ev) {
  size_t len = protobuf_c_message_get_packed_size(&ev->base);
  pend_t *p = malloc(sizeof(*p) + len);
  if (p == NULL)
    return; /* the watcher will miss it; logged below */
  p->next = NULL;
  p->seq = ev->sequence;
  p->len = len;
  protobuf_c_message_pack(&ev->base, p->data);
  if (op->pend_tail)
    op->pend_tail->next = p;
  else
    op->pend_head = p;
  op->pend_tail = p;
}

/* Marks a running op whose records the store lost with `err`: the next
 * flush stops it (never from inside an executor callback), and it ends in
 * error with the store's message as the reason. */
static void op_store_lost(op_t *op, int err) {
  if (op->finished || op->store_err[0])
    return;
  snprintf(op->store_err, sizeof(op->store_err), "store: %s", uv_strerror(err));
  rt_log(RT_LOG_ERROR, "api", "operation stopped: its records were lost",
         "op=%s error=\"%s\"", op->id, op->store_err);
  schedule_flush(op->ops);
}

/* Appends `ev` (numbered op->last_seq) to the store and queues it for
 * watchers. On failure the event is neither kept nor streamed, its
 * sequence is given back, and the op is stopped. Returns 0 or the error. */
static int emit(op_t *op, Smaug__V1__OperationEvent *ev) {
  api_ops_t *ops = op->ops;
  int err = store_batch(ops->store);
  if (err == 0)
    err = store_event_append(ops->store, ev);
  if (err) {
    log_store_error(ops, "event", err);
    op->last_seq--;
    op_store_lost(op, err);
    return err;
  }
  if (op->n_watchers)
    pend_push(op, ev);
  schedule_flush(ops);
  return 0;
}

static void result_write(op_t *op, uint32_t node) {
  exec_resource_t r;
  exec_op_resource(op->x, node, &r);
  Smaug__V1__Resource res;
  Smaug__V1__ResourceResult rr = SMAUG__V1__RESOURCE_RESULT__INIT;
  if (api_resource_of(graph_node(op->g, node), &res) != 0)
    return;
  size_t nm = r.metadata ? r.metadata->n : 0;
  Smaug__V1__ResourceResult__MetadataEntry *me = calloc(nm + 1, sizeof(*me));
  Smaug__V1__ResourceResult__MetadataEntry **mp = calloc(nm + 1, sizeof(*mp));
  if (me && mp) {
    for (size_t i = 0; i < nm; i++) {
      smaug__v1__resource_result__metadata_entry__init(&me[i]);
      me[i].key = r.metadata->items[i].key;
      me[i].value = r.metadata->items[i].val;
      mp[i] = &me[i];
    }
    rr.resource = &res;
    rr.status = (Smaug__V1__TaskStatus)r.status;
    rr.reason = (char *)(r.reason ? r.reason : "");
    rr.n_metadata = nm;
    rr.metadata = mp;
    rr.restored_id = (char *)(r.restored_id ? r.restored_id : "");
    rr.started_at_ms = r.started_ms;
    rr.finished_at_ms = r.finished_ms;
    int err = store_result_put(op->ops->store, op->owner, &rr);
    if (err)
      log_store_error(op->ops, "result", err);
  }
  free(me);
  free(mp);
  api_resource_free(&res);
}

/* Queues the output of `task`: its times, its status, and as payload the
 * P state, the packed SyncResult or the failure's reason. */
static void task_write(op_t *op, uint32_t task, exec_status_t status,
                       const char *reason) {
  exec_resource_t r;
  uint32_t node = dag_task_node(task);
  exec_op_resource(op->x, node, &r);
  uint8_t *body = NULL;
  size_t blen = 0;
  if (status == EXEC_FAILED) {
    blen = strlen(reason ? reason : "");
    body = malloc(blen + 1);
    if (body)
      memcpy(body, reason ? reason : "", blen);
  } else if (dag_task_activity(task) == DAG_PARALLEL) {
    blen = r.state ? r.state_len : 0;
    body = malloc(blen + 1);
    if (body && blen)
      memcpy(body, r.state, blen);
  } else {
    Smaug__V1__SyncResult sr = SMAUG__V1__SYNC_RESULT__INIT;
    size_t nm = r.metadata ? r.metadata->n : 0;
    Smaug__V1__SyncResult__MetadataEntry *me = calloc(nm + 1, sizeof(*me));
    Smaug__V1__SyncResult__MetadataEntry **mp = calloc(nm + 1, sizeof(*mp));
    if (me && mp) {
      for (size_t i = 0; i < nm; i++) {
        smaug__v1__sync_result__metadata_entry__init(&me[i]);
        me[i].key = r.metadata->items[i].key;
        me[i].value = r.metadata->items[i].val;
        mp[i] = &me[i];
      }
      sr.n_metadata = nm;
      sr.metadata = mp;
      sr.restored_id = (char *)(r.restored_id ? r.restored_id : "");
      pack_alloc(&sr.base, &body, &blen);
    }
    free(me);
    free(mp);
  }
  if (body == NULL) {
    log_store_error(op->ops, "task", UV_ENOMEM);
    return;
  }
  const graph_node_t *n = graph_node(op->g, node);
  store_task_t t = {.activity = (int)dag_task_activity(task),
                    .type = n->type,
                    .id = n->id,
                    .status = (int)status,
                    .started_at_ms = r.started_ms,
                    .finished_at_ms = r.finished_ms,
                    .payload = body,
                    .len = blen};
  int err = store_task_put(op->ops->store, op->id, &t);
  if (err)
    log_store_error(op->ops, "task", err);
  free(body);
}

/* Appends the OperationEvent of `ev` (any kind but OPERATION_FINISHED),
 * about node ev->node of `g`, to the store and queues it for watchers: the
 * one form of per-resource events, for the executor's events (op_event)
 * and for the results of a graph build that failed
 * (write_unbuilt_results). Returns 0 or an error (the event is then
 * neither stored nor streamed). */
static int emit_resource_event(op_t *op, const graph_t *g,
                               const exec_event_t *ev) {
  Smaug__V1__OperationEvent e = SMAUG__V1__OPERATION_EVENT__INIT;
  Smaug__V1__Resource res = SMAUG__V1__RESOURCE__INIT;
  Smaug__V1__Progress pr = SMAUG__V1__PROGRESS__INIT;
  int err = api_resource_of(graph_node(g, ev->node), &res);
  if (err != 0)
    return err;
  e.sequence = ++op->last_seq;
  e.operation_id = op->id;
  e.kind = (Smaug__V1__EventKind)ev->kind;
  e.attempt = ev->attempt;
  e.time_ms = ev->time_ms;
  e.message = (char *)ev->message;
  e.resource = &res;
  e.activity = (Smaug__V1__Activity)ev->activity;
  if (ev->kind == EXEC_EV_PROGRESS) {
    pr.done = ev->done;
    pr.total = ev->total;
    pr.unit = (char *)ev->unit;
    pr.message = (char *)ev->message;
    e.progress = &pr;
  }
  err = emit(op, &e);
  api_resource_free(&res);
  return err;
}

/* Turns one executor event into store writes in the open batch. */
static void op_event(op_t *op, const exec_event_t *ev) {
  api_ops_t *ops = op->ops;
  if (ev->kind == EXEC_EV_RETRIED && ev->code == EXEC_CODE_UNAVAILABLE)
    recheck_plugin(ops, graph_node(op->g, ev->node)->type);
  if (store_batch(ops->store) != 0)
    log_store_error(ops, "batch", UV_EIO);

  if (ev->kind == EXEC_EV_OPERATION_FINISHED) {
    char reason[REASON_MAX];
    exec_outcome_t outcome = ev->outcome;
    summarize(op, outcome, reason, sizeof(reason));
    if (op->store_err[0]) {
      /* The run was stopped because its records could not be written. */
      outcome = EXEC_FAILED_OP;
      snprintf(reason, sizeof(reason), "INTERNAL: %s", op->store_err);
    }
    op->finished = 1;
    op->final_outcome = outcome;
    free(op->final_reason);
    op->final_reason = strdup(reason);
    op_final(op);
    return;
  }

  if (emit_resource_event(op, op->g, ev) != 0)
    return;

  switch (ev->kind) {
  case EXEC_EV_DONE:
    task_write(op, ev->task, EXEC_DONE, NULL);
    result_write(op, ev->node);
    break;
  case EXEC_EV_FAILED:
    task_write(op, ev->task, EXEC_FAILED, ev->message);
    result_write(op, ev->node);
    break;
  case EXEC_EV_STARTED:
  case EXEC_EV_SKIPPED:
  case EXEC_EV_CANCELLED:
    result_write(op, ev->node);
    break;
  default:
    break;
  }
}

static void prog_clear(prog_t *pg) {
  pg->held = 0;
  free(pg->unit);
  free(pg->message);
  pg->unit = pg->message = NULL;
}

/* Stores the progress `pg` holds, if any. */
static void prog_store(op_t *op, prog_t *pg, int64_t now) {
  if (!pg->held)
    return;
  exec_event_t ev = pg->ev;
  ev.unit = pg->unit ? pg->unit : "";
  ev.message = pg->message ? pg->message : "";
  pg->last_ms = now;
  op_event(op, &ev);
  prog_clear(pg);
}

static void prog_timer_cb(uv_timer_t *t) {
  api_ops_t *ops = t->data;
  int64_t now = (int64_t)uv_now(t->loop);
  int64_t next = -1;
  ops->prog_armed = 0;
  for (op_t *op = ops->live; op; op = op->next)
    for (uint32_t i = 0; i < op->n_prog && !op->finished; i++) {
      prog_t *pg = &op->prog[i];
      if (!pg->held)
        continue;
      int64_t due = pg->last_ms + PROGRESS_INTERVAL_MS - now;
      if (due <= 0)
        prog_store(op, pg, now);
      else if (next < 0 || due < next)
        next = due;
    }
  if (next >= 0) {
    ops->prog_armed = 1;
    uv_timer_start(&ops->prog_timer, prog_timer_cb, (uint64_t)next, 0);
  }
}

/* Keeps `ev` as the task's latest progress, to be stored when its turn
 * comes. Returns 0, or UV_ENOMEM (the event is then dropped). */
static int prog_hold(api_ops_t *ops, prog_t *pg, const exec_event_t *ev,
                     int64_t now) {
  char *unit = strdup(ev->unit), *msg = strdup(ev->message);
  if (unit == NULL || msg == NULL) {
    free(unit);
    free(msg);
    return UV_ENOMEM;
  }
  prog_clear(pg);
  pg->ev = *ev;
  pg->unit = unit;
  pg->message = msg;
  pg->held = 1;
  if (!ops->prog_armed && !ops->closing) {
    ops->prog_armed = 1;
    int64_t due = pg->last_ms + PROGRESS_INTERVAL_MS - now;
    uv_timer_start(&ops->prog_timer, prog_timer_cb, due > 0 ? (uint64_t)due : 0,
                   0);
  }
  return 0;
}

static void on_exec_event(const exec_event_t *ev, void *data) {
  op_t *op = data;
  api_ops_t *ops = op->ops;
  if (ops->closing)
    return; /* stopping: the next start resumes from the store */
  prog_t *pg = ev->task < op->n_prog ? &op->prog[ev->task] : NULL;
  int64_t now = (int64_t)uv_now(rt_loop(ops->rt));
  if (pg && ev->kind == EXEC_EV_PROGRESS) {
    if (pg->last_ms && now - pg->last_ms < PROGRESS_INTERVAL_MS) {
      prog_hold(ops, pg, ev, now);
      return;
    }
    prog_clear(pg); /* an older value the timer has not stored yet */
    pg->last_ms = now;
  } else if (pg) {
    prog_store(op, pg, now); /* the latest value before the state change */
  }
  op_event(op, ev);
}

static void on_exec_done(exec_op_t *x, exec_outcome_t outcome, void *data) {
  op_t *op = data;
  exec_op_free(x);
  op->x = NULL;
  /* The DAG and graph go with the op, once the executor's handle closed. */
  op_bury(op, 1);
}

/* --------------------------------------------------------- flush, watch */

static void watcher_unlink(watcher_t *w) {
  for (watcher_t **pp = &w->ops->watchers; *pp; pp = &(*pp)->next)
    if (*pp == w) {
      *pp = w->next;
      break;
    }
  if (w->op)
    w->op->n_watchers--;
}

/* Ends the stream (queued events are still sent) and frees `w`. */
static void watcher_end(watcher_t *w, grpc_status_code code, const char *msg) {
  watcher_unlink(w);
  rt_call_on_sent(w->call, NULL, NULL);
  rt_call_finish(w->call, code, msg, NULL);
  free(w);
}

static void watcher_end_all(api_ops_t *ops, grpc_status_code code,
                            const char *msg) {
  while (ops->watchers)
    watcher_end(ops->watchers, code, msg);
}

/* How many more events `w`'s stream may take now: what WATCH_QUEUE leaves
 * of one message per event, or for a batched watcher a whole batch once
 * its previous message has been sent. */
_Static_assert(WATCH_BATCH_MAX <= WATCH_QUEUE,
               "a batch counts against the queue bound");
static uint32_t watcher_room(const watcher_t *w) {
  size_t queued = rt_call_send_queued(w->call);
  if (w->batch)
    return queued ? 0 : w->batch;
  return queued >= WATCH_QUEUE ? 0 : (uint32_t)(WATCH_QUEUE - queued);
}

/* Queues the `n` events `evs` (in order, at most watcher_room()) on the
 * stream: one message each, or one message for all of a batched watcher. */
static void watcher_send(watcher_t *w, Smaug__V1__OperationEvent **evs,
                         size_t n) {
  Smaug__V1__WatchOperationResponse r =
      SMAUG__V1__WATCH_OPERATION_RESPONSE__INIT;
  if (n == 0)
    return;
  if (w->batch) {
    r.n_events = n;
    r.events = evs;
    rt_call_send(w->call, &r.base);
  } else {
    for (size_t i = 0; i < n; i++) {
      r.event = evs[i];
      rt_call_send(w->call, &r.base);
    }
  }
  w->last = evs[n - 1]->sequence;
}

/* Refills a lagging stream from the store, as far as watcher_room() lets
 * it and no further than `bound`, and ends it once its final event is
 * queued. Returns 1 when `w` was ended (and freed). */
static int watcher_pump(watcher_t *w) {
  api_ops_t *ops = w->ops;
  while (w->behind) {
    uint32_t room = watcher_room(w);
    if (room == 0)
      break;
    Smaug__V1__OperationEvent **evs;
    size_t n = 0, i = 0;
    int err = store_event_list(ops->store, w->op_id, w->last, room, &evs, &n);
    if (err) {
      char msg[256];
      snprintf(msg, sizeof(msg), "store: %s: %s", uv_strerror(err),
               store_errmsg(ops->store));
      watcher_end(w, GRPC_STATUS_INTERNAL, msg);
      return 1;
    }
    while (i < n && evs[i]->sequence <= w->bound)
      i++;
    watcher_send(w, evs, i);
    store_msgs_free(evs, n);
    if (i < room)
      w->behind = 0; /* caught up with what is committed */
  }
  if (w->end && w->last >= w->end) {
    watcher_end(w, GRPC_STATUS_OK, NULL);
    return 1;
  }
  return 0;
}

static void watch_sent(rt_call_t *call, void *data) {
  watcher_t *w = data;
  size_t low = w->batch ? 0 : WATCH_LOW;
  if (w->behind && rt_call_send_queued(call) <= low)
    watcher_pump(w);
}

/* Streams the op's pending events to its watchers, or with `drop` (their
 * commit failed) discards them: nothing uncommitted is ever streamed. A
 * watcher whose stream is full is marked behind and refilled from the
 * store later, so nothing is buffered for it here. Once the final event
 * is committed, the watchers stop following the op: they read the rest
 * from the store, and the op can be freed. */
static void deliver(op_t *op, int drop) {
  api_ops_t *ops = op->ops;
  for (watcher_t *w = ops->watchers, *wn; w && !drop; w = wn) {
    wn = w->next;
    if (w->op != op)
      continue;
    if (!w->behind) {
      Smaug__V1__OperationEvent *evs[WATCH_QUEUE];
      uint32_t room = watcher_room(w), n = 0;
      for (pend_t *p = op->pend_head; p; p = p->next) {
        if (p->seq <= w->last)
          continue;
        if (n == room) {
          /* A batched stream waits for its message to be sent, as it
           * does for every batch of a busy operation: not worth a log. */
          w->behind = 1;
          if (!w->batch)
            rt_log(RT_LOG_DEBUG, "api", "watch waits for the client",
                   "op=%s sent=%" PRIu64, w->op_id, w->last);
          break;
        }
        evs[n] = smaug__v1__operation_event__unpack(NULL, p->len, p->data);
        if (evs[n] == NULL) {
          w->behind = 1; /* read it back from the store */
          break;
        }
        n++;
      }
      watcher_send(w, evs, n);
      for (uint32_t i = 0; i < n; i++)
        protobuf_c_message_free_unpacked(&evs[i]->base, NULL);
    }
    w->bound = op->committed_seq;
    if (op->finished && !op->final_retry) {
      w->end = op->final_seq;
      w->op = NULL;
      op->n_watchers--;
    }
    if (w->last < w->bound)
      w->behind = 1; /* something it was not sent */
    watcher_pump(w);
  }
  for (pend_t *p = op->pend_head, *n; p; p = n) {
    n = p->next;
    free(p);
  }
  op->pend_head = op->pend_tail = NULL;
}

/* After a failed commit: the writes of every op that had some in the
 * batch are lost. Running ones are stopped and will end in error with the
 * store's message; a lost final status is written again later. */
static void ops_commit_failed(op_t *list, int err) {
  for (op_t *op = list; op; op = op->next) {
    if (op->last_seq == op->committed_seq && !op->final_retry)
      continue;
    op->last_seq = op->committed_seq; /* rolled back */
    op->final_seq = 0;
    op_store_lost(op, err);
  }
}

static void ops_committed(op_t *list) {
  for (op_t *op = list; op; op = op->next) {
    op->committed_seq = op->last_seq;
    if (op->final_retry && op->final_seq) {
      op->final_retry = 0;
      rt_log(RT_LOG_INFO, "api", "operation finished",
             "op=%s status=%s events=%" PRIu64 " reason=\"%s\"", op->id,
             final_name(op, op->final_outcome), op->final_seq,
             op->final_reason ? op->final_reason : "");
    }
  }
}

int api_ops_flush(api_ops_t *ops) {
  int err = 0;
  if (store_in_batch(ops->store) && (err = store_flush(ops->store)) != 0) {
    log_store_error(ops, "commit", err);
    ops_commit_failed(ops->live, err);
    ops_commit_failed(ops->dead, err);
  } else {
    ops_committed(ops->live);
    ops_committed(ops->dead);
  }
  for (op_t *op = ops->live; op; op = op->next) {
    deliver(op, err != 0);
    if (op->store_err[0] && !op->store_stopped && op->state == OP_RUNNING &&
        op->x) {
      op->store_stopped = 1;
      exec_op_cancel(op->x, op->store_err);
    }
  }
  for (op_t *op = ops->dead; op; op = op->next)
    deliver(op, err != 0);
  return err;
}

static void flush_timer_cb(uv_timer_t *t) {
  api_ops_t *ops = t->data;
  ops->flush_armed = 0;
  api_ops_flush(ops);
  /* Ops that died before this iteration: their executor handle has
   * closed by now, so the DAG and graph can go. One whose final status
   * still waits for a commit stays for the retry tick. */
  op_t *keep = NULL;
  int again = 0;
  for (op_t *op = ops->dead, *n; op; op = n) {
    n = op->next;
    if (op->n_watchers == 0 && op->pend_head == NULL && !op->final_retry &&
        op->reap++ > 0) {
      op_free(op);
      continue;
    }
    again |= !op->final_retry;
    op->next = keep;
    keep = op;
  }
  ops->dead = keep;
  if (again && !ops->flush_armed) {
    ops->flush_armed = 1;
    uv_timer_start(&ops->flush_timer, flush_timer_cb, 1, 0);
  }
}

static void schedule_flush(api_ops_t *ops) {
  if (ops->flush_armed || ops->closing)
    return;
  ops->flush_armed = 1;
  uv_timer_start(&ops->flush_timer, flush_timer_cb, 0, 0);
}

/* Once a second: final statuses that a failed commit lost are written
 * again, and every PRUNE_EVERY ticks (at once while more is left) the
 * events of old finished operations are pruned, a batch at a time. */
static void tick_timer_cb(uv_timer_t *t) {
  api_ops_t *ops = t->data;
  int retried = 0;
  for (op_t *op = ops->dead; op; op = op->next)
    if (op->final_retry && op->final_seq == 0) {
      op_final(op);
      retried = 1;
    }
  if (retried && api_ops_flush(ops) == 0)
    schedule_flush(ops); /* reap what is done */
  if (ops->event_retention_ms <= 0 || ops->ticks++ % PRUNE_EVERY != 0)
    return;
  api_ops_flush(ops);
  uint32_t deleted = 0;
  int err =
      store_event_prune(ops->store, api_now_ms() - ops->event_retention_ms,
                        PRUNE_BATCH, &deleted);
  if (err)
    log_store_error(ops, "event pruning", err);
  else if (deleted)
    rt_log(RT_LOG_INFO, "api", "events pruned", "count=%u", deleted);
  if (err == 0 && deleted == PRUNE_BATCH)
    ops->ticks = 0; /* more left: go on at the next tick */
}

static void watch_cancelled(rt_call_t *call, void *data) {
  watcher_t *w = data;
  (void)call;
  rt_log(RT_LOG_DEBUG, "api", "watch cancelled", "op=%s sent=%" PRIu64,
         w->op_id, w->last);
  watcher_end(w, GRPC_STATUS_CANCELLED, "cancelled");
}

void api_ops_watch(api_ops_t *ops, rt_call_t *call,
                   const Smaug__V1__WatchOperationRequest *req) {
  if (api_fail_bad_id(call, "operation_id", req->operation_id))
    return;
  if (ops->closing) {
    rt_call_fail(call, GRPC_STATUS_UNAVAILABLE, "smaugd is stopping");
    return;
  }
  api_ops_flush(ops);
  store_op_t *sop;
  uint64_t stored = 0;
  int err = store_op_get(ops->store, req->operation_id, &sop);
  if (err) {
    api_fail_lookup(call, "operation", req->operation_id, err);
    return;
  }
  int running = sop->running;
  store_op_free(sop);
  if ((err = store_event_last_seq(ops->store, req->operation_id, &stored))) {
    api_fail_store(call, err);
    return;
  }
  op_t *op = op_find(ops, req->operation_id);
  if (op == NULL && running)
    for (op_t *d = ops->dead; d; d = d->next)
      if (d->final_retry && strcmp(d->id, req->operation_id) == 0)
        op = d; /* its final status waits for the disk: follow it */
  if (running && op == NULL && ops->recovered) {
    rt_call_fail(call, GRPC_STATUS_INTERNAL,
                 "operation %s is running in the store but not here",
                 req->operation_id);
    return;
  }
  int replay = !running || (op && op->finished && !op->final_retry);
  if (replay && req->after_sequence >= stored) {
    rt_call_finish(call, GRPC_STATUS_OK, NULL, NULL);
    return;
  }
  watcher_t *w = calloc(1, sizeof(*w));
  if (w == NULL) {
    rt_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  w->call = call;
  w->ops = ops;
  w->last = req->after_sequence;
  w->bound = stored;
  w->behind = 1;
  w->batch =
      req->max_batch < WATCH_BATCH_MAX ? req->max_batch : WATCH_BATCH_MAX;
  snprintf(w->op_id, sizeof(w->op_id), "%s", req->operation_id);
  if (replay) {
    w->end = stored;
  } else if (op) {
    /* Before recovery the watcher is parked (op NULL) until recovery. */
    w->op = op;
    op->n_watchers++;
  }
  w->next = ops->watchers;
  ops->watchers = w;
  rt_call_on_cancel(call, watch_cancelled, w);
  rt_call_on_sent(call, watch_sent, w);
  if (watcher_pump(w) == 0 && w->behind)
    rt_log(RT_LOG_DEBUG, "api", "watch waits for the client",
           "op=%s sent=%" PRIu64, w->op_id, w->last);
}

/* ------------------------------------------------------------ running */

static int implemented(void *data, const char *type, dag_op_t kind,
                       dag_activity_t act) {
  api_ops_t *ops = data;
  const Smaug__V1__ResourceTypeInfo *ti;
  if (reg_find_type(ops->reg, type, &ti) == NULL)
    return 1; /* make the call, so that the runner fails it with why */
  int p, s;
  if (reg_type_supports(ti, (int)kind, &p, &s) != 0)
    return 0;
  return act == DAG_PARALLEL ? p : s;
}

static void limits(void *data, const char *type, const char **plugin,
                   unsigned *plugin_limit, unsigned *type_limit) {
  api_ops_t *ops = data;
  const Smaug__V1__ResourceTypeInfo *ti;
  reg_plugin_t *p = reg_find_type(ops->reg, type, &ti);
  *plugin = p ? reg_plugin_name(p) : NULL;
  *plugin_limit = p ? reg_plugin_info(p)->max_concurrency : 0;
  *type_limit = p ? ti->max_concurrency : 0;
}

/* A call to the plugin serving `type` failed UNAVAILABLE: check its health
 * now, so that its retries go as soon as it serves again
 * (plugin_available). */
static void recheck_plugin(api_ops_t *ops, const char *type) {
  reg_plugin_t *p = reg_find_type(ops->reg, type, NULL);
  if (p != NULL)
    reg_plugin_check_now(p);
}

/* reg_available_cb: a plugin serves again; the tasks waiting out a backoff
 * for it are retried now. */
static void plugin_available(reg_plugin_t *p, void *data) {
  api_ops_t *ops = data;
  for (op_t *op = ops->live; op; op = op->next)
    if (op->state == OP_RUNNING && op->x != NULL &&
        exec_op_retry_now(op->x, reg_plugin_name(p)) > 0)
      rt_log(RT_LOG_INFO, "api", "plugin serving again: retrying now",
             "op=%s plugin=%s", op->id, reg_plugin_name(p));
}

/* Moves a finished or abandoned op to the dead list. */
static void op_bury(op_t *op, int held_slot) {
  api_ops_t *ops = op->ops;
  op->state = OP_DONE;
  live_unlink(ops, op);
  op->next = ops->dead;
  ops->dead = op;
  if (held_slot && !ops->closing)
    slot_released(ops);
  schedule_flush(ops);
}

/* Writes the final status kept in the op and its OPERATION_FINISHED event
 * into the open batch. Should the write or its commit fail, final_retry
 * stays set and the tick writes them again. */
static void op_final(op_t *op) {
  api_ops_t *ops = op->ops;
  const char *reason = op->final_reason ? op->final_reason : "out of memory";
  op->final_retry = 1;
  int err = store_batch(ops->store);
  if (err == 0)
    err = write_final(op, op->final_outcome, reason);
  if (err) {
    log_store_error(ops, "final status", err);
    return;
  }
  Smaug__V1__OperationEvent e = SMAUG__V1__OPERATION_EVENT__INIT;
  e.sequence = ++op->last_seq;
  e.operation_id = op->id;
  e.kind = SMAUG__V1__EVENT_KIND__EVENT_KIND_OPERATION_FINISHED;
  e.time_ms = api_now_ms();
  e.message = (char *)reason;
  e.final_status = (char *)final_name(op, op->final_outcome);
  if (emit(op, &e) == 0)
    op->final_seq = e.sequence;
}

static void op_finish_early(op_t *op, exec_outcome_t outcome,
                            const char *reason) {
  int held = op->state == OP_BUILDING || op->state == OP_RUNNING;
  op->finished = 1;
  op->final_outcome = outcome;
  free(op->final_reason);
  op->final_reason = strdup(reason);
  op_final(op);
  op_bury(op, held);
}

static void seed_task(const store_task_t *t, void *data) {
  op_t *op = data;
  uint32_t task;
  if (dag_task_find(op->dag, (dag_activity_t)t->activity, t->type, t->id,
                    &task) != 0)
    return; /* not in this graph any more */
  dag_activity_t act = dag_task_activity(task);
  const uint8_t *payload = t->payload;
  size_t len = t->len;
  int status = t->status;
  if (status == EXEC_FAILED) {
    char reason[REASON_MAX];
    snprintf(reason, sizeof(reason), "%.*s", (int)len, (const char *)payload);
    exec_op_seed_failed(op->x, task, EXEC_CODE_UNKNOWN, reason);
    return;
  }
  if (status != EXEC_DONE)
    return;
  exec_output_t out = {0};
  kv_t md;
  kv_init(&md);
  Smaug__V1__SyncResult *sr = NULL;
  if (act == DAG_PARALLEL) {
    out.state = payload;
    out.state_len = len;
  } else {
    sr = smaug__v1__sync_result__unpack(NULL, len, payload);
    if (sr == NULL)
      return;
    for (size_t i = 0; i < sr->n_metadata; i++)
      kv_set(&md, sr->metadata[i]->key, sr->metadata[i]->value);
    out.metadata = &md;
    out.restored_id = sr->restored_id;
  }
  exec_op_seed_done(op->x, task, &out, t->started_at_ms, t->finished_at_ms);
  kv_free(&md);
  if (sr)
    protobuf_c_message_free_unpacked(&sr->base, NULL);
}

/* Restore and delete: hand each resource the metadata its protect saved. */
static int set_saved_metadata(op_t *op) {
  Smaug__V1__ResourceResult **rs;
  size_t n;
  int err = store_result_list(op->ops->store, op->cp_id, &rs, &n);
  if (err)
    return err;
  for (size_t i = 0; i < n && err == 0; i++) {
    const Smaug__V1__ResourceResult *r = rs[i];
    int64_t node = graph_find(op->g, r->resource->type, r->resource->id);
    if (node < 0 || r->n_metadata == 0)
      continue;
    kv_t md;
    kv_init(&md);
    for (size_t j = 0; j < r->n_metadata && err == 0; j++)
      err = kv_set(&md, r->metadata[j]->key, r->metadata[j]->value);
    if (err == 0)
      err = exec_op_set_saved_metadata(op->x, (uint32_t)node, &md);
    kv_free(&md);
  }
  store_msgs_free(rs, n);
  return err;
}

/* The parameters operation `op_id` (the protect of a checkpoint, or its
 * last delete) ran with, unpacked into `*out`; NULL when it is not in the
 * store or ran without. Returns 0 or a store error. */
static int protected_params(api_ops_t *ops, const char *op_id,
                            Smaug__V1__ParameterSet **out) {
  *out = NULL;
  if (op_id == NULL || *op_id == '\0')
    return 0;
  store_op_t *so;
  int err = store_op_get(ops->store, op_id, &so);
  if (err)
    return err == UV_ENOENT ? 0 : err;
  if (so->params_len) {
    *out = smaug__v1__parameter_set__unpack(NULL, so->params_len, so->params);
    if (*out == NULL)
      err = UV_ENOMEM;
  }
  store_op_free(so);
  return err;
}

/* A graph build failed: gives each resource built so far a result in the
 * open batch, so that the checkpoint or restore says what became of it:
 * FAILED with its own reason (`failed[i]`, may be NULL) when listing it
 * failed, else SKIPPED with "not run: <why>". Each result also goes to the
 * watchers as a FAILED or SKIPPED event with the same reason (no
 * activity, attempt 0), before the OPERATION_FINISHED that follows. */
static void write_unbuilt_results(op_t *op, const graph_t *g,
                                  const char *const *failed, const char *why) {
  api_ops_t *ops = op->ops;
  char notrun[REASON_MAX + 16];
  snprintf(notrun, sizeof(notrun), "not run: %s", why);
  int64_t now = api_now_ms();
  int err = g ? store_batch(ops->store) : 0;
  for (uint32_t i = 0; g && err == 0 && i < graph_count(g); i++) {
    int own = failed && failed[i];
    const char *reason = own ? failed[i] : notrun;
    exec_event_t ev = {.kind = own ? EXEC_EV_FAILED : EXEC_EV_SKIPPED,
                       .task = EXEC_NO_TASK,
                       .node = i,
                       .time_ms = now,
                       .unit = "",
                       .message = reason};
    if ((err = emit_resource_event(op, g, &ev)) != 0)
      return; /* logged; the op ends with the store's error */
    Smaug__V1__Resource res;
    if ((err = api_resource_of(graph_node(g, i), &res)) != 0)
      break;
    Smaug__V1__ResourceResult rr = SMAUG__V1__RESOURCE_RESULT__INIT;
    rr.resource = &res;
    rr.status = own ? SMAUG__V1__TASK_STATUS__TASK_STATUS_FAILED
                    : SMAUG__V1__TASK_STATUS__TASK_STATUS_SKIPPED;
    rr.reason = (char *)reason;
    rr.finished_at_ms = now;
    err = store_result_put(ops->store, op->owner, &rr);
    api_resource_free(&res);
  }
  if (err)
    log_store_error(ops, "result", err);
}

static void on_built(graph_t *g, grpc_status_code code, const char *msg,
                     const char *const *failed, void *data) {
  op_t *op = data;
  api_ops_t *ops = op->ops;
  char reason[REASON_MAX];
  if (ops->closing) {
    graph_free(g);
    op_bury(op, 0);
    return;
  }
  if (code != GRPC_STATUS_OK) {
    snprintf(reason, sizeof(reason), "%s: %s", rt_status_name(code), msg);
    rt_utf8_repair(reason); /* a plugin's message, maybe cut on the way */
    write_unbuilt_results(op, g, failed, reason);
    graph_free(g);
    op_finish_early(op, EXEC_FAILED_OP, reason);
    return;
  }
  op->g = g;
  if (op->store_err[0]) {
    snprintf(reason, sizeof(reason), "INTERNAL: %s", op->store_err);
    op_finish_early(op, EXEC_FAILED_OP, reason);
    return;
  }
  if (op->cancel_requested) {
    snprintf(reason, sizeof(reason), "cancelled: %s", op->cancel_reason);
    op_finish_early(op, EXEC_CANCELLED_OP, reason);
    return;
  }
  int err = 0;
  if (op->kind == DAG_OP_PROTECT) {
    /* The full graph is what restore and delete will use. */
    Smaug__V1__Checkpoint *cp;
    if ((err = store_checkpoint_get(ops->store, op->cp_id, &cp)) == 0) {
      Smaug__V1__Checkpoint copy = *cp;
      if ((err = api_graph_to_proto(g, &copy)) == 0) {
        if ((err = store_batch(ops->store)) == 0)
          err = store_checkpoint_put(ops->store, &copy);
        api_graph_proto_free(&copy);
      }
      protobuf_c_message_free_unpacked(&cp->base, NULL);
    }
  }
  exec_opts_t o;
  exec_opts_init(&o);
  o.max_in_flight = 512;
  o.limits = limits;
  o.limits_data = ops;
  o.limiter = ops->limiter;
  o.deadline_ms = (uint32_t)ops->call_timeout_ms;
  o.heartbeat_ms = ops->heartbeat_ms;
  if (ops->retry_budget_ms >= 0)
    o.retry_budget_ms = (uint32_t)ops->retry_budget_ms;
  o.fail_fast = op->fail_fast;
  if (err == 0)
    err = dag_new(g, (dag_op_t)op->kind, implemented, ops, &op->dag);
  if (err == 0) {
    op->n_prog = dag_task_count(op->dag);
    op->prog = calloc(op->n_prog + 1, sizeof(*op->prog));
    if (op->prog == NULL) {
      op->n_prog = 0;
      err = UV_ENOMEM;
    }
  }
  if (err == 0)
    err = exec_op_new(rt_loop(ops->rt), op->dag, op->id, &o, api_runner(),
                      &op->rctx, &op->x);
  if (err == 0) {
    exec_op_set_event_cb(op->x, on_exec_event, op);
    if (op->kind != DAG_OP_PROTECT)
      err = set_saved_metadata(op);
  }
  if (err == 0 && op->resume)
    err = store_task_each(ops->store, op->id, seed_task, op);
  if (err == 0) {
    op->state = OP_RUNNING;
    err = exec_op_start(op->x, on_exec_done, op);
  }
  if (err) {
    snprintf(reason, sizeof(reason), "INTERNAL: cannot start: %s",
             uv_strerror(err));
    exec_op_free(op->x);
    op->x = NULL;
    op_finish_early(op, EXEC_FAILED_OP, reason);
  }
}

static void op_start(op_t *op) {
  api_ops_t *ops = op->ops;
  char reason[REASON_MAX];
  ops->running++;
  op->state = OP_BUILDING;
  if (op->cancel_requested) {
    snprintf(reason, sizeof(reason), "cancelled: %s", op->cancel_reason);
    op_finish_early(op, EXEC_CANCELLED_OP, reason);
    return;
  }
  Smaug__V1__Checkpoint *cp;
  int err = store_checkpoint_get(ops->store, op->cp_id, &cp);
  if (err == 0 && op->kind == DAG_OP_RESTORE && op->plan_params == NULL)
    err = protected_params(ops, cp->operation_id, &op->plan_params);
  if (err == 0) {
    /* Protect and delete run with the plan's parameters; a restore with
     * its own merged over them. */
    op->rctx.params = op->kind == DAG_OP_RESTORE ? op->plan_params : op->params;
    op->rctx.overrides = op->kind == DAG_OP_RESTORE ? op->params : NULL;
    int discover = op->kind == DAG_OP_PROTECT && cp->n_edges == 0;
    err = api_graph_build(ops->rt, ops->reg, ops->limiter, cp->resources,
                          cp->n_resources, cp->edges, cp->n_edges, op->params,
                          discover, on_built, op);
    protobuf_c_message_free_unpacked(&cp->base, NULL);
  }
  if (err) {
    snprintf(reason, sizeof(reason), "INTERNAL: cannot start: %s",
             uv_strerror(err));
    op_finish_early(op, EXEC_FAILED_OP, reason);
  }
}

/* ------------------------------------------------------------ handlers */

/* Checks that every type in `res` has an available plugin. */
static grpc_status_code check_plugins(const api_ops_t *ops,
                                      Smaug__V1__Resource *const *res, size_t n,
                                      const char *field, char *msg,
                                      size_t len) {
  for (size_t i = 0; i < n; i++) {
    reg_plugin_t *p = reg_find_type(ops->reg, res[i]->type, NULL);
    if (p == NULL) {
      snprintf(msg, len, "%s[%zu].type: no plugin provides resource type %s",
               field, i, res[i]->type);
      return GRPC_STATUS_FAILED_PRECONDITION;
    }
    if (!reg_plugin_available(p)) {
      snprintf(msg, len, "plugin %s (%s) is unavailable: %s",
               reg_plugin_name(p), reg_plugin_address(p), reg_plugin_reason(p));
      return GRPC_STATUS_UNAVAILABLE;
    }
  }
  return GRPC_STATUS_OK;
}

/* Records a new running operation; the caller commits. */
static int op_record(op_t *op, const Smaug__V1__ParameterSet *params) {
  store_op_t so = {.id = op->id,
                   .kind = op->kind,
                   .target_id = op->target_id,
                   .checkpoint_id = op->cp_id,
                   .running = 1,
                   .fail_fast = op->fail_fast,
                   .created_at_ms = api_now_ms()};
  if (params) {
    pack_alloc(&params->base, &so.params, &so.params_len);
    if (so.params == NULL)
      return UV_ENOMEM;
    op->params =
        unpack_copy(&smaug__v1__parameter_set__descriptor, &params->base);
    if (op->params == NULL) {
      free(so.params);
      return UV_ENOMEM;
    }
  }
  int err = store_op_put(op->ops->store, &so);
  free(so.params);
  return err;
}

/* Commits what a handler wrote; on failure answers the call. */
static int commit_or_fail(api_ops_t *ops, rt_call_t *call) {
  int err = api_ops_flush(ops);
  if (err)
    rt_call_fail(call, GRPC_STATUS_INTERNAL, "store: %s: %s", uv_strerror(err),
                 store_errmsg(ops->store));
  return err;
}

/* Ends the start of a new operation whose first records were written in
 * the open store batch, `err` being the result of those writes: commits
 * them and answers the call with `resp`. On failure answers the call with
 * the error, frees `op` and returns nonzero; the caller then returns. */
static int op_launch(api_ops_t *ops, rt_call_t *call, op_t *op, int err,
                     const ProtobufCMessage *resp) {
  if (err) {
    store_flush(ops->store);
    api_fail_store(call, err);
  } else {
    err = commit_or_fail(ops, call);
  }
  if (err) {
    op_free(op);
    return err;
  }
  rt_call_reply(call, resp);
  return 0;
}

void api_ops_protect(api_ops_t *ops, rt_call_t *call,
                     const Smaug__V1__ProtectRequest *req) {
  char msg[1024];
  grpc_status_code rc;
  if (api_fail_bad_id(call, "plan_id", req->plan_id))
    return;
  api_ops_flush(ops);
  Smaug__V1__Plan *plan;
  int err = store_plan_get(ops->store, req->plan_id, &plan);
  if (err) {
    api_fail_lookup(call, "plan", req->plan_id, err);
    return;
  }
  if ((rc = check_plugins(ops, plan->resources, plan->n_resources,
                          "plan.resources", msg, sizeof(msg)))) {
    protobuf_c_message_free_unpacked(&plan->base, NULL);
    rt_call_fail(call, rc, "%s", msg);
    return;
  }
  op_t *op = op_new(ops, DAG_OP_PROTECT);
  if (op == NULL) {
    protobuf_c_message_free_unpacked(&plan->base, NULL);
    rt_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  api_new_id("op", op->id, sizeof(op->id));
  api_new_id("ckp", op->cp_id, sizeof(op->cp_id));
  snprintf(op->target_id, sizeof(op->target_id), "%s", op->cp_id);
  snprintf(op->owner, sizeof(op->owner), "%s", op->cp_id);
  op->fail_fast = req->fail_fast;

  /* The checkpoint starts with the plan's roots and edges; the full graph
   * replaces them once built, and a resume rebuilds from what is there. */
  Smaug__V1__Checkpoint cp = SMAUG__V1__CHECKPOINT__INIT;
  cp.id = op->cp_id;
  cp.plan_id = plan->id;
  cp.status = SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_PROTECTING;
  cp.operation_id = op->id;
  cp.n_resources = plan->n_resources;
  cp.resources = plan->resources;
  cp.n_edges = plan->n_edges;
  cp.edges = plan->edges;
  cp.created_at_ms = api_now_ms();
  cp.bank_uri = ops->bank_uri;
  if ((err = store_batch(ops->store)) == 0 &&
      (err = store_checkpoint_put(ops->store, &cp)) == 0)
    err = op_record(op, plan->parameters);
  protobuf_c_message_free_unpacked(&plan->base, NULL);
  Smaug__V1__ProtectResponse resp = SMAUG__V1__PROTECT_RESPONSE__INIT;
  resp.checkpoint_id = op->cp_id;
  resp.operation_id = op->id;
  if (op_launch(ops, call, op, err, &resp.base))
    return;
  rt_log(RT_LOG_INFO, "api", "protect started", "op=%s checkpoint=%s plan=%s",
         op->id, op->cp_id, req->plan_id);
  enqueue(op);
}

/* Restore: appends each missing object to the message (bank_missing_cb). */
static void restore_missing(void *data, const char *type, const char *id,
                            const char *section, const char *object,
                            const char *msg) {
  char *buf = data;
  size_t len = strlen(buf);
  snprintf(buf + len, 1024 - len, "; %s#%s: %s", type, id, msg);
}

/* Restore: refuses (FAILED_PRECONDITION) a checkpoint whose catalogued
 * objects are not all in its bank (bank_saved.h, presence only: stats,
 * never chunk data). A bank that does not exist holds nothing, which only
 * matters if the checkpoint claims objects; a bank smaugd cannot open as a
 * file:// bank is not checked (the plugins read it). `msg` holds 1024
 * bytes. */
static grpc_status_code
check_saved(api_ops_t *ops, const Smaug__V1__Checkpoint *cp, char *msg) {
  const char *uri =
      cp->bank_uri && *cp->bank_uri ? cp->bank_uri : ops->bank_uri;
  bank_t *bank = NULL;
  bank_err_t err = {0};
  int rc = bank_open_ex(uri, BANK_OPEN_EXISTING, &bank, &err);
  if (rc == UV_EINVAL) {
    rt_log(RT_LOG_DEBUG, "api", "restore: bank not checked", "bank=%s why=%s",
           uri, err.msg);
    return GRPC_STATUS_OK;
  }
  if (rc != 0 && rc != UV_ENOENT) {
    snprintf(msg, 1024, "checkpoint %s: bank %s: %s", cp->id, uri, err.msg);
    return GRPC_STATUS_FAILED_PRECONDITION;
  }
  Smaug__V1__ResourceResult **rs;
  size_t n, missing = 0;
  if ((rc = store_result_list(ops->store, cp->id, &rs, &n)) != 0) {
    bank_close(bank);
    snprintf(msg, 1024, "checkpoint %s: reading its results: %s", cp->id,
             uv_strerror(rc));
    return GRPC_STATUS_INTERNAL;
  }
  snprintf(msg, 1024, "checkpoint %s: data missing from the bank", cp->id);
  rc = bank_saved_check(bank, cp->id, rs, n, 0, restore_missing, msg, &missing,
                        &err);
  store_msgs_free(rs, n);
  bank_close(bank);
  if (rc == UV_ENOENT)
    return GRPC_STATUS_FAILED_PRECONDITION;
  if (rc != 0) {
    snprintf(msg, 1024, "checkpoint %s: checking its bank %s: %s", cp->id, uri,
             err.msg[0] ? err.msg : uv_strerror(rc));
    return GRPC_STATUS_FAILED_PRECONDITION;
  }
  return GRPC_STATUS_OK;
}

void api_ops_restore(api_ops_t *ops, rt_call_t *call,
                     const Smaug__V1__RestoreRequest *req) {
  char msg[1024];
  grpc_status_code rc;
  if (api_fail_bad_id(call, "checkpoint_id", req->checkpoint_id))
    return;
  api_ops_flush(ops);
  Smaug__V1__Checkpoint *cp;
  int err = store_checkpoint_get(ops->store, req->checkpoint_id, &cp);
  if (err) {
    api_fail_lookup(call, "checkpoint", req->checkpoint_id, err);
    return;
  }
  rc = GRPC_STATUS_OK;
  if (cp->status != SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_AVAILABLE) {
    snprintf(msg, sizeof(msg),
             "checkpoint %s is %s; only an available checkpoint can be "
             "restored",
             cp->id, api_checkpoint_status_name(cp->status));
    rc = GRPC_STATUS_FAILED_PRECONDITION;
  }
  if (rc == GRPC_STATUS_OK)
    rc = check_plugins(ops, cp->resources, cp->n_resources,
                       "checkpoint.resources", msg, sizeof(msg));
  if (rc == GRPC_STATUS_OK)
    rc = api_check_params(ops->reg, req->parameters, cp->resources,
                          cp->n_resources, 1, "parameters", msg, sizeof(msg));
  if (rc == GRPC_STATUS_OK)
    rc = check_saved(ops, cp, msg);
  if (rc) {
    protobuf_c_message_free_unpacked(&cp->base, NULL);
    rt_call_fail(call, rc, "%s", msg);
    return;
  }
  protobuf_c_message_free_unpacked(&cp->base, NULL);
  op_t *op = op_new(ops, DAG_OP_RESTORE);
  if (op == NULL) {
    rt_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  api_new_id("op", op->id, sizeof(op->id));
  api_new_id("rst", op->target_id, sizeof(op->target_id));
  snprintf(op->cp_id, sizeof(op->cp_id), "%s", req->checkpoint_id);
  snprintf(op->owner, sizeof(op->owner), "%s", op->target_id);
  op->fail_fast = req->fail_fast;
  Smaug__V1__Restore r = SMAUG__V1__RESTORE__INIT;
  r.id = op->target_id;
  r.checkpoint_id = op->cp_id;
  r.status = SMAUG__V1__RESTORE_STATUS__RESTORE_STATUS_IN_PROGRESS;
  r.operation_id = op->id;
  r.parameters = req->parameters;
  r.created_at_ms = api_now_ms();
  Smaug__V1__ParameterSet empty = SMAUG__V1__PARAMETER_SET__INIT;
  if ((err = store_batch(ops->store)) == 0 &&
      (err = store_restore_put(ops->store, &r)) == 0)
    err = op_record(op, req->parameters ? req->parameters : &empty);
  Smaug__V1__RestoreResponse resp = SMAUG__V1__RESTORE_RESPONSE__INIT;
  resp.restore_id = op->target_id;
  resp.operation_id = op->id;
  if (op_launch(ops, call, op, err, &resp.base))
    return;
  rt_log(RT_LOG_INFO, "api", "restore started",
         "op=%s restore=%s checkpoint=%s", op->id, op->target_id, op->cp_id);
  enqueue(op);
}

void api_ops_delete_checkpoint(api_ops_t *ops, rt_call_t *call,
                               const Smaug__V1__DeleteCheckpointRequest *req) {
  char msg[1024];
  grpc_status_code rc;
  if (api_fail_bad_id(call, "id", req->id))
    return;
  api_ops_flush(ops);
  Smaug__V1__Checkpoint *cp;
  int err = store_checkpoint_get(ops->store, req->id, &cp);
  if (err) {
    api_fail_lookup(call, "checkpoint", req->id, err);
    return;
  }
  rc = GRPC_STATUS_OK;
  int st = cp->status;
  if (st != SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_AVAILABLE &&
      st != SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_ERROR &&
      st != SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_ERROR_DELETING) {
    snprintf(msg, sizeof(msg), "checkpoint %s is %s and cannot be deleted now",
             cp->id, api_checkpoint_status_name(st));
    rc = GRPC_STATUS_FAILED_PRECONDITION;
  } else if (api_ops_checkpoint_busy(ops, cp->id)) {
    snprintf(msg, sizeof(msg),
             "checkpoint %s is in use by a running operation (restore)",
             cp->id);
    rc = GRPC_STATUS_FAILED_PRECONDITION;
  }
  if (rc == GRPC_STATUS_OK)
    rc = check_plugins(ops, cp->resources, cp->n_resources,
                       "checkpoint.resources", msg, sizeof(msg));
  op_t *op = rc ? NULL : op_new(ops, DAG_OP_DELETE);
  if (rc == GRPC_STATUS_OK && op == NULL) {
    rc = GRPC_STATUS_RESOURCE_EXHAUSTED;
    snprintf(msg, sizeof(msg), "out of memory");
  }
  if (rc) {
    protobuf_c_message_free_unpacked(&cp->base, NULL);
    rt_call_fail(call, rc, "%s", msg);
    return;
  }
  api_new_id("op", op->id, sizeof(op->id));
  snprintf(op->cp_id, sizeof(op->cp_id), "%s", cp->id);
  snprintf(op->target_id, sizeof(op->target_id), "%s", cp->id);
  snprintf(op->owner, sizeof(op->owner), "%s", op->id);
  /* The delete runs with the parameters of the protect (or of the last
   * delete, which recorded them), before the checkpoint forgets it. */
  Smaug__V1__ParameterSet *pp = NULL;
  err = protected_params(ops, cp->operation_id, &pp);
  cp->status = SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_DELETING;
  char *old_op = cp->operation_id, *old_reason = cp->reason;
  cp->operation_id = op->id;
  cp->reason = "";
  if (err == 0 && (err = store_batch(ops->store)) == 0 &&
      (err = store_checkpoint_put(ops->store, cp)) == 0)
    err = op_record(op, pp);
  if (pp)
    protobuf_c_message_free_unpacked(&pp->base, NULL);
  cp->operation_id = old_op;
  cp->reason = old_reason;
  protobuf_c_message_free_unpacked(&cp->base, NULL);
  Smaug__V1__DeleteCheckpointResponse resp =
      SMAUG__V1__DELETE_CHECKPOINT_RESPONSE__INIT;
  resp.operation_id = op->id;
  if (op_launch(ops, call, op, err, &resp.base))
    return;
  rt_log(RT_LOG_INFO, "api", "delete started", "op=%s checkpoint=%s", op->id,
         op->cp_id);
  enqueue(op);
}

void api_ops_cancel(api_ops_t *ops, rt_call_t *call,
                    const Smaug__V1__CancelOperationRequest *req) {
  if (api_fail_bad_id(call, "operation_id", req->operation_id))
    return;
  /* Refused, not cut: a cut could split a UTF-8 character, and the reason
   * goes into events, results and the plugins' CancelOperation. */
  char msg[256];
  grpc_status_code rc = api_check_text("reason", req->reason,
                                       API_MAX_NAME_BYTES, msg, sizeof(msg));
  if (rc) {
    rt_call_fail(call, rc, "%s", msg);
    return;
  }
  op_t *op = op_find(ops, req->operation_id);
  if (op == NULL || op->finished) {
    store_op_t *sop;
    int err = store_op_get(ops->store, req->operation_id, &sop);
    if (err) {
      api_fail_lookup(call, "operation", req->operation_id, err);
      return;
    }
    store_op_free(sop);
    rt_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
                 "operation %s has already finished", req->operation_id);
    return;
  }
  snprintf(op->cancel_reason, sizeof(op->cancel_reason), "%s",
           req->reason && *req->reason ? req->reason : "requested by a client");
  uint32_t count = 0;
  if (op->state == OP_QUEUED) {
    char reason[400];
    queue_remove(ops, op);
    snprintf(reason, sizeof(reason), "cancelled: %s", op->cancel_reason);
    op_finish_early(op, EXEC_CANCELLED_OP, reason);
    count = 1;
  } else if (op->state == OP_BUILDING) {
    op->cancel_requested = 1;
    count = 1;
  } else if (op->state == OP_RUNNING && op->x) {
    for (uint32_t t = 0; t < dag_task_count(op->dag); t++)
      count += exec_op_task_status(op->x, t) == EXEC_RUNNING;
    exec_op_cancel(op->x, op->cancel_reason);
  }
  if (commit_or_fail(ops, call))
    return;
  Smaug__V1__CancelOperationResponse resp =
      SMAUG__V1__CANCEL_OPERATION_RESPONSE__INIT;
  resp.cancelled = count;
  rt_call_reply(call, &resp.base);
}

int api_checkpoint_results(api_ops_t *ops, const Smaug__V1__Checkpoint *cp,
                           Smaug__V1__ResourceResult ***out, size_t *n) {
  Smaug__V1__ResourceResult **rs;
  size_t k;
  int err = store_result_list(ops->store, cp->id, &rs, &k);
  if (err)
    return err;
  int del =
      cp->status == SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_DELETING ||
      cp->status == SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_DELETED ||
      cp->status ==
          SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_ERROR_DELETING;
  Smaug__V1__ResourceResult **ds = NULL;
  size_t nd = 0;
  if (del && cp->operation_id && *cp->operation_id &&
      store_result_list(ops->store, cp->operation_id, &ds, &nd) == 0) {
    /* Both lists are ordered by (type, id): merge the delete outcome. */
    size_t j = 0;
    for (size_t i = 0; i < k; i++) {
      Smaug__V1__Resource *a = rs[i]->resource;
      while (j < nd) {
        Smaug__V1__Resource *b = ds[j]->resource;
        int c = strcmp(b->type, a->type);
        if (c == 0)
          c = strcmp(b->id, a->id);
        if (c >= 0) {
          if (c == 0) {
            rs[i]->status = ds[j]->status;
            char *t = rs[i]->reason;
            rs[i]->reason = ds[j]->reason;
            ds[j]->reason = t;
            rs[i]->started_at_ms = ds[j]->started_at_ms;
            rs[i]->finished_at_ms = ds[j]->finished_at_ms;
          }
          break;
        }
        j++;
      }
    }
    store_msgs_free(ds, nd);
  }
  *out = rs;
  *n = k;
  return 0;
}

/* ------------------------------------------------------------- recovery */

void api_ops_recover(api_ops_t *ops) {
  store_op_t **sops;
  size_t n;
  int err = store_op_list_running(ops->store, &sops, &n);
  if (err) {
    log_store_error(ops, "recovery", err);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    store_op_t *so = sops[i];
    op_t *op = op_new(ops, so->kind);
    if (op == NULL)
      break;
    snprintf(op->id, sizeof(op->id), "%s", so->id);
    snprintf(op->cp_id, sizeof(op->cp_id), "%s", so->checkpoint_id);
    snprintf(op->target_id, sizeof(op->target_id), "%s", so->target_id);
    snprintf(op->owner, sizeof(op->owner), "%s",
             so->kind == DAG_OP_DELETE ? so->id : so->target_id);
    op->fail_fast = so->fail_fast;
    op->resume = 1;
    if (so->params_len)
      op->params =
          smaug__v1__parameter_set__unpack(NULL, so->params_len, so->params);
    store_event_last_seq(ops->store, op->id, &op->last_seq);
    op->committed_seq = op->last_seq;

    /* Resume only when every plugin the stored graph needs is back. */
    char msg[1024];
    grpc_status_code rc = GRPC_STATUS_OK;
    Smaug__V1__Checkpoint *cp = NULL;
    if ((err = store_checkpoint_get(ops->store, op->cp_id, &cp)) != 0) {
      snprintf(msg, sizeof(msg), "checkpoint %s: %s", op->cp_id,
               uv_strerror(err));
      rc = GRPC_STATUS_INTERNAL;
    } else {
      rc = check_plugins(ops, cp->resources, cp->n_resources,
                         "checkpoint.resources", msg, sizeof(msg));
      protobuf_c_message_free_unpacked(&cp->base, NULL);
    }
    op->next = ops->live;
    ops->live = op;
    op->state = OP_QUEUED;
    for (watcher_t *w = ops->watchers; w; w = w->next)
      if (w->op == NULL && w->end == 0 && strcmp(w->op_id, op->id) == 0) {
        w->op = op;
        op->n_watchers++;
      }
    if (rc) {
      char reason[REASON_MAX];
      snprintf(reason, sizeof(reason), "cannot resume after restart: %s", msg);
      rt_log(RT_LOG_WARN, "api", "operation not resumed", "op=%s reason=\"%s\"",
             op->id, reason);
      op_finish_early(op, EXEC_FAILED_OP, reason);
      continue;
    }
    rt_log(RT_LOG_INFO, "api", "resuming operation", "op=%s kind=%d", op->id,
           op->kind);
    live_unlink(ops, op);
    enqueue(op);
  }
  store_ops_free(sops, n);
  ops->recovered = 1;
  for (watcher_t *w = ops->watchers, *nx; w; w = nx) {
    nx = w->next;
    if (w->op == NULL && w->end == 0)
      watcher_end(w, GRPC_STATUS_INTERNAL, "operation was not recovered");
  }
  api_ops_flush(ops);
  tick_timer_cb(&ops->tick_timer); /* prune at start */
}

/* ---------------------------------------------------------- create/free */

int api_ops_new(const api_ops_config_t *cfg, api_ops_t **out) {
  api_ops_t *ops = calloc(1, sizeof(*ops));
  if (ops == NULL)
    return UV_ENOMEM;
  ops->rt = cfg->rt;
  ops->store = cfg->store;
  ops->reg = cfg->reg;
  ops->limiter = cfg->limiter;
  ops->max_operations = cfg->max_operations > 0 ? cfg->max_operations : 16;
  ops->call_timeout_ms =
      cfg->call_timeout_ms > 0 ? cfg->call_timeout_ms : OP_TIMEOUT_DEFAULT_MS;
  ops->heartbeat_ms = cfg->heartbeat_ms;
  /* 0 keeps exec's default budget; negative: not retried. */
  ops->retry_budget_ms = cfg->retry_budget_ms == 0  ? -1
                         : cfg->retry_budget_ms < 0 ? 0
                         : cfg->retry_budget_ms > UINT32_MAX
                             ? UINT32_MAX
                             : cfg->retry_budget_ms;
  if ((ops->bank_uri = strdup(cfg->bank_uri ? cfg->bank_uri : "")) == NULL) {
    free(ops);
    return UV_ENOMEM;
  }
  ops->event_retention_ms = cfg->event_retention_ms;
  uv_timer_init(rt_loop(cfg->rt), &ops->flush_timer);
  ops->flush_timer.data = ops;
  uv_timer_init(rt_loop(cfg->rt), &ops->prog_timer);
  ops->prog_timer.data = ops;
  uv_timer_init(rt_loop(cfg->rt), &ops->tick_timer);
  ops->tick_timer.data = ops;
  uv_timer_start(&ops->tick_timer, tick_timer_cb, FINAL_RETRY_MS,
                 FINAL_RETRY_MS);
  uv_unref((uv_handle_t *)&ops->tick_timer);
  if (ops->reg != NULL)
    reg_on_available(ops->reg, plugin_available, ops);
  *out = ops;
  return 0;
}

void api_ops_close(api_ops_t *ops) {
  if (ops == NULL || ops->closing)
    return;
  api_ops_flush(ops);
  ops->closing = 1;
  if (ops->reg != NULL)
    reg_on_available(ops->reg, NULL, NULL);
  uv_close((uv_handle_t *)&ops->flush_timer, NULL);
  uv_close((uv_handle_t *)&ops->prog_timer, NULL);
  uv_close((uv_handle_t *)&ops->tick_timer, NULL);
  watcher_end_all(ops, GRPC_STATUS_UNAVAILABLE, "smaugd is stopping");
  for (op_t *op = ops->live; op; op = op->next)
    if (op->state == OP_RUNNING && op->x)
      exec_op_cancel(op->x, "smaugd is stopping");
}

void api_ops_free(api_ops_t *ops) {
  if (ops == NULL)
    return;
  for (op_t *op = ops->live, *n; op; op = n) {
    n = op->next;
    op_free(op);
  }
  for (op_t *op = ops->dead, *n; op; op = n) {
    n = op->next;
    op_free(op);
  }
  free(ops->bank_uri);
  free(ops);
}
