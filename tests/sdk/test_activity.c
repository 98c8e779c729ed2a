/*
 * test_activity.c - activity contexts and idempotency
 * (plugin-sdk/src/activity.c), with GetPluginInfo and ListDependents from
 * the type table (plugin.c): replays join or return the stored result and
 * never run the callback twice; bad requests are refused; cancellation
 * reaches the callback; progress never goes backwards.
 */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static h_t h;
static atomic_int calls;
static atomic_int gate;

static void teardown(void) {
  h_stop(&h);
}

static int gated_job(smaug_job_t *job, void *data) {
  while (!atomic_load(&gate) && !smaug_job_is_cancelled(job))
    usleep(1000);
  return 0;
}

static void gated_done(smaug_job_t *job, int status, void *data) {
  smaug_activity_t *act = smaug_job_activity(job);
  char st[16];
  snprintf(st, sizeof(st), "run-%d", atomic_load(&calls));
  smaug_activity_set_state(act, st, strlen(st));
  smaug_activity_progress(act, 2, 2, "steps", "done");
  smaug_activity_complete(act, NULL);
}

/* Counts its runs, reports progress, and ends only once the gate opens. */
static void par_gated(smaug_activity_t *act, void *data) {
  atomic_fetch_add(&calls, 1);
  smaug_activity_progress(act, 1, 2, "steps", "started");
  cr_assert_eq(smaug_job_start(act, gated_job, gated_done, NULL), 0);
}

static void par_backwards(smaug_activity_t *act, void *data) {
  smaug_activity_progress(act, 5, 10, NULL, NULL);
  smaug_activity_progress(act, 3, 10, NULL, NULL);
  smaug_activity_complete(act, NULL);
}

static int cancel_seen;

static void on_cancel(smaug_activity_t *act, void *data) {
  cancel_seen++;
  smaug_activity_fail(act, SMAUG_ECANCELED, "stopped");
}

static void par_wait_cancel(smaug_activity_t *act, void *data) {
  atomic_fetch_add(&calls, 1);
  smaug_activity_on_cancel(act, on_cancel, NULL);
}

static int list_children(smaug_dependents_t *deps, void *data) {
  if (strcmp(smaug_dependents_id(deps), "missing") == 0)
    return SMAUG_ENOENT;
  if (strcmp(smaug_dependents_id(deps), "gone") == 0) {
    smaug_dependents_add(deps, "t.child", "c1", NULL);
    smaug_dependents_fail(deps, SMAUG_ENOENT, "%s: no such file",
                          "/cloud/gone.json");
    return 0; /* the failure stands */
  }
  smaug_dependents_add(deps, "t.child", "c1", "first");
  smaug_dependents_set_extra(deps, "path", "/x");
  return smaug_dependents_add(deps, "t.child", "c2", NULL);
}

static const smaug_type_def_t types[] = {
    {.size = sizeof(smaug_type_def_t),
     .type = "t.gated",
     .protect = {.parallel = par_gated},
     .remove = {.sync = par_backwards},
     .list_dependents = list_children,
     .options_schema = "{\"type\":\"object\"}",
     .max_concurrency = 7},
    {.size = sizeof(smaug_type_def_t),
     .type = "t.back",
     .protect = {.parallel = par_backwards}},
    {.size = sizeof(smaug_type_def_t),
     .type = "t.cancel",
     .protect = {.parallel = par_wait_cancel}},
    {.size = sizeof(smaug_type_def_t),
     .type = "t.one",
     .protect = {.parallel = par_wait_cancel},
     .max_concurrency = 1}};
static const smaug_plugin_def_t def = {.size = sizeof(smaug_plugin_def_t),
                                       .name = "test-plugin",
                                       .version = "9.8.7",
                                       .types = types,
                                       .n_types = 4};

/* Unary calls go through the runtime's client directly. */
typedef struct {
  int done;
  grpc_status_code code;
  char message[128];
  size_t n;
  char first[64];
  char extra[64];
} deps_t;

