/*
 * test_job.c - jobs, queues and polls (plugin-sdk/src/job.c): Sync waits
 * for the jobs Parallel started, a job's failure fails Sync, queue limits
 * hold, polls finish or time out, CancelOperation reaches running jobs,
 * and a dropped call does not: its replay joins the job.
 */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static h_t h;

static void teardown(void) {
  h_stop(&h);
}

/* Keeps the loop turning while a test waits for a pool thread's trace. */
static void tick(uv_timer_t *t) {}

static void wait_trace(const char *ev) {
  uv_timer_t t;
  uv_timer_init(&h.loop, &t);
  uv_timer_start(&t, tick, 1, 1);
  while (trace_pos(ev) < 0)
    uv_run(&h.loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&h.loop, UV_RUN_NOWAIT);
}

/* ------------------------------------------------ Sync waits for jobs */

static int slow_job(smaug_job_t *job, void *data) {
  while (trace_pos("sync-cb") < 0)
    usleep(1000);
  usleep(50000); /* an SDK that did not wait would answer Sync now */
  smaug_job_set_metadata(job, "bytes", "42");
  trace_add("job-end");
  return 0;
}

static int failing_job(smaug_job_t *job, void *data) {
  smaug_job_set_message(job, "disk on fire");
  return SMAUG_EIO;
}

static void par_start_job(smaug_activity_t *act, void *data) {
  const char *mode = smaug_activity_param(act, "mode");
  int fail = mode != NULL && strcmp(mode, "fail") == 0;
  cr_assert_eq(smaug_job_start(act, fail ? failing_job : slow_job, NULL, NULL),
               0);
  smaug_activity_set_state(act, "st", 2);
  smaug_activity_complete(act, NULL);
}

static void sync_record(smaug_activity_t *act, void *data) {
  size_t len;
  const char *st = smaug_activity_state(act, &len);
  cr_assert_eq(len, 2);
  cr_assert_eq(memcmp(st, "st", 2), 0);
  trace_add("sync-cb");
  smaug_activity_set_metadata(act, "own", "yes");
  smaug_activity_complete(act, NULL);
}

static const smaug_type_def_t wait_types[] = {
    {.size = sizeof(smaug_type_def_t),
     .type = "t.wait",
     .protect = {.parallel = par_start_job, .sync = sync_record}},
    {.size = sizeof(smaug_type_def_t),
     .type = "t.implicit",
     .protect = {.parallel = par_start_job}}};
static const smaug_plugin_def_t wait_def = {.size = sizeof(smaug_plugin_def_t),
                                            .name = "t",
                                            .version = "1",
                                            .types = wait_types,
                                            .n_types = 2};

static void run_pair(const char *type, const char *mode, chk_act_t *par,
                     chk_act_t *sync) {
  chk_req_t r;
  h_req(&r, "op1", type, "r1", 0);
  if (mode != NULL) {
    r.n_params = 1;
    r.param_k[0] = "mode";
    r.param_v[0] = mode;
  }
  cr_assert_eq(chk_act_run(&h.c, &r, 10000, par), 0);
  cr_assert_eq(par->code, GRPC_STATUS_OK, "%s", par->message);
  r.sync = 1;
  r.key = "op1/sync";
  r.state = par->state;
  r.state_len = par->state_len;
  cr_assert_eq(chk_act_run(&h.c, &r, 10000, sync), 0);
  trace_add("sync-answered");
}

Test(job, sync_waits_for_jobs_started_in_parallel, .fini = teardown,
     .timeout = 20) {
  trace_reset();
  h_start(&h, &wait_def, NULL);
  chk_act_t par, sync;
  run_pair("t.wait", NULL, &par, &sync);
  cr_assert_eq(sync.code, GRPC_STATUS_OK, "%s", sync.message);
  cr_assert_lt(trace_pos("sync-cb"), trace_pos("job-end"));
  cr_assert_lt(trace_pos("job-end"), trace_pos("sync-answered"));
  cr_assert_str_eq(chk_act_meta(&sync, "bytes"), "42");
  cr_assert_str_eq(chk_act_meta(&sync, "own"), "yes");
  cr_assert_geq(sync.n_progress, 1, "a held Sync reports its jobs");
  cr_assert(sync.monotonic);
  cr_assert_eq(sync.last_done, 1);
  chk_act_clear(&par);
  chk_act_clear(&sync);
}

