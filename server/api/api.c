/*
 * api.c - the smaug.v1.Orchestrator service (see api.h): plugin and plan
 * handlers, reads of checkpoints and restores (GetFlow is in api_flow.c,
 * the service object in api_int.h). The
 * operation handlers are in api_op.c, over the operations core
 * (server/ops/).
 */
#include "api_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_audit.h"
#include "api_op.h"
#include "api_results.h"
#include "api_scope.h"
#include "api_valid.h"
#include "dag.h"
#include "discovery.h"
#include "plugins_ops.h"
#include "rt_log.h"
#include "smaug/v1/orchestrator.smaug.h"

#define API_PAGE_DEFAULT 100
#define API_PAGE_MAX     1000

/* A RegisterPlugin call waiting for the plugin's handshake. */
typedef struct reg_call_s {
  api_t *api;
  rt_call_t *call;
} reg_call_t;

/* ---------------------------------------------------------------- plugins */

static void plugin_to_proto(const reg_plugin_t *p, Smaug__V1__Plugin *out) {
  smaug__v1__plugin__init(out);
  out->address = (char *)reg_plugin_address(p);
  out->info = (Smaug__V1__GetPluginInfoResponse *)reg_plugin_info(p);
  out->health = reg_plugin_available(p)
                    ? SMAUG__V1__PLUGIN_HEALTH__PLUGIN_HEALTH_SERVING
                    : SMAUG__V1__PLUGIN_HEALTH__PLUGIN_HEALTH_UNAVAILABLE;
  out->health_reason = (char *)reg_plugin_reason(p);
  out->identity = (char *)reg_plugin_identity(p);
}

/* Stores the current plugin addresses, so that plugins registered through
 * the API are registered again on the next start. */
static int save_plugins(api_t *api) {
  size_t n = reg_count(api->reg);
  const char **addrs = calloc(n + 1, sizeof(*addrs));
  if (addrs == NULL)
    return UV_ENOMEM;
  for (size_t i = 0; i < n; i++)
    addrs[i] = reg_plugin_address(reg_at(api->reg, i));
  int err = store_batch(api->store);
  if (err == 0)
    err = store_plugins_set(api->store, addrs, n, ops_now_ms());
  free(addrs);
  if (err == 0)
    err = ops_flush(api->ops);
  if (err)
    rt_log(RT_LOG_ERROR, "api", "cannot store plugins", "error=\"%s\"",
           uv_strerror(err));
  return err;
}

static void on_registered(reg_t *reg, grpc_status_code code, const char *msg,
                          reg_plugin_t *p, void *data) {
  reg_call_t *rc = data;
  rt_call_t *call = rc->call;
  api_t *api = rc->api;
  free(rc);
  if (code != GRPC_STATUS_OK) {
    rt_call_fail(call, code, "%s", msg);
    return;
  }
  if (save_plugins(api) != 0) {
    rt_call_fail(call, GRPC_STATUS_INTERNAL,
                 "plugin registered but not stored: %s",
                 store_errmsg(api->store));
    return;
  }
  Smaug__V1__Plugin pl;
  plugin_to_proto(p, &pl);
  Smaug__V1__RegisterPluginResponse resp =
      SMAUG__V1__REGISTER_PLUGIN_RESPONSE__INIT;
  resp.plugin = &pl;
  rt_call_reply(call, &resp.base);
}

static void h_register_plugin(rt_call_t *call,
                              const Smaug__V1__RegisterPluginRequest *req,
                              void *data) {
  api_t *api = data;
  char msg[512];
  grpc_status_code code = valid_id("address", req->address, msg, sizeof(msg));
  if (code) {
    rt_call_fail(call, code, "%s (host:port or unix:/path)", msg);
    return;
  }
  reg_call_t *rc = malloc(sizeof(*rc));
  if (rc == NULL) {
    rt_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  rc->api = api;
  rc->call = call;
  /* Handing a type to a plugin of another identity is an admin's call,
   * whatever the permission table says of RegisterPlugin; without
   * authentication every caller is trusted. */
  const auth_ctx_t *who = auth_current(api->auth);
  int take_over = api->auth == NULL || (who && who->role >= AUTH_ROLE_ADMIN);
  int err = reg_add_ex(api->reg, req->address, req->replace, take_over,
                       on_registered, rc);
  if (err) {
    free(rc);
    rt_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "address: %s: %s",
                 req->address, uv_strerror(err));
  }
}