static void on_info_msg(rt_client_call_t *call, const ProtobufCMessage *msg,
                        void *data) {}

static void on_deps_done(rt_client_call_t *call, grpc_status_code code,
                         const char *message, void *data) {
  deps_t *d = data;
  d->code = code;
  snprintf(d->message, sizeof(d->message), "%s", message ? message : "");
  d->done = 1;
}

static void wait_progress(chk_act_t *a) {
  while (a->n_progress == 0 && !a->done)
    uv_run(&h.loop, UV_RUN_ONCE);
}

Test(activity, info_is_derived_from_the_type_table, .fini = teardown,
     .timeout = 20) {
  h_start(&h, &def, NULL);
  Smaug__V1__GetPluginInfoResponse *info;
  grpc_status_code code;
  cr_assert_eq(chk_info(&h.c, &info, &code, 5000), 0);
  cr_assert_eq(code, GRPC_STATUS_OK);
  cr_assert_str_eq(info->name, "test-plugin");
  cr_assert_str_eq(info->version, "9.8.7");
  cr_assert_eq(info->protocol_major, 1);
  cr_assert_eq(info->n_types, 4);
  Smaug__V1__ResourceTypeInfo *t = info->types[0];
  cr_assert_str_eq(t->type, "t.gated");
  cr_assert_eq(t->n_operations, 2);
  cr_assert_eq(t->operations[0]->kind, 1);
  cr_assert(t->operations[0]->parallel);
  cr_assert(t->operations[0]->sync); /* the SDK's implicit Sync */
  cr_assert_eq(t->operations[1]->kind, 3);
  cr_assert(!t->operations[1]->parallel);
  cr_assert(t->lists_dependents);
  cr_assert_eq(t->max_concurrency, 7);
  cr_assert_str_eq(t->options_schema, "{\"type\":\"object\"}");
  cr_assert_str_eq(t->restore_schema, "");
  smaug__v1__get_plugin_info_response__free_unpacked(info, NULL);
}

/* GetPluginInfo with a given protocol_major, through the runtime's client. */
static void ask_info(unsigned major, grpc_status_code *code, char *msg,
                     size_t len) {
  Smaug__V1__GetPluginInfoRequest req =
      SMAUG__V1__GET_PLUGIN_INFO_REQUEST__INIT;
  req.protocol_major = major;
  deps_t d = {0};
  cr_assert_eq(smaug_v1_protection_plugin_get_plugin_info(
                   h.c.ch, &req, NULL, on_info_msg, on_deps_done, &d, NULL),
               0);
  chk_wait(&h.c, &d.done);
  *code = d.code;
  snprintf(msg, len, "%s", d.message);
}

Test(activity, info_refuses_a_missing_or_other_protocol_major, .fini = teardown,
     .timeout = 20) {
  h_start(&h, &def, NULL);
  grpc_status_code code;
  char msg[128];
  ask_info(0, &code, msg, sizeof(msg));
  cr_assert_eq(code, GRPC_STATUS_FAILED_PRECONDITION);
  cr_assert(strstr(msg, "protocol_major is missing") != NULL, "%s", msg);
  ask_info(2, &code, msg, sizeof(msg));
  cr_assert_eq(code, GRPC_STATUS_FAILED_PRECONDITION);
  cr_assert(strstr(msg, "protocol_major 2 is not supported") != NULL, "%s",
            msg);
  ask_info(1, &code, msg, sizeof(msg));
  cr_assert_eq(code, GRPC_STATUS_OK, "%s", msg);
}

