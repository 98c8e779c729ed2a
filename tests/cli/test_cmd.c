/*
 * test_cmd.c - the subcommands (cli_cmd, cli_watch) end to end against a
 * scripted Orchestrator served by the runtime in this process: plan CRUD
 * with JSON output parsed back, protect --wait and watch (one event per
 * message, or batched when asked with max_batch) with their plain
 * output, summaries and exit codes, restore parameters, and flow --dot.
 * The smaug binary runs as a child on the test's loop (spawn.h).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt.h"
#include "smaug/v1/orchestrator.smaug.h"
#include "spawn.h"

/* One scripted event of the fake WatchOperation. */
typedef struct {
  Smaug__V1__EventKind kind;
  char act; /* 'P' or 'S' */
  const char *id;
  const char *message;
  const char *final_status;
} ev_spec_t;

static struct {
  uv_loop_t loop;
  rt_t *rt;
  rt_server_t *srv;
  int port;
  char addr[32];
  spawn_result_t res;
  /* The fake's state. */
  Smaug__V1__Plan *plans[8];
  int n_plans, next_id;
  const ev_spec_t *script;
  size_t n_script;
  /* Events per watch message when the client asks for batches (0: one per
   * message in `event`, as a smaugd before batching), and the max_batch
   * the last watch asked for. */
  size_t batch;
  uint32_t max_batch_seen;
  ProtobufCMessage *last_restore; /* the last RestoreRequest seen */
} fx;

static ProtobufCMessage *copy(const ProtobufCMessage *m) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *b = malloc(n + 1);
  protobuf_c_message_pack(m, b);
  ProtobufCMessage *c = protobuf_c_message_unpack(m->descriptor, NULL, n, b);
  free(b);
  return c;
}

static void create_plan(rt_call_t *call,
                        const Smaug__V1__CreatePlanRequest *req, void *data) {
  Smaug__V1__Plan *p = (Smaug__V1__Plan *)copy(&req->plan->base);
  char id[32];
  snprintf(id, sizeof(id), "pln-%d", ++fx.next_id);
  if (p->id[0] != '\0') /* an empty one is protobuf-c's static default */
    free(p->id);
  p->id = strdup(id);
  p->created_at_ms = p->updated_at_ms = 1700000000000LL;
  fx.plans[fx.n_plans++] = p;
  Smaug__V1__CreatePlanResponse resp = SMAUG__V1__CREATE_PLAN_RESPONSE__INIT;
  resp.plan = p;
  rt_call_reply(call, &resp.base);
}

static int find_plan(const char *id) {
  for (int i = 0; i < fx.n_plans; i++)
    if (strcmp(fx.plans[i]->id, id) == 0)
      return i;
  return -1;
}

static void get_plan(rt_call_t *call, const Smaug__V1__GetPlanRequest *req,
                     void *data) {
  int i = find_plan(req->id);
  if (i < 0) {
    rt_call_fail(call, GRPC_STATUS_NOT_FOUND, "plan %s not found", req->id);
    return;
  }
  Smaug__V1__GetPlanResponse resp = SMAUG__V1__GET_PLAN_RESPONSE__INIT;
  resp.plan = fx.plans[i];
  rt_call_reply(call, &resp.base);
}

/* Pages of one plan each, to exercise the client's paging. */
static void list_plans(rt_call_t *call, const Smaug__V1__ListPlansRequest *req,
                       void *data) {
  int from = req->page_token[0] ? atoi(req->page_token) : 0;
  Smaug__V1__ListPlansResponse resp = SMAUG__V1__LIST_PLANS_RESPONSE__INIT;
  char next[16] = "";
  if (from < fx.n_plans) {
    resp.n_plans = 1;
    resp.plans = &fx.plans[from];
    if (from + 1 < fx.n_plans)
      snprintf(next, sizeof(next), "%d", from + 1);
  }
  resp.next_page_token = next;
  rt_call_reply(call, &resp.base);
}

static void delete_plan(rt_call_t *call,
                        const Smaug__V1__DeletePlanRequest *req, void *data) {
  int i = find_plan(req->id);
  if (i < 0) {
    rt_call_fail(call, GRPC_STATUS_NOT_FOUND, "plan %s not found", req->id);
    return;
  }
  protobuf_c_message_free_unpacked(&fx.plans[i]->base, NULL);
  memmove(&fx.plans[i], &fx.plans[i + 1],
          (size_t)(fx.n_plans - i - 1) * sizeof(fx.plans[0]));
  fx.n_plans--;
  Smaug__V1__DeletePlanResponse resp = SMAUG__V1__DELETE_PLAN_RESPONSE__INIT;
  rt_call_reply(call, &resp.base);
}