Test(job, implicit_sync_waits_for_parallel_jobs, .fini = teardown,
     .timeout = 20) {
  trace_reset();
  trace_add("sync-cb"); /* no Sync callback: let the job go at once */
  h_start(&h, &wait_def, NULL);
  chk_act_t par, sync;
  run_pair("t.implicit", NULL, &par, &sync);
  cr_assert_eq(sync.code, GRPC_STATUS_OK, "%s", sync.message);
  cr_assert_lt(trace_pos("job-end"), trace_pos("sync-answered"));
  cr_assert_str_eq(chk_act_meta(&sync, "bytes"), "42");
  chk_act_clear(&par);
  chk_act_clear(&sync);
}

Test(job, job_failure_fails_sync_with_its_message, .fini = teardown,
     .timeout = 20) {
  trace_reset();
  h_start(&h, &wait_def, NULL);
  chk_act_t par, sync;
  run_pair("t.wait", "fail", &par, &sync);
  cr_assert_eq(sync.code, GRPC_STATUS_INTERNAL);
  cr_assert_str_eq(sync.message, "disk on fire");
  chk_act_clear(&par);
  chk_act_clear(&sync);
}

/* ------------------------------------------------------------- queues */

static atomic_int q_running, q_max, q_done;

static int queued_job(smaug_job_t *job, void *data) {
  int now = atomic_fetch_add(&q_running, 1) + 1;
  int max = atomic_load(&q_max);
  while (now > max && !atomic_compare_exchange_weak(&q_max, &max, now))
    ;
  usleep(2000);
  atomic_fetch_sub(&q_running, 1);
  atomic_fetch_add(&q_done, 1);
  return 0;
}

static void par_enqueue(smaug_activity_t *act, void *data) {
  for (int i = 0; i < 100; i++)
    cr_assert_eq(smaug_job_enqueue(act, "heavy", queued_job, NULL, NULL), 0);
  cr_assert_eq(smaug_job_enqueue(act, "nope", queued_job, NULL, NULL),
               SMAUG_ENOENT);
  smaug_activity_complete(act, NULL);
}

static const smaug_type_def_t q_types[] = {
    {.size = sizeof(smaug_type_def_t),
     .type = "t.q",
     .protect = {.parallel = par_enqueue}}};
static const smaug_queue_def_t q_queues[] = {{"heavy", 3}};
static const smaug_plugin_def_t q_def = {.size = sizeof(smaug_plugin_def_t),
                                         .name = "t",
                                         .version = "1",
                                         .types = q_types,
                                         .n_types = 1,
                                         .queues = q_queues,
                                         .n_queues = 1};

static void run_queue(int want_max) {
  chk_act_t par, sync;
  run_pair("t.q", NULL, &par, &sync);
  cr_assert_eq(sync.code, GRPC_STATUS_OK, "%s", sync.message);
  cr_assert_eq(atomic_load(&q_done), 100, "Sync answered before all jobs");
  cr_assert_leq(atomic_load(&q_max), want_max);
  cr_assert_geq(atomic_load(&q_max), 1);
  cr_assert_leq(sdk_plugin_queue(h.p, "heavy")->max_seen, (unsigned)want_max);
  chk_act_clear(&par);
  chk_act_clear(&sync);
}

Test(job, queue_limit_holds_under_100_jobs, .fini = teardown, .timeout = 30) {
  h_start(&h, &q_def, NULL);
  run_queue(3);
}

Test(job, queue_limit_comes_from_the_flag, .fini = teardown, .timeout = 30) {
  const char *args[] = {"--queue", "heavy=1", NULL};
  h_start(&h, &q_def, args);
  run_queue(1);
  cr_assert_eq(atomic_load(&q_max), 1);
}