Test(activity, replay_joins_the_running_activity, .fini = teardown,
     .timeout = 20) {
  h_start(&h, &def, NULL);
  chk_req_t r;
  chk_act_t a, b;
  h_req(&r, "op1", "t.gated", "r1", 0);
  cr_assert_eq(chk_act_start(&h.c, &r, 10000, &a), 0);
  wait_progress(&a);
  cr_assert_eq(chk_act_start(&h.c, &r, 10000, &b), 0);
  /* Only a call joined to the running activity gets its progress. */
  wait_progress(&b);
  cr_assert(!b.done);
  atomic_store(&gate, 1);
  chk_wait(&h.c, &a.done);
  chk_wait(&h.c, &b.done);
  cr_assert_eq(a.code, GRPC_STATUS_OK);
  cr_assert_eq(b.code, GRPC_STATUS_OK);
  cr_assert_eq(atomic_load(&calls), 1, "the work ran twice");
  cr_assert_eq(a.state_len, b.state_len);
  cr_assert_eq(memcmp(a.state, b.state, a.state_len), 0);
  cr_assert_eq(b.last_done, 2);
  chk_act_clear(&a);
  chk_act_clear(&b);
}

Test(activity, replay_after_the_end_returns_the_stored_result, .fini = teardown,
     .timeout = 20) {
  atomic_store(&gate, 1);
  h_start(&h, &def, NULL);
  chk_req_t r;
  chk_act_t a, b;
  h_req(&r, "op1", "t.gated", "r1", 0);
  cr_assert_eq(chk_act_run(&h.c, &r, 10000, &a), 0);
  cr_assert_eq(chk_act_run(&h.c, &r, 10000, &b), 0);
  cr_assert_eq(b.code, GRPC_STATUS_OK);
  cr_assert_eq(atomic_load(&calls), 1);
  cr_assert_eq(b.n_progress, 0);
  cr_assert_eq(memcmp(a.state, b.state, a.state_len), 0);
  chk_act_clear(&a);
  chk_act_clear(&b);
}

Test(activity, a_key_reused_for_another_resource_is_refused, .fini = teardown,
     .timeout = 20) {
  atomic_store(&gate, 1);
  h_start(&h, &def, NULL);
  chk_req_t r;
  chk_act_t a, b;
  h_req(&r, "op1", "t.gated", "r1", 0);
  cr_assert_eq(chk_act_run(&h.c, &r, 10000, &a), 0);
  r.id = "r2";
  cr_assert_eq(chk_act_run(&h.c, &r, 10000, &b), 0);
  cr_assert_eq(b.code, GRPC_STATUS_INVALID_ARGUMENT);
  chk_act_clear(&a);
  chk_act_clear(&b);
}

static void expect_code(chk_req_t *r, grpc_status_code want) {
  chk_act_t a;
  cr_assert_eq(chk_act_run(&h.c, r, 10000, &a), 0);
  cr_assert_eq(a.code, want, "got %s: %s", rt_status_name(a.code), a.message);
  chk_act_clear(&a);
}

Test(activity, bad_requests_get_invalid_argument, .fini = teardown,
     .timeout = 20) {
  h_start(&h, &def, NULL);
  chk_req_t r;
  h_req(&r, "", "t.gated", "r1", 0);
  expect_code(&r, GRPC_STATUS_INVALID_ARGUMENT);
  h_req(&r, "op1", "t.gated", "", 0);
  expect_code(&r, GRPC_STATUS_INVALID_ARGUMENT);
  h_req(&r, "op1", "t.nosuch", "r1", 0);
  expect_code(&r, GRPC_STATUS_INVALID_ARGUMENT);
  h_req(&r, "op1", "t.gated", "r1", 0);
  r.section = "../escape";
  expect_code(&r, GRPC_STATUS_INVALID_ARGUMENT);
  h_req(&r, "op1", "t.gated", "r1", 0);
  r.op_kind = 0;
  expect_code(&r, GRPC_STATUS_INVALID_ARGUMENT);
  cr_assert_eq(atomic_load(&calls), 0);
}

Test(activity, a_missing_activity_is_unimplemented, .fini = teardown,
     .timeout = 20) {
  h_start(&h, &def, NULL);
  chk_req_t r;
  h_req(&r, "op1", "t.gated", "r1", 0);
  r.op_kind = 2; /* restore: nothing declared */
  expect_code(&r, GRPC_STATUS_UNIMPLEMENTED);
}