static void h_list_plugins(rt_call_t *call,
                           const Smaug__V1__ListPluginsRequest *req,
                           void *data) {
  api_t *api = data;
  size_t n = reg_count(api->reg);
  Smaug__V1__Plugin *pls = calloc(n ? n : 1, sizeof(*pls));
  Smaug__V1__Plugin **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
  if (pls == NULL || ptrs == NULL) {
    free(pls);
    free(ptrs);
    rt_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  for (size_t i = 0; i < n; i++) {
    plugin_to_proto(reg_at(api->reg, i), &pls[i]);
    ptrs[i] = &pls[i];
  }
  Smaug__V1__ListPluginsResponse resp = SMAUG__V1__LIST_PLUGINS_RESPONSE__INIT;
  resp.n_plugins = n;
  resp.plugins = ptrs;
  rt_call_reply(call, &resp.base);
  free(pls);
  free(ptrs);
}

static void h_unregister_plugin(rt_call_t *call,
                                const Smaug__V1__UnregisterPluginRequest *req,
                                void *data) {
  api_t *api = data;
  if (req->name == NULL || *req->name == '\0') {
    rt_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "name: required");
    return;
  }
  if (reg_remove(api->reg, req->name) != 0) {
    rt_call_fail(call, GRPC_STATUS_NOT_FOUND, "plugin %s not found", req->name);
    return;
  }
  if (save_plugins(api) != 0) {
    rt_call_fail(call, GRPC_STATUS_INTERNAL,
                 "plugin removed but not stored: %s", store_errmsg(api->store));
    return;
  }
  Smaug__V1__UnregisterPluginResponse resp =
      SMAUG__V1__UNREGISTER_PLUGIN_RESPONSE__INIT;
  rt_call_reply(call, &resp.base);
}

typedef struct api_reg_req_s {
  api_plugin_cb cb;
  void *data;
  char *addr;
  api_t *api;
} api_reg_req_t;

static void on_config_registered(reg_t *reg, grpc_status_code code,
                                 const char *msg, reg_plugin_t *p, void *data) {
  api_reg_req_t *r = data;
  if (code == GRPC_STATUS_OK)
    save_plugins(r->api);
  /* UV_ECONNREFUSED: not reachable (yet); UV_EINVAL: reached, refused. */
  int err = code == GRPC_STATUS_OK            ? 0
            : code == GRPC_STATUS_UNAVAILABLE ? UV_ECONNREFUSED
                                              : UV_EINVAL;
  r->cb(err, r->addr, msg, r->data);
  free(r->addr);
  free(r);
}

int api_register_plugin(api_t *api, const char *addr, int replace,
                        api_plugin_cb cb, void *data) {
  api_reg_req_t *r = calloc(1, sizeof(*r));
  if (r == NULL || (r->addr = strdup(addr)) == NULL) {
    free(r);
    return UV_ENOMEM;
  }
  r->cb = cb;
  r->data = data;
  r->api = api;
  int err = reg_add(api->reg, addr, replace, on_config_registered, r);
  if (err) {
    free(r->addr);
    free(r);
  }
  return err;
}

/* ------------------------------------------------------------------ paging */

static int page_token(rt_call_t *call, const char *tok, uint64_t *out) {
  *out = 0;
  if (tok == NULL || *tok == '\0')
    return 0;
  /* Only what token_str writes: digits, no sign, space or overflow. */
  char *end;
  errno = 0;
  unsigned long long v = strtoull(tok, &end, 10);
  if (*end != '\0' || v == 0 || errno == ERANGE || tok[0] < '0' ||
      tok[0] > '9') {
    rt_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                 "page_token: invalid token '%.64s'", tok);
    return -1;
  }
  *out = v;
  return 0;
}

static uint32_t page_size(uint32_t n) {
  return n == 0 ? API_PAGE_DEFAULT : n > API_PAGE_MAX ? API_PAGE_MAX : n;
}

static void token_str(uint64_t next, char *buf, size_t len) {
  if (next)
    snprintf(buf, len, "%llu", (unsigned long long)next);
  else
    buf[0] = '\0';
}