static void protect(rt_call_t *call, const Smaug__V1__ProtectRequest *req,
                    void *data) {
  Smaug__V1__ProtectResponse resp = SMAUG__V1__PROTECT_RESPONSE__INIT;
  resp.checkpoint_id = "ckp-1";
  resp.operation_id = "op-1";
  rt_call_reply(call, &resp.base);
}

static void get_checkpoint(rt_call_t *call,
                           const Smaug__V1__GetCheckpointRequest *req,
                           void *data) {
  Smaug__V1__Resource r1 = SMAUG__V1__RESOURCE__INIT, r2 = r1, r3 = r1;
  r1.type = "smaug.server", r1.id = "s1";
  r2.type = "smaug.volume", r2.id = "v1";
  r3.type = "smaug.volume", r3.id = "v2";
  Smaug__V1__Resource *rs[] = {&r1, &r2, &r3};
  Smaug__V1__Checkpoint c = SMAUG__V1__CHECKPOINT__INIT;
  c.id = "ckp-1";
  c.n_resources = 3;
  c.resources = rs;
  Smaug__V1__GetCheckpointResponse resp =
      SMAUG__V1__GET_CHECKPOINT_RESPONSE__INIT;
  resp.checkpoint = &c;
  rt_call_reply(call, &resp.base);
}

static void restore(rt_call_t *call, const Smaug__V1__RestoreRequest *req,
                    void *data) {
  if (fx.last_restore)
    protobuf_c_message_free_unpacked(fx.last_restore, NULL);
  fx.last_restore = copy(&req->base);
  Smaug__V1__RestoreResponse resp = SMAUG__V1__RESTORE_RESPONSE__INIT;
  resp.restore_id = "rst-1";
  resp.operation_id = "op-2";
  rt_call_reply(call, &resp.base);
}

static void watch_operation(rt_call_t *call,
                            const Smaug__V1__WatchOperationRequest *req,
                            void *data) {
  Smaug__V1__Resource rs[16];
  Smaug__V1__OperationEvent evs[16], *evp[16];
  size_t n = 0, batch = fx.batch < req->max_batch ? fx.batch : req->max_batch;
  fx.max_batch_seen = req->max_batch;
  cr_assert_leq(fx.n_script, 16);
  for (size_t i = 0; i < fx.n_script; i++) {
    const ev_spec_t *s = &fx.script[i];
    if (i + 1 <= req->after_sequence)
      continue;
    Smaug__V1__Resource *r = &rs[n];
    smaug__v1__resource__init(r);
    r->type = "smaug.volume";
    r->id = (char *)s->id;
    Smaug__V1__OperationEvent *ev = evp[n] = &evs[n];
    smaug__v1__operation_event__init(ev);
    n++;
    ev->sequence = i + 1;
    ev->operation_id = req->operation_id;
    ev->kind = s->kind;
    ev->time_ms = 1700000000000LL + (int64_t)i * 100;
    ev->attempt = 1;
    if (s->kind != SMAUG__V1__EVENT_KIND__EVENT_KIND_OPERATION_FINISHED) {
      ev->resource = r;
      ev->activity = s->act == 'S' ? SMAUG__V1__ACTIVITY__ACTIVITY_SYNC
                                   : SMAUG__V1__ACTIVITY__ACTIVITY_PARALLEL;
    }
    ev->message = (char *)(s->message ? s->message : "");
    ev->final_status = (char *)(s->final_status ? s->final_status : "");
    if (n < batch && i + 1 < fx.n_script)
      continue; /* a batch waits for more */
    Smaug__V1__WatchOperationResponse resp =
        SMAUG__V1__WATCH_OPERATION_RESPONSE__INIT;
    if (batch) {
      resp.n_events = n;
      resp.events = evp;
    } else {
      resp.event = evp[0];
    }
    cr_assert_eq(rt_call_send(call, &resp.base), 0);
    n = 0;
  }
  rt_call_finish(call, GRPC_STATUS_OK, NULL, NULL);
}

