/*
 * test_api.c - integration suite for smaugd: real smaugd and fake plugin
 * processes on ephemeral ports and unix sockets, driven through the
 * Orchestrator API. Ordering is checked on the recorded event stream.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define M(name) SMAUG_V1_ORCHESTRATOR_##name

static char dir[256];
static proc_t smaugd, plug;
static client_t *cl;

static void start_all(const char *const *plugin_args,
                      const char *const *smaugd_args) {
  tmpdir_make(dir, sizeof(dir));
  const char *pa[32] = {"--types", "t.server,t.volume", "--lists-dependents"};
  size_t n = 3;
  for (size_t i = 0; plugin_args && plugin_args[i]; i++)
    pa[n++] = plugin_args[i];
  pa[n] = NULL;
  cr_assert_eq(plugin_start(&plug, dir, "fake", pa), 0, "plugin start");
  const char *sa[32] = {"--plugin", plug.addr};
  n = 2;
  for (size_t i = 0; smaugd_args && smaugd_args[i]; i++)
    sa[n++] = smaugd_args[i];
  sa[n] = NULL;
  cr_assert_eq(smaugd_start(&smaugd, dir, NULL, sa), 0, "smaugd start");
  cl = client_new(smaugd.addr);
  cr_assert_not_null(cl);
  cr_assert_eq(client_wait_plugins(cl, 1), 0, "plugin not registered");
}

static void setup(void) {
  start_all(NULL, NULL);
}

static void teardown(void) {
  int st = procs_stop_all(&cl, &smaugd, (proc_t *const[]){&plug, NULL}, dir);
  cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
            "smaugd did not stop cleanly: status %d", st);
}

/* ---------------------------------------------------------------- helpers */

/* The standard tree: two servers sharing volume v2. */
static void standard_plan(char *plan_id) {
  res_t roots[2];
  res_init(&roots[0], "t.server", "s1", "t.volume/v1;t.volume/v2");
  res_init(&roots[1], "t.server", "s2", "t.volume/v2;t.volume/v3");
  char msg[512];
  cr_assert_eq(client_create_plan_of(cl, "test plan", roots, 2, NULL, plan_id,
                                     msg, sizeof(msg)),
               0, "CreatePlan: %s", msg);
}

static int protect(const char *plan_id, char *cp_id, char *op_id, char *msg,
                   size_t len) {
  return client_protect(cl, plan_id, cp_id, op_id, msg, len);
}

static Smaug__V1__Checkpoint *get_checkpoint(const char *id) {
  int code;
  char msg[512];
  Smaug__V1__Checkpoint *cp =
      client_get_checkpoint(cl, id, &code, msg, sizeof(msg));
  cr_assert_eq(code, 0, "GetCheckpoint: %s", msg);
  return cp;
}

static const char *meta(const Smaug__V1__ResourceResult *r, const char *k) {
  for (size_t i = 0; i < r->n_metadata; i++)
    if (strcmp(r->metadata[i]->key, k) == 0)
      return r->metadata[i]->value;
  return NULL;
}

/* Sequence of the first event of `kind` for (id, activity), or 0. */
static uint64_t seq_of(Smaug__V1__WatchOperationResponse **evs, size_t n,
                       int kind, const char *id, int activity) {
  for (size_t i = 0; i < n; i++) {
    const Smaug__V1__OperationEvent *e = evs[i]->event;
    if ((int)e->kind == kind && e->resource &&
        strcmp(e->resource->id, id) == 0 && (int)e->activity == activity)
      return e->sequence;
  }
  return 0;
}

static void expect_code(size_t method, const ProtobufCMessage *req, int want,
                        const char *needle) {
  char msg[1024];
  int code = client_call(cl, method, req, NULL, NULL, msg, sizeof(msg));
  cr_expect_eq(code, want, "code %d, want %d (%s)", code, want, msg);
  if (needle)
    cr_expect(strstr(msg, needle) != NULL, "message '%s' lacks '%s'", msg,
              needle);
}

#define EV(k) SMAUG__V1__EVENT_KIND__EVENT_KIND_##k
#define ACT_P SMAUG__V1__ACTIVITY__ACTIVITY_PARALLEL
#define ACT_S SMAUG__V1__ACTIVITY__ACTIVITY_SYNC

/* ------------------------------------------------------------------ tests */

TestSuite(api, .init = setup, .fini = teardown, .timeout = 60);