Test(job, queue_limit_comes_from_the_environment, .fini = teardown,
     .timeout = 30) {
  setenv("SMAUG_QUEUE_HEAVY", "2", 1);
  h_start(&h, &q_def, NULL);
  cr_assert_eq(sdk_plugin_queue(h.p, "heavy")->limit, 2);
  run_queue(2);
}

/* -------------------------------------------------------------- polls */

static atomic_int poll_calls;
static int poll_status = 1;

static int status_never(smaug_job_t *job, void *data) {
  atomic_fetch_add(&poll_calls, 1);
  return 0;
}

static int status_third(smaug_job_t *job, void *data) {
  return atomic_fetch_add(&poll_calls, 1) + 1 >= 3 ? 1 : 0;
}

static void poll_done(smaug_job_t *job, int status, void *data) {
  poll_status = status;
}

static void par_poll(smaug_activity_t *act, void *data) {
  const char *mode = smaug_activity_param(act, "mode");
  int third = mode != NULL && strcmp(mode, "third") == 0;
  int forever = mode != NULL && strcmp(mode, "forever") == 0;
  smaug_poll_opts_t o = {
      .size = sizeof(o), .interval_ms = 5, .timeout_ms = forever ? 600000 : 60};
  cr_assert_eq(smaug_poll_start(act, &o, third ? status_third : status_never,
                                poll_done, NULL),
               0);
  smaug_activity_complete(act, NULL);
}

static const smaug_type_def_t p_types[] = {{.size = sizeof(smaug_type_def_t),
                                            .type = "t.poll",
                                            .protect = {.parallel = par_poll}}};
static const smaug_plugin_def_t p_def = {.size = sizeof(smaug_plugin_def_t),
                                         .name = "t",
                                         .version = "1",
                                         .types = p_types,
                                         .n_types = 1};

Test(job, poll_times_out, .fini = teardown, .timeout = 20) {
  h_start(&h, &p_def, NULL);
  chk_act_t par, sync;
  run_pair("t.poll", NULL, &par, &sync);
  cr_assert_eq(poll_status, SMAUG_ETIMEDOUT);
  cr_assert_geq(atomic_load(&poll_calls), 2);
  cr_assert_eq(sync.code, GRPC_STATUS_DEADLINE_EXCEEDED);
  chk_act_clear(&par);
  chk_act_clear(&sync);
}

Test(job, poll_finishes_when_status_succeeds, .fini = teardown, .timeout = 20) {
  h_start(&h, &p_def, NULL);
  chk_act_t par, sync;
  run_pair("t.poll", "third", &par, &sync);
  cr_assert_eq(poll_status, 0);
  cr_assert_eq(atomic_load(&poll_calls), 3);
  cr_assert_eq(sync.code, GRPC_STATUS_OK, "%s", sync.message);
  chk_act_clear(&par);
  chk_act_clear(&sync);
}

/* ------------------------------------------------------- cancellation */

static int job_status = 1;

static int until_cancelled(smaug_job_t *job, void *data) {
  trace_add("job-running");
  while (!smaug_job_is_cancelled(job))
    usleep(1000);
  trace_add("job-saw-cancel");
  return SMAUG_ECANCELED;
}

static void job_done(smaug_job_t *job, int status, void *data) {
  job_status = status;
  trace_add("job-done");
}

static void par_forever(smaug_activity_t *act, void *data) {
  cr_assert_eq(smaug_job_start(act, until_cancelled, job_done, NULL), 0);
  smaug_activity_complete(act, NULL);
}

static const smaug_type_def_t c_types[] = {
    {.size = sizeof(smaug_type_def_t),
     .type = "t.cancel",
     .protect = {.parallel = par_forever}}};
static const smaug_plugin_def_t c_def = {.size = sizeof(smaug_plugin_def_t),
                                         .name = "t",
                                         .version = "1",
                                         .types = c_types,
                                         .n_types = 1};