static void get_flow(rt_call_t *call, const Smaug__V1__GetFlowRequest *req,
                     void *data) {
  Smaug__V1__FlowNode n1 = SMAUG__V1__FLOW_NODE__INIT, n2 = n1;
  n1.id = "P:smaug.volume#v1";
  n1.activity = SMAUG__V1__ACTIVITY__ACTIVITY_PARALLEL;
  n2.id = "S:smaug.volume#v1";
  n2.activity = SMAUG__V1__ACTIVITY__ACTIVITY_SYNC;
  Smaug__V1__FlowNode *nodes[] = {&n1, &n2};
  Smaug__V1__GetFlowResponse resp = SMAUG__V1__GET_FLOW_RESPONSE__INIT;
  resp.n_nodes = 2;
  resp.nodes = nodes;
  resp.dot = req->plan_id[0] ? "digraph plan {}\n" : "digraph ckp {}\n";
  rt_call_reply(call, &resp.base);
}

static const smaug_v1_orchestrator_handlers_t handlers = {
    .create_plan = create_plan,
    .get_plan = get_plan,
    .list_plans = list_plans,
    .delete_plan = delete_plan,
    .protect = protect,
    .get_checkpoint = get_checkpoint,
    .restore = restore,
    .watch_operation = watch_operation,
    .get_flow = get_flow,
};

static void setup(void) {
  memset(&fx, 0, sizeof(fx));
  cr_assert_eq(uv_loop_init(&fx.loop), 0);
  cr_assert_eq(rt_new(&fx.loop, &fx.rt), 0);
  cr_assert_eq(rt_server_new(fx.rt, NULL, &fx.srv), 0);
  cr_assert_eq(smaug_v1_orchestrator_register(fx.srv, &handlers, NULL), 0);
  cr_assert_eq(rt_server_listen(fx.srv, "127.0.0.1:0", &fx.port), 0);
  cr_assert_eq(rt_server_start(fx.srv), 0);
  snprintf(fx.addr, sizeof(fx.addr), "127.0.0.1:%d", fx.port);
}

static void teardown(void) {
  cr_assert_eq(spawn_server_close(&fx.loop, fx.rt, fx.srv), 0);
  for (int i = 0; i < fx.n_plans; i++)
    protobuf_c_message_free_unpacked(&fx.plans[i]->base, NULL);
  if (fx.last_restore)
    protobuf_c_message_free_unpacked(fx.last_restore, NULL);
}

/* Runs `smaug --server ADDR args...` and returns its exit status. */
static int64_t run(const char *const *args) {
  const char *full[24] = {"--server", fx.addr};
  int n = 2;
  for (; *args && n < 23; args++)
    full[n++] = *args;
  full[n] = NULL;
  cr_assert_eq(spawn_smaug(&fx.loop, SMAUG_BIN, full, &fx.res), 0);
  return fx.res.status;
}

static char *write_tmp(const char *text) {
  static char path[64];
  strcpy(path, "/tmp/smaug-cli-test-XXXXXX");
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  return path;
}

TestSuite(cmd, .init = setup, .fini = teardown);

static const char *plan_text =
    "{\"name\": \"web\", \"resources\": [{\"type\": \"smaug.volume\", "
    "\"id\": \"v1\"}], \"parameters\": {\"smaug.volume\": {\"c\": \"1\"}}}";

Test(cmd, plan_create_show_list_delete, .timeout = 30) {
  char *path = write_tmp(plan_text);
  cr_assert_eq(run((const char *[]){"plan", "create", "-f", path, NULL}), 0);
  cr_assert_str_eq(fx.res.out, "pln-1\n");
  cr_assert_eq(run((const char *[]){"plan", "create", "-f", path, NULL}), 0);
  unlink(path);

  cr_assert_eq(
      run((const char *[]){"-o", "json", "plan", "show", "pln-1", NULL}), 0);
  json_error_t e;
  json_t *j = json_loads(fx.res.out, 0, &e);
  cr_assert_not_null(j, "%s", e.text);
  cr_assert_str_eq(json_string_value(json_object_get(j, "id")), "pln-1");
  cr_assert_str_eq(json_string_value(json_object_get(j, "name")), "web");
  cr_assert_str_eq(
      json_string_value(json_object_get(
          json_object_get(json_object_get(j, "parameters"), "smaug.volume"),
          "c")),
      "1");
  json_decref(j);

  /* Two pages of one plan each come back as one list. */
  cr_assert_eq(run((const char *[]){"plan", "list", "-o", "json", NULL}), 0);
  j = json_loads(fx.res.out, 0, &e);
  cr_assert_not_null(j, "%s", e.text);
  json_t *plans = json_object_get(j, "plans");
  cr_assert_eq(json_array_size(plans), 2);
  cr_assert_str_eq(
      json_string_value(json_object_get(json_array_get(plans, 1), "id")),
      "pln-2");
  json_decref(j);

  cr_assert_eq(run((const char *[]){"plan", "delete", "pln-1", NULL}), 0);
  cr_assert_eq(run((const char *[]){"plan", "show", "pln-1", NULL}), 1);
  cr_assert(strstr(fx.res.err, "NOT_FOUND") != NULL, "%s", fx.res.err);
  cr_assert_eq(fx.n_plans, 1);
}