Test(api, protect_discovers_graph_and_orders_tasks) {
  char plan[64], cp[64], op[64], msg[512];
  standard_plan(plan);
  cr_assert_eq(protect(plan, cp, op, msg, sizeof(msg)), 0, "%s", msg);
  Smaug__V1__WatchOperationResponse **evs;
  size_t n;
  cr_assert_eq(client_watch(cl, op, 0, &evs, &n), 0);
  cr_assert_gt(n, 0);
  const Smaug__V1__OperationEvent *last = evs[n - 1]->event;
  cr_assert_eq(last->kind, EV(OPERATION_FINISHED));
  cr_assert_str_eq(last->final_status, "available");
  for (size_t i = 0; i < n; i++)
    cr_assert_eq(evs[i]->event->sequence, i + 1, "sequence gap at %zu", i);
  /* S(parent) starts only after S(child) and P(parent) are done. */
  const char *servers[2][3] = {{"s1", "v1", "v2"}, {"s2", "v2", "v3"}};
  for (int s = 0; s < 2; s++) {
    uint64_t start = seq_of(evs, n, EV(STARTED), servers[s][0], ACT_S);
    cr_assert_gt(start, 0);
    cr_expect_gt(start, seq_of(evs, n, EV(DONE), servers[s][0], ACT_P));
    for (int c = 1; c < 3; c++) {
      uint64_t kid = seq_of(evs, n, EV(DONE), servers[s][c], ACT_S);
      cr_assert_gt(kid, 0);
      cr_expect_gt(start, kid, "S(%s) started before S(%s) was done",
                   servers[s][0], servers[s][c]);
    }
  }
  resps_free((ProtobufCMessage **)evs, n);

  Smaug__V1__Checkpoint *c = get_checkpoint(cp);
  cr_expect_eq(c->status,
               SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_AVAILABLE);
  cr_expect_eq(c->n_resources, 5, "the shared volume is one node");
  cr_expect_eq(c->n_edges, 4);
  cr_expect_eq(c->n_results, 5);
  const Smaug__V1__ResourceResult *s1 =
      result_find(c->results, c->n_results, "s1");
  cr_assert_not_null(s1);
  cr_expect_eq(s1->status, SMAUG__V1__TASK_STATUS__TASK_STATUS_DONE);
  cr_expect_str_eq(meta(s1, "state_ok"), "1", "P state reached S");
  cr_expect_str_eq(meta(s1, "children"), "2", "S saw its children");
  cr_expect_gt(s1->finished_at_ms, 0);
  cr_expect_gt(c->finished_at_ms, 0);
  cr_expect(strncmp(c->bank_uri, "file://", 7) == 0);
  protobuf_c_message_free_unpacked(&c->base, NULL);
}

Test(api, restore_then_delete) {
  char plan[64], cp[64], op[64], msg[512];
  standard_plan(plan);
  cr_assert_eq(protect(plan, cp, op, msg, sizeof(msg)), 0, "%s", msg);
  cr_assert_str_eq(client_wait(cl, op), "available");

  Smaug__V1__RestoreRequest rq = SMAUG__V1__RESTORE_REQUEST__INIT;
  rq.checkpoint_id = cp;
  int code;
  Smaug__V1__RestoreResponse *rr =
      (void *)client_unary(cl, M(RESTORE), &rq.base, &code, msg, sizeof(msg));
  cr_assert_eq(code, 0, "Restore: %s", msg);
  cr_assert_str_eq(client_wait(cl, rr->operation_id), "success");
  Smaug__V1__GetRestoreRequest gq = SMAUG__V1__GET_RESTORE_REQUEST__INIT;
  gq.id = rr->restore_id;
  Smaug__V1__GetRestoreResponse *gr = (void *)client_unary(
      cl, M(GET_RESTORE), &gq.base, &code, msg, sizeof(msg));
  cr_assert_eq(code, 0, "%s", msg);
  cr_expect_eq(gr->restore->status,
               SMAUG__V1__RESTORE_STATUS__RESTORE_STATUS_SUCCESS);
  cr_expect_eq(gr->restore->n_results, 5);
  const Smaug__V1__ResourceResult *v1 =
      result_find(gr->restore->results, gr->restore->n_results, "v1");
  cr_assert_not_null(v1);
  cr_expect_str_eq(v1->restored_id, "v1-r");
  cr_expect_str_eq(meta(v1, "saved_ok"), "1",
                   "restore got the metadata saved by protect");
  protobuf_c_message_free_unpacked(&gr->base, NULL);
  protobuf_c_message_free_unpacked(&rr->base, NULL);

  Smaug__V1__DeleteCheckpointRequest dq =
      SMAUG__V1__DELETE_CHECKPOINT_REQUEST__INIT;
  dq.id = cp;
  Smaug__V1__DeleteCheckpointResponse *dr = (void *)client_unary(
      cl, M(DELETE_CHECKPOINT), &dq.base, &code, msg, sizeof(msg));
  cr_assert_eq(code, 0, "Delete: %s", msg);
  cr_assert_str_eq(client_wait(cl, dr->operation_id), "deleted");
  protobuf_c_message_free_unpacked(&dr->base, NULL);
  Smaug__V1__Checkpoint *c = get_checkpoint(cp);
  cr_expect_eq(c->status,
               SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_DELETED);
  protobuf_c_message_free_unpacked(&c->base, NULL);
  /* Restoring a deleted checkpoint is refused. */
  expect_code(M(RESTORE), &rq.base, GRPC_STATUS_FAILED_PRECONDITION, "deleted");
}