Test(job, cancel_operation_reaches_a_running_job, .fini = teardown,
     .timeout = 20) {
  trace_reset();
  h_start(&h, &c_def, NULL);
  chk_req_t r;
  chk_act_t par, sync;
  h_req(&r, "opc", "t.cancel", "r1", 0);
  cr_assert_eq(chk_act_run(&h.c, &r, 10000, &par), 0);
  cr_assert_eq(par.code, GRPC_STATUS_OK);
  wait_trace("job-running");
  unsigned n = 0;
  grpc_status_code code;
  cr_assert_eq(chk_cancel_op(&h.c, "opc", &n, &code), 0);
  cr_assert_eq(code, GRPC_STATUS_OK);
  cr_assert_eq(n, 1);
  wait_trace("job-done");
  cr_assert_eq(job_status, SMAUG_ECANCELED);
  cr_assert_lt(trace_pos("job-saw-cancel"), trace_pos("job-done"));
  /* The operation stays cancelled for later calls. */
  r.sync = 1;
  r.key = "opc/sync";
  cr_assert_eq(chk_act_run(&h.c, &r, 10000, &sync), 0);
  cr_assert_eq(sync.code, GRPC_STATUS_CANCELLED);
  chk_act_clear(&par);
  chk_act_clear(&sync);
}

/* ---------------------------------------- a dropped call is no cancel */

static atomic_int gate;

/* Runs until the gate opens; a cancel is recorded and ends it early. */
static int gated_copy(smaug_job_t *job, void *data) {
  trace_add("job-running");
  while (!atomic_load(&gate) && !smaug_job_is_cancelled(job))
    usleep(1000);
  if (smaug_job_is_cancelled(job)) {
    trace_add("job-saw-cancel");
    return SMAUG_ECANCELED;
  }
  smaug_job_set_metadata(job, "bytes", "42");
  trace_add("job-end");
  return 0;
}

static void par_gated(smaug_activity_t *act, void *data) {
  trace_add("parallel-cb");
  cr_assert_eq(smaug_job_start(act, gated_copy, job_done, NULL), 0);
  smaug_activity_complete(act, NULL);
}

static void sync_counted(smaug_activity_t *act, void *data) {
  trace_add("sync-cb");
  smaug_activity_complete(act, "stored"); /* held for the job */
}

static const smaug_type_def_t g_types[] = {
    {.size = sizeof(smaug_type_def_t),
     .type = "t.gated",
     .protect = {.parallel = par_gated, .sync = sync_counted}}};
static const smaug_plugin_def_t g_def = {.size = sizeof(smaug_plugin_def_t),
                                         .name = "t",
                                         .version = "1",
                                         .types = g_types,
                                         .n_types = 1};

/* Starts the plugin and runs Parallel of operation `op` (its gated job
 * then runs); leaves in `r` the request of the Sync, key "<op>/sync". */
static void gated_parallel(const char *op, chk_req_t *r, chk_act_t *par) {
  static char key[64];
  trace_reset();
  atomic_store(&gate, 0);
  job_status = 1;
  h_start(&h, &g_def, NULL);
  h_req(r, op, "t.gated", "r1", 0);
  cr_assert_eq(chk_act_run(&h.c, r, 10000, par), 0);
  cr_assert_eq(par->code, GRPC_STATUS_OK, "%s", par->message);
  wait_trace("job-running");
  snprintf(key, sizeof(key), "%s/sync", op);
  r->sync = 1;
  r->key = key;
}

/* Parallel, then a Sync call that ends without an answer (`drop` 0: the
 * caller cancels it; 1: its deadline passes), then the replay of that Sync
 * with the same key, started before the job is let go. */
