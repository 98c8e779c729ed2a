/*
 * activity.c - activity contexts (smaug/activity.h) and the idempotency
 * index behind ParallelActivity and SyncActivity.
 *
 * One context exists per idempotency key. The first call creates it and
 * runs the type's callback; a replay while it runs joins it (it receives
 * the last progress and then the same result); a replay after it ended
 * gets the stored result. Work is therefore never started twice for one
 * key. A context is reference-counted: one reference for the index, one
 * for the author until complete/fail, one per job it started.
 *
 * Cancellation: only CancelOperation (and shutdown) cancels an activity
 * and its jobs; it ends the calls with CANCELLED at once and stores that
 * outcome. A caller that goes away (its connection dropped, it cancelled
 * the call, its deadline passed) only loses its own call: the activity
 * and its jobs go on, and the outcome is stored as usual, so that the
 * orchestrator's replay with the same key (after a restart, or a retry
 * after a deadline) joins the running work or gets its result.
 *
 * Layering (sdk.h): plugin.c calls in here; this file calls job.c
 * (sdk_job.h) and nothing in plugin.c. It starts its activities' jobs
 * (smaug_job_start, smaug_job_enqueue, smaug_poll_start) and learns of
 * their progress and end through sdk_activity_job_hooks.
 */
#include "sdk.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ST_RUNNING, ST_HELD, ST_DONE };

struct smaug_activity_s {
  smaug_plugin_t *p;
  const smaug_type_def_t *type;
  size_t type_index;
  char *key;
  Smaug__V1__ActivityRequest *req; /* owned copy */
  smaug_activity_kind_t kind;
  smaug_op_t op;
  int st;
  int author_done;
  int counted; /* in the in-flight counters */
  atomic_int cancelled;
  int in_index;
  int refs;
  rt_call_t **calls;
  size_t n_calls, cap_calls;
  /* last progress, for callers that join */
  int has_progress;
  int author_progress; /* the plugin reported progress itself */
  uint64_t p_done, p_total;
  char *p_unit, *p_msg;
  /* result */
  uint8_t *state;
  size_t state_len;
  kv_t meta;
  char *restored_id;
  char *message;
  grpc_status_code code;
  char *err_msg;
  uint64_t done_at;
  sdk_res_t *res;
  smaug_cancel_cb cancel_cb;
  void *cancel_data;
  void *user_data;
  smaug_bank_t *bank; /* opened at creation: jobs read it concurrently */
  int bank_err;
};

static void progress(smaug_activity_t *act, uint64_t done, uint64_t total,
                     const char *unit, const char *message);

/* ------------------------------------------------------------ helpers */

static char *res_key(const Smaug__V1__ActivityRequest *req) {
  size_t n = strlen(req->operation->id) + strlen(req->resource->type) +
             strlen(req->resource->id) + 3;
  char *k = malloc(n);
  if (k != NULL)
    snprintf(k, n, "%s\x1f%s\x1f%s", req->operation->id, req->resource->type,
             req->resource->id);
  return k;
}

static sdk_res_t *res_ref(smaug_plugin_t *p,
                          const Smaug__V1__ActivityRequest *req) {
  char *k = res_key(req);
  if (k == NULL)
    return NULL;
  sdk_res_t *r = kv_ptr(&p->res, k);
  if (r != NULL) {
    free(k);
    r->refs++;
    return r;
  }
  if ((r = calloc(1, sizeof(*r))) == NULL || kv_put(&p->res, k, r) != 0) {
    free(r);
    free(k);
    return NULL;
  }
  r->key = k;
  r->refs = 1;
  return r;
}

static void res_unref(smaug_plugin_t *p, sdk_res_t *r) {
  if (r == NULL || --r->refs > 0)
    return;
  assert(r->pending == 0 && r->n_waiters == 0 && r->n_syncs == 0);
  kv_del(&p->res, r->key);
  free(r->key);
  free(r->err_msg);
  kv_free(&r->meta);
  free(r->waiters);
  free(r->syncs);
  free(r);
}

/* The open Syncs of a resource, which receive its jobs' progress. */
static int res_add_sync(sdk_res_t *r, smaug_activity_t *a) {
  smaug_activity_t **v = realloc(r->syncs, (r->n_syncs + 1) * sizeof(*v));
  if (v == NULL)
    return SMAUG_ENOMEM;
  r->syncs = v;
  r->syncs[r->n_syncs++] = a;
  return 0;
}

