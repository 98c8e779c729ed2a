/*
 * plugins_ops.c - the real ops_plugins_t (see plugins_ops.h): each entry
 * of the operations core's plain-C table done with the registry, discovery
 * and the runner. It translates at the seam: gRPC status codes become
 * plain ints for a build's callback, a reg_plugin_t becomes its name for
 * the listener of plugins serving again, and an ops_calls_t becomes the
 * runner's context.
 */
#include "plugins_ops.h"

#include <stdlib.h>

#include "discovery.h"
#include "runner.h"

void plugins_ops_init(plugins_ops_t *p, rt_t *rt, reg_t *reg, lim_t *lim) {
  *p = (plugins_ops_t){.rt = rt, .reg = reg, .lim = lim};
}

static int resolve(void *data, const char *type, char *why, size_t len) {
  plugins_ops_t *po = data;
  reg_plugin_t *p;
  return reg_resolve(po->reg, type, &p, NULL, why, len);
}

static int implemented(void *data, const char *type, dag_op_t kind,
                       dag_activity_t act) {
  plugins_ops_t *po = data;
  const Smaug__V1__ResourceTypeInfo *ti;
  if (reg_find_type(po->reg, type, &ti) == NULL)
    return 1; /* make the call, so that the runner fails it with why */
  int p, s;
  if (reg_type_supports(ti, (int)kind, &p, &s) != 0)
    return 0;
  return act == DAG_PARALLEL ? p : s;
}

static void limits(void *data, const char *type, const char **plugin,
                   unsigned *plugin_limit, unsigned *type_limit) {
  plugins_ops_t *po = data;
  const Smaug__V1__ResourceTypeInfo *ti;
  reg_plugin_t *p = reg_find_type(po->reg, type, &ti);
  *plugin = p ? reg_plugin_name(p) : NULL;
  *plugin_limit = p ? reg_plugin_info(p)->max_concurrency : 0;
  *type_limit = p ? ti->max_concurrency : 0;
}

static void recheck(void *data, const char *type) {
  plugins_ops_t *po = data;
  reg_plugin_t *p = reg_find_type(po->reg, type, NULL);
  if (p != NULL)
    reg_plugin_check_now(p);
}

/* reg_available_cb: hands the plugin's name to the core's listener. */
static void plugin_available(reg_plugin_t *p, void *data) {
  plugins_ops_t *po = data;
  if (po->available != NULL)
    po->available(reg_plugin_name(p), po->available_data);
}

static void on_available(void *data, ops_available_cb cb, void *cb_data) {
  plugins_ops_t *po = data;
  po->available = cb;
  po->available_data = cb_data;
  reg_on_available(po->reg, cb ? plugin_available : NULL, cb ? po : NULL);
}

/* One build in flight: the core's callback, until disc_build's. */
typedef struct build_s {
  ops_built_cb cb;
  void *data;
} build_t;

/* disc_cb: the core's callback with the code as a plain int. */
static void built(graph_t *g, grpc_status_code code, const char *msg,
                  const char *const *failed, void *data) {
  build_t b = *(build_t *)data;
  free(data);
  b.cb(g, (int)code, msg, failed, b.data);
}

static int build(void *data, Smaug__V1__Resource *const *resources,
                 size_t n_resources, Smaug__V1__ResourceEdge *const *edges,
                 size_t n_edges, const Smaug__V1__ParameterSet *params,
                 int discover, ops_built_cb cb, void *cb_data) {
  plugins_ops_t *po = data;
  build_t *b = malloc(sizeof(*b));
  if (b == NULL)
    return UV_ENOMEM;
  *b = (build_t){.cb = cb, .data = cb_data};
  int err = disc_build(po->rt, po->reg, po->lim, resources, n_resources, edges,
                       n_edges, params, discover, built, b);
  if (err)
    free(b); /* disc_build never calls back after an error */
  return err;
}

static int runner_new(void *data, const ops_calls_t *calls,
                      const exec_runner_t **runner, void **rdata) {
  plugins_ops_t *po = data;
  runner_ctx_t *c = malloc(sizeof(*c));
  if (c == NULL)
    return UV_ENOMEM;
  *c = (runner_ctx_t){.reg = po->reg,
                      .bank_uri = calls->bank_uri,
                      .checkpoint_id = calls->checkpoint_id,
                      .params = calls->params,
                      .overrides = calls->overrides,
                      .timeout_ms = calls->timeout_ms,
                      .stopping = calls->stopping,
                      .cancel_reason = calls->cancel_reason};
  *runner = runner_rpc();
  *rdata = c;
  return 0;
}

static void runner_free(void *data, void *rdata) {
  (void)data;
  free(rdata);
}

static const ops_plugins_t table = {.resolve = resolve,
                                    .implemented = implemented,
                                    .limits = limits,
                                    .recheck = recheck,
                                    .on_available = on_available,
                                    .build = build,
                                    .runner_new = runner_new,
                                    .runner_free = runner_free};

const ops_plugins_t *plugins_ops(void) {
  return &table;
}