Test(api, watch_resumes_after_sequence) {
  char plan[64], cp[64], op[64], msg[512];
  standard_plan(plan);
  cr_assert_eq(protect(plan, cp, op, msg, sizeof(msg)), 0, "%s", msg);
  cr_assert_str_eq(client_wait(cl, op), "available");
  Smaug__V1__WatchOperationResponse **all, **tail;
  size_t n, m;
  cr_assert_eq(client_watch(cl, op, 0, &all, &n), 0);
  cr_assert_gt(n, 5);
  cr_assert_eq(client_watch(cl, op, 5, &tail, &m), 0);
  cr_assert_eq(m, n - 5);
  cr_expect_eq(tail[0]->event->sequence, 6);
  cr_expect_eq(tail[m - 1]->event->kind, EV(OPERATION_FINISHED));
  resps_free((ProtobufCMessage **)all, n);
  resps_free((ProtobufCMessage **)tail, m);
  /* Past the end: an empty stream that still ends. */
  cr_assert_eq(client_watch(cl, op, 100000, &tail, &m), 0);
  cr_expect_eq(m, 0);
  resps_free((ProtobufCMessage **)tail, m);
}

Test(api, get_flow_of_plan_and_checkpoint) {
  char plan[64], cp[64], op[64], msg[512];
  standard_plan(plan);
  Smaug__V1__GetFlowRequest fq = SMAUG__V1__GET_FLOW_REQUEST__INIT;
  fq.plan_id = plan;
  int code;
  Smaug__V1__GetFlowResponse *fr =
      (void *)client_unary(cl, M(GET_FLOW), &fq.base, &code, msg, sizeof(msg));
  cr_assert_eq(code, 0, "%s", msg);
  cr_expect_eq(fr->n_nodes, 10);
  cr_expect_eq(fr->n_edges, 5 + 4);
  cr_expect(strstr(fr->dot, "digraph") != NULL);
  protobuf_c_message_free_unpacked(&fr->base, NULL);
  cr_assert_eq(protect(plan, cp, op, msg, sizeof(msg)), 0, "%s", msg);
  cr_assert_str_eq(client_wait(cl, op), "available");
  fq.plan_id = "";
  fq.checkpoint_id = cp;
  fq.kind = SMAUG__V1__OPERATION_KIND__OPERATION_KIND_RESTORE;
  fr = (void *)client_unary(cl, M(GET_FLOW), &fq.base, &code, msg, sizeof(msg));
  cr_assert_eq(code, 0, "%s", msg);
  cr_expect_eq(fr->n_nodes, 10);
  protobuf_c_message_free_unpacked(&fr->base, NULL);
  fq.plan_id = plan;
  expect_code(M(GET_FLOW), &fq.base, GRPC_STATUS_INVALID_ARGUMENT,
              "exactly one");
}

