/*
 * api_valid.c - request checks for the Orchestrator (see api_valid.h).
 * Graph checks (duplicates, cycles) reuse the graph module so that a plan
 * is refused for exactly the reasons an operation would fail on it.
 */
#include "api_valid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "graph.h"

int api_fail_bad_id(rt_call_t *call, const char *field, const char *id) {
  char msg[512];
  grpc_status_code rc = valid_id(field, id, msg, sizeof(msg));
  if (rc == GRPC_STATUS_OK)
    return 0;
  rt_call_fail(call, rc, "%s", msg);
  return 1;
}

void api_fail_lookup(rt_call_t *call, const char *what, const char *id,
                     int err) {
  if (err == UV_ENOENT)
    rt_call_fail(call, GRPC_STATUS_NOT_FOUND, "%s %s not found", what, id);
  else
    rt_call_fail(call, GRPC_STATUS_INTERNAL, "%s %s %s", what, id,
                 uv_strerror(err));
}

void api_fail_store(rt_call_t *call, int err) {
  rt_call_fail(call, GRPC_STATUS_INTERNAL, "store: %s", uv_strerror(err));
}

static const reg_schema_t *schema_of(const reg_t *reg, const char *type,
                                     int restore) {
  return restore ? reg_restore_schema(reg, type)
                 : reg_options_schema(reg, type);
}

static grpc_status_code check_kv(const reg_schema_t *schema, const kv_t *kv,
                                 const char *field, int required, char *msg,
                                 size_t len) {
  const char **keys = malloc((kv->n + 1) * sizeof(*keys));
  const char **vals = malloc((kv->n + 1) * sizeof(*vals));
  if (keys == NULL || vals == NULL) {
    free(keys);
    free(vals);
    snprintf(msg, len, "out of memory");
    return GRPC_STATUS_RESOURCE_EXHAUSTED;
  }
  for (size_t i = 0; i < kv->n; i++) {
    keys[i] = kv->items[i].key;
    vals[i] = kv->items[i].val;
  }
  int rc =
      reg_schema_check(schema, field, keys, vals, kv->n, required, msg, len);
  free(keys);
  free(vals);
  return rc == 0 ? GRPC_STATUS_OK : GRPC_STATUS_INVALID_ARGUMENT;
}