static const ev_spec_t ok_script[] = {
    {SMAUG__V1__EVENT_KIND__EVENT_KIND_STARTED, 'P', "v1", NULL, NULL},
    {SMAUG__V1__EVENT_KIND__EVENT_KIND_DONE, 'P', "v1", NULL, NULL},
    {SMAUG__V1__EVENT_KIND__EVENT_KIND_STARTED, 'S', "v1", NULL, NULL},
    {SMAUG__V1__EVENT_KIND__EVENT_KIND_DONE, 'S', "v1", NULL, NULL},
    {SMAUG__V1__EVENT_KIND__EVENT_KIND_OPERATION_FINISHED, 0, NULL, NULL,
     "available"},
};

Test(cmd, protect_wait_prints_events_and_summary, .timeout = 30) {
  fx.script = ok_script;
  fx.n_script = 5;
  cr_assert_eq(run((const char *[]){"protect", "pln-1", "--wait", NULL}), 0,
               "%s", fx.res.err);
  const char *o = fx.res.out;
  cr_assert(strncmp(o, "checkpoint  ckp-1\noperation   op-1\n", 34) == 0, "%s",
            o);
  cr_assert(strstr(o, "started   P smaug.volume#v1\n") != NULL, "%s", o);
  cr_assert(strstr(o, "finished  available\n") != NULL, "%s", o);
  cr_assert(strstr(o, "smaug.volume#v1  done       done") != NULL, "%s", o);
  cr_assert(strstr(o, "2 tasks: 2 done, 0 failed") != NULL, "%s", o);
  cr_assert(strstr(o, "operation available\n") != NULL, "%s", o);
}

Test(cmd, watch_of_failed_operation_exits_1, .timeout = 30) {
  static const ev_spec_t script[] = {
      {SMAUG__V1__EVENT_KIND__EVENT_KIND_STARTED, 'P', "v1", NULL, NULL},
      {SMAUG__V1__EVENT_KIND__EVENT_KIND_FAILED, 'P', "v1", "disk gone", NULL},
      {SMAUG__V1__EVENT_KIND__EVENT_KIND_SKIPPED, 'S', "v1", "upstream failed",
       NULL},
      {SMAUG__V1__EVENT_KIND__EVENT_KIND_OPERATION_FINISHED, 0, NULL,
       "1 resource failed", "error"},
  };
  fx.script = script;
  fx.n_script = 4;
  cr_assert_eq(run((const char *[]){"watch", "op-1", NULL}), 1);
  const char *o = fx.res.out;
  cr_assert(strstr(o, "failed    P smaug.volume#v1: disk gone\n") != NULL, "%s",
            o);
  cr_assert(strstr(o, "smaug.volume#v1  failed     skipped    200ms    "
                      "disk gone\n") != NULL,
            "%s", o);
  cr_assert(strstr(o, "operation error: 1 resource failed\n") != NULL, "%s", o);
}

Test(cmd, watch_stream_without_final_event_exits_1, .timeout = 30) {
  fx.script = ok_script;
  fx.n_script = 2; /* ends before OPERATION_FINISHED */
  cr_assert_eq(run((const char *[]){"watch", "op-1", NULL}), 1);
  cr_assert(strstr(fx.res.err, "ended before the operation") != NULL, "%s",
            fx.res.err);
}