static void res_del_sync(sdk_res_t *r, smaug_activity_t *a) {
  for (size_t i = 0; r != NULL && i < r->n_syncs; i++) {
    if (r->syncs[i] == a) {
      r->syncs[i] = r->syncs[--r->n_syncs];
      return;
    }
  }
}

static void act_free(smaug_activity_t *a) {
  smaug_plugin_t *p = a->p;
  res_del_sync(a->res, a);
  res_unref(p, a->res);
  if (a->req != NULL)
    smaug__v1__activity_request__free_unpacked(a->req, NULL);
  kv_free(&a->meta);
  smaug_bank_free(a->bank);
  free(a->key);
  free(a->calls);
  free(a->p_unit);
  free(a->p_msg);
  free(a->state);
  free(a->restored_id);
  free(a->message);
  free(a->err_msg);
  free(a);
}

static void act_unref(smaug_activity_t *a) {
  assert(a->refs > 0);
  if (--a->refs == 0)
    act_free(a);
}

/* ------------------------------------------------------------- answers */

static void send_result(smaug_activity_t *a, rt_call_t *call) {
  if (a->code != GRPC_STATUS_OK) {
    rt_call_finish(call, a->code, a->err_msg != NULL ? a->err_msg : "", NULL);
    return;
  }
  if (a->kind == SMAUG_PARALLEL) {
    Smaug__V1__ParallelResult r = SMAUG__V1__PARALLEL_RESULT__INIT;
    r.state.data = a->state;
    r.state.len = a->state_len;
    r.message = a->message != NULL ? a->message : "";
    Smaug__V1__ParallelActivityResponse m =
        SMAUG__V1__PARALLEL_ACTIVITY_RESPONSE__INIT;
    m.event_case = SMAUG__V1__PARALLEL_ACTIVITY_RESPONSE__EVENT_RESULT;
    m.result = &r;
    rt_call_finish(call, GRPC_STATUS_OK, NULL, &m.base);
    return;
  }
  /* Job metadata first, the Sync's own entries win. */
  sdk_res_t *res = a->res;
  size_t n = 0, cap = res->meta.n + a->meta.n;
  Smaug__V1__SyncResult__MetadataEntry *ents =
      calloc(cap ? cap : 1, sizeof(*ents));
  Smaug__V1__SyncResult__MetadataEntry **ptrs =
      calloc(cap ? cap : 1, sizeof(*ptrs));
  if (ents == NULL || ptrs == NULL) {
    free(ents);
    free(ptrs);
    rt_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  for (size_t i = 0; i < res->meta.n; i++) {
    const kv_pair_t *e = &res->meta.items[i];
    if (kv_get(&a->meta, e->key) != NULL)
      continue;
    smaug__v1__sync_result__metadata_entry__init(&ents[n]);
    ents[n].key = e->key;
    ents[n].value = e->val;
    ptrs[n] = &ents[n];
    n++;
  }
  for (size_t j = 0; j < a->meta.n; j++) {
    smaug__v1__sync_result__metadata_entry__init(&ents[n]);
    ents[n].key = a->meta.items[j].key;
    ents[n].value = a->meta.items[j].val;
    ptrs[n] = &ents[n];
    n++;
  }
  Smaug__V1__SyncResult r = SMAUG__V1__SYNC_RESULT__INIT;
  r.n_metadata = n;
  r.metadata = ptrs;
  r.restored_id = a->restored_id != NULL ? a->restored_id : "";
  r.message = a->message != NULL ? a->message : "";
  Smaug__V1__SyncActivityResponse m = SMAUG__V1__SYNC_ACTIVITY_RESPONSE__INIT;
  m.event_case = SMAUG__V1__SYNC_ACTIVITY_RESPONSE__EVENT_RESULT;
  m.result = &r;
  rt_call_finish(call, GRPC_STATUS_OK, NULL, &m.base);
  free(ents);
  free(ptrs);
}

static void send_progress(smaug_activity_t *a, rt_call_t *call) {
  Smaug__V1__Progress pr = SMAUG__V1__PROGRESS__INIT;
  pr.done = a->p_done;
  pr.total = a->p_total;
  pr.unit = a->p_unit != NULL ? a->p_unit : "";
  pr.message = a->p_msg != NULL ? a->p_msg : "";
  if (a->kind == SMAUG_PARALLEL) {
    Smaug__V1__ParallelActivityResponse m =
        SMAUG__V1__PARALLEL_ACTIVITY_RESPONSE__INIT;
    m.event_case = SMAUG__V1__PARALLEL_ACTIVITY_RESPONSE__EVENT_PROGRESS;
    m.progress = &pr;
    (void)rt_call_send(call, &m.base); /* a cancelled call ends by itself */
  } else {
    Smaug__V1__SyncActivityResponse m = SMAUG__V1__SYNC_ACTIVITY_RESPONSE__INIT;
    m.event_case = SMAUG__V1__SYNC_ACTIVITY_RESPONSE__EVENT_PROGRESS;
    m.progress = &pr;
    (void)rt_call_send(call, &m.base);
  }
}

/* Decides the outcome and answers every attached caller. */
static void finalize(smaug_activity_t *a, grpc_status_code code,
                     const char *msg) {
  if (a->st == ST_DONE)
    return;
  smaug_plugin_t *p = a->p;
  if (a->st == ST_HELD) {
    sdk_res_t *r = a->res;
    for (size_t i = 0; i < r->n_waiters; i++) {
      if (r->waiters[i] == a) {
        r->waiters[i] = r->waiters[--r->n_waiters];
        break;
      }
    }
  }
  res_del_sync(a->res, a);
  a->st = ST_DONE;
  a->code = code;
  if (code != GRPC_STATUS_OK && msg != NULL)
    a->err_msg = strdup(msg);
  a->done_at = uv_now(p->loop);
  if (a->counted) {
    a->counted = 0;
    p->type_inflight[a->type_index]--;
    p->inflight--;
  }
  rt_log(code == GRPC_STATUS_OK ? RT_LOG_DEBUG : RT_LOG_INFO, "plugin",
         "activity ended", "op=%s type=%s id=%s activity=%s status=%s",
         a->req->operation->id, a->req->resource->type, a->req->resource->id,
         a->kind == SMAUG_SYNC ? "sync" : "parallel", rt_status_name(code));
  rt_call_t **calls = a->calls;
  size_t n = a->n_calls;
  a->calls = NULL;
  a->n_calls = a->cap_calls = 0;
  for (size_t i = 0; i < n; i++)
    send_result(a, calls[i]);
  free(calls);
}

/* A held or completed Sync: answer with the resource's job outcome. */
static void release_sync(smaug_activity_t *a) {
  sdk_res_t *r = a->res;
  if (r->err != 0)
    finalize(a, sdk_err_to_status(r->err),
             r->err_msg != NULL ? r->err_msg : smaug_strerror(r->err));
  else
    finalize(a, GRPC_STATUS_OK, NULL);
}

/* ------------------------------------------------------- cancellation */

/* CancelOperation or shutdown: the activity, and the jobs it (for a Sync:
 * its whole resource) waits for, stop; the callers get CANCELLED, which is
 * also what a replay gets. Returns how many were told to stop. */
static unsigned cancel_act(smaug_activity_t *a) {
  if (a->st == ST_DONE || atomic_load(&a->cancelled))
    return 0;
  atomic_store(&a->cancelled, 1);
  a->refs++; /* the cancel callback may end the activity */
  unsigned n =
      1 + sdk_job_cancel(&a->p->jobs, a, a->kind == SMAUG_SYNC ? a->res : NULL);
  if (a->cancel_cb != NULL)
    a->cancel_cb(a, a->cancel_data);
  finalize(a, GRPC_STATUS_CANCELLED, "operation cancelled");
  act_unref(a); /* `a` may be gone */
  return n;
}

/* A caller went away (connection dropped, cancelled, deadline): only its
 * call ends. The work goes on for the replay that will come. */
static void on_call_cancel(rt_call_t *call, void *data) {
  smaug_activity_t *a = data;
  for (size_t i = 0; i < a->n_calls; i++) {
    if (a->calls[i] == call) {
      a->calls[i] = a->calls[--a->n_calls];
      rt_call_finish(call, GRPC_STATUS_CANCELLED, "call cancelled", NULL);
      break;
    }
  }
  if (a->n_calls == 0 && a->st != ST_DONE)
    rt_log(RT_LOG_DEBUG, "plugin", "caller gone, work goes on",
           "op=%s type=%s id=%s key=%s", a->req->operation->id,
           a->req->resource->type, a->req->resource->id, a->key);
}

typedef struct {
  const char *op;
  unsigned n;
  int all;
} cancel_arg_t;

static void cancel_each(const char *key, void *val, void *arg) {
  smaug_activity_t *a = val;
  cancel_arg_t *c = arg;
  if (a->st == ST_DONE)
    return;
  if (c->all || strcmp(a->req->operation->id, c->op) == 0)
    c->n += cancel_act(a);
}

unsigned sdk_activity_cancel_op(smaug_plugin_t *p, const char *op_id) {
  if (kv_ptr(&p->cancelled_ops, op_id) == NULL) {
    uint64_t *when = malloc(sizeof(*when));
    if (when != NULL) {
      *when = uv_now(p->loop);
      if (kv_put(&p->cancelled_ops, op_id, when) != 0)
        free(when);
    }
  }
  cancel_arg_t c = {op_id, 0, 0};
  kv_each(&p->acts, cancel_each, &c);
  return c.n + sdk_job_cancel_op(&p->jobs, op_id);
}

void sdk_activity_cancel_all(smaug_plugin_t *p) {
  cancel_arg_t c = {NULL, 0, 1};
  kv_each(&p->acts, cancel_each, &c);
  sdk_job_cancel_op(&p->jobs, NULL);
}

typedef struct {
  smaug_plugin_t *p;
  int all;
} sweep_arg_t;

static void sweep_act(const char *key, void *val, void *arg) {
  smaug_activity_t *a = val;
  sweep_arg_t *s = arg;
  if (a->st != ST_DONE || a->refs != 1)
    return;
  if (!s->all &&
      a->done_at + (uint64_t)s->p->result_ttl_ms > uv_now(s->p->loop))
    return;
  kv_del(&s->p->acts, key);
  a->in_index = 0;
  act_unref(a);
}

static void sweep_op(const char *key, void *val, void *arg) {
  sweep_arg_t *s = arg;
  uint64_t *when = val;
  if (s->all || *when + (uint64_t)s->p->result_ttl_ms <= uv_now(s->p->loop)) {
    kv_del(&s->p->cancelled_ops, key);
    free(when);
  }
}

void sdk_activity_sweep(smaug_plugin_t *p, int all) {
  sweep_arg_t s = {p, all};
  kv_each(&p->acts, sweep_act, &s);
  kv_each(&p->cancelled_ops, sweep_op, &s);
}

/* --------------------------------------------------------------- jobs */

/* A job of `act` started: it holds a reference on the context and counts
 * on the resource until the `ended` hook. */
static void job_begin(smaug_activity_t *act) {
  act->refs++;
  act->res->pending++;
  act->res->started++;
}

/* A held Sync reports the resource's jobs, unless the plugin reports its
 * own progress. */
static void jobs_progress(smaug_activity_t *a) {
  if (!a->author_progress)
    progress(a, a->res->finished, a->res->started, "jobs",
             "waiting for background work");
}

typedef struct {
  smaug_plugin_t *p;
} beat_arg_t;

static void beat_each(const char *key, void *val, void *arg) {
  smaug_activity_t *a = val;
  if (a->st == ST_DONE || a->n_calls == 0)
    return;
  if (a->st == ST_HELD && !a->author_progress) {
    jobs_progress(a);
    return;
  }
  a->has_progress = 1; /* zeros until the plugin says more */
  for (size_t i = 0; i < a->n_calls; i++)
    send_progress(a, a->calls[i]);
}

void sdk_activity_heartbeat(smaug_plugin_t *p) {
  beat_arg_t b = {p};
  kv_each(&p->acts, beat_each, &b);
}

/* The `ended` hook: a failed job's status and message are recorded on the
 * resource, its metadata copied there; a Sync held for the jobs answers
 * once none is left. */
static void job_end(smaug_activity_t *act, int status, const char *msg,
                    const kv_t *meta) {
  sdk_res_t *r = act->res;
  assert(r->pending > 0);
  r->pending--;
  r->finished++;
  if (status != 0 && r->err == 0) {
    r->err = status;
    r->err_msg =
        strdup(msg != NULL && msg[0] != '\0' ? msg : smaug_strerror(status));
  }
  for (size_t i = 0; i < kv_count(meta); i++)
    if (kv_set(&r->meta, meta->items[i].key, meta->items[i].val) != 0)
      rt_log(RT_LOG_WARN, "plugin", "job metadata dropped", "key=%s",
             meta->items[i].key);
  for (size_t i = 0; i < r->n_waiters; i++)
    jobs_progress(r->waiters[i]);
  /* finalize() removes each waiter from the list. */
  while (r->pending == 0 && r->n_waiters > 0)
    release_sync(r->waiters[0]);
  act_unref(act); /* `act` may be gone */
}

/* The `progress` hook: sent to `act` while it is open and to every open
 * Sync of its resource. */
static void job_progress(smaug_activity_t *act, uint64_t done, uint64_t total,
                         const char *unit, const char *message) {
  /* The job speaks for the activity now: heartbeats repeat its update
   * instead of the count of jobs. */
  if (act->st != ST_DONE) {
    act->author_progress = 1;
    progress(act, done, total, unit, message);
  }
  sdk_res_t *r = act->res;
  for (size_t i = 0; i < r->n_syncs; i++) {
    if (r->syncs[i] == act)
      continue;
    r->syncs[i]->author_progress = 1;
    progress(r->syncs[i], done, total, unit, message);
  }
}

const sdk_job_hooks_t sdk_activity_job_hooks = {job_progress, job_end};

/* 0 if `act` may start a job now: it is running, or it succeeded and its
 * resource still has jobs (a done callback chaining the next job). Else
 * SMAUG_ECANCELED or SMAUG_EINVAL. */
static int can_start(const smaug_activity_t *act) {
  if (atomic_load(&act->cancelled))
    return SMAUG_ECANCELED;
  if (act->st == ST_RUNNING || act->st == ST_HELD)
    return 0;
  if (act->st == ST_DONE && act->code == GRPC_STATUS_OK && act->res->pending)
    return 0;
  return SMAUG_EINVAL;
}

/* Starts a job or a poll of `act` (smaug/job.h) once the checks that need
 * the activity have passed; the job layer does the rest. */
static int job_start(smaug_activity_t *act, const char *queue,
                     smaug_job_work_cb work, smaug_poll_status_cb status,
                     const smaug_poll_opts_t *opts, smaug_job_done_cb done,
                     void *data) {
  if (act == NULL)
    return SMAUG_EINVAL;
  int err = can_start(act);
  if (err != 0)
    return err;
  smaug_plugin_t *p = act->p;
  sdk_queue_t *q = NULL;
  if (queue != NULL &&
      (q = sdk_queue_find(p->queues, p->n_queues, queue)) == NULL)
    return SMAUG_ENOENT;
  err = sdk_job_start(&p->jobs, act, act->res, act->req->operation->id, q, work,
                      status, opts, done, data);
  if (err == 0)
    job_begin(act); /* the job cannot end before the loop runs again */
  return err;
}

int smaug_job_start(smaug_activity_t *act, smaug_job_work_cb work,
                    smaug_job_done_cb done, void *data) {
  if (work == NULL)
    return SMAUG_EINVAL;
  return job_start(act, NULL, work, NULL, NULL, done, data);
}

int smaug_job_enqueue(smaug_activity_t *act, const char *queue,
                      smaug_job_work_cb work, smaug_job_done_cb done,
                      void *data) {
  if (work == NULL || queue == NULL)
    return SMAUG_EINVAL;
  return job_start(act, queue, work, NULL, NULL, done, data);
}

int smaug_poll_start(smaug_activity_t *act, const smaug_poll_opts_t *opts,
                     smaug_poll_status_cb status, smaug_job_done_cb done,
                     void *data) {
  if (status == NULL)
    return SMAUG_EINVAL;
  return job_start(act, NULL, NULL, status, opts, done, data);
}

/* --------------------------------------------------------- dispatching */

static int valid_section(const char *s) {
  return s[0] == '\0' || (s[0] != '/' && strstr(s, "..") == NULL &&
                          strspn(s, "abcdefghijklmnopqrstuvwxyz"
                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    "0123456789._-/#:") == strlen(s));
}

static const char *check_request(const Smaug__V1__ActivityRequest *req,
                                 smaug_activity_kind_t kind) {
  if (req->operation == NULL || req->operation->id[0] == '\0')
    return "operation.id is required";
  if (req->operation->kind <
          SMAUG__V1__OPERATION_KIND__OPERATION_KIND_PROTECT ||
      req->operation->kind > SMAUG__V1__OPERATION_KIND__OPERATION_KIND_DELETE)
    return "operation.kind must be protect, restore or delete";
  if (req->resource == NULL || req->resource->type[0] == '\0')
    return "resource.type is required";
  if (req->resource->id[0] == '\0')
    return "resource.id is required";
  if (req->activity != SMAUG__V1__ACTIVITY__ACTIVITY_UNSPECIFIED &&
      (int)req->activity != (int)kind)
    return "activity does not match the method";
  if (!valid_section(req->bank_section))
    return "bank_section must be a relative path without '..'";
  return NULL;
}

static int attach(smaug_activity_t *a, rt_call_t *call) {
  if (a->n_calls == a->cap_calls) {
    size_t cap = a->cap_calls ? a->cap_calls * 2 : 2;
    rt_call_t **nc = realloc(a->calls, cap * sizeof(*nc));
    if (nc == NULL)
      return SMAUG_ENOMEM;
    a->calls = nc;
    a->cap_calls = cap;
  }
  a->calls[a->n_calls++] = call;
  rt_call_on_cancel(call, on_call_cancel, a);
  if (a->has_progress)
    send_progress(a, call);
  return 0;
}

static Smaug__V1__ActivityRequest *
copy_request(const Smaug__V1__ActivityRequest *req) {
  ProtobufCMessage *c;
  return rt_msg_copy(&req->base, &c) == 0 ? (Smaug__V1__ActivityRequest *)c
                                          : NULL;
}

static void dispatch(smaug_plugin_t *p, rt_call_t *call,
                     const Smaug__V1__ActivityRequest *req) {
  const rt_method_t *m = rt_call_method(call);
  smaug_activity_kind_t kind =
      strcmp(m->name, "SyncActivity") == 0 ? SMAUG_SYNC : SMAUG_PARALLEL;
  const char *bad = check_request(req, kind);
  if (bad != NULL) {
    rt_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "%s", bad);
    return;
  }
  if (rt_call_is_cancelled(call)) {
    rt_call_finish(call, GRPC_STATUS_CANCELLED, "call cancelled", NULL);
    return;
  }
  size_t ti = 0;
  while (ti < p->def.n_types && strcmp(p->types[ti].type, req->resource->type))
    ti++;
  if (ti == p->def.n_types) {
    rt_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "unknown resource type %s",
                 req->resource->type);
    return;
  }
  const smaug_type_def_t *t = &p->types[ti];
  const char *acts[] = {"parallel", "sync"};
  char keybuf[1024];
  const char *key = req->idempotency_key;
  if (key[0] == '\0') {
    snprintf(keybuf, sizeof(keybuf), "%s/%s/%s/%s", req->operation->id,
             req->resource->type, req->resource->id, acts[kind - 1]);
    key = keybuf;
  }

  smaug_activity_t *a = kv_ptr(&p->acts, key);
  if (a != NULL) {
    if (strcmp(a->req->resource->type, req->resource->type) != 0 ||
        strcmp(a->req->resource->id, req->resource->id) != 0 ||
        strcmp(a->req->operation->id, req->operation->id) != 0 ||
        a->kind != kind) {
      rt_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                   "idempotency key %s was used for another activity", key);
      return;
    }
    if (a->st == ST_DONE)
      send_result(a, call);
    else if (attach(a, call) != 0)
      rt_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  if (p->stopping) {
    rt_call_fail(call, GRPC_STATUS_UNAVAILABLE, "plugin is shutting down");
    return;
  }
  if (kv_ptr(&p->cancelled_ops, req->operation->id) != NULL) {
    rt_call_fail(call, GRPC_STATUS_CANCELLED, "operation %s was cancelled",
                 req->operation->id);
    return;
  }
  const smaug_op_def_t *ops[] = {&t->protect, &t->restore, &t->remove};
  const smaug_op_def_t *od = ops[req->operation->kind - 1];
  smaug_activity_cb fn = kind == SMAUG_PARALLEL ? od->parallel : od->sync;
  if (fn == NULL && !(kind == SMAUG_SYNC && od->parallel != NULL)) {
    rt_call_fail(call, GRPC_STATUS_UNIMPLEMENTED,
                 "%s does not implement this activity", t->type);
    return;
  }
  if ((t->max_concurrency && p->type_inflight[ti] >= t->max_concurrency) ||
      (p->def.max_concurrency && p->inflight >= p->def.max_concurrency)) {
    rt_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                 "too many activities in flight for %s", t->type);
    return;
  }

  a = calloc(1, sizeof(*a));
  if (a == NULL)
    goto nomem;
  a->p = p;
  a->type = t;
  a->type_index = ti;
  a->kind = kind;
  a->op = (smaug_op_t)req->operation->kind;
  a->refs = 2; /* the index and the author */
  if ((a->key = strdup(key)) == NULL || (a->req = copy_request(req)) == NULL ||
      (a->res = res_ref(p, req)) == NULL || kv_put(&p->acts, a->key, a) != 0)
    goto nomem_free;
  a->in_index = 1;
  a->bank_err =
      a->req->bank_uri[0] != '\0'
          ? smaug_bank_open(a->req->bank_uri, a->req->bank_section, &a->bank)
          : SMAUG_EINVAL;
  if ((kind == SMAUG_SYNC && res_add_sync(a->res, a) != 0) ||
      attach(a, call) != 0) {
    res_del_sync(a->res, a);
    kv_del(&p->acts, a->key);
    goto nomem_free;
  }
  a->counted = 1;
  p->type_inflight[ti]++;
  p->inflight++;
  rt_log(RT_LOG_DEBUG, "plugin", "activity started",
         "op=%s type=%s id=%s activity=%s key=%s", a->req->operation->id,
         t->type, a->req->resource->id, acts[kind - 1], a->key);
  if (fn != NULL)
    fn(a, t->data);
  else
    smaug_activity_complete(a, NULL); /* implicit Sync: wait for the jobs */
  return;