/* ------------------------------------------------------------------ plans */

static void h_create_plan(rt_call_t *call,
                          const Smaug__V1__CreatePlanRequest *req, void *data) {
  api_t *api = data;
  char msg[1024], id[48];
  grpc_status_code rc = api_check_plan(api->reg, req->plan, msg, sizeof(msg));
  if (rc) {
    rt_call_fail(call, rc, "%s", msg);
    return;
  }
  api_scope_t sc = api_scope(api->store, api->auth);
  Smaug__V1__Plan plan = *req->plan;
  ops_new_id("pln", id, sizeof(id));
  plan.id = id;
  plan.tenant = (char *)store_tenant(sc.tenant);
  plan.created_at_ms = plan.updated_at_ms = ops_now_ms();
  int err = store_batch(api->store);
  if (err == 0)
    err = store_plan_put(api->store, &plan);
  if (err == 0)
    err = ops_flush(api->ops);
  if (err) {
    api_fail_store(call, err);
    return;
  }
  Smaug__V1__CreatePlanResponse resp = SMAUG__V1__CREATE_PLAN_RESPONSE__INIT;
  resp.plan = &plan;
  rt_call_reply(call, &resp.base);
}

static void h_get_plan(rt_call_t *call, const Smaug__V1__GetPlanRequest *req,
                       void *data) {
  api_t *api = data;
  api_scope_t sc = api_scope(api->store, api->auth);
  if (api_fail_bad_id(call, "id", req->id) ||
      api_scope_fail(&sc, call, STORE_PLAN, req->id))
    return;
  Smaug__V1__Plan *plan;
  int err = store_plan_get(api->store, req->id, &plan);
  if (err) {
    api_fail_lookup(call, "plan", req->id, err);
    return;
  }
  Smaug__V1__GetPlanResponse resp = SMAUG__V1__GET_PLAN_RESPONSE__INIT;
  resp.plan = plan;
  rt_call_reply(call, &resp.base);
  protobuf_c_message_free_unpacked(&plan->base, NULL);
}

static void h_list_plans(rt_call_t *call,
                         const Smaug__V1__ListPlansRequest *req, void *data) {
  api_t *api = data;
  uint64_t after, next;
  api_scope_t sc = api_scope(api->store, api->auth);
  const char *tenant;
  if (page_token(call, req->page_token, &after) ||
      api_scope_list(&sc, call, req->tenant, &tenant))
    return;
  Smaug__V1__Plan **plans = NULL;
  size_t n;
  char tok[32];
  Smaug__V1__ListPlansResponse resp = SMAUG__V1__LIST_PLANS_RESPONSE__INIT;
  /* Large plans can make a page bigger than one message, which no client
   * could read: the page is then halved until it fits (or holds one plan),
   * and the token continues after what was sent. */
  for (uint32_t size = page_size(req->page_size);; size = (uint32_t)n / 2) {
    int err = 0;
    n = next = 0;
    if (tenant)
      err = store_plan_list(api->store, tenant, after, size, &plans, &n, &next);
    if (err) {
      api_fail_store(call, err);
      return;
    }
    token_str(next, tok, sizeof(tok));
    resp.n_plans = n;
    resp.plans = plans;
    resp.next_page_token = tok;
    if (n <= 1 || protobuf_c_message_get_packed_size(&resp.base) + 1024 <=
                      (size_t)api->max_message_bytes)
      break;
    store_msgs_free(plans, n);
  }
  rt_call_reply(call, &resp.base);
  store_msgs_free(plans, n);
}