Test(cmd, watch_json_prints_one_event_per_line, .timeout = 30) {
  fx.script = ok_script;
  fx.n_script = 5;
  cr_assert_eq(run((const char *[]){"-o", "json", "watch", "op-1", NULL}), 0);
  int lines = 0;
  for (char *l = fx.res.out, *nl; (nl = strchr(l, '\n')) != NULL;
       l = nl + 1, lines++) {
    json_error_t e;
    json_t *j = json_loadb(l, (size_t)(nl - l), 0, &e);
    cr_assert_not_null(j, "line %d: %s", lines, e.text);
    cr_assert_eq(json_integer_value(json_object_get(j, "sequence")), lines + 1);
    json_decref(j);
  }
  cr_assert_eq(lines, 5);
}

Test(cmd, watch_reads_batched_events, .timeout = 30) {
  /* 5 events in messages of 2, 2 and 1: every one printed, in order. */
  fx.script = ok_script;
  fx.n_script = 5;
  fx.batch = 2;
  cr_assert_eq(run((const char *[]){"-o", "json", "watch", "op-1", NULL}), 0);
  cr_assert_eq(fx.max_batch_seen, 64, "max_batch %u", fx.max_batch_seen);
  int lines = 0;
  for (char *l = fx.res.out, *nl; (nl = strchr(l, '\n')) != NULL;
       l = nl + 1, lines++) {
    json_t *j = json_loadb(l, (size_t)(nl - l), 0, NULL);
    cr_assert_not_null(j, "line %d", lines);
    cr_assert_eq(json_integer_value(json_object_get(j, "sequence")), lines + 1);
    json_decref(j);
  }
  cr_assert_eq(lines, 5);
  /* Plain output and the summary from batches too. */
  cr_assert_eq(run((const char *[]){"protect", "pln-1", "--wait", NULL}), 0,
               "%s", fx.res.err);
  cr_assert(strstr(fx.res.out, "2 tasks: 2 done, 0 failed") != NULL, "%s",
            fx.res.out);
  cr_assert(strstr(fx.res.out, "operation available\n") != NULL, "%s",
            fx.res.out);
}

/* Reads parameter `key` of entry `target` from the captured restore. */
static const char *restore_param(const char *target, const char *key) {
  const Smaug__V1__RestoreRequest *r = (void *)fx.last_restore;
  for (size_t i = 0; r && r->parameters && i < r->parameters->n_entries; i++) {
    const Smaug__V1__ParameterSet__EntriesEntry *e = r->parameters->entries[i];
    if (strcmp(e->key, target) != 0)
      continue;
    for (size_t k = 0; e->value && k < e->value->n_values; k++)
      if (strcmp(e->value->values[k]->key, key) == 0)
        return e->value->values[k]->value;
  }
  return NULL;
}

Test(cmd, restore_params_by_type_resource_and_all, .timeout = 30) {
  cr_assert_eq(run((const char *[]){"restore", "ckp-1", "-p", "mode=fast", "-p",
                                    "smaug.volume:dir=/x", "-p",
                                    "smaug.volume#v2:dir=/y=z", NULL}),
               0, "%s", fx.res.err);
  cr_assert_str_eq(fx.res.out, "restore     rst-1\noperation   op-2\n");
  const Smaug__V1__RestoreRequest *r = (void *)fx.last_restore;
  cr_assert_eq(r->parameters->n_entries, 3);
  cr_assert_str_eq(restore_param("smaug.server", "mode"), "fast");
  cr_assert_str_eq(restore_param("smaug.volume", "mode"), "fast");
  cr_assert_str_eq(restore_param("smaug.volume", "dir"), "/x");
  cr_assert_str_eq(restore_param("smaug.volume#v2", "dir"), "/y=z");
}

Test(cmd, flow_dot_picks_plan_or_checkpoint_by_prefix, .timeout = 30) {
  cr_assert_eq(run((const char *[]){"flow", "pln-7", "--dot", NULL}), 0);
  cr_assert_str_eq(fx.res.out, "digraph plan {}\n");
  cr_assert_eq(run((const char *[]){"flow", "ckp-7", "--dot", NULL}), 0);
  cr_assert_str_eq(fx.res.out, "digraph ckp {}\n");
  cr_assert_eq(run((const char *[]){"flow", "ckp-7", NULL}), 0);
  cr_assert(strstr(fx.res.out, "S:smaug.volume#v1  sync") != NULL, "%s",
            fx.res.out);
}