static void drop_then_replay(int drop, chk_act_t *first, chk_act_t *replay) {
  chk_req_t r;
  chk_act_t par;
  gated_parallel("opg", &r, &par);
  if (drop == 0) {
    cr_assert_eq(chk_act_start(&h.c, &r, 10000, first), 0);
    while (trace_pos("sync-cb") < 0)
      uv_run(&h.loop, UV_RUN_ONCE);
    chk_act_cancel(first);
    chk_wait(&h.c, &first->done);
    cr_assert_eq(first->code, GRPC_STATUS_CANCELLED);
  } else {
    cr_assert_eq(chk_act_run(&h.c, &r, 100, first), 0);
    cr_assert_eq(first->code, GRPC_STATUS_DEADLINE_EXCEEDED);
  }
  cr_assert_eq(trace_pos("job-saw-cancel"), -1, "the job was cancelled");
  cr_assert_eq(chk_act_start(&h.c, &r, 10000, replay), 0);
  /* The replay is attached once it has the held Sync's progress. */
  while (replay->n_progress == 0 && !replay->done)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert(!replay->done, "the replay was answered before the job ended");
  trace_add("gate-open");
  atomic_store(&gate, 1);
  chk_wait(&h.c, &replay->done);
  trace_add("replay-answered");
  chk_act_clear(&par);
}

static void assert_joined(const chk_act_t *replay) {
  cr_assert_eq(replay->code, GRPC_STATUS_OK, "%s", replay->message);
  cr_assert_str_eq(chk_act_meta(replay, "bytes"), "42");
  cr_assert_eq(trace_pos("job-saw-cancel"), -1);
  cr_assert_eq(job_status, 0);
  cr_assert_eq(trace_count("parallel-cb"), 1);
  cr_assert_eq(trace_count("sync-cb"), 1, "the replay ran the Sync again");
  cr_assert_eq(trace_count("job-running"), 1, "the work was started again");
  cr_assert_lt(trace_pos("gate-open"), trace_pos("job-end"));
  cr_assert_lt(trace_pos("job-end"), trace_pos("replay-answered"));
}

Test(job, a_cancelled_sync_call_leaves_the_job_running_for_the_replay,
     .fini = teardown, .timeout = 20) {
  chk_act_t first = {0}, replay = {0};
  drop_then_replay(0, &first, &replay);
  assert_joined(&replay);
  chk_act_clear(&first);
  chk_act_clear(&replay);
}

Test(job, a_sync_past_its_deadline_leaves_the_job_running_for_the_replay,
     .fini = teardown, .timeout = 20) {
  chk_act_t first = {0}, replay = {0};
  drop_then_replay(1, &first, &replay);
  assert_joined(&replay);
  chk_act_clear(&first);
  chk_act_clear(&replay);
}

Test(job, a_replay_after_the_job_ended_gets_the_stored_result, .fini = teardown,
     .timeout = 20) {
  chk_req_t r;
  chk_act_t par, first, replay;
  gated_parallel("ops", &r, &par);
  cr_assert_eq(chk_act_start(&h.c, &r, 10000, &first), 0);
  while (trace_pos("sync-cb") < 0)
    uv_run(&h.loop, UV_RUN_ONCE);
  chk_act_cancel(&first);
  chk_wait(&h.c, &first.done);
  /* Nobody waits now; the job ends and its outcome is kept. */
  atomic_store(&gate, 1);
  wait_trace("job-done");
  cr_assert_eq(chk_act_run(&h.c, &r, 10000, &replay), 0);
  cr_assert_eq(replay.code, GRPC_STATUS_OK, "%s", replay.message);
  cr_assert_str_eq(chk_act_meta(&replay, "bytes"), "42");
  cr_assert_eq(trace_count("sync-cb"), 1);
  cr_assert_eq(trace_count("job-running"), 1);
  chk_act_clear(&par);
  chk_act_clear(&first);
  chk_act_clear(&replay);
}