nomem_free:
  a->refs = 1;
  act_unref(a);
nomem:
  rt_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
}

void sdk_activity_rpc(rt_call_t *call, const Smaug__V1__ActivityRequest *req,
                      void *data) {
  dispatch(data, call, req);
}

/* ----------------------------------------------------- public: request */

smaug_op_t smaug_activity_op(const smaug_activity_t *act) {
  return act->op;
}

smaug_activity_kind_t smaug_activity_kind(const smaug_activity_t *act) {
  return act->kind;
}

const char *smaug_activity_operation_id(const smaug_activity_t *act) {
  return act->req->operation->id;
}

const char *smaug_activity_checkpoint_id(const smaug_activity_t *act) {
  return act->req->operation->checkpoint_id;
}

const char *smaug_activity_type(const smaug_activity_t *act) {
  return act->req->resource->type;
}

const char *smaug_activity_resource_id(const smaug_activity_t *act) {
  return act->req->resource->id;
}

const char *smaug_activity_resource_name(const smaug_activity_t *act) {
  return act->req->resource->name;
}

unsigned smaug_activity_attempt(const smaug_activity_t *act) {
  return act->req->attempt;
}

const char *smaug_activity_bank_uri(const smaug_activity_t *act) {
  return act->req->bank_uri;
}