grpc_status_code api_check_params(const reg_t *reg,
                                  const Smaug__V1__ParameterSet *ps,
                                  Smaug__V1__Resource *const *resources,
                                  size_t n_resources, int restore,
                                  const char *field, char *msg, size_t len) {
  char f[600];
  grpc_status_code rc;
  Smaug__V1__ParameterSet none = SMAUG__V1__PARAMETER_SET__INIT;
  if (ps == NULL)
    ps = &none;
  if (ps->n_entries > VALID_MAX_PLAN_ENTRIES) {
    snprintf(msg, len, "%s: more than %d entries", field,
             VALID_MAX_PLAN_ENTRIES);
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  for (size_t i = 0; i < ps->n_entries; i++) {
    const Smaug__V1__ParameterSet__EntriesEntry *e = ps->entries[i];
    snprintf(f, sizeof(f), "%s[%.300s]", field, e->key);
    if ((rc = valid_str(f, e->key, 1, 2 * VALID_MAX_KEY_BYTES + 1, msg, len)))
      return rc;
    char type[2 * VALID_MAX_KEY_BYTES + 2];
    snprintf(type, sizeof(type), "%s", e->key);
    char *hash = strchr(type, '#');
    if (hash)
      *hash = '\0';
    /* The key names a type, or one resource "type#id". */
    if ((rc = valid_key(f, type, msg, len)) ||
        (hash && (rc = valid_key(f, hash + 1, msg, len))))
      return rc;
    if (reg_find_type(reg, type, NULL) == NULL) {
      snprintf(msg, len, "%s: no plugin provides resource type %s", f, type);
      return GRPC_STATUS_INVALID_ARGUMENT;
    }
    kv_t kv;
    kv_init(&kv);
    size_t nv = e->value ? e->value->n_values : 0;
    for (size_t j = 0; j < nv; j++) {
      const Smaug__V1__Parameters__ValuesEntry *v = e->value->values[j];
      char vf[700];
      snprintf(vf, sizeof(vf), "%s.%.64s", f, v->key);
      if ((rc = valid_str(vf, v->key, 1, VALID_MAX_KEY_BYTES, msg, len)) ||
          (rc = valid_str(vf, v->value, 0, VALID_MAX_VALUE_BYTES, msg, len))) {
        kv_free(&kv);
        return rc;
      }
      if (kv_set(&kv, v->key, v->value) != 0) {
        kv_free(&kv);
        snprintf(msg, len, "out of memory");
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
      }
    }
    /* `required` is left to the merged check of each resource below. */
    rc = check_kv(schema_of(reg, type, restore), &kv, f, 0, msg, len);
    kv_free(&kv);
    if (rc)
      return rc;
  }
  for (size_t i = 0; i < n_resources; i++) {
    const Smaug__V1__Resource *r = resources[i];
    kv_t kv;
    kv_init(&kv);
    if (valid_params_merge(ps, r->type, r->id, &kv) != 0) {
      kv_free(&kv);
      snprintf(msg, len, "out of memory");
      return GRPC_STATUS_RESOURCE_EXHAUSTED;
    }
    snprintf(f, sizeof(f), "%s[%.200s#%.200s]", field, r->type, r->id);
    rc = check_kv(schema_of(reg, r->type, restore), &kv, f, 1, msg, len);
    kv_free(&kv);
    if (rc)
      return rc;
  }
  return GRPC_STATUS_OK;
}

/* An edge of a plan as node indices, with its place in plan.edges. */
typedef struct {
  uint64_t key; /* parent << 32 | child */
  size_t idx;
} edge_key_t;

static int edge_key_cmp(const void *a, const void *b) {
  const edge_key_t *x = a, *y = b;
  if (x->key != y->key)
    return x->key < y->key ? -1 : 1;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Refuses a plan that lists the same edge twice (the graph would merge
 * them silently): names the first index that repeats an earlier edge.
 * Every endpoint must already be a node of g. O(n log n). */
static grpc_status_code check_dup_edges(const graph_t *g,
                                        const Smaug__V1__Plan *plan, char *msg,
                                        size_t len) {
  if (plan->n_edges < 2)
    return GRPC_STATUS_OK;
  edge_key_t *k = malloc(plan->n_edges * sizeof(*k));
  if (k == NULL) {
    snprintf(msg, len, "out of memory");
    return GRPC_STATUS_RESOURCE_EXHAUSTED;
  }
  for (size_t i = 0; i < plan->n_edges; i++) {
    const Smaug__V1__ResourceEdge *e = plan->edges[i];
    uint64_t p = (uint64_t)graph_find(g, e->parent_type, e->parent_id);
    uint64_t c = (uint64_t)graph_find(g, e->child_type, e->child_id);
    k[i].key = p << 32 | c;
    k[i].idx = i;
  }
  qsort(k, plan->n_edges, sizeof(*k), edge_key_cmp);
  size_t dup = plan->n_edges, first = 0;
  for (size_t i = 1; i < plan->n_edges; i++)
    if (k[i].key == k[i - 1].key && k[i].idx < dup) {
      dup = k[i].idx;
      first = k[i - 1].idx;
    }
  free(k);
  if (dup == plan->n_edges)
    return GRPC_STATUS_OK;
  const Smaug__V1__ResourceEdge *e = plan->edges[dup];
  snprintf(msg, len,
           "plan.edges[%zu]: duplicate edge %.200s#%.200s -> %.200s#%.200s "
           "(already plan.edges[%zu])",
           dup, e->parent_type, e->parent_id, e->child_type, e->child_id,
           first);
  return GRPC_STATUS_INVALID_ARGUMENT;
}

static int has_plugin(void *data, const char *type) {
  return reg_find_type(data, type, NULL) != NULL;
}

grpc_status_code api_check_plan(const reg_t *reg, const Smaug__V1__Plan *plan,
                                char *msg, size_t len) {
  grpc_status_code rc;
  char f[128];
  if (plan == NULL) {
    snprintf(msg, len, "plan: required");
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  if ((rc = valid_str("plan.name", plan->name, 1, VALID_MAX_NAME_BYTES, msg,
                      len)))
    return rc;
  if (plan->n_resources == 0) {
    snprintf(msg, len, "plan.resources: at least one resource is required");
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  if (plan->n_resources > VALID_MAX_PLAN_ENTRIES ||
      plan->n_edges > VALID_MAX_PLAN_ENTRIES) {
    snprintf(msg, len, "plan.resources: more than %d resources or edges",
             VALID_MAX_PLAN_ENTRIES);
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  for (size_t i = 0; i < plan->n_resources; i++) {
    const Smaug__V1__Resource *r = plan->resources[i];
    snprintf(f, sizeof(f), "plan.resources[%zu]", i);
    if ((rc = valid_resource(f, r, msg, len)))
      return rc;
    if (reg_find_type(reg, r->type, NULL) == NULL) {
      snprintf(msg, len,
               "plan.resources[%zu].type: no plugin provides resource type %s",
               i, r->type);
      return GRPC_STATUS_INVALID_ARGUMENT;
    }
  }

  /* Duplicates, edge endpoints and cycles, through the graph module. */
  graph_t *g;
  if (graph_new(&g) != 0) {
    snprintf(msg, len, "out of memory");
    return GRPC_STATUS_RESOURCE_EXHAUSTED;
  }
  rc = GRPC_STATUS_OK;
  char gerr[400];
  for (size_t i = 0; i < plan->n_resources && rc == GRPC_STATUS_OK; i++) {
    const Smaug__V1__Resource *r = plan->resources[i];
    int added = 0;
    int err = graph_add_node(g, r->type, r->id, r->name, NULL, NULL, &added,
                             gerr, sizeof(gerr));
    if (err == 0 && !added)
      err = GRAPH_ECONFLICT;
    if (err) {
      snprintf(msg, len, "plan.resources[%zu]: duplicate resource %s#%s", i,
               r->type, r->id);
      rc = GRPC_STATUS_INVALID_ARGUMENT;
    }
  }
  for (size_t i = 0; i < plan->n_edges && rc == GRPC_STATUS_OK; i++) {
    const Smaug__V1__ResourceEdge *e = plan->edges[i];
    int err =
        graph_add_edge_by_key(g, e->parent_type, e->parent_id, e->child_type,
                              e->child_id, gerr, sizeof(gerr));
    if (err) {
      snprintf(msg, len, "plan.edges[%zu]: %s", i,
               err == UV_ENOENT ? gerr : uv_strerror(err));
      rc = GRPC_STATUS_INVALID_ARGUMENT;
    }
  }
  if (rc == GRPC_STATUS_OK)
    rc = check_dup_edges(g, plan, msg, len);
  if (rc == GRPC_STATUS_OK) {
    int err = graph_validate(g, has_plugin, (void *)reg, gerr, sizeof(gerr));
    if (err) {
      snprintf(msg, len, "plan.%s: %s",
               err == GRAPH_ECYCLE ? "edges: cycle" : "resources", gerr);
      rc = GRPC_STATUS_INVALID_ARGUMENT;
    }
  }
  graph_free(g);
  if (rc)
    return rc;
  return api_check_params(reg, plan->parameters, plan->resources,
                          plan->n_resources, 0, "plan.parameters", msg, len);
}