Test(job, cancel_operation_still_cancels_the_job_of_a_dropped_sync,
     .fini = teardown, .timeout = 20) {
  chk_req_t r;
  chk_act_t par, first, replay;
  gated_parallel("opk", &r, &par);
  cr_assert_eq(chk_act_run(&h.c, &r, 100, &first), 0);
  cr_assert_eq(first.code, GRPC_STATUS_DEADLINE_EXCEEDED);
  unsigned n = 0;
  grpc_status_code code;
  cr_assert_eq(chk_cancel_op(&h.c, "opk", &n, &code), 0);
  cr_assert_eq(code, GRPC_STATUS_OK);
  cr_assert_geq(n, 1);
  wait_trace("job-done");
  cr_assert_eq(job_status, SMAUG_ECANCELED);
  cr_assert_geq(trace_pos("job-saw-cancel"), 0);
  cr_assert_eq(trace_pos("job-end"), -1);
  /* The replay gets the cancel, not a fresh run. */
  cr_assert_eq(chk_act_run(&h.c, &r, 10000, &replay), 0);
  cr_assert_eq(replay.code, GRPC_STATUS_CANCELLED);
  cr_assert_eq(trace_count("job-running"), 1);
  chk_act_clear(&par);
  chk_act_clear(&first);
  chk_act_clear(&replay);
}

Test(job, a_sync_held_for_jobs_sends_heartbeats, .fini = teardown,
     .timeout = 20) {
  trace_reset();
  const char *args[] = {"--heartbeat-ms", "10", NULL};
  h_start(&h, &c_def, args);
  chk_req_t r;
  chk_act_t par, sync;
  h_req(&r, "oph", "t.cancel", "r1", 0);
  cr_assert_eq(chk_act_run(&h.c, &r, 10000, &par), 0);
  r.sync = 1;
  r.key = "oph/sync";
  cr_assert_eq(chk_act_start(&h.c, &r, 10000, &sync), 0);
  /* The job only ends when cancelled: every message is a heartbeat. */
  while (sync.n_progress < 3)
    uv_run(&h.loop, UV_RUN_ONCE);
  unsigned n;
  grpc_status_code code;
  cr_assert_eq(chk_cancel_op(&h.c, "oph", &n, &code), 0);
  chk_wait(&h.c, &sync.done);
  cr_assert_eq(sync.code, GRPC_STATUS_CANCELLED);
  cr_assert(sync.monotonic);
  cr_assert_eq(sync.last_done, 0);
  wait_trace("job-done");
  chk_act_clear(&par);
  chk_act_clear(&sync);
}

Test(job, cancel_operation_stops_a_poll, .fini = teardown, .timeout = 20) {
  h_start(&h, &p_def, NULL);
  chk_req_t r;
  chk_act_t par;
  h_req(&r, "opp", "t.poll", "r1", 0);
  r.n_params = 1;
  r.param_k[0] = "mode";
  r.param_v[0] = "forever";
  cr_assert_eq(chk_act_run(&h.c, &r, 10000, &par), 0);
  cr_assert_eq(par.code, GRPC_STATUS_OK);
  unsigned n;
  grpc_status_code code;
  cr_assert_eq(chk_cancel_op(&h.c, "opp", &n, &code), 0);
  cr_assert_eq(n, 1);
  while (poll_status == 1)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(poll_status, SMAUG_ECANCELED);
  chk_act_clear(&par);
}

/* ------------------------------------------------------ job progress */

static int n_steps = 10;

static int stepping_job(smaug_job_t *job, void *data) {
  while (trace_pos("sync-cb") < 0)
    usleep(1000);
  for (int i = 1; i <= n_steps; i++) {
    char msg[32];
    snprintf(msg, sizeof(msg), "step %d", i);
    smaug_job_progress(job, (uint64_t)i, (uint64_t)n_steps, "steps", msg);
  }
  trace_add("job-end");
  return 0;
}

static void par_stepping(smaug_activity_t *act, void *data) {
  cr_assert_eq(smaug_job_start(act, stepping_job, NULL, NULL), 0);
  smaug_activity_complete(act, NULL);
}

static void sync_held(smaug_activity_t *act, void *data) {
  trace_add("sync-cb");
  smaug_activity_complete(act, NULL); /* held until the job ends */
}

static void step_job_done(smaug_job_t *job, int status, void *data) {
  smaug_activity_t *act = smaug_job_activity(job);
  if (status != 0)
    smaug_activity_fail(act, status, "%s", smaug_job_message(job));
  else
    smaug_activity_complete(act, "stepped");
}