const char *smaug_activity_bank_section(const smaug_activity_t *act) {
  return act->req->bank_section;
}

#define FIND(n, arr, key)                                                      \
  do {                                                                         \
    for (size_t i_ = 0; i_ < (n); i_++)                                        \
      if (strcmp((arr)[i_]->key, (key)) == 0)                                  \
        return (arr)[i_]->value;                                               \
    return NULL;                                                               \
  } while (0)

const char *smaug_activity_extra(const smaug_activity_t *act, const char *key) {
  FIND(act->req->resource->n_extra, act->req->resource->extra, key);
}

const char *smaug_activity_param(const smaug_activity_t *act, const char *key) {
  FIND(act->req->n_parameters, act->req->parameters, key);
}

const char *smaug_activity_saved(const smaug_activity_t *act, const char *key) {
  FIND(act->req->n_saved_metadata, act->req->saved_metadata, key);
}

const void *smaug_activity_state(const smaug_activity_t *act, size_t *len) {
  *len = act->req->state.len;
  return act->req->state.len > 0 ? act->req->state.data : NULL;
}

size_t smaug_activity_n_children(const smaug_activity_t *act) {
  return act->req->n_children;
}

static const Smaug__V1__ChildResult *child(const smaug_activity_t *act,
                                           size_t i) {
  return i < act->req->n_children ? act->req->children[i] : NULL;
}