Test(api, list_checkpoints_filters_and_pages) {
  char plan[64], cp[3][64], op[64], msg[512];
  standard_plan(plan);
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(protect(plan, cp[i], op, msg, sizeof(msg)), 0, "%s", msg);
    cr_assert_str_eq(client_wait(cl, op), "available");
  }
  Smaug__V1__ListCheckpointsRequest lq =
      SMAUG__V1__LIST_CHECKPOINTS_REQUEST__INIT;
  lq.plan_id = plan;
  lq.page_size = 2;
  int code;
  Smaug__V1__ListCheckpointsResponse *lr = (void *)client_unary(
      cl, M(LIST_CHECKPOINTS), &lq.base, &code, msg, sizeof(msg));
  cr_assert_eq(code, 0, "%s", msg);
  cr_assert_eq(lr->n_checkpoints, 2);
  cr_expect_str_eq(lr->checkpoints[0]->id, cp[2], "newest first");
  cr_assert_str_neq(lr->next_page_token, "");
  lq.page_token = lr->next_page_token;
  Smaug__V1__ListCheckpointsResponse *lr2 = (void *)client_unary(
      cl, M(LIST_CHECKPOINTS), &lq.base, &code, msg, sizeof(msg));
  cr_assert_eq(code, 0, "%s", msg);
  cr_assert_eq(lr2->n_checkpoints, 1);
  cr_expect_str_eq(lr2->checkpoints[0]->id, cp[0]);
  cr_expect_str_eq(lr2->next_page_token, "");
  protobuf_c_message_free_unpacked(&lr->base, NULL);
  protobuf_c_message_free_unpacked(&lr2->base, NULL);
  lq.page_token = "";
  lq.page_size = 0;
  lq.status = SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_ERROR;
  lr = (void *)client_unary(cl, M(LIST_CHECKPOINTS), &lq.base, &code, msg,
                            sizeof(msg));
  cr_assert_eq(code, 0);
  cr_expect_eq(lr->n_checkpoints, 0);
  protobuf_c_message_free_unpacked(&lr->base, NULL);
}