/* A Sync that runs the job itself and ends from its done callback. */
static void sync_own_job(smaug_activity_t *act, void *data) {
  trace_add("sync-cb");
  cr_assert_eq(smaug_job_start(act, stepping_job, step_job_done, NULL), 0);
}

static const smaug_type_def_t s_types[] = {
    {.size = sizeof(smaug_type_def_t),
     .type = "t.held",
     .protect = {.parallel = par_stepping, .sync = sync_held}},
    {.size = sizeof(smaug_type_def_t),
     .type = "t.own",
     .protect = {.sync = sync_own_job}}};
static const smaug_plugin_def_t s_def = {.size = sizeof(smaug_plugin_def_t),
                                         .name = "t",
                                         .version = "1",
                                         .types = s_types,
                                         .n_types = 2};

/* The "steps" updates of a call's recorded stream, repeats (heartbeats)
 * folded; returns how many. */
static size_t steps_seen(const chk_act_t *a, const char **out, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < a->n_progress_log; i++) {
    const char *e = a->progress_log[i];
    if (strstr(e, " steps ") == NULL)
      continue;
    if (n > 0 && strcmp(out[n - 1], e) == 0)
      continue;
    cr_assert_lt(n, max);
    out[n++] = e;
  }
  return n;
}

static void check_all_steps(const chk_act_t *sync) {
  const char *seen[64];
  size_t n = steps_seen(sync, seen, 64);
  cr_assert_eq(n, (size_t)n_steps, "%zu of %d updates arrived", n, n_steps);
  for (int i = 1; i <= n_steps; i++) {
    char want[64];
    snprintf(want, sizeof(want), "%d/%d steps step %d", i, n_steps, i);
    cr_assert_str_eq(seen[i - 1], want);
  }
  cr_assert(sync->monotonic);
}

Test(job, progress_from_a_job_reaches_the_held_sync_in_order, .fini = teardown,
     .timeout = 20) {
  trace_reset();
  n_steps = 10;
  h_start(&h, &s_def, NULL);
  chk_act_t par, sync;
  run_pair("t.held", NULL, &par, &sync);
  cr_assert_eq(sync.code, GRPC_STATUS_OK, "%s", sync.message);
  cr_assert_lt(trace_pos("job-end"), trace_pos("sync-answered"));
  check_all_steps(&sync);
  chk_act_clear(&par);
  chk_act_clear(&sync);
}

Test(job, progress_from_a_job_of_the_sync_itself_arrives_in_order,
     .fini = teardown, .timeout = 20) {
  trace_reset();
  n_steps = 10;
  h_start(&h, &s_def, NULL);
  chk_req_t r;
  chk_act_t sync;
  h_req(&r, "op1", "t.own", "r1", 1);
  cr_assert_eq(chk_act_run(&h.c, &r, 10000, &sync), 0);
  cr_assert_eq(sync.code, GRPC_STATUS_OK, "%s", sync.message);
  check_all_steps(&sync);
  chk_act_clear(&sync);
}

Test(job, a_flood_of_job_progress_keeps_order_and_the_last_update,
     .fini = teardown, .timeout = 20) {
  trace_reset();
  n_steps = 200;
  h_start(&h, &s_def, NULL);
  chk_act_t par, sync;
  run_pair("t.held", NULL, &par, &sync);
  cr_assert_eq(sync.code, GRPC_STATUS_OK, "%s", sync.message);
  const char *seen[CHK_MAX_PROGRESS_LOG];
  size_t n = steps_seen(&sync, seen, CHK_MAX_PROGRESS_LOG);
  cr_assert_geq(n, 1);
  unsigned prev = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned step = (unsigned)strtoul(seen[i], NULL, 10);
    cr_assert_gt(step, prev, "update %s came after step %u", seen[i], prev);
    prev = step;
  }
  cr_assert_str_eq(seen[n - 1], "200/200 steps step 200");
  chk_act_clear(&par);
  chk_act_clear(&sync);
}

/* ------------------------------------ the job layer on its own (sdk_job.h) */