const char *smaug_activity_child_type(const smaug_activity_t *act, size_t i) {
  const Smaug__V1__ChildResult *c = child(act, i);
  return c != NULL && c->resource != NULL ? c->resource->type : NULL;
}

const char *smaug_activity_child_id(const smaug_activity_t *act, size_t i) {
  const Smaug__V1__ChildResult *c = child(act, i);
  return c != NULL && c->resource != NULL ? c->resource->id : NULL;
}

const char *smaug_activity_child_restored_id(const smaug_activity_t *act,
                                             size_t i) {
  const Smaug__V1__ChildResult *c = child(act, i);
  return c != NULL ? c->restored_id : NULL;
}

const char *smaug_activity_child_metadata(const smaug_activity_t *act, size_t i,
                                          const char *key) {
  const Smaug__V1__ChildResult *c = child(act, i);
  if (c == NULL)
    return NULL;
  FIND(c->n_metadata, c->metadata, key);
}

/* ------------------------------------------------ public: progress/end */

static int replace_str(char **dst, const char *src) {
  char *s = src != NULL ? strdup(src) : NULL;
  if (src != NULL && s == NULL)
    return SMAUG_ENOMEM;
  free(*dst);
  *dst = s;
  return 0;
}

void smaug_activity_progress(smaug_activity_t *act, uint64_t done,
                             uint64_t total, const char *unit,
                             const char *message) {
  act->author_progress = 1;
  progress(act, done, total, unit, message);
}