Test(api, bad_input_gets_code_naming_field) {
  char msg[512], id[64];
  Smaug__V1__GetPlanRequest gp = SMAUG__V1__GET_PLAN_REQUEST__INIT;
  expect_code(M(GET_PLAN), &gp.base, GRPC_STATUS_INVALID_ARGUMENT, "id");
  gp.id = "pln-missing";
  expect_code(M(GET_PLAN), &gp.base, GRPC_STATUS_NOT_FOUND, "pln-missing");
  Smaug__V1__GetCheckpointRequest gc = SMAUG__V1__GET_CHECKPOINT_REQUEST__INIT;
  gc.id = "ckp-missing";
  expect_code(M(GET_CHECKPOINT), &gc.base, GRPC_STATUS_NOT_FOUND,
              "ckp-missing");
  Smaug__V1__GetRestoreRequest gr = SMAUG__V1__GET_RESTORE_REQUEST__INIT;
  gr.id = "rst-missing";
  expect_code(M(GET_RESTORE), &gr.base, GRPC_STATUS_NOT_FOUND, "rst-missing");
  Smaug__V1__RestoreRequest rq = SMAUG__V1__RESTORE_REQUEST__INIT;
  expect_code(M(RESTORE), &rq.base, GRPC_STATUS_INVALID_ARGUMENT,
              "checkpoint_id");
  rq.checkpoint_id = "ckp-missing";
  expect_code(M(RESTORE), &rq.base, GRPC_STATUS_NOT_FOUND, "ckp-missing");
  Smaug__V1__ProtectRequest pq = SMAUG__V1__PROTECT_REQUEST__INIT;
  expect_code(M(PROTECT), &pq.base, GRPC_STATUS_INVALID_ARGUMENT, "plan_id");
  pq.plan_id = "pln-missing";
  expect_code(M(PROTECT), &pq.base, GRPC_STATUS_NOT_FOUND, "pln-missing");
  Smaug__V1__WatchOperationRequest wq =
      SMAUG__V1__WATCH_OPERATION_REQUEST__INIT;
  wq.operation_id = "op-missing";
  expect_code(M(WATCH_OPERATION), &wq.base, GRPC_STATUS_NOT_FOUND,
              "op-missing");
  Smaug__V1__CancelOperationRequest cq =
      SMAUG__V1__CANCEL_OPERATION_REQUEST__INIT;
  expect_code(M(CANCEL_OPERATION), &cq.base, GRPC_STATUS_INVALID_ARGUMENT,
              "operation_id");

  res_t r[2];
  res_init(&r[0], "t.volume", "v1", NULL);
  res_init(&r[1], "t.volume", "v1", NULL);
  cr_expect_eq(
      client_create_plan_of(cl, "test plan", r, 2, NULL, id, msg, sizeof(msg)),
      GRPC_STATUS_INVALID_ARGUMENT);
  cr_expect(strstr(msg, "plan.resources[1]") && strstr(msg, "duplicate"), "%s",
            msg);
  res_init(&r[1], "t.nobody", "x", NULL);
  cr_expect_eq(
      client_create_plan_of(cl, "test plan", r, 2, NULL, id, msg, sizeof(msg)),
      GRPC_STATUS_INVALID_ARGUMENT);
  cr_expect(strstr(msg, "plan.resources[1].type") && strstr(msg, "t.nobody"),
            "%s", msg);
  res_init(&r[1], "t.volume", "", NULL);
  cr_expect_eq(
      client_create_plan_of(cl, "test plan", r, 2, NULL, id, msg, sizeof(msg)),
      GRPC_STATUS_INVALID_ARGUMENT);
  cr_expect(strstr(msg, "plan.resources[1].id") != NULL, "%s", msg);
  cr_expect_eq(
      client_create_plan_of(cl, "test plan", r, 0, NULL, id, msg, sizeof(msg)),
      GRPC_STATUS_INVALID_ARGUMENT);
  cr_expect(strstr(msg, "plan.resources") != NULL, "%s", msg);

  /* A name over the limit, and invalid UTF-8. */
  Smaug__V1__Resource *rp[1] = {&r[0].r};
  Smaug__V1__Plan plan = SMAUG__V1__PLAN__INIT;
  char longname[300];
  memset(longname, 'n', sizeof(longname) - 1);
  longname[sizeof(longname) - 1] = '\0';
  plan.name = longname;
  plan.n_resources = 1;
  plan.resources = rp;
  Smaug__V1__CreatePlanRequest cr = SMAUG__V1__CREATE_PLAN_REQUEST__INIT;
  cr.plan = &plan;
  expect_code(M(CREATE_PLAN), &cr.base, GRPC_STATUS_INVALID_ARGUMENT,
              "plan.name");
  plan.name = "bad \xc3\x28 utf8";
  expect_code(M(CREATE_PLAN), &cr.base, GRPC_STATUS_INVALID_ARGUMENT,
              "plan.name: invalid UTF-8");
  plan.name = "ok";
  r[0].r.id = "\xed\xa0\x80"; /* a UTF-16 surrogate */
  expect_code(M(CREATE_PLAN), &cr.base, GRPC_STATUS_INVALID_ARGUMENT,
              "plan.resources[0].id: invalid UTF-8");
  r[0].r.id = "v1";
  int code;

  /* A message over the size limit (4 MiB by default). */
  size_t big = 5u << 20;
  char *huge = malloc(big + 1);
  memset(huge, 'x', big);
  huge[big] = '\0';
  plan.name = huge;
  code =
      client_call(cl, M(CREATE_PLAN), &cr.base, NULL, NULL, msg, sizeof(msg));
  cr_expect_eq(code, GRPC_STATUS_RESOURCE_EXHAUSTED, "%d %s", code, msg);
  free(huge);

  /* The server is still up. */
  Smaug__V1__ListPluginsRequest lp = SMAUG__V1__LIST_PLUGINS_REQUEST__INIT;
  expect_code(M(LIST_PLUGINS), &lp.base, GRPC_STATUS_OK, NULL);
}

Test(api, edges_with_cycle_refused) {
  res_t r[2];
  res_init(&r[0], "t.server", "a", NULL);
  res_init(&r[1], "t.server", "b", NULL);
  Smaug__V1__Resource *rp[2] = {&r[0].r, &r[1].r};
  Smaug__V1__ResourceEdge e[2], *ep[2];
  for (int i = 0; i < 2; i++) {
    smaug__v1__resource_edge__init(&e[i]);
    e[i].parent_type = e[i].child_type = "t.server";
    e[i].parent_id = i ? "b" : "a";
    e[i].child_id = i ? "a" : "b";
    ep[i] = &e[i];
  }
  Smaug__V1__Plan plan = SMAUG__V1__PLAN__INIT;
  plan.name = "cycle";
  plan.n_resources = 2;
  plan.resources = rp;
  plan.n_edges = 2;
  plan.edges = ep;
  Smaug__V1__CreatePlanRequest cr = SMAUG__V1__CREATE_PLAN_REQUEST__INIT;
  cr.plan = &plan;
  expect_code(M(CREATE_PLAN), &cr.base, GRPC_STATUS_INVALID_ARGUMENT, "cycle");
}