static void h_update_plan(rt_call_t *call,
                          const Smaug__V1__UpdatePlanRequest *req, void *data) {
  api_t *api = data;
  char msg[1024];
  grpc_status_code rc;
  if (req->plan == NULL) {
    rt_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "plan: required");
    return;
  }
  api_scope_t sc = api_scope(api->store, api->auth);
  if (api_fail_bad_id(call, "plan.id", req->plan->id) ||
      api_scope_fail(&sc, call, STORE_PLAN, req->plan->id))
    return;
  Smaug__V1__Plan *old;
  int err = store_plan_get(api->store, req->plan->id, &old);
  if (err) {
    api_fail_lookup(call, "plan", req->plan->id, err);
    return;
  }
  if ((rc = api_check_plan(api->reg, req->plan, msg, sizeof(msg)))) {
    protobuf_c_message_free_unpacked(&old->base, NULL);
    rt_call_fail(call, rc, "%s", msg);
    return;
  }
  Smaug__V1__Plan plan = *req->plan;
  plan.created_at_ms = old->created_at_ms;
  plan.updated_at_ms = ops_now_ms();
  plan.tenant = old->tenant; /* a plan never changes tenant */
  if ((err = store_batch(api->store)) == 0 &&
      (err = store_plan_put(api->store, &plan)) == 0)
    err = ops_flush(api->ops);
  if (err) {
    protobuf_c_message_free_unpacked(&old->base, NULL);
    api_fail_store(call, err);
    return;
  }
  Smaug__V1__UpdatePlanResponse resp = SMAUG__V1__UPDATE_PLAN_RESPONSE__INIT;
  resp.plan = &plan;
  rt_call_reply(call, &resp.base);
  protobuf_c_message_free_unpacked(&old->base, NULL);
}

static void h_delete_plan(rt_call_t *call,
                          const Smaug__V1__DeletePlanRequest *req, void *data) {
  api_t *api = data;
  api_scope_t sc = api_scope(api->store, api->auth);
  if (api_fail_bad_id(call, "id", req->id) ||
      api_scope_fail(&sc, call, STORE_PLAN, req->id))
    return;
  int err = store_batch(api->store);
  if (err == 0)
    err = store_plan_delete(api->store, req->id);
  int ferr = ops_flush(api->ops);
  if (err == 0)
    err = ferr;
  if (err) {
    api_fail_lookup(call, "plan", req->id, err);
    return;
  }
  Smaug__V1__DeletePlanResponse resp = SMAUG__V1__DELETE_PLAN_RESPONSE__INIT;
  rt_call_reply(call, &resp.base);
}

/* ------------------------------------------------------------ checkpoints */

static void h_get_checkpoint(rt_call_t *call,
                             const Smaug__V1__GetCheckpointRequest *req,
                             void *data) {
  api_t *api = data;
  api_scope_t sc = api_scope(api->store, api->auth);
  api_results_get_checkpoint(&api->results, &sc, call, req);
}

static void
h_list_resource_results(rt_call_t *call,
                        const Smaug__V1__ListResourceResultsRequest *req,
                        void *data) {
  api_t *api = data;
  api_scope_t sc = api_scope(api->store, api->auth);
  api_results_list(&api->results, &sc, call, req);
}

static void h_list_checkpoints(rt_call_t *call,
                               const Smaug__V1__ListCheckpointsRequest *req,
                               void *data) {
  api_t *api = data;
  uint64_t before, next;
  if (page_token(call, req->page_token, &before))
    return;
  if (req->created_before_ms && req->created_after_ms &&
      req->created_before_ms <= req->created_after_ms) {
    rt_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                 "created_before_ms: must be after created_after_ms");
    return;
  }
  if (req->status < 0 ||
      req->status >
          SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_ERROR_DELETING) {
    rt_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "status: unknown value %d",
                 (int)req->status);
    return;
  }
  api_scope_t sc = api_scope(api->store, api->auth);
  store_cp_filter_t f = {.plan_id = req->plan_id,
                         .status = (int)req->status,
                         .created_after_ms = req->created_after_ms,
                         .created_before_ms = req->created_before_ms};
  if (api_scope_list(&sc, call, req->tenant, &f.tenant))
    return;
  ops_flush(api->ops);
  Smaug__V1__Checkpoint **cps = NULL;
  size_t n = 0;
  int err = 0;
  next = 0;
  if (f.tenant)
    err = store_checkpoint_list(api->store, &f, before,
                                page_size(req->page_size), &cps, &n, &next);
  if (err) {
    api_fail_store(call, err);
    return;
  }
  char tok[32];
  token_str(next, tok, sizeof(tok));
  Smaug__V1__ListCheckpointsResponse resp =
      SMAUG__V1__LIST_CHECKPOINTS_RESPONSE__INIT;
  resp.n_checkpoints = n;
  resp.checkpoints = cps;
  resp.next_page_token = tok;
  /* Large graphs can make a page bigger than one message: then the page
   * goes without the graphs (GetCheckpoint has them). */
  if (protobuf_c_message_get_packed_size(&resp.base) + 1024 >
      (size_t)api->max_message_bytes)
    for (size_t i = 0; i < n; i++) {
      for (size_t j = 0; j < cps[i]->n_resources; j++)
        protobuf_c_message_free_unpacked(&cps[i]->resources[j]->base, NULL);
      for (size_t j = 0; j < cps[i]->n_edges; j++)
        protobuf_c_message_free_unpacked(&cps[i]->edges[j]->base, NULL);
      cps[i]->n_resources = 0; /* the arrays go with the checkpoint */
      cps[i]->n_edges = 0;
    }
  rt_call_reply(call, &resp.base);
  store_msgs_free(cps, n);
}