static void progress(smaug_activity_t *act, uint64_t done, uint64_t total,
                     const char *unit, const char *message) {
  if (act->st == ST_DONE)
    return;
  if (act->has_progress && done < act->p_done)
    done = act->p_done; /* progress never goes backwards */
  act->has_progress = 1;
  act->p_done = done;
  act->p_total = total;
  if (replace_str(&act->p_unit, unit) != 0 ||
      replace_str(&act->p_msg, message) != 0)
    return;
  for (size_t i = 0; i < act->n_calls; i++)
    send_progress(act, act->calls[i]);
}

int smaug_activity_set_state(smaug_activity_t *act, const void *state,
                             size_t len) {
  if (act->kind != SMAUG_PARALLEL || act->author_done)
    return SMAUG_EINVAL;
  uint8_t *s = NULL;
  if (len > 0) {
    if ((s = malloc(len)) == NULL)
      return SMAUG_ENOMEM;
    memcpy(s, state, len);
  }
  free(act->state);
  act->state = s;
  act->state_len = len;
  return 0;
}

int smaug_activity_set_metadata(smaug_activity_t *act, const char *key,
                                const char *value) {
  if (act->kind != SMAUG_SYNC || act->author_done || key == NULL ||
      value == NULL)
    return SMAUG_EINVAL;
  return kv_set(&act->meta, key, value);
}