Test(activity, progress_never_goes_backwards, .fini = teardown, .timeout = 20) {
  h_start(&h, &def, NULL);
  chk_req_t r;
  chk_act_t a;
  h_req(&r, "op1", "t.back", "r1", 0);
  cr_assert_eq(chk_act_run(&h.c, &r, 10000, &a), 0);
  cr_assert_eq(a.code, GRPC_STATUS_OK);
  cr_assert_eq(a.n_progress, 2);
  cr_assert(a.monotonic);
  cr_assert_eq(a.last_done, 5);
  chk_act_clear(&a);
}

Test(activity, cancel_operation_reaches_the_callback, .fini = teardown,
     .timeout = 20) {
  h_start(&h, &def, NULL);
  chk_req_t r;
  chk_act_t a;
  h_req(&r, "opx", "t.cancel", "r1", 0);
  cr_assert_eq(chk_act_start(&h.c, &r, 10000, &a), 0);
  while (atomic_load(&calls) == 0)
    uv_run(&h.loop, UV_RUN_ONCE);
  unsigned n;
  grpc_status_code code;
  cr_assert_eq(chk_cancel_op(&h.c, "opx", &n, &code), 0);
  chk_wait(&h.c, &a.done);
  cr_assert_eq(n, 1);
  cr_assert_eq(cancel_seen, 1);
  cr_assert_eq(a.code, GRPC_STATUS_CANCELLED);
  chk_act_clear(&a);
}

Test(activity, a_replay_after_the_caller_gave_up_joins_the_running_activity,
     .fini = teardown, .timeout = 20) {
  h_start(&h, &def, NULL);
  chk_req_t r;
  chk_act_t a, b;
  h_req(&r, "opy", "t.gated", "r1", 0);
  cr_assert_eq(chk_act_start(&h.c, &r, 10000, &a), 0);
  wait_progress(&a);
  chk_act_cancel(&a);
  chk_wait(&h.c, &a.done);
  cr_assert_eq(a.code, GRPC_STATUS_CANCELLED);
  /* The caller is gone, the activity is not: the replay joins it. */
  cr_assert_eq(chk_act_start(&h.c, &r, 10000, &b), 0);
  wait_progress(&b);
  cr_assert(!b.done);
  atomic_store(&gate, 1);
  chk_wait(&h.c, &b.done);
  cr_assert_eq(b.code, GRPC_STATUS_OK, "%s", b.message);
  cr_assert_eq(b.state_len, 5);
  cr_assert_eq(memcmp(b.state, "run-1", 5), 0);
  cr_assert_eq(atomic_load(&calls), 1);
  cr_assert_eq(cancel_seen, 0);
  chk_act_clear(&a);
  chk_act_clear(&b);
}