/* --------------------------------------------------------------- restores */

static void h_get_restore(rt_call_t *call,
                          const Smaug__V1__GetRestoreRequest *req, void *data) {
  api_t *api = data;
  api_scope_t sc = api_scope(api->store, api->auth);
  api_results_get_restore(&api->results, &sc, call, req);
}

static void h_list_restores(rt_call_t *call,
                            const Smaug__V1__ListRestoresRequest *req,
                            void *data) {
  api_t *api = data;
  uint64_t before, next;
  api_scope_t sc = api_scope(api->store, api->auth);
  const char *tenant;
  if (page_token(call, req->page_token, &before) ||
      api_scope_list(&sc, call, req->tenant, &tenant))
    return;
  ops_flush(api->ops);
  Smaug__V1__Restore **rs = NULL;
  size_t n = 0;
  int err = 0;
  next = 0;
  if (tenant)
    err = store_restore_list(api->store, req->checkpoint_id, tenant, before,
                             page_size(req->page_size), &rs, &n, &next);
  if (err) {
    api_fail_store(call, err);
    return;
  }
  char tok[32];
  token_str(next, tok, sizeof(tok));
  Smaug__V1__ListRestoresResponse resp =
      SMAUG__V1__LIST_RESTORES_RESPONSE__INIT;
  resp.n_restores = n;
  resp.restores = rs;
  resp.next_page_token = tok;
  rt_call_reply(call, &resp.base);
  store_msgs_free(rs, n);
}

/* ------------------------------------------------------------- operations */

static void h_protect(rt_call_t *call, const Smaug__V1__ProtectRequest *req,
                      void *data) {
  api_t *api = data;
  api_scope_t sc = api_scope(api->store, api->auth);
  api_ops_protect(api->ops, &sc, api->reg, call, req);
}

static void h_restore(rt_call_t *call, const Smaug__V1__RestoreRequest *req,
                      void *data) {
  api_t *api = data;
  api_scope_t sc = api_scope(api->store, api->auth);
  api_ops_restore(api->ops, &sc, api->reg, call, req);
}

static void h_delete_checkpoint(rt_call_t *call,
                                const Smaug__V1__DeleteCheckpointRequest *req,
                                void *data) {
  api_t *api = data;
  api_scope_t sc = api_scope(api->store, api->auth);
  api_ops_delete_checkpoint(api->ops, &sc, api->reg, call, req);
}

static void h_list_audit_events(rt_call_t *call,
                                const Smaug__V1__ListAuditEventsRequest *req,
                                void *data) {
  api_t *api = data;
  uint64_t before, next;
  char msg[512];
  grpc_status_code rc = api_audit_check_filter(&smaug_v1_orchestrator_service,
                                               req, msg, sizeof(msg));
  if (rc) {
    rt_call_fail(call, rc, "%s", msg);
    return;
  }
  if (page_token(call, req->page_token, &before))
    return;
  ops_flush(api->ops); /* the records queued so far are read too */
  store_audit_filter_t f = {
      .who = req->who, .method = req->method, .since_ms = req->since_ms};
  Smaug__V1__AuditEvent **evs;
  size_t n;
  int err = store_audit_list(api->store, &f, before, page_size(req->page_size),
                             &evs, &n, &next);
  if (err) {
    api_fail_store(call, err);
    return;
  }
  char tok[32];
  token_str(next, tok, sizeof(tok));
  Smaug__V1__ListAuditEventsResponse resp =
      SMAUG__V1__LIST_AUDIT_EVENTS_RESPONSE__INIT;
  resp.n_events = n;
  resp.events = evs;
  resp.next_page_token = tok;
  rt_call_reply(call, &resp.base);
  store_msgs_free(evs, n);
}