/* job.c is the bottom of the SDK's stack: it runs with no plugin and no
 * activity, reporting only through its hooks. Owners here are dummies that
 * job.c must hand back untouched. */
typedef struct {
  int progress, ended, drained;
  int last_status;
  char meta[32];
  smaug_activity_t *last_owner;
} layer_trace_t;

static layer_trace_t lt;

static void lt_progress(smaug_activity_t *owner, uint64_t done, uint64_t total,
                        const char *unit, const char *message) {
  cr_assert_eq(done, 1);
  cr_assert_str_eq(unit, "u");
  lt.progress++;
}

static void lt_ended(smaug_activity_t *owner, int status, const char *msg,
                     const kv_t *meta) {
  lt.ended++;
  lt.last_status = status;
  lt.last_owner = owner;
  const char *v = kv_get(meta, "k");
  snprintf(lt.meta, sizeof(lt.meta), "%s", v != NULL ? v : "");
}

static void lt_drained(void *data) {
  cr_assert_eq(data, &lt);
  lt.drained++;
}

static int lt_work(smaug_job_t *job, void *data) {
  smaug_job_progress(job, 1, 2, "u", "half");
  smaug_job_set_metadata(job, "k", "first");
  smaug_job_set_metadata(job, "k", "last"); /* a duplicate key: last wins */
  return 0;
}

static int lt_wait_cancel(smaug_job_t *job, void *data) {
  while (!smaug_job_is_cancelled(job))
    usleep(1000);
  return SMAUG_ECANCELED;
}

static void lt_flush(uv_async_t *a) {
  sdk_job_flush_progress(a->data);
}

Test(job_layer, runs_and_cancels_without_a_plugin, .timeout = 20) {
  memset(&lt, 0, sizeof(lt));
  uv_loop_t loop;
  cr_assert_eq(uv_loop_init(&loop), 0);
  static const sdk_job_hooks_t hooks = {lt_progress, lt_ended};
  sdk_jobs_t js;
  uv_async_t wake;
  cr_assert_eq(uv_async_init(&loop, &wake, lt_flush), 0);
  wake.data = &js;
  sdk_jobs_init(&js, &loop, &wake, &hooks, lt_drained, &lt);
  smaug_activity_t *a = (smaug_activity_t *)&lt.progress; /* opaque */
  smaug_activity_t *b = (smaug_activity_t *)&lt.ended;

  cr_assert_eq(sdk_job_start(&js, a, NULL, "op-1", NULL, lt_work, NULL, NULL,
                             NULL, NULL),
               0);
  cr_assert_eq(lt.ended, 0, "a hook ran inside sdk_job_start");
  while (lt.drained == 0)
    uv_run(&loop, UV_RUN_ONCE);
  cr_assert_eq(lt.progress, 1);
  cr_assert_eq(lt.ended, 1);
  cr_assert_eq(lt.last_status, 0);
  cr_assert_eq(lt.last_owner, a);
  cr_assert_str_eq(lt.meta, "last");

  /* Cancelling by operation reaches the job of op-2 only. */
  static int group;
  cr_assert_eq(sdk_job_start(&js, b, &group, "op-2", NULL, lt_wait_cancel, NULL,
                             NULL, NULL, NULL),
               0);
  cr_assert_eq(sdk_jobs_live(&js), 1);
  cr_assert_eq(sdk_job_cancel_op(&js, "op-1"), 0);
  cr_assert_eq(sdk_job_cancel(&js, a, &lt), 0); /* other owner and group */
  cr_assert_eq(sdk_job_cancel_op(&js, "op-2"), 1);
  cr_assert_eq(lt.ended, 1, "a hook ran inside a cancel");
  while (lt.drained < 2)
    uv_run(&loop, UV_RUN_ONCE);
  cr_assert_eq(lt.ended, 2);
  cr_assert_eq(lt.last_status, SMAUG_ECANCELED);
  cr_assert_eq(lt.last_owner, b);
  cr_assert_eq(sdk_jobs_live(&js), 0);

  uv_close((uv_handle_t *)&wake, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&loop), 0);
}