int smaug_activity_set_restored_id(smaug_activity_t *act, const char *id) {
  if (act->kind != SMAUG_SYNC || act->author_done || id == NULL)
    return SMAUG_EINVAL;
  return replace_str(&act->restored_id, id);
}

void smaug_activity_complete(smaug_activity_t *act, const char *message) {
  assert(!act->author_done);
  act->author_done = 1;
  if (act->st == ST_RUNNING) {
    (void)replace_str(&act->message, message);
    if (act->kind == SMAUG_PARALLEL) {
      finalize(act, GRPC_STATUS_OK, NULL);
    } else if (act->res->pending > 0) {
      sdk_res_t *r = act->res;
      smaug_activity_t **w =
          realloc(r->waiters, (r->n_waiters + 1) * sizeof(*w));
      if (w == NULL) {
        finalize(act, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
      } else {
        r->waiters = w;
        r->waiters[r->n_waiters++] = act;
        act->st = ST_HELD;
        jobs_progress(act);
      }
    } else {
      release_sync(act);
    }
  }
  act_unref(act); /* the author's reference */
}

void smaug_activity_fail(smaug_activity_t *act, int err, const char *fmt, ...) {
  assert(!act->author_done);
  act->author_done = 1;
  if (act->st != ST_DONE) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* A failed activity keeps nothing running behind it (for Sync: the
     * whole resource, which has failed). */
    sdk_job_cancel(&act->p->jobs, act,
                   act->kind == SMAUG_SYNC ? act->res : NULL);
    finalize(act, err == 0 ? GRPC_STATUS_UNKNOWN : sdk_err_to_status(err), msg);
  }
  act_unref(act);
}

/* ------------------------------------------------ public: cancellation */

int smaug_activity_is_cancelled(const smaug_activity_t *act) {
  return atomic_load(&act->cancelled);
}

void smaug_activity_on_cancel(smaug_activity_t *act, smaug_cancel_cb cb,
                              void *data) {
  act->cancel_cb = cb;
  act->cancel_data = data;
}

void smaug_activity_set_data(smaug_activity_t *act, void *data) {
  act->user_data = data;
}

void *smaug_activity_data(const smaug_activity_t *act) {
  return act->user_data;
}

int smaug_activity_bank(smaug_activity_t *act, smaug_bank_t **out) {
  if (act->bank == NULL)
    return act->bank_err;
  *out = act->bank;
  return 0;
}
