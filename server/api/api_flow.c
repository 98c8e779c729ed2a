/*
 * api_flow.c - GetFlow: the DAG an operation would run for a plan or a
 * checkpoint, built with discovery and answered without running it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_audit.h"
#include "api_int.h"
#include "api_op.h"
#include "api_results.h"
#include "api_scope.h"
#include "api_valid.h"
#include "dag.h"
#include "discovery.h"
#include "plugins_ops.h"
#include "rt_log.h"
#include "smaug/v1/orchestrator.smaug.h"

typedef struct flow_req_s {
  api_t *api;
  rt_call_t *call;
  dag_op_t kind;
} flow_req_t;

static int flow_implemented(void *data, const char *type, dag_op_t kind,
                            dag_activity_t act) {
  api_t *api = data;
  const Smaug__V1__ResourceTypeInfo *ti;
  if (reg_find_type(api->reg, type, &ti) == NULL)
    return 1;
  int p, s;
  if (reg_type_supports(ti, (int)kind, &p, &s) != 0)
    return 0;
  return act == DAG_PARALLEL ? p : s;
}

static void flow_built(graph_t *g, grpc_status_code code, const char *msg,
                       const char *const *failed, void *data) {
  flow_req_t *fr = data;
  dag_t *dag = NULL;
  dag_export_t x = {0};
  char *dot = NULL;
  int err = 0;
  if (code != GRPC_STATUS_OK) {
    rt_call_fail(fr->call, code, "%s", msg);
    goto out;
  }
  if ((err = dag_new(g, fr->kind, flow_implemented, fr->api, &dag)) != 0 ||
      (err = dag_export(dag, &x)) != 0 || (err = dag_to_dot(dag, &dot)) != 0) {
    rt_call_fail(fr->call, GRPC_STATUS_INTERNAL, "flow: %s", uv_strerror(err));
    goto out;
  }
  Smaug__V1__FlowNode *nodes = calloc(x.n_nodes + 1, sizeof(*nodes));
  Smaug__V1__FlowNode **np = calloc(x.n_nodes + 1, sizeof(*np));
  Smaug__V1__Resource *res = calloc(x.n_nodes + 1, sizeof(*res));
  Smaug__V1__FlowEdge *edges = calloc(x.n_edges + 1, sizeof(*edges));
  Smaug__V1__FlowEdge **ep = calloc(x.n_edges + 1, sizeof(*ep));
  if (nodes && np && res && edges && ep) {
    for (size_t i = 0; i < x.n_nodes; i++) {
      smaug__v1__flow_node__init(&nodes[i]);
      disc_resource_of(graph_node(g, x.nodes[i].node), &res[i]);
      nodes[i].id = x.nodes[i].id;
      nodes[i].resource = &res[i];
      nodes[i].activity = (Smaug__V1__Activity)x.nodes[i].activity;
      nodes[i].noop = x.nodes[i].noop;
      np[i] = &nodes[i];
    }
    for (size_t i = 0; i < x.n_edges; i++) {
      smaug__v1__flow_edge__init(&edges[i]);
      edges[i].from = x.nodes[x.edges[i].from].id;
      edges[i].to = x.nodes[x.edges[i].to].id;
      edges[i].kind = (Smaug__V1__FlowEdgeKind)x.edges[i].kind;
      ep[i] = &edges[i];
    }
    Smaug__V1__GetFlowResponse resp = SMAUG__V1__GET_FLOW_RESPONSE__INIT;
    resp.n_nodes = x.n_nodes;
    resp.nodes = np;
    resp.n_edges = x.n_edges;
    resp.edges = ep;
    resp.dot = dot;
    rt_call_reply(fr->call, &resp.base);
    for (size_t i = 0; i < x.n_nodes; i++)
      disc_resource_free(&res[i]);
  } else {
    rt_call_fail(fr->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  }
  free(nodes);
  free(np);
  free(res);
  free(edges);
  free(ep);
out:
  free(dot);
  dag_export_free(&x);
  dag_free(dag);
  graph_free(g);
  free(fr);
}

void api_h_get_flow(rt_call_t *call, const Smaug__V1__GetFlowRequest *req,
                    void *data) {
  api_t *api = data;
  int has_plan = req->plan_id && *req->plan_id;
  int has_cp = req->checkpoint_id && *req->checkpoint_id;
  if (has_plan == has_cp) {
    rt_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                 "plan_id, checkpoint_id: exactly one is required");
    return;
  }
  api_scope_t sc = api_scope(api->store, api->auth);
  if (api_fail_bad_id(call, has_plan ? "plan_id" : "checkpoint_id",
                      has_plan ? req->plan_id : req->checkpoint_id) ||
      api_scope_fail(&sc, call, has_plan ? STORE_PLAN : STORE_CHECKPOINT,
                     has_plan ? req->plan_id : req->checkpoint_id))
    return;
  int kind = req->kind ? (int)req->kind : DAG_OP_PROTECT;
  if (kind < DAG_OP_PROTECT || kind > DAG_OP_DELETE) {
    rt_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                 "kind: unknown operation kind %d", kind);
    return;
  }
  flow_req_t *fr = calloc(1, sizeof(*fr));
  if (fr == NULL) {
    rt_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  fr->api = api;
  fr->call = call;
  fr->kind = (dag_op_t)kind;
  int err;
  if (has_plan) {
    Smaug__V1__Plan *plan;
    if ((err = store_plan_get(api->store, req->plan_id, &plan)) != 0) {
      free(fr);
      api_fail_lookup(call, "plan", req->plan_id, err);
      return;
    }
    err = disc_build(api->rt, api->reg, api->lim, plan->resources,
                     plan->n_resources, plan->edges, plan->n_edges,
                     plan->parameters, 1, flow_built, fr);
    protobuf_c_message_free_unpacked(&plan->base, NULL);
  } else {
    ops_flush(api->ops);
    Smaug__V1__Checkpoint *cp;
    if ((err = store_checkpoint_get(api->store, req->checkpoint_id, &cp))) {
      free(fr);
      api_fail_lookup(call, "checkpoint", req->checkpoint_id, err);
      return;
    }
    err =
        disc_build(api->rt, api->reg, api->lim, cp->resources, cp->n_resources,
                   cp->edges, cp->n_edges, NULL, 0, flow_built, fr);
    protobuf_c_message_free_unpacked(&cp->base, NULL);
  }
  if (err) {
    free(fr);
    rt_call_fail(call, GRPC_STATUS_INTERNAL, "flow: %s", uv_strerror(err));
  }
}