Test(api, plan_crud) {
  char plan[64], msg[512];
  standard_plan(plan);
  Smaug__V1__GetPlanRequest gp = SMAUG__V1__GET_PLAN_REQUEST__INIT;
  gp.id = plan;
  int code;
  Smaug__V1__GetPlanResponse *g =
      (void *)client_unary(cl, M(GET_PLAN), &gp.base, &code, msg, sizeof(msg));
  cr_assert_eq(code, 0, "%s", msg);
  cr_expect_eq(g->plan->n_resources, 2);
  char *orig = g->plan->name;
  g->plan->name = "renamed";
  Smaug__V1__UpdatePlanRequest up = SMAUG__V1__UPDATE_PLAN_REQUEST__INIT;
  up.plan = g->plan;
  Smaug__V1__UpdatePlanResponse *u = (void *)client_unary(
      cl, M(UPDATE_PLAN), &up.base, &code, msg, sizeof(msg));
  cr_assert_eq(code, 0, "%s", msg);
  cr_expect_str_eq(u->plan->name, "renamed");
  cr_expect_eq(u->plan->created_at_ms, g->plan->created_at_ms);
  g->plan->name = orig;
  protobuf_c_message_free_unpacked(&u->base, NULL);
  protobuf_c_message_free_unpacked(&g->base, NULL);
  Smaug__V1__ListPlansRequest lp = SMAUG__V1__LIST_PLANS_REQUEST__INIT;
  Smaug__V1__ListPlansResponse *l = (void *)client_unary(
      cl, M(LIST_PLANS), &lp.base, &code, msg, sizeof(msg));
  cr_assert_eq(code, 0);
  cr_expect_eq(l->n_plans, 1);
  protobuf_c_message_free_unpacked(&l->base, NULL);
  Smaug__V1__DeletePlanRequest dp = SMAUG__V1__DELETE_PLAN_REQUEST__INIT;
  dp.id = plan;
  expect_code(M(DELETE_PLAN), &dp.base, GRPC_STATUS_OK, NULL);
  expect_code(M(DELETE_PLAN), &dp.base, GRPC_STATUS_NOT_FOUND, plan);
  expect_code(M(GET_PLAN), &gp.base, GRPC_STATUS_NOT_FOUND, plan);
}

Test(api, fifty_concurrent_protects) {
  char plan[64], msg[512];
  standard_plan(plan);
  char cps[50][64], ops[50][64];
  for (int i = 0; i < 50; i++)
    cr_assert_eq(protect(plan, cps[i], ops[i], msg, sizeof(msg)), 0, "%s", msg);
  for (int i = 0; i < 50; i++) {
    /* Every event of every operation, gapless: 5 resources x 2 tasks x
     * (queued, started, done) + the end. */
    Smaug__V1__WatchOperationResponse **evs;
    size_t n;
    cr_assert_eq(client_watch(cl, ops[i], 0, &evs, &n), 0);
    cr_expect_eq(n, 31, "op %d: %zu events", i, n);
    for (size_t k = 0; k < n; k++)
      cr_expect_eq(evs[k]->event->sequence, k + 1);
    cr_expect_str_eq(evs[n - 1]->event->final_status, "available", "op %d", i);
    resps_free((ProtobufCMessage **)evs, n);
  }
  for (int i = 0; i < 50; i++) {
    Smaug__V1__Checkpoint *c = get_checkpoint(cps[i]);
    cr_expect_eq(c->n_results, 5);
    for (size_t k = 0; k < c->n_results; k++)
      cr_expect_eq(c->results[k]->status,
                   SMAUG__V1__TASK_STATUS__TASK_STATUS_DONE);
    protobuf_c_message_free_unpacked(&c->base, NULL);
  }
  Smaug__V1__ListCheckpointsRequest lq =
      SMAUG__V1__LIST_CHECKPOINTS_REQUEST__INIT;
  lq.status = SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_AVAILABLE;
  int code;
  Smaug__V1__ListCheckpointsResponse *lr = (void *)client_unary(
      cl, M(LIST_CHECKPOINTS), &lq.base, &code, msg, sizeof(msg));
  cr_assert_eq(code, 0);
  cr_expect_eq(lr->n_checkpoints, 50);
  protobuf_c_message_free_unpacked(&lr->base, NULL);
}