Test(activity, max_concurrency_answers_resource_exhausted, .fini = teardown,
     .timeout = 20) {
  h_start(&h, &def, NULL);
  chk_req_t r;
  chk_act_t a, b;
  h_req(&r, "op1", "t.one", "r1", 0);
  cr_assert_eq(chk_act_start(&h.c, &r, 10000, &a), 0);
  while (atomic_load(&calls) == 0)
    uv_run(&h.loop, UV_RUN_ONCE);
  h_req(&r, "op1", "t.one", "r2", 0);
  cr_assert_eq(chk_act_run(&h.c, &r, 10000, &b), 0);
  cr_assert_eq(b.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
  chk_act_cancel(&a);
  chk_wait(&h.c, &a.done);
  chk_act_clear(&a);
  chk_act_clear(&b);
}

static void on_deps(rt_client_call_t *call, const ProtobufCMessage *msg,
                    void *data) {
  deps_t *d = data;
  const Smaug__V1__ListDependentsResponse *r = (const void *)msg;
  d->n = r->n_dependents;
  if (r->n_dependents > 0) {
    snprintf(d->first, sizeof(d->first), "%s/%s/%s", r->dependents[0]->type,
             r->dependents[0]->id, r->dependents[0]->name);
    if (r->dependents[0]->n_extra == 1)
      snprintf(d->extra, sizeof(d->extra), "%s=%s",
               r->dependents[0]->extra[0]->key,
               r->dependents[0]->extra[0]->value);
  }
}

static void list_deps(const char *type, const char *id, deps_t *d) {
  Smaug__V1__Resource res = SMAUG__V1__RESOURCE__INIT;
  res.type = (char *)type;
  res.id = (char *)id;
  Smaug__V1__ListDependentsRequest req =
      SMAUG__V1__LIST_DEPENDENTS_REQUEST__INIT;
  req.resource = &res;
  memset(d, 0, sizeof(*d));
  cr_assert_eq(smaug_v1_protection_plugin_list_dependents(
                   h.c.ch, &req, NULL, on_deps, on_deps_done, d, NULL),
               0);
  chk_wait(&h.c, &d->done);
}

Test(activity, list_dependents_comes_from_the_callback, .fini = teardown,
     .timeout = 20) {
  h_start(&h, &def, NULL);
  deps_t d;
  list_deps("t.gated", "r1", &d);
  cr_assert_eq(d.code, GRPC_STATUS_OK);
  cr_assert_eq(d.n, 2);
  cr_assert_str_eq(d.first, "t.child/c1/first");
  cr_assert_str_eq(d.extra, "path=/x");
  list_deps("t.gated", "missing", &d);
  cr_assert_eq(d.code, GRPC_STATUS_NOT_FOUND);
  list_deps("t.back", "r1", &d);
  cr_assert_eq(d.code, GRPC_STATUS_UNIMPLEMENTED);
}

Test(activity, a_dependents_failure_message_reaches_the_client,
     .fini = teardown, .timeout = 20) {
  h_start(&h, &def, NULL);
  deps_t d;
  list_deps("t.gated", "gone", &d);
  cr_assert_eq(d.code, GRPC_STATUS_NOT_FOUND);
  cr_assert_str_eq(d.message, "/cloud/gone.json: no such file");
  cr_assert_eq(d.n, 0);
}

Test(activity, a_dependents_code_alone_still_gives_its_name, .fini = teardown,
     .timeout = 20) {
  h_start(&h, &def, NULL);
  deps_t d;
  list_deps("t.gated", "missing", &d);
  cr_assert_eq(d.code, GRPC_STATUS_NOT_FOUND);
  cr_assert_str_eq(d.message, smaug_strerror(SMAUG_ENOENT));
}

Test(activity, a_definition_with_a_broken_schema_is_refused, .timeout = 20) {
  static const smaug_type_def_t bad_types[] = {
      {.size = sizeof(smaug_type_def_t),
       .type = "t.bad",
       .protect = {.parallel = par_backwards},
       .options_schema = "{not json"}};
  static const smaug_plugin_def_t bad = {.size = sizeof(smaug_plugin_def_t),
                                         .name = "bad",
                                         .version = "1",
                                         .types = bad_types,
                                         .n_types = 1};
  uv_loop_t loop;
  rt_t *rt;
  smaug_plugin_t *p = NULL;
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(rt_new(&loop, &rt), 0);
  cr_assert_eq(sdk_plugin_new(rt, &bad, 0, NULL, &p), SMAUG_EINVAL);
  cr_assert_null(p);
  rt_free(rt);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(activity, a_definition_with_a_duplicate_type_is_refused, .timeout = 20) {
  static const smaug_type_def_t dup[] = {
      {.size = sizeof(smaug_type_def_t),
       .type = "t.same",
       .protect = {.parallel = par_backwards}},
      {.size = sizeof(smaug_type_def_t),
       .type = "t.same",
       .protect = {.parallel = par_backwards}}};
  static const smaug_plugin_def_t d = {.size = sizeof(smaug_plugin_def_t),
                                       .name = "dup",
                                       .version = "1",
                                       .types = dup,
                                       .n_types = 2};
  uv_loop_t loop;
  rt_t *rt;
  smaug_plugin_t *p = NULL;
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(rt_new(&loop, &rt), 0);
  cr_assert_eq(sdk_plugin_new(rt, &d, 0, NULL, &p), SMAUG_EINVAL);
  rt_free(rt);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&loop), 0);
}
