/*
 * dag.h - the task DAG of one operation, built from a resource graph.
 *
 * Every resource r gets two tasks (DESIGN.md §1): P(r), the
 * ParallelActivity, with no dependencies, and S(r), the SyncActivity, which
 * depends on P(r) (a "blue" edge) and on S(c) of every child c (a "red"
 * edge). Where the plugin does not implement an activity for the type and
 * operation, the task is a no-op: it keeps its place in the DAG so that the
 * ordering holds, but makes no call.
 *
 * Task numbering is implicit and compact: task 2*i is P(node i) and task
 * 2*i+1 is S(node i); edges are derived from the graph's CSR arrays, so the
 * DAG itself stores one no-op flag per task. Task ids for export are
 * "P:type#id" and "S:type#id". The graph must be validated first and must
 * outlive the DAG.
 *
 * Errors: 0 or a negative libuv code (UV_EINVAL, UV_ENOMEM). Threading:
 * none; a DAG is read-only once built and may be shared by readers.
 */
#ifndef SMAUG_DAG_H
#define SMAUG_DAG_H

#include <stddef.h>
#include <stdint.h>

#include "graph.h"

/* Values match smaug.v1.OperationKind. */
typedef enum {
  DAG_OP_PROTECT = 1,
  DAG_OP_RESTORE = 2,
  DAG_OP_DELETE = 3
} dag_op_t;

/* Values match smaug.v1.Activity. */
typedef enum { DAG_PARALLEL = 1, DAG_SYNC = 2 } dag_activity_t;

/* Values match smaug.v1.FlowEdgeKind. */
typedef enum {
  DAG_EDGE_PARALLEL_TO_SYNC = 1, /* P(r) -> S(r), blue */
  DAG_EDGE_CHILD_TO_PARENT = 2   /* S(child) -> S(parent), red */
} dag_edge_kind_t;

typedef struct dag_s dag_t;

/* Non-zero when a plugin implements `act` of `op` for resource `type`
 * (from GetPluginInfo's OperationSupport). Called once per type and
 * activity while the DAG is built. */
typedef int (*dag_implemented_cb)(void *data, const char *type, dag_op_t op,
                                  dag_activity_t act);

/* Builds the DAG of `op` over the validated graph `g` (UV_EINVAL if not
 * validated or `op` is unknown). `implemented` NULL means every activity is
 * implemented. `*out` is released with dag_free(); `g` must outlive it. */
int dag_new(const graph_t *g, dag_op_t op, dag_implemented_cb implemented,
            void *data, dag_t **out);

/* NULL is a no-op. */
void dag_free(dag_t *d);

const graph_t *dag_graph(const dag_t *d);
dag_op_t dag_op(const dag_t *d);

/* 2 * graph_count(). */
uint32_t dag_task_count(const dag_t *d);

static inline uint32_t dag_task(uint32_t node, dag_activity_t act) {
  return node * 2 + (act == DAG_SYNC);
}
static inline uint32_t dag_task_node(uint32_t task) {
  return task / 2;
}
static inline dag_activity_t dag_task_activity(uint32_t task) {
  return (task & 1) ? DAG_SYNC : DAG_PARALLEL;
}

/* 1 when task `t` makes no call. */
int dag_task_noop(const dag_t *d, uint32_t t);

/* Number of tasks `t` waits for: 0 for P, 1 + children for S. */
uint32_t dag_task_ndeps(const dag_t *d, uint32_t t);

/* Writes "P:type#id" or "S:type#id" into buf (truncated, NUL-terminated);
 * returns the full length, like snprintf. */
int dag_task_id(const dag_t *d, uint32_t t, char *buf, size_t len);

/* The task of activity `act` (DAG_PARALLEL or DAG_SYNC) on resource
 * `type`/`id` into `*out`: 0, UV_EINVAL for a NULL argument or another
 * activity, UV_ENOENT when the graph has no such resource. */
int dag_task_find(const dag_t *d, dag_activity_t act, const char *type,
                  const char *id, uint32_t *out);

/* Parses a task id as dag_task_id() writes it, "P:type#id" or "S:type#id"
 * (the type ends at the first '#'; the id is the rest and may hold any
 * byte but NUL), and finds its task in `d` into `*out`. Any length; the
 * string is only read. 0, UV_EINVAL when `task_id` is NULL or has not
 * that form (an empty type or id included), UV_ENOENT when the form is
 * right but the resource is not in the graph, UV_ENOMEM. */
int dag_task_parse(const dag_t *d, const char *task_id, uint32_t *out);

/* Graphviz DOT of the whole DAG: one node per task (no-op tasks
 * style=dashed), blue P->S edges and red S(child)->S(parent) edges, in task
 * order. `*out` is a NUL-terminated malloc'd string the caller frees. */
int dag_to_dot(const dag_t *d, char **out);

/* --------------------------------------------------- structured export */

typedef struct dag_xnode_s {
  char *id;      /* "P:type#id", owned by the export */
  uint32_t node; /* graph node index */
  dag_activity_t activity;
  int noop;
} dag_xnode_t;

typedef struct dag_xedge_s {
  uint32_t from; /* index into nodes: the dependency */
  uint32_t to;   /* index into nodes: the dependent task */
  dag_edge_kind_t kind;
} dag_xedge_t;

typedef struct dag_export_s {
  dag_xnode_t *nodes; /* in task order: nodes[t] is task t */
  size_t n_nodes;
  dag_xedge_t *edges; /* the same edges and order as dag_to_dot() */
  size_t n_edges;
} dag_export_t;

/* Fills `*out` (owned by the caller; release with dag_export_free). On
 * failure `*out` is untouched. */
int dag_export(const dag_t *d, dag_export_t *out);

/* Frees what dag_export() allocated. NULL is a no-op. */
void dag_export_free(dag_export_t *x);

#endif /* SMAUG_DAG_H */