static void h_watch_operation(rt_call_t *call,
                              const Smaug__V1__WatchOperationRequest *req,
                              void *data) {
  api_t *api = data;
  api_scope_t sc = api_scope(api->store, api->auth);
  api_ops_watch(api->ops, &sc, call, req);
}

static void h_cancel_operation(rt_call_t *call,
                               const Smaug__V1__CancelOperationRequest *req,
                               void *data) {
  api_t *api = data;
  api_scope_t sc = api_scope(api->store, api->auth);
  api_ops_cancel(api->ops, &sc, call, req);
}

/* --------------------------------------------------------------- service */

static const smaug_v1_orchestrator_handlers_t handlers = {
    .register_plugin = h_register_plugin,
    .list_plugins = h_list_plugins,
    .unregister_plugin = h_unregister_plugin,
    .create_plan = h_create_plan,
    .get_plan = h_get_plan,
    .list_plans = h_list_plans,
    .update_plan = h_update_plan,
    .delete_plan = h_delete_plan,
    .protect = h_protect,
    .get_checkpoint = h_get_checkpoint,
    .list_checkpoints = h_list_checkpoints,
    .delete_checkpoint = h_delete_checkpoint,
    .restore = h_restore,
    .get_restore = h_get_restore,
    .list_resource_results = h_list_resource_results,
    .list_restores = h_list_restores,
    .watch_operation = h_watch_operation,
    .cancel_operation = h_cancel_operation,
    .get_flow = api_h_get_flow,
    .list_audit_events = h_list_audit_events,
};

int api_new(rt_t *rt, rt_server_t *srv, store_t *store, reg_t *reg,
            const api_config_t *cfg, api_t **out) {
  api_t *api = calloc(1, sizeof(*api));
  if (api == NULL)
    return UV_ENOMEM;
  api->rt = rt;
  api->srv = srv;
  api->store = store;
  api->reg = reg;
  api->auth = cfg->auth;
  api->max_message_bytes =
      cfg->max_message_bytes > 0 ? cfg->max_message_bytes : 4 << 20;
  if (lim_new(&api->lim) != 0) {
    free(api);
    return UV_ENOMEM;
  }
  plugins_ops_init(&api->plugins, rt, reg, api->lim);
  ops_config_t oc = {.loop = rt_loop(rt),
                     .store = store,
                     .plugins = plugins_ops(),
                     .plugins_data = &api->plugins,
                     .limiter = api->lim,
                     .bank_uri = cfg->bank_uri,
                     .max_operations = cfg->max_operations,
                     .call_timeout_ms = cfg->call_timeout_ms,
                     .heartbeat_ms = cfg->heartbeat_ms,
                     .event_retention_ms = cfg->event_retention_ms,
                     .retry_budget_ms = cfg->retry_budget_ms};
  int err = ops_new(&oc, &api->ops);
  api->results = (api_results_t){.store = store,
                                 .ops = api->ops,
                                 .max_message_bytes = api->max_message_bytes};
  api->audit =
      (api_audit_t){.store = store, .retention_ms = cfg->audit_retention_ms};
  if (err == 0 &&
      (err = auth_guard_service(cfg->auth, srv, &smaug_v1_orchestrator_service,
                                &handlers, api, api_audit_record, &api->audit,
                                &api->guard)) != 0) {
    ops_close(api->ops);
  }
  if (err) {
    /* The ops timer handle closes on the loop; free after it ran. */
    lim_free(api->lim);
    free(api);
    return err;
  }
  *out = api;
  return 0;
}

ops_t *api_ops(api_t *api) {
  return api->ops;
}

void api_recover(api_t *api) {
  ops_recover(api->ops);
}

void api_close(api_t *api) {
  if (api == NULL || api->closing)
    return;
  api->closing = 1;
  ops_close(api->ops);
}

void api_free(api_t *api) {
  if (api == NULL)
    return;
  ops_free(api->ops);
  lim_free(api->lim);
  auth_guard_free(api->guard);
  free(api);
}
