/*
 * api.c - the smaug.v1.Orchestrator service (see api.h).
 */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_log.h"
#include "smaug/v1/orchestrator.smaug.h"

struct api_s {
  rt_t *rt;
  rt_server_t *srv;
  store_t *store;
  reg_t *reg;
  char *bank_uri;
  int max_operations;
  int max_message_bytes;
  int closing;
};

/* ---------------------------------------------------------------- plugins */

static void plugin_to_proto(const reg_plugin_t *p, Smaug__V1__Plugin *out) {
  smaug__v1__plugin__init(out);
  out->address = (char *)reg_plugin_address(p);
  out->info = (Smaug__V1__GetPluginInfoResponse *)reg_plugin_info(p);
  out->health = reg_plugin_available(p)
                    ? SMAUG__V1__PLUGIN_HEALTH__PLUGIN_HEALTH_SERVING
                    : SMAUG__V1__PLUGIN_HEALTH__PLUGIN_HEALTH_UNAVAILABLE;
  out->health_reason = (char *)reg_plugin_reason(p);
}

static void on_registered(reg_t *reg, grpc_status_code code, const char *msg,
                          reg_plugin_t *p, void *data) {
  rt_call_t *call = data;
  if (code != GRPC_STATUS_OK) {
    rt_call_fail(call, code, "%s", msg);
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
  if (req->address == NULL || *req->address == '\0') {
    rt_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                 "address: required (host:port or unix:/path)");
    return;
  }
  int err = reg_add(api->reg, req->address, req->replace, on_registered, call);
  if (err)
    rt_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "address: %s: %s",
                 req->address, uv_strerror(err));
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
  Smaug__V1__UnregisterPluginResponse resp =
      SMAUG__V1__UNREGISTER_PLUGIN_RESPONSE__INIT;
  rt_call_reply(call, &resp.base);
}

typedef struct api_reg_req_s {
  api_plugin_cb cb;
  void *data;
  char *addr;
} api_reg_req_t;

static void on_config_registered(reg_t *reg, grpc_status_code code,
                                 const char *msg, reg_plugin_t *p, void *data) {
  api_reg_req_t *r = data;
  r->cb(code == GRPC_STATUS_OK ? 0 : UV_ECONNREFUSED, r->addr, msg, r->data);
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
  int err = reg_add(api->reg, addr, replace, on_config_registered, r);
  if (err) {
    free(r->addr);
    free(r);
  }
  return err;
}

/* --------------------------------------------------------------- service */

static const smaug_v1_orchestrator_handlers_t handlers = {
    .register_plugin = h_register_plugin,
    .list_plugins = h_list_plugins,
    .unregister_plugin = h_unregister_plugin,
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
  api->max_operations = cfg->max_operations > 0 ? cfg->max_operations : 16;
  api->max_message_bytes = cfg->max_message_bytes;
  api->bank_uri = strdup(cfg->bank_uri ? cfg->bank_uri : "");
  int err = api->bank_uri ? 0 : UV_ENOMEM;
  if (err == 0)
    err = smaug_v1_orchestrator_register(srv, &handlers, api);
  if (err) {
    free(api->bank_uri);
    free(api);
    return err;
  }
  *out = api;
  return 0;
}

void api_recover(api_t *api) {
  (void)api;
}

void api_close(api_t *api) {
  if (api == NULL || api->closing)
    return;
  api->closing = 1;
  store_flush(api->store);
}

void api_free(api_t *api) {
  if (api == NULL)
    return;
  free(api->bank_uri);
  free(api);
}
